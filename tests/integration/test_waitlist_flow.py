"""The waiting list of an instant service on the real database: a freed seat
goes to the first suitable entry as an offer (a held booking, out of public
availability), passes on when declined or left to expire, goes back on sale
when nobody suits; one open place per identity, refused by the database;
leaving by link; and seats freed at the same moment, which never give one
identity two offers nor a slot more than its capacity."""

from __future__ import annotations

import asyncio
import re
import secrets
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from service import bookings, draw, offers, personal_data, waitlist
from service.config import Settings
from service.domain import draw as draw_rules
from service.domain.booking import Status, hash_token
from service.domain.errors import Conflict, ValidationFailed
from service.domain.messages import WAITLIST_OFFER
from service.domain.validation import RawDetails
from service.offers import ListRules
from service.store import bookings as booking_store
from service.store import draws as draw_store
from service.store import schedule as schedule_store
from service.store import slots as slot_store
from service.store.audit import Actor
from tests.clock import FakeClock
from tests.codesink import send_codes
from tests.fixtures.app import prove_contacts

OFFICE, SERVICE = "consulate-paris", "legalization"
# Another instant service of the office (it asks for a document).
OTHER = "consular-registration"
STAFF = Actor("staff", "agent")
CITIZEN = Actor("citizen")
# Wednesday 3 and Thursday 4 February 2027, in Paris (the clock: Monday 1st).
WED, THU = date(2027, 2, 3), date(2027, 2, 4)
# 09:00 and 14:00 in Paris (UTC+1).
WED_MORNING = datetime(2027, 2, 3, 8, 0, tzinfo=UTC)
WED_AFTERNOON = datetime(2027, 2, 3, 13, 0, tzinfo=UTC)
THU_MORNING = datetime(2027, 2, 4, 8, 0, tzinfo=UTC)


def rules_of(settings: Settings, **changes: object) -> bookings.Rules:
    return bookings.Rules.of(settings.with_(**changes))


async def scarce(pool: asyncpg.Pool, service: str, *starts: datetime) -> list[int]:
    """Only the slots starting at `starts` have a seat (one each), and every
    one of them is booked (at the counter)."""
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE slots SET capacity = 0 WHERE office_id = $1 AND service_id = $2",
            OFFICE,
            service,
        )
        ids = [
            await conn.fetchval(
                """UPDATE slots SET capacity = 1 WHERE office_id = $1 AND service_id = $2
                   AND starts_at = $3 RETURNING id""",
                OFFICE,
                service,
                at,
            )
            for at in starts
        ]
    assert all(ids)
    return ids


def person(n: int, language: str = "fr", **more: object) -> RawDetails:
    letter = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[n % 26]
    return RawDetails(
        name=f"Personne {letter}", email=f"wait{n}@example.org", language=language, **more
    )  # type: ignore[arg-type]


async def book(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock, slot_id: int, n: int,
    service: str = SERVICE,
) -> bookings.Booked:  # fmt: skip
    details = person(100 + n, document_number=f"BK{n:06d}")
    return await bookings.book(
        pool, slot_id=slot_id, service_id=service, details=details,
        secret_key=settings.secret_key, now=clock(), actor=STAFF,
    )  # fmt: skip


async def join(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock, n: int, days: list[date],
    parts: tuple[str, ...] = ("morning", "afternoon"), *, service: str = SERVICE,
    actor: Actor = STAFF, details: RawDetails | None = None, **rules: object,
) -> draw.Receipt:  # fmt: skip
    return await waitlist.join(
        pool, OFFICE, service, details or person(n), days, list(parts),
        secret_key=settings.secret_key, now=clock(), actor=actor,
        rules_=rules_of(settings, **rules),
    )  # fmt: skip


async def entry(pool: asyncpg.Pool, entry_id: str) -> asyncpg.Record:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            """SELECT e.outcome, e.offer_expires_at, b.reference, b.status, b.slot_id,
                      b.hold_expires_at, b.created_by
               FROM draw_entries e LEFT JOIN bookings b ON b.id = e.booking_id
               WHERE e.id = $1""",
            entry_id,
        )
    assert row is not None
    return row


async def free_seats(pool: asyncpg.Pool, clock: FakeClock, service: str = SERVICE) -> list[int]:
    """The slots the public can book now (what availability shows)."""
    async with pool.acquire() as conn:
        found = await slot_store.available(
            conn, OFFICE, service, clock(), clock() + timedelta(days=30),
            clock(), clock() + timedelta(days=60),
        )  # fmt: skip
    return [slot.id for slot in found]


async def offer_token(pool: asyncpg.Pool, settings: Settings, reference: str) -> str:
    """The token a waiting list's offer message would carry."""
    token = secrets.token_urlsafe(32)
    async with pool.acquire() as conn:
        booking_id, outbox_id = await conn.fetchrow(
            """SELECT b.id, o.id FROM bookings b JOIN outbox o ON o.booking_id = b.id
               WHERE b.reference = $1 AND o.kind = 'waitlist_offer' LIMIT 1""",
            reference,
        )
        await booking_store.add_manage_token(
            conn, booking_id, hash_token(token, settings.secret_key), outbox_id
        )
    return token


async def cancel(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock, booked: bookings.Booked,
    **rules: object,
) -> None:  # fmt: skip
    await bookings.cancel(
        pool, booked.booking.reference, booked.manage_token, settings.secret_key, clock(),
        rules=rules_of(settings, **rules),
    )  # fmt: skip


async def test_a_freed_seat_is_offered_to_the_first_suitable_entry_and_leaves_availability(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    [slot] = await scarce(pool, SERVICE, WED_MORNING)
    booked = await book(pool, settings, clock, slot, 0)
    other_day = await join(pool, settings, clock, 1, [THU])
    afternoons = await join(pool, settings, clock, 2, [WED], ("afternoon",))
    first = await join(pool, settings, clock, 3, [WED, THU], ("morning",), details=person(3, "ar"))
    second = await join(pool, settings, clock, 4, [WED])
    assert await free_seats(pool, clock) == []
    clock.advance(timedelta(minutes=5))
    await cancel(pool, settings, clock, booked)
    offered = await entry(pool, first.entry_id)
    assert offered["outcome"] == "offered" and offered["status"] == "held"
    assert offered["slot_id"] == slot and offered["created_by"] == "staff:agent"
    # Two hours to answer, and the hold is the offer's time.
    assert offered["offer_expires_at"] == clock() + timedelta(hours=2)
    assert offered["hold_expires_at"] == offered["offer_expires_at"]
    for other in (other_day, afternoons, second):
        assert (await entry(pool, other.entry_id))["outcome"] == "waiting"
    # The seat is held: the public does not see it, a booking cannot take it.
    assert await free_seats(pool, clock) == []
    with pytest.raises(Conflict):
        await book(pool, settings, clock, slot, 9)
    # The offer message: now, in the entry's language, its expiry in `reason`.
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT channel, recipient, language, reason, send_at FROM outbox
               WHERE kind = 'waitlist_offer'"""
        )
    assert [(r["channel"], r["recipient"], r["language"]) for r in rows] == [
        ("email", "wait3@example.org", "ar")
    ]
    assert rows[0]["reason"] == offered["offer_expires_at"].isoformat()
    assert rows[0]["send_at"] == clock()
    kept = await send_codes(pool, settings, clock, "waitlist_offer")
    [mail] = kept.emails
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "لائحة الانتظار" in text and f"/d/{offered['reference']}/" in text
    assert not list(mail.iter_attachments())
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM slots WHERE taken > capacity") == 0


async def test_decline_and_expiry_pass_the_seat_on_and_accepting_books_it(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    [slot] = await scarce(pool, SERVICE, WED_MORNING)
    booked = await book(pool, settings, clock, slot, 0)
    a, b, c, d = [await join(pool, settings, clock, n, [WED]) for n in range(4)]
    await cancel(pool, settings, clock, booked)
    ref_a = (await entry(pool, a.entry_id))["reference"]
    # A declines: B is offered the same seat at once.
    declined = await draw.answer_offer(
        pool, ref_a, await offer_token(pool, settings, ref_a), False,
        secret_key=settings.secret_key, now=clock(), rules_=rules_of(settings),
    )  # fmt: skip
    assert declined.outcome == "declined" and declined.on_list
    seen_b = await entry(pool, b.entry_id)
    assert seen_b["outcome"] == "offered" and seen_b["slot_id"] == slot
    assert (await entry(pool, a.entry_id))["status"] == "cancelled"
    # B lets two hours pass: the hold expires (the worker's cron) and C is offered.
    clock.advance(timedelta(hours=2))
    async with pool.acquire() as conn:
        released = await bookings.release_expired_holds(conn, clock(), rules=rules_of(settings))
    assert released == 1
    assert (await entry(pool, b.entry_id))["outcome"] == "expired"
    seen_c = await entry(pool, c.entry_id)
    assert seen_c["outcome"] == "offered" and seen_c["slot_id"] == slot
    # C accepts: a confirmed booking of the seat, its confirmation on its way.
    ref_c = seen_c["reference"]
    accepted = await draw.answer_offer(
        pool, ref_c, await offer_token(pool, settings, ref_c), True,
        secret_key=settings.secret_key, now=clock(), rules_=rules_of(settings),
    )  # fmt: skip
    assert accepted.outcome == "confirmed"
    assert (await entry(pool, c.entry_id))["status"] == "confirmed"
    assert (await entry(pool, d.entry_id))["outcome"] == "waiting"
    async with pool.acquire() as conn:
        kinds = await conn.fetch(
            """SELECT o.kind FROM outbox o JOIN bookings b ON b.id = o.booking_id
               WHERE b.reference = $1 ORDER BY o.id""",
            ref_c,
        )
        assert [r["kind"] for r in kinds][:2] == ["waitlist_offer", "confirmation"]
        assert await conn.fetchval("SELECT taken FROM slots WHERE id = $1", slot) == 1
    # An answered offer is not answered twice.
    with pytest.raises(Conflict):
        await draw.answer_offer(
            pool, ref_c, await offer_token(pool, settings, ref_c), False,
            secret_key=settings.secret_key, now=clock(),
        )  # fmt: skip


async def test_a_seat_nobody_on_the_list_wants_goes_back_on_sale(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    wed, thu = await scarce(pool, SERVICE, WED_MORNING, THU_MORNING)
    booked_wed = await book(pool, settings, clock, wed, 0)
    booked_thu = await book(pool, settings, clock, thu, 1)
    only_afternoons = await join(pool, settings, clock, 1, [WED, THU], ("afternoon",))
    await cancel(pool, settings, clock, booked_wed)
    assert (await entry(pool, only_afternoons.entry_id))["outcome"] == "waiting"
    assert await free_seats(pool, clock) == [wed]
    # With the list turned off (WAITLIST_DAYS=0), a suitable entry gets nothing either.
    mornings = await join(pool, settings, clock, 2, [THU], ("morning",))
    await cancel(pool, settings, clock, booked_thu, waitlist_days=0)
    assert (await entry(pool, mornings.entry_id))["outcome"] == "waiting"
    assert await free_seats(pool, clock) == [wed, thu]


async def test_a_seat_past_the_lists_horizon_goes_back_on_sale(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    [slot] = await scarce(pool, SERVICE, THU_MORNING)
    booked = await book(pool, settings, clock, slot, 0)
    suitable = await join(pool, settings, clock, 1, [THU])
    # Thursday 09:00 is more than a day ahead: outside a one-day list.
    await cancel(pool, settings, clock, booked, waitlist_days=1)
    assert (await entry(pool, suitable.entry_id))["outcome"] == "waiting"
    assert await free_seats(pool, clock) == [slot]


async def test_a_second_open_place_of_one_identity_is_refused_by_the_database(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    first = await join(pool, settings, clock, 1, [WED])
    # The same address written otherwise, with another name: the same person.
    twin = RawDetails(name="Autre Nom", email="Wait1+x@Example.org", language="fr")
    with pytest.raises(Conflict) as refused:
        await join(pool, settings, clock, 1, [THU], details=twin)
    assert refused.value.code == "already_waiting"
    # Whatever statement tries: the unique index, not a check in Python.
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                """INSERT INTO draw_entries (id, office_id, service_id, email_hash, citizen_name,
                                             email, language, days, parts, created_by,
                                             created_at, verified_at)
                   SELECT $1, office_id, service_id, email_hash, 'X', email, 'fr', days, parts,
                          'citizen', $2, $2 FROM draw_entries WHERE id = $3""",
                draw_rules.new_entry_id(), clock(), first.entry_id,
            )  # fmt: skip
    # The same person on another service's list is another place.
    other = await join(pool, settings, clock, 1, [WED], service=OTHER,
                       details=person(1, document_number="AB123456"))  # fmt: skip
    assert other.entry_id != first.entry_id
    # Days outside the list's horizon are refused, and nothing is written.
    with pytest.raises(ValidationFailed):
        await join(pool, settings, clock, 5, [date(2027, 3, 30)])
    # Once left, the identity may join again.
    await draw.withdraw(pool, first.entry_id, first.token, settings.secret_key)
    again = await join(pool, settings, clock, 1, [THU], details=twin)
    assert (await entry(pool, again.entry_id))["outcome"] == "waiting"


async def test_leaving_by_the_receipts_link(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    [slot] = await scarce(pool, SERVICE, WED_MORNING)
    booked = await book(pool, settings, clock, slot, 0)
    await prove_contacts(pool, "wait1@example.org", secret_key=settings.secret_key, at=clock())
    receipt = await join(pool, settings, clock, 1, [WED], actor=CITIZEN)
    # A contact proved lately: on the list at once, with a receipt link.
    assert not receipt.pending and receipt.window is None
    seen = await draw.view_request(pool, receipt.entry_id, receipt.token, settings.secret_key,
                                   clock())  # fmt: skip
    assert seen.window is None and seen.entry.outcome == "waiting"
    # The token is stored as a keyed hash only.
    async with pool.acquire() as conn:
        stored = await conn.fetchval(
            "SELECT token_hash FROM draw_entries WHERE id = $1", receipt.entry_id
        )
    assert bytes(stored) == hash_token(receipt.token, settings.secret_key)
    assert receipt.token.encode() not in bytes(stored)
    left = await draw.withdraw(pool, receipt.entry_id, receipt.token, settings.secret_key)
    assert left.entry.outcome == "withdrawn"
    # A seat freed after that is not offered to them: back on sale.
    await cancel(pool, settings, clock, booked)
    assert await free_seats(pool, clock) == [slot]


async def test_a_citizens_place_counts_once_its_code_comes_back(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    [slot] = await scarce(pool, SERVICE, WED_MORNING)
    booked = await book(pool, settings, clock, slot, 0)
    receipt = await join(pool, settings, clock, 1, [WED], actor=CITIZEN)
    assert receipt.pending
    kept = await send_codes(pool, settings, clock)
    [mail] = kept.emails
    code = re.search(r"\d{6}", str(mail["Subject"]))
    assert code is not None
    assert "liste d'attente" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    # Unproved, it is offered nothing: the seat goes back on sale.
    await cancel(pool, settings, clock, booked)
    assert (await entry(pool, receipt.entry_id))["outcome"] == "waiting"
    booked = await book(pool, settings, clock, slot, 1)
    proved = await draw.verify_request(
        pool, receipt.entry_id, receipt.token, code[0], settings.secret_key, clock()
    )
    assert proved.entry.verified_at is not None and proved.code is None
    await cancel(pool, settings, clock, booked)
    assert (await entry(pool, receipt.entry_id))["outcome"] == "offered"


async def test_the_code_sms_of_a_place_on_the_list_counts_in_the_offices_statistics(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    by_sms = RawDetails(
        name="Nadia Ait", phone="+33612345678", email="nadia@example.org", language="fr"
    )
    receipt = await join(pool, settings, clock, 1, [WED], actor=CITIZEN, details=by_sms)
    assert receipt.pending
    kept = await send_codes(pool, settings, clock)
    [(to, _)] = kept.sms
    assert to == "+33612345678"
    async with pool.acquire() as conn:
        segments = await conn.fetchval(
            "SELECT segments FROM outbox WHERE draw_entry_id = $1 AND channel = 'sms'",
            receipt.entry_id,
        )
        week = (clock() - timedelta(days=1), clock() + timedelta(days=1))
        assert segments >= 1
        assert await schedule_store.sms_segments_sent(conn, OFFICE, *week) == segments
        assert await schedule_store.sms_segments_sent(conn, "consulate-brussels", *week) == 0


async def test_holds_expiring_and_office_cancellations_free_seats_for_the_list_too(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    wed, afternoon = await scarce(pool, SERVICE, WED_MORNING, WED_AFTERNOON)
    # A citizen's booking that waits for its code holds the seat ten minutes.
    held = await bookings.book(
        pool, slot_id=wed, service_id=SERVICE, details=person(50), secret_key=settings.secret_key,
        now=clock(),
    )  # fmt: skip
    assert held.booking.status == "held"
    by_office = await book(pool, settings, clock, afternoon, 1)
    first, second = [await join(pool, settings, clock, n, [WED]) for n in (2, 3)]
    clock.advance(timedelta(minutes=11))
    async with pool.acquire() as conn:
        await bookings.release_expired_holds(conn, clock(), rules=rules_of(settings))
        await bookings.set_status_by_office(
            conn, by_office.booking.reference, OFFICE, Status.CANCELLED, STAFF, clock(),
            "fermeture", rules=rules_of(settings),
        )  # fmt: skip
    assert (await entry(pool, first.entry_id))["slot_id"] == wed
    assert (await entry(pool, second.entry_id))["slot_id"] == afternoon


async def test_a_seat_that_no_longer_exists_is_offered_to_nobody(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    [slot] = await scarce(pool, SERVICE, WED_MORNING)
    booked = await book(pool, settings, clock, slot, 0)
    waiting = [await join(pool, settings, clock, n, [WED]) for n in range(3)]
    # The office closes the day: its slots lose their seats, then its
    # bookings are cancelled (service.office.changes).
    async with pool.acquire() as conn:
        await conn.execute("UPDATE slots SET capacity = 0 WHERE id = $1", slot)
        await bookings.set_status_by_office(
            conn, booked.booking.reference, OFFICE, Status.CANCELLED, STAFF, clock(),
            "fermeture exceptionnelle", rules=rules_of(settings),
        )  # fmt: skip
        assert await conn.fetchval(
            "SELECT count(*) FROM bookings WHERE slot_id = $1 AND status = 'held'", slot
        ) == 0
    assert [(await entry(pool, w.entry_id))["outcome"] for w in waiting] == ["waiting"] * 3


async def test_two_seats_freed_at_once_never_give_one_identity_two_offers(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    rounds = 4
    step = timedelta(minutes=30)
    seats = await scarce(
        pool,
        SERVICE,
        *(WED_MORNING + step * r for r in range(rounds)),
        *(WED_AFTERNOON + step * r for r in range(rounds)),
    )
    mornings, afternoons = seats[:rounds], seats[rounds:]
    others = await scarce(pool, OTHER, *(THU_MORNING + step * r for r in range(rounds)))
    for r in range(rounds):
        held = [
            await book(pool, settings, clock, mornings[r], 10 * r),
            await book(pool, settings, clock, afternoons[r], 10 * r + 1),
            await book(pool, settings, clock, others[r], 10 * r + 2, OTHER),
        ]
        # One person on both services' lists (one address), and one more on the first.
        same = person(60 + r, document_number=f"SM{r:06d}")
        on_first = await join(pool, settings, clock, 0, [WED], details=same)
        on_other = await join(pool, settings, clock, 0, [THU], service=OTHER, details=same)
        next_one = await join(pool, settings, clock, 70 + r, [WED])
        # Three seats freed at the same moment, each by its own transaction.
        await asyncio.gather(*(cancel(pool, settings, clock, booked) for booked in held))
        outcomes = [
            (await entry(pool, e.entry_id))["outcome"] for e in (on_first, on_other, next_one)
        ]
        # The person holds exactly one offer; the seat they could not take
        # went to the next entry or back on sale, never to a second offer.
        assert sorted(outcomes[:2]) == ["offered", "waiting"], outcomes
        assert outcomes[2] == "offered", outcomes
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM slots WHERE taken > capacity") == 0
            assert await conn.fetchval(
                """SELECT count(*) FROM bookings WHERE slot_id = ANY($1::bigint[])
                   AND status IN ('held', 'confirmed')""",
                [mornings[r], afternoons[r], others[r]],
            ) == 2
            # Who is left waiting leaves before the next round.
            await conn.execute(
                "UPDATE draw_entries SET outcome = 'withdrawn' WHERE outcome = 'waiting'"
            )


async def test_many_seats_freed_at_once_never_overbook(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    starts = [WED_MORNING + timedelta(minutes=10 * n) for n in range(6)]
    slots = await scarce(pool, SERVICE, *starts)
    held = [await book(pool, settings, clock, slot, n) for n, slot in enumerate(slots)]
    entries = [await join(pool, settings, clock, n, [WED]) for n in range(4)]
    await asyncio.gather(*(cancel(pool, settings, clock, b) for b in held))
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM slots WHERE taken > capacity") == 0
        offered = await conn.fetch(
            """SELECT e.id, b.slot_id FROM draw_entries e JOIN bookings b ON b.id = e.booking_id
               WHERE e.outcome = 'offered' AND b.status = 'held'"""
        )
    # Four entries, six seats: each entry one seat, each seat one entry; the
    # two left over are on sale.
    assert {r["id"] for r in offered} == {e.entry_id for e in entries}
    assert len({r["slot_id"] for r in offered}) == 4
    assert len(await free_seats(pool, clock)) == 2


async def test_places_lapse_when_their_days_are_past_and_retention_anonymises_them(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    kept = await join(pool, settings, clock, 1, [WED, THU])
    short = await join(pool, settings, clock, 2, [WED])
    clock.advance(timedelta(days=3))  # Thursday 4th, 10:00 UTC
    await draw.tick(pool, clock(), offer_hours=48, secret_key=settings.secret_key)
    assert (await entry(pool, short.entry_id))["outcome"] == "lapsed"
    assert (await entry(pool, kept.entry_id))["outcome"] == "waiting"
    clock.advance(timedelta(days=settings.retention_days + 2))
    await personal_data.anonymise_expired(pool, clock(), settings.retention_days)
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT email, email_hash, anonymised_at FROM draw_entries
               WHERE id = ANY($1::text[])""",
            [kept.entry_id, short.entry_id],
        )
    assert all(r["email"] is None and r["email_hash"] is None for r in rows)
    assert all(r["anonymised_at"] is not None for r in rows)


async def test_the_offer_goes_by_the_channel_the_citizen_chose_and_waits_out_the_night(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    [slot] = await scarce(pool, SERVICE, THU_MORNING)
    booked = await book(pool, settings, clock, slot, 0)
    whatsapp = RawDetails(
        name="Nadia Ait", phone="+33612345678", email="nadia@example.org", language="fr",
        channel="whatsapp",
    )  # fmt: skip
    chosen = await join(pool, settings, clock, 1, [THU], details=whatsapp)
    # Cancelled at 23:30 in Paris: the message waits for 08:00, the offer's
    # two hours count from then.
    clock.set(datetime(2027, 2, 1, 22, 30, tzinfo=UTC))
    await cancel(pool, settings, clock, booked)
    offered = await entry(pool, chosen.entry_id)
    morning = datetime(2027, 2, 2, 7, 0, tzinfo=UTC)
    assert offered["offer_expires_at"] == morning + timedelta(hours=2)
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT channel, send_at FROM outbox WHERE kind = 'waitlist_offer' ORDER BY channel"
        )
        booking_channel = await conn.fetchval(
            "SELECT message_channel FROM bookings WHERE reference = $1", offered["reference"]
        )
    assert [(r["channel"], r["send_at"]) for r in rows] == [
        ("email", morning),
        ("whatsapp", morning),
    ]
    assert booking_channel == "whatsapp"


async def test_a_switch_to_a_draw_between_reading_the_mode_and_holding_leaves_the_seat_be(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    [slot] = await scarce(pool, SERVICE, WED_MORNING)
    place = await join(pool, settings, clock, 1, [WED])
    async with pool.acquire() as conn:
        waiting = await draw_store.get_entry(conn, place.entry_id)
        assert waiting is not None
        # The manager's switch lands after seat_freed read the mode.
        await draw_store.set_mode(conn, OFFICE, SERVICE, draw_rules.Mode.DRAW)
        async with conn.transaction():
            held = await offers.hold(
                conn, waiting, slot, earliest=clock(), latest=clock() + timedelta(days=60),
                expires_at=clock() + timedelta(hours=2), kind=WAITLIST_OFFER,
                created_by=waiting.created_by, now=clock(),
            )  # fmt: skip
        assert held is offers.Hold.SEAT_GONE
        assert await conn.fetchval("SELECT taken FROM slots WHERE id = $1", slot) == 0
        assert await conn.fetchval("SELECT count(*) FROM bookings WHERE slot_id = $1", slot) == 0
    assert (await entry(pool, place.entry_id))["outcome"] == "waiting"


async def test_joining_is_refused_for_a_draw_service(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    await draw.set_mode(pool, OFFICE, SERVICE, "draw", clock())
    with pytest.raises(Conflict) as refused:
        await join(pool, settings, clock, 1, [WED])
    assert refused.value.code == "no_waiting_list"
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                """INSERT INTO draw_entries (id, office_id, service_id, citizen_name, email,
                                             language, days, parts, created_by, created_at,
                                             verified_at)
                   VALUES ($1, $2, $3, 'X', 'x@example.org', 'fr', '{2027-02-03}', '{morning}',
                           'citizen', $4, $4)""",
                draw_rules.new_entry_id(), OFFICE, SERVICE, clock(),
            )  # fmt: skip


def test_the_list_rules_come_from_the_settings(settings: Settings) -> None:
    rules = rules_of(settings, waitlist_days=21, waitlist_offer_hours=3)
    assert rules.waitlist == ListRules(days=21, offer_hours=3)
