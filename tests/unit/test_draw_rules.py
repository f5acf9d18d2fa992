"""The pure rules of fair allocation: the published ranking, allocation in
drawn order, the waiting list, offers, windows and wishes."""

from __future__ import annotations

import hashlib
import math
import random
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain import draw
from service.domain.draw import (
    REPLAY_SCRIPT,
    Mode,
    Outcome,
    Seat,
    WindowPlan,
    WindowState,
    Wish,
    allocate,
    can_move,
    check_entry,
    check_window,
    check_wish,
    entries_sha256,
    next_in_line,
    ranking,
    seed_sha256,
)
from service.domain.errors import ValidationFailed
from service.domain.models import Office, Service
from service.domain.validation import RawDetails

NOW = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)
JULY = [date(2027, 7, d) for d in range(1, 32)]
SEED = bytes(range(32))

entry_ids = st.lists(
    st.binary(min_size=16, max_size=16).map(bytes.hex), min_size=0, max_size=60, unique=True
)
seeds = st.binary(min_size=32, max_size=32)


def seat(slot_id: int, day: int, hour: int, free: int = 1) -> Seat:
    return Seat(
        slot_id=slot_id,
        starts_at=datetime(2027, 7, day, hour, tzinfo=UTC),
        day=date(2027, 7, day),
        part=draw.part_of_day(time(hour)),
        free=free,
    )


def any_time() -> Wish:
    return Wish(frozenset(JULY), frozenset(draw.PARTS_OF_DAY))


# The rule ------------------------------------------------------------------------


def test_the_ranking_is_the_published_rule_recomputed_by_hand() -> None:
    ids = ["b" * 32, "a" * 32, "0123456789abcdef" * 2]
    by_hand = sorted(ids, key=lambda i: hashlib.sha256(SEED + i.encode()).hexdigest())
    assert ranking(SEED, ids) == by_hand
    assert seed_sha256(SEED) == hashlib.sha256(SEED).hexdigest()
    assert entries_sha256(ids) == hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


@given(seeds, entry_ids, st.randoms(use_true_random=False))
def test_the_order_of_arrival_has_no_effect(
    seed: bytes, ids: list[str], rnd: random.Random
) -> None:
    shuffled = list(ids)
    rnd.shuffle(shuffled)
    assert ranking(seed, shuffled) == ranking(seed, ids)
    assert entries_sha256(shuffled) == entries_sha256(ids)


@given(seeds, entry_ids)
def test_the_same_seed_and_entries_give_the_same_ranking(seed: bytes, ids: list[str]) -> None:
    first = ranking(seed, ids)
    assert first == ranking(bytes(seed), list(ids))
    assert sorted(first) == sorted(ids)


def test_a_different_seed_gives_a_different_ranking() -> None:
    ids = [draw.new_entry_id() for _ in range(200)]
    assert ranking(SEED, ids) != ranking(bytes(reversed(SEED)), ids)


def test_entry_ids_are_128_random_bits_in_hex() -> None:
    ids = {draw.new_entry_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(draw.is_entry_id(i) for i in ids)
    assert not draw.is_entry_id("A" * 32)
    assert not draw.is_entry_id("a" * 31)
    assert not draw.is_entry_id(None)
    assert len(draw.new_seed()) == 32


def chi_square_p(a_hits: int, a_total: int, b_hits: int, b_total: int) -> float:
    """p-value of the chi-square test (1 degree of freedom) on a 2x2 table."""
    total = a_total + b_total
    hits = a_hits + b_hits
    cells = [
        (a_hits, a_total * hits / total),
        (a_total - a_hits, a_total * (total - hits) / total),
        (b_hits, b_total * hits / total),
        (b_total - b_hits, b_total * (total - hits) / total),
    ]
    chi2 = sum((obs - exp) ** 2 / exp for obs, exp in cells)
    return math.erfc(math.sqrt(chi2 / 2))


def test_the_first_and_the_last_second_are_selected_alike() -> None:
    """10,000 requests over a window, a burst of scripts in its first second
    and late-comers in its last: the draw cannot tell them apart."""
    rnd = random.Random(12)
    window = 7 * 24 * 3600
    arrivals: dict[str, float] = {}
    for n in range(10_000):
        if n < 1500:
            at = rnd.random()  # the first second
        elif n < 3000:
            at = window - rnd.random()  # the last second
        else:
            at = rnd.uniform(1, window - 1)
        arrivals[f"{rnd.getrandbits(128):032x}"] = at
    # In the order of arrival, as a first-come system would see them.
    ids = sorted(arrivals, key=arrivals.__getitem__)
    seats = [seat(n, 1 + n % 28, 9 + n % 8, free=5) for n in range(500)]  # 2,500 seats
    wishes = dict.fromkeys(ids, any_time())
    # A fixed seed: with a random one the test would fail one run in twenty
    # by design (p > 0.05), not because the draw favours anyone.
    seed = hashlib.sha256(b"mawid: first and last second").digest()
    served = allocate(ranking(seed, ids), wishes, seats).offers
    first = [i for i in ids if arrivals[i] < 1]
    last = [i for i in ids if arrivals[i] > window - 1]
    first_hits = sum(i in served for i in first)
    last_hits = sum(i in served for i in last)
    assert len(served) == 2500
    assert chi_square_p(first_hits, len(first), last_hits, len(last)) > 0.05
    # Arriving first would have won every seat in a race.
    assert first_hits < len(first)


def test_chi_square_tells_a_race_apart() -> None:
    # The test above can fail: a first-come allocation is told apart.
    assert chi_square_p(1500, 1500, 0, 1500) < 1e-9
    assert chi_square_p(375, 1500, 375, 1500) == pytest.approx(1.0)


# Allocation -----------------------------------------------------------------------


def test_entries_are_served_in_drawn_order_to_their_earliest_suitable_slot() -> None:
    seats = [seat(1, 2, 9), seat(2, 2, 14), seat(3, 3, 9, free=2)]
    wishes = {
        "e1": Wish(frozenset({date(2027, 7, 3)}), frozenset({"morning"})),
        "e2": any_time(),
        "e3": Wish(frozenset({date(2027, 7, 2)}), frozenset({"afternoon"})),
        "e4": Wish(frozenset({date(2027, 7, 2)}), frozenset({"afternoon"})),
        "e5": any_time(),
        "e6": any_time(),
    }
    result = allocate(["e1", "e2", "e3", "e4", "e5", "e6"], wishes, seats)
    assert result.offers == {"e1": 3, "e2": 1, "e3": 2, "e5": 3}
    assert result.waiting == ["e4", "e6"]


def test_full_slots_and_unwished_days_are_skipped() -> None:
    seats = [seat(1, 5, 9, free=0), seat(2, 5, 10)]
    wishes = {"a": any_time(), "b": Wish(frozenset({date(2027, 7, 6)}), frozenset({"morning"}))}
    result = allocate(["b", "a"], wishes, seats)
    assert result.offers == {"a": 2}
    assert result.waiting == ["b"]


@st.composite
def draws(draw_: st.DrawFn) -> tuple[list[str], dict[str, Wish], list[Seat]]:
    ids = draw_(entry_ids)
    days = st.sets(st.sampled_from(JULY[:6]), min_size=1, max_size=6)
    parts = st.sets(st.sampled_from(draw.PARTS_OF_DAY), min_size=1)
    wishes = {i: Wish(frozenset(draw_(days)), frozenset(draw_(parts))) for i in ids}
    n = draw_(st.integers(0, 12))
    seats = [
        seat(k, draw_(st.integers(1, 6)), draw_(st.integers(8, 16)), draw_(st.integers(0, 4)))
        for k in range(n)
    ]
    return ids, wishes, seats


@settings(max_examples=300)
@given(draws(), seeds)
def test_no_slot_gets_more_offers_than_its_free_seats(
    case: tuple[list[str], dict[str, Wish], list[Seat]], seed: bytes
) -> None:
    ids, wishes, seats = case
    ranked = ranking(seed, ids)
    result = allocate(ranked, wishes, seats)
    by_slot = {s.slot_id: s for s in seats}
    for slot_id in set(result.offers.values()):
        assert list(result.offers.values()).count(slot_id) <= by_slot[slot_id].free
    # Every offer suits its entry; everyone is served or waits, once, in order.
    for entry_id, slot_id in result.offers.items():
        assert wishes[entry_id].accepts(by_slot[slot_id].day, by_slot[slot_id].part)
    assert sorted([*result.offers, *result.waiting]) == sorted(ids)
    assert result.waiting == [i for i in ranked if i in set(result.waiting)]
    # A waiting entry had nothing left: every suitable slot is full of
    # entries drawn before it.
    for waiting in result.waiting:
        for s in seats:
            if s.free and wishes[waiting].accepts(s.day, s.part):
                assert list(result.offers.values()).count(s.slot_id) == s.free


@given(draws(), seeds, st.randoms(use_true_random=False))
def test_allocation_does_not_depend_on_the_order_rows_were_read(
    case: tuple[list[str], dict[str, Wish], list[Seat]], seed: bytes, rnd: random.Random
) -> None:
    ids, wishes, seats = case
    shuffled_seats = list(seats)
    rnd.shuffle(shuffled_seats)
    shuffled_ids = list(ids)
    rnd.shuffle(shuffled_ids)
    one = allocate(ranking(seed, ids), wishes, seats)
    two = allocate(ranking(seed, shuffled_ids), wishes, shuffled_seats)
    assert one.offers == two.offers and one.waiting == two.waiting


# The waiting list and offers -------------------------------------------------------------


def test_a_freed_seat_goes_to_the_first_waiting_entry_it_suits() -> None:
    freed = seat(7, 4, 15)
    waiting = [
        ("w1", Wish(frozenset({date(2027, 7, 4)}), frozenset({"morning"}))),
        ("w2", Wish(frozenset({date(2027, 7, 5)}), frozenset({"afternoon"}))),
        ("w3", any_time()),
        ("w4", any_time()),
    ]
    assert next_in_line(freed, waiting) == "w3"
    assert next_in_line(freed, waiting[:2]) is None


def test_an_offer_lasts_its_hours_but_never_past_the_appointment() -> None:
    start = NOW + timedelta(days=10)
    assert draw.offer_expires_at(NOW, 48, start) == NOW + timedelta(hours=48)
    assert draw.offer_expires_at(NOW, 48, NOW + timedelta(hours=5)) == NOW + timedelta(hours=5)
    expires = NOW + timedelta(hours=48)
    assert draw.offer_still_open(expires, expires - timedelta(seconds=1))
    assert not draw.offer_still_open(expires, expires)


def test_outcomes_only_move_forward() -> None:
    assert can_move(Outcome.WAITING, Outcome.OFFERED)
    assert can_move(Outcome.OFFERED, Outcome.CONFIRMED)
    assert can_move(Outcome.OFFERED, Outcome.EXPIRED)
    assert can_move(Outcome.OFFERED, Outcome.DECLINED)
    assert can_move(Outcome.WAITING, Outcome.WITHDRAWN)
    assert not can_move(Outcome.WAITING, Outcome.CONFIRMED)
    assert not can_move(Outcome.EXPIRED, Outcome.OFFERED)
    for final in (Outcome.CONFIRMED, Outcome.DECLINED, Outcome.EXPIRED, Outcome.WITHDRAWN):
        assert not any(can_move(final, after) for after in Outcome)


def test_windows_move_open_closed_drawn_and_no_further() -> None:
    assert draw.next_window_state(WindowState.OPEN) is WindowState.CLOSED
    assert draw.next_window_state(WindowState.CLOSED) is WindowState.DRAWN
    with pytest.raises(ValueError):
        draw.next_window_state(WindowState.DRAWN)


# Modes, windows and wishes -------------------------------------------------------


def test_modes() -> None:
    assert draw.DEFAULT_MODE is Mode.INSTANT
    assert draw.parse_mode(" draw ") is Mode.DRAW
    for bad in ("lottery", None, 3, ""):
        with pytest.raises(ValidationFailed) as refused:
            draw.parse_mode(bad)
        assert set(refused.value.fields) == {"allocation_mode"}


def test_part_of_day_turns_at_noon() -> None:
    assert draw.part_of_day(time(11, 59)) == "morning"
    assert draw.part_of_day(time(12, 0)) == "afternoon"


def plan(**changes: object) -> WindowPlan:
    base: dict[str, object] = {
        "opens_at": NOW,
        "closes_at": NOW + timedelta(days=7),
        "first_day": date(2027, 3, 1),
        "last_day": date(2027, 3, 31),
    }
    base.update(changes)
    return WindowPlan(**base)  # type: ignore[arg-type]


def window_problems(p: WindowPlan) -> set[str]:
    try:
        check_window(p, NOW, datetime.combine(p.first_day, time(), UTC))
    except ValidationFailed as refused:
        return set(refused.fields)
    return set()


def test_a_sound_window_is_accepted() -> None:
    assert window_problems(plan()) == set()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"closes_at": NOW + timedelta(hours=23)}, "closes_at"),
        ({"opens_at": NOW - timedelta(days=2), "closes_at": NOW - timedelta(hours=1)}, "closes_at"),
        ({"opens_at": NOW - timedelta(hours=1)}, "opens_at"),
        ({"last_day": date(2027, 2, 28)}, "last_day"),
        ({"first_day": date(2027, 2, 5)}, "first_day"),
        ({"last_day": date(2027, 7, 1)}, "last_day"),
    ],
)
def test_unsound_windows_are_refused(changes: dict[str, object], field: str) -> None:
    assert field in window_problems(plan(**changes))


def test_wishes_must_name_days_offered_and_parts_of_day() -> None:
    # July 2027's weekdays: the days with times.
    offered = [date(2027, 7, d) for d in range(1, 32) if date(2027, 7, d).weekday() < 5]
    wish = check_wish([date(2027, 7, 2), date(2027, 7, 5)], ["morning"], offered)
    assert wish.accepts(date(2027, 7, 2), "morning")
    assert not wish.accepts(date(2027, 7, 2), "afternoon")
    for days, parts, field in [
        ([], ["morning"], "days"),
        ([date(2027, 8, 1)], ["morning"], "days"),
        # A Saturday inside the period, alone or among offered days.
        ([date(2027, 7, 3)], ["morning"], "days"),
        ([date(2027, 7, 2), date(2027, 7, 3)], ["morning"], "days"),
        ([date(2027, 7, 2)], [], "parts"),
        ([date(2027, 7, 2)], ["evening"], "parts"),
    ]:
        with pytest.raises(ValidationFailed) as refused:
            check_wish(days, parts, offered)
        assert field in refused.value.fields


PARIS = Office(
    id="consulate-paris",
    kind="consulate",
    name={"fr": "Paris"},
    city={"fr": "Paris"},
    country="FR",
    timezone="Europe/Paris",
    address="",
    reference_prefix="PAR",
    holiday_countries=("FR",),
)
PASSPORT = Service(
    office_id="consulate-paris",
    id="passport",
    name={"fr": "Passeport"},
    duration_minutes=15,
    document_required=True,
    earliest_hours=2,
    latest_days=60,
    reschedule_cutoff_minutes=120,
    bring={"fr": ""},
)


def test_an_entry_is_refused_once_for_its_details_and_its_wish_together() -> None:
    # Refused on its details alone, the form came back for its days only
    # after those were put right: two rounds for one form.
    with pytest.raises(ValidationFailed) as refused:
        check_entry(RawDetails(name="", language="fr"), PASSPORT, PARIS, [], [], JULY)
    assert set(refused.value.fields) == {"name", "phone", "document_number", "days", "parts"}
    good = RawDetails(name="Amina El Idrissi", email="a@example.org", document_number="AB123456")
    with pytest.raises(ValidationFailed) as refused:
        check_entry(good, PASSPORT, PARIS, [date(2027, 8, 1)], ["morning"], JULY)
    assert set(refused.value.fields) == {"days"}
    citizen, wish = check_entry(good, PASSPORT, PARIS, [date(2027, 7, 2)], ["afternoon"], JULY)
    assert citizen.email == "a@example.org" and wish.accepts(date(2027, 7, 2), "afternoon")


# Replay --------------------------------------------------------------------------


def published(seed: bytes, ids: list[str]) -> dict[str, object]:
    return {
        "seed_sha256": seed_sha256(seed),
        "entries": sorted(ids),
        "entries_sha256": entries_sha256(ids),
        "seed": seed.hex(),
        "ranking": [{"entry": i, "outcome": "waiting"} for i in ranking(seed, ids)],
    }


def test_a_published_draw_replays_and_a_tampered_one_does_not() -> None:
    ids = [draw.new_entry_id() for _ in range(50)]
    good = published(SEED, ids)
    assert draw.verify(good) == []
    assert draw.verify({**good, "seed": bytes(32).hex()}) != []
    swapped = list(good["ranking"])  # type: ignore[call-overload]
    swapped[0], swapped[1] = swapped[1], swapped[0]
    assert draw.verify({**good, "ranking": swapped}) == [
        "the ranking is not the one the seed and the entries give"
    ]
    added = {**good, "entries": [*ids, draw.new_entry_id()]}
    assert "the entries do not match the hash published at the close" in draw.verify(added)
    assert draw.verify({**good, "seed": None}) == ["the draw has not been published yet"]
    assert draw.verify({**good, "seed": "zz"}) == ["the seed is not hex"]


def test_the_replay_script_is_short_and_replays(tmp_path: object) -> None:
    assert len(REPLAY_SCRIPT.strip().splitlines()) == 10
    ids = [draw.new_entry_id() for _ in range(30)]
    good = published(SEED, ids)
    # The script's own lines, fed the document instead of a URL.
    body = REPLAY_SCRIPT.replace(
        "draw = json.load(urllib.request.urlopen(sys.argv[1]))", "draw = DOC"
    )
    printed: list[str] = []
    exec(body, {"DOC": good, "print": lambda *a: printed.append(" ".join(map(str, a)))})
    assert printed == ["the draw replays: 30 entries"]
    bad = {**good, "seed": bytes(32).hex()}
    with pytest.raises(AssertionError):
        exec(body, {"DOC": bad, "print": print})
