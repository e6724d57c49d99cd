"""Phone, card, QR and steward code normalisation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from purse.domain.errors import InvalidArgument
from purse.domain.identifiers import (
    IdentifierKind,
    normalize_card_number,
    normalize_card_qr,
    normalize_phone,
    normalize_steward_code,
    normalize_stored,
    phone_search_prefix,
)


@pytest.mark.parametrize(
    ("raw", "prefix", "expected"),
    [
        ("+380501234567", "", "+380501234567"),
        ("+38 (050) 123-45-67", "", "+380501234567"),
        ("00380501234567", "", "+380501234567"),
        ("050 123 45 67", "+380", "+380501234567"),
        ("501234567", "+380", "+380501234567"),
        ("80501234567", "+380", "+380501234567"),
        ("2025550123", "+1", "+12025550123"),
        ("12025550123", "+1", "+12025550123"),
    ],
)
def test_phones_become_e164_completed_with_the_terminal_prefix(
    raw: str, prefix: str, expected: str
) -> None:
    assert normalize_phone(raw, prefix) == expected


@pytest.mark.parametrize(
    ("raw", "prefix"),
    [
        ("", "+380"),
        ("+38050abc4567", ""),
        ("0501234567", ""),
        ("+0501234567", ""),
        ("+1234", ""),
        ("+1234567890123456", ""),
        ("+38+0501234567", ""),
    ],
)
def test_malformed_phones_are_refused_with_the_field_named(raw: str, prefix: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        normalize_phone(raw, prefix, field="identifier.phone")
    assert refused.value.reason == "PHONE_INVALID"
    assert refused.value.violations[0].field == "identifier.phone"


@given(st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True))
def test_normalising_an_e164_phone_changes_nothing(phone: str) -> None:
    assert normalize_phone(phone) == phone
    assert normalize_phone(normalize_phone(phone, "+380"), "+1") == phone


def test_card_numbers_drop_separators_and_are_upper_cased() -> None:
    assert normalize_card_number(" demo-0001 ") == "DEMO0001"
    assert normalize_card_number("1234 5678 9012") == "123456789012"


@pytest.mark.parametrize("raw", ["", "12", "ab$cd", "x" * 65])
def test_malformed_card_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        normalize_card_number(raw)
    assert refused.value.reason == "CARD_NUMBER_INVALID"


def test_card_qr_payloads_are_kept_as_scanned_but_control_characters_are_refused() -> None:
    assert normalize_card_qr(" https://q.example/c/AbC ") == "https://q.example/c/AbC"
    with pytest.raises(InvalidArgument):
        normalize_card_qr("abc\x00def")
    with pytest.raises(InvalidArgument):
        normalize_card_qr("q" * 257)


def test_steward_codes_have_exactly_six_digits() -> None:
    assert normalize_steward_code("123 456") == "123456"
    for raw in ("12345", "1234567", "12345a"):
        with pytest.raises(InvalidArgument) as refused:
            normalize_steward_code(raw)
        assert refused.value.reason == "STEWARD_CODE_INVALID"


def test_only_cards_and_card_qr_codes_can_be_stored_by_a_business() -> None:
    assert normalize_stored(IdentifierKind.CARD_NUMBER, "ab-12") == "AB12"
    with pytest.raises(InvalidArgument) as refused:
        normalize_stored(IdentifierKind.PHONE, "+380501234567")
    assert refused.value.reason == "KIND_INVALID"


def test_phone_search_prefixes_are_completed_like_phones() -> None:
    assert phone_search_prefix("050 12", "+380") == "+3805012"
    assert phone_search_prefix("+4477", "") == "+4477"
    with pytest.raises(InvalidArgument):
        phone_search_prefix("05", "+380")
