"""Places: the key a typed town is compared on, the most populous of the
towns sharing it, and the distance between two places."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.errors import ValidationFailed
from service.domain.places import (
    Place,
    distance_km,
    find,
    parse_alert_km,
    parse_coordinates,
    place_key,
    town_text,
    within,
)

PARIS = (48.8566, 2.3522)
ORLEANS = (47.9025, 1.9041)


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("Orléans", "orleans"),
        ("  ORLÉANS ", "orleans"),
        ("Saint-Étienne", "saint etienne"),
        ("saint  etienne", "saint etienne"),
        ("L’Haÿ-les-Roses", "l hay les roses"),
        ("Den Haag", "den haag"),
        # Hamza forms, the madda and the tatweel are one letter to a reader.
        ("أورليان", "اورليان"),
        ("إورليـان", "اورليان"),
        ("", ""),
    ],
)
def test_a_town_is_keyed_without_case_accents_or_hyphens(typed: str, key: str) -> None:
    assert place_key(typed) == key


def test_the_most_populous_town_of_a_shared_name_is_meant() -> None:
    small = Place("Saint-Denis", "FR", 45.0, 1.0, 9000)
    large = Place("Saint-Denis", "FR", 48.9, 2.4, 113000)
    belgian = Place("Saint-Denis", "BE", 50.5, 4.0, 300000)
    index = {"FR": {"saint denis": (small, large)}, "BE": {"saint denis": (belgian,)}}
    assert find("Saint Denis", ["FR"], index) == large
    assert find("SAINT-DENIS, France", ["FR"], index) == large  # before the comma
    # Only the countries asked; the order of the data changes nothing.
    assert find("saint-denis", ["FR", "BE"], index) == belgian
    assert find("Saint-Denis", ["FR"], {"FR": {"saint denis": (large, small)}}) == large
    assert find("Saint-Denis", ["NL"], index) is None
    assert find(",", ["FR"], index) is None


def test_distances_on_the_earth() -> None:
    # Paris to Orléans is about 111 km as the crow flies.
    assert 108 < distance_km(PARIS, ORLEANS) < 114
    assert distance_km(PARIS, PARIS) == 0
    assert within(PARIS, ORLEANS, 112) and not within(PARIS, ORLEANS, 105)
    # Antipodes: half the circumference.
    assert round(distance_km((0, 0), (0, 180))) == 20015


@given(
    st.tuples(st.floats(-90, 90), st.floats(-180, 180)),
    st.tuples(st.floats(-90, 90), st.floats(-180, 180)),
)
def test_a_distance_is_symmetric_and_bounded(
    a: tuple[float, float], b: tuple[float, float]
) -> None:
    assert distance_km(a, b) == pytest.approx(distance_km(b, a), abs=1e-6)
    assert 0 <= distance_km(a, b) <= 20016


def test_what_a_form_gives_is_read_or_refused_naming_its_field() -> None:
    assert town_text("  Orléans   la Source ", "town") == "Orléans la Source"
    for bad in ("", "   ", "x" * 101, None):
        with pytest.raises(ValidationFailed) as refused:
            town_text(bad, "town")
        assert set(refused.value.fields) == {"town"}
    assert parse_alert_km(" 100 ") == 100 and parse_alert_km("1000") == 1000
    for bad in ("0", "1001", "-5", "10.5", "١٠٠", "", None):
        with pytest.raises(ValidationFailed):
            parse_alert_km(bad)
    assert parse_coordinates("", " ") is None
    assert parse_coordinates("47,9", "-1.5") == (47.9, -1.5)
    for latitude, longitude in (("91", "0"), ("0", "181"), ("nan", "0"), ("0", "inf"), ("1", "")):
        with pytest.raises(ValidationFailed) as refused:
            parse_coordinates(latitude, longitude)
        assert set(refused.value.fields) == {"latitude"}
