import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.sms import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    count_segments,
    encoding_of,
    is_gsm7,
)

BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def test_basic_table_has_the_127_printable_gsm_characters() -> None:
    # 128 code points minus ESC.
    assert len(GSM7_BASIC) == 127
    assert set(BASIC_TABLE) == GSM7_BASIC


@pytest.mark.parametrize("ch", sorted(GSM7_BASIC))
def test_every_basic_character_is_one_septet(ch: str) -> None:
    c = count_segments(ch * 160)
    assert (c.encoding, c.units, c.segments) == ("gsm7", 160, 1)
    c = count_segments(ch * 161)
    assert (c.encoding, c.units, c.segments) == ("gsm7", 161, 2)


@pytest.mark.parametrize("ch", sorted(GSM7_EXTENSION))
def test_every_extension_character_is_two_septets(ch: str) -> None:
    c = count_segments(ch * 80)
    assert (c.encoding, c.units, c.segments) == ("gsm7", 160, 1)
    assert count_segments(ch * 81).segments == 2


def test_the_documented_extension_characters() -> None:
    for ch in "^{}\\[~]|€":
        assert ch in GSM7_EXTENSION


@pytest.mark.parametrize("ch", list("çêâîôûëïœ"))
def test_french_letters_outside_gsm_switch_to_ucs2(ch: str) -> None:
    text = "Votre rendez-vous est confirm" + ch
    assert encoding_of(text) == "ucs2"
    assert count_segments(text).units == len(text)


@pytest.mark.parametrize("ch", list("éèùàìòÇÉ"))
def test_french_letters_inside_gsm(ch: str) -> None:
    assert is_gsm7("Réf " + ch)


def test_no_non_gsm_character_sneaks_in() -> None:
    # Every BMP character outside the two tables forces UCS-2.
    allowed = GSM7_BASIC | GSM7_EXTENSION
    for cp in range(0x20, 0x3000):
        ch = chr(cp)
        assert is_gsm7(ch) == (ch in allowed)
    assert not is_gsm7("\x1b")


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (159, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_boundaries(length: int, segments: int) -> None:
    assert count_segments("a" * length).segments == segments


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_boundaries(length: int, segments: int) -> None:
    c = count_segments("ب" * length)
    assert c.encoding == "ucs2"
    assert c.segments == segments


def test_one_arabic_letter_makes_the_whole_message_ucs2() -> None:
    text = "a" * 100 + "م"
    c = count_segments(text)
    assert (c.encoding, c.units, c.segments) == ("ucs2", 101, 2)


def test_emoji_counts_two_utf16_units() -> None:
    assert count_segments("😀" * 35) == count_segments("ب" * 70)
    c = count_segments("😀" * 35)
    assert (c.units, c.segments) == (70, 1)
    assert count_segments("😀" * 36).segments == 2


def test_surrogate_pair_is_not_split_across_parts() -> None:
    # 66 units then a pair: the pair does not fit in the first part's last unit.
    text = "ب" * 66 + "😀" + "ب" * 5
    c = count_segments(text)
    assert c.units == 73
    assert c.segments == 2
    text = "ب" * 66 + "😀" + "ب" * 66
    assert count_segments(text).segments == 3  # 66 | 2 + 65 | 1


def test_escape_sequence_is_not_split_across_parts() -> None:
    text = "a" * 152 + "€" + "a" * 10
    c = count_segments(text)
    assert c.units == 164
    assert c.segments == 2
    text = "a" * 152 + "€" + "a" * 152
    # 152 | 2 + 151 | 1
    assert count_segments(text).segments == 3


def test_extension_characters_count_toward_the_single_segment_limit() -> None:
    assert count_segments("a" * 158 + "€").segments == 1
    assert count_segments("a" * 159 + "€").segments == 2


def test_empty_body_is_one_segment() -> None:
    assert count_segments("").segments == 1


@given(st.text(alphabet=st.sampled_from(sorted(GSM7_BASIC)), min_size=161, max_size=2000))
def test_plain_gsm_long_messages_follow_153(text: str) -> None:
    assert count_segments(text).segments == math.ceil(len(text) / 153)


@given(st.text(alphabet=st.characters(min_codepoint=0x600, max_codepoint=0x6FF), max_size=2000))
def test_arabic_follows_70_then_67(text: str) -> None:
    c = count_segments(text)
    expected = 1 if len(text) <= 70 else math.ceil(len(text) / 67)
    assert c.segments == expected


@given(st.text(max_size=500))
def test_segments_never_below_the_naive_bound(text: str) -> None:
    c = count_segments(text)
    part = 153 if c.encoding == "gsm7" else 67
    single = 160 if c.encoding == "gsm7" else 70
    if c.units <= single:
        assert c.segments == 1
    else:
        assert c.segments >= math.ceil(c.units / part)
        # At most one unit wasted per part.
        assert c.segments <= math.ceil(c.units / (part - 1))
