"""The page's .ics download and every email's .ics describe one calendar entry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from icalendar import Calendar

from service.config import Settings
from service.domain.booking import new_manage_token
from service.notify.render import MessageData, ics


async def test_download_and_email_share_the_uid(
    app_client: TestClient,
    settings: Settings,  # type: ignore[type-arg]
) -> None:
    resp = await app_client.get(
        "/api/v1/offices/consulate-paris/availability",
        params={"service": "legalization", "from": "2027-02-03", "to": "2027-02-03"},
    )
    slot: dict[str, Any] = (await resp.json())["slots"][0]
    resp = await app_client.post(
        "/api/v1/bookings",
        json={
            "slot_id": slot["id"],
            "service": "legalization",
            "name": "Nadia",
            "email": "nadia@example.org",
            "language": "fr",
        },
    )
    booked = await resp.json()
    resp = await app_client.get(f"/b/{booked['reference']}/{booked['manage_token']}/calendar.ics")
    assert resp.status == 200
    [downloaded] = Calendar.from_ical(await resp.read()).walk("VEVENT")

    from datetime import datetime

    start = datetime.fromisoformat(booked["start"])
    emailed = ics(
        MessageData(
            kind="rescheduled",
            language="fr",
            reference=booked["reference"],
            citizen_name="Nadia",
            office_name="Consulat",
            office_address="adresse",
            office_kind="consulate",
            office_country="FR",
            office_city="Paris",
            office_prefix="PAR",
            timezone="Europe/Paris",
            service_name="Légalisation",
            bring="",
            starts_at=start,
            ends_at=start + timedelta(minutes=10),
            reason=None,
            base_url=settings.base_url,
            sequence=7,
            manage_token=new_manage_token(),
        )
    )
    [attached] = Calendar.from_ical(emailed).walk("VEVENT")
    assert str(downloaded["uid"]) == str(attached["uid"])
    assert str(downloaded["uid"]).startswith(booked["reference"] + "@")
