"""Operations on one customer, the pure part: validation names the wrong field, keys
become check numbers no longer than a check number may be, documents and digests are
faithful, and settlement never issues a coupon past its series' cap."""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from purse.domain.checks import AccessType
from purse.domain.customer_operations import (
    AccountCredit,
    AccountDebit,
    AccountTypeState,
    Circumstances,
    CouponIssue,
    CustomerOperation,
    PointsCredit,
    PointsDebit,
    TerminalState,
    check_number_of,
    effects_of_operation,
    idempotency_key_characters_max,
    operation_amount_max,
    operation_document,
    operation_from_document,
    operation_refusal,
    request_digest,
    settlement_refusal,
    special_points_days_max,
    stored_refusal,
    terminal_refusal,
    validate_operation,
)
from purse.domain.customers import PocketKind
from purse.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from purse.domain.refunds import check_refundable
from purse.domain.transactions import (
    CouponGrant,
    Effects,
    LedgerKind,
    LockedState,
    PocketChange,
    Refusal,
    SeriesCount,
    TransactionStatus,
    settle,
)
from purse.service.terminal.answers import check_number_characters_max

now = datetime(2026, 6, 1, 12, tzinfo=UTC)
amounts = st.integers(1, operation_amount_max)
wrong_amounts = st.one_of(st.integers(max_value=0), st.integers(min_value=operation_amount_max + 1))
ids = st.integers(1, 2**40)
lifetimes = st.integers(1, special_points_days_max * 86_400)
key_characters = string.ascii_letters + string.digits + "._:-"
keys = st.text(key_characters, min_size=1, max_size=idempotency_key_characters_max)
operations: st.SearchStrategy[CustomerOperation] = st.one_of(
    st.builds(
        PointsCredit,
        amounts,
        st.none() | lifetimes.map(lambda seconds: now + timedelta(seconds=seconds)),
    ),
    st.builds(PointsDebit, amounts),
    st.builds(AccountCredit, ids, amounts),
    st.builds(AccountDebit, ids, amounts),
    st.builds(CouponIssue, ids, st.none() | st.from_regex(r"[A-Z0-9-]{1,64}", fullmatch=True)),
)


def refused_fields(operation: CustomerOperation) -> tuple[str, dict[str, str]]:
    with pytest.raises(InvalidArgument) as refused:
        validate_operation(operation, now)
    return refused.value.reason, {v.field: v.description for v in refused.value.violations}


@given(operations)
def test_every_operation_within_its_limits_is_valid(operation: CustomerOperation) -> None:
    validate_operation(operation, now)


@given(wrong_amounts)
def test_an_amount_outside_its_range_is_refused_naming_its_field(amount: int) -> None:
    for operation, field in (
        (PointsCredit(amount), "points_hundredths"),
        (PointsDebit(amount), "points_hundredths"),
        (AccountCredit(3, amount), "amount"),
        (AccountDebit(3, amount), "amount"),
    ):
        reason, fields = refused_fields(operation)
        assert (reason, list(fields)) == ("AMOUNT_OUT_OF_RANGE", [field])


@given(st.integers(-10 * 86_400, 0) | st.integers(special_points_days_max * 86_400 + 1, 2**32))
def test_special_points_expire_after_now_and_within_the_longest_period(seconds: int) -> None:
    reason, fields = refused_fields(PointsCredit(100, now + timedelta(seconds=seconds)))
    assert (reason, list(fields)) == ("EXPIRY_OUT_OF_RANGE", ["expires_at"])


def test_an_expiry_without_a_time_zone_is_refused() -> None:
    _, fields = refused_fields(PointsCredit(100, datetime(2026, 7, 1)))
    assert list(fields) == ["expires_at"]


def test_every_wrong_field_is_named_and_the_first_gives_the_reason() -> None:
    reason, fields = refused_fields(PointsCredit(0, now))
    assert reason == "AMOUNT_OUT_OF_RANGE"
    assert list(fields) == ["points_hundredths", "expires_at"]
    reason, fields = refused_fields(AccountCredit(0, -5))
    assert (reason, list(fields)) == ("INVALID_ARGUMENT", ["account_type_id", "amount"])
    reason, fields = refused_fields(CouponIssue(0, "two words"))
    assert (reason, list(fields)) == ("INVALID_ARGUMENT", ["series_id", "code"])
    reason, fields = refused_fields(CouponIssue(1, "x" * 65))
    assert (reason, list(fields)) == ("COUPON_CODE_INVALID", ["code"])


@given(keys)
def test_a_key_becomes_a_check_number_a_transaction_can_have(key: str) -> None:
    check_number = check_number_of(key)
    assert check_number.endswith(key) and check_number.startswith("~")
    assert len(check_number) <= check_number_characters_max


@pytest.mark.parametrize(
    "key", ["", " ", "a b", "ключ", "x" * (idempotency_key_characters_max + 1), "a/b", "a\n"]
)
def test_a_malformed_key_is_refused_naming_it(key: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_number_of(key)
    assert refused.value.reason == "IDEMPOTENCY_KEY_INVALID"
    assert [v.field for v in refused.value.violations] == ["idempotency_key"]


@given(operations)
def test_an_operation_is_stored_and_read_back_as_it_was(operation: CustomerOperation) -> None:
    stored = json.loads(json.dumps(operation_document(operation)))
    assert operation_from_document(stored) == operation


@given(lifetimes, st.integers(-12 * 60, 14 * 60))
def test_a_moment_digests_the_same_in_any_time_zone(seconds: int, offset_minutes: int) -> None:
    moment = now + timedelta(seconds=seconds)
    elsewhere = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    assert request_digest(1, PointsCredit(5, moment)) == request_digest(
        1, PointsCredit(5, elsewhere)
    )


@given(ids, operations, ids, operations)
def test_digests_are_equal_exactly_for_the_same_request(
    customer: int, operation: CustomerOperation, other_customer: int, other: CustomerOperation
) -> None:
    same = (customer, operation) == (other_customer, other)
    assert (request_digest(customer, operation) == request_digest(other_customer, other)) is same


def test_special_points_make_a_lot_and_a_debit_spends_lots_first() -> None:
    credit = effects_of_operation(PointsCredit(500, now), 7)
    assert credit.pockets == (PocketChange((7, 0), LedgerKind.ADJUST, 500, expires_at=now),)
    debit = effects_of_operation(PointsDebit(300), 7)
    assert debit.pockets == (PocketChange((7, 0), LedgerKind.ADJUST, -300),)
    assert debit.points_spent == 300
    account = effects_of_operation(AccountDebit(4, 20), 7)
    assert account.pockets == (PocketChange((7, 4), LedgerKind.ADJUST, -20),)
    assert account.points_spent == 0
    coupon = effects_of_operation(CouponIssue(9, "C-1"), 7)
    assert coupon == Effects(coupons_issued=(CouponGrant(9, "C-1", 7),))


@given(
    st.integers(1, 5) | st.none(),
    st.integers(0, 5),
    st.lists(st.sampled_from(["A", "B", "C", "D", "E", "F", "G"]), max_size=12),
)
def test_settlement_never_issues_past_the_cap_nor_a_code_twice(
    cap: int | None, issued: int, codes: list[str]
) -> None:
    issued = min(issued, cap) if cap is not None else issued
    state = LockedState(series={1: SeriesCount(issued, cap, False)}, coupon_codes_taken={"G"})
    granted = []
    for code in codes:
        refusal = settle(state, Effects(coupons_issued=(CouponGrant(1, code, 5),)))
        if refusal is None:
            granted.append(code)
            continue
        if refusal is Refusal.COUPON_SERIES_EXHAUSTED:
            assert cap is not None and state.series[1].coupons_issued == cap
        else:
            assert refusal is Refusal.CODE_TAKEN and (code in granted or code == "G")
    assert state.series[1].coupons_issued == issued + len(granted)
    assert cap is None or state.series[1].coupons_issued <= cap
    assert len(set(granted)) == len(granted) and "G" not in granted


def test_settlement_refuses_a_coupon_of_an_archived_or_unknown_series_and_changes_nothing() -> None:
    state = LockedState(series={1: SeriesCount(0, None, True)})
    assert settle(state, Effects(coupons_issued=(CouponGrant(1, "A", 5),))) is Refusal.ARCHIVED
    assert settle(state, Effects(coupons_issued=(CouponGrant(2, "A", 5),))) is (
        Refusal.COUPON_SERIES_NOT_FOUND
    )
    two_in_one = Effects(coupons_issued=(CouponGrant(3, "A", 5), CouponGrant(3, "B", 5)))
    state.series[3] = SeriesCount(0, 1, False)
    assert settle(state, two_in_one) is Refusal.COUPON_SERIES_EXHAUSTED
    assert state.series[3] == SeriesCount(0, 1, False) and not state.coupon_codes_taken


terminal = TerminalState(point_of_sale_id=1, enabled=True, archived=False)
money = AccountTypeState(PocketKind.MONEY, archived=False)


@pytest.mark.parametrize(
    ("operation", "circumstances", "refusal"),
    [
        (PointsCredit(1), Circumstances(terminal, None), (NotFound, "CUSTOMER_NOT_FOUND")),
        (PointsCredit(1), Circumstances(terminal, AccessType.FULL), None),
        (
            PointsCredit(1),
            Circumstances(terminal, AccessType.BLACKLISTED),
            (FailedPrecondition, "CUSTOMER_BLACKLISTED"),
        ),
        (PointsDebit(1), Circumstances(terminal, AccessType.BLACKLISTED), None),
        (
            CouponIssue(1),
            Circumstances(terminal, AccessType.BLACKLISTED, series_found=True),
            (FailedPrecondition, "CUSTOMER_BLACKLISTED"),
        ),
        (
            CouponIssue(1),
            Circumstances(terminal, AccessType.FULL),
            (NotFound, "COUPON_SERIES_NOT_FOUND"),
        ),
        (
            AccountCredit(2, 1),
            Circumstances(terminal, AccessType.LIMITED),
            (NotFound, "ACCOUNT_TYPE_NOT_FOUND"),
        ),
        (AccountCredit(2, 1), Circumstances(terminal, AccessType.NONE, money), None),
        (
            AccountCredit(2, 1),
            Circumstances(terminal, AccessType.FULL, AccountTypeState(PocketKind.MONEY, True)),
            (FailedPrecondition, "ARCHIVED"),
        ),
        (
            AccountDebit(2, 1),
            Circumstances(terminal, AccessType.FULL, AccountTypeState(PocketKind.MONEY, True)),
            None,
        ),
        (
            AccountDebit(2, 1),
            Circumstances(
                terminal, AccessType.FULL, AccountTypeState(PocketKind.ACHIEVEMENTS, False)
            ),
            (FailedPrecondition, "ACCOUNT_KIND_NOT_ADJUSTABLE"),
        ),
    ],
)
def test_what_an_operation_may_be_made_on(
    operation: CustomerOperation,
    circumstances: Circumstances,
    refusal: tuple[type[Exception], str] | None,
) -> None:
    found = operation_refusal(operation, circumstances)
    if refusal is None:
        assert found is None
    else:
        assert isinstance(found, refusal[0]) and found.reason == refusal[1]


def test_the_terminal_must_exist_be_enabled_and_not_archived() -> None:
    assert terminal_refusal(terminal) is None
    missing = terminal_refusal(None)
    assert isinstance(missing, NotFound) and missing.reason == "TERMINAL_NOT_FOUND"
    disabled = terminal_refusal(TerminalState(1, enabled=False, archived=False))
    assert isinstance(disabled, FailedPrecondition)
    assert disabled.reason == "OPERATION_TERMINAL_DISABLED"
    archived = terminal_refusal(TerminalState(1, enabled=False, archived=True))
    assert isinstance(archived, FailedPrecondition) and archived.reason == "ARCHIVED"


@pytest.mark.parametrize("refusal", list(Refusal))
def test_every_settlement_refusal_answers_with_its_own_reason(refusal: Refusal) -> None:
    error = stored_refusal({"reason": refusal.value})
    assert error.reason == refusal.value
    assert error == settlement_refusal(refusal.value)
    expected = {"CODE_TAKEN": AlreadyExists, "COUPON_SERIES_NOT_FOUND": NotFound}
    assert type(error) is expected.get(refusal.value, FailedPrecondition)


def test_a_refusal_stored_whole_answers_as_it_was_given() -> None:
    error = stored_refusal(
        {"reason": "CUSTOMER_BLACKLISTED", "message": "no", "violations": [["a", "b"]]}
    )
    assert isinstance(error, FailedPrecondition)
    assert (error.reason, error.message, error.violations[0].field) == (
        "CUSTOMER_BLACKLISTED",
        "no",
        "a",
    )


def test_an_administrators_operation_is_not_refunded_but_its_status_is_said_first() -> None:
    with pytest.raises(FailedPrecondition) as refused:
        check_refundable(TransactionStatus.COMPLETED, is_sale=False)
    assert refused.value.reason == "TRANSACTION_NOT_A_SALE"
    with pytest.raises(FailedPrecondition) as refused:
        check_refundable(TransactionStatus.REJECTED, is_sale=False)
    assert refused.value.reason == "TRANSACTION_NOT_COMPLETED"
