"""Bulk actions, pure: what a malformed action is refused with, the stored form, and the
dry run's figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from purse.domain.bulk_actions import (
    AccessTypeChange,
    BulkAction,
    BulkMessage,
    CategoryChange,
    MessageOnly,
    NewsNotice,
    Recipient,
    action_document,
    action_from_document,
    estimate,
    member_check_number,
    validate_action,
)
from purse.domain.checks import AccessType
from purse.domain.customer_operations import AccountCredit, CouponIssue, PointsCredit
from purse.domain.errors import InvalidArgument
from purse.domain.terminals import NoticeChannel

now = datetime(2026, 12, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("action", "path"),
    [
        (BulkAction(PointsCredit(0)), "action.credit_points.points_hundredths"),
        (BulkAction(PointsCredit(100, valid_days=5000)), "action.credit_points.valid_days"),
        (
            BulkAction(PointsCredit(100, now - timedelta(days=1))),
            "action.credit_points.expires_at",
        ),
        (BulkAction(AccountCredit(0, 100)), "action.credit_account.account_type_id"),
        (BulkAction(CouponIssue(5, "CODE")), "action.issue_coupons.code"),
        (BulkAction(CategoryChange(0)), "action.change_category.category_id"),
        (BulkAction(NewsNotice(-1)), "action.send_news.news_item_id"),
        (BulkAction(MessageOnly()), "action.message"),
        (
            BulkAction(MessageOnly(), BulkMessage(NoticeChannel.SMS, "  ")),
            "action.message.template",
        ),
        (
            BulkAction(PointsCredit(100), BulkMessage(NoticeChannel.NONE)),
            "action.message.channel",
        ),
        (
            BulkAction(CategoryChange(3), BulkMessage(NoticeChannel.SMS, "hi")),
            "action.message",
        ),
    ],
)
def test_a_malformed_action_is_refused_naming_its_path(action: BulkAction, path: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        validate_action(action, now)
    assert refused.value.violations[0].field == path


_changes = st.one_of(
    st.builds(PointsCredit, st.integers(1, 10**9), st.none(), st.integers(0, 1830)),
    st.builds(AccountCredit, st.integers(1, 99), st.integers(1, 10**9)),
    st.builds(CouponIssue, st.integers(1, 99)),
    st.builds(CategoryChange, st.integers(1, 99)),
    st.builds(AccessTypeChange, st.sampled_from(AccessType)),
    st.just(MessageOnly()),
    st.builds(NewsNotice, st.integers(1, 99)),
)
_messages = st.none() | st.builds(
    BulkMessage,
    st.sampled_from([NoticeChannel.SMS, NoticeChannel.PUSH, NoticeChannel.SMART]),
    st.text(max_size=40),
)


@given(_changes, _messages)
def test_an_action_reads_back_from_its_stored_form(change: object, message: object) -> None:
    action = BulkAction(change, message)  # type: ignore[arg-type]
    assert action_from_document(action_document(action)) == action


_recipients = st.lists(
    st.builds(
        Recipient,
        st.integers(1, 10**6),
        st.sampled_from(AccessType),
        st.booleans(),
        st.booleans(),
        st.text(min_size=1, max_size=200),
    ),
    max_size=50,
)


@given(
    st.sampled_from([NoticeChannel.SMS, NoticeChannel.PUSH, NoticeChannel.SMART]),
    _recipients,
    st.integers(0, 100),
)
def test_every_selected_customer_is_counted_once_in_the_dry_run(
    channel: NoticeChannel, recipients: list[Recipient], price: int
) -> None:
    action = BulkAction(PointsCredit(50_00, valid_days=14), BulkMessage(channel))
    figures = estimate(action, recipients, price)
    blacklisted = sum(1 for each in recipients if each.access_type is AccessType.BLACKLISTED)
    assert figures.customers == len(recipients)
    assert (figures.changed, figures.skipped) == (len(recipients) - blacklisted, blacklisted)
    assert figures.amount_total == 50_00 * figures.changed
    assert figures.messages_sms + figures.messages_push + figures.rejected == figures.changed
    assert figures.sms_segments >= figures.messages_sms
    assert figures.sms_cost_minor_units == price * figures.sms_segments
    if channel is NoticeChannel.SMS:
        assert figures.messages_push == 0


def test_customers_who_have_not_confirmed_participation_get_no_message_at_no_cost() -> None:
    recipients = [
        Recipient(1, AccessType.FULL, True, False, "a" * 161),  # two GSM-7 segments
        Recipient(2, AccessType.FULL, False, False, "a"),
        Recipient(3, AccessType.FULL, True, True, "a"),  # has a device: push
    ]
    figures = estimate(
        BulkAction(MessageOnly(), BulkMessage(NoticeChannel.SMART, "hi")), recipients, 5
    )
    assert (figures.messages_sms, figures.messages_push, figures.rejected) == (1, 1, 1)
    assert (figures.sms_segments, figures.sms_cost_minor_units) == (2, 10)


def test_a_member_s_check_number_fits_the_transactions_table() -> None:
    assert len(member_check_number(2**63 - 1, 2**63 - 1)) <= 64
