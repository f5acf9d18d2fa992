"""What keeps `mawid dev` running: the embedded Postgres and Redis, the web
server and the worker, each restarted when it dies, after a pause that
doubles while it keeps dying, with a line saying so.

One loop in the main thread polls every process (which also reaps the
dead: a zombie postmaster would keep its pid in postmaster.pid and block
the restart), and stops them all in order when told to: the web server and
the worker first, both at once, then Redis, then Postgres.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from service.devstack.process import ChildServer, DevStackError

# How often the supervisor looks at its processes.
POLL_SECONDS = 0.2
# A worker stopping finishes the sends in flight first; say so if it takes
# longer than this.
SLOW_STOP_NOTICE = 3.0


@dataclass
class Backoff:
    """The pause before each restart of one process: `first`, doubling up
    to `most` while the process keeps dying, back to `first` once it has run
    for `settled` seconds."""

    first: float = 1.0
    most: float = 30.0
    settled: float = 60.0
    _next: float = field(default=0.0, init=False)

    def after_exit(self, ran_for: float) -> float:
        if ran_for >= self.settled or self._next == 0.0:
            self._next = self.first
        delay = self._next
        self._next = min(self.most, delay * 2)
        return delay


class Unit(Protocol):
    """One supervised process."""

    @property
    def name(self) -> str: ...

    def start(self) -> None:
        """Start it; raises DevStackError (or OSError) when it cannot."""

    def exit_status(self) -> int | None:
        """None while it runs, else its exit status (and it is reaped)."""

    def terminate(self) -> None:
        """Ask it to stop, without waiting."""

    def wait_stopped(self) -> None:
        """Wait until it has stopped (forcing it after its own timeout)."""

    def where(self) -> str:
        """Where it runs, for the line that says it is back."""


@dataclass
class ServerUnit:
    """The embedded Postgres or Redis: restarted in place, same data dir and
    same port, so the URLs the web server and the worker hold stay valid."""

    server: ChildServer

    @property
    def name(self) -> str:
        return self.server.name

    def start(self) -> None:
        self.server.start()

    def exit_status(self) -> int | None:
        process = self.server.process
        return None if process is None else process.poll()

    def terminate(self) -> None:
        """Servers stop one by one, in wait_stopped."""

    def wait_stopped(self) -> None:
        self.server.stop()

    def where(self) -> str:
        return f"on port {self.server.port}"


def _in_child() -> None:
    """Run in the web server's or worker's process before it execs."""
    # Ctrl-C during its start-up, before it has its own handlers, would end
    # it with a KeyboardInterrupt traceback: it starts with SIGINT ignored
    # (Python keeps it so), and its handlers take over once it runs.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform == "linux":
        # It gets SIGTERM when `mawid dev` dies, even by SIGKILL, so that no
        # orphan web server keeps the port (and the worker, on SIGTERM,
        # finishes its sends in flight).
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class AppUnit:
    """`mawid serve` or `mawid worker` as a child process.

    It stays in `mawid dev`'s process group: a Ctrl-C in the terminal reaches
    it as well as `mawid dev`, which then sends SIGTERM; both are normal stops.
    """

    name: str
    command: list[str]
    env: dict[str, str]
    # How long a stop may take before the process is killed.
    stop_timeout: float = 10.0
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own command, no shell
            self.command,
            env=self.env,
            preexec_fn=_in_child,
        )

    def exit_status(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()

    def wait_stopped(self) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def where(self) -> str:
        return f"(pid {self.process.pid})" if self.process else ""


def describe_exit(status: int) -> str:
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


@dataclass
class _Watched:
    unit: Unit
    backoff: Backoff
    started_at: float = 0.0
    # When a dead unit is due to start again; None while it runs.
    restart_at: float | None = None


class Supervisor:
    """Keeps the servers (in start order: Postgres, Redis) and the apps (the
    web server, the worker) running until told to stop, then stops them."""

    def __init__(
        self,
        servers: Sequence[Unit],
        apps: Sequence[Unit],
        say: Callable[[str], None],
        backoff: Callable[[], Backoff] = Backoff,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._servers = list(servers)
        self._apps = list(apps)
        self._watched = [_Watched(u, backoff()) for u in [*servers, *apps]]
        self._say = say
        self._clock = clock

    def start_apps(self) -> None:
        """Start the apps (the servers are started, and waited for, before
        the migrations run)."""
        for w in self._watched:
            if w.unit in self._apps:
                w.unit.start()
            w.started_at = self._clock()

    def check(self) -> None:
        """One look at every unit: note the dead, start those due again."""
        for w in self._watched:
            now = self._clock()
            if w.restart_at is None:
                status = w.unit.exit_status()
                if status is None:
                    continue
                delay = w.backoff.after_exit(now - w.started_at)
                w.restart_at = now + delay
                self._say(
                    f"{w.unit.name} exited ({describe_exit(status)}); restarting it in {delay:g} s"
                )
            elif now >= w.restart_at:
                try:
                    w.unit.start()
                except (DevStackError, OSError) as problem:
                    delay = w.backoff.after_exit(0.0)
                    w.restart_at = self._clock() + delay
                    first_line = next(iter(str(problem).splitlines()), "")
                    self._say(
                        f"{w.unit.name} did not start ({first_line}); trying again in {delay:g} s"
                    )
                else:
                    w.restart_at = None
                    w.started_at = self._clock()
                    self._say(f"{w.unit.name} running again {w.unit.where()}".rstrip())

    def watch(self, stopping: Callable[[], bool]) -> None:
        """Check every POLL_SECONDS until stopping() says so."""
        while not stopping():
            self.check()
            time.sleep(POLL_SECONDS)

    def stop(self) -> None:
        """The apps first, all at once, then the servers one by one, last
        started first."""
        for unit in self._apps:
            unit.terminate()
        for unit in self._apps:
            notice = self._clock() + SLOW_STOP_NOTICE
            while unit.exit_status() is None and self._clock() < notice:
                time.sleep(0.1)
            if unit.exit_status() is None:
                self._say(f"waiting for the {unit.name} to finish what it has in flight")
            unit.wait_stopped()
        for unit in reversed(self._servers):
            unit.wait_stopped()
