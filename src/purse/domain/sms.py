"""An SMS's length as a phone network counts it: the encoding, the units and the segments.

A text every character of which is in the GSM 03.38 alphabet goes as GSM-7: 7-bit units,
the characters of the alphabet's extension table (`^ { } \\ [ ~ ] | €` and form feed)
taking two (an escape, then the character). Any other character puts the whole text in
UCS-2: 16-bit units, a character outside the Basic Multilingual Plane (most emoji) taking
two (a surrogate pair). One SMS holds 160 GSM-7 units or 70 UCS-2 units; a longer text is
sent as a concatenated SMS whose segments each give up room to the concatenation header,
153 and 67 units, and a character is never split across two segments (an escape pair or a
surrogate pair that would straddle the boundary starts the next segment). Operators bill
per segment, so a bulk message's cost estimate is segments × the price of one.

Pure: a text in, a count out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# GSM 03.38's default alphabet (without the escape itself, which a text cannot hold).
_gsm_basic = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Its extension table: each is sent as the escape and the character, two units.
_gsm_extension = frozenset("\f^{}\\[~]|€")

gsm_single_units_max = 160
gsm_segment_units_max = 153
ucs2_single_units_max = 70
ucs2_segment_units_max = 67


class SmsEncoding(enum.Enum):
    GSM_7 = "gsm_7"
    UCS_2 = "ucs_2"


@dataclass(frozen=True, slots=True)
class SmsLength:
    """How a text goes out: its encoding, its length in that encoding's units, and the
    segments (SMS) it takes; an empty text takes none."""

    encoding: SmsEncoding
    units: int
    segments: int


def sms_length(text: str) -> SmsLength:
    """The encoding, units and segments of `text` as an SMS."""
    if all(character in _gsm_basic or character in _gsm_extension for character in text):
        sizes = [2 if character in _gsm_extension else 1 for character in text]
        return _counted(SmsEncoding.GSM_7, sizes, gsm_single_units_max, gsm_segment_units_max)
    sizes = [2 if ord(character) > 0xFFFF else 1 for character in text]
    return _counted(SmsEncoding.UCS_2, sizes, ucs2_single_units_max, ucs2_segment_units_max)


def _counted(
    encoding: SmsEncoding, sizes: list[int], single_max: int, segment_max: int
) -> SmsLength:
    units = sum(sizes)
    if units == 0:
        return SmsLength(encoding, 0, 0)
    if units <= single_max:
        return SmsLength(encoding, units, 1)
    segments, room = 1, segment_max
    for size in sizes:
        if size > room:
            segments, room = segments + 1, segment_max
        room -= size
    return SmsLength(encoding, units, segments)


def sms_cost_minor_units(segments: int, segment_price_minor_units: int) -> int:
    """What `segments` SMS segments cost at a price per segment (integers throughout)."""
    assert segments >= 0 and segment_price_minor_units >= 0
    return segments * segment_price_minor_units
