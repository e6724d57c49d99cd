"""Customer-facing message texts: languages, points from hundredths, templates."""

from __future__ import annotations

from typing import Any

import pytest

from purse.domain.errors import InvalidArgument
from purse.notify import texts
from purse.notify.texts import bulk_text, check_bulk_template


def test_an_accrual_is_announced_in_english_with_two_decimals() -> None:
    assert (
        texts.transaction_text("en", 1_250, 0, 25_000)
        == "You have been credited 12.50 points, balance 250.00"
    )


def test_an_accrual_is_announced_in_ukrainian_with_a_decimal_comma() -> None:
    assert (
        texts.transaction_text("uk", 1_250, 0, 25_000)
        == "Вам нараховано балів: 12,50. Баланс: 250,00"
    )


def test_a_regional_language_tag_uses_its_primary_language() -> None:
    assert texts.transaction_text("uk-UA", 5, 0, 5) == texts.transaction_text("uk", 5, 0, 5)
    assert texts.transaction_text("RU", 5, 0, 5) == texts.transaction_text("ru", 5, 0, 5)


@pytest.mark.parametrize("language", ["", "xx", "de-AT", "  "])
def test_an_unknown_language_falls_back_to_english(language: str) -> None:
    assert texts.transaction_text(language, 100, 0, 100) == texts.transaction_text(
        "en", 100, 0, 100
    )
    assert texts.pin_text(language) == texts.pin_text("en")


def test_a_redemption_and_an_accrual_together_mention_both() -> None:
    assert texts.transaction_text("en", 100, 305, 9_795) == (
        "You have been credited 1.00 points and 3.05 points have been redeemed, balance 97.95"
    )
    assert texts.transaction_text("en", 0, 305, 9_795) == (
        "3.05 points have been redeemed, balance 97.95"
    )
    assert texts.transaction_text("uk", 0, 0, 7) == "Ваш баланс балів: 0,07"


@pytest.mark.parametrize(
    ("hundredths", "written"),
    [(0, "0.00"), (1, "0.01"), (10, "0.10"), (99, "0.99"), (100, "1.00"), (-150, "-1.50")],
)
def test_points_are_written_from_integer_hundredths(hundredths: int, written: str) -> None:
    assert texts.format_points(hundredths) == written


def test_points_are_written_exactly_however_large() -> None:
    assert texts.format_points(10**20 + 1) == "1000000000000000000.01"


@pytest.mark.parametrize("amount", [12.5, True, "1250"])
def test_points_that_are_not_integers_are_refused(amount: Any) -> None:
    with pytest.raises(TypeError):
        texts.transaction_text("en", amount, 0, 0)


def test_negative_accruals_or_redemptions_are_refused() -> None:
    with pytest.raises(ValueError, match="never negative"):
        texts.transaction_text("en", -1, 0, 0)
    with pytest.raises(ValueError, match="never negative"):
        texts.transaction_text("en", 0, -1, 0)


@pytest.mark.parametrize("language", ["en", "uk", "ru"])
def test_a_pin_text_holds_the_pin_placeholder_once(language: str) -> None:
    template = texts.pin_text(language)
    assert template.count("{pin}") == 1
    assert texts.placeholders(template) == {"pin"}
    filled = texts.render(template, {"pin": "4821"})
    assert "4821" in filled and "{" not in filled


def test_rendering_fills_every_placeholder() -> None:
    assert (
        texts.render("Hello {name}, you have {points} points", {"name": "Olha", "points": "7"})
        == "Hello Olha, you have 7 points"
    )


def test_rendering_names_the_missing_variable() -> None:
    with pytest.raises(ValueError, match="'points'"):
        texts.render("Hello {name}, you have {points} points", {"name": "Olha"})


def test_rendering_does_not_expand_placeholders_inside_values() -> None:
    assert texts.render("Hi {name}", {"name": "{pin}"}) == "Hi {pin}"


def test_doubled_braces_are_literal_and_stray_braces_stay() -> None:
    assert texts.render("{{name}} is {name}", {"name": "x"}) == "{name} is x"
    assert texts.render("a { b } {1} {}", {}) == "a { b } {1} {}"


def test_unused_variables_are_ignored() -> None:
    assert texts.render("plain", {"name": "x"}) == "plain"


def test_the_placeholders_of_a_template_are_listed() -> None:
    assert texts.placeholders("{a} {b} {{c}} {a}") == {"a", "b"}


def test_a_blank_bulk_message_is_the_system_text_of_the_credit_in_the_customers_language() -> None:
    assert bulk_text("", "en", "Olena", 12_000, 5_000) == (
        "You have been credited 50.00 points, balance 120.00"
    )
    assert bulk_text("  ", "uk-UA", "Olena", 12_000, 5_000) == (
        "Вам нараховано балів: 50,00. Баланс: 120,00"
    )
    assert bulk_text("", "ru", "", 0, coupon_code="C-7") == "Вам начислен купон C-7"


def test_a_bulk_template_is_filled_with_the_customers_own_values() -> None:
    template = "{name}, +{points} points ({balance} in all). Coupon: {coupon}. {{not a variable}}"
    assert bulk_text(template, "en", "Olena", 12_000, 5_000, "C-7") == (
        "Olena, +50.00 points (120.00 in all). Coupon: C-7. {not a variable}"
    )


def test_a_bulk_template_naming_an_unknown_variable_is_refused_by_its_path() -> None:
    check_bulk_template("Hello {name}, {balance}", "message.text")
    with pytest.raises(InvalidArgument) as refused:
        check_bulk_template("Hello {first_name}", "message.text")
    assert [violation.field for violation in refused.value.violations] == ["message.text"]
    assert "{first_name}" in refused.value.message
