"""The tests' clock: fixed, settable, shared by every suite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# Every test starts on Monday 2027-02-01 at 10:00 UTC (11:00 in Paris), one
# week before Ramadan 1448: the demo slots in the template cover 84 days from
# there, so tests see Ramadan hours, the Casablanca offset change, Eid al-Fitr
# and the European DST change of 2027-03-28.
FIXED_NOW = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)


class FakeClock:
    """A settable clock: `clock()` is aware UTC now, as the app's CLOCK_KEY wants."""

    def __init__(self, now: datetime = FIXED_NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        assert now.tzinfo is not None
        self.now = now

    def advance(self, delta: timedelta) -> None:
        self.now += delta
