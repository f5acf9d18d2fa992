"""Feedback after the visit: when its message goes, what the form accepts,
what of a comment is kept, and the office's figures.  Pure: no I/O.

One message per booking, a few hours after it was marked done, on one
channel (the e-mail address when the booking has one: it costs nothing;
else a mobile), never in quiet hours, never to a contact that turned
feedback messages off.  The form records once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from service.domain import errors
from service.domain.errors import N_
from service.domain.fields import FEEDBACK_COMMENT_MAX
from service.domain.messages import (
    DEFAULT_QUIET,
    FEEDBACK,
    PlannedMessage,
    QuietHours,
    contact_channels,
    outside_quiet_hours,
)
from service.domain.validation import strip_invisible

DEFAULT_DELAY = timedelta(hours=3)
# Past this after it was due, the visit is too far back to ask about.
MESSAGE_LIFETIME = timedelta(days=3)
MAX_COMMENT = FEEDBACK_COMMENT_MAX
# What stands in for personal data taken out of a comment.
REDACTED = "[…]"


@dataclass(frozen=True, slots=True)
class Answer:
    rating: int
    came_back: bool
    comment: str | None


def plan_feedback(
    *,
    phone: str | None,
    email: str | None,
    done_at: datetime,
    delay: timedelta = DEFAULT_DELAY,
    quiet: QuietHours = DEFAULT_QUIET,
    zone: ZoneInfo,
    phone_channel: str = "sms",
) -> list[PlannedMessage]:
    """The one feedback message of a booking done at `done_at`, or none when
    it has no channel. Due `delay` later, or when quiet hours end; its
    `appointment_at` is its deadline."""
    channels = contact_channels(phone, email, phone_channel)
    if not channels:
        return []
    # The e-mail first (free), else the mobile.
    channel, recipient = channels[-1]
    due = done_at + delay
    deadline = due + MESSAGE_LIFETIME
    at = outside_quiet_hours(due, deadline=deadline, quiet=quiet, zone=zone)
    assert at is not None  # quiet hours never last MESSAGE_LIFETIME
    return [PlannedMessage(FEEDBACK, channel, recipient, at, deadline)]


def parse_answer(raw_rating: object, raw_came_back: object, raw_comment: object) -> Answer:
    """The form's answer, or ValidationFailed naming each field at fault."""
    problems: dict[str, str] = {}
    rating = None
    if isinstance(raw_rating, str) and raw_rating.strip() in ("1", "2", "3", "4", "5"):
        rating = int(raw_rating.strip())
    else:
        problems["rating"] = N_("Choose a rating from 1 to 5.")
    came_back = {"yes": True, "no": False}.get(
        raw_came_back if isinstance(raw_came_back, str) else ""
    )
    if came_back is None:
        problems["came_back"] = N_("Say whether you had to come back.")
    comment = strip_invisible(raw_comment).strip() if isinstance(raw_comment, str) else ""
    if len(comment) > MAX_COMMENT:
        # MAX_COMMENT, in words the catalogs translate whole.
        problems["comment"] = N_("Keep your comment under 1000 characters.")
    if problems:
        raise errors.ValidationFailed(problems)
    assert rating is not None and came_back is not None
    return Answer(rating, came_back, comment or None)


_EMAIL = re.compile(r"\S+@\S+")
# Six or more digits, however spaced or punctuated: phone numbers, and the
# numbers of documents and files.
_DIGITS = re.compile(r"\+?\d[\d\s().\-/]{4,}\d")
# A token mixing letters and at least three digits: passport and card numbers.
_DOCUMENT = re.compile(r"\b(?=[A-Za-z0-9]*\d{3})(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{5,}\b")


def scrub_comment(comment: str, personal: Iterable[str | None] = ()) -> str:
    """A comment without what could name the citizen: e-mail addresses,
    phone and document numbers, and the booking's own name, phone, address
    and document number wherever they appear.  Kept so from the start: the
    statistics show comments, never the people who wrote them."""
    text = comment
    for value in personal:
        for part in (value or "").split():
            # Words of the name long enough to be one (not "El", "de").
            if len(part) >= 3:
                text = re.sub(re.escape(part), REDACTED, text, flags=re.IGNORECASE)
    text = _EMAIL.sub(REDACTED, text)
    text = _DIGITS.sub(REDACTED, text)
    return _DOCUMENT.sub(REDACTED, text)


@dataclass(frozen=True, slots=True)
class Response:
    """One recorded answer as the statistics read it."""

    service_id: str
    visit_day: date
    rating: int
    came_back: bool
    comment: str | None


@dataclass(frozen=True, slots=True)
class Satisfaction:
    responses: int
    # Mean rating, one decimal; None without responses.
    average: float | None
    # Share of responses that had to come back, 0..1; None without responses.
    came_back_share: float | None


@dataclass(frozen=True, slots=True)
class FeedbackStats:
    overall: Satisfaction
    by_service: dict[str, Satisfaction]
    comments: list[str]


def satisfaction(responses: Sequence[Response]) -> Satisfaction:
    if not responses:
        return Satisfaction(0, None, None)
    n = len(responses)
    return Satisfaction(
        n,
        round(sum(r.rating for r in responses) / n, 1),
        round(sum(r.came_back for r in responses) / n, 3),
    )


def feedback_stats(responses: Sequence[Response]) -> FeedbackStats:
    """A week's figures: overall, per service (by id, sorted), and its
    comments, oldest visit first."""
    services = sorted({r.service_id for r in responses})
    return FeedbackStats(
        overall=satisfaction(responses),
        by_service={s: satisfaction([r for r in responses if r.service_id == s]) for s in services},
        comments=[r.comment for r in sorted(responses, key=lambda r: r.visit_day) if r.comment],
    )


def feedback_url(base_url: str, reference: str, token: str) -> str:
    """The form's address (the token is the one its message carries, as for
    the manage page)."""
    return f"{base_url}/f/{reference}/{token}"
