"""Customer-facing message texts, pure: no I/O, no clock, no randomness.

- `transaction_text` announces what a transaction did to the points pocket. Points arrive
  as integer hundredths and are written with exactly two decimals, in the language's
  decimal separator; floats are never involved (a float or bool raises TypeError).
- `pin_text` is a template holding the literal placeholder `{pin}`: the PIN itself is
  filled in by the dispatcher at the last moment, so it is never stored readable.
- `bulk_text` is what a bulk action sends one customer: the business's own template, with
  the variables `BULK_VARIABLES` (`{name}`, `{balance}`, `{points}`, `{coupon}`), or, left
  blank, the system text of what was done ("You have been credited 50.00 points, balance
  120.00", "You have been credited coupon C"), in the customer's language;
  `check_bulk_template` refuses a template naming any other variable, before anything is
  sent.
- `render` fills `{name}` placeholders from a mapping in one pass (values are inserted as
  they are, never expanded again); `{{` and `}}` stand for literal braces; a placeholder
  without a value raises ValueError naming it. Braces that do not form a placeholder
  are left as they are.

Languages are picked like titles elsewhere: the exact tag ("uk"), then its primary
subtag ("uk-UA" -> "uk"), case-insensitively, then English.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from purse.domain.errors import invalid

default_language = "en"
_hundredths_per_point = 100

_placeholder = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class _Wording:
    """One language's phrases; `{accrued}`, `{redeemed}`, `{balance}` are filled here."""

    decimal_separator: str
    accrued: str
    redeemed: str
    accrued_and_redeemed: str
    balance_only: str
    pin: str
    coupon: str


_wordings: dict[str, _Wording] = {
    "en": _Wording(
        decimal_separator=".",
        accrued="You have been credited {accrued} points, balance {balance}",
        redeemed="{redeemed} points have been redeemed, balance {balance}",
        accrued_and_redeemed=(
            "You have been credited {accrued} points and {redeemed} points have been"
            " redeemed, balance {balance}"
        ),
        balance_only="Your points balance is {balance}",
        pin="Your Purse code: {pin}. Do not share it with anyone.",
        coupon="You have been credited coupon {coupon}",
    ),
    # Ukrainian and Russian nouns agree with the number (and take yet another form after
    # a fraction), so the amounts follow a colon instead of preceding the noun.
    "uk": _Wording(
        decimal_separator=",",
        accrued="Вам нараховано балів: {accrued}. Баланс: {balance}",
        redeemed="Списано балів: {redeemed}. Баланс: {balance}",
        accrued_and_redeemed=(
            "Вам нараховано балів: {accrued}, списано балів: {redeemed}. Баланс: {balance}"
        ),
        balance_only="Ваш баланс балів: {balance}",
        pin="Ваш код Purse: {pin}. Нікому його не повідомляйте.",
        coupon="Вам нараховано купон {coupon}",
    ),
    "ru": _Wording(
        decimal_separator=",",
        accrued="Вам начислено баллов: {accrued}. Баланс: {balance}",
        redeemed="Списано баллов: {redeemed}. Баланс: {balance}",
        accrued_and_redeemed=(
            "Вам начислено баллов: {accrued}, списано баллов: {redeemed}. Баланс: {balance}"
        ),
        balance_only="Ваш баланс баллов: {balance}",
        pin="Ваш код Purse: {pin}. Никому его не сообщайте.",
        coupon="Вам начислен купон {coupon}",
    ),
}


def _wording(language: str) -> _Wording:
    tag = language.strip().lower()
    for candidate in (tag, tag.split("-", maxsplit=1)[0]):
        if candidate in _wordings:
            return _wordings[candidate]
    return _wordings[default_language]


def format_points(hundredths: int, decimal_separator: str = ".") -> str:
    """`1250` -> `12.50`; integers only, so no binary fraction ever shows in a text."""
    if isinstance(hundredths, bool) or not isinstance(hundredths, int):
        raise TypeError(f"points must be integer hundredths, not {type(hundredths).__name__}")
    sign = "-" if hundredths < 0 else ""
    whole, fraction = divmod(abs(hundredths), _hundredths_per_point)
    return f"{sign}{whole}{decimal_separator}{fraction:02d}"


def transaction_text(
    language: str,
    points_accrued_hundredths: int,
    points_redeemed_hundredths: int,
    balance_hundredths: int,
) -> str:
    """What a transaction did to the customer's points, and the balance after it."""
    wording = _wording(language)
    if points_accrued_hundredths < 0 or points_redeemed_hundredths < 0:
        raise ValueError("accrued and redeemed points are amounts, never negative")
    accrued = format_points(points_accrued_hundredths, wording.decimal_separator)
    redeemed = format_points(points_redeemed_hundredths, wording.decimal_separator)
    balance = format_points(balance_hundredths, wording.decimal_separator)
    if points_accrued_hundredths and points_redeemed_hundredths:
        template = wording.accrued_and_redeemed
    elif points_accrued_hundredths:
        template = wording.accrued
    elif points_redeemed_hundredths:
        template = wording.redeemed
    else:
        template = wording.balance_only
    return render(template, {"accrued": accrued, "redeemed": redeemed, "balance": balance})


def pin_text(language: str) -> str:
    """A template with the literal placeholder `{pin}`, filled only when sending."""
    return _wording(language).pin


def render(template: str, variables: Mapping[str, str]) -> str:
    """`template` with every `{name}` replaced by `variables[name]`, in one pass."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:  # an escaped brace: "{{" or "}}"
            return match.group(0)[0]
        if name not in variables:
            raise ValueError(f"the template needs the variable {name!r}, which has no value")
        return variables[name]

    return _placeholder.sub(substitute, template)


def placeholders(template: str) -> frozenset[str]:
    """The variable names a template uses (to check a bulk message before sending it)."""
    return frozenset(match.group(1) for match in _placeholder.finditer(template) if match.group(1))


# The variables a bulk message's template may use: the customer's given name, the points
# balance after the action, the points it credited, the coupon it issued.
BULK_VARIABLES = frozenset({"name", "balance", "points", "coupon"})


def check_bulk_template(template: str, path: str) -> None:
    """InvalidArgument naming `path` when the template uses a variable it cannot have."""
    unknown = sorted(placeholders(template) - BULK_VARIABLES)
    if unknown:
        known = ", ".join(f"{{{name}}}" for name in sorted(BULK_VARIABLES))
        raise invalid(path, f"unknown variable {{{unknown[0]}}}; the known ones are {known}")


def bulk_text(
    template: str,
    language: str,
    given_name: str,
    balance_hundredths: int,
    points_credited_hundredths: int = 0,
    coupon_code: str = "",
) -> str:
    """A bulk action's message to one customer: `template` filled in, or, when it is
    blank, the system text of what the action did, in the customer's language."""
    wording = _wording(language)
    balance = format_points(balance_hundredths, wording.decimal_separator)
    points = format_points(points_credited_hundredths, wording.decimal_separator)
    if template.strip():
        variables = {"name": given_name, "balance": balance, "points": points}
        return render(template, {**variables, "coupon": coupon_code})
    if coupon_code:
        return render(wording.coupon, {"coupon": coupon_code})
    return render(wording.accrued, {"accrued": points, "balance": balance})
