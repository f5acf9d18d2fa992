"""What the service accepts from outside, defined once. Pure: no I/O.

Everything a request carries is text until it is read, and each reading is
decided here so that no handler invents its own:

    readable(text)            no NUL, no half of a UTF-16 surrogate pair: Postgres
                              cannot store either, so neither goes further
    max lengths               the same numbers as the schema's CHECK constraints
                              (MAX_LENGTHS; a test compares the two)
    parse_int(raw, lo, hi)    ASCII digits within a range (str.isdigit() accepts
                              "²", which int() then refuses)
    parse_id(raw)             a bigserial id: 1 .. 2**63 - 1
    parse_day(raw)            YYYY-MM-DD between FIRST_DAY and LAST_DAY, the
                              days whose local bounds every zone can represent
    json_problem(value)       nesting depth and every string of a JSON document
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

# Text ---------------------------------------------------------------------------------

# NUL, which no Postgres text holds, and the surrogate code points, which a
# Python str only holds unpaired (JSON's "\ud800", undecodable header bytes):
# they cannot be encoded as UTF-8.
_UNREADABLE_RE = re.compile("[\x00\ud800-\udfff]")


def readable(text: str) -> bool:
    # ASCII text (a flag CPython keeps on every str) holds no surrogate: the
    # search, ten times dearer on a request's headers, is for the rest.
    if text.isascii():
        return "\x00" not in text
    return _UNREADABLE_RE.search(text) is None


# Lengths: the CHECK constraints of the schema, column by column -------------------------

CITIZEN_NAME_MAX = 200
# RFC 5321's limit on a forward path (256) minus its angle brackets.
EMAIL_MAX = 254
TOKEN_LABEL_MAX = 100
# An office's and a service's practical information, in each language (0020).
PRACTICAL_TEXT_MAX = 1000
DESCRIPTION_MAX = 200
# A request id taken from a caller's X-Request-Id (service.logs), stored on
# the outbox rows the request writes (0035).
REQUEST_ID_MAX = 64
# A refused document file's reason, and a feedback comment (0085, 0086).
DOCUMENT_REASON_MAX = 300
FEEDBACK_COMMENT_MAX = 1000
# A mobile consular day's town (each language) and venue address (0100).
TOWN_MAX = 100
VENUE_ADDRESS_MAX = 300
_IN_EACH_LANGUAGE = ("ar", "en", "fr")

MAX_LENGTHS: dict[tuple[str, str], int] = {
    ("bookings", "citizen_name"): CITIZEN_NAME_MAX,
    ("bookings", "email"): EMAIL_MAX,
    ("draw_entries", "citizen_name"): CITIZEN_NAME_MAX,
    ("draw_entries", "email"): EMAIL_MAX,
    ("staff", "email"): EMAIL_MAX,
    ("staff_api_tokens", "label"): TOKEN_LABEL_MAX,
    ("offices", "public_email"): EMAIL_MAX,
    ("outbox", "request_id"): REQUEST_ID_MAX,
    ("document_files", "refusal_reason"): DOCUMENT_REASON_MAX,
    ("feedback", "comment"): FEEDBACK_COMMENT_MAX,
    ("mobile_days", "address"): VENUE_ADDRESS_MAX,
    # A subscriber's one contact: an address, or a number (shorter).
    ("mobile_day_subscriptions", "contact"): EMAIL_MAX,
    **{
        (table, f"{column}_{language}"): longest
        for table, column, longest in (
            ("offices", "access", PRACTICAL_TEXT_MAX),
            ("offices", "directions", PRACTICAL_TEXT_MAX),
            ("services", "description", DESCRIPTION_MAX),
            ("services", "fees", PRACTICAL_TEXT_MAX),
            ("services", "late", PRACTICAL_TEXT_MAX),
            ("mobile_days", "town", TOWN_MAX),
        )
        for language in _IN_EACH_LANGUAGE
    },
}

# Longest a login form's fields are read (no column: the address is only
# looked up, the password only hashed, but neither should cost more than that).
PASSWORD_MAX = 1024

# Integers -------------------------------------------------------------------------------

ID_MIN = 1
ID_MAX = 2**63 - 1  # bigserial
_DIGITS_RE = re.compile(r"[0-9]+")


def parse_int(raw: str | None, lowest: int, highest: int) -> int | None:
    """A whole number written in ASCII digits within [lowest, highest], or None."""
    if raw is None or len(raw) > len(str(highest)) or not _DIGITS_RE.fullmatch(raw):
        return None
    value = int(raw)
    return value if lowest <= value <= highest else None


def parse_id(raw: str | None) -> int | None:
    return parse_int(raw, ID_MIN, ID_MAX)


def is_id(value: object) -> bool:
    """A JSON number that can be an id (true and false are not numbers here)."""
    return isinstance(value, int) and not isinstance(value, bool) and ID_MIN <= value <= ID_MAX


# Days -----------------------------------------------------------------------------------

# Far enough either way for any schedule, and well inside what datetime can
# shift by a zone's offset (date.min and date.max overflow there).
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2199, 12, 31)
# Exactly the days from FIRST_DAY to LAST_DAY written YYYY-MM-DD, leap days
# included (every fourth year but 2100), so that the OpenAPI document can say
# with a pattern which days are read.
DAY_PATTERN = (
    "^(?:2[01][0-9]{2}-(?:(?:0[13-9]|1[0-2])-(?:0[1-9]|[12][0-9]|30)"
    "|(?:0[13578]|1[02])-31|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    "|(?:20(?:[02468][048]|[13579][26])|21(?:0[48]|[2468][048]|[13579][26]))-02-29)$"
)
_DAY_RE = re.compile(DAY_PATTERN)


def day_in_range(day: date) -> bool:
    return FIRST_DAY <= day <= LAST_DAY


def parse_day(raw: str | None) -> date | None:
    """A day written YYYY-MM-DD within [FIRST_DAY, LAST_DAY], or None."""
    if raw is None or not _DAY_RE.fullmatch(raw):
        return None
    return date.fromisoformat(raw)


# JSON -----------------------------------------------------------------------------------

# Our documents are two levels deep; parsing stops well before Python's own
# recursion limit would.
JSON_MAX_DEPTH = 16


def json_problem(document: object) -> tuple[str, str] | None:
    """(where, what) for the first thing wrong in a parsed JSON document:
    "depth" when nested deeper than JSON_MAX_DEPTH, "text" for a string or
    key that is not readable; `where` is the top-level member it is under
    ("" for the document itself). None when nothing is wrong."""
    for where, depth, value in _walk(document):
        if depth > JSON_MAX_DEPTH:
            return where, "depth"
        if isinstance(value, str) and not readable(value):
            return where, "text"
    return None


def _walk(document: object) -> Iterator[tuple[str, int, object]]:
    # Iterative: a document nested thousands deep must not recurse here either.
    stack: list[tuple[str, int, object]] = [("", 0, document)]
    while stack:
        where, depth, value = stack.pop()
        yield where, depth, value
        if isinstance(value, dict):
            for key, item in value.items():
                member = key if depth == 0 and readable(key) else where
                yield member, depth + 1, key
                stack.append((member, depth + 1, item))
        elif isinstance(value, list):
            stack.extend((where, depth + 1, item) for item in value)
