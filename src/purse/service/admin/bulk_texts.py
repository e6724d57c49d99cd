"""The text of a bulk action's message to one member, as the dry run counts it and the
runner sends it.

`{balance}` is the member's points balance after the action (a points credit adds to it;
the runner takes it from the balance written, the dry run from the balance read plus the
credit); `{points}` the points credited; `{coupon}` the coupon's code (the dry run, before
any code exists, counts a generated code's length); `{name}` the given name. A blank
template is the system text of what was done, in the member's language. A news
notification is the item's title and text in the member's language, cut to what the
outbox holds.
"""

from __future__ import annotations

from typing import Final

from purse.domain.bulk_actions import BulkAction, NewsNotice
from purse.domain.customer_operations import (
    CouponIssue,
    PointsCredit,
    generated_coupon_code_characters,
)
from purse.domain.news import NewsDraft
from purse.notify.texts import bulk_text
from purse.store.postgres.bulk_actions import MemberFacts

# What the dry run counts for a coupon's code: as long as a generated one, in GSM-7.
_code_stand_in = "X" * generated_coupon_code_characters
# The outbox's longest body.
message_characters_max: Final = 1_000


def member_text(
    action: BulkAction,
    member: MemberFacts,
    coupon_code: str | None,
    balance_after: int | None,
    news: NewsDraft | None = None,
) -> str:
    """The member's message; `balance_after` None: the dry run's prediction; a news
    notification without its item (the dry run's: a push has no segments to count): ""."""
    change = action.change
    if isinstance(change, NewsNotice):
        if news is None:
            return ""
        text = f"{news.title_in(member.language)}\n{news.text_in(member.language)}"
        return text[:message_characters_max]
    assert action.message is not None
    credited = change.points_hundredths if isinstance(change, PointsCredit) else 0
    if balance_after is None:
        balance_after = member.points_balance + credited
    code = ""
    if isinstance(change, CouponIssue):
        code = coupon_code or _code_stand_in
    return bulk_text(
        action.message.template, member.language, member.given_name, balance_after, credited, code
    )
