"""Rendering: turns an outbox row's data into an SMS text or a MIME e-mail
with an .ics attachment, dates by Babel in the office's zone.

Templates live in templates/messages/: sms/{kind}.{lang}.txt, and for email
one small file per kind and language (subject and lead paragraph) inside a
shared text and HTML layout.

The office's zone is named as the pages name it (service.web.i18n.zone_label:
"heure de Paris", "توقيت المغرب"), in every e-mail, and in an SMS when
service.domain.messages.sms_names_zone says so. An SMS leaves out its optional
parts (SMS_OPTIONAL, in that order) until it fits its segment budget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime as rfc2822_date
from email.utils import make_msgid
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import jinja2
from babel.dates import format_date, format_datetime

from service.domain.booking import book_again_url, calendar_uid, manage_url
from service.domain.draw import offer_url, receipt_url
from service.domain.feedback import feedback_url
from service.domain.ics import CalendarEvent, write_calendar
from service.domain.messages import (
    AFTER_VISIT_KINDS,
    CANCELLATION_KINDS,
    CODE,
    DOCUMENT_READY,
    DOCUMENT_UNCOLLECTED,
    DRAW_NOT_SERVED,
    DRAW_OFFER,
    ENTRY_RECEIVED,
    MOBILE_DAY_PLANNED,
    OFFER_KINDS,
    WAITLIST_OFFER,
    WHILE_HELD_KINDS,
    sms_names_zone,
)
from service.domain.mobile_alerts import mobile_day_url, subscription_url
from service.domain.sms import SEGMENT_BUDGET, SegmentCount, count_segments
from service.domain.validation import is_email, strip_invisible
from service.notify import whatsapp
from service.web.i18n import RTL_LANGUAGES, babel_locale, zone_label

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"

# SMS dates avoid French month names: "août" has a û, which is not GSM-7 and
# would switch the whole message to UCS-2 (70 characters a segment).
# The Arabic SMS leaves out the weekday: with the longest office and service
# names and the manage link it would take a fourth UCS-2 segment.
SMS_DATE_PATTERNS = {
    "ar": "d MMMM y، HH:mm",
    "fr": "EEEE dd/MM/y 'à' HH:mm",
    "en": "EEE d MMM y, HH:mm",
    # Like French: "miércoles"/"sábado" carry accents outside GSM-7.
    "es": "dd/MM/y, HH:mm",
    # Tifinagh is UCS-2 anyway; the weekday would cost a segment, like Arabic's.
    "zgh": "d MMMM y, HH:mm",
}
EMAIL_DATE_PATTERNS = {
    "ar": "EEEE d MMMM y، HH:mm",
    "fr": "EEEE d MMMM y 'à' HH:mm",
    "en": "EEEE d MMMM y 'at' HH:mm",
    "es": "EEEE d 'de' MMMM 'de' y, HH:mm",
    "zgh": "EEEE d MMMM y, HH:mm",
}
# An office's reason can be long; the SMS keeps its start (the email has it all).
SMS_REASON_CHARS = 40
# Parts of an SMS left out, first to last, while it is over its budget: the
# address (the e-mail has it), the reference (the manage link carries it; a
# cancelled booking needs it least), the service (office and time still say
# which appointment).
SMS_OPTIONAL = ("address", "reference", "service")
# An announcement's: the venue's address and the opening of bookings (the
# day's page has both), then the consulate's name (the town and the words
# "mobile consular day" still say what it is).
SMS_OPTIONAL_BY_KIND: dict[str, tuple[str, ...]] = {
    MOBILE_DAY_PLANNED: ("address", "opens", "office")
}
# The days of a mobile day, without their hours; SMS ones GSM-7 in the
# Latin languages, like SMS_DATE_PATTERNS.
SMS_DAY_PATTERNS = {"ar": "d MMMM y", "fr": "dd/MM/y", "en": "d MMM y", "es": "dd/MM/y",
                    "zgh": "d MMMM y"}  # fmt: skip
EMAIL_DAY_PATTERNS = {
    "ar": "EEEE d MMMM y",
    "fr": "EEEE d MMMM y",
    "en": "EEEE d MMMM y",
    "es": "EEEE d 'de' MMMM 'de' y",
    "zgh": "EEEE d MMMM y",
}


@dataclass(frozen=True, slots=True)
class MessageData:
    kind: str
    language: str
    reference: str
    citizen_name: str
    office_name: str
    office_address: str
    # consulate | prefecture, its country and city (in the message's language),
    # and its reference prefix: the zone's name and the "book again" link.
    office_kind: str
    office_country: str
    office_city: str
    office_prefix: str
    timezone: str
    service_name: str
    bring: str
    starts_at: datetime
    ends_at: datetime
    reason: str | None
    base_url: str
    # Orders successive .ics updates of one booking (higher wins).
    sequence: int
    # Fresh for this message; see service.worker.jobs.send_message.
    manage_token: str
    # The verification code a code message carries (drawn by the worker).
    code: str = ""
    # A draw request's message (its code, "not served"): `reference` is the
    # entry id and `starts_at` the close of its window or end of its period.
    draw_request: bool = False
    # A document message: the office's pickup hours (HH:MM, its zone) and
    # whether pickup takes an appointment.
    pickup_from: str = "14:00"
    pickup_until: str = "16:00"
    pickup_by_appointment: bool = False
    # The code of a place on an instant service's waiting list (an entry
    # without a window: `draw_request` is true too).
    waitlist: bool = False
    # A mobile day subscription's message (its code, an announcement): for
    # an announcement, the day (its id, dates, and the opening of its
    # bookings while still ahead); `reference` is the subscription's id, the
    # office's city and zone the venue's.
    alert: bool = False
    mobile_day_id: int | None = None
    days: tuple[date, ...] = ()
    booking_opens_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RenderedSms:
    body: str
    count: SegmentCount


@dataclass(frozen=True, slots=True)
class RenderedWhatsApp:
    """A WhatsApp template message: its variables, and its text as shown."""

    variables: dict[str, str]
    body: str


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    message: EmailMessage
    text: str


def redact(text: str, secret: str, placeholder: str = "[token]") -> str:
    """What is kept of a sent body: a token or a code only ever exists as a hash."""
    return text.replace(secret, placeholder) if secret else text


def format_when(instant: datetime, timezone: str, language: str, *, sms: bool) -> str:
    patterns = SMS_DATE_PATTERNS if sms else EMAIL_DATE_PATTERNS
    local = instant.astimezone(ZoneInfo(timezone))
    return format_datetime(local, patterns[language], locale=babel_locale(language))


def format_days(days: tuple[date, ...], language: str, *, sms: bool) -> str:
    """A mobile day's dates: one, or the first and the last ("13-14 mars"
    style when the pattern starts with the day and they share a month)."""
    if not days:
        return ""
    pattern = (SMS_DAY_PATTERNS if sms else EMAIL_DAY_PATTERNS)[language]
    locale = babel_locale(language)
    first, last = days[0], days[-1]
    if first == last:
        return format_date(first, pattern, locale=locale)
    if sms and pattern.startswith("d ") and (first.year, first.month) == (last.year, last.month):
        return f"{first.day}-{format_date(last, pattern, locale=locale)}"
    return " - ".join(format_date(day, pattern, locale=locale) for day in (first, last))


def short_reason(reason: str | None, limit: int = SMS_REASON_CHARS) -> str:
    text = re.sub(r"\s+", " ", reason or "").strip()
    if len(text) <= limit:
        return text
    # Three dots, not "…": the ellipsis is not GSM-7.
    return text[: limit - 3].rstrip() + "..."


# Letters written right to left (Hebrew, Arabic and their presentation forms).
_RIGHT_TO_LEFT = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")


def isolate_rtl(text: str, language: str) -> str:
    """A right-to-left name (an office's Arabic name, shown in Tamazight) in
    a left-to-right message, closed by a left-to-right mark: bare, what
    follows it joined its run, the day of a date leaving its month
    ("2 ,عمالة") and two such names swapping places around their comma.
    One character, not an isolate's two: the SMS budget is tight."""
    if language in RTL_LANGUAGES or not _RIGHT_TO_LEFT.search(text):
        return text
    return f"{text}\u200e"


class Renderer:
    """Jinja environments for message bodies; one per worker, no globals."""

    def __init__(self, templates_dir: Path = TEMPLATES_DIR) -> None:
        self._templates_dir = templates_dir
        loader = jinja2.FileSystemLoader(str(templates_dir / "messages"))
        common: dict[str, object] = {
            "loader": loader,
            "undefined": jinja2.StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "keep_trailing_newline": False,
        }
        # S701: the text environment renders plain text (SMS and text/plain),
        # where HTML escaping would corrupt the message.
        self._text = jinja2.Environment(autoescape=False, **common)  # type: ignore[arg-type]  # noqa: S701
        self._html = jinja2.Environment(autoescape=True, **common)  # type: ignore[arg-type]

    def _context(self, data: MessageData, *, sms: bool) -> dict[str, object]:
        zone = zone_label(data.office_country, data.office_city, data.language)
        # Names and reasons were cleaned on the way in; rows older than that
        # are cleaned here, so no message shows a bidi trick.
        reason = strip_invisible(data.reason or "")
        lang = data.language
        return {
            "kind": data.kind,
            "lang": lang,
            "name": isolate_rtl(strip_invisible(data.citizen_name), lang),
            "office": isolate_rtl(data.office_name, lang),
            "service": isolate_rtl(data.service_name, lang),
            "address": isolate_rtl(data.office_address, lang),
            "bring": data.bring,
            "when": format_when(data.starts_at, data.timezone, data.language, sms=sms),
            "zone": zone if not sms or sms_names_zone(data.office_kind, data.timezone) else "",
            "reference": data.reference,
            "link": manage_url(data.base_url, data.reference, data.manage_token),
            "again": book_again_url(data.base_url, data.office_prefix),
            "reason": ""
            if data.kind in OFFER_KINDS or data.kind == DRAW_NOT_SERVED
            else isolate_rtl(short_reason(reason) if sms else reason, lang),
            # "Not served": the request's place on the waiting list (in `reason`).
            "place": reason if data.kind == DRAW_NOT_SERVED else "",
            "active": data.kind not in CANCELLATION_KINDS,
            "code": data.code,
            "draw_request": data.draw_request,
            "waitlist": data.waitlist,
            # An offer (a draw's, a waiting list's): its own page, and its
            # expiry (carried in `reason`) in the office's zone.
            "offer_link": offer_url(data.base_url, data.reference, data.manage_token),
            # A draw request's receipt (see it, withdraw it).
            "receipt_link": data.base_url + receipt_url(data.reference, data.manage_token)
            if data.draw_request
            else "",
            "expires": format_when(
                datetime.fromisoformat(data.reason), data.timezone, data.language, sms=sms
            )
            if data.kind in OFFER_KINDS and data.reason
            else "",
            "pickup_from": data.pickup_from,
            "pickup_until": data.pickup_until,
            "pickup_by_appointment": data.pickup_by_appointment,
            "feedback_link": feedback_url(data.base_url, data.reference, data.manage_token),
            "documents": data.kind in (DOCUMENT_READY, DOCUMENT_UNCOLLECTED),
            # A subscription's messages: the announced day's town (the venue's
            # city), dates, opening of bookings, and the two links.
            "alert": data.alert,
            "town": isolate_rtl(data.office_city, lang),
            "days": format_days(data.days, data.language, sms=sms),
            "opens": format_when(data.booking_opens_at, data.timezone, data.language, sms=sms)
            if data.booking_opens_at
            else "",
            "book_link": data.base_url + mobile_day_url(data.mobile_day_id)
            if data.mobile_day_id
            else "",
            "stop_link": data.base_url + subscription_url(int(data.reference), data.manage_token)
            if data.alert and data.manage_token
            else "",
        }

    def sms(self, data: MessageData) -> RenderedSms:
        """The SMS with as many of its optional parts as its budget allows."""
        template = self._text.get_template(f"sms/{data.kind}.{data.language}.txt")
        context = self._context(data, sms=True)
        budget = SEGMENT_BUDGET[data.language]
        optional = SMS_OPTIONAL_BY_KIND.get(data.kind, SMS_OPTIONAL)
        rendered = None
        for left_out in range(len(optional) + 1):
            context.update(dict.fromkeys(optional[:left_out], ""))
            body = " ".join(template.render(context).split())
            rendered = RenderedSms(body, count_segments(body))
            if rendered.count.segments <= budget:
                break
        assert rendered is not None
        return rendered

    def whatsapp(self, data: MessageData) -> RenderedWhatsApp:
        """The values of the approved template of the message's kind, in
        e-mail detail (no segment budget), the zone after the time."""
        ctx = self._context(data, sms=False)
        when = f"{ctx['when']} ({ctx['zone']})" if ctx["zone"] else str(ctx["when"])
        values = {name: str(value) for name, value in ctx.items()} | {"when": when}
        filled = whatsapp.variables(data.kind, values)
        text = whatsapp.template_text(self._templates_dir, data.kind, data.language)
        return RenderedWhatsApp(filled, whatsapp.fill(text, filled))

    def email(
        self, data: MessageData, *, to: str, sender: str, reply_to: str | None
    ) -> RenderedEmail:
        if not is_email(to):
            # One recipient, always: an address that is not exactly one
            # mailbox (a row from before the address rules) is never sent to.
            raise ValueError("the recipient is not one e-mail address")
        ctx = self._context(data, sms=False)
        # The code message has a layout of its own: no greeting, no details
        # the citizen typed, no calendar invitation.
        # An offer has one too: nothing is booked until it is accepted.
        layouts: dict[str, str] = {
            CODE: "email/code_layout",
            DRAW_OFFER: "email/offer_layout",
            WAITLIST_OFFER: "email/offer_layout",
            DRAW_NOT_SERVED: "email/notice_layout",
            ENTRY_RECEIVED: "email/notice_layout",
            MOBILE_DAY_PLANNED: "email/alert_layout",
        }
        # A message after the visit has one without the appointment's time:
        # it speaks of what happens next.
        layouts.update(dict.fromkeys(AFTER_VISIT_KINDS, "email/after_layout"))
        layout = layouts.get(data.kind, "email/layout")
        text = self._text.get_template(f"{layout}.txt.j2").render(ctx).strip() + "\n"
        html = self._html.get_template(f"{layout}.html.j2").render(ctx)
        module = self._text.get_template(f"email/{data.kind}.{data.language}.j2").make_module(ctx)
        subject = " ".join(str(module.subject()).split())  # type: ignore[attr-defined]

        msg = EmailMessage()
        msg["Subject"] = subject
        msg["From"] = sender
        msg["To"] = to
        if reply_to:
            msg["Reply-To"] = reply_to
        msg["Date"] = rfc2822_date(datetime.now().astimezone())
        msg["Message-ID"] = make_msgid(domain=_host(data.base_url))
        msg["Content-Language"] = data.language
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
        if data.kind in WHILE_HELD_KINDS or data.kind in AFTER_VISIT_KINDS:
            return RenderedEmail(msg, text)
        msg.add_attachment(
            ics(data),
            maintype="text",
            subtype="calendar",
            filename=f"{data.reference}.ics",
            params={"method": "CANCEL" if data.kind in CANCELLATION_KINDS else "PUBLISH"},
        )
        return RenderedEmail(msg, text)


def _host(base_url: str) -> str:
    return urlsplit(base_url).hostname or "mawid.invalid"


def ics(data: MessageData) -> bytes:
    """An iCalendar event in the office's zone; one UID per booking, so a move
    updates and a cancellation removes the entry the citizen already has."""
    zone = ZoneInfo(data.timezone)
    cancelled = data.kind in CANCELLATION_KINDS
    link = manage_url(data.base_url, data.reference, data.manage_token)
    lines = [data.reference, data.bring, link] if data.bring else [data.reference, link]
    event = CalendarEvent(
        uid=calendar_uid(data.reference, data.base_url),
        sequence=data.sequence,
        stamp=datetime.now().astimezone(ZoneInfo("UTC")),
        start=data.starts_at.astimezone(zone),
        end=max(data.ends_at, data.starts_at + timedelta(minutes=5)).astimezone(zone),
        summary=f"{data.service_name} – {data.office_name}",
        location=data.office_address,
        description="\n".join(lines),
        url=link,
        status="CANCELLED" if cancelled else "CONFIRMED",
    )
    return write_calendar([event], method="CANCEL" if cancelled else "PUBLISH")
