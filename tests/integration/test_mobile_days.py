"""Mobile consular days: the Montreal consulate serving a day in Edmonton,
on Edmonton's clock and Alberta's holidays, from the same slot engine, seat
guards and message pipeline as the office itself."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from icalendar import Calendar

from service import bookings, mobile_alerts
from service.domain import errors
from service.domain.mobile_day import MobileDay, MobileHours
from service.domain.models import in_every_language
from service.domain.validation import RawDetails
from service.seed import seed_demo
from service.store import mobile_days as mobile_day_store
from service.store import offices as office_store
from service.store import slots as slot_store
from tests.clock import FIXED_NOW
from tests.fixtures.app import TEST_SECRET, any_document, prove_contacts
from tests.fixtures.notify import Env, outbox_rows, wait_for
from tests.fixtures.office import ADMIN, AGENT, MANAGER, Browser

EDMONTON = ZoneInfo("America/Edmonton")
OFFICE = "consulate-montreal"
VENUE = "Salle communautaire, 10050 rue Principale, Edmonton AB"
# Alberta's Family Day (third Monday of February); Quebec, whose holidays the
# Montreal consulate keeps, has none that day.
FAMILY_DAY = date(2027, 2, 15)
HELD_ON = date(2027, 2, 16)
OPENS = FIXED_NOW + timedelta(days=1)
PHONE = "+17804961234"


def edmonton_day() -> MobileDay:
    return MobileDay(
        id=0,
        office_id=OFFICE,
        town=in_every_language({"ar": "إدمونتون", "fr": "Edmonton", "en": "Edmonton"}),
        country="CA",
        address=VENUE,
        timezone="America/Edmonton",
        holiday_countries=("MA", "CA-AB"),
        booking_opens_at=OPENS,
        hours=(
            MobileHours(FAMILY_DAY, time(9), time(12), 1),
            MobileHours(HELD_ON, time(9), time(12), 1),
        ),
        service_ids=("cnie", "passport"),
    )


async def create(conn: asyncpg.Connection) -> MobileDay:
    office = await office_store.get_office(conn, OFFICE)
    assert office is not None
    async with conn.transaction():
        made = await mobile_day_store.create(conn, edmonton_day())
        await mobile_day_store.regenerate(conn, office, made, FIXED_NOW)
    return made


async def venue_slots(conn: asyncpg.Connection, made: MobileDay, service: str) -> list[datetime]:
    rows = await conn.fetch(
        """SELECT starts_at FROM slots WHERE mobile_day_id = $1 AND service_id = $2
           AND capacity > 0 ORDER BY starts_at""",
        made.id,
        service,
    )
    return [r["starts_at"] for r in rows]


def details(language: str = "fr", phone: str = PHONE, country: str = "CA") -> RawDetails:
    return RawDetails(
        name="Amina El Idrissi",
        phone=phone,
        phone_country=country,
        email="amina@example.org",
        language=language,
        document_number=any_document(),
    )


async def test_slots_at_the_venues_wall_clock_times_and_holidays(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        made = await create(conn)
        starts = await venue_slots(conn, made, "passport")
        local = [s.astimezone(EDMONTON) for s in starts]
        # Every slot on the one day that is not Alberta's holiday, from 09:00
        # to 12:00 Edmonton time (16:00 UTC in February), not Montreal's.
        assert {t.date() for t in local} == {HELD_ON}
        assert local[0].time() == time(9) and starts[0] == datetime(2027, 2, 16, 16, tzinfo=UTC)
        last_end = await conn.fetchval(
            "SELECT max(ends_at) FROM slots WHERE mobile_day_id = $1 AND capacity > 0", made.id
        )
        assert last_end == datetime.combine(HELD_ON, time(12), EDMONTON)
        # Only the services offered there.
        assert await venue_slots(conn, made, "civil-status") == []
        assert await venue_slots(conn, made, "cnie")
        # The office's own calendar does not show them; the mobile day's does.
        window = (starts[0] - timedelta(hours=1), starts[0] + timedelta(days=1))
        mine = await slot_store.slots_between(conn, OFFICE, "passport", *window)
        theirs = await slot_store.slots_between(conn, OFFICE, "passport", *window, made.id)
        assert all(s.mobile_day_id is None for s in mine)
        assert [s.starts_at for s in theirs] == [s for s in starts if s < window[1]]
        # The office's own slots survive the mobile day, and the office's
        # regeneration leaves the mobile day's alone.
        office = await office_store.get_office(conn, OFFICE)
        assert office is not None
        async with conn.transaction():
            await slot_store.regenerate_office(conn, office, FIXED_NOW, 30)
        assert await venue_slots(conn, made, "passport") == starts
        [again] = [m for m in await mobile_day_store.upcoming(conn, FIXED_NOW) if m.id == made.id]
        # Read back as it was made (services in id order; the town in every
        # language, es and zgh from their fallback).
        assert again == replace(made, town=in_every_language(made.town))
        assert again.dates == [FAMILY_DAY, HELD_ON]


async def test_bookings_refused_before_the_opening_instant(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        made = await create(conn)
        [first, *_] = await venue_slots(conn, made, "passport")
        slot_id = await conn.fetchval(
            "SELECT id FROM slots WHERE mobile_day_id = $1 AND starts_at = $2 "
            "AND service_id = 'passport'",
            made.id,
            first,
        )
    await prove_contacts(pool, PHONE, "amina@example.org")

    async def book(now: datetime) -> bookings.Booked:
        return await bookings.book(
            pool, slot_id=slot_id, service_id="passport", details=details(),
            secret_key=TEST_SECRET, now=now,
        )  # fmt: skip

    with pytest.raises(errors.Conflict) as refused:
        await book(OPENS - timedelta(seconds=1))
    assert refused.value.code == "mobile_day_not_open"
    assert await pool.fetchval("SELECT taken FROM slots WHERE id = $1", slot_id) == 0
    assert await pool.fetchval("SELECT count(*) FROM bookings WHERE slot_id = $1", slot_id) == 0
    # The guarded statement itself refuses, whoever calls it.
    async with pool.acquire() as conn:
        far = FIXED_NOW + timedelta(days=60)
        assert await slot_store.take_seat(conn, slot_id, OFFICE, "passport", FIXED_NOW, far,
                                          OPENS - timedelta(seconds=1)) is None  # fmt: skip
        assert await slot_store.take_seat(conn, slot_id, OFFICE, "passport", FIXED_NOW, far) is None
    booked = await book(OPENS)
    assert booked.booking.status == "confirmed"
    # The venue's counter is shared by its services: the one counter of
    # 09:00 is taken, so the CNIE at 09:00 there cannot be booked, while the
    # consulate's own counters are untouched.
    async with pool.acquire() as conn:
        cnie = await conn.fetchval(
            "SELECT id FROM slots WHERE mobile_day_id = $1 AND starts_at = $2 "
            "AND service_id = 'cnie'",
            made.id,
            first,
        )
        assert await slot_store.take_seat(conn, cnie, OFFICE, "cnie", FIXED_NOW, far, OPENS) is None
        assert await conn.fetchval(
            "SELECT count(*) FROM counter_cells WHERE mobile_day_id IS NULL AND taken > 0"
        ) == 0
    # Cancelling gives the venue's counter back.
    async with pool.acquire() as conn, conn.transaction():
        await slot_store.release_seat(conn, booked.booking)
    async with pool.acquire() as conn:
        assert await conn.fetchval(
            "SELECT count(*) FROM counter_cells WHERE mobile_day_id = $1 AND taken > 0", made.id
        ) == 0


async def test_confirmation_and_calendar_carry_the_venue(notify_env: Env) -> None:
    env = notify_env
    async with env.pool.acquire() as conn:
        made = await create(conn)
        slot_id = await conn.fetchval(
            """SELECT id FROM slots WHERE mobile_day_id = $1 AND service_id = 'passport'
               ORDER BY starts_at LIMIT 1""",
            made.id,
        )
    await prove_contacts(env.pool, PHONE, "amina@example.org", at=OPENS)
    booked = await bookings.book(
        env.pool, slot_id=slot_id, service_id="passport", details=details("fr"),
        secret_key=env.settings.secret_key, now=OPENS,
    )  # fmt: skip
    assert booked.office.address == VENUE and booked.office.timezone == "America/Edmonton"
    env.clock.set(OPENS)
    await env.start_worker()

    async def sent() -> bool:
        rows = await outbox_rows(env.pool, booked.booking.id)
        return all(r["status"] == "sent" for r in rows if r["kind"] == "confirmation")

    await wait_for(sent, what="confirmation")
    [sms] = env.twilio.bodies_to(PHONE)
    # 09:00 Edmonton time, named after the venue's town, at the venue.
    assert "à 09:00 (heure d'Edmonton)" in sms and f"Adresse: {VENUE}" in sms
    [mail] = env.smtp.to("amina@example.org")
    text = mail.get_body(("plain",))
    assert text is not None
    content = text.get_content()
    assert VENUE in content and "heure d'Edmonton" in content
    [part] = [p for p in mail.iter_attachments() if p.get_content_type() == "text/calendar"]
    [event] = Calendar.from_ical(part.get_content()).walk("VEVENT")
    assert event["dtstart"].params["TZID"] == "America/Edmonton"
    assert event.decoded("dtstart") == datetime(2027, 2, 16, 16, tzinfo=UTC)
    assert str(event["location"]) == VENUE


async def test_demo_data_has_a_paris_day_and_a_montreal_day_in_another_zone(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        demo = {m.office_id: m for m in await mobile_day_store.upcoming(conn, FIXED_NOW)}
        assert set(demo) == {"consulate-paris", "consulate-montreal"}
        paris, montreal = demo["consulate-paris"], demo["consulate-montreal"]
        assert paris.timezone == "Europe/Paris" and paris.town["fr"] == "Orléans"
        assert montreal.timezone == "America/Edmonton" and "CA-AB" in montreal.holiday_countries
        # Paris's is open for booking at the fixed clock, Montreal's not yet.
        assert paris.open_for_booking(FIXED_NOW) and not montreal.open_for_booking(FIXED_NOW)
        for made in (paris, montreal):
            starts = await venue_slots(conn, made, "passport")
            assert starts and {s.astimezone(made.zone).date() for s in starts} == set(made.dates)
            assert min(s.astimezone(made.zone).time() for s in starts) == time(9)
        before = await conn.fetchval("SELECT count(*) FROM slots WHERE mobile_day_id IS NOT NULL")
        await seed_demo(conn, FIXED_NOW, 84)
        assert await conn.fetchval("SELECT count(*) FROM mobile_days") == 2
        assert await conn.fetchval(
            "SELECT count(*) FROM slots WHERE mobile_day_id IS NOT NULL"
        ) == before


async def test_public_json_lists_the_upcoming_mobile_days(
    app_client: TestClient[web.Request, web.Application],
) -> None:
    resp = await app_client.get("/api/v1/mobile-days")
    assert resp.status == 200
    days = {d["office"]: d for d in await resp.json()}
    montreal = days["consulate-montreal"]
    assert montreal["town"]["en"] == "Edmonton" and montreal["timezone"] == "America/Edmonton"
    assert montreal["address"].startswith("placeholder venue address, Edmonton")
    assert montreal["services"] == ["cnie", "passport"]
    assert montreal["dates"] == ["2027-03-13", "2027-03-14"]
    assert {(h["date"], h["opens"], h["closes"]) for h in montreal["hours"]} == {
        ("2027-03-13", "09:00", "16:00"),
        ("2027-03-14", "09:00", "16:00"),
    }
    # 09:00 in Edmonton three weeks before, with Edmonton's offset.
    assert montreal["booking_opens_at"] == "2027-02-20T09:00:00-07:00"
    assert days["consulate-paris"]["dates"] == ["2027-02-27"]


def _hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no hidden field {name}"
    return html.unescape(match.group(1))


async def test_citizens_find_and_book_a_mobile_day_without_javascript(
    app_client: TestClient[web.Request, web.Application], pool: asyncpg.Pool
) -> None:
    client = app_client
    start = await (await client.get("/?lang=fr")).text()
    # Paris's day (open) near the top, before the consulates; Montreal's
    # (not open yet) further down, with its opening.
    orleans = start.index("Journée consulaire mobile à Orléans")
    assert orleans < start.index("<h2>Consulats</h2>") < start.index(
        "Journée consulaire mobile à Edmonton"
    )
    assert "Les réservations ouvrent le" in start.split("<h2>Consulats</h2>")[1]
    arabic = await (await client.get("/?lang=ar")).text()
    assert "يوم قنصلي متنقل في أورليان" in arabic
    office = await (await client.get("/offices/consulate-montreal?lang=en")).text()
    assert "Mobile consular day in Edmonton" in office
    [paris_id] = re.findall(r'href="/mobile-days/(\d+)">Journée consulaire mobile à Orléans', start)

    day = await client.get(f"/mobile-days/{paris_id}?lang=fr")
    page = await day.text()
    assert day.status == 200
    assert "placeholder venue address, Orléans" in page and "heure d&#39;Orléans" in page
    assert f'href="/mobile-days/{paris_id}/civil-status"' in page
    assert "/legalization" not in page  # not offered there
    times = await (await client.get(f"/mobile-days/{paris_id}/civil-status?lang=fr")).text()
    slot_ids = [
        int(m) for m in re.findall(r'href="/offices/consulate-paris/civil-status/book\?slot=(\d+)"',
                                   times)
    ]  # fmt: skip
    assert slot_ids
    first = await pool.fetchrow("SELECT * FROM slots WHERE id = $1", slot_ids[0])
    assert first["mobile_day_id"] == int(paris_id)
    assert first["starts_at"].astimezone(ZoneInfo("Europe/Paris")).time() == time(9)

    url = "/offices/consulate-paris/civil-status/book"
    form = await (await client.get(url, params={"slot": slot_ids[0], "lang": "fr"})).text()
    assert "placeholder venue address, Orléans" in form
    await prove_contacts(pool, "+33612345678")
    resp = await client.post(
        url,
        data={
            "_csrf": _hidden(form, "_csrf"), "form_key": _hidden(form, "form_key"),
            "slot": str(slot_ids[0]), "name": "Amina El Idrissi", "phone_country": "FR",
            "phone": "06 12 34 56 78", "email": "", "language": "fr",
            "document_number": any_document(),
        },
        allow_redirects=False,
    )  # fmt: skip
    assert resp.status == 303, await resp.text()
    location = resp.headers["Location"]
    assert location.endswith("/confirmation")
    confirmation = await (await client.get(location + "?lang=fr")).text()
    assert "placeholder venue address, Orléans" in confirmation
    assert "heure d&#39;Orléans" in confirmation

    # Montreal's day cannot be booked before its opening: its page says when.
    montreal = await (await client.get("/api/v1/mobile-days")).json()
    [edmonton] = [d for d in montreal if d["office"] == "consulate-montreal"]
    page = await (await client.get(f"/mobile-days/{edmonton['id']}/passport?lang=en")).text()
    assert "Bookings open on" in page and "/book?slot=" not in page


async def test_the_offices_day_print_and_csv_name_the_site(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    async with pool.acquire() as conn:
        [orleans] = [
            m for m in await mobile_day_store.upcoming(conn, FIXED_NOW)
            if m.office_id == "consulate-paris"
        ]  # fmt: skip
        slot_id = await conn.fetchval(
            """SELECT id FROM slots WHERE mobile_day_id = $1 AND service_id = 'cnie'
               AND starts_at >= $2 ORDER BY starts_at LIMIT 1""",
            orleans.id,
            datetime.combine(orleans.dates[0], time(10), orleans.zone),
        )
    await prove_contacts(pool, "+33612345678", "amina@example.org")
    booked = await bookings.book(
        pool, slot_id=slot_id, service_id="cnie", details=details("fr", "+33612345678", "FR"),
        secret_key=TEST_SECRET, now=FIXED_NOW,
    )  # fmt: skip
    day = orleans.dates[0].isoformat()
    browser = browsers()
    await browser.login(AGENT)
    page = await (await browser.get(f"/office/consulate-paris/day/{day}?lang=fr")).text()
    assert booked.booking.reference in page
    assert "Journée consulaire mobile à Orléans · 10:00 sur place" in page
    printed = await (await browser.get(f"/office/consulate-paris/day/{day}/print?lang=fr")).text()
    assert "Journée consulaire mobile à Orléans" in printed
    r = await browser.get(f"/office/consulate-paris/day/{day}/export.csv?lang=fr")
    rows = list(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))))
    assert rows[0][-2:] == ["site", "site_time"]
    [row] = [r for r in rows if r[2] == booked.booking.reference]
    assert row[-2:] == ["Orléans", "10:00"]
    # The office's calendar feed: the town in the title, the venue as location.
    manager = browsers()
    await manager.login(MANAGER)
    feed = await (await manager.post_form("/office/consulate-paris/feed")).text()
    url = re.search(r'class="secret feed-url">([^<]+)<', feed)
    assert url
    ics = await (await browsers().get("/" + url[1].split("://", 1)[1].split("/", 1)[1])).read()
    [event] = [
        e for e in Calendar.from_ical(ics).walk("VEVENT")
        if booked.booking.reference in str(e["summary"])
    ]  # fmt: skip
    assert str(event["summary"]).endswith(" · Orléans")
    assert str(event["location"]) == orleans.address


async def test_a_manager_publishes_a_mobile_day_from_the_office_pages(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    agent = browsers()
    await agent.login(AGENT)
    assert (await agent.get("/office/consulate-paris/mobile-days")).status == 403
    manager = browsers()
    await manager.login(MANAGER)
    page = await (await manager.get("/office/consulate-paris/mobile-days?lang=fr")).text()
    assert "Journée consulaire mobile à Orléans" in page and 'name="service-passport"' in page
    form = {
        "town_fr": "Chartres", "town_ar": "شارتر", "town_en": "Chartres", "country": "FR",
        "address": "Salle des fêtes, Chartres", "timezone": "Europe/Pariss",
        "holidays": "MA FR", "first_day": "2027-03-06", "days": "1", "opens": "10:00",
        "closes": "13:00", "counters": "1", "service-passport": "1",
        "opens_on": "2027-02-10", "opens_time": "08:00", "alert_km": "100",
    }  # fmt: skip
    before = await pool.fetchval("SELECT count(*) FROM mobile_days")
    r = await manager.post_form("/office/consulate-paris/mobile-days?lang=fr", form)
    assert r.status == 422
    assert "Indiquez un fuseau horaire comme Europe/Paris" in await r.text()
    assert await pool.fetchval("SELECT count(*) FROM mobile_days") == before
    # A town not in the list of towns needs the venue's coordinates.
    hamlet = {**form, "timezone": "Europe/Paris", "town_fr": "Trifouilly", "town_en": "Trifouilly"}
    r = await manager.post_form("/office/consulate-paris/mobile-days?lang=fr", hamlet)
    assert r.status == 422 and "n’est pas dans notre liste de villes" in await r.text()
    assert await pool.fetchval("SELECT count(*) FROM mobile_days") == before
    r = await manager.post_form(
        "/office/consulate-paris/mobile-days", {**form, "timezone": "Europe/Paris"}
    )
    # Located from its town (Chartres), announced to nobody: no subscriber yet.
    assert r.status == 303 and r.headers["Location"].endswith("?notice=mobile_day&told=0")
    made = await pool.fetchrow("SELECT * FROM mobile_days WHERE town_en = 'Chartres'")
    assert made["office_id"] == "consulate-paris" and made["alert_km"] == 100
    assert (round(made["latitude"], 1), round(made["longitude"], 1)) == (48.4, 1.5)
    told = await (await manager.get(r.headers["Location"] + "&lang=fr")).text()
    assert "0 abonné proche recevra un message." in told
    starts = await pool.fetch(
        "SELECT starts_at FROM slots WHERE mobile_day_id = $1 ORDER BY starts_at", made["id"]
    )
    paris = ZoneInfo("Europe/Paris")
    assert starts[0]["starts_at"].astimezone(paris) == datetime(2027, 3, 6, 10, tzinfo=paris)
    assert {r["starts_at"].astimezone(paris).date() for r in starts} == {date(2027, 3, 6)}


async def test_a_manager_withdraws_a_mobile_day_nobody_is_booked_at(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    async with pool.acquire() as conn:
        made = await create(conn)
        slot_id = await conn.fetchval(
            """SELECT id FROM slots WHERE mobile_day_id = $1 AND service_id = 'passport'
               ORDER BY starts_at LIMIT 1""",
            made.id,
        )
    await prove_contacts(pool, PHONE, "amina@example.org", at=OPENS)
    booked = await bookings.book(
        pool, slot_id=slot_id, service_id="passport", details=details("fr"),
        secret_key=TEST_SECRET, now=OPENS,
    )  # fmt: skip
    # A subscriber's announcement still waiting for the morning.
    await pool.execute(
        """INSERT INTO mobile_day_subscriptions (office_id, channel, contact, contact_hash,
               latitude, longitude, language, token_hash, verified_at, expires_at, created_at)
           VALUES ($1, 'sms', '+17804960000', '\\x01', 53.5, -113.5, 'fr', '\\x02', $2, $3, $2)""",
        OFFICE, FIXED_NOW, FIXED_NOW + timedelta(days=365),
    )  # fmt: skip
    async with pool.acquire() as conn, conn.transaction():
        office = await office_store.get_office(conn, OFFICE)
        assert office is not None
        assert await mobile_alerts.announce(conn, office, made, (53.55, -113.47), 50, FIXED_NOW)
    # Montreal's day: an admin manages every office.
    manager = browsers()
    await manager.login(ADMIN)
    page = await (await manager.get(f"/office/{OFFICE}/mobile-days?lang=fr")).text()
    assert f'name="mobile_day" value="{made.id}"' in page
    capacity = await pool.fetchval("SELECT capacity FROM slots WHERE id = $1", slot_id)
    # Someone is booked there: refused, nothing changed.
    r = await manager.post_form(f"/office/{OFFICE}/mobile-days/withdraw?lang=fr",
                                {"mobile_day": str(made.id)})  # fmt: skip
    assert r.status == 409 and "Des citoyens ont rendez-vous" in await r.text()
    assert await pool.fetchval("SELECT capacity FROM slots WHERE id = $1", slot_id) == capacity
    assert (
        await pool.fetchval("SELECT withdrawn_at FROM mobile_days WHERE id = $1", made.id) is None
    )
    # Cancelled: now it can go.
    await bookings.cancel(pool, booked.booking.reference, booked.manage_token, TEST_SECRET, OPENS)
    r = await manager.post_form(f"/office/{OFFICE}/mobile-days/withdraw",
                                {"mobile_day": str(made.id)})  # fmt: skip
    assert r.status == 303 and r.headers["Location"].endswith("notice=mobile_day_withdrawn")
    assert await pool.fetchval("SELECT withdrawn_at FROM mobile_days WHERE id = $1", made.id)
    async with pool.acquire() as conn:
        assert made.id not in {m.id for m in await mobile_day_store.upcoming(conn, FIXED_NOW)}
        # No seat can be taken, whoever asks, even after the daily regeneration.
        office = await office_store.get_office(conn, OFFICE)
        assert office is not None
        async with conn.transaction():
            await slot_store.regenerate_office(conn, office, OPENS, 84)
        far = OPENS + timedelta(days=60)
        assert await slot_store.take_seat(conn, slot_id, OFFICE, "passport", OPENS, far,
                                          OPENS) is None  # fmt: skip
    assert (
        await pool.fetchval("SELECT max(capacity) FROM slots WHERE mobile_day_id = $1", made.id)
        == 0
    )
    [status] = await pool.fetch(
        "SELECT status, status_reason FROM outbox WHERE kind = 'mobile_day_planned'"
    )
    assert (status["status"], status["status_reason"]) == ("skipped", "mobile_day_withdrawn")
    # Gone from the public pages; asking again for it is refused.
    r = await manager.post_form(f"/office/{OFFICE}/mobile-days/withdraw",
                                {"mobile_day": str(made.id)})  # fmt: skip
    assert r.status == 422
