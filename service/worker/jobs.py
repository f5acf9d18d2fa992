"""arq jobs: sweep the outbox, send one message, extend slots.

The conveyor only: what to render is `service.notify.render`, what a
provider's refusal does to the row is `service.notify.delivery`, whether a
due row still goes is `service.domain.messages.skip_reason`.

Postgres decides what is due; Redis only carries "send row N" for rows that
already are.  A job never holds a database connection while it talks to a
provider, and logs ids, kinds and codes, never recipients or bodies.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from arq.connections import ArqRedis

from service import bookings, verification
from service.clock import clock_for
from service.config import Settings
from service.db import create_pool
from service.domain.booking import hash_token, new_manage_token
from service.domain.messages import (
    CODE,
    SKIP_OPTED_OUT,
    SKIP_QUIET,
    SKIP_SMS_CAP,
    SKIP_STARTED,
    next_attempt_at,
    quiet_applies,
    resend_at,
    skip_reason,
    sms_cap_decision,
)
from service.domain.staff import THROTTLE_WINDOW
from service.logsafe import exception_summary
from service.notify import delivery
from service.notify.delivery import PermanentError, TemporaryError
from service.notify.render import MessageData, Renderer, redact
from service.store import bookings as booking_store
from service.store import form_keys, outbox, slots
from service.store import staff as staff_store
from service.store import verification as verification_store
from service.store.outbox import Claimed
from service.worker.ratelimit import RateLimiter
from service.worker.senders import Senders, make_senders

log = logging.getLogger(__name__)

STATE = "mawid"
QUEUE_NAME = "mawid:notify"
# How long a claimed row is ours.  Longer than the job timeout, so that a row
# is only taken back from a worker that is gone, not from one still working.
LEASE = timedelta(seconds=120)
# A send job claims, renders, calls one provider (each bounded by its own
# timeout, senders.HTTP_TIMEOUT / SMTP_TIMEOUT) and records: it never waits
# for its SMS turn (the sweeper queues it to start then), so this bound holds
# by construction and arq's timeout never cuts a provider call.
SEND_TIMEOUT = 60
SWEEP_TIMEOUT = 30
MAX_ENQUEUE = 2000
# How far ahead the sweeper books SMS turns (and so queues SMS jobs): a few
# sweeps' worth, so the provider never idles between two sweeps, and nothing
# like a job timeout, so a booking changed meanwhile is seen at send time.
SMS_HORIZON = timedelta(seconds=5)
# Emails have no shared rate: the sweeper queues this many at most per sweep,
# ahead of the SMS, so that an SMS backlog never holds them back.
EMAIL_BATCH = 100


@dataclass(slots=True)
class WorkerState:
    settings: Settings
    pool: asyncpg.Pool
    renderer: Renderer
    senders: Senders
    clock: Callable[[], datetime]
    owns_pool: bool


async def build_state(
    settings: Settings,
    *,
    pool: asyncpg.Pool | None = None,
    senders: Senders | None = None,
    clock: Callable[[], datetime] | None = None,
) -> WorkerState:
    owns = pool is None
    if pool is None:
        pool = await create_pool(
            settings.database_url, min_size=1, max_size=max(settings.db_pool_max, 4)
        )
    return WorkerState(
        settings=settings,
        pool=pool,
        renderer=Renderer(),
        senders=senders or make_senders(settings),
        clock=clock or clock_for(settings),
        owns_pool=owns,
    )


async def close_state(state: WorkerState) -> None:
    await state.senders.close()
    if state.owns_pool:
        await state.pool.close()


async def startup(ctx: dict[str, Any]) -> None:
    if STATE not in ctx:
        ctx[STATE] = await build_state(ctx.get("settings") or Settings.from_env())


async def shutdown(ctx: dict[str, Any]) -> None:
    state = ctx.pop(STATE, None)
    if state is not None and not ctx.get("keep_state"):
        await close_state(state)


def job_id(row: outbox.Due, queued_at: datetime) -> str:
    # A new id per try and per queueing: arq refuses a second job with the same
    # id while the first exists. A job whose worker was killed after arq marked
    # it in progress stays blocked for arq's in-progress timeout (longest job
    # timeout + 10 s, ten minutes here); the row is queued again under a new
    # id once REQUEUE_AFTER has passed, and the row's claim keeps the two jobs
    # from both sending.
    return f"outbox:{row.id}:{row.attempts}:{row.rate_limit_waits}:{int(queued_at.timestamp())}"


def enqueue_target(settings: Settings) -> int:
    """How many send jobs to keep queued: the SMS the rate serves within the
    horizon plus a batch of emails, so that long backlogs stay in Postgres
    rather than in Redis."""
    sms = int(settings.sms_per_second * SMS_HORIZON.total_seconds()) + 1
    return max(100, min(MAX_ENQUEUE, sms + EMAIL_BATCH))


async def sweep_outbox(ctx: dict[str, Any]) -> int:
    """Take back expired leases and queue due rows; returns how many were queued.

    Each SMS is queued to start at a turn booked on the shared rate limit, and
    only turns within SMS_HORIZON are booked: every worker's sweeper books on
    the same timeline, so together they never queue more SMS than the rate
    serves in that horizon.
    """
    state: WorkerState = ctx[STATE]
    redis: ArqRedis = ctx["redis"]
    now = state.clock()
    limiter = RateLimiter(redis, state.settings.sms_per_second)
    horizon = SMS_HORIZON.total_seconds()
    async with state.pool.acquire() as conn:
        async with conn.transaction():
            recovered = await recover_expired_leases(conn, now)
        if recovered:
            log.warning("outbox: took back %d rows from an expired lease", recovered)
        backlog = await redis.zcard(QUEUE_NAME)
        room = enqueue_target(state.settings) - backlog
        if room <= 0:
            return 0
        # An empty queue with rows marked queued means Redis lost its jobs
        # (restart without persistence): queue them again straight away.
        requeue_after = timedelta(0) if backlog == 0 else outbox.REQUEUE_AFTER
        queued = 0
        async with conn.transaction():
            for row in await outbox.due(
                conn, now, min(room, EMAIL_BATCH), requeue_after, channel="email"
            ):
                queued += await _enqueue(redis, row, None, now)
        room -= queued
        free = await limiter.free_within(horizon, room)
        if free <= 0:
            return queued
        async with conn.transaction():
            rows = await outbox.lock_due(conn, now, free, requeue_after, channel="sms")
            waits = await limiter.reserve_within(len(rows), horizon)
            # One reference instant for the whole batch: turns stay one
            # interval apart however long the enqueueing takes.
            base = time.time()
            rows = rows[: len(waits)]
            await outbox.mark_enqueued(conn, [r.id for r in rows], now)
            for row, wait in zip(rows, waits, strict=True):
                queued += await _enqueue(
                    redis, row, datetime.fromtimestamp(base + wait, UTC), now
                )
    return queued


async def recover_expired_leases(conn: asyncpg.Connection, now: datetime) -> int:
    """Give back rows whose worker died or hung while sending.

    Such a row may or may not have reached the provider; sending it again is
    the price of never losing it (the window is the provider call itself).
    It goes again when a retry would (`resend_at`: not in quiet hours for a
    reminder, not once the appointment has started), or is skipped when no
    such time is left.  Run it in a transaction (the rows are locked).
    """
    rows = await outbox.lock_expired_leases(conn, now)
    again: list[tuple[int, datetime]] = []
    for r in rows:
        at = resend_at(
            r.kind, now, appointment_at=r.appointment_at, quiet=r.quiet, zone=ZoneInfo(r.timezone)
        )
        if at is None:
            reason = SKIP_STARTED if now >= r.appointment_at else SKIP_QUIET
            await outbox.mark_skipped(conn, r.id, reason, now)
        else:
            again.append((r.id, at))
    await outbox.requeue(conn, again, now)
    return len(rows)


async def _enqueue(
    redis: ArqRedis, row: outbox.Due, start: datetime | None, queued_at: datetime
) -> int:
    job = await redis.enqueue_job(
        "send_message",
        row.id,
        _job_id=job_id(row, queued_at),
        _queue_name=QUEUE_NAME,
        _defer_until=start,
    )
    return int(job is not None)


def message_data(c: Claimed, base_url: str, manage_token: str, *, code: str = "") -> MessageData:
    lang = c.language
    same_start = c.booking_starts_at == c.appointment_at
    ends = (
        c.booking_ends_at
        if same_start
        else c.appointment_at + timedelta(minutes=c.service_duration_minutes)
    )
    return MessageData(
        kind=c.kind,
        language=lang,
        reference=c.reference,
        citizen_name=c.citizen_name,
        office_name=c.office_name[lang],
        office_address=c.office_address,
        office_kind=c.office_kind,
        office_country=c.office_country,
        office_city=c.office_city[lang],
        office_prefix=c.office_prefix,
        timezone=c.timezone,
        service_name=c.service_name[lang],
        bring=c.bring[lang],
        starts_at=c.appointment_at,
        ends_at=ends,
        reason=c.reason,
        base_url=base_url,
        sequence=c.id,
        manage_token=manage_token,
        code=code,
    )


async def send_message(ctx: dict[str, Any], outbox_id: int) -> str:
    """Claim, re-check, render, send, record.  Returns what happened.

    An SMS job starts at its turn on the shared rate (the sweeper queued it
    for then), so the re-check at the claim is the last word on the booking:
    between it and the provider call there is only a token insert and the
    rendering.  A change to the booking after that point cannot stop a
    message already on its way.
    """
    state: WorkerState = ctx[STATE]
    settings = state.settings
    now = state.clock()
    async with state.pool.acquire() as conn:
        claimed = await outbox.claim(conn, outbox_id, now, LEASE)
        if claimed is None:
            return "not_claimed"
        reason = skip_reason(
            claimed.kind,
            booking_status=claimed.booking_status,
            booking_starts_at=claimed.booking_starts_at,
            appointment_at=claimed.appointment_at,
            now=now,
        )
        if reason is None and claimed.opted_out:
            reason = SKIP_OPTED_OUT
        if reason is not None:
            await outbox.mark_skipped(conn, outbox_id, reason, now)
            log.info("outbox %d %s skipped: %s", outbox_id, claimed.kind, reason)
            return "skipped"
        held_back = await _per_number_cap(conn, claimed, settings, now)
        if held_back is not None:
            return held_back
        secret, data = await _secret_for(conn, claimed, settings)
        try:
            if claimed.channel == "sms":
                sms = state.renderer.sms(data)
                text, segments, encoding = sms.body, sms.count.segments, sms.count.encoding
                email = None
            else:
                rendered = state.renderer.email(
                    data,
                    to=claimed.recipient,
                    sender=claimed.email_from or settings.email_from,
                    reply_to=claimed.email_reply_to,
                )
                email, text, segments, encoding = rendered.message, rendered.text, None, None
        except Exception as exc:
            # A template bug must not take the worker down nor loop forever.
            log.error("outbox %d: rendering failed: %s", outbox_id, exception_summary(exc))
            await outbox.mark_failed(conn, outbox_id, code="render", reason="render_error", now=now)
            return "failed"
    # The stored copy never carries the token or the code; in dev mode the
    # code stays, so that /dev/messages lets anyone try the flow.
    keep_code = claimed.kind == CODE and settings.is_dev
    body = (
        text if keep_code else redact(text, secret, "[code]" if claimed.kind == CODE else "[token]")
    )
    # No connection is held from here until the provider has answered.
    try:
        if email is None:
            provider_id = await state.senders.sms.send_sms(
                claimed.recipient,
                text,
                status_callback=delivery.status_callback_url(settings.base_url, outbox_id),
            )
        else:
            provider_id = await state.senders.email.send_email(email)
    except TemporaryError as exc:
        return await _temporary(state, claimed, exc)
    except PermanentError as exc:
        return await _permanent(state, claimed, exc.code, body, segments)
    except Exception as exc:
        # Unknown failure: treat as temporary, the deadline bounds the retries.
        log.error("outbox %d: unexpected send error: %s", outbox_id, exception_summary(exc))
        return await _temporary(state, claimed, TemporaryError(type(exc).__name__))
    async with state.pool.acquire() as conn:
        await outbox.mark_sent(
            conn,
            outbox_id,
            provider_id=provider_id,
            body=body,
            segments=segments,
            encoding=encoding,
            now=state.clock(),
        )
    log.info("outbox %d %s/%s sent", outbox_id, claimed.kind, claimed.channel)
    return "sent"


async def _secret_for(
    conn: asyncpg.Connection, claimed: Claimed, settings: Settings
) -> tuple[str, MessageData]:
    """The one secret a message carries, drawn now and recorded (as a hash)
    before it can leave: a code for a code message, else a manage token of
    its own (only hashes are stored, so the worker cannot re-create the one
    shown at booking)."""
    if claimed.kind == CODE:
        code = await verification.issue_code(conn, claimed.booking_id, settings.secret_key)
        return code, message_data(claimed, settings.base_url, "", code=code)
    token = new_manage_token()
    await booking_store.add_manage_token(
        conn, claimed.booking_id, hash_token(token, settings.secret_key), claimed.id
    )
    return token, message_data(claimed, settings.base_url, token)


# The window of the per-number SMS cap.
SMS_CAP_WINDOW = timedelta(hours=24)


async def _per_number_cap(
    conn: asyncpg.Connection, claimed: Claimed, settings: Settings, now: datetime
) -> str | None:
    """At most SMS_PER_NUMBER_PER_DAY SMS (codes aside: their own limits
    bound them) to one number in 24 hours, across bookings. Past it the SMS
    gives way to the e-mail the booking gets anyway, or waits for the
    window to move. None when the SMS may go."""
    if claimed.channel != "sms" or claimed.kind == CODE:
        return None
    sent, oldest = await outbox.sms_sent_to(
        conn, claimed.recipient, now - SMS_CAP_WINDOW, claimed.id
    )
    decision = sms_cap_decision(
        sent, oldest, settings.sms_per_number_per_day, has_email=claimed.has_email, now=now
    )
    if decision is None:
        return None
    if decision == "email":
        await outbox.mark_skipped(conn, claimed.id, SKIP_SMS_CAP, now)
        log.info("outbox %d %s: number over its daily SMS, e-mail only", claimed.id, claimed.kind)
        return "skipped"
    await outbox.wait_until(conn, claimed.id, decision, SKIP_SMS_CAP, now)
    log.info("outbox %d %s: number over its daily SMS, waits", claimed.id, claimed.kind)
    return "held_back"


async def _temporary(state: WorkerState, c: Claimed, exc: TemporaryError) -> str:
    now = state.clock()
    quiet = quiet_applies(c.kind)
    at = next_attempt_at(
        now,
        attempts=c.attempts,
        rate_limited=exc.rate_limited,
        rate_limit_waits=c.rate_limit_waits,
        retry_after=exc.retry_after,
        deadline=c.appointment_at,
        jitter=random.random(),
        quiet=c.quiet if quiet else None,
        zone=ZoneInfo(c.timezone) if quiet else None,
    )
    async with state.pool.acquire() as conn:
        if at is None:
            async with conn.transaction():
                await delivery.give_up(
                    conn,
                    c.id,
                    channel=c.channel,
                    code=exc.code,
                    reason="retries_exhausted",
                    now=now,
                )
            log.warning("outbox %d %s/%s gave up: %s", c.id, c.kind, c.channel, exc.code)
            return "failed"
        await outbox.retry_later(
            conn,
            c.id,
            send_at=at,
            code=exc.code,
            reason="rate_limited" if exc.rate_limited else "temporary_error",
            rate_limited=exc.rate_limited,
            now=now,
        )
    log.info("outbox %d %s/%s will retry: %s", c.id, c.kind, c.channel, exc.code)
    return "retry"


async def _permanent(
    state: WorkerState, c: Claimed, code: str, body: str, segments: int | None
) -> str:
    now = state.clock()
    async with state.pool.acquire() as conn, conn.transaction():
        await delivery.give_up(
            conn,
            c.id,
            channel=c.channel,
            code=code,
            reason="permanent_error",
            now=now,
            body=body,
            segments=segments,
        )
    log.warning("outbox %d %s/%s failed: %s", c.id, c.kind, c.channel, code)
    return "failed"


async def extend_slots(ctx: dict[str, Any]) -> int:
    """Daily: keep slots materialised up to the horizon for every office."""
    state: WorkerState = ctx[STATE]
    async with state.pool.acquire() as conn:
        created: int = await slots.extend_all_offices(
            conn, state.clock(), horizon_days=state.settings.slot_horizon_days
        )
    log.info("slots extended: %d", created)
    return created


# A booking form older than this has no free slot left to book anyway; its
# key no longer needs to stop a second submission.
FORM_KEY_RETENTION = timedelta(days=7)


async def purge_expired(ctx: dict[str, Any]) -> int:
    """Daily: drop expired staff sessions, login failures past the throttle
    window and old form keys; none can change a decision any more."""
    state: WorkerState = ctx[STATE]
    now = state.clock()
    async with state.pool.acquire() as conn:
        sessions = await staff_store.purge_expired_sessions(conn, now)
        await staff_store.purge_failures(conn, now - THROTTLE_WINDOW)
        await form_keys.purge(conn, now - FORM_KEY_RETENTION)
        await verification_store.forget_before(
            conn, now - timedelta(days=state.settings.verified_contact_days)
        )
    log.info("expired staff sessions purged: %d", sessions)
    return sessions


async def expire_holds(ctx: dict[str, Any]) -> int:
    """Every few seconds: holds whose time is up give their seat back (the
    pages and the API also release them before reading seats)."""
    state: WorkerState = ctx[STATE]
    async with state.pool.acquire() as conn:
        released = await bookings.release_expired_holds(conn, state.clock())
    if released:
        log.info("holds expired: %d", released)
    return released
