"""The limits of what a terminal registers about a customer: names and language."""

from __future__ import annotations

import pytest

from purse.domain.customers import (
    Questionnaire,
    family_name_characters_max,
    given_name_characters_max,
    language_characters_max,
    validate_questionnaire,
)
from purse.domain.errors import InvalidArgument


@pytest.mark.parametrize("language", ["", "uk", "en-GB", "zh-Hant-TW", "sr-Latn-RS", "de-1996"])
def test_names_at_their_limit_and_language_tags_are_accepted(language: str) -> None:
    validate_questionnaire(
        Questionnaire(
            given_name="Ї" * given_name_characters_max,
            family_name="x" * family_name_characters_max,
            language=language,
        )
    )


@pytest.mark.parametrize(
    "language", ["u", "uk_UA", "uk ", "en-", "-en", "en--GB", "languages-x", "12", "en-GB!"]
)
def test_a_language_that_is_not_a_tag_is_refused(language: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        validate_questionnaire(Questionnaire(language=language))
    assert [violation.field for violation in refused.value.violations] == ["language"]
    assert refused.value.reason == "QUESTIONNAIRE_INVALID"


def test_every_field_over_its_limit_is_named() -> None:
    with pytest.raises(InvalidArgument) as refused:
        validate_questionnaire(
            Questionnaire(
                given_name="x" * (given_name_characters_max + 1),
                family_name="x" * (family_name_characters_max + 1),
                language="en-" + "a" * language_characters_max,
            )
        )
    assert [violation.field for violation in refused.value.violations] == [
        "given_name",
        "family_name",
        "language",
    ]
