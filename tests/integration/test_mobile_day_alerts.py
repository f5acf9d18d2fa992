"""'Tell me when a mobile day is planned near me': towns located offline,
the subscription's code step (the booking's own), one message per
subscriber near a newly published mobile day (none to the others, none
twice), stop and renew from the message's link, and retention."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service import mobile_alerts, personal_data
from service.config import Settings
from service.domain import errors
from service.domain.verification import contact_hash
from service.office.mobile_days import create_mobile_day
from service.places import gazetteer
from service.store import schedule as schedule_store
from tests.clock import FIXED_NOW, FakeClock
from tests.codesink import code_for, send_codes
from tests.faketwilio import WA_NOT_A_USER
from tests.fixtures.app import TEST_SECRET, prove_contacts
from tests.fixtures.notify import Env
from tests.integration.test_citizen_pages import hidden
from tests.integration.test_whatsapp_flow import REGISTRY, send, wa_settings

Client = TestClient[Any, Any]
OFFICE = "consulate-paris"
FORM = "/mobile-days/alerts"
YEAR = 365
# A day in Blois, announced within 90 km: Vendôme (30 km), Tours (52 km) and
# Orléans (55 km) are in; Chartres (95 km) and Marseille are not.
BLOIS = {
    "town_fr": "Blois", "town_ar": "بلوا", "town_en": "Blois", "country": "FR",
    "address": "Salle polyvalente, 3 rue de la Paix, Blois", "timezone": "Europe/Paris",
    "holidays": "MA FR", "first_day": "2027-03-06", "days": "2", "opens": "09:00",
    "closes": "15:00", "counters": "2", "service-passport": "1", "service-cnie": "1",
    "opens_on": "2027-02-10", "opens_time": "09:00", "alert_km": "90",
}  # fmt: skip


def test_towns_are_found_offline_whatever_the_case_accents_or_script() -> None:
    places = gazetteer()
    orleans = places.find("Orléans", ["FR"])
    assert orleans is not None and orleans.country == "FR"
    assert round(orleans.latitude, 1) == 47.9 and round(orleans.longitude, 1) == 1.9
    for typed in ("orleans", "ORLÉANS", "  Orléans , France", "أورليان"):
        assert places.find(typed, ["FR"]) == orleans, typed
    assert places.find("saint etienne", ["FR"]) == places.find("Saint-Étienne", ["FR"])
    # Only in the consulate's countries: Montreal's Orléans is another town.
    canadian = places.find("Orléans", ["CA"])
    assert canadian is not None and canadian.country == "CA" and canadian != orleans
    assert places.find("Orléans", ["BE", "NL", "LU"]) is None
    assert places.find("Xyzzyville", ["FR"]) is None


async def _subscribe(
    pool: asyncpg.Pool, town: str, contact: str, *, channel: str = "sms", language: str = "fr",
    office: str = OFFICE, now: Any = FIXED_NOW,
) -> mobile_alerts.Subscribed:  # fmt: skip
    raw = {"town": town, "channel": channel, "language": language}
    raw["email" if channel == "email" else "phone"] = contact
    raw["phone_country"] = {"consulate-brussels": "BE"}.get(office, "FR")
    return await mobile_alerts.subscribe(
        pool, office, raw, places=gazetteer(), secret_key=TEST_SECRET, now=now, days=YEAR,
        whatsapp=True,
    )  # fmt: skip


async def counts(pool: asyncpg.Pool) -> tuple[int, int, int]:
    return (
        await pool.fetchval("SELECT count(*) FROM mobile_day_subscriptions"),
        await pool.fetchval("SELECT count(*) FROM outbox"),
        await pool.fetchval("SELECT count(*) FROM contact_checks"),
    )


@pytest.mark.parametrize("lang", ["fr", "ar"])
async def test_an_unknown_town_is_refused_in_the_users_language_and_nothing_is_written(
    lang: str, app_client: Client, pool: asyncpg.Pool
) -> None:
    page = await (await app_client.get(f"{FORM}?office={OFFICE}&lang={lang}")).text()
    assert 'value="consulate-paris" selected' in page
    before = await counts(pool)
    data = {
        "_csrf": hidden(page, "_csrf"), "office": OFFICE, "town": "Xyzzyville",
        "channel": "sms", "phone_country": "FR", "phone": "06 12 34 56 78", "language": lang,
    }  # fmt: skip
    resp = await app_client.post(f"{FORM}?lang={lang}", data=data)
    assert resp.status == 422
    text = await resp.text()
    unknown = {
        "fr": "Nous ne connaissons pas cette ville dans les pays de ce consulat.",
        "ar": "لا نعرف هذه المدينة في بلدان هذه القنصلية.",
    }[lang]
    # The summary links to the field, which says it too and keeps what was typed.
    assert text.count(unknown) == 2 and 'href="#f-town"' in text
    assert 'id="f-town"' in text and 'value="Xyzzyville"' in text
    assert re.search(r'id="f-town"[^>]*aria-invalid="true"', text)
    assert await counts(pool) == before
    # A prefecture holds no mobile days: the consulate is the field at fault.
    prefecture = {**data, "town": "Tours", "office": "prefecture-tiznit"}
    resp = await app_client.post(f"{FORM}?lang={lang}", data=prefecture)
    assert resp.status == 422 and 'href="#f-office"' in await resp.text()
    assert await counts(pool) == before
    # A bad contact is named too, the town being right.
    resp = await app_client.post(f"{FORM}?lang={lang}", data={**data, "town": "Tours",
                                                              "phone": "12"})  # fmt: skip
    assert resp.status == 422 and 'href="#f-phone"' in await resp.text()
    assert await counts(pool) == before
    # Sent empty, the form names every field to fill, not only the consulate.
    empty = {"_csrf": data["_csrf"], "office": "", "town": "", "channel": "sms", "phone": ""}
    resp = await app_client.post(f"{FORM}?lang={lang}", data=empty)
    text = await resp.text()
    assert resp.status == 422
    assert all(f'href="#f-{name}"' in text for name in ("office", "town", "phone")), text
    assert await counts(pool) == before


async def test_the_code_step_proves_the_contact_then_the_page_stops_or_renews(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    page = await (await app_client.get(f"{FORM}?office={OFFICE}&lang=fr")).text()
    data = {
        "_csrf": hidden(page, "_csrf"), "office": OFFICE, "town": "Orléans", "channel": "sms",
        "phone_country": "FR", "phone": "06 12 34 56 78", "language": "fr",
    }  # fmt: skip
    resp = await app_client.post(FORM, data=data, allow_redirects=False)
    assert resp.status == 303
    link = resp.headers["Location"]
    match = re.fullmatch(r"/m/(\d+)/([\w-]+)", link)
    assert match
    subscription_id = int(match[1])
    row = await pool.fetchrow("SELECT * FROM mobile_day_subscriptions WHERE id = $1",
                              subscription_id)  # fmt: skip
    # Only what sending takes: the contact and its keyed hash, the town's
    # place (not its name), the language and the channel; the link hashed.
    assert row["contact"] == "+33612345678" and row["verified_at"] is None
    assert bytes(row["contact_hash"]) == contact_hash("sms", "+33612345678", TEST_SECRET)
    assert round(row["latitude"], 1) == 47.9 and "Orl" not in repr(dict(row))
    assert match[2].encode() not in bytes(row["token_hash"])
    code_page = await (await app_client.get(link)).text()
    assert "Saisissez le code" in code_page and "+33 6 12 34 56 78" in code_page
    code = await code_for(pool, settings, clock, "+33612345678")
    sms = await pool.fetchval(
        "SELECT body FROM outbox WHERE subscription_id = $1 AND kind = 'code'", subscription_id
    )
    assert "journées consulaires mobiles" in sms and code not in sms  # kept as [code]
    resp = await app_client.post(f"{link}/code", data={"_csrf": hidden(code_page, "_csrf"),
                                                       "code": "000000" if code != "000000"
                                                       else "111111"})  # fmt: skip
    assert resp.status == 422 and 'aria-invalid="true"' in await resp.text()
    resp = await app_client.post(
        f"{link}/code", data={"_csrf": hidden(code_page, "_csrf"), "code": code},
        allow_redirects=False,
    )  # fmt: skip
    assert resp.status == 303 and resp.headers["Location"] == link
    row = await pool.fetchrow("SELECT * FROM mobile_day_subscriptions WHERE id = $1",
                              subscription_id)  # fmt: skip
    assert row["verified_at"] == clock() and row["expires_at"] == clock() + timedelta(days=YEAR)
    # The contact is remembered, as a booking's code would have it.
    assert await pool.fetchval(
        "SELECT count(*) FROM verified_contacts WHERE contact_hash = $1",
        contact_hash("sms", "+33612345678", TEST_SECRET),
    )
    standing = await (await app_client.get(link)).text()
    assert "+33 6 •• •• •• 78" in standing and "06 12 34 56 78" not in standing
    # Renewed a month later: a year from then.
    clock.advance(timedelta(days=30))
    resp = await app_client.post(f"{link}/renew", data={"_csrf": hidden(standing, "_csrf")},
                                 allow_redirects=False)  # fmt: skip
    assert resp.status == 303
    assert await pool.fetchval(
        "SELECT expires_at FROM mobile_day_subscriptions WHERE id = $1", subscription_id
    ) == clock() + timedelta(days=YEAR)
    # A second request from the proved number stands at once (no code) and
    # takes the first one's place: one subscription per contact and consulate.
    again = await _subscribe(pool, "Tours", "06 12 34 56 78", now=clock())
    assert not again.pending
    first = await pool.fetchrow("SELECT * FROM mobile_day_subscriptions WHERE id = $1",
                                subscription_id)  # fmt: skip
    assert first["contact"] is None and first["stopped_at"] is not None
    # Stopped from its page: the contact and the place are forgotten at once.
    link = f"/m/{again.id}/{again.token}"
    page = await (await app_client.get(link)).text()
    resp = await app_client.post(f"{link}/stop", data={"_csrf": hidden(page, "_csrf")},
                                 allow_redirects=False)  # fmt: skip
    assert resp.status == 303
    stopped = await pool.fetchrow("SELECT * FROM mobile_day_subscriptions WHERE id = $1",
                                  again.id)  # fmt: skip
    assert stopped["contact"] is None and stopped["latitude"] is None
    assert "ne recevez plus" in await (await app_client.get(link + "?lang=fr")).text()
    # It cannot be renewed: asking again is the way back.
    resp = await app_client.post(f"{link}/renew", data={"_csrf": hidden(page, "_csrf")})
    assert resp.status == 409


async def test_a_subscriber_sees_only_their_own_subscription(
    app_client: Client, pool: asyncpg.Pool
) -> None:
    await prove_contacts(pool, "+33611111111", "+33622222222")
    mine = await _subscribe(pool, "Tours", "06 11 11 11 11")
    theirs = await _subscribe(pool, "Orléans", "06 22 22 22 22")
    # My token does not open theirs; an unknown id and a wrong token look alike.
    for link in (
        f"/m/{theirs.id}/{mine.token}",
        f"/m/{theirs.id}/wrongtoken0000000000",
        f"/m/99999/{mine.token}",
    ):
        resp = await app_client.get(link)
        assert resp.status == 401, link
        assert "22 22" not in await resp.text()
    page = await (await app_client.get(f"/m/{mine.id}/{mine.token}")).text()
    # The other number's digits nowhere in the text (attributes such as the
    # form's random CSRF token left out: they may hold any digits).
    shown = re.sub(r'\s[\w-]+="[^"]*"', "", page.split("<main")[1])
    assert "11" in page and not re.search(r"(?<!\d)22(?!\d)", shown)


async def test_publishing_tells_each_subscriber_within_the_distance_once(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    near = ["+33611111111", "near@example.org", "+33633333333"]
    others = ["+33644444444", "+33655555555", "+33666666666", "+33677777777", "+32470123456"]
    await prove_contacts(pool, *near, *others)
    await prove_contacts(pool, "+33677777777", at=FIXED_NOW - timedelta(days=YEAR + 2))
    arabic = await _subscribe(pool, "أورليان", "06 11 11 11 11", language="ar")
    mail = await _subscribe(pool, "tours", "near@example.org", channel="email")
    whatsapp = await _subscribe(pool, "Vendôme", "06 33 33 33 33", channel="whatsapp",
                                language="es")  # fmt: skip
    # Not told: just outside the distance, far away, stopped, run out,
    # waiting for its code, another consulate's.
    chartres = await _subscribe(pool, "Chartres", "06 44 44 44 44")
    await _subscribe(pool, "Marseille", "06 55 55 55 55")
    stopped = await _subscribe(pool, "Orléans", "06 66 66 66 66")
    await mobile_alerts.stop(pool, stopped.id, stopped.token, secret_key=TEST_SECRET,
                             now=clock())  # fmt: skip
    await _subscribe(pool, "Orléans", "06 77 77 77 77", now=FIXED_NOW - timedelta(days=YEAR + 1))
    pending = await _subscribe(pool, "Orléans", "waiting@example.org", channel="email")
    assert pending.pending
    await _subscribe(pool, "Mons", "0470 12 34 56", office="consulate-brussels")
    before = await pool.fetchval("SELECT count(*) FROM outbox")

    published = await create_mobile_day(pool, OFFICE, BLOIS, clock(), gazetteer())
    assert published.announced == 3
    rows = await pool.fetch(
        "SELECT * FROM outbox WHERE kind = 'mobile_day_planned' ORDER BY subscription_id"
    )
    assert await pool.fetchval("SELECT count(*) FROM outbox") == before + 3
    assert [(r["subscription_id"], r["channel"], r["language"]) for r in rows] == [
        (arabic.id, "sms", "ar"), (mail.id, "email", "fr"), (whatsapp.id, "whatsapp", "es"),
    ]  # fmt: skip
    assert {r["mobile_day_id"] for r in rows} == {published.mobile_day.id}
    assert chartres.id not in {r["subscription_id"] for r in rows}
    # Never twice to one subscriber for one day, whoever writes it again.
    async with pool.acquire() as conn, conn.transaction():
        office_row = await conn.fetchrow("SELECT id FROM offices WHERE id = $1", OFFICE)
        assert office_row is not None
        from service.store import offices as office_store

        office = await office_store.get_office(conn, OFFICE)
        assert office is not None and published.mobile_day.place is not None
        again = await mobile_alerts.announce(
            conn, office, published.mobile_day, published.mobile_day.place, 90, clock()
        )
        assert again == 0
        with pytest.raises(asyncpg.UniqueViolationError):
            async with conn.transaction():
                await conn.execute(
                    """INSERT INTO outbox (subscription_id, mobile_day_id, kind, channel,
                           recipient, language, send_at, appointment_at, created_at, updated_at)
                       SELECT subscription_id, mobile_day_id, kind, channel, recipient,
                              language, send_at, appointment_at, created_at, updated_at
                       FROM outbox WHERE id = $1""",
                    rows[0]["id"],
                )

    kept = await send_codes(pool, settings, clock, "mobile_day_planned")
    [(to, sms)] = kept.sms
    assert to == "+33611111111"
    # In Arabic, within three UCS-2 segments, with both links.
    assert "يوم قنصلي متنقل في بلوا" in sms
    book = f"{settings.base_url}/mobile-days/{published.mobile_day.id}"
    assert book in sms
    stop = re.search(rf"{re.escape(settings.base_url)}/m/{arabic.id}/([\w-]+)", sms)
    assert stop
    segments = await pool.fetchval("SELECT segments FROM outbox WHERE id = $1", rows[0]["id"])
    assert segments <= 3
    # The consulate's statistics count what its announcements cost, and only its.
    async with pool.acquire() as conn:
        week = (clock() - timedelta(days=1), clock() + timedelta(days=1))
        assert await schedule_store.sms_segments_sent(conn, OFFICE, *week) == segments
        assert await schedule_store.sms_segments_sent(conn, "consulate-brussels", *week) == 0
    [mail_sent] = kept.emails
    text = mail_sent.get_body(("plain",))
    assert text is not None
    content = text.get_content()
    assert "Journée consulaire mobile à Blois" in str(mail_sent["Subject"])
    assert "Salle polyvalente, 3 rue de la Paix, Blois" in content and book in content
    assert f"/m/{mail.id}/" in content
    # The kept copies never carry the link's token.
    bodies = await pool.fetch(
        "SELECT body FROM outbox WHERE kind = 'mobile_day_planned' AND status = 'sent'"
    )
    assert bodies and all("[token]" in r["body"] for r in bodies)
    # The message's own link opens the subscription (and only it).
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM mobile_day_subscription_tokens WHERE subscription_id = $1",
                arabic.id,
            )
            == 1
        )
    seen = await mobile_alerts.view(pool, arabic.id, stop[1], TEST_SECRET, clock())
    assert seen.state == "standing"
    with pytest.raises(errors.Unauthorized):
        await mobile_alerts.view(pool, mail.id, stop[1], TEST_SECRET, clock())


async def test_a_subscription_that_ends_before_its_message_leaves_gets_nothing(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    await prove_contacts(pool, "+33611111111", "+33622222222")
    # Its year runs out an hour after the fixed clock.
    a_year_ago = FIXED_NOW - timedelta(days=YEAR) + timedelta(hours=1)
    ending = await _subscribe(pool, "Orléans", "06 11 11 11 11", now=a_year_ago)
    stopping = await _subscribe(pool, "Tours", "06 22 22 22 22")
    await create_mobile_day(pool, OFFICE, BLOIS, clock(), gazetteer())
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE kind = 'mobile_day_planned'") == 2
    await mobile_alerts.stop(pool, stopping.id, stopping.token, secret_key=TEST_SECRET,
                             now=clock())  # fmt: skip
    clock.advance(timedelta(hours=2))  # past the first one's year
    kept = await send_codes(pool, settings, clock, "mobile_day_planned")
    assert kept.sms == [] and kept.emails == []
    rows = await pool.fetch(
        "SELECT subscription_id, status, status_reason, recipient FROM outbox "
        "WHERE kind = 'mobile_day_planned' ORDER BY subscription_id"
    )
    assert [(r["subscription_id"], r["status"]) for r in rows] == [
        (ending.id, "skipped"), (stopping.id, "cancelled"),
    ]  # fmt: skip
    # The stopped one's message forgot its recipient with it.
    assert rows[1]["recipient"] == ""


async def test_retention_anonymises_ended_subscriptions(
    pool: asyncpg.Pool, clock: FakeClock
) -> None:
    await prove_contacts(pool, "+33611111111", at=FIXED_NOW - timedelta(days=600))
    await prove_contacts(pool, "+33622222222")
    old = await _subscribe(pool, "Orléans", "06 11 11 11 11",
                           now=FIXED_NOW - timedelta(days=YEAR + 100))  # fmt: skip
    current = await _subscribe(pool, "Tours", "06 22 22 22 22")
    await personal_data.anonymise_expired(pool, clock(), 90)
    rows = {r["id"]: r for r in await pool.fetch("SELECT * FROM mobile_day_subscriptions")}
    assert rows[old.id]["contact"] is None and rows[old.id]["anonymised_at"] == clock()
    assert rows[old.id]["latitude"] is None and rows[old.id]["contact_hash"] is None
    assert rows[current.id]["contact"] == "+33622222222"


async def test_a_whatsapp_subscriber_gets_the_template_or_else_the_sms(notify_env: Env) -> None:
    env = notify_env
    settings = wa_settings(env)
    await prove_contacts(env.pool, "+33611111111", "+33622222222")
    template = await _subscribe(env.pool, "Tours", "06 11 11 11 11", channel="whatsapp",
                                language="fr")  # fmt: skip
    refused = await _subscribe(env.pool, "Orléans", "06 22 22 22 22", channel="whatsapp",
                               language="ar")  # fmt: skip
    env.twilio.script("whatsapp:+33622222222", WA_NOT_A_USER)
    published = await create_mobile_day(env.pool, OFFICE, BLOIS, env.clock(), gazetteer())
    rows = {
        r["subscription_id"]: r["id"]
        for r in await env.pool.fetch("SELECT * FROM outbox WHERE kind = 'mobile_day_planned'")
    }
    assert await send(env, settings, rows[template.id]) == "sent"
    [sent] = env.twilio.sent
    assert sent.to == "whatsapp:+33611111111"
    assert sent.content_sid == REGISTRY["mobile_day_planned"]["fr"]
    assert sent.variables is not None and sent.variables["2"] == "Blois"
    assert sent.variables["5"].endswith(f"/mobile-days/{published.mobile_day.id}")
    assert f"/m/{template.id}/" in sent.variables["6"]
    # Not a WhatsApp user: the same announcement by SMS, still once.
    assert await send(env, settings, rows[refused.id]) == "failed"
    [fallback] = await env.pool.fetch(
        "SELECT * FROM outbox WHERE fallback_of = $1", rows[refused.id]
    )
    assert (fallback["channel"], fallback["subscription_id"], fallback["mobile_day_id"]) == (
        "sms", refused.id, published.mobile_day.id,
    )  # fmt: skip
    assert await send(env, settings, fallback["id"]) == "sent"
    [sms] = env.twilio.bodies_to("+33622222222")
    assert "يوم قنصلي متنقل في بلوا" in sms and f"/m/{refused.id}/" in sms
