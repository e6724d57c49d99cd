"""Calculating a check: a preview of the receipt, with no side effects.

Gathers the inputs — the customer's membership (identification), their spendable lots,
accounts, the coupons and certificates the cashier named, the catalogue's goods
categories, the program compiled at its current version — in two round trips, and
calculates on them (`purse.domain.calculation`: the engine's plain values, the engine,
the answer).

Coupons in a customer's wallet are theirs alone; a coupon with no owner is a bearer
coupon anyone may present. Certificates are bearer instruments of the business.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from purse.domain.calculation import (
    Calculation,
    CalculationInputs,
    CalculationRequest,
    InputKeys,
    calculated,
)
from purse.domain.customers import Membership
from purse.domain.errors import DomainError, UnexpectedFailure
from purse.domain.identifiers import Identifier
from purse.domain.program import CompiledProgram
from purse.domain.terminals import TerminalContext
from purse.service.ports import CalculationInputReads, ProgramRules
from purse.service.terminal.identification import IdentificationService

# The use case's request and answer are the domain's; callers name them from here too.
__all__ = ["Calculation", "CalculationRequest", "CheckCalculation"]

_logger = logging.getLogger(__name__)


class CheckCalculation:
    """CalculateCheck's use case."""

    def __init__(
        self,
        identification: IdentificationService,
        inputs: CalculationInputReads,
        programs: ProgramRules,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._identification = identification
        self._inputs = inputs
        self._programs = programs
        self._clock = clock

    async def calculate(
        self, terminal: TerminalContext, request: CalculationRequest
    ) -> Calculation:
        membership = None
        if request.identifier is not None:
            membership = await self._identification.identify(terminal, request.identifier)
        inputs = await self._inputs_of(terminal, [request], [membership])
        program = await self._programs.compiled(
            terminal.business_id, terminal.program_id, terminal.currency, inputs.rules_version
        )
        return self.prepared(terminal, request, membership, inputs, program)

    async def identify_many(
        self, terminal: TerminalContext, identifiers: Sequence[Identifier | None]
    ) -> list[Membership | DomainError | None]:
        """The members of many checks, read from PostgreSQL (never the balance cache)."""
        return await self._identification.identify_many(terminal, identifiers)

    async def calculate_many(
        self, terminal: TerminalContext, requests: Sequence[CalculationRequest]
    ) -> list[Calculation | DomainError]:
        """Many checks with their reads done together: one query for the members known by
        phone, one for every other input; each check fails or succeeds on its own."""
        memberships = await self._identification.identify_many(
            terminal, [request.identifier for request in requests]
        )
        return await self.calculate_for(terminal, requests, memberships)

    async def calculate_for(
        self,
        terminal: TerminalContext,
        requests: Sequence[CalculationRequest],
        memberships: Sequence[Membership | DomainError | None],
    ) -> list[Calculation | DomainError]:
        """Checks of customers identified already, with one read of the other inputs. A
        check whose calculation fails unexpectedly fails alone: it is logged, and its
        result is `UnexpectedFailure`."""
        known = [None if isinstance(m, DomainError) else m for m in memberships]
        inputs = await self._inputs_of(terminal, requests, known)
        program = await self._programs.compiled(
            terminal.business_id, terminal.program_id, terminal.currency, inputs.rules_version
        )
        results: list[Calculation | DomainError] = []
        for request, membership in zip(requests, memberships, strict=True):
            if isinstance(membership, DomainError):
                results.append(membership)
                continue
            try:
                results.append(self.prepared(terminal, request, membership, inputs, program))
            except DomainError as refusal:
                results.append(refusal)
            except Exception:
                _logger.exception("calculating one check of a group failed")
                results.append(UnexpectedFailure("this check could not be calculated"))
        return results

    async def _inputs_of(
        self,
        terminal: TerminalContext,
        requests: Sequence[CalculationRequest],
        memberships: Sequence[Membership | None],
    ) -> CalculationInputs:
        keys = InputKeys(requests, memberships)
        return await self._inputs.inputs(
            terminal.business_id,
            terminal.program_id,
            keys.customer_ids,
            keys.coupon_codes,
            keys.certificate_codes,
            keys.uncategorised_product_codes,
            keys.goods_category_codes,
        )

    def prepared(
        self,
        terminal: TerminalContext,
        request: CalculationRequest,
        membership: Membership | None,
        inputs: CalculationInputs,
        program: CompiledProgram,
    ) -> Calculation:
        """The receipt from inputs already read (synchronous: the pure core)."""
        return calculated(terminal, request, membership, inputs, program, self._clock())
