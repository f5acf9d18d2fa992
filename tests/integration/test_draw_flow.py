"""Fair allocation on the real database: a window, requests, the draw at the
close, offers as held bookings with their outbox rows, expiry passing the
seat on, the waiting list taking freed seats, and the published record."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import date, datetime, timedelta

import asyncpg
import pytest

from service import bookings, draw, personal_data, verification
from service.config import Settings
from service.domain import draw as rules
from service.domain.booking import hash_token
from service.domain.errors import Conflict, Refusal, ValidationFailed
from service.domain.validation import RawDetails
from service.store import bookings as booking_store
from service.store import draws as store
from service.store.audit import Actor
from tests.clock import FakeClock
from tests.codesink import code_for, send_codes

OFFICE, SERVICE = "consulate-paris", "legalization"
# Demo slots exist for the next 60 days; the period is a week of them.
FIRST, LAST = date(2027, 2, 15), date(2027, 2, 19)
STAFF = Actor("staff", "manager")


def plan(clock: FakeClock) -> rules.WindowPlan:
    return rules.WindowPlan(clock(), clock() + timedelta(days=7), FIRST, LAST)


async def draw_service(pool: asyncpg.Pool, clock: FakeClock, *, capacity: int | None = None) -> int:
    await draw.set_mode(pool, OFFICE, SERVICE, "draw", clock())
    if capacity is not None:
        # A scarce period: `capacity` seats in all, on its first morning slots.
        async with pool.acquire() as conn:
            await conn.execute(
                """UPDATE slots SET capacity = 0
                   WHERE office_id = $1 AND service_id = $2 AND starts_at >= $3""",
                OFFICE, SERVICE, datetime(2027, 2, 14, tzinfo=clock().tzinfo),
            )  # fmt: skip
            await conn.execute(
                """UPDATE slots SET capacity = 1 WHERE id IN (
                       SELECT id FROM slots WHERE office_id = $1 AND service_id = $2
                         AND starts_at >= $3 ORDER BY starts_at LIMIT $4)""",
                OFFICE, SERVICE, datetime(2027, 2, 15, tzinfo=clock().tzinfo), capacity,
            )  # fmt: skip
    window = await draw.open_window(
        pool, OFFICE, SERVICE, plan(clock), created_by="manager", now=clock()
    )
    return window.id


def person(n: int, language: str = "fr") -> RawDetails:
    # Names are letters only: "Citoyen Ba", "Citoyen Ca", ...
    letter = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[n % 26] + "abcdefghij"[n // 26 % 10]
    return RawDetails(name=f"Citoyen {letter}", email=f"person{n}@example.org", language=language)


async def ask(pool: asyncpg.Pool, settings: Settings, clock: FakeClock, window_id: int, n: int,
              actor: Actor = STAFF) -> str:  # fmt: skip
    receipt = await draw.request(
        pool, window_id, person(n), [FIRST, LAST], ["morning", "afternoon"],
        secret_key=settings.secret_key, now=clock(), actor=actor,
    )  # fmt: skip
    return receipt.entry_id


async def tick(pool: asyncpg.Pool, settings: Settings, clock: FakeClock) -> draw.Tick:
    return await draw.tick(pool, clock(), offer_hours=48, secret_key=settings.secret_key)


async def test_a_window_publishes_its_seed_hash_then_entries_then_seed_and_ranking(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    window_id = await draw_service(pool, clock, capacity=3)
    opened = await draw.published(pool, window_id)
    assert opened["state"] == "open" and "entries" not in opened and "seed" not in opened
    ids = [await ask(pool, settings, clock, window_id, n) for n in range(8)]
    assert all(rules.is_entry_id(i) for i in ids)
    assert (await tick(pool, settings, clock)).drawn == 0  # not closed yet
    clock.advance(timedelta(days=7))
    done = await tick(pool, settings, clock)
    assert done.drawn == 1 and done.offers == 3
    doc = await draw.published(pool, window_id)
    seed = bytes.fromhex(str(doc["seed"]))
    # The rule, recomputed here from what was published.
    assert hashlib.sha256(seed).hexdigest() == opened["seed_sha256"] == doc["seed_sha256"]
    assert doc["entries"] == sorted(ids)
    assert doc["entries_sha256"] == hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()
    ranked = sorted(ids, key=lambda i: hashlib.sha256(seed + i.encode()).hexdigest())
    ranking = doc["ranking"]
    assert isinstance(ranking, list)
    assert [r["entry"] for r in ranking] == ranked
    assert [r["outcome"] for r in ranking] == ["offered"] * 3 + ["waiting"] * 5
    assert rules.verify(doc) == []
    # No personal data in the record.
    assert "Citoyen" not in repr(doc) and "example.org" not in repr(doc)
    # Entries cannot be added after the close, whoever asks.
    with pytest.raises(Conflict) as refused:
        await ask(pool, settings, clock, window_id, 99)
    assert refused.value.code == "window_closed"
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                """INSERT INTO draw_entries (id, window_id, citizen_name, email, language, days,
                                             parts, created_by, created_at)
                   VALUES ($1, $2, 'X', 'x@example.org', 'fr', '{2027-02-15}', '{morning}',
                           'citizen', $3)""",
                rules.new_entry_id(), window_id, clock() - timedelta(days=1),
            )  # fmt: skip
    # Running the cron again changes nothing.
    again = await tick(pool, settings, clock)
    assert (again.drawn, again.offers) == (0, 0)
    assert await draw.published(pool, window_id) == doc


async def test_one_request_per_person_and_a_proved_contact_for_citizens(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    window_id = await draw_service(pool, clock)
    await ask(pool, settings, clock, window_id, 1)
    with pytest.raises(Conflict) as refused:
        await ask(pool, settings, clock, window_id, 1)
    assert refused.value.code == "already_requested"
    # The same address written otherwise is the same mailbox.
    with pytest.raises(Conflict):
        await draw.request(
            pool, window_id, RawDetails(name="Autre", email="Person1+x@Example.org", language="fr"),
            [FIRST], ["morning"], secret_key=settings.secret_key, now=clock(), actor=STAFF,
        )  # fmt: skip
    # A citizen whose contact was proved lately needs no new code.
    async with pool.acquire() as conn:
        await verification.remember(
            conn, "email", "person2@example.org", settings.secret_key, clock()
        )
    assert rules.is_entry_id(await ask(pool, settings, clock, window_id, 2, actor=Actor("citizen")))
    with pytest.raises(ValidationFailed):
        await draw.request(
            pool, window_id, person(3), [date(2027, 3, 1)], ["morning"],
            secret_key=settings.secret_key, now=clock(), actor=STAFF,
        )  # fmt: skip


async def test_a_draw_service_is_not_bookable_directly(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    await draw.set_mode(pool, OFFICE, SERVICE, "draw", clock())
    async with pool.acquire() as conn:
        slot_id = await conn.fetchval(
            """SELECT id FROM slots WHERE office_id = $1 AND service_id = $2
               AND starts_at > $3::timestamptz + interval '1 day' AND taken < capacity
               ORDER BY starts_at LIMIT 1""",
            OFFICE, SERVICE, clock(),
        )  # fmt: skip
    with pytest.raises(Conflict) as refused:
        await bookings.book(
            pool, slot_id=slot_id, service_id=SERVICE, details=person(5),
            secret_key=settings.secret_key, now=clock(), actor=STAFF,
        )  # fmt: skip
    assert refused.value.code == "draw_only"
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM bookings WHERE slot_id = $1", slot_id) == 0
        assert await conn.fetchval("SELECT taken FROM slots WHERE id = $1", slot_id) == 0


async def test_bookings_made_before_a_switch_to_draw_stay_and_cancel_but_do_not_move(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    async with pool.acquire() as conn:
        first, other = await conn.fetchval(
            """SELECT array_agg(id) FROM (
                   SELECT id FROM slots WHERE office_id = $1 AND service_id = $2
                     AND starts_at > $3::timestamptz + interval '1 day' AND taken = 0
                   ORDER BY starts_at LIMIT 2) s""",
            OFFICE, SERVICE, clock(),
        )  # fmt: skip
    booked = await bookings.book(
        pool, slot_id=first, service_id=SERVICE, details=person(7),
        secret_key=settings.secret_key, now=clock(), actor=STAFF,
    )  # fmt: skip
    reference = booked.booking.reference
    await draw.set_mode(pool, OFFICE, SERVICE, "draw", clock())
    # A move would take another seat, which is the draw's now.
    with pytest.raises(Conflict) as refused:
        await bookings.reschedule(
            pool, reference, None, settings.secret_key, other, clock(), actor=STAFF
        )
    assert refused.value.code == "draw_only"
    async with pool.acquire() as conn:
        kept = await conn.fetchrow(
            "SELECT slot_id, status FROM bookings WHERE reference = $1", reference
        )
        assert (kept["slot_id"], kept["status"]) == (first, "confirmed")
        taken = dict(
            await conn.fetch("SELECT id, taken FROM slots WHERE id = ANY($1)", [first, other])
        )
        assert taken == {first: 1, other: 0}
    await bookings.cancel(pool, reference, booked.manage_token, settings.secret_key, clock())
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT status FROM bookings WHERE reference = $1", reference)
            == "cancelled"
        )


async def offer_token(pool: asyncpg.Pool, settings: Settings, reference: str) -> str:
    """The token an offer message would carry (the worker issues one per message)."""
    token = secrets.token_urlsafe(32)
    async with pool.acquire() as conn:
        booking_id, outbox_id = await conn.fetchrow(
            """SELECT b.id, o.id FROM bookings b JOIN outbox o ON o.booking_id = b.id
               WHERE b.reference = $1 AND o.kind = 'draw_offer' LIMIT 1""",
            reference,
        )
        await booking_store.add_manage_token(
            conn, booking_id, hash_token(token, settings.secret_key), outbox_id
        )
    return token


async def offers(pool: asyncpg.Pool, window_id: int) -> dict[str, str]:
    """Entry id -> booking reference of the open offers."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT e.id, b.reference FROM draw_entries e JOIN bookings b ON b.id = e.booking_id
               WHERE e.window_id = $1 AND e.outcome = 'offered'""",
            window_id,
        )
    return {r["id"]: r["reference"] for r in rows}


async def test_offers_pass_on_in_drawn_order_and_freed_seats_go_to_the_list(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    window_id = await draw_service(pool, clock, capacity=2)
    for n in range(6):
        await ask(pool, settings, clock, window_id, n)
    clock.advance(timedelta(days=7))
    await tick(pool, settings, clock)
    doc = await draw.published(pool, window_id)
    order = [r["entry"] for r in doc["ranking"]]  # type: ignore[union-attr]
    first = await offers(pool, window_id)
    assert set(first) == set(order[:2])
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT kind, channel, reason, language FROM outbox WHERE kind = 'draw_offer'"
        )
    assert len(rows) == 2 and {r["channel"] for r in rows} == {"email"}
    assert {r["language"] for r in rows} == {"fr"}
    # The four not served hear it once, each with their place on the list.
    await tick(pool, settings, clock)
    async with pool.acquire() as conn:
        told = await conn.fetch(
            """SELECT draw_entry_id, reason, channel FROM outbox
               WHERE kind = 'draw_not_served' ORDER BY reason"""
        )
    assert [(r["draw_entry_id"], r["reason"]) for r in told] == [
        (order[n], str(n + 1)) for n in range(2, 6)
    ]
    kept = await send_codes(pool, settings, clock, "draw_not_served")
    assert len(kept.emails) == 4
    assert all("liste d’attente" in str(m["Subject"]) for m in kept.emails)
    assert not [m for m in kept.emails if list(m.iter_attachments())]
    # Each carries its receipt's link, with a token of its own that opens it
    # (and only its own request); the stored body keeps no token.
    for message in kept.emails:
        body = message.get_body(("plain",))
        assert body is not None
        link = re.search(r"/r/([0-9a-f]{32})/([\w-]+)", body.get_content())
        assert link
        seen = await draw.view_request(pool, link[1], link[2], settings.secret_key, clock())
        assert seen.entry.id == link[1]
        other = next(e for e in order[2:] if e != link[1])
        with pytest.raises(Refusal):
            await draw.view_request(pool, other, link[2], settings.secret_key, clock())
    async with pool.acquire() as conn:
        bodies = await conn.fetch("SELECT body FROM outbox WHERE kind = 'draw_not_served'")
    assert all("[token]" in r["body"] for r in bodies)
    # The first accepts; the second declines: the third in order is offered.
    ref0, ref1 = first[order[0]], first[order[1]]
    accepted = await draw.answer_offer(
        pool, ref0, await offer_token(pool, settings, ref0), True,
        secret_key=settings.secret_key, now=clock(),
    )  # fmt: skip
    assert accepted.outcome == "confirmed"
    with pytest.raises(Conflict):
        await draw.answer_offer(
            pool, ref0, await offer_token(pool, settings, ref0), False,
            secret_key=settings.secret_key, now=clock(),
        )  # fmt: skip
    await draw.answer_offer(
        pool, ref1, await offer_token(pool, settings, ref1), False,
        secret_key=settings.secret_key, now=clock(),
    )  # fmt: skip
    await tick(pool, settings, clock)
    assert set(await offers(pool, window_id)) == {order[2]}
    # Nobody answers within 48 hours: the offer passes on to the fourth.
    clock.advance(timedelta(hours=48))
    await tick(pool, settings, clock)
    assert set(await offers(pool, window_id)) == {order[3]}
    # The confirmed booking is cancelled: its seat goes to the fifth, not back on sale.
    await bookings.cancel(
        pool, ref0, await offer_token(pool, settings, ref0), settings.secret_key, clock()
    )
    await tick(pool, settings, clock)
    assert set(await offers(pool, window_id)) == {order[3], order[4]}
    doc = await draw.published(pool, window_id)
    outcomes = {r["entry"]: r["outcome"] for r in doc["ranking"]}  # type: ignore[union-attr]
    assert [outcomes[e] for e in order] == [
        "confirmed",
        "declined",
        "expired",
        "offered",
        "offered",
        "waiting",
    ]
    assert rules.verify(doc) == []
    # A slot never holds more than its capacity.
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM slots WHERE taken > capacity") == 0


async def counted(pool: asyncpg.Pool, window_id: int) -> set[str]:
    async with pool.acquire() as conn:
        return set(await store.entry_ids(conn, window_id))


async def test_a_citizens_request_counts_once_its_code_comes_back_and_can_be_withdrawn(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    window_id = await draw_service(pool, clock)
    citizen = Actor("citizen")
    receipt = await draw.request(
        pool, window_id, person(1), [FIRST], ["morning"], secret_key=settings.secret_key,
        now=clock(), actor=citizen,
    )  # fmt: skip
    assert receipt.pending and receipt.token
    assert await counted(pool, window_id) == set()
    seen = await draw.view_request(pool, receipt.entry_id, receipt.token, settings.secret_key,
                                   clock())  # fmt: skip
    assert seen.code is not None and seen.code.channel == "email"
    assert seen.code.destination == "person1@example.org"
    # The code travels through the worker's own send path, in the entry's language.
    code = await code_for(pool, settings, clock, "person1@example.org")
    async with pool.acquire() as conn:
        stored = await conn.fetchrow(
            "SELECT booking_id, draw_entry_id, body, status FROM outbox WHERE kind = 'code'"
        )
    assert stored["booking_id"] is None and stored["draw_entry_id"] == receipt.entry_id
    assert stored["status"] == "sent" and code not in stored["body"]
    assert "tirage au sort" in stored["body"]
    # Another person's link, or a wrong token, opens nothing.
    with pytest.raises(Refusal) as refused:
        await draw.view_request(pool, receipt.entry_id, "x" * 22, settings.secret_key, clock())
    assert refused.value.status == 401
    with pytest.raises(ValidationFailed):
        await draw.verify_request(
            pool, receipt.entry_id, receipt.token, "000000" if code != "000000" else "111111",
            settings.secret_key, clock(),
        )  # fmt: skip
    proved = await draw.verify_request(
        pool, receipt.entry_id, receipt.token, code, settings.secret_key, clock()
    )
    assert proved.code is None and proved.entry.verified_at == clock()
    assert await counted(pool, window_id) == {receipt.entry_id}
    # The proved address is remembered: a later request needs no code.
    # One whose code never comes back lapses and frees its identity.
    other = await draw.request(
        pool, window_id, person(2), [FIRST], ["morning"], secret_key=settings.secret_key,
        now=clock(), actor=citizen,
    )  # fmt: skip
    assert other.pending
    with pytest.raises(Conflict):
        await draw.request(
            pool, window_id, person(2), [FIRST], ["morning"], secret_key=settings.secret_key,
            now=clock(), actor=citizen,
        )  # fmt: skip
    clock.advance(timedelta(minutes=11))
    with pytest.raises(Conflict) as refused:
        await draw.verify_request(
            pool, other.entry_id, other.token, "123456", settings.secret_key, clock()
        )
    assert refused.value.code == "request_lapsed"
    again = await draw.request(
        pool, window_id, person(2), [FIRST], ["morning"], secret_key=settings.secret_key,
        now=clock(), actor=citizen,
    )  # fmt: skip
    assert again.pending and again.entry_id != other.entry_id
    # Withdrawn before the close: not in the draw.
    left = await draw.withdraw(pool, receipt.entry_id, receipt.token, settings.secret_key)
    assert left.entry.outcome == "withdrawn"
    assert await counted(pool, window_id) == set()
    # A request still waiting for its code at the close stays out of the draw.
    staff_entry = await ask(pool, settings, clock, window_id, 5)
    clock.advance(timedelta(days=7))
    await tick(pool, settings, clock)
    doc = await draw.published(pool, window_id)
    assert doc["entries"] == [staff_entry]
    assert rules.verify(doc) == []
    async with pool.acquire() as conn:
        assert await conn.fetchval(
            "SELECT outcome FROM draw_entries WHERE id = $1", again.entry_id
        ) == "lapsed"


async def test_retention_anonymises_requests_but_keeps_the_public_record(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    window_id = await draw_service(pool, clock, capacity=1)
    ids = [await ask(pool, settings, clock, window_id, n) for n in range(3)]
    clock.advance(timedelta(days=7))
    await tick(pool, settings, clock)
    before = await draw.published(pool, window_id)
    # Not yet: the period ended less than the retention ago.
    await personal_data.anonymise_expired(pool, clock(), 30)
    async with pool.acquire() as conn:
        assert await conn.fetchval(
            "SELECT count(*) FROM draw_entries WHERE anonymised_at IS NULL"
        ) == 3
    clock.advance(timedelta(days=60))
    await personal_data.anonymise_expired(pool, clock(), 30)
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT citizen_name, phone, email, document_number, email_hash, anonymised_at
               FROM draw_entries"""
        )
        kept = await conn.fetch(
            "SELECT recipient, body FROM outbox WHERE draw_entry_id IS NOT NULL"
        )
    assert all(r["anonymised_at"] is not None for r in rows)
    personal = ("email", "phone", "document_number", "email_hash")
    assert not any(r[field] for r in rows for field in personal)
    assert "Citoyen" not in repr(rows) and all(r["recipient"] == "" for r in kept)
    # The public record is the same: ids, ranking, outcomes.
    assert await draw.published(pool, window_id) == before
    assert sorted(ids) == before["entries"]
