"""Staff roles, what each may do, and the rules around their accounts. Pure: no I/O.

Three roles: `admin` (every office), `manager` (their offices: hours, services,
closures, staff, statistics, feed, plus everything an agent does) and `agent`
(one office: schedule, check-in, bookings for citizens).

Messages here are English gettext ids (N_), translated where they are shown:
the office pages in the reader's language, the command line in English.

Authorisation answers in two steps so that the web layer can pick the
status: first "may this person see this office at all" (no: 404, the office
might as well not exist), then "may their role do this here" (no: 403).
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from service.domain.booking import Status, can_mark_no_show, can_transition
from service.domain.calendar import local_date
from service.domain.errors import N_, Conflict, Forbidden, ValidationFailed
from service.domain.fields import PASSWORD_MAX
from service.domain.validation import normalise_email as normalise_address
from service.domain.validation import strip_invisible


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    AGENT = "agent"


class Permission(StrEnum):
    VIEW_SCHEDULE = "view_schedule"  # day list, print view, CSV
    CHANGE_STATUS = "change_status"  # check-in, done, no-show, cancel with reason
    VIEW_BOOKING = "view_booking"  # a booking's messages and audit log
    BOOK_FOR_CITIZEN = "book_for_citizen"
    MANAGE_HOURS = "manage_hours"  # hours, counters, closures, slots
    MANAGE_SERVICES = "manage_services"  # durations, documents, windows, on/off
    MANAGE_STAFF = "manage_staff"
    VIEW_STATS = "view_stats"
    MANAGE_FEED = "manage_feed"  # create / rotate the secret ICS feed
    # Export or erase a booking's personal data (admins only: every role
    # below sees bookings, none of them answers a citizen's legal request).
    MANAGE_PERSONAL_DATA = "manage_personal_data"


_AGENT = frozenset(
    {
        Permission.VIEW_SCHEDULE,
        Permission.CHANGE_STATUS,
        Permission.VIEW_BOOKING,
        Permission.BOOK_FOR_CITIZEN,
    }
)
_MANAGER = _AGENT | {
    Permission.MANAGE_HOURS,
    Permission.MANAGE_SERVICES,
    Permission.MANAGE_STAFF,
    Permission.VIEW_STATS,
    Permission.MANAGE_FEED,
}
PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.MANAGER: frozenset(_MANAGER),
    Role.AGENT: _AGENT,
}


@dataclass(frozen=True, slots=True)
class StaffMember:
    id: int
    email: str
    role: Role
    offices: frozenset[str]  # empty for admins: they see every office
    demo: bool = False

    def sees_office(self, office_id: str) -> bool:
        return sees_office(self.role, self.offices, office_id)

    def may(self, permission: Permission) -> bool:
        return permission in PERMISSIONS[self.role]


def sees_office(role: Role, offices: Collection[str], office_id: str) -> bool:
    return role is Role.ADMIN or office_id in offices


class Access(StrEnum):
    ALLOWED = "allowed"
    NO_OFFICE = "no_office"  # answer 404: do not confirm the office exists
    FORBIDDEN = "forbidden"  # answer 403: their office, not their role


def access(member: StaffMember, office_id: str, permission: Permission) -> Access:
    if not member.sees_office(office_id):
        return Access.NO_OFFICE
    if not member.may(permission):
        return Access.FORBIDDEN
    return Access.ALLOWED


# Accounts -----------------------------------------------------------------------


def normalise_email(raw: str) -> str | None:
    return normalise_address(raw.strip().lower())


def check_new_account(creator: StaffMember | None, role: Role, offices: Collection[str]) -> None:
    """Raise ValidationFailed unless `creator` may create this account.

    `creator` None is the operator at the command line, who may do anything
    the shape rules allow. A manager creates managers and agents for offices
    they manage, never admins: nobody grants more than they hold.
    """
    if role is Role.ADMIN and offices:
        raise ValidationFailed(message=N_("An administrator sees every office; give no office."))
    if role is Role.AGENT and len(offices) != 1:
        raise ValidationFailed(message=N_("An agent works for exactly one office."))
    if role is Role.MANAGER and not offices:
        raise ValidationFailed(message=N_("A manager needs at least one office."))
    if creator is None or creator.role is Role.ADMIN:
        return
    if not creator.may(Permission.MANAGE_STAFF):
        raise ValidationFailed(message=N_("You may not create accounts."))
    if role is Role.ADMIN:
        raise ValidationFailed(message=N_("Only an administrator may create an administrator."))
    if not all(creator.sees_office(o) for o in offices):
        raise ValidationFailed(message=N_("You may only create accounts for your own offices."))


def check_deactivation(actor: StaffMember, target: StaffMember) -> None:
    """Raise Forbidden unless `actor` may deactivate `target`.

    Like creating accounts: an administrator may deactivate anyone but
    themselves; a manager, managers and agents who work only for offices they
    manage (nobody takes away more than they hold). Nobody locks themselves out.
    """
    if actor.id == target.id:
        raise Forbidden("forbidden", N_("You cannot deactivate your own account."))
    if actor.role is Role.ADMIN:
        return
    if not actor.may(Permission.MANAGE_STAFF):
        raise Forbidden("forbidden", N_("You may not deactivate accounts."))
    if target.role is Role.ADMIN:
        raise Forbidden("forbidden", N_("Only an administrator may deactivate an administrator."))
    if not all(actor.sees_office(o) for o in target.offices):
        raise Forbidden(
            "forbidden", N_("This account also works for offices you do not manage.")
        )


def new_password() -> str:
    """Generated for `mawid staff add` and the staff page; ~96 random bits."""
    return secrets.token_urlsafe(12)


MIN_PASSWORD_LENGTH = 12


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return N_("Use at least 12 characters.")
    if len(password) > PASSWORD_MAX:
        return N_("Use at most 1024 characters.")
    return None


# Sessions and tokens ------------------------------------------------------------

SESSION_IDLE = timedelta(hours=2)
SESSION_ABSOLUTE = timedelta(hours=12)  # one working day, then log in again
# Sliding the idle expiry costs a write; do it at most this often.
SESSION_TOUCH_EVERY = timedelta(minutes=5)


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def session_expiry(created_at: datetime, now: datetime) -> datetime:
    return min(now + SESSION_IDLE, created_at + SESSION_ABSOLUTE)


def session_needs_touch(last_seen_at: datetime, now: datetime) -> bool:
    return now - last_seen_at >= SESSION_TOUCH_EVERY


API_TOKEN_PREFIX = "mawid_"  # noqa: S105 - a label, not a secret


def new_api_token() -> str:
    # The prefix lets secret scanners and people recognise a leaked token.
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def looks_like_api_token(value: str) -> bool:
    return value.startswith(API_TOKEN_PREFIX) and 20 <= len(value) <= 100


def new_feed_secret() -> str:
    return secrets.token_urlsafe(32)


# Login throttling ---------------------------------------------------------------
#
# Failures count per account and address pair: a clerk's own mistakes slow down
# that clerk at that desk, and failures elsewhere never stop them. Each counter
# lets a few failures pass, then each further attempt must wait a time that
# doubles with every failure (up to LONGEST_WAIT) after the last one; an
# attempt before then is refused unchecked and not counted. So guessing stays
# slow and nothing is ever locked for good.
#
# Two wider counters, over an account from every address and over an address
# for every account, slow down the pairs that have never signed in: guesses
# spread over many addresses, or over many accounts from one, stay slow, while
# a clerk at a place they signed in from before (a known place) is not held
# back by them, even behind a consulate's one shared address.

# How long a failure counts (the worker's housekeeping drops older ones).
THROTTLE_WINDOW = timedelta(hours=24)
FREE_FAILURES_PER_PAIR = 3
FREE_FAILURES_PER_ACCOUNT = 10
# Higher: several colleagues may sit behind one office address.
FREE_FAILURES_PER_ADDRESS = 30
FIRST_WAIT = timedelta(seconds=1)
LONGEST_WAIT = timedelta(minutes=15)
# A place stays known this long after the last sign-in from it.
KNOWN_PLACE_FOR = timedelta(days=90)
# Failures on an account, from anywhere within the window, after which its
# holder is told by e-mail; at most once per window.
ALERT_AFTER = 5


@dataclass(frozen=True, slots=True)
class ThrottleKeys:
    """What failures are counted under, before hashing."""

    pair: str
    account: str
    address: str


def throttle_keys(email: str, ip: str | None) -> ThrottleKeys:
    account = email.strip().lower()
    address = ip or "?"
    return ThrottleKeys(f"pair:{account}|{address}", f"account:{account}", f"ip:{address}")


@dataclass(frozen=True, slots=True)
class Failures:
    count: int
    last_at: datetime | None = None


def wait_after(failures: int, free: int) -> timedelta:
    """The wait after the last of `failures`, `free` of which cost none."""
    over = failures - free
    if over < 0:
        return timedelta(0)
    return min(FIRST_WAIT * (1 << min(over, 20)), LONGEST_WAIT)


def login_wait(
    pair: Failures, account: Failures, address: Failures, *, known: bool, now: datetime
) -> timedelta:
    """How long before this attempt may be checked; zero: check it now."""
    counted = [(pair, FREE_FAILURES_PER_PAIR)]
    if not known:
        counted += [(account, FREE_FAILURES_PER_ACCOUNT), (address, FREE_FAILURES_PER_ADDRESS)]
    wait = timedelta(0)
    for failures, free in counted:
        if failures.last_at is not None:
            wait = max(wait, failures.last_at + wait_after(failures.count, free) - now)
    return wait


def throttle_since(now: datetime) -> datetime:
    return now - THROTTLE_WINDOW


# What staff may do to a booking ------------------------------------------------

# In the order the day's page offers them.
OFFICE_ACTIONS = (Status.CHECKED_IN, Status.DONE, Status.NO_SHOW, Status.CANCELLED)
OFFICE_TARGETS = frozenset(OFFICE_ACTIONS)
MAX_REASON_LENGTH = 300


def action_refusal(
    target: Status, current: Status, starts_at: datetime, now: datetime, zone: ZoneInfo
) -> Conflict | None:
    """Why staff cannot move a booking from `current` to `target` now, or None.

    Arrivals are marked on the appointment's own day (in the office's zone): a
    tick on tomorrow's list is a slip. Absent only once the appointment has
    started: before it, the seat could still be sold again, and an undo would
    have no seat to return to.
    """
    if not can_transition(current, target):
        return Conflict(
            "bad_transition", N_("This change is not possible for this appointment.")
        )
    if target is Status.CHECKED_IN and local_date(now, zone) != local_date(starts_at, zone):
        return Conflict(
            "not_today",
            N_("Arrival can only be marked on the day of the appointment, %(day)s."),
            params={"day": local_date(starts_at, zone).isoformat()},
        )
    if target is Status.NO_SHOW and not can_mark_no_show(now, starts_at):
        return Conflict(
            "too_early",
            N_("Absent only after %(time)s, once the appointment has started."),
            params={"time": f"{starts_at.astimezone(zone):%H:%M}"},
        )
    return None


def office_actions(
    current: Status, starts_at: datetime, now: datetime, zone: ZoneInfo
) -> list[Status]:
    """The actions the day's page offers for a booking: only those possible now.
    A started appointment is marked absent rather than cancelled."""
    return [
        target
        for target in OFFICE_ACTIONS
        if action_refusal(target, current, starts_at, now, zone) is None
        and not (target is Status.CANCELLED and now >= starts_at)
    ]


def parse_office_action(raw_status: object, raw_reason: object) -> tuple[Status, str | None]:
    """The status staff asked for, with the reason a cancellation needs.

    Raises ValidationFailed naming each field at fault.
    """
    problems: dict[str, str] = {}
    target: Status | None = None
    try:
        target = Status(raw_status) if isinstance(raw_status, str) else None
    except ValueError:
        target = None
    if target not in OFFICE_TARGETS:
        problems["status"] = N_("Choose checked in, done, no-show or cancelled.")
    # The reason reaches the citizen's messages: no invisible reordering.
    reason = " ".join(strip_invisible(raw_reason).split()) if isinstance(raw_reason, str) else ""
    if target is Status.CANCELLED and not reason:
        problems["reason"] = N_("Say why the office cancels: the citizen will read it.")
    elif len(reason) > MAX_REASON_LENGTH:
        problems["reason"] = N_("Keep the reason under 300 characters.")
    if problems or target is None:
        raise ValidationFailed(problems)
    return target, reason or None


def mask_document(document: str | None) -> str:
    """All but the last 4 characters hidden: enough to match a card at the counter."""
    if not document:
        return ""
    visible = document[-4:]
    return "•" * max(len(document) - 4, 0) + visible
