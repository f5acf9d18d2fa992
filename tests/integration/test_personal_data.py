"""Personal data goes away: the daily retention job on the fixed clock,
`mawid booking export|erase`, and the admins' office pages (issue 14)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from service import bookings, verification
from service.config import Settings
from service.domain import errors
from service.domain.retention import ANONYMISED_NAME
from service.domain.validation import RawDetails
from service.worker import jobs
from service.worker.settings import CRON_JOBS
from tests.clock import FIXED_NOW, FakeClock
from tests.fixtures.app import TEST_SECRET, prove_contacts
from tests.fixtures.office import ADMIN, MANAGER, Browser, free_slot

NAME = "Zineb Benjelloun-Retained"
PHONE = "+212698765432"
EMAIL = "zineb.retained@example.org"
DOCUMENT = "RETAIN4455"


async def book(
    pool: asyncpg.Pool,
    days_ahead: int,
    document: str = DOCUMENT,
    name: str = NAME,
    phone: str = PHONE,
    proved: bool = True,
) -> bookings.Booked:
    """A public booking: confirmed when its contacts were proved before
    (a returning citizen), else held until its code comes back."""
    if proved:
        await prove_contacts(pool, phone, EMAIL)
    slot = await free_slot(
        pool, "consulate-paris", "passport", FIXED_NOW + timedelta(days=days_ahead)
    )
    return await bookings.book(
        pool,
        slot_id=slot["id"],
        service_id="passport",
        details=RawDetails(
            name=name,
            phone=phone,
            email=EMAIL,
            language="fr",
            document_number=document,
        ),
        secret_key=TEST_SECRET,
        now=FIXED_NOW,
    )


async def stored_text(pool: asyncpg.Pool, booking_id: int) -> str:
    """Every row about the booking, as text, wherever personal data could be."""
    rows = await pool.fetch(
        """SELECT row_to_json(b)::text AS t FROM bookings b WHERE id = $1
           UNION ALL SELECT row_to_json(o)::text FROM outbox o WHERE booking_id = $1
           UNION ALL SELECT row_to_json(a)::text FROM audit_log a WHERE booking_id = $1
           UNION ALL SELECT row_to_json(m)::text FROM manage_tokens m WHERE booking_id = $1
           UNION ALL SELECT row_to_json(f)::text FROM form_keys f WHERE booking_id = $1
           UNION ALL SELECT row_to_json(c)::text FROM contact_checks c WHERE booking_id = $1""",
        booking_id,
    )
    return "\n".join(r["t"] for r in rows)


def holds_personal_data(text: str) -> bool:
    return any(secret in text for secret in (NAME, PHONE, PHONE[4:], EMAIL, DOCUMENT))


async def test_retention_removes_personal_data_days_after_the_appointment(
    settings: Settings, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    soon = await book(pool, 2)
    # Held on the same day: its code check is verification data too.
    held = await book(pool, 2, document="RETAIN1122", phone="+212698760000", proved=False)
    assert held.booking.status == "held"
    assert await pool.fetchval("SELECT count(*) FROM verified_contacts") == 2
    assert await pool.fetchval(
        "SELECT count(*) FROM contact_checks WHERE booking_id = $1", held.booking.id
    ) == 1
    # Cancelled on the day it was made, some 50 days before its date.
    later = await book(pool, 50, document="RETAIN7788")
    await bookings.cancel(
        pool, later.booking.reference, later.manage_token, TEST_SECRET, FIXED_NOW
    )
    # A message that went out, with its body kept, and an office's reason.
    await pool.execute(
        """UPDATE outbox SET status = 'sent', body = $2, sent_at = $3
           WHERE booking_id = $1 AND kind = 'confirmation'""",
        soon.booking.id,
        f"Bonjour {NAME}, RDV confirmé",
        FIXED_NOW,
    )
    await pool.execute(
        """INSERT INTO audit_log (booking_id, actor_kind, action, detail)
           VALUES ($1, 'staff', 'note', $2::jsonb)""",
        soon.booking.id,
        json.dumps({"reason": f"appelé {PHONE}"}),
    )
    assert holds_personal_data(await stored_text(pool, soon.booking.id))
    state = await jobs.build_state(
        settings.with_(retention_days=90), pool=pool, clock=clock
    )
    ctx: dict[str, Any] = {jobs.STATE: state}

    clock.set(soon.booking.starts_at + timedelta(days=90) - timedelta(hours=1))
    assert await jobs.anonymise_expired(ctx) == 0
    assert holds_personal_data(await stored_text(pool, soon.booking.id))
    # The contacts proved at booking, more than 90 days ago, are forgotten.
    assert await pool.fetchval("SELECT count(*) FROM verified_contacts") == 0

    # 90 days after the first appointment; the cancelled one is 90 days past
    # its cancellation too, but not past its own date: it stays.
    clock.set(soon.booking.starts_at + timedelta(days=90, hours=1))
    assert await jobs.anonymise_expired(ctx) == 2
    assert not holds_personal_data(await stored_text(pool, soon.booking.id))
    assert not await pool.fetchval(
        "SELECT count(*) FROM contact_checks WHERE booking_id = $1", held.booking.id
    )

    assert holds_personal_data(await stored_text(pool, later.booking.id))
    row = await pool.fetchrow("SELECT * FROM bookings WHERE id = $1", soon.booking.id)
    assert row["citizen_name"] == ANONYMISED_NAME
    assert (row["phone"], row["email"], row["document_number"]) == (None, None, None)
    assert row["anonymised_at"] == clock()
    # What statistics read stays.
    assert (row["office_id"], row["service_id"], row["status"]) == (
        "consulate-paris", "passport", "confirmed"
    )
    assert row["starts_at"] == soon.booking.starts_at
    messages = await pool.fetch("SELECT * FROM outbox WHERE booking_id = $1", soon.booking.id)
    assert {(m["recipient"], m["body"]) for m in messages} == {("", None)}
    assert {m["status"] for m in messages if m["kind"] == "confirmation"} == {"sent"}
    audit = await pool.fetch(
        "SELECT * FROM audit_log WHERE booking_id = $1 ORDER BY id", soon.booking.id
    )
    assert [a["action"] for a in audit] == ["book", "note", "anonymise"]
    assert {a["detail"] for a in audit} == {"{}"}
    assert audit[-1]["actor_kind"] == "system"
    assert await jobs.anonymise_expired(ctx) == 0, "done once"

    clock.set(later.booking.starts_at + timedelta(days=90, hours=1))
    assert await jobs.anonymise_expired(ctx) == 1
    assert not holds_personal_data(await stored_text(pool, later.booking.id))
    status = await pool.fetchval("SELECT status FROM bookings WHERE id = $1", later.booking.id)
    assert status == "cancelled"


def test_the_retention_job_runs_daily() -> None:
    [job] = [c for c in CRON_JOBS if c.name == "anonymise_expired"]
    assert job.hour == {4} and job.minute == {7}


def mawid(db_dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MAWID_", "DATABASE_URL", "SECRET_KEY"))
    }
    env.update(
        {
            "MAWID_ENV": "test",
            "DATABASE_URL": db_dsn,
            "SECRET_KEY": TEST_SECRET,
            "MAWID_CLOCK_START": FIXED_NOW.isoformat(),
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_export_and_erase_from_the_command_line(db_dsn: str, pool: asyncpg.Pool) -> None:
    booked = await book(pool, 5)
    ref = booked.booking.reference
    done = mawid(db_dsn, "booking", "export", ref.lower())
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["booking"]["citizen_name"] == NAME
    assert record["booking"]["document_number"] == DOCUMENT
    assert "manage_token_hash" not in record["booking"]
    assert {m["recipient"] for m in record["messages"]} == {PHONE, EMAIL}
    assert [a["action"] for a in record["audit_log"]] == ["book"]
    assert record["waiting_room_calls"] == [] and record["sms_opt_out"] == []

    refused = mawid(db_dsn, "booking", "erase", ref)
    assert refused.returncode == 1
    assert "cancel it before erasing it" in refused.stderr
    assert holds_personal_data(await stored_text(pool, booked.booking.id))

    await bookings.cancel(pool, ref, booked.manage_token, TEST_SECRET, FIXED_NOW)
    await prove_contacts(pool, "+33600000001")  # someone else's, kept
    done = mawid(db_dsn, "booking", "erase", ref, "--by", "request-2027-014")
    assert done.returncode == 0, done.stderr
    # Its contacts must prove themselves again; another citizen's need not.
    async with pool.acquire() as conn:
        sms, mail = await verification.proved(
            conn, PHONE, EMAIL, secret_key=TEST_SECRET, since=FIXED_NOW - timedelta(days=1)
        )
        other, _ = await verification.proved(
            conn, "+33600000001", None, secret_key=TEST_SECRET, since=FIXED_NOW - timedelta(days=1)
        )
    assert (sms, mail, other) == (False, False, True)
    assert not holds_personal_data(await stored_text(pool, booked.booking.id))
    messages = await pool.fetch("SELECT * FROM outbox WHERE booking_id = $1", booked.booking.id)
    # The reminders that were still to go are cancelled, not left to fail.
    assert {m["status"] for m in messages} <= {"cancelled", "skipped"}
    erased = await pool.fetchrow(
        "SELECT * FROM audit_log WHERE booking_id = $1 AND action = 'erase'", booked.booking.id
    )
    assert (erased["actor_kind"], erased["actor_id"]) == ("system", "cli:request-2027-014")
    assert erased["at"] is not None

    # The link shown at booking no longer opens it.
    with pytest.raises(errors.Unauthorized):
        await bookings.view(pool, ref, booked.manage_token, TEST_SECRET)
    missing = mawid(db_dsn, "booking", "export", "PAR-NOPE")
    assert missing.returncode == 1 and missing.stderr.strip() == "mawid booking export: Not found."


async def test_admins_export_and_erase_from_the_office_pages(
    pool: asyncpg.Pool, browsers: Any
) -> None:
    booked = await book(pool, 5)
    ref = booked.booking.reference
    await bookings.cancel(pool, ref, booked.manage_token, TEST_SECRET, FIXED_NOW)
    base = f"/office/consulate-paris/bookings/{ref}"

    manager: Browser = browsers()
    await manager.login(MANAGER)
    page = await manager.get(base)
    assert "export.json" not in await page.text()
    assert (await manager.get(f"{base}/export.json")).status == 403
    assert (await manager.post_form(f"{base}/erase", {})).status == 403

    admin: Browser = browsers()
    await admin.login(ADMIN)
    page = await admin.get(base, params={"lang": "fr"})
    assert "Exporter les données personnelles" in await page.text()
    resp = await admin.get(f"{base}/export.json")
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    assert json.loads(await resp.text())["booking"]["email"] == EMAIL
    confirm = await admin.get(f"{base}/erase")
    assert confirm.status == 200 and "<form" in await confirm.text()
    assert holds_personal_data(await stored_text(pool, booked.booking.id)), "asked, not done"
    resp = await admin.post_form(f"{base}/erase", {})
    assert resp.status == 200
    assert not holds_personal_data(await stored_text(pool, booked.booking.id))
    actions = await pool.fetch(
        "SELECT action, actor_kind, actor_id FROM audit_log WHERE booking_id = $1 ORDER BY id",
        booked.booking.id,
    )
    admin_id = await pool.fetchval("SELECT id::text FROM staff WHERE email = $1", ADMIN.email)
    assert [tuple(a) for a in actions][-2:] == [
        ("export", "staff", admin_id),
        ("erase", "staff", admin_id),
    ]
    page = await admin.get(base, params={"lang": "ar"})
    text = await page.text()
    assert NAME not in text and "erase" not in text.split("personal-data", 1)[1].split("</p>")[0]


async def test_an_unknown_or_foreign_booking_is_not_found(
    pool: asyncpg.Pool, browsers: Any
) -> None:
    booked = await book(pool, 5)
    admin: Browser = browsers()
    await admin.login(ADMIN)
    other = f"/office/prefecture-tiznit/bookings/{booked.booking.reference}/export.json"
    assert (await admin.get(other)).status == 404
    assert (await admin.get("/office/consulate-paris/bookings/PAR-NOPE/export.json")).status == 404
