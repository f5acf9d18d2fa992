"""Refusals: every "no" a use case or a handler answers with. Pure: codes and
message ids only.

One type, `Refusal`, and one subclass per kind of answer:

    ValidationFailed   422  what was sent is wrong; `fields` says where
    Unauthorized       401  who is asking is not known
    Forbidden          403  who is asking may not do this
    NotFound           404  no such thing (or not theirs: the same answer)
    Conflict           409  not possible in the state things are in now
    TooManyRequests    429  not now; `retry_after` seconds later
    Unavailable        503  not now, for all: a part we need does not answer;
                            `retry_after` seconds later
    Refusal itself     400  a request we cannot read

Each carries an error `code` for programs, and a message for people: a gettext
id (English source text) with its %(name)s `params` kept apart, translated at
the edge into the reader's language (service.web.errors turns a refusal into
a JSON answer or a page, in one place each). str() is the English text, for
the command line.
"""

from __future__ import annotations

from collections.abc import Mapping


def N_(message: str) -> str:
    """Marks a string for extraction by pybabel without translating it here."""
    return message


def Nn_(one: str, other: str) -> tuple[str, str]:
    """Marks a message with plural forms for extraction (pybabel -k Nn_:1,2):
    the English for one and for other counts; a language's catalog has as
    many forms as its grammar (Arabic six)."""
    return one, other


# A message id, or the pair Nn_ marks, whose form the refusal's `count` chooses.
Message = str | tuple[str, str]


class Refusal(Exception):
    """A refused request or action; nothing was written."""

    status = 400
    # Seconds after which asking again may succeed, when that is known.
    retry_after: int | None = None

    def __init__(
        self,
        code: str,
        message: Message,
        *,
        fields: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        count: int = 1,
    ) -> None:
        super().__init__(code)
        self.code = code
        # The id for one, and for other counts (None: no plural forms).
        self.message: str
        self.plural: str | None
        self.message, self.plural = (message, None) if isinstance(message, str) else message
        self.count = count
        self.params: dict[str, str] = dict(params or {})
        self.fields: dict[str, str] = dict(fields or {})

    def __str__(self) -> str:
        text = self.plural if self.plural is not None and self.count != 1 else self.message
        return text % self.params if self.params else text


class ValidationFailed(Refusal):
    """`fields` maps each field at fault to its message id."""

    status = 422

    def __init__(
        self,
        fields: Mapping[str, str] | None = None,
        *,
        code: str = "validation",
        message: str = N_("Some fields need your attention."),
        params: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(code, message, fields=fields, params=params)


class Unauthorized(Refusal):
    status = 401


class Forbidden(Refusal):
    status = 403


class NotFound(Refusal):
    status = 404

    def __init__(self, code: str = "not_found", message: str = N_("Not found.")) -> None:
        super().__init__(code, message)


class Conflict(Refusal):
    status = 409


class TooManyRequests(Refusal):
    status = 429

    def __init__(
        self,
        code: str,
        message: Message,
        *,
        retry_after: int,
        params: Mapping[str, str] | None = None,
        count: int = 1,
    ) -> None:
        super().__init__(code, message, params=params, count=count)
        self.retry_after = retry_after


class Unavailable(Refusal):
    status = 503

    def __init__(self, code: str, message: str, *, retry_after: int) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


# The refusals raised in more than one place --------------------------------------


def slot_full() -> Conflict:
    return Conflict(
        "slot_full", N_("This time is no longer available. Please choose another time.")
    )


def already_booked() -> Conflict:
    return Conflict(
        "already_booked",
        N_("There is already an active appointment for this document and this service."),
    )


def mobile_day_not_open() -> Conflict:
    return Conflict(
        "mobile_day_not_open", N_("Bookings for this mobile consular day are not open yet.")
    )


def too_late() -> Conflict:
    return Conflict("too_late", N_("It is too late to change this appointment."))


def draw_only() -> Conflict:
    return Conflict(
        "draw_only",
        N_("Seats of this service are given by a draw: request a seat in the draw instead."),
    )


def draw_only_move() -> Conflict:
    # A seat won in the draw, or booked before the service switched to one,
    # is kept; another would be the draw's to give.
    return Conflict(
        "draw_only",
        N_("Seats of this service are given by a draw: this appointment cannot be moved."),
    )


def not_active() -> Conflict:
    return Conflict("not_active", N_("This appointment is no longer active."))


def office_not_found() -> NotFound:
    return NotFound("office_not_found", N_("This office does not exist."))


def service_not_found() -> NotFound:
    return NotFound("service_not_found", N_("This service is not offered at this office."))


def slot_not_found() -> NotFound:
    return NotFound("slot_not_found", N_("This time slot does not exist."))


def already_submitted() -> Conflict:
    """The same booking form sent twice; its booking, if committed, is the answer."""
    return Conflict(
        "already_submitted", N_("This form was already sent. Check your messages for your booking.")
    )


def manage_link_refused() -> Unauthorized:
    """A reference and manage token that do not open a booking: no token, a
    wrong one, or an unknown reference, all answered alike."""
    return Unauthorized(
        "unauthorized", N_("This reference and manage link do not match a booking.")
    )


def database_unavailable() -> Unavailable:
    """Postgres does not answer: nothing can be read or written for now."""
    return Unavailable(
        "unavailable",
        N_("The service is briefly unavailable and nothing was saved. Please try again shortly."),
        retry_after=DATABASE_RETRY_AFTER,
    )


# A restart of Postgres takes seconds; a client that waits this long and
# retries once is likely to get through.
DATABASE_RETRY_AFTER = 15


def booking_not_found() -> NotFound:
    """An unknown reference and a wrong manage token get the same answer."""
    return NotFound("not_found", N_("This reference and manage link do not match a booking."))
