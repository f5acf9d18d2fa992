"""How long personal data is kept, and when it may be erased. Pure.

A booking's name, phone, e-mail and document number, its messages' bodies
and recipients, and what its audit rows say beyond actors and statuses go
away `retention_days` after the appointment, whatever became of it: one
cancelled months before its date is kept until that date has passed by the
same number of days, so an office can still answer the citizen about it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from service.domain.booking import ACTIVE, Status

# What an anonymised booking's name reads (the column stays NOT NULL).
ANONYMISED_NAME = "—"


def retention_cutoff(now: datetime, retention_days: int) -> datetime:
    """Bookings whose appointment started before this are anonymised."""
    return now - timedelta(days=retention_days)


def may_erase(status: str, starts_at: datetime, now: datetime) -> bool:
    """An erasure is refused while the appointment is still to come and the
    booking active: the office expects someone; cancel it first."""
    return not (Status(status) in ACTIVE and starts_at > now)
