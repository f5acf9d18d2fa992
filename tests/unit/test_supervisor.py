"""`mawid dev`'s supervisor on stand-in processes and a stand-in clock."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from service.devstack.process import DevStackError
from service.devstack.supervise import Backoff, Supervisor, describe_exit


def test_backoff_doubles_up_to_its_cap_and_starts_over_once_settled() -> None:
    backoff = Backoff(first=1.0, most=30.0, settled=60.0)
    delays = [backoff.after_exit(ran_for=2.0) for _ in range(7)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    # It ran for a minute before dying again: a fresh start.
    assert backoff.after_exit(ran_for=60.0) == 1.0
    assert backoff.after_exit(ran_for=0.5) == 2.0


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (-9, "killed by SIGKILL"),
        (-15, "killed by SIGTERM"),
        (1, "exit status 1"),
        (0, "exit status 0"),
    ],
)
def test_exits_are_described_by_signal_or_status(status: int, said: str) -> None:
    assert describe_exit(status) == said


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeUnit:
    name: str
    events: list[str]
    status: int | None = None
    fail_starts: int = 0
    starts: int = 0

    def start(self) -> None:
        if self.fail_starts:
            self.fail_starts -= 1
            raise DevStackError(f"{self.name} exited with 1 while starting; log ...\nmore")
        self.starts += 1
        self.status = None
        self.events.append(f"start {self.name}")

    def exit_status(self) -> int | None:
        return self.status

    def terminate(self) -> None:
        self.events.append(f"terminate {self.name}")

    def wait_stopped(self) -> None:
        self.events.append(f"wait {self.name}")

    def where(self) -> str:
        return "on port 5"


@dataclass
class Run:
    clock: Clock = field(default_factory=Clock)
    events: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)

    def units(self) -> tuple[list[FakeUnit], list[FakeUnit]]:
        servers = [FakeUnit("Postgres", self.events), FakeUnit("Redis", self.events)]
        apps = [FakeUnit("web server", self.events), FakeUnit("worker", self.events)]
        return servers, apps

    def supervisor(self, servers: list[FakeUnit], apps: list[FakeUnit]) -> Supervisor:
        return Supervisor(servers, apps, self.said.append, clock=self.clock)


def test_a_dead_process_is_started_again_after_its_pause_with_a_line_each() -> None:
    run = Run()
    servers, apps = run.units()
    supervisor = run.supervisor(servers, apps)
    supervisor.start_apps()
    worker = apps[1]
    run.clock.now += 300
    worker.status = -9
    supervisor.check()
    assert run.said == ["worker exited (killed by SIGKILL); restarting it in 1 s"]
    run.clock.now += 0.5
    supervisor.check()
    assert worker.starts == 1, "not before its pause"
    run.clock.now += 0.5
    supervisor.check()
    assert worker.starts == 2
    assert run.said[-1] == "worker running again on port 5"
    # Dying again at once: twice the pause.
    worker.status = 1
    supervisor.check()
    assert run.said[-1] == "worker exited (exit status 1); restarting it in 2 s"
    # The others were left alone.
    assert [u.starts for u in (*servers, apps[0])] == [0, 0, 1]


def test_a_server_that_does_not_start_is_tried_again_later() -> None:
    run = Run()
    servers, apps = run.units()
    supervisor = run.supervisor(servers, apps)
    supervisor.start_apps()
    postgres = servers[0]
    postgres.status = -9
    postgres.fail_starts = 1
    supervisor.check()
    run.clock.now += 1
    supervisor.check()
    assert run.said[-1] == (
        "Postgres did not start (Postgres exited with 1 while starting; log ...); "
        "trying again in 2 s"
    )
    run.clock.now += 2
    supervisor.check()
    assert run.said[-1] == "Postgres running again on port 5"
    assert postgres.starts == 1


def test_stop_asks_the_apps_together_then_stops_the_servers_last_started_first() -> None:
    run = Run()
    servers, apps = run.units()
    supervisor = run.supervisor(servers, apps)
    supervisor.start_apps()
    for app in apps:
        app.status = 0  # they stop at once
    run.events.clear()
    supervisor.stop()
    assert run.events == [
        "terminate web server",
        "terminate worker",
        "wait web server",
        "wait worker",
        "wait Redis",
        "wait Postgres",
    ]


def test_watch_checks_until_told_to_stop() -> None:
    run = Run()
    servers, apps = run.units()
    supervisor = run.supervisor(servers, apps)
    supervisor.start_apps()
    apps[0].status = -15
    looks = iter([False, False, True])
    supervisor.watch(lambda: next(looks))
    assert run.said == ["web server exited (killed by SIGTERM); restarting it in 1 s"]
