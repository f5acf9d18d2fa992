"""Fair allocation: request windows, the published draw, allocation of seats
in drawn order, offers that pass on, and the waiting list. Pure: no I/O.

The whole algorithm is one public rule, so that anyone can replay it:

    rank(entry) = SHA-256(seed_bytes || entry_id_utf8), as lower-case hex;
    the ranking is the entry ids ordered by rank, ascending.

The seed is 32 random bytes drawn when the window opens; only its SHA-256 is
published until the window closes. At the close the entry ids (random 128-bit
ids, never derived from a document number) are published with the SHA-256 of
the sorted ids joined by "\\n"; then the seed, and the ranking. Nothing that
a citizen controls (when they asked, in which order rows were written, their
name or document) reaches the rank, so arriving first is worth nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal

from service.domain import errors
from service.domain.errors import N_
from service.domain.models import Office, Service
from service.domain.validation import CitizenDetails, RawDetails, validate_details

SEED_BYTES = 32
ENTRY_ID_HEX = 32  # 128 bits


class Mode(StrEnum):
    """How a service at an office gives out its seats."""

    INSTANT = "instant"  # first come, first served (the default)
    DRAW = "draw"  # requests over a window, then a draw


DEFAULT_MODE = Mode.INSTANT


def parse_mode(raw: object) -> Mode:
    if isinstance(raw, str):
        try:
            return Mode(raw.strip())
        except ValueError:
            pass
    raise errors.ValidationFailed(
        {"allocation_mode": N_("Choose first come, first served or a draw.")}
    )


# Parts of the office's day an entry may accept.
PartOfDay = Literal["morning", "afternoon"]
PARTS_OF_DAY: tuple[PartOfDay, ...] = ("morning", "afternoon")
# Where the afternoon starts, in the office's wall-clock time.
NOON = time(12, 0)


def part_of_day(local_start: time) -> PartOfDay:
    return "morning" if local_start < NOON else "afternoon"


# Window states, in order; a window only moves forward.
class WindowState(StrEnum):
    OPEN = "open"  # requests are taken; only the seed's hash is public
    CLOSED = "closed"  # no more requests; entry ids published, draw pending
    DRAWN = "drawn"  # seed and ranking published, offers written


_WINDOW_NEXT = {WindowState.OPEN: WindowState.CLOSED, WindowState.CLOSED: WindowState.DRAWN}


def next_window_state(state: WindowState) -> WindowState:
    following = _WINDOW_NEXT.get(state)
    if following is None:
        raise ValueError(f"a {state} window does not move on")
    return following


class Outcome(StrEnum):
    """What became of an entry, as the published ranking shows it."""

    WAITING = "waiting"  # not (yet) offered a seat: on the waiting list
    OFFERED = "offered"  # an offer is open, until its expiry
    CONFIRMED = "confirmed"  # the offer was accepted: a booking exists
    DECLINED = "declined"  # the citizen said no
    EXPIRED = "expired"  # the offer was not confirmed in time
    WITHDRAWN = "withdrawn"  # the citizen left the list
    # Its contact was not proved in time (never in the draw); on a waiting
    # list also: its last acceptable day passed.
    LAPSED = "lapsed"


# The moves an entry can make; everything else is refused.
_OUTCOME_MOVES: Mapping[Outcome, frozenset[Outcome]] = {
    Outcome.WAITING: frozenset({Outcome.OFFERED, Outcome.WITHDRAWN, Outcome.LAPSED}),
    Outcome.OFFERED: frozenset({Outcome.CONFIRMED, Outcome.DECLINED, Outcome.EXPIRED}),
    Outcome.CONFIRMED: frozenset(),
    Outcome.DECLINED: frozenset(),
    Outcome.EXPIRED: frozenset(),
    Outcome.WITHDRAWN: frozenset(),
    Outcome.LAPSED: frozenset(),
}


def can_move(before: Outcome, after: Outcome) -> bool:
    return after in _OUTCOME_MOVES[before]


# The seed, the entry ids and the ranking -------------------------------------


def new_seed() -> bytes:
    return secrets.token_bytes(SEED_BYTES)


def new_entry_id() -> str:
    """A random 128-bit id, lower-case hex: the citizen's receipt shows it,
    the published list carries it, and nothing about the citizen is in it."""
    return secrets.token_hex(ENTRY_ID_HEX // 2)


def is_entry_id(raw: object) -> bool:
    return (
        isinstance(raw, str)
        and len(raw) == ENTRY_ID_HEX
        and all(ch in "0123456789abcdef" for ch in raw)
    )


def seed_sha256(seed: bytes) -> str:
    return hashlib.sha256(seed).hexdigest()


def entries_sha256(entry_ids: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(entry_ids)).encode()).hexdigest()


def rank_of(seed: bytes, entry_id: str) -> str:
    return hashlib.sha256(seed + entry_id.encode()).hexdigest()


def ranking(seed: bytes, entry_ids: Iterable[str]) -> list[str]:
    """The entry ids in drawn order. Ties in SHA-256 do not happen; should
    one, the id breaks it, so the order is still a function of the inputs."""
    return sorted(set(entry_ids), key=lambda entry_id: (rank_of(seed, entry_id), entry_id))


# The replay script shown in the README and on the public page: everything a
# reader needs to check a draw, with the standard library only.
REPLAY_SCRIPT = """\
import hashlib, json, sys, urllib.request
draw = json.load(urllib.request.urlopen(sys.argv[1]))
seed = bytes.fromhex(draw["seed"])
assert hashlib.sha256(seed).hexdigest() == draw["seed_sha256"], "seed"
ids = draw["entries"]
joined = "\\n".join(sorted(ids)).encode()
assert hashlib.sha256(joined).hexdigest() == draw["entries_sha256"], "entries"
mine = sorted(ids, key=lambda i: hashlib.sha256(seed + i.encode()).hexdigest())
assert mine == [r["entry"] for r in draw["ranking"]], "ranking"
print("the draw replays:", len(mine), "entries")
"""


def verify(published: Mapping[str, object]) -> list[str]:
    """The problems found replaying a published draw (empty: it replays).
    `published` is the JSON of GET /api/v1/draws/{id} after the draw."""
    problems: list[str] = []
    seed_hex = published.get("seed")
    entries = published.get("entries")
    ranked = published.get("ranking")
    if not isinstance(seed_hex, str) or not isinstance(entries, list):
        return ["the draw has not been published yet"]
    try:
        seed = bytes.fromhex(seed_hex)
    except ValueError:
        return ["the seed is not hex"]
    if seed_sha256(seed) != published.get("seed_sha256"):
        problems.append("the seed does not match the hash published at the opening")
    ids = [str(entry) for entry in entries]
    if entries_sha256(ids) != published.get("entries_sha256"):
        problems.append("the entries do not match the hash published at the close")
    shown = (
        [row.get("entry") for row in ranked if isinstance(row, dict)]
        if isinstance(ranked, list)
        else None
    )
    if shown != ranking(seed, ids):
        problems.append("the ranking is not the one the seed and the entries give")
    return problems


# Windows ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """What a manager asks for: requests between opens_at and closes_at, for
    the slots of the local days first_day..last_day."""

    opens_at: datetime
    closes_at: datetime
    first_day: date
    last_day: date


# A window shorter than a day favours whoever is watching at that moment.
MIN_WINDOW = timedelta(hours=24)


def check_window(plan: WindowPlan, now: datetime, first_day_starts_at: datetime) -> None:
    """Refuse a window that would not be fair or could not work:
    `first_day_starts_at` is the start of first_day in the office's zone."""
    problems: dict[str, str] = {}
    if plan.closes_at - plan.opens_at < MIN_WINDOW:
        problems["closes_at"] = N_("A request window must stay open for at least a day.")
    if plan.closes_at <= now:
        problems["closes_at"] = N_("The window must close in the future.")
    if plan.opens_at < now - timedelta(minutes=5):
        problems["opens_at"] = N_("The window cannot open in the past.")
    if plan.last_day < plan.first_day:
        problems["last_day"] = N_("The last day must not be before the first day.")
    if first_day_starts_at <= plan.closes_at:
        problems["first_day"] = N_("The period must start after the window closes.")
    if (plan.last_day - plan.first_day).days > 92:
        problems["last_day"] = N_("A window may cover at most three months of slots.")
    if problems:
        raise errors.ValidationFailed(problems)


# Entries and allocation -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Wish:
    """When an entry can come: local days and parts of the day."""

    days: frozenset[date]
    parts: frozenset[PartOfDay]

    def accepts(self, day: date, part: PartOfDay) -> bool:
        return day in self.days and part in self.parts


# Why days are refused: outside a window's period, or off a waiting list's days.
OUTSIDE_WINDOW = N_("Choose days inside the period of this window.")
OUTSIDE_LIST = N_("Choose days among those shown.")


def period_days(first: date, last: date) -> list[date]:
    """Every day from `first` to `last`."""
    return [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]


def check_wish(
    days: Iterable[date],
    parts: Iterable[str],
    offered: Collection[date],
    *,
    outside: str = OUTSIDE_LIST,
) -> Wish:
    """A citizen's acceptable days (among those `offered`: a window's
    period, a waiting list's) and parts of day; refused when either is
    empty or a day is not offered."""
    chosen_days = frozenset(days)
    chosen_parts = frozenset(part for part in parts if part in PARTS_OF_DAY)
    problems: dict[str, str] = {}
    if not chosen_days:
        problems["days"] = N_("Choose at least one day.")
    elif not chosen_days <= frozenset(offered):
        problems["days"] = outside
    if not chosen_parts or len(chosen_parts) != len(set(parts)):
        problems["parts"] = N_("Choose the morning, the afternoon or both.")
    if problems:
        raise errors.ValidationFailed(problems)
    return Wish(chosen_days, chosen_parts)


def check_entry(
    details: RawDetails,
    service: Service,
    office: Office,
    days: Iterable[date],
    parts: Iterable[str],
    offered: Collection[date],
) -> tuple[CitizenDetails, Wish]:
    """An entry's details (validate_details) and wish (check_wish), or one
    ValidationFailed with every field at fault in both: refused on its
    details first, the form would come back for its days only once those
    were put right, a second round for the citizen."""
    problems: dict[str, str] = {}
    citizen: CitizenDetails | None = None
    wish: Wish | None = None
    try:
        citizen = validate_details(details, service, office.country, office.sms_countries)
    except errors.ValidationFailed as failed:
        problems.update(failed.fields)
    try:
        wish = check_wish(days, parts, offered)
    except errors.ValidationFailed as failed:
        problems.update(failed.fields)
    if problems or citizen is None or wish is None:
        raise errors.ValidationFailed(problems)
    return citizen, wish


@dataclass(frozen=True, slots=True)
class Seat:
    """Free seats of one slot, as the allocation sees them."""

    slot_id: int
    starts_at: datetime
    day: date  # in the office's zone
    part: PartOfDay
    free: int


@dataclass(slots=True)
class Allocation:
    """Which slot each served entry is offered, and who waits, in drawn order."""

    offers: dict[str, int] = field(default_factory=dict)
    waiting: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Free:
    starts_at: datetime
    slot_id: int
    free: int


def allocate(
    ranked: Sequence[str], wishes: Mapping[str, Wish], seats: Iterable[Seat]
) -> Allocation:
    """Serve the entries in drawn order, each to the earliest free slot that
    suits it; entries with nothing suitable left wait, in order. A slot never
    gets more offers than its free seats.

    Slots are grouped by (day, part) with a cursor on each group's first slot
    with a free seat, so an entry costs one look per acceptable group rather
    than a scan of every slot (100,000 entries for 5,000 seats stays fast).
    """
    groups: dict[tuple[date, PartOfDay], list[_Free]] = {}
    for seat in sorted(seats, key=lambda s: (s.starts_at, s.slot_id)):
        if seat.free > 0:
            groups.setdefault((seat.day, seat.part), []).append(
                _Free(seat.starts_at, seat.slot_id, seat.free)
            )
    cursors = dict.fromkeys(groups, 0)
    result = Allocation()
    for entry_id in ranked:
        wish = wishes[entry_id]
        best_key: tuple[date, PartOfDay] | None = None
        best: _Free | None = None
        for day in wish.days:
            for part in wish.parts:
                key = (day, part)
                rows = groups.get(key)
                if rows is None or cursors[key] >= len(rows):
                    continue
                row = rows[cursors[key]]
                if best is None or (row.starts_at, row.slot_id) < (best.starts_at, best.slot_id):
                    best_key, best = key, row
        if best is None or best_key is None:
            result.waiting.append(entry_id)
            continue
        result.offers[entry_id] = best.slot_id
        best.free -= 1
        if best.free == 0:
            cursors[best_key] += 1
    return result


def next_in_line(seat: Seat, waiting: Sequence[tuple[str, Wish]]) -> str | None:
    """Who a freed seat goes to: the first waiting entry, in drawn order,
    that accepts its day and part of day (None: nobody; the seat stays with
    the list and never goes back on public sale)."""
    for entry_id, wish in waiting:
        if wish.accepts(seat.day, seat.part):
            return entry_id
    return None


# Offers ------------------------------------------------------------------------

DEFAULT_OFFER_HOURS = 48


def offer_expires_at(now: datetime, hours: int, slot_starts_at: datetime) -> datetime:
    """T hours from now, but never after the appointment itself starts."""
    return min(now + timedelta(hours=hours), slot_starts_at)


def receipt_url(entry_id: str, token: str) -> str:
    """A request's receipt (see it, withdraw it); the token is the one shown
    at the request or carried by one of its messages."""
    return f"/r/{entry_id}/{token}"


def offer_url(base_url: str, reference: str, token: str) -> str:
    """The page where an offer is accepted or declined (the token is the
    one its message carries, as for the manage page)."""
    return f"{base_url}/d/{reference}/{token}"


def offer_still_open(expires_at: datetime, now: datetime) -> bool:
    """An offer can be confirmed up to, not at, its expiry."""
    return now < expires_at
