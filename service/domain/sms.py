"""SMS encoding detection and segment counting (GSM 03.38 / UCS-2).

Segments are what the provider bills, so the count has to match what a
handset and Twilio do: a message that fits one segment uses the whole
payload (160 septets or 70 UTF-16 units); a longer one is split into parts
that each lose room to the concatenation header (153 / 67).  A two-unit
sequence (a GSM escape + extension character, or a UTF-16 surrogate pair) is
never cut across two parts, so a part may end one unit short.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoding = Literal["gsm7", "ucs2"]

# The GSM 03.38 default alphabet (one septet each).  ESC (0x1B) is left out:
# it only introduces the extension table and is not a character of its own.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs an escape septet plus its own.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE = 160
GSM7_PART = 153
UCS2_SINGLE = 70
UCS2_PART = 67

# What one message may cost, in segments, by language: Arabic is always UCS-2
# (67 units a part), French and English stay GSM-7. The renderer leaves out
# optional parts of an SMS (service.notify.render.SMS_OPTIONAL) to stay inside.
SEGMENT_BUDGET: dict[str, int] = {"ar": 3, "fr": 2, "en": 2, "es": 2, "zgh": 3}


@dataclass(frozen=True, slots=True)
class SegmentCount:
    encoding: Encoding
    # Septets for GSM-7, UTF-16 code units for UCS-2.
    units: int
    segments: int


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def encoding_of(text: str) -> Encoding:
    return "gsm7" if is_gsm7(text) else "ucs2"


def _unit_sizes(text: str, encoding: Encoding) -> list[int]:
    if encoding == "gsm7":
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    # Characters beyond the BMP (emoji, some CJK) take a surrogate pair.
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def count_segments(text: str) -> SegmentCount:
    """How many billed segments `text` costs, and in which encoding.

    An empty body still costs one segment if sent at all.
    """
    encoding = encoding_of(text)
    sizes = _unit_sizes(text, encoding)
    units = sum(sizes)
    single, part = (GSM7_SINGLE, GSM7_PART) if encoding == "gsm7" else (UCS2_SINGLE, UCS2_PART)
    if units <= single:
        return SegmentCount(encoding, units, 1)
    segments = 1
    used = 0
    for size in sizes:
        if used + size > part:
            segments += 1
            used = 0
        used += size
    return SegmentCount(encoding, units, segments)
