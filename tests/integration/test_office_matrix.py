"""Every office route × every role × office: the answer depends only on who
asks and where, never on what exists.

    anonymous                      page: 303 to the login page, API: 401
    another office's staff         404
    their office, role lacks it    403
    allowed                        anything but 401/403/404 and the login page
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.domain.staff import PERMISSIONS, Permission, Role
from tests.clock import FakeClock
from tests.fixtures.office import (
    ADMIN,
    AGENT,
    MANAGER,
    START,
    Browser,
    Demo,
    add_account,
    make_booking,
)

P = Permission
# (method, route as registered, permission, form or JSON body)
ROUTES: list[tuple[str, str, Permission, dict[str, str] | None]] = [
    ("GET", "/office/{office}/", P.VIEW_SCHEDULE, None),
    ("GET", "/office/{office}/day/{day}", P.VIEW_SCHEDULE, None),
    ("GET", "/office/{office}/day/{day}/print", P.VIEW_SCHEDULE, None),
    ("GET", "/office/{office}/day/{day}/export.csv", P.VIEW_SCHEDULE, None),
    ("POST", "/office/{office}/bookings/{reference}/status", P.CHANGE_STATUS, {"status": "x"}),
    ("POST", "/office/{office}/bookings/{reference}/document", P.CHANGE_STATUS, {"state": "x"}),
    ("GET", "/office/{office}/documents", P.VIEW_SCHEDULE, None),
    ("GET", "/office/{office}/bookings/{reference}", P.VIEW_BOOKING, None),
    ("GET", "/office/{office}/bookings/{reference}/export.json", P.MANAGE_PERSONAL_DATA, None),
    ("GET", "/office/{office}/bookings/{reference}/erase", P.MANAGE_PERSONAL_DATA, None),
    # The booking is still to come: an admin's erasure is refused (409).
    ("POST", "/office/{office}/bookings/{reference}/erase", P.MANAGE_PERSONAL_DATA, {}),
    ("GET", "/office/{office}/book", P.BOOK_FOR_CITIZEN, None),
    ("POST", "/office/{office}/book", P.BOOK_FOR_CITIZEN, {"slot_id": ""}),
    ("GET", "/office/{office}/hours", P.MANAGE_HOURS, None),
    ("POST", "/office/{office}/hours", P.MANAGE_HOURS, {"hours": "not a rule"}),
    ("POST", "/office/{office}/closures", P.MANAGE_HOURS, {"day": ""}),
    ("POST", "/office/{office}/closures/{day}/remove", P.MANAGE_HOURS, {}),
    ("GET", "/office/{office}/mobile-days", P.MANAGE_HOURS, None),
    ("POST", "/office/{office}/mobile-days", P.MANAGE_HOURS, {"town_fr": ""}),
    ("POST", "/office/{office}/mobile-days/withdraw", P.MANAGE_HOURS, {}),
    ("GET", "/office/{office}/stats", P.VIEW_STATS, None),
    ("GET", "/office/{office}/staff", P.MANAGE_STAFF, None),
    ("POST", "/office/{office}/staff", P.MANAGE_STAFF, {"role": "", "email": ""}),
    ("POST", "/office/{office}/staff/{staff_id}/deactivate", P.MANAGE_STAFF, {}),
    ("GET", "/office/{office}/services", P.MANAGE_SERVICES, None),
    ("GET", "/office/{office}/services/{service}", P.MANAGE_SERVICES, None),
    ("POST", "/office/{office}/services/{service}", P.MANAGE_SERVICES, {"duration_minutes": ""}),
    ("POST", "/office/{office}/services/{service}/documents", P.MANAGE_SERVICES, {}),
    ("GET", "/office/{office}/info", P.MANAGE_SERVICES, None),
    ("POST", "/office/{office}/calls", P.CHANGE_STATUS, {"counter": "0"}),
    ("POST", "/office/{office}/info", P.MANAGE_SERVICES, {"phone": "1"}),
    ("GET", "/office/{office}/feed", P.MANAGE_FEED, None),
    ("POST", "/office/{office}/feed", P.MANAGE_FEED, {}),
    ("GET", "/api/v1/offices/{office}/schedule", P.VIEW_SCHEDULE, None),
    (
        "POST",
        "/api/v1/offices/{office}/bookings/{reference}/status",
        P.CHANGE_STATUS,
        {"status": "x"},
    ),
    ("GET", "/api/v1/offices/{office}/bookings/{reference}", P.VIEW_BOOKING, None),
    ("GET", "/api/v1/offices/{office}/stats", P.VIEW_STATS, None),
    ("POST", "/api/v1/offices/{office}/calls", P.CHANGE_STATUS, {"counter": "0"}),
    (
        "POST",
        "/api/v1/offices/{office}/bookings/{reference}/document",
        P.CHANGE_STATUS,
        {"state": "x"},
    ),
    ("GET", "/api/v1/offices/{office}/documents/uncollected", P.VIEW_SCHEDULE, None),
    ("POST", "/api/v1/offices/{office}/services/{service}/allocation", P.MANAGE_SERVICES, {}),
    ("POST", "/api/v1/offices/{office}/services/{service}/draws", P.MANAGE_SERVICES, {}),
    ("GET", "/office/{office}/services/{service}/draws", P.MANAGE_SERVICES, None),
    ("POST", "/office/{office}/services/{service}/draws/mode", P.MANAGE_SERVICES, {}),
    ("POST", "/office/{office}/services/{service}/draws", P.MANAGE_SERVICES, {}),
    ("GET", "/office/{office}/services/{service}/draws/request", P.BOOK_FOR_CITIZEN, None),
    ("POST", "/office/{office}/services/{service}/draws/request", P.BOOK_FOR_CITIZEN, {}),
    ("GET", "/office/{office}/services/{service}/waitlist", P.BOOK_FOR_CITIZEN, None),
    ("POST", "/office/{office}/services/{service}/waitlist", P.BOOK_FOR_CITIZEN, {}),
]
# Public routes with {office} in them (the citizen side): not staff routes.
PUBLIC = {
    "/api/v1/offices/{office}/services",
    "/api/v1/offices/{office}/availability",
    # An office's draws: public, so that anyone can check them.
    "/api/v1/offices/{office}/draws",
    # The waiting room's screen: references and counters, no personal data.
    "/office/{office}/display",
    "/office/{office}/display/events",
}
OFFICES = ("consulate-paris", "prefecture-tiznit")


def test_the_matrix_covers_every_office_route(app_client: TestClient[Any, Any]) -> None:
    registered = set()
    for route in app_client.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        staff_route = path.startswith("/office/") or path.startswith("/api/v1/offices/{office}/")
        if "{office}" in path and staff_route and path not in PUBLIC and route.method != "HEAD":
            registered.add((route.method, path))
    assert registered == {(m, p) for m, p, _, _ in ROUTES}


async def test_role_office_route_matrix(
    pool: asyncpg.Pool, clock: FakeClock, browsers: Callable[[], Browser]
) -> None:
    agent_tiznit = await add_account(
        pool, "agent.tiznit@example.org", Role.AGENT, ["prefecture-tiznit"]
    )
    people: dict[str, tuple[Demo | None, Role | None, set[str]]] = {
        "anonymous": (None, None, set()),
        "admin": (ADMIN, Role.ADMIN, set(OFFICES)),
        "manager-paris": (MANAGER, Role.MANAGER, {"consulate-paris"}),
        "agent-paris": (AGENT, Role.AGENT, {"consulate-paris"}),
        "agent-tiznit": (agent_tiznit, Role.AGENT, {"prefecture-tiznit"}),
    }
    references = {
        "consulate-paris": (await make_booking(pool, "consulate-paris", "passport")),
        "prefecture-tiznit": (await make_booking(pool, "prefecture-tiznit", "mre-desk")),
    }
    services = {"consulate-paris": "passport", "prefecture-tiznit": "mre-desk"}
    # An account of each office to deactivate (again: the first allowed call
    # does it, the next ones find it already off).
    targets = {}
    for office in OFFICES:
        target = await add_account(pool, f"leaving@{office}.example.org", Role.AGENT, [office])
        async with pool.acquire() as conn:
            targets[office] = await conn.fetchval(
                "SELECT id FROM staff WHERE email = $1", target.email
            )
    day = (START + timedelta(days=1)).date().isoformat()
    failures = []
    checked = 0
    for name, (who, role, offices) in people.items():
        browser = browsers()
        if who is None:
            await browser.fetch_csrf()  # so that POSTs get past the CSRF check
        else:
            assert (await browser.login(who)).status == 303
        for office in OFFICES:
            booking = references[office]
            for method, template, permission, body in ROUTES:
                path = (
                    template.replace("{office}", office)
                    .replace("{day}", day)
                    .replace("{reference}", booking.reference)
                    .replace("{service}", services[office])
                    .replace("{staff_id}", str(targets[office]))
                )
                api = path.startswith("/api/")
                if method == "GET":
                    r = await browser.get(path)
                elif api:
                    r = await browser.session.post(
                        path, json=body, headers={"X-CSRF-Token": browser.csrf}
                    )
                    await r.read()
                else:
                    r = await browser.post_form(path, body)
                location = r.headers.get("Location", "")
                if role is None:
                    ok = (
                        r.status == 401
                        if api
                        else (r.status == 303 and "/office/login" in location)
                    )
                    want = "401" if api else "303 to login"
                elif office not in offices:
                    ok, want = r.status == 404, "404"
                elif permission not in PERMISSIONS[role]:
                    ok, want = r.status == 403, "403"
                else:
                    ok = r.status not in (401, 403, 404) and r.status < 500
                    ok = ok and "/office/login" not in location
                    want = "allowed"
                checked += 1
                if not ok:
                    failures.append(f"{name} {method} {path}: {r.status} {location} (want {want})")
    assert not failures, "\n".join(failures)
    assert checked == len(people) * len(OFFICES) * len(ROUTES)


async def test_a_reference_of_another_office_is_not_found_even_for_admins(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    tiznit = await make_booking(pool, "prefecture-tiznit", "mre-desk")
    browser = browsers()
    await browser.login(ADMIN)
    r = await browser.get(f"/office/consulate-paris/bookings/{tiznit.reference}")
    assert r.status == 404
    r = await browser.session.post(
        f"/api/v1/offices/consulate-paris/bookings/{tiznit.reference}/status",
        json={"status": "checked_in"},
        headers={"X-CSRF-Token": browser.csrf},
    )
    assert r.status == 404
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT status FROM bookings WHERE id = $1", tiznit.id)
            == "confirmed"
        )


@pytest.mark.parametrize("office", ["no-such-office", "prefecture-tiznit"])
async def test_unknown_and_foreign_offices_look_the_same(
    office: str, browsers: Callable[[], Browser]
) -> None:
    browser = browsers()
    await browser.login(AGENT)
    page = await browser.get(f"/office/{office}/day/2027-02-02")
    api = await browser.get(f"/api/v1/offices/{office}/schedule?date=2027-02-02")
    assert (page.status, api.status) == (404, 404)
    assert (await api.json())["error"] == "not_found"
