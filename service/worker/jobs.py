"""arq jobs: sweep the outbox, send one message, extend slots.

The conveyor only: what to render is `service.notify.render`, what a
provider's refusal does to the row is `service.notify.delivery`, whether a
due row still goes is `service.domain.messages.skip_reason`.

Postgres decides what is due; Redis only carries "send row N" for rows that
already are.  A job never holds a database connection while it talks to a
provider, and logs ids, kinds and codes, never recipients or bodies.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import asyncpg
from arq.connections import ArqRedis

from service import bookings, personal_data, verification
from service.clock import clock_for
from service.config import Settings
from service.db import create_pool, unavailable
from service.domain.booking import hash_token, new_manage_token
from service.domain.messages import (
    AFTER_VISIT_KINDS,
    CODE,
    FEEDBACK,
    SKIP_OPTED_OUT,
    SKIP_QUIET,
    SKIP_SMS_CAP,
    SKIP_STARTED,
    SKIP_WHATSAPP_OPTED_OUT,
    next_attempt_at,
    quiet_applies,
    resend_at,
    skip_reason,
    sms_cap_decision,
)
from service.domain.mobile_alerts import SubscriptionRef
from service.domain.staff import THROTTLE_WINDOW
from service.domain.verification import contact_hash
from service.logs import REQUEST_ID
from service.logsafe import exception_summary
from service.metrics import Metrics
from service.notify import delivery
from service.notify.delivery import PermanentError, TemporaryError
from service.notify.render import MessageData, Renderer, redact
from service.office import documents
from service.store import bookings as booking_store
from service.store import draws as draw_store
from service.store import feedback as feedback_store
from service.store import form_keys, outbox, slots
from service.store import mobile_alerts as alert_store
from service.store import staff as staff_store
from service.store import verification as verification_store
from service.store.outbox import Claimed
from service.store.verification import Owner
from service.worker.ratelimit import RATE_KEY, RateLimiter
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
# The SMS rate is kept at two points (service.worker.ratelimit): the sweeper
# books turns, and each job passes a gate at its turn, which spaces the sends
# themselves.  The gate runs this much below SMS_PER_SECOND: what stands
# between it and the provider (the request itself) takes a little longer for
# some SMS than for others, and 2 % of a second's sends absorbs 20 ms of that,
# so no second at the provider holds one SMS more than the rate.
SMS_GATE_HEADROOM = 0.02
# Turns are booked a little further apart still, so that the gate seldom
# holds a job back, and a lag behind the turns (a stalled worker) wears off.
SMS_TURN_HEADROOM = 0.03
SENT_KEY = RATE_KEY + ":sent"
# WhatsApp's own rate (WHATSAPP_PER_SECOND), kept like the SMS one.
WHATSAPP_RATE_KEY = "mawid:ratelimit:whatsapp"
# The channels sent at booked turns on a shared provider rate.
TURN_CHANNELS = ("sms", "whatsapp")
# An SMS job is queued to start this long before its turn: it claims and
# renders, then waits for the turn, so that only the gate and the request
# stand between the turn and the provider.  arq's polling
# (WorkerSettings.poll_delay) may start a job up to 50 ms late.
TURN_EARLY = 0.1
# No turn is booked sooner than this, so that its job can start in time,
# however long the sweep takes to queue its batch.
TURN_LEAD = 1.0
# A job that starts more than this after its turn sends nothing: the worker
# was down meanwhile, and the jobs queued for all the turns that passed
# start at once.  Its row goes back to the sweeper, which books it a new
# turn (`turn_stale`).  A little lateness (a busy or stalled worker) is left
# to the gate, which spaces such jobs out.
TURN_STALE = 1.0
# A job held back at the gate gives up this long after its turn and gives
# its row back, well within the job timeout (SEND_TIMEOUT less the
# provider's own timeout).
GATE_PATIENCE = 10.0
# Once the provider has answered, its answer must reach the row: lost, the
# row stays `sending` until its lease runs out and the message goes again.
# A Postgres that restarts meanwhile (the dev supervisor brings it back in a
# few seconds) is waited for this long, which the job timeout leaves room
# for after the wait for a turn (GATE_PATIENCE) and the provider's own
# timeout (senders.HTTP_TIMEOUT, SMTP_TIMEOUT).
RECORD_PATIENCE = 25.0
# The first pause before asking Postgres again, doubling up to a second.
RECORD_PAUSE = 0.1

T = TypeVar("T")


@dataclass(slots=True)
class WorkerState:
    settings: Settings
    pool: asyncpg.Pool
    renderer: Renderer
    senders: Senders
    clock: Callable[[], datetime]
    owns_pool: bool
    metrics: Metrics = field(default_factory=Metrics)
    # The jobs of this process at a channel's gate (SMS, WhatsApp) take turns
    # asking it, in the order they came, rather than all polling Redis at
    # once; one channel's line never holds up the other's.
    gate_lines: dict[str, asyncio.Lock] = field(
        default_factory=lambda: {channel: asyncio.Lock() for channel in TURN_CHANNELS}
    )


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


def job_id(row: outbox.Due, queued_at: datetime, turn: float | None = None) -> str:
    # A new id per try and per queueing: arq refuses a second job with the same
    # id while the first exists. A job whose worker was killed after arq marked
    # it in progress stays blocked for arq's in-progress timeout (longest job
    # timeout + 10 s, ten minutes here); the row is queued again under a new
    # id once REQUEUE_AFTER has passed, and the row's claim keeps the two jobs
    # from both sending.  An SMS handed back for a new turn may be queued
    # again within the same second, before arq has dropped its first job:
    # its turn tells the two apart.
    key = f"outbox:{row.id}:{row.attempts}:{row.rate_limit_waits}:{int(queued_at.timestamp())}"
    return key if turn is None else f"{key}:{int(turn * 1000)}"


def enqueue_target(settings: Settings) -> int:
    """How many send jobs to keep queued: the SMS and WhatsApp messages their
    rates serve within the horizon plus a batch of emails, so that long
    backlogs stay in Postgres rather than in Redis."""
    turns = sum(
        int(channel_rate(settings, channel) * SMS_HORIZON.total_seconds()) + 1
        for channel in TURN_CHANNELS
    )
    return max(100, min(MAX_ENQUEUE, turns + EMAIL_BATCH))


# What asyncpg raises while Postgres is down or restarting.
DATABASE_DOWN = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.ConnectionDoesNotExistError,
)


async def sweep_outbox(ctx: dict[str, Any]) -> int:
    """Take back expired leases and queue due rows; returns how many were queued.

    Each SMS is queued to start at a turn booked on the shared rate limit, and
    only turns within SMS_HORIZON are booked: every worker's sweeper books on
    the same timeline, so together they never queue more SMS than the rate
    serves in that horizon.
    """
    try:
        return await _sweep(ctx)
    except DATABASE_DOWN as exc:
        # The next sweep, a second later, tries again: one line each, not a
        # traceback, while Postgres restarts.
        log.warning("outbox sweep: Postgres unavailable (%s)", type(exc).__name__)
        return 0


async def _sweep(ctx: dict[str, Any]) -> int:
    state: WorkerState = ctx[STATE]
    redis: ArqRedis = ctx["redis"]
    now = state.clock()
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
                queued += await _enqueue(redis, row, now)
        # Each provider channel has its own rate and its own turns.
        for channel in TURN_CHANNELS:
            limiter = sms_limiter(redis, state.settings, channel)
            free = await limiter.free_within(horizon, room - queued, TURN_LEAD)
            if free <= 0:
                continue
            async with conn.transaction():
                rows = await outbox.lock_due(conn, now, free, requeue_after, channel=channel)
                waits = await limiter.reserve_within(len(rows), horizon, TURN_LEAD)
                # One reference instant for the whole batch: turns stay one
                # interval apart however long the enqueueing takes.
                base = time.time()
                rows = rows[: len(waits)]
                await outbox.mark_enqueued(conn, [r.id for r in rows], now)
                for row, wait in zip(rows, waits, strict=True):
                    queued += await _enqueue(redis, row, now, turn=base + wait)
    return queued


def channel_rate(settings: Settings, channel: str) -> float:
    """The provider's rate for a channel: SMS_PER_SECOND, WHATSAPP_PER_SECOND."""
    return settings.whatsapp_per_second if channel == "whatsapp" else settings.sms_per_second


def _rate_key(channel: str) -> str:
    return WHATSAPP_RATE_KEY if channel == "whatsapp" else RATE_KEY


def sms_limiter(redis: ArqRedis, settings: Settings, channel: str = "sms") -> RateLimiter:
    """The turns of a provider channel (SMS or WhatsApp) shared by every
    worker, booked SMS_TURN_HEADROOM further apart than its rate would have
    them."""
    return RateLimiter(
        redis, channel_rate(settings, channel) / (1 + SMS_TURN_HEADROOM), _rate_key(channel)
    )


def sms_gate(redis: ArqRedis, settings: Settings, channel: str = "sms") -> RateLimiter:
    """The gate every message of a provider channel passes at its turn,
    SMS_GATE_HEADROOM below the channel's rate."""
    return RateLimiter(
        redis,
        channel_rate(settings, channel) / (1 + SMS_GATE_HEADROOM),
        _rate_key(channel) + ":sent",
    )


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
    redis: ArqRedis, row: outbox.Due, queued_at: datetime, turn: float | None = None
) -> int:
    """Queue the send job of a row; an SMS with its turn (a Unix time), to
    start TURN_EARLY before it."""
    if turn is None:
        job = await redis.enqueue_job(
            "send_message", row.id, _job_id=job_id(row, queued_at), _queue_name=QUEUE_NAME
        )
    else:
        job = await redis.enqueue_job(
            "send_message",
            row.id,
            turn=turn,
            queued_at=queued_at,
            _job_id=job_id(row, queued_at, turn),
            _queue_name=QUEUE_NAME,
            _defer_until=datetime.fromtimestamp(turn - TURN_EARLY, UTC),
        )
    return int(job is not None)


def turn_stale(turn: float | None, after: float = TURN_STALE) -> bool:
    """Whether an SMS's turn passed more than `after` seconds ago."""
    return turn is not None and time.time() - turn > after


async def wait_for_turn(
    state: WorkerState, redis: ArqRedis, turn: float, channel: str = "sms"
) -> bool:
    """Wait for an SMS's turn, then for the gate; False when the gate has
    held it back for too long (GATE_PATIENCE)."""
    early = turn - time.time()
    if early > 0:
        # Never longer than the sweeper books ahead, whatever the clocks say.
        await asyncio.sleep(min(early, SMS_HORIZON.total_seconds()))
    gate = sms_gate(redis, state.settings, channel)
    try:
        async with asyncio.timeout(max(0.0, turn + GATE_PATIENCE - time.time())):
            async with state.gate_lines[channel]:
                # The gate lives in Redis, shared with other processes: no
                # event to wait on, only the time it says is left.
                while (left := await gate.pass_now()) > 0:  # noqa: ASYNC110
                    await asyncio.sleep(left)
    except TimeoutError:
        return False
    return True


def message_data(c: Claimed, base_url: str, manage_token: str, *, code: str = "") -> MessageData:
    lang = c.language
    # A message after the visit speaks of the visit itself: its row's
    # appointment_at is only its deadline.
    after_visit = c.kind in AFTER_VISIT_KINDS
    starts = c.booking_starts_at if after_visit else c.appointment_at
    ends = (
        c.booking_ends_at
        if c.booking_starts_at == starts
        else starts + timedelta(minutes=c.service_duration_minutes)
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
        starts_at=starts,
        ends_at=ends,
        reason=c.reason,
        base_url=base_url,
        sequence=c.id,
        manage_token=manage_token,
        code=code,
        draw_request=c.draw_entry_id is not None,
        alert=c.subscription_id is not None,
        mobile_day_id=c.mobile_day_id,
        days=c.days,
        booking_opens_at=c.booking_opens_at,
        pickup_from=c.pickup_from,
        pickup_until=c.pickup_until,
        pickup_by_appointment=c.pickup_by_appointment,
        waitlist=c.on_waitlist,
    )


async def send_message(
    ctx: dict[str, Any],
    outbox_id: int,
    turn: float | None = None,
    queued_at: datetime | None = None,
) -> str:
    """Claim, re-check, render, send, record.  Returns what happened.

    An SMS job starts shortly before its turn on the shared rate (`turn`,
    booked by the sweeper that queued it at `queued_at`), claims, re-checks
    and renders, then sends at the turn, through the gate; one that starts
    long after its turn, or that the gate holds back too long, sends nothing
    and gives its row back for a new turn ("late").  The re-check at the
    claim is the last word on the booking: between it and the provider call
    there is only a token insert, the rendering and the wait for the turn.
    A change to the booking after that point cannot stop a message already
    on its way.
    """
    state: WorkerState = ctx[STATE]
    if turn_stale(turn):
        async with state.pool.acquire() as conn:
            await outbox.hand_back(conn, outbox_id, queued_at)
        return "late"
    settings = state.settings
    now = state.clock()
    async with state.pool.acquire() as conn:
        claimed = await outbox.claim(conn, outbox_id, now, LEASE)
        if claimed is None:
            return "not_claimed"
        # This job's lines carry the id of the request that wrote the row
        # (arq runs each job in a task of its own, so it ends with the job).
        REQUEST_ID.set(claimed.request_id)
        reason = skip_reason(
            claimed.kind,
            booking_status=claimed.booking_status,
            booking_starts_at=claimed.booking_starts_at,
            appointment_at=claimed.appointment_at,
            now=now,
            file_state=claimed.file_state,
        )
        if reason is None and claimed.opted_out:
            reason = SKIP_OPTED_OUT
        if reason is None and claimed.kind == FEEDBACK:
            # Turned off from an earlier feedback form: a keyed hash of the
            # contact, never the contact itself, is what was kept.
            key = contact_hash(claimed.channel, claimed.recipient, settings.secret_key)  # type: ignore[arg-type]
            if await feedback_store.opted_out(conn, key):
                reason = SKIP_OPTED_OUT
        if reason is None and await _whatsapp_opted_out(conn, claimed, settings.secret_key):
            # STOP on WhatsApp: not sent, and what must still reach the
            # citizen goes by SMS or e-mail instead.
            async with conn.transaction():
                await delivery.skip_opted_out(conn, outbox_id, claimed.kind, now)
            reason = SKIP_WHATSAPP_OPTED_OUT
        elif reason is not None:
            await outbox.mark_skipped(conn, outbox_id, reason, now)
        if reason is not None:
            log.info("outbox %d %s skipped: %s", outbox_id, claimed.kind, reason)
            state.metrics.outbox_outcomes.labels(claimed.channel, "skipped").inc()
            return "skipped"
        held_back = await _per_number_cap(conn, claimed, settings, now)
        if held_back is not None:
            return held_back
        secret, data = await _secret_for(conn, claimed, settings, now)
        variables: dict[str, str] = {}
        try:
            if claimed.channel == "sms":
                sms = state.renderer.sms(data)
                text, segments, encoding = sms.body, sms.count.segments, sms.count.encoding
                email = None
            elif claimed.channel == "whatsapp":
                wa = state.renderer.whatsapp(data)
                text, segments, encoding, email = wa.body, None, None, None
                variables = wa.variables
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
    # Claimed and rendered ahead of its turn (TURN_EARLY), an SMS leaves at it.
    if turn is not None and not await wait_for_turn(state, ctx["redis"], turn, claimed.channel):
        async with state.pool.acquire() as conn:
            await outbox.release(conn, outbox_id, state.clock())
        return "late"
    # No connection is held from here until the provider has answered.
    try:
        if claimed.channel == "whatsapp":
            provider_id = await state.senders.whatsapp.send_whatsapp(
                claimed.recipient,
                claimed.kind,
                claimed.language,
                variables,
                status_callback=delivery.status_callback_url(settings.base_url, outbox_id),
            )
        elif email is None:
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
    now = state.clock()
    await record(
        state,
        outbox_id,
        lambda conn: outbox.mark_sent(
            conn,
            outbox_id,
            provider_id=provider_id,
            body=body,
            segments=segments,
            encoding=encoding,
            now=now,
        ),
    )
    log.info("outbox %d %s/%s sent", outbox_id, claimed.kind, claimed.channel)
    state.metrics.outbox_outcomes.labels(claimed.channel, "sent").inc()
    if segments:
        state.metrics.sms_segments.inc(segments)
    return "sent"


async def _secret_for(
    conn: asyncpg.Connection, claimed: Claimed, settings: Settings, now: datetime
) -> tuple[str, MessageData]:
    """The one secret a message carries, drawn now and recorded (as a hash)
    before it can leave: a code for a code message, else a manage token of
    its own (only hashes are stored, so the worker cannot re-create the one
    shown at booking)."""
    if claimed.kind == CODE:
        owner: Owner | None = (
            claimed.booking_id if claimed.booking_id is not None else claimed.draw_entry_id
        )
        if claimed.subscription_id is not None:
            owner = SubscriptionRef(claimed.subscription_id)
        assert owner is not None
        code = await verification.issue_code(conn, owner, settings.secret_key)
        return code, message_data(claimed, settings.base_url, "", code=code)
    token = new_manage_token()
    if claimed.subscription_id is not None:
        # An announcement: its subscription's page (stop, renew), with a
        # token of its own.
        await alert_store.add_token(
            conn, claimed.subscription_id, hash_token(token, settings.secret_key), claimed.id, now
        )
        return token, message_data(claimed, settings.base_url, token)
    if claimed.booking_id is None:
        # A draw request's message: its receipt's link, with a token of its own.
        assert claimed.draw_entry_id is not None
        await draw_store.add_token(
            conn, claimed.draw_entry_id, hash_token(token, settings.secret_key), claimed.id, now
        )
        return token, message_data(claimed, settings.base_url, token)
    await booking_store.add_manage_token(
        conn, claimed.booking_id, hash_token(token, settings.secret_key), claimed.id
    )
    return token, message_data(claimed, settings.base_url, token)


async def _whatsapp_opted_out(conn: asyncpg.Connection, c: Claimed, secret_key: str) -> bool:
    """Whether a WhatsApp message's number asked for no more (a keyed hash
    of it is what was kept)."""
    if c.channel != "whatsapp":
        return False
    return await outbox.whatsapp_opted_out(conn, contact_hash("whatsapp", c.recipient, secret_key))


# The window of the per-number SMS cap.
SMS_CAP_WINDOW = timedelta(hours=24)


async def _per_number_cap(
    conn: asyncpg.Connection, claimed: Claimed, settings: Settings, now: datetime
) -> str | None:
    """At most SMS_PER_NUMBER_PER_DAY SMS (codes aside: their own limits
    bound them) to one number in 24 hours, across bookings, and as many as
    WHATSAPP_PER_NUMBER_PER_DAY WhatsApp messages besides (each channel
    counts its own). Past it the message gives way to the e-mail the booking
    gets anyway, or waits for the window to move. None when it may go."""
    if claimed.channel not in TURN_CHANNELS or claimed.kind == CODE:
        return None
    sent, oldest = await outbox.sent_to(
        conn, claimed.channel, claimed.recipient, now - SMS_CAP_WINDOW, claimed.id
    )
    cap = (
        settings.whatsapp_per_number_per_day
        if claimed.channel == "whatsapp"
        else settings.sms_per_number_per_day
    )
    decision = sms_cap_decision(sent, oldest, cap, has_email=claimed.has_email, now=now)
    if decision is None:
        return None
    if decision == "email":
        await outbox.mark_skipped(conn, claimed.id, SKIP_SMS_CAP, now)
        log.info("outbox %d %s: number over its daily SMS, e-mail only", claimed.id, claimed.kind)
        return "skipped"
    await outbox.wait_until(conn, claimed.id, decision, SKIP_SMS_CAP, now)
    log.info("outbox %d %s: number over its daily SMS, waits", claimed.id, claimed.kind)
    return "held_back"


async def record(
    state: WorkerState,
    outbox_id: int,
    write: Callable[[asyncpg.Connection], Awaitable[T]],
    patience: float = RECORD_PATIENCE,
) -> T:
    """Write what the provider answered, waiting out a Postgres that does not
    answer for up to `patience` seconds.  Every such write is a no-op on a
    row no longer `sending`, so one that committed just before its
    connection died may be written again."""
    give_up = time.monotonic() + patience
    pause = RECORD_PAUSE
    while True:
        try:
            async with state.pool.acquire() as conn:
                return await write(conn)
        except Exception as exc:
            if not (isinstance(exc, DATABASE_DOWN) or unavailable(exc)):
                raise
            if time.monotonic() + pause > give_up:
                raise
            if pause == RECORD_PAUSE:
                log.warning(
                    "outbox %d: Postgres unavailable (%s) to record the provider's answer;"
                    " waiting for it",
                    outbox_id,
                    type(exc).__name__,
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)


async def _give_up(
    state: WorkerState,
    c: Claimed,
    code: str | None,
    reason: str,
    now: datetime,
    body: str | None = None,
    segments: int | None = None,
) -> None:
    async def write(conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            await delivery.give_up(
                conn,
                c.id,
                channel=c.channel,
                code=code,
                reason=reason,
                now=now,
                secret_key=state.settings.secret_key,
                body=body,
                segments=segments,
            )

    await record(state, c.id, write)


async def _temporary(state: WorkerState, c: Claimed, exc: TemporaryError) -> str:
    now = state.clock()
    state.metrics.provider_errors.labels(c.channel, exc.code).inc()
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
    if at is None:
        await _give_up(state, c, exc.code, "retries_exhausted", now)
        log.warning("outbox %d %s/%s gave up: %s", c.id, c.kind, c.channel, exc.code)
        state.metrics.outbox_outcomes.labels(c.channel, "failed").inc()
        return "failed"
    await record(
        state,
        c.id,
        lambda conn: outbox.retry_later(
            conn,
            c.id,
            send_at=at,
            code=exc.code,
            reason="rate_limited" if exc.rate_limited else "temporary_error",
            rate_limited=exc.rate_limited,
            now=now,
        ),
    )
    log.info("outbox %d %s/%s will retry: %s", c.id, c.kind, c.channel, exc.code)
    state.metrics.outbox_outcomes.labels(c.channel, "retry").inc()
    return "retry"


async def _permanent(
    state: WorkerState, c: Claimed, code: str, body: str, segments: int | None
) -> str:
    state.metrics.provider_errors.labels(c.channel, code).inc()
    state.metrics.outbox_outcomes.labels(c.channel, "failed").inc()
    await _give_up(state, c, code, "permanent_error", state.clock(), body, segments)
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


async def anonymise_expired(ctx: dict[str, Any]) -> int:
    """Daily: remove the personal data of bookings whose appointment is more
    than RETENTION_DAYS old (service.personal_data)."""
    state: WorkerState = ctx[STATE]
    done = await personal_data.anonymise_expired(
        state.pool, state.clock(), state.settings.retention_days
    )
    log.info("bookings anonymised: %d", done)
    return done


async def remind_uncollected(ctx: dict[str, Any]) -> int:
    """Hourly: the one reminder of each document ready for
    DOCUMENT_REMINDER_DAYS and not collected (service.office.documents)."""
    state: WorkerState = ctx[STATE]
    written = await documents.remind_uncollected(
        state.pool, state.clock(), state.settings.document_reminder_days
    )
    if written:
        log.info("uncollected document reminders: %d", written)
    return written


async def expire_holds(ctx: dict[str, Any]) -> int:
    """Every few seconds: holds whose time is up give their seat back (the
    pages and the API also release them before reading seats)."""
    state: WorkerState = ctx[STATE]
    async with state.pool.acquire() as conn:
        released = await bookings.release_expired_holds(
            conn, state.clock(), rules=bookings.Rules.of(state.settings)
        )
    if released:
        log.info("holds expired: %d", released)
    return released
