"""Postgres going away while SMS are at the provider: the worker waits for it
to come back and records each answer, so no row is left `sending` to go again
when its lease runs out (a duplicate SMS).

The worker reaches the session's Postgres through a relay the test cuts
(tests/tcpproxy.py), as the dev supervisor's Postgres would be while it
restarts after a crash.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from service.worker import jobs
from tests.faketwilio import Reply
from tests.fixtures.notify import Env, book_sms, wait_for
from tests.tcpproxy import Relay

PROVIDER_DELAY = 1.0


async def statuses(env: Env) -> dict[str, int]:
    rows = await env.pool.fetch(
        "SELECT status, count(*) AS n FROM outbox WHERE kind = 'confirmation' GROUP BY status"
    )
    return {r["status"]: r["n"] for r in rows}


async def test_answers_that_come_while_postgres_is_down_are_recorded_once_it_is_back(
    notify_env: Env, relay: Relay, db_dsn: str
) -> None:
    env = notify_env
    n = 30
    await book_sms(env, n)
    env.twilio.default = Reply(delay=PROVIDER_DELAY)
    settings = env.settings.with_(database_url=relay.dsn_for(db_dsn))
    await env.start_worker(await jobs.build_state(settings, clock=env.clock))

    async def at_the_provider() -> bool:
        return (await statuses(env)).get("sending", 0) >= 5

    await wait_for(at_the_provider, 60, "sends waiting for the provider's answer")
    relay.cut()
    in_flight = (await statuses(env)).get("sending", 0)
    # Every send in flight gets its answer while Postgres is away.
    await asyncio.sleep(PROVIDER_DELAY + 1.0)
    answered_while_down = len(env.twilio.sent)
    await relay.restore()

    async def recorded() -> bool:
        return (await statuses(env)).get("sent", 0) >= answered_while_down

    await wait_for(recorded, 30, "the answers recorded once Postgres is back")
    # A normal stop lets the sends in flight finish.  Every SMS the provider
    # took is recorded as sent; a row still `sending` is one the cut caught
    # before its send (its lease gives it back, to be sent once).
    await env.stop_worker()
    at_provider = {i for i in env.twilio.per_outbox_id() if i is not None}
    recorded_sent = {
        r["id"] for r in await env.pool.fetch("SELECT id FROM outbox WHERE status = 'sent'")
    }
    assert recorded_sent == at_provider
    assert len(at_provider) < n

    # The next worker sends the rest, nothing twice.  The leases run out at
    # once, and jobs lost with the cut are presumed lost at once, rather than
    # after two minutes each.
    env.clock.advance(jobs.LEASE + timedelta(seconds=1))
    await env.pool.execute(
        "UPDATE outbox SET enqueued_at = enqueued_at - interval '3 minutes'"
        " WHERE enqueued_at IS NOT NULL AND status = 'pending'"
    )
    env.twilio.default = Reply()
    await env.start_worker()

    async def all_sent() -> bool:
        return (await statuses(env)).get("sent", 0) == n

    await wait_for(all_sent, 60, "every confirmation sent")
    print(f"in flight at the cut: {in_flight}, duplicates: {len(env.twilio.duplicates())}")
    assert in_flight > 0
    assert env.twilio.duplicates() == {}
    assert len(env.twilio.sent) == n
