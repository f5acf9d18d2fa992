"""What every office page shares: rendering with the language switch, the
notices shown after a redirect, the base context, and reading the request.

Messages are gettext ids (N_), translated here at the edge; dates and times
are shown in the office's zone.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from yarl import URL

from service.domain.errors import N_, NotFound, Refusal
from service.domain.fields import parse_day, parse_id
from service.domain.models import LANGUAGES
from service.domain.staff import Permission, Role, StaffMember
from service.domain.validation import RawDetails
from service.office.common import office_or_404
from service.web import errors
from service.web.i18n import LANG_QUERY, LANGUAGE_NAMES, gettext, zone_label
from service.web.keys import CLOCK_KEY, POOL_KEY
from service.web.labels import label_function
from service.web.templating import request_language

_NOTICES = {
    "status_changed": N_("Saved."),
    "bad_transition": N_("This change is not possible for this appointment."),
    "not_found": N_("No such booking at this office."),
    "invalid": N_("Choose an action; a cancellation needs a reason."),
    "saved": N_("Saved. Slots were regenerated."),
    "mobile_day": N_("The mobile consular day is published; its slots are ready."),
    "mobile_day_withdrawn": N_(
        "The mobile consular day is withdrawn: it is no longer listed, and its times can no "
        "longer be booked."
    ),
    "unchanged": N_("Nothing changed: the office was already set this way."),
    "copied": N_("Copied. Nothing is saved until you save the hours."),
    "added": N_("A block for a date range was added below. Give its dates, then save."),
    "deactivated": N_("The account is deactivated: its sessions and API tokens no longer work."),
    "feed_rotated": N_("A new feed address was made; the old one no longer works."),
    "file_moved": N_("Saved: the document file is updated."),
    "documents_saved": N_("Saved: how this service's documents are followed."),
    "info_saved": N_("Saved: the practical information citizens read on the office's page."),
}


def translate(request: web.Request, message: str) -> str:
    return gettext(request_language(request), message)


def refusal_text(request: web.Request, refused: Refusal) -> str:
    """A refusal shown inside the page's own form, in the page language."""
    return errors.refusal_text(request_language(request), refused)


def notice(request: web.Request, key: str | None) -> str | None:
    text = _NOTICES.get(key or "")
    return translate(request, text) if text else None


def render(
    request: web.Request,
    name: str,
    context: dict[str, Any],
    status: int = 200,
    switch_to: str | None = None,
) -> web.Response:
    if request.method != "GET":
        # A page answering a form post: the language switch must lead to a
        # page that can be fetched (some posts have no GET twin), not a 405.
        context["language_links"] = _language_links(request, switch_to or request.path)
    response = aiohttp_jinja2.render_template(f"office/{name}", request, context, status=status)
    # Pages carry personal data: never keep them in shared caches or history.
    response.headers["Cache-Control"] = "no-store"
    return response


def _language_links(request: web.Request, path: str) -> list[dict[str, Any]]:
    language = request_language(request)
    return [
        {
            "code": code,
            "name": LANGUAGE_NAMES[code],
            "url": str(URL(path).update_query({LANG_QUERY: code})),
            "current": code == language,
        }
        for code in LANGUAGES
    ]


async def base_context(
    request: web.Request, member: StaffMember, office_id: str | None
) -> dict[str, Any]:
    office = None
    if office_id is not None:
        async with request.app[POOL_KEY].acquire() as conn:
            office = await office_or_404(conn, office_id)
    language = request_language(request)
    return {
        "member": member,
        "office": office,
        # The office's zone as the citizen pages name it ("heure de Paris").
        "zone": zone_label(office.country, office.city[language], language) if office else "",
        "Permission": Permission,
        "Role": Role,
        "label": label_function(request_language(request)),
    }


def now(request: web.Request) -> datetime:
    return request.app[CLOCK_KEY]()


def office_id(request: web.Request) -> str:
    return request.match_info["office"]


def is_iso_date(raw: str) -> bool:
    """A YYYY-MM-DD day the pages can show (service.domain.fields.parse_day)."""
    return parse_day(raw) is not None


def day(raw: str) -> date:
    """A day from the path; 404 when it is none the pages can show."""
    found = parse_day(raw)
    if found is None:
        raise NotFound()
    return found


def path_id(request: web.Request, name: str) -> int:
    """An id from the path; 404 when it cannot be one."""
    found = parse_id(request.match_info[name])
    if found is None:
        raise NotFound()
    return found


async def form(request: web.Request) -> dict[str, str]:
    fields = await request.post()
    return {k: v for k, v in fields.items() if isinstance(v, str)}


def staff_details(form: dict[str, str]) -> RawDetails:
    """A citizen's details as staff type them (templates/office/_details.html)."""
    return RawDetails(
        name=form.get("name"),
        phone=form.get("phone"),
        phone_country=form.get("phone_country") or None,
        email=form.get("email"),
        language=form.get("language"),
        document_number=form.get("document_number"),
    )
