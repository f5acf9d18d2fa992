"""Errors a booking action can end with. Pure: codes and message ids only.

Messages are gettext ids (English source text), translated at the edge into
the request's language; the domain never knows who reads them.
"""

from __future__ import annotations

from collections.abc import Mapping


def N_(message: str) -> str:
    """Marks a string for extraction by pybabel without translating it here."""
    return message


class BookingError(Exception):
    """A refused action. `status` is the HTTP status the API answers with."""

    status = 409

    def __init__(
        self,
        code: str,
        message: str,
        fields: Mapping[str, str] | None = None,
        status: int | None = None,
    ):
        super().__init__(code)
        if status is not None:
            self.status = status
        self.code = code
        self.message = message
        self.fields: dict[str, str] = dict(fields or {})


class NotFound(BookingError):
    status = 404

    def __init__(self, code: str = "not_found", message: str = N_("Not found.")) -> None:
        super().__init__(code, message)


class Unauthorized(BookingError):
    status = 401

    def __init__(self) -> None:
        super().__init__(
            "unauthorized", N_("This reference and manage link do not match a booking.")
        )


class ValidationFailed(BookingError):
    status = 422

    def __init__(self, fields: Mapping[str, str]) -> None:
        super().__init__("validation", N_("Some fields need your attention."), fields)


def slot_full() -> BookingError:
    return BookingError(
        "slot_full", N_("This time is no longer available. Please choose another time.")
    )


def already_booked() -> BookingError:
    return BookingError(
        "already_booked",
        N_("There is already an active appointment for this document and this service."),
    )


def too_late() -> BookingError:
    return BookingError("too_late", N_("It is too late to change this appointment."))


def not_active() -> BookingError:
    return BookingError("not_active", N_("This appointment is no longer active."))


def office_not_found() -> NotFound:
    return NotFound("office_not_found", N_("This office does not exist."))


def service_not_found() -> NotFound:
    return NotFound("service_not_found", N_("This service is not offered at this office."))


def slot_not_found() -> NotFound:
    return NotFound("slot_not_found", N_("This time slot does not exist."))
