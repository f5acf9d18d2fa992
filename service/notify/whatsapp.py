"""WhatsApp content templates: which of a message's values fill each
numbered variable of the approved template of its kind, and the template
texts themselves (templates/messages/whatsapp/{kind}.{lang}.txt, the text
submitted for approval, with {{1}}, {{2}}, ... where the values go).

A business-initiated WhatsApp message may only be an approved template:
Twilio is given the template's id (ContentSid, from the registry in the
WHATSAPP_TEMPLATES setting) and the values (ContentVariables, JSON), never
free text.  The text kept on the outbox row is the template with its values
filled in, so that the message log shows what the citizen read.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

# The values of each kind's template, in the order of its variables ({{1}}
# is the first).  A cancellation links to booking again, not to the
# booking; an office's cancellation carries its reason last.
VARIABLES: dict[str, tuple[str, ...]] = {
    "confirmation": ("office", "service", "when", "reference", "link", "address"),
    "reminder": ("office", "service", "when", "reference", "link", "address"),
    "rescheduled": ("office", "service", "when", "reference", "link"),
    "cancelled_by_citizen": ("office", "service", "when", "reference", "again"),
    "cancelled_by_office": ("office", "service", "when", "reference", "again", "reason"),
    "code": ("code", "office", "when"),
    "draw_offer": ("office", "service", "when", "expires", "offer_link"),
    # A draw request the draw gave no seat: its place on the waiting list,
    # and its receipt (see it, withdraw it).
    "draw_not_served": ("office", "service", "place", "receipt_link"),
    # A draw request or a waiting-list place that counts now: its receipt.
    "entry_received": ("office", "service", "receipt_link"),
    # After the visit: a document's pickup hours in the office's zone, and
    # its file's page (which offers a pickup time when the office asks for
    # one: a fixed template cannot switch links); the feedback form.
    "document_ready": (
        "office",
        "address",
        "pickup_from",
        "pickup_until",
        "zone",
        "reference",
        "link",
    ),
    "document_uncollected": (
        "office",
        "address",
        "pickup_from",
        "pickup_until",
        "zone",
        "reference",
        "link",
    ),
    "feedback": ("office", "when", "reference", "feedback_link"),
    "waitlist_offer": ("office", "service", "when", "expires", "offer_link"),
    # A mobile day announced to a subscriber: its town, dates and venue,
    # the link to book it and the subscription's own page (stop, renew).
    "mobile_day_planned": ("office", "town", "days", "address", "book_link", "stop_link"),
}
KINDS = tuple(VARIABLES)
# WhatsApp refuses an empty variable: an optional value that is empty (an
# office without an address, a cancellation without a reason) shows this.
EMPTY = "-"
_PLACEHOLDER = re.compile(r"\{\{(\d+)\}\}")


def variables(kind: str, values: dict[str, str]) -> dict[str, str]:
    """ContentVariables for `kind`: {"1": ..., "2": ...}, each value on one
    line (WhatsApp refuses new lines and runs of spaces in a variable)."""
    out: dict[str, str] = {}
    for number, name in enumerate(VARIABLES[kind], start=1):
        text = " ".join(str(values.get(name, "")).split())
        out[str(number)] = text or EMPTY
    return out


@cache
def template_text(templates_dir: Path, kind: str, language: str) -> str:
    """The text submitted for approval for `kind` in `language`."""
    path = templates_dir / "messages" / "whatsapp" / f"{kind}.{language}.txt"
    return path.read_text(encoding="utf-8").strip()


def fill(text: str, values: dict[str, str]) -> str:
    """A template's text with its variables filled in, as WhatsApp shows it."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def placeholders(text: str) -> list[int]:
    """The variable numbers a template's text uses, in order of appearance."""
    return [int(n) for n in _PLACEHOLDER.findall(text)]


def content_sid(registry: dict[str, dict[str, str]], kind: str, language: str) -> str | None:
    """The approved template's id for `kind` in `language`, or None."""
    return registry.get(kind, {}).get(language)
