"""An SMS's segments are counted as networks count them: GSM-7 when every character is in
the GSM alphabet (extension characters count two), UCS-2 otherwise (characters outside the
BMP count two), 160/70 units in one SMS, 153/67 per segment beyond, no character split."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from purse.domain.sms import SmsEncoding, SmsLength, sms_cost_minor_units, sms_length

gsm_text = st.text(alphabet="abcXYZ 0123456789.,!?@£$€{}[]~^|\\\n", max_size=700)
any_text = st.text(max_size=400)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", SmsLength(SmsEncoding.GSM_7, 0, 0)),
        ("a" * 160, SmsLength(SmsEncoding.GSM_7, 160, 1)),
        ("a" * 161, SmsLength(SmsEncoding.GSM_7, 161, 2)),
        ("a" * 306, SmsLength(SmsEncoding.GSM_7, 306, 2)),
        ("a" * 307, SmsLength(SmsEncoding.GSM_7, 307, 3)),
        ("€" * 80, SmsLength(SmsEncoding.GSM_7, 160, 1)),
        ("€" * 81, SmsLength(SmsEncoding.GSM_7, 162, 2)),
        # 152 units, then a two-unit character that would straddle the first segment's end.
        ("a" * 152 + "€" + "a" * 8, SmsLength(SmsEncoding.GSM_7, 162, 2)),
        ("a" * 152 + "€" + "a" * 152, SmsLength(SmsEncoding.GSM_7, 306, 3)),
        ("Баланс" * 11 + "ок", SmsLength(SmsEncoding.UCS_2, 68, 1)),
        ("я" * 70, SmsLength(SmsEncoding.UCS_2, 70, 1)),
        ("я" * 71, SmsLength(SmsEncoding.UCS_2, 71, 2)),
        ("я" * 134, SmsLength(SmsEncoding.UCS_2, 134, 2)),
        ("я" * 135, SmsLength(SmsEncoding.UCS_2, 135, 3)),
        ("😀" * 35, SmsLength(SmsEncoding.UCS_2, 70, 1)),
        ("я" * 66 + "😀" + "я" * 4, SmsLength(SmsEncoding.UCS_2, 72, 2)),
        ("a" * 159 + "ä", SmsLength(SmsEncoding.GSM_7, 160, 1)),
        ("a" * 159 + "â", SmsLength(SmsEncoding.UCS_2, 160, 3)),
    ],
)
def test_known_texts_take_the_segments_networks_bill(text: str, expected: SmsLength) -> None:
    assert sms_length(text) == expected


@given(gsm_text)
def test_a_gsm_text_fits_its_segments_and_one_fewer_would_not_hold_it(text: str) -> None:
    length = sms_length(text)
    assert length.encoding is SmsEncoding.GSM_7
    if length.segments > 1:
        assert length.units > 160
        assert length.units <= 153 * length.segments
        assert length.units > 153 * (length.segments - 2)


@given(any_text, any_text)
def test_a_longer_text_never_takes_fewer_segments(text: str, more: str) -> None:
    before, after = sms_length(text), sms_length(text + more)
    if before.encoding is after.encoding:
        assert after.segments >= before.segments


@given(any_text)
def test_one_character_outside_the_gsm_alphabet_makes_the_whole_text_ucs_2(text: str) -> None:
    assert sms_length(text + "ї").encoding is SmsEncoding.UCS_2


def test_the_cost_is_segments_times_the_price_of_one() -> None:
    assert sms_cost_minor_units(3, 85) == 255
    assert sms_cost_minor_units(0, 85) == 0
