"""The OpenAPI 3 document of /api/v1, kept beside the handlers it describes."""

from __future__ import annotations

from typing import Any

_ERROR_CODES = [
    "malformed_json",
    "unauthorized",
    "not_found",
    "office_not_found",
    "service_not_found",
    "slot_not_found",
    "slot_full",
    "already_booked",
    "too_late",
    "not_open_yet",
    "not_active",
    "too_large",
    "validation",
    "bad_transition",
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
]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _too_many(description: str) -> dict[str, Any]:
    """A 429: how many seconds to wait is in Retry-After."""
    return {
        **_error(description),
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before trying again",
                "schema": {"type": "integer"},
            }
        },
    }


_RATE_LIMITED = "rate_limited: too many requests from this client address (LIMIT_* settings)"


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_LANG = {"type": "object", "properties": {k: {"type": "string"} for k in ("ar", "fr", "en")}}
_OFFICE_PARAM = {"name": "office", "in": "path", "required": True, "schema": {"type": "string"}}
_REFERENCE_PARAM = {
    "name": "reference",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}
_TOKEN: list[dict[str, list[str]]] = [{"manageToken": []}]
_ACCEPT_LANGUAGE = {
    "name": "Accept-Language",
    "in": "header",
    "required": False,
    "description": "ar, fr or en: the language of error messages",
    "schema": {"type": "string"},
}


def openapi_document() -> dict[str, Any]:
    instant = {
        "type": "string",
        "format": "date-time",
        "description": "ISO 8601 with the office's UTC offset",
    }
    booking = {
        "type": "object",
        "required": ["reference", "status", "office", "service", "start", "end"],
        "properties": {
            "reference": {"type": "string", "example": "PAR-7KX3QM"},
            "status": {
                "type": "string",
                "enum": [
                    "held",
                    "confirmed",
                    "checked_in",
                    "done",
                    "no_show",
                    "cancelled",
                    "expired",
                ],
            },
            "office": {"type": "string"},
            "service": {"type": "string"},
            "start": instant,
            "end": instant,
            "timezone": {"type": "string"},
            "name": {"type": "string"},
            "phone": {"type": "string", "nullable": True, "description": "E.164"},
            "email": {"type": "string", "nullable": True},
            "language": {"type": "string", "enum": ["ar", "fr", "en"]},
            "document_number": {"type": "string", "nullable": True},
            "hold_expires_at": {
                **instant,
                "nullable": True,
                "description": "While held: until when the seat is kept without the code",
            },
        },
    }
    refusals = {
        "400": _error("Malformed JSON"),
        "404": _error("Unknown office, service or slot"),
        "409": _error("slot_full, already_booked, too_late or not_active"),
        "413": _error("Body over 64 KiB"),
        "422": _error("validation: one message per field"),
        "429": _too_many(_RATE_LIMITED),
    }
    token_refusals = {
        "401": _error("Missing manage token"),
        "404": _error("Unknown reference or wrong token (indistinguishable)"),
        "429": _too_many(_RATE_LIMITED),
    }
    code_body = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
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
            }
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Mawid API",
            "version": "1.0.0",
            "description": "Appointments at Moroccan consulates and prefecture offices.",
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/api/v1/offices": {
                "get": {
                    "summary": "List offices",
                    "responses": {
                        "200": _ok("Offices", {"type": "array", "items": _ref("Office")})
                    },
                }
            },
            "/api/v1/offices/{office}/services": {
                "get": {
                    "summary": "Services offered at an office",
                    "parameters": [_OFFICE_PARAM, _ACCEPT_LANGUAGE],
                    "responses": {
                        "200": _ok("Services", {"type": "array", "items": _ref("Service")}),
                        "404": _error("Unknown office"),
                    },
                }
            },
            "/api/v1/offices/{office}/availability": {
                "get": {
                    "summary": "Free slots inside the booking window",
                    "parameters": [
                        _OFFICE_PARAM,
                        _ACCEPT_LANGUAGE,
                        {
                            "name": "service",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "from",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string", "format": "date"},
                            "description": "First local date in the office's zone",
                        },
                        {
                            "name": "to",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string", "format": "date"},
                            "description": "Last local date, at most 62 days after `from`",
                        },
                    ],
                    "responses": {
                        "200": _ok("Availability", _ref("Availability")),
                        "404": _error("Unknown office or service"),
                        "422": _error("Bad dates"),
                        "429": _too_many(_RATE_LIMITED),
                    },
                }
            },
            "/api/v1/bookings": {
                "post": {
                    "summary": "Book a slot",
                    "description": (
                        "A service that verifies contacts answers with status `held`: the "
                        "seat is kept until `hold_expires_at` while a 6-digit code goes to "
                        "the phone by SMS (or to the e-mail address without one); "
                        "POST .../verify with it confirms the booking. A contact proved "
                        "on an earlier booking is not asked again for a while."
                    ),
                    "parameters": [_ACCEPT_LANGUAGE],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("BookingRequest")}},
                    },
                    "responses": {
                        "201": _ok(
                            "Booked; manage_token is shown only here",
                            {
                                "allOf": [
                                    _ref("Booking"),
                                    {
                                        "type": "object",
                                        "properties": {
                                            "manage_token": {"type": "string"},
                                            "manage_url": {"type": "string"},
                                            "verification": _ref("CodeState"),
                                        },
                                    },
                                ]
                            },
                        ),
                        **refusals,
                        "409": _error(
                            "slot_full, already_booked, too_late, not_open_yet or "
                            "household_cap (this phone number or address already has the "
                            "office's most active bookings)"
                        ),
                        "429": _too_many(
                            f"{_RATE_LIMITED}; or codes_per_contact: too many codes to this "
                            "phone number or address in 24 hours"
                        ),
                    },
                }
            },
            "/api/v1/bookings/{reference}/verify": {
                "post": {
                    "summary": "Confirm a held booking with the code sent to the citizen",
                    "parameters": [_REFERENCE_PARAM, _ACCEPT_LANGUAGE],
                    "security": _TOKEN,
                    "requestBody": code_body,
                    "responses": {
                        "200": _ok("Confirmed", _ref("Booking")),
                        "400": _error("Malformed JSON"),
                        **token_refusals,
                        "409": _error(
                            "not_held (not waiting for a code), hold_expired (the seat was "
                            "released) or code_attempts_exhausted (5 wrong codes: released)"
                        ),
                        "413": _error("Body over 64 KiB"),
                        "422": _error("wrong_code: `fields.code`; the message says the tries left"),
                    },
                }
            },
            "/api/v1/bookings/{reference}/resend": {
                "post": {
                    "summary": "Send a held booking's code again",
                    "description": "At most 3 times, each after a longer wait (1, 2, 4 minutes).",
                    "parameters": [_REFERENCE_PARAM, _ACCEPT_LANGUAGE],
                    "security": _TOKEN,
                    "responses": {
                        "202": _ok("A new code is on its way", _ref("CodeState")),
                        **token_refusals,
                        "409": _error("not_held, hold_expired or resend_limit (no resend left)"),
                        "429": _too_many(
                            f"resend_too_soon (Retry-After: until the next one); "
                            f"codes_per_contact; or {_RATE_LIMITED}"
                        ),
                    },
                }
            },
            "/api/v1/bookings/{reference}": {
                "get": {
                    "summary": "A booking",
                    "parameters": [_REFERENCE_PARAM, _ACCEPT_LANGUAGE],
                    "security": _TOKEN,
                    "responses": {"200": _ok("The booking", _ref("Booking")), **token_refusals},
                }
            },
            "/api/v1/bookings/{reference}/cancel": {
                "post": {
                    "summary": "Cancel before the appointment starts",
                    "parameters": [_REFERENCE_PARAM, _ACCEPT_LANGUAGE],
                    "security": _TOKEN,
                    "responses": {
                        "200": _ok("Cancelled", _ref("Booking")),
                        **token_refusals,
                        "409": _error("too_late or not_active"),
                    },
                }
            },
            "/api/v1/bookings/{reference}/reschedule": {
                "post": {
                    "summary": "Move to another slot of the same service, atomically",
                    "parameters": [_REFERENCE_PARAM, _ACCEPT_LANGUAGE],
                    "security": _TOKEN,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["slot_id"],
                                    "properties": {"slot_id": {"type": "integer"}},
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _ok("Moved", _ref("Booking")),
                        **token_refusals,
                        **{k: v for k, v in refusals.items() if k != "404"},
                        "409": _error(
                            "slot_full, too_late, not_active or reschedule_limit (moved as "
                            "many times as a citizen may, RESCHEDULE_LIMIT)"
                        ),
                    },
                }
            },
            **_office_paths(instant),
        },
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
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string", "enum": _ERROR_CODES},
                        "message": {"type": "string"},
                        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
                "Office": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "kind": {"type": "string", "enum": ["consulate", "prefecture"]},
                        "name": _LANG,
                        "city": _LANG,
                        "country": {"type": "string"},
                        "timezone": {"type": "string"},
                    },
                },
                "Service": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "name": _LANG,
                        "duration_minutes": {"type": "integer"},
                        "document_required": {"type": "boolean"},
                    },
                },
                "Slot": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "start": instant,
                        "end": instant,
                        "remaining": {"type": "integer"},
                    },
                },
                "Availability": {
                    "type": "object",
                    "properties": {
                        "office": {"type": "string"},
                        "service": {"type": "string"},
                        "timezone": {"type": "string"},
                        "slots": {"type": "array", "items": _ref("Slot")},
                    },
                },
                "BookingRequest": {
                    "type": "object",
                    "required": ["slot_id", "service", "name", "language"],
                    "description": "At least one of phone and email",
                    "properties": {
                        "slot_id": {"type": "integer"},
                        "service": {"type": "string"},
                        "name": {
                            "type": "string",
                            "maxLength": 100,
                            "description": "Letters, marks, spaces, apostrophes, hyphens and dots",
                        },
                        "phone": {
                            "type": "string",
                            "description": (
                                "A mobile of the office's country, Morocco or the office's "
                                "own list; other numbers are refused (give an email instead)"
                            ),
                        },
                        "phone_country": {"type": "string", "description": "ISO alpha-2 hint"},
                        "email": {
                            "type": "string",
                            "maxLength": 254,
                            "description": "Exactly one address; IDN domains kept as punycode",
                        },
                        "language": {"type": "string", "enum": ["ar", "fr", "en"]},
                        "document_number": {"type": "string"},
                    },
                },
                "Booking": booking,
                "CodeState": {
                    "type": "object",
                    "description": "Where a held booking's code went",
                    "properties": {
                        "channel": {"type": "string", "enum": ["sms", "email"]},
                        "to": {"type": "string", "description": "E.164 number or address"},
                        "attempts_left": {"type": "integer"},
                        "hold_expires_at": instant,
                        "next_resend_at": {
                            **instant,
                            "nullable": True,
                            "description": "When another code may be asked for; null: no more",
                        },
                    },
                },
            },
        },
    }


_STAFF: list[dict[str, list[str]]] = [{"staffToken": []}, {"staffSession": []}]
_STAFF_REFUSALS = {
    "401": _error("Not signed in"),
    "404": _error("Unknown office or booking, or not this member's office"),
}


def _office_paths(instant: dict[str, Any]) -> dict[str, Any]:
    """The office side: same authorisation as the office pages."""
    entry = {
        "type": "object",
        "properties": {
            "reference": {"type": "string"},
            "status": {"type": "string"},
            "service": {"type": "object"},
            "start": instant,
            "end": instant,
            "name": {"type": "string"},
            "phone": {"type": "string", "nullable": True},
            "email": {"type": "string", "nullable": True},
            "document_number": {
                "type": "string",
                "nullable": True,
                "description": "masked but for the last 4 characters",
            },
        },
    }
    return {
        "/api/v1/offices/{office}/schedule": {
            "get": {
                "summary": "The bookings of one local day, in time order",
                "security": _STAFF,
                "parameters": [
                    _OFFICE_PARAM,
                    {
                        "name": "date",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "format": "date"},
                    },
                ],
                "responses": {
                    "200": _ok(
                        "Schedule",
                        {
                            "type": "object",
                            "properties": {
                                "office": {"type": "string"},
                                "date": {"type": "string", "format": "date"},
                                "timezone": {"type": "string"},
                                "bookings": {"type": "array", "items": entry},
                                "load": {"type": "array", "items": {"type": "object"}},
                            },
                        },
                    ),
                    **_STAFF_REFUSALS,
                },
            }
        },
        "/api/v1/offices/{office}/bookings/{reference}": {
            "get": {
                "summary": "A booking with its messages and audit log",
                "security": _STAFF,
                "parameters": [_OFFICE_PARAM, _REFERENCE_PARAM],
                "responses": {"200": _ok("Booking", entry), **_STAFF_REFUSALS},
            }
        },
        "/api/v1/offices/{office}/bookings/{reference}/status": {
            "post": {
                "summary": "Check in, done, no-show, or cancel by the office with a reason",
                "security": _STAFF,
                "parameters": [_OFFICE_PARAM, _REFERENCE_PARAM, _ACCEPT_LANGUAGE],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["status"],
                                "properties": {
                                    "status": {
                                        "type": "string",
                                        "enum": ["checked_in", "done", "no_show", "cancelled"],
                                    },
                                    "reason": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _ok("Changed", entry),
                    **_STAFF_REFUSALS,
                    "409": _error("Not possible from the current status"),
                    "422": _error("validation"),
                },
            }
        },
        "/api/v1/offices/{office}/stats": {
            "get": {
                "summary": "Weekly statistics",
                "security": _STAFF,
                "parameters": [
                    _OFFICE_PARAM,
                    {
                        "name": "week",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "example": "2027-W05"},
                    },
                ],
                "responses": {"200": _ok("Statistics", {"type": "object"}), **_STAFF_REFUSALS},
            }
        },
    }
