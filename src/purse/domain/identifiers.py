"""Customer identifiers: phone numbers, card numbers, card QR payloads, steward codes.

Pure normalisation and validation. A phone becomes E.164 (`+` and 7 to 15 digits, no
leading zero in the country code). Locally typed numbers are completed with the
terminal's phone prefix, merging the digits the two share: with the prefix "+380" the
local "050 123 45 67" becomes "+380501234567" (the trunk "0" is the prefix's last digit),
and "501234567" becomes the same. Card numbers keep letters and digits only, upper-cased.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from purse.domain.errors import echoed, invalid

phone_digits_min = 7
phone_digits_max = 15
# Longer phone input (separators included) is refused before it is read at all.
phone_input_characters_max = 32
card_number_characters_max = 64
card_number_characters_min = 4
card_qr_characters_max = 256
steward_code_digits = 6
_phone_separators = re.compile(r"[\s().\-/]")
_card_separators = re.compile(r"[\s\-]")
_card_allowed = re.compile(r"^[A-Z0-9]+$")
# ASCII digits only: str.isdigit() also takes '٣' and '²'.
_ascii_digits = re.compile(r"^[0-9]+$")


class IdentifierKind(Enum):
    """How a customer presents themself at a terminal."""

    PHONE = "phone"
    CARD_NUMBER = "card_number"
    CARD_QR = "card_qr"
    APP_TOKEN = "app_token"
    STEWARD_CODE = "steward_code"


# Kinds a business can attach to a customer (a phone belongs to the customer, not to it).
STORED_KINDS = (IdentifierKind.CARD_NUMBER, IdentifierKind.CARD_QR)


@dataclass(frozen=True, slots=True)
class Identifier:
    """A validated, normalised identifier."""

    kind: IdentifierKind
    value: str


def normalize_phone(raw: str, prefix: str = "", field: str = "phone") -> str:
    """E.164 form of `raw`; raises InvalidArgument naming `field` when it cannot be one."""
    _refuse_long_phone(raw, field)
    text = _phone_separators.sub("", raw.strip())
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text:
        raise invalid(field, "a phone number is required", "PHONE_INVALID")
    if not _ascii_digits.match(text.lstrip("+")) or text.count("+") > 1 or "+" in text[1:]:
        raise invalid(field, f"{echoed(raw)} is not a phone number", "PHONE_INVALID")
    if not text.startswith("+"):
        text = _complete_with_prefix(text, prefix, raw, field)
    digits = text[1:]
    if digits.startswith("0"):
        raise invalid(field, "a country code never starts with 0", "PHONE_INVALID")
    if not phone_digits_min <= len(digits) <= phone_digits_max:
        raise invalid(
            field,
            f"an international number has {phone_digits_min} to {phone_digits_max} digits, "
            f"{echoed(raw)} gives {text}, {len(digits)} digits",
            "PHONE_INVALID",
        )
    return text


def _refuse_long_phone(raw: str, field: str) -> None:
    if len(raw) > phone_input_characters_max:
        raise invalid(
            field,
            f"a phone number has at most {phone_input_characters_max} characters",
            "PHONE_INVALID",
        )


def _complete_with_prefix(local: str, prefix: str, raw: str, field: str) -> str:
    if not prefix:
        raise invalid(
            field,
            f"{echoed(raw)} has no country code and the terminal has no phone prefix; "
            "send it as +<country code><number>",
            "PHONE_INVALID",
        )
    prefix_digits = prefix.lstrip("+")
    # The longest tail of the prefix that the local number starts with is shared.
    for overlap in range(min(len(prefix_digits), len(local)), 0, -1):
        if local.startswith(prefix_digits[-overlap:]):
            return "+" + prefix_digits + local[overlap:]
    return "+" + prefix_digits + local


def normalize_card_number(raw: str, field: str = "card_number") -> str:
    """Card numbers: letters and digits, separators dropped, upper case."""
    text = _card_separators.sub("", raw.strip()).upper()
    if not card_number_characters_min <= len(text) <= card_number_characters_max:
        raise invalid(
            field,
            f"a card number has {card_number_characters_min} to "
            f"{card_number_characters_max} letters or digits",
            "CARD_NUMBER_INVALID",
        )
    if not _card_allowed.match(text):
        raise invalid(field, "a card number has only letters and digits", "CARD_NUMBER_INVALID")
    return text


def normalize_card_qr(raw: str, field: str = "card_qr") -> str:
    """QR payloads are kept as scanned, only trimmed; control characters are refused."""
    text = raw.strip()
    if not 1 <= len(text) <= card_qr_characters_max:
        raise invalid(
            field,
            f"a card QR payload has 1 to {card_qr_characters_max} characters",
            "CARD_QR_INVALID",
        )
    if not text.isprintable():
        raise invalid(field, "a card QR payload has no control characters", "CARD_QR_INVALID")
    return text


def normalize_steward_code(raw: str, field: str = "steward_code") -> str:
    """Steward codes are exactly `steward_code_digits` digits (spaces ignored)."""
    text = raw.replace(" ", "")
    if len(text) != steward_code_digits or not _ascii_digits.match(text):
        raise invalid(
            field,
            f"a steward code has exactly {steward_code_digits} digits",
            "STEWARD_CODE_INVALID",
        )
    return text


def normalize_stored(kind: IdentifierKind, raw: str, field: str = "value") -> str:
    """Normalise a card number or QR payload that a business stores for a customer."""
    if kind is IdentifierKind.CARD_NUMBER:
        return normalize_card_number(raw, field)
    if kind is IdentifierKind.CARD_QR:
        return normalize_card_qr(raw, field)
    raise invalid("kind", "only card numbers and card QR codes can be stored", "KIND_INVALID")


phone_search_digits_min = 4


def phone_search_prefix(raw: str, prefix: str = "", field: str = "phone_prefix") -> str:
    """The E.164 beginning to search for: "+38050" from "050" with the prefix "+380"."""
    _refuse_long_phone(raw, field)
    text = _phone_separators.sub("", raw.strip())
    if text.startswith("00"):
        text = "+" + text[2:]
    digits = text.lstrip("+")
    if len(digits) < phone_search_digits_min or not _ascii_digits.match(digits):
        raise invalid(
            field, f"give at least {phone_search_digits_min} digits of the phone", "PHONE_INVALID"
        )
    if text.startswith("+"):
        return text
    return _complete_with_prefix(digits, prefix, raw, field)
