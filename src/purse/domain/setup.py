"""Validating what administrators send — pure.

A `Fields` collects every wrong field of a request (its path named as the proto names
it: `goods[3].price_minor_units`) and raises them together, so one answer lists them
all and nothing partial is ever stored. The limits are named here once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from purse.domain.errors import FieldViolation, InvalidArgument

name_characters_max: Final = 200
code_characters_max: Final = 64
text_characters_max: Final = 2_000
languages_max: Final = 20
address_characters_max: Final = 500
_language = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")
_code = re.compile(r"[A-Za-z0-9._:/-]{1,64}")
_login = re.compile(r"[A-Za-z0-9._@-]{3,64}")
password_characters_min: Final = 10
password_characters_max: Final = 256


class Fields:
    """Collects violations of one request; `raise_if_any` refuses them all at once."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def wrong(self, path: str, description: str) -> None:
        self.violations.append(FieldViolation(path, description))

    def name(self, path: str, value: str, required: bool = True) -> None:
        if required and not value.strip():
            self.wrong(path, "required")
        elif len(value) > name_characters_max:
            self.wrong(path, f"at most {name_characters_max} characters")

    def text(self, path: str, value: str, characters_max: int = text_characters_max) -> None:
        if len(value) > characters_max:
            self.wrong(path, f"at most {characters_max} characters")

    def code(self, path: str, value: str) -> None:
        if not _code.fullmatch(value):
            self.wrong(path, "1 to 64 of A-Z a-z 0-9 . _ : / -")

    def login(self, path: str, value: str) -> None:
        if not _login.fullmatch(value):
            self.wrong(path, "3 to 64 of A-Z a-z 0-9 . _ @ -")

    def password(self, path: str, value: str) -> None:
        if not password_characters_min <= len(value) <= password_characters_max:
            self.wrong(path, f"{password_characters_min} to {password_characters_max} characters")

    def language(self, path: str, value: str) -> None:
        if not _language.fullmatch(value):
            self.wrong(path, "a language tag such as 'en' or 'pt-BR'")

    def time_zone(self, path: str, value: str) -> None:
        if not value or len(value) > 64 or ".." in value or value.startswith("/"):
            self.wrong(path, "an IANA time zone such as 'Europe/Kyiv'")
            return
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            self.wrong(path, "an IANA time zone such as 'Europe/Kyiv'")

    def localized(
        self, path: str, texts: Mapping[str, str], characters_max: int = text_characters_max
    ) -> None:
        """Texts by language: valid tags, bounded count and length."""
        if len(texts) > languages_max:
            self.wrong(path, f"at most {languages_max} languages")
            return
        for language, text in sorted(texts.items()):
            if not _language.fullmatch(language):
                self.wrong(f"{path}[{language!r}]"[:120], "a language tag such as 'en'")
            elif len(text) > characters_max:
                self.wrong(f"{path}[{language!r}]", f"at most {characters_max} characters")

    def positive(self, path: str, value: int, required: bool = True) -> None:
        if value < 0 or (required and value == 0):
            self.wrong(path, "must be positive" if required else "must not be negative")

    def expected_version(self, value: int, path: str = "expected_version") -> None:
        if value <= 0:
            self.wrong(path, "the version last read is required (AIP-154): read, then update")

    def raise_if_any(self) -> None:
        if self.violations:
            first = self.violations[0]
            more = f" (and {len(self.violations) - 1} more)" if len(self.violations) > 1 else ""
            raise InvalidArgument(
                message=f"{first.field}: {first.description}{more}",
                violations=tuple(self.violations),
            )
