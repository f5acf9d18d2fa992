"""The send job's time budget holds by construction: arq's timeout must never
cut a provider call, and a lease must outlast the job that holds it."""

from __future__ import annotations

from service.worker import jobs, senders
from service.worker.settings import FUNCTIONS

# Claiming, rendering and recording: a few queries and a template.
DB_AND_RENDER_BUDGET = 10.0


def test_a_send_job_ends_within_its_timeout_by_construction() -> None:
    provider = max(senders.HTTP_TIMEOUT, senders.SMTP_TIMEOUT)
    assert jobs.SEND_TIMEOUT >= provider + DB_AND_RENDER_BUDGET
    [send] = [f for f in FUNCTIONS if f.name == "send_message"]
    assert send.timeout_s == jobs.SEND_TIMEOUT


def test_a_lease_outlasts_its_job_and_sms_are_booked_well_within_it() -> None:
    assert jobs.LEASE.total_seconds() > jobs.SEND_TIMEOUT
    # SMS jobs wait for their turn queued, not running; the horizon only
    # bounds how far ahead they are queued.
    assert jobs.SMS_HORIZON.total_seconds() < jobs.SEND_TIMEOUT
