"""TerminalService's own messages about customers and terminals: protobuf <- domain."""

from __future__ import annotations

from purse.api.grpc.common.mapping import IDENTIFIER_KINDS, membership_to_proto
from purse.domain.customers import CustomerMatch, StoredIdentifier
from purse.domain.terminals import TerminalContext, TerminalKind
from purse.v1 import terminal_service_pb2

TERMINAL_KINDS = {
    TerminalKind.CASH_DESK: terminal_service_pb2.TERMINAL_KIND_CASH_DESK,
    TerminalKind.POS_APP: terminal_service_pb2.TERMINAL_KIND_POS_APP,
    TerminalKind.EXTERNAL_POS: terminal_service_pb2.TERMINAL_KIND_EXTERNAL_POS,
    TerminalKind.KIOSK: terminal_service_pb2.TERMINAL_KIND_KIOSK,
    TerminalKind.STEWARD: terminal_service_pb2.TERMINAL_KIND_STEWARD,
    TerminalKind.ONLINE: terminal_service_pb2.TERMINAL_KIND_ONLINE,
}


def stored_identifier_to_proto(
    identifier: StoredIdentifier,
) -> terminal_service_pb2.StoredIdentifier:
    return terminal_service_pb2.StoredIdentifier(
        kind=IDENTIFIER_KINDS[identifier.kind], value=identifier.value
    )


def match_to_proto(match: CustomerMatch) -> terminal_service_pb2.CustomerMatch:
    return terminal_service_pb2.CustomerMatch(
        membership=membership_to_proto(match.membership),
        identifiers=[stored_identifier_to_proto(item) for item in match.identifiers],
    )


def terminal_to_proto(terminal: TerminalContext) -> terminal_service_pb2.TerminalSummary:
    return terminal_service_pb2.TerminalSummary(
        business_id=terminal.business_id,
        business_name=terminal.business_name,
        point_of_sale_id=terminal.point_of_sale_id,
        point_of_sale_name=terminal.point_of_sale_name,
        terminal_id=terminal.terminal_id,
        terminal_name=terminal.terminal_name,
        kind=TERMINAL_KINDS[terminal.kind],
    )
