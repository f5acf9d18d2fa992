"""Citizen use cases of feedback after the visit: open the form, answer it
once, turn these messages off.  The form's link carries the manage token of
its message, like the manage page's; a wrong one and an unknown reference
look alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from service import bookings
from service.domain import errors
from service.domain.errors import N_
from service.domain.feedback import Answer, parse_answer, scrub_comment
from service.domain.messages import contact_channels
from service.domain.verification import contact_hash
from service.store import bookings as booking_store
from service.store import feedback as feedback_store


@dataclass(frozen=True, slots=True)
class FeedbackForm:
    context: bookings.BookingContext
    # Whether this booking's answer is already recorded.
    given: bool


def already_given() -> errors.Conflict:
    return errors.Conflict(
        "feedback_given", N_("Your opinion of this visit is already recorded. Thank you.")
    )


def not_done() -> errors.Conflict:
    return errors.Conflict("not_done", N_("The form opens once your visit is over."))


async def _open(
    conn: asyncpg.Connection, reference: str, token: str, secret_key: str
) -> bookings.BookingContext:
    try:
        await bookings.authorise(conn, reference, token, secret_key)
    except errors.Refusal:
        raise errors.booking_not_found() from None
    booking = await booking_store.by_reference(conn, reference)
    assert booking is not None
    return await bookings.booking_context(conn, booking)


async def open_form(
    pool: asyncpg.Pool, reference: str, token: str, secret_key: str
) -> FeedbackForm:
    async with pool.acquire() as conn:
        ctx = await _open(conn, reference, token, secret_key)
        return FeedbackForm(ctx, await feedback_store.given(conn, ctx.booking.id))


async def answer(
    pool: asyncpg.Pool,
    reference: str,
    token: str,
    secret_key: str,
    raw: tuple[object, object, object],
    now: datetime,
) -> Answer:
    """Record the answer once; a second is refused (409), whatever the
    timing of the two (the table's key decides)."""
    parsed = parse_answer(*raw)
    async with pool.acquire() as conn:
        ctx = await _open(conn, reference, token, secret_key)
        b = ctx.booking
        if b.status != "done":
            raise not_done()
        comment = parsed.comment and scrub_comment(
            parsed.comment, (b.citizen_name, b.phone, b.email, b.document_number)
        )
        kept = Answer(parsed.rating, parsed.came_back, comment or None)
        if not await feedback_store.record(conn, b.id, kept, language=b.language, now=now):
            raise already_given()
    return kept


async def stop_messages(
    pool: asyncpg.Pool, reference: str, token: str, secret_key: str, now: datetime
) -> None:
    """No more feedback messages to this booking's phone and address, for
    this booking or any later one; its messages still waiting are skipped
    when due (the worker checks the same hashes)."""
    async with pool.acquire() as conn:
        ctx = await _open(conn, reference, token, secret_key)
        b = ctx.booking
        hashes = [
            contact_hash(channel, to, secret_key)
            for channel, to in contact_channels(b.phone, b.email)
        ]
        await feedback_store.opt_out(conn, hashes, now)
