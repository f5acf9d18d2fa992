"""The OpenAPI 3 document of /api/v1, kept beside the handlers it describes.

It is the API's contract, and a test holds the server to it (schemathesis
over every operation, every check): each status an operation can answer is
listed, and the limits of what it accepts come from the same definitions
the handlers use (service.domain.fields).
"""

from __future__ import annotations

from typing import Any

from service.domain import fields
from service.domain.documents import MAX_REFUSAL_REASON
from service.domain.messages import MESSAGE_CHANNELS
from service.domain.models import LANGUAGES
from service.domain.office_day import WHATSAPP_STATUSES
from service.domain.staff import MAX_REASON_LENGTH
from service.web.api import BOOKING_TEXT

# Every `error` an /api answer can carry.
_ERROR_CODES = [
    "malformed_json",
    "malformed_header",
    "malformed_form",
    "validation",
    "unauthorized",
    "forbidden",
    "csrf",
    "not_found",
    "office_not_found",
    "service_not_found",
    "slot_not_found",
    "slot_full",
    "already_booked",
    "too_late",
    "too_early",
    "not_open_yet",
    "not_active",
    "bad_transition",
    "not_today",
    "nobody_waiting",
    "method_not_allowed",
    "too_large",
    "internal",
    "unavailable",
    "rate_limited",
    "household_cap",
    "codes_per_contact",
    "wrong_code",
    "code_attempts_exhausted",
    "hold_expired",
    "not_held",
    "resend_too_soon",
    "resend_limit",
    "reschedule_limit",
    "draw_not_found",
    "not_draw_mode",
    "window_overlaps",
    "draw_ahead",
    "draw_only",
    "no_document",
    "not_received",
    "bad_file_transition",
    "mobile_day_not_open",
]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref("Error")}},
    }
    if headers:
        answer["headers"] = headers
    return answer


def _too_many(description: str) -> dict[str, Any]:
    """A 429: how many seconds to wait is in Retry-After."""
    return _error(
        description,
        {"Retry-After": {"description": "Seconds to wait before trying again", "schema": _INT}},
    )


_RATE_LIMITED = "rate_limited: too many requests from this client address (LIMIT_* settings)"


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _record(properties: dict[str, Any]) -> dict[str, Any]:
    """An object that always has each of its properties."""
    return {"type": "object", "required": list(properties), "properties": properties}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_TEXT = {"type": "string"}
_INT = {"type": "integer"}
_NULLABLE_TEXT = {"type": "string", "nullable": True}
_LANG = {"type": "object", "properties": {k: _TEXT for k in ("ar", "fr", "en")}}
_ID = {"type": "integer", "format": "int64", "minimum": fields.ID_MIN, "maximum": fields.ID_MAX}
# The days service.domain.fields.parse_day reads, FIRST_DAY to LAST_DAY; a
# pattern rather than the date format, which spans years 1 to 9999.
_DAY = {
    "type": "string",
    "pattern": fields.DAY_PATTERN,
    "description": f"A day, YYYY-MM-DD, {fields.FIRST_DAY} to {fields.LAST_DAY}",
    "example": "2027-02-02",
}
_OFFICE_PARAM = {
    "name": "office",
    "in": "path",
    "required": True,
    "schema": _TEXT,
    "example": "consulate-paris",
}
_SERVICE_PARAM = {
    "name": "service",
    "in": "path",
    "required": True,
    "schema": _TEXT,
    "example": "passport",
}
_MODE = {"type": "string", "enum": ["instant", "draw"]}
_REFERENCE_PARAM = {
    "name": "reference",
    "in": "path",
    "required": True,
    "schema": _TEXT,
    "example": "PAR-7KX3QM",
}
_ACCEPT_LANGUAGE = {
    "name": "Accept-Language",
    "in": "header",
    "required": False,
    "description": "ar, fr or en: the language of error messages",
    "schema": _TEXT,
}
_TOKEN: list[dict[str, list[str]]] = [{"manageToken": []}]
_STAFF: list[dict[str, list[str]]] = [{"staffToken": []}, {"staffSession": []}]

# What any operation may answer, whatever it does.
_ANY = {
    "400": _error("A body, form or header that cannot be read (malformed_*)"),
    "503": _error(
        "The database does not answer; try again after Retry-After seconds",
        {"Retry-After": {"schema": _INT}},
    ),
}
_BODY = {"413": _error("Body over 64 KiB")}
_STAFF_REFUSALS = {
    "401": _error("Not signed in, or an API token that is not valid"),
    "403": _error("The role may not do this, or a session call without its CSRF header"),
    "404": _error("Unknown office or booking, or not this member's office"),
}
_TOKEN_REFUSALS = {
    "401": _error("No manage token, a wrong one, or an unknown reference (indistinguishable)"),
    "429": _too_many(_RATE_LIMITED),
}


def _operation(summary: str, responses: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"summary": summary, **more, "responses": {**_ANY, **responses}}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Mawid API",
            "version": "1.0.0",
            "description": "Appointments at Moroccan consulates and prefecture offices.",
        },
        "servers": [{"url": "/"}],
        "paths": {**_citizen_paths(), **_draw_paths(), **_office_paths()},
        "components": {
            "securitySchemes": {
                "manageToken": {"type": "http", "scheme": "bearer"},
                "staffToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A per-staff API token created from the office pages",
                },
                "staffSession": {"type": "apiKey", "in": "cookie", "name": "mawid_staff"},
            },
            "schemas": _schemas(),
        },
    }


def _draw_paths() -> dict[str, Any]:
    """The public record of draws (issue 12): no personal data."""
    return {
        "/api/v1/draws/{id}": {
            "get": _operation(
                "A draw's public record: the seed's hash from the opening, the entry ids "
                "at the close, the seed and the ranking after the draw",
                {"200": _ok("The draw", _ref("Draw")), "404": _error("Unknown draw")},
                parameters=[{"name": "id", "in": "path", "required": True, "schema": _ID}],
            )
        },
        "/api/v1/offices/{office}/draws": {
            "get": _operation(
                "An office's draws",
                {
                    "200": _ok("Draws", {"type": "array", "items": _ref("DrawSummary")}),
                    "404": _error("Unknown office"),
                },
                parameters=[_OFFICE_PARAM],
            )
        },
    }


def _citizen_paths() -> dict[str, Any]:
    booking_refusals = {
        "404": _error("Unknown office, service or slot"),
        "409": _error(
            "slot_full, already_booked, too_late, not_open_yet or mobile_day_not_open"
        ),
        "422": _error("validation: one message per field"),
        "429": _too_many(_RATE_LIMITED),
    }

    return {
        "/api/v1/offices": {
            "get": _operation(
                "List offices",
                {"200": _ok("Offices", {"type": "array", "items": _ref("Office")})},
            )
        },
        "/api/v1/mobile-days": {
            "get": _operation(
                "Upcoming mobile consular days (a consulate serving in a town of its "
                "district, on the venue's clock), soonest first",
                {"200": _ok("Mobile days", {"type": "array", "items": _ref("MobileDay")})},
            )
        },
        "/api/v1/offices/{office}/services": {
            "get": _operation(
                "Services offered at an office",
                {
                    "200": _ok("Services", {"type": "array", "items": _ref("Service")}),
                    "404": _error("Unknown office"),
                },
                parameters=[_OFFICE_PARAM, _ACCEPT_LANGUAGE],
            )
        },
        "/api/v1/offices/{office}/availability": {
            "get": _operation(
                "Free slots inside the booking window, at the office and at its mobile "
                "days open for booking",
                {
                    "200": _ok("Availability", _ref("Availability")),
                    "404": _error("Unknown office or service, or a mobile day not open"),
                    "422": _error("Bad dates or site"),
                    "429": _too_many(_RATE_LIMITED),
                },
                parameters=[
                    _OFFICE_PARAM,
                    _ACCEPT_LANGUAGE,
                    {
                        "name": "service",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1},
                        "example": "passport",
                    },
                    {
                        "name": "from",
                        "in": "query",
                        "required": True,
                        "schema": _DAY,
                        "description": "First local date in the office's zone, "
                        f"{fields.FIRST_DAY} to {fields.LAST_DAY}",
                    },
                    {
                        "name": "to",
                        "in": "query",
                        "required": True,
                        "schema": _DAY,
                        "description": "Last local date, at most 62 days after `from`",
                    },
                    {
                        "name": "site",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "default": "all"},
                        "description": "all (the office and its mobile days), office, or a "
                        "mobile day's id; each site's dates are its own zone's",
                    },
                ],
            )
        },
        "/api/v1/bookings": {
            "post": _operation(
                "Book a slot",
                {
                    "201": _ok(
                        "Booked; manage_token is shown only here",
                        {
                            "allOf": [
                                _ref("Booking"),
                                {
                                    "type": "object",
                                    "required": ["manage_token", "manage_url"],
                                    "properties": {
                                        "manage_token": _TEXT,
                                        "manage_url": _TEXT,
                                        "verification": _ref("CodeState"),
                                    },
                                },
                            ]
                        },
                    ),
                    **_BODY,
                    **booking_refusals,
                    "409": _error(
                        "slot_full, already_booked, too_late, not_open_yet, household_cap "
                        "(this phone number or address already has the office's most active "
                        "bookings) or draw_only (the service's seats are given by a draw)"
                    ),
                    "429": _too_many(
                        f"{_RATE_LIMITED}; or codes_per_contact: too many codes to this "
                        "phone number or address in 24 hours"
                    ),
                },
                parameters=[_ACCEPT_LANGUAGE],
                requestBody=_json_body(_ref("BookingRequest")),
                description=(
                    "A service that verifies contacts answers with status `held`: the seat "
                    "is kept until `hold_expires_at` while a 6-digit code goes to the phone "
                    "by SMS (or to the e-mail address without one); POST .../verify with it "
                    "confirms the booking. A contact proved on an earlier booking is not "
                    "asked again for a while."
                ),
            )
        },
        "/api/v1/bookings/{reference}/verify": {
            "post": _managed(
                "Confirm a held booking with the code sent to the citizen",
                "Confirmed",
                {
                    **_BODY,
                    "409": _error(
                        "not_held (not waiting for a code), hold_expired (the seat was "
                        "released) or code_attempts_exhausted (5 wrong codes: released)"
                    ),
                    "422": _error("wrong_code: `fields.code`; the message says the tries left"),
                },
                requestBody=_json_body(
                    {
                        "type": "object",
                        "required": ["code"],
                        "properties": {
                            "code": {
                                "type": "string",
                                "example": "042917",
                                "description": "The 6 digits sent to the citizen",
                            }
                        },
                    }
                ),
            )
        },
        "/api/v1/bookings/{reference}/resend": {
            "post": _operation(
                "Send a held booking's code again",
                {
                    "202": _ok("A new code is on its way", _ref("CodeState")),
                    **_TOKEN_REFUSALS,
                    "409": _error("not_held, hold_expired or resend_limit (no resend left)"),
                    "429": _too_many(
                        f"resend_too_soon (Retry-After: until the next one); "
                        f"codes_per_contact; or {_RATE_LIMITED}"
                    ),
                },
                description="At most 3 times, each after a longer wait (1, 2, 4 minutes).",
                parameters=[_REFERENCE_PARAM, _ACCEPT_LANGUAGE],
                security=_TOKEN,
            )
        },
        "/api/v1/bookings/{reference}": {"get": _managed("A booking", "The booking", {})},
        "/api/v1/bookings/{reference}/cancel": {
            "post": _managed(
                "Cancel before the appointment starts",
                "Cancelled",
                {"409": _error("too_late or not_active")},
            )
        },
        "/api/v1/bookings/{reference}/reschedule": {
            "post": _managed(
                "Move to another slot of the same service, atomically",
                "Moved",
                {
                    **_BODY,
                    **booking_refusals,
                    "409": _error(
                        "slot_full, too_late, not_active, reschedule_limit (moved as many "
                        "times as a citizen may, RESCHEDULE_LIMIT) or draw_only (the service "
                        "has given its seats by a draw since the booking)"
                    ),
                },
                requestBody=_json_body(
                    {
                        "type": "object",
                        "required": ["slot_id"],
                        "properties": {
                            "slot_id": _ID,
                            "site": {
                                "description": "Where the new slot is: left out, the "
                                "booking's own site; office, the office's own times; or a "
                                "mobile day's id. A slot elsewhere is not found (404).",
                                "oneOf": [{"type": "string", "enum": ["office"]}, _ID],
                            },
                        },
                    }
                ),
            )
        },
    }


def _managed(
    summary: str, done: str, refusals: dict[str, Any], **more: Any
) -> dict[str, Any]:
    """An operation on a booking opened by its reference and manage token."""
    return _operation(
        summary,
        {"200": _ok(done, _ref("Booking")), **refusals, **_TOKEN_REFUSALS},
        parameters=[_REFERENCE_PARAM, _ACCEPT_LANGUAGE],
        security=_TOKEN,
        **more,
    )


def _office_paths() -> dict[str, Any]:
    """The office side: same authorisation as the office pages."""
    return {
        "/api/v1/offices/{office}/schedule": {
            "get": _operation(
                "The bookings of one local day, in time order",
                {
                    "200": _ok("Schedule", _ref("Schedule")),
                    **_STAFF_REFUSALS,
                    "422": _error(f"A date outside {fields.FIRST_DAY} to {fields.LAST_DAY}"),
                },
                security=_STAFF,
                parameters=[
                    _OFFICE_PARAM,
                    _ACCEPT_LANGUAGE,
                    {"name": "date", "in": "query", "required": False, "schema": _DAY},
                ],
            )
        },
        "/api/v1/offices/{office}/bookings/{reference}": {
            "get": _operation(
                "A booking with its messages and audit log",
                {"200": _ok("Booking", _ref("StaffBookingHistory")), **_STAFF_REFUSALS},
                security=_STAFF,
                parameters=[_OFFICE_PARAM, _REFERENCE_PARAM, _ACCEPT_LANGUAGE],
            )
        },
        "/api/v1/offices/{office}/bookings/{reference}/status": {
            "post": _operation(
                "Check in, done, no-show, or cancel by the office with a reason",
                {
                    "200": _ok("Changed", _ref("StaffBooking")),
                    **_BODY,
                    **_STAFF_REFUSALS,
                    "409": _error(
                        "Not possible now: from the current status (bad_transition), "
                        "an arrival on another day than the appointment's (not_today), "
                        "absent before the start (too_early)"
                    ),
                    "422": _error("validation"),
                },
                security=_STAFF,
                parameters=[_OFFICE_PARAM, _REFERENCE_PARAM, _ACCEPT_LANGUAGE],
                requestBody=_json_body(
                    _move_with_reason(
                        "status", ["checked_in", "done", "no_show"], "cancelled", MAX_REASON_LENGTH
                    )
                ),
            )
        },
        **_document_paths(),
        "/api/v1/offices/{office}/calls": {
            "post": _operation(
                "Call the next citizen who checked in to a counter",
                {
                    "201": _ok("Called", _ref("Call")),
                    **_BODY,
                    **_STAFF_REFUSALS,
                    "409": _error("Nobody is waiting (nobody_waiting)"),
                    "422": _error("No such counter (validation)"),
                },
                description=(
                    "Citizens who checked in for one of today's appointments wait in the "
                    "order of their appointments; each is called once. The office's public "
                    "display (/office/{office}/display) shows the call."
                ),
                security=_STAFF,
                parameters=[_OFFICE_PARAM, _ACCEPT_LANGUAGE],
                requestBody=_json_body(
                    {
                        "type": "object",
                        "required": ["counter"],
                        "properties": {
                            "counter": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": 100,
                                "description": "The agent's counter, up to the office's "
                                "number of counters",
                            }
                        },
                    }
                ),
            )
        },
        "/api/v1/offices/{office}/services/{service}/allocation": {
            "post": _operation(
                "Set how a service gives its seats: instant (first come) or draw",
                {
                    "200": _ok("The mode", _record({"service": _TEXT, "mode": _MODE})),
                    **_BODY,
                    **_STAFF_REFUSALS,
                    "409": _error("A window still has days ahead (draw_ahead)"),
                    "422": _error("Not instant or draw (validation)"),
                },
                security=_STAFF,
                parameters=[_OFFICE_PARAM, _SERVICE_PARAM, _ACCEPT_LANGUAGE],
                requestBody=_json_body(
                    {"type": "object", "required": ["mode"], "properties": {"mode": _MODE}}
                ),
            )
        },
        "/api/v1/offices/{office}/services/{service}/draws": {
            "post": _operation(
                "Open a request window for the slots of a period (a draw service)",
                {
                    "201": _ok("The draw's public record", _ref("Draw")),
                    **_BODY,
                    **_STAFF_REFUSALS,
                    "409": _error("Not a draw service, or another window covers these days"),
                    "422": _error("A window that is not sound (validation)"),
                },
                description=(
                    "The seed is drawn now; only its SHA-256 is public until the close. "
                    "The period must start after the window closes."
                ),
                security=_STAFF,
                parameters=[_OFFICE_PARAM, _SERVICE_PARAM, _ACCEPT_LANGUAGE],
                requestBody=_json_body(
                    {
                        "type": "object",
                        "required": ["closes_at", "first_day", "last_day"],
                        "properties": {
                            "opens_at": {**_TEXT, "format": "date-time"},
                            "closes_at": {**_TEXT, "format": "date-time"},
                            "first_day": _DAY,
                            "last_day": _DAY,
                        },
                    }
                ),
            )
        },
        "/api/v1/offices/{office}/stats": {
            "get": _operation(
                "Weekly statistics",
                {
                    "200": _ok("Statistics", _ref("Statistics")),
                    **_STAFF_REFUSALS,
                    "422": _error("A week that is not YYYY-Www"),
                },
                security=_STAFF,
                parameters=[
                    _OFFICE_PARAM,
                    _ACCEPT_LANGUAGE,
                    {
                        "name": "week",
                        "in": "query",
                        "required": False,
                        "schema": _TEXT,
                        "example": "2027-W05",
                    },
                ],
            )
        },
    }


def _move_with_reason(
    member: str, plain: list[str], with_reason: str, max_length: int
) -> dict[str, Any]:
    """A body moving something to one of `plain` (a reason optional and
    ignored), or to `with_reason`, which needs one the citizen reads."""
    return {
        "oneOf": [
            {
                "type": "object",
                "required": [member],
                "properties": {
                    member: {"type": "string", "enum": plain},
                    "reason": {**_NULLABLE_TEXT, "maxLength": max_length},
                },
            },
            {
                "type": "object",
                "required": [member, "reason"],
                "properties": {
                    member: {"type": "string", "enum": [with_reason]},
                    "reason": {
                        "type": "string",
                        "maxLength": max_length,
                        "pattern": "\\S",
                        "description": "Why; the citizen reads it",
                    },
                },
            },
        ]
    }


_FILE_STATES = ["received", "in_production", "ready", "collected", "refused"]


def _document_paths() -> dict[str, Any]:
    """Document files (issue 16): staff move a booking's file; the office
    lists what waits for pickup."""
    return {
        "/api/v1/offices/{office}/bookings/{reference}/document": {
            "post": _operation(
                "Move a booking's document file: received, in_production, ready "
                "(the citizen is told), collected, or refused with a reason",
                {
                    "200": _ok("Moved", _ref("DocumentFile")),
                    **_BODY,
                    **_STAFF_REFUSALS,
                    "409": _error(
                        "Not possible: the service produces no document (no_document), the "
                        "citizen has not come (not_received), or not from the file's state "
                        "(bad_file_transition)"
                    ),
                    "422": _error("validation"),
                },
                security=_STAFF,
                parameters=[_OFFICE_PARAM, _REFERENCE_PARAM, _ACCEPT_LANGUAGE],
                requestBody=_json_body(
                    _move_with_reason(
                        "state",
                        [x for x in _FILE_STATES if x != "refused"],
                        "refused",
                        MAX_REFUSAL_REASON,
                    )
                ),
            )
        },
        "/api/v1/offices/{office}/documents/uncollected": {
            "get": _operation(
                "Documents ready for pickup and not collected, the longest waiting first",
                {
                    "200": _ok("Uncollected documents", _ref("UncollectedDocuments")),
                    **_STAFF_REFUSALS,
                },
                security=_STAFF,
                parameters=[_OFFICE_PARAM, _ACCEPT_LANGUAGE],
            )
        },
    }


def _schemas() -> dict[str, Any]:
    instant = {
        "type": "string",
        "format": "date-time",
        "description": "ISO 8601 with the office's UTC offset",
    }
    status = {
        "type": "string",
        "enum": ["held", "confirmed", "checked_in", "done", "no_show", "cancelled", "expired"],
    }
    language = {"type": "string", "enum": list(LANGUAGES)}
    # What a booking has in the citizen's JSON and the office's alike.
    shared = {
        "reference": _TEXT,
        "status": status,
        "office": _TEXT,
        "service": _TEXT,
        "start": instant,
        "end": instant,
        "timezone": _TEXT,
        "name": _TEXT,
        "phone": {**_NULLABLE_TEXT, "description": "E.164"},
        "email": _NULLABLE_TEXT,
    }
    required = list(shared)
    channel_choice = {
        "type": "string",
        "enum": list(MESSAGE_CHANNELS),
        "nullable": True,
        "description": "Where the phone's messages go: sms, whatsapp (same number) or "
        "email (e-mail only); when not given, sms with a phone, else email",
    }
    hold_expires_at = {
        **instant,
        "nullable": True,
        "description": "While held: until when the seat is kept without the code",
    }
    staff_booking = {
        "type": "object",
        "required": [*required, "document_number", "cancel_reason"],
        "properties": {
            **shared,
            "document_number": {
                "type": "string",
                "description": "masked but for the last 4 characters ('' when none)",
            },
            "cancel_reason": _NULLABLE_TEXT,
        },
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error", "message"],
            "properties": {
                "error": {"type": "string", "enum": _ERROR_CODES},
                "message": _TEXT,
                "fields": {"type": "object", "additionalProperties": _TEXT},
            },
        },
        "DrawSummary": _record(
            {
                "id": _INT,
                "service": _TEXT,
                "opens_at": _TEXT,
                "closes_at": _TEXT,
                "first_day": _TEXT,
                "last_day": _TEXT,
                "state": {"type": "string", "enum": ["open", "closed", "drawn"]},
            }
        ),
        "Draw": {
            "type": "object",
            "required": [
                "id",
                "office",
                "service",
                "state",
                "opens_at",
                "closes_at",
                "first_day",
                "last_day",
                "seed_sha256",
                "rule",
            ],
            "properties": {
                "id": _INT,
                "office": _TEXT,
                "service": _TEXT,
                "state": {"type": "string", "enum": ["open", "closed", "drawn"]},
                "opens_at": _TEXT,
                "closes_at": _TEXT,
                "first_day": _TEXT,
                "last_day": _TEXT,
                "seed_sha256": _TEXT,
                "rule": _TEXT,
                "entries": {"type": "array", "items": _TEXT},
                "entries_sha256": _TEXT,
                "seed": _TEXT,
                "ranking": {
                    "type": "array",
                    "items": _record(
                        {
                            "entry": _TEXT,
                            "outcome": {
                                "type": "string",
                                "enum": [
                                    "waiting",
                                    "offered",
                                    "confirmed",
                                    "declined",
                                    "expired",
                                    "withdrawn",
                                ],
                            },
                        }
                    ),
                },
            },
        },
        "Office": _record(
            {
                "id": _TEXT,
                "kind": {"type": "string", "enum": ["consulate", "prefecture"]},
                "name": _LANG,
                "city": _LANG,
                "country": _TEXT,
                "timezone": _TEXT,
            }
        ),
        "MobileDay": _record(
            {
                "id": _ID,
                "office": _TEXT,
                "town": _LANG,
                "country": _TEXT,
                "address": _TEXT,
                "timezone": {**_TEXT, "description": "The venue's IANA zone"},
                "dates": {"type": "array", "items": {"type": "string", "format": "date"}},
                "hours": {
                    "type": "array",
                    "items": _record(
                        {
                            "date": {"type": "string", "format": "date"},
                            "opens": {**_TEXT, "description": "HH:MM, the venue's time"},
                            "closes": {**_TEXT, "description": "HH:MM, the venue's time"},
                        }
                    ),
                },
                "services": {"type": "array", "items": _TEXT},
                "booking_opens_at": {
                    "type": "string",
                    "format": "date-time",
                    "description": "No booking before this instant (the venue's UTC offset)",
                },
            }
        ),
        "Service": _record(
            {
                "id": _TEXT,
                "name": _LANG,
                "duration_minutes": _INT,
                "document_required": {"type": "boolean"},
            }
        ),
        "Slot": _record(
            {
                "id": _ID,
                "start": {**instant, "description": "In its site's zone, with its offset"},
                "end": instant,
                "remaining": _INT,
                "mobile_day": {
                    **_ID,
                    "nullable": True,
                    "description": "The mobile day it is held at; null at the office",
                },
            }
        ),
        "Availability": _record(
            {
                "office": _TEXT,
                "service": _TEXT,
                "timezone": {**_TEXT, "description": "The office's zone"},
                "mobile_days": {
                    "type": "array",
                    "description": "The mobile days whose slots are listed: their venues",
                    "items": _record(
                        {"id": _ID, "town": _LANG, "address": _TEXT, "timezone": _TEXT}
                    ),
                },
                "slots": {"type": "array", "items": _ref("Slot")},
            }
        ),
        "BookingRequest": {
            "type": "object",
            "required": ["slot_id", "service", "name"],
            "description": "At least one of phone and email",
            "properties": {
                **{
                    name: {**_NULLABLE_TEXT, **({"maxLength": longest} if longest else {})}
                    for name, longest in BOOKING_TEXT.items()
                },
                "slot_id": _ID,
                "service": {"type": "string", "minLength": 1},
                "name": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": BOOKING_TEXT["name"],
                    "description": "Letters, marks, spaces, apostrophes, hyphens and dots; "
                    "at most 100 once bidi controls and zero-width characters are removed",
                },
                "phone": {
                    **_NULLABLE_TEXT,
                    "description": "A mobile of the office's country, Morocco or the office's "
                    "own list; other numbers are refused (give an email instead)",
                },
                "email": {
                    **_NULLABLE_TEXT,
                    "maxLength": BOOKING_TEXT["email"],
                    "description": "Exactly one address; IDN domains kept as punycode",
                },
                "language": {**language, "nullable": True, "description": "fr when not given"},
                "channel": channel_choice,
            },
        },
        "Booking": {
            "type": "object",
            "required": [*required, "language", "document_number", "channel"],
            "properties": {
                **shared,
                "language": language,
                "document_number": _NULLABLE_TEXT,
                "channel": {**channel_choice, "nullable": False},
                "hold_expires_at": hold_expires_at,
            },
        },
        "CodeState": {
            "type": "object",
            "description": "Where a held booking's code went",
            "required": ["channel", "to", "attempts_left", "hold_expires_at", "next_resend_at"],
            "properties": {
                "channel": {"type": "string", "enum": ["sms", "email"]},
                "to": {"type": "string", "description": "E.164 number or address"},
                "attempts_left": _INT,
                "hold_expires_at": instant,
                "next_resend_at": {
                    **instant,
                    "nullable": True,
                    "description": "When another code may be asked for; null: no more",
                },
            },
        },
        "StaffBooking": staff_booking,
        "DocumentFile": _record(
            {
                "reference": _TEXT,
                "state": {"type": "string", "enum": _FILE_STATES},
                "refusal_reason": _NULLABLE_TEXT,
                "received_at": instant,
                "ready_at": {**instant, "nullable": True},
                "collected_at": {**instant, "nullable": True},
            }
        ),
        "UncollectedDocuments": _record(
            {
                "office": _TEXT,
                "documents": {
                    "type": "array",
                    "items": _record(
                        {
                            "reference": _TEXT,
                            "service": _TEXT,
                            "ready_at": instant,
                            "age_days": {"type": "integer", "minimum": 0},
                            "reminded": {"type": "boolean"},
                        }
                    ),
                },
            }
        ),
        "Call": _record({"reference": _TEXT, "counter": _INT, "called_at": instant}),
        "StaffBookingHistory": {
            "allOf": [
                staff_booking,
                {
                    "type": "object",
                    "required": ["messages", "audit"],
                    "properties": {
                        "messages": {"type": "array", "items": {"type": "object"}},
                        "audit": {"type": "array", "items": _ref("AuditEntry")},
                    },
                },
            ]
        },
        "AuditEntry": {
            "type": "object",
            "required": ["at", "actor", "action"],
            "properties": {
                "at": instant,
                "actor": {"type": "string", "enum": ["citizen", "staff", "system"]},
                "actor_id": _NULLABLE_TEXT,
                # A staff row's clerk, while the account exists.
                "actor_email": _NULLABLE_TEXT,
                "action": _TEXT,
                "before": _NULLABLE_TEXT,
                "after": _NULLABLE_TEXT,
            },
        },
        "Schedule": _record(
            {
                "office": _TEXT,
                "date": _DAY,
                "timezone": _TEXT,
                "bookings": {"type": "array", "items": _ref("ScheduleEntry")},
                "load": {
                    "type": "array",
                    "items": _record({"start": instant, "booked": _INT, "counters": _INT}),
                },
            }
        ),
        "ScheduleEntry": {
            "type": "object",
            "required": ["reference", "status", "service", "start", "end", "name"],
            "properties": {
                "reference": _TEXT,
                "status": status,
                "service": {
                    "type": "object",
                    "required": ["id", "name"],
                    "properties": {"id": _TEXT, "name": _LANG},
                },
                "start": instant,
                "end": instant,
                "name": _TEXT,
                "phone": _NULLABLE_TEXT,
                "email": _NULLABLE_TEXT,
                "language": language,
                "document_number": {"type": "string", "description": "masked"},
                "cancel_reason": _NULLABLE_TEXT,
            },
        },
        "Statistics": {
            "type": "object",
            "required": ["office", "week"],
            "properties": {
                "office": _TEXT,
                "week": {"type": "string", "example": "2027-W05"},
                "appointments": _INT,
                "bookings_made": _INT,
                "cancellations": _INT,
                "no_shows": _INT,
                "attended": _INT,
                "no_show_rate": {"type": "number", "nullable": True},
                "median_lead_time_hours": {"type": "number", "nullable": True},
                "sms_segments": _INT,
                "sms_estimated_cost": {"type": "number"},
                "whatsapp_messages": {
                    "type": "object",
                    "description": "WhatsApp messages of the week by their status now",
                    "properties": {status: _INT for status in WHATSAPP_STATUSES},
                },
                "satisfaction": _ref("Satisfaction"),
                "satisfaction_by_service": {
                    "type": "object",
                    "additionalProperties": _ref("Satisfaction"),
                    "description": "By service id",
                },
                "comments": {
                    "type": "array",
                    "items": _TEXT,
                    "description": "The week's comments, without names, contacts or numbers",
                },
            },
        },
        "Satisfaction": _record(
            {
                "responses": {"type": "integer", "minimum": 0},
                "average_rating": {
                    "type": "number",
                    "minimum": 1,
                    "maximum": 5,
                    "nullable": True,
                },
                "came_back_share": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 1,
                    "nullable": True,
                },
            }
        ),
    }
