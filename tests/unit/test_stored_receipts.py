"""A sale's receipt survives being stored: what the engine made comes back exactly, and
the answer stored with it is the one a terminal was given."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from support import legacy_document
from test_engine_properties import calculate_for, scenarios

from purse.api.grpc.terminal.receipts import receipt_to_proto
from purse.api.grpc.terminal.stored_receipts import answered_receipt, decode, encode
from purse.domain.checks import CheckLine, Customer, Redemption
from purse.domain.program import CompiledProgram
from purse.domain.transactions import SaleReceipt
from purse.service.terminal.calculation import Calculation

Scenario = tuple[tuple[CheckLine, ...], CompiledProgram, Customer, Redemption]
codes = st.text(min_size=1, max_size=12)


@st.composite
def sale_receipts(draw: st.DrawFn) -> SaleReceipt:
    """Receipts the engine makes (coupons, certificates, accounts, lots, achievements,
    confirmations, explanations), with the codes the check named them by."""
    scenario: Scenario = draw(scenarios())
    lines, _, _, redemption = scenario
    return SaleReceipt(
        calculate_for(*scenario),
        quantities={line.position: line.quantity for line in lines},
        coupon_codes={coupon_id: draw(codes) for coupon_id in redemption.coupon_ids},
        certificate_codes={
            spending.certificate_id: draw(codes) for spending in redemption.certificates
        },
    )


@settings(max_examples=150, deadline=None)
@given(sale_receipts())
def test_a_sale_receipt_comes_back_from_its_stored_bytes_unchanged(sale: SaleReceipt) -> None:
    assert decode(encode(sale)) == sale


@settings(max_examples=60, deadline=None)
@given(sale_receipts())
def test_the_stored_bytes_hold_the_receipt_exactly_as_the_terminal_is_answered(
    sale: SaleReceipt,
) -> None:
    calculation = Calculation(sale.receipt, None, sale.coupon_codes, sale.certificate_codes)
    assert answered_receipt(encode(sale)) == receipt_to_proto(calculation).SerializeToString()


@settings(max_examples=60, deadline=None)
@given(sale_receipts())
def test_a_receipt_stored_as_a_document_before_0013_reads_as_the_same_sale(
    sale: SaleReceipt,
) -> None:
    document = orjson.loads(orjson.dumps(legacy_document(sale)))  # as jsonb gives it back
    assert decode(document) == sale
    assert answered_receipt(document) == answered_receipt(encode(sale))
