"""Stored codes as the pages name them, for citizen and office pages alike:
booking statuses, message kinds, channels and statuses, audit actors and
actions, staff roles, closure sources.

The names are gettext ids, translated at render time. Unknown codes (a newer
migration, say) fall back to the code itself rather than breaking the page.
"""

from __future__ import annotations

from collections.abc import Callable

from service.domain.errors import N_
from service.web.i18n import gettext

LABELS: dict[str, dict[str, str]] = {
    "status": {
        "held": N_("Waiting for confirmation"),
        "confirmed": N_("Confirmed"),
        "checked_in": N_("Checked in"),
        "done": N_("Done"),
        "no_show": N_("No-show"),
        "cancelled": N_("Cancelled"),
        "expired": N_("Expired"),
    },
    "channel": {"sms": N_("SMS"), "whatsapp": N_("WhatsApp"), "email": N_("E-mail")},
    # Why the service moved a booking's messages off WhatsApp.
    "channel_reason": {"not_whatsapp_user": N_("switched: the number has no WhatsApp")},
    "kind": {
        "confirmation": N_("Confirmation"),
        "rescheduled": N_("Moved"),
        "cancelled_by_citizen": N_("Cancelled by the citizen"),
        "cancelled_by_office": N_("Cancelled by the office"),
        "reminder": N_("Reminder"),
        "sms_fallback": N_("SMS instead of e-mail"),
        "code": N_("Confirmation code"),
        "document_ready": N_("Document ready"),
        "document_uncollected": N_("Document not collected"),
        "feedback": N_("Feedback request"),
    },
    "file": {
        "received": N_("File received"),
        "in_production": N_("In production"),
        "ready": N_("Ready for pickup"),
        "collected": N_("Collected"),
        "refused": N_("Refused"),
    },
    "message_status": {
        "pending": N_("Waiting"),
        "sending": N_("Sending"),
        "sent": N_("Sent"),
        "delivered": N_("Delivered"),
        "read": N_("Read"),
        "undelivered": N_("Not delivered"),
        "failed": N_("Failed"),
        "skipped": N_("Not sent"),
        "cancelled": N_("Cancelled"),
    },
    "actor": {"citizen": N_("Citizen"), "staff": N_("Staff"), "system": N_("System")},
    "action": {
        "book": N_("Booked"),
        "hold": N_("Held, waiting for the code"),
        "verify": N_("Code confirmed"),
        "reschedule": N_("Moved"),
        "checked_in": N_("Checked in"),
        "done": N_("Done"),
        "no_show": N_("No-show"),
        "cancelled": N_("Cancelled"),
        "confirmed": N_("Confirmed"),
        "expired": N_("Expired"),
        "called": N_("Called to a counter"),
        "export": N_("Personal data exported"),
        "erase": N_("Personal data erased"),
        "document": N_("Document file"),
        "document_reminder": N_("Reminder: document not collected"),
        "anonymise": N_("Personal data removed after the retention period"),
        "channel": N_("Message channel changed"),
        # A seat freed and held for the next on a waiting list or a draw's.
        "offer": N_("Seat offered"),
        "accept_offer": N_("Seat accepted"),
    },
    # What became of a draw's entry, in its public ranking (service.domain.draw.Outcome).
    "outcome": {
        "waiting": N_("On the waiting list"),
        "offered": N_("Seat offered"),
        "confirmed": N_("Seat accepted"),
        "declined": N_("Seat declined"),
        "expired": N_("Offer not answered in time"),
        "withdrawn": N_("Request withdrawn"),
        "lapsed": N_("No longer on the list"),
    },
    "role": {"admin": N_("Administrator"), "manager": N_("Manager"), "agent": N_("Agent")},
    "source": {"holiday": N_("public holiday"), "manual": N_("manual")},
}

# The citizen reads of their own missed appointment, not of a "no-show".
CITIZEN_STATUS: dict[str, str] = {**LABELS["status"], "no_show": N_("Missed")}


def label_function(language: str) -> Callable[[str, str | None], str]:
    """`label(group, code)` for the office templates, in `language`."""

    def label(group: str, code: str | None) -> str:
        if not code:
            return ""
        known = LABELS[group].get(code)
        return gettext(language, known) if known else code.replace("_", " ")

    return label
