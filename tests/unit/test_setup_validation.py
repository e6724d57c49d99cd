"""What administrators send for programs, points of sale and terminals, validated without
I/O: every wrong field named by its path in the request, all at once; and the rules'
field paths kept apart from the Program resource's."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from purse.api.grpc.common.errors import proto_field_path
from purse.domain.customers import AccessType
from purse.domain.errors import InvalidArgument
from purse.domain.setup import address_characters_max
from purse.domain.terminals import NoticeChannel, TerminalKind
from purse.service.admin import loyalty_programs, points_of_sale, terminals
from purse.service.admin.loyalty_programs import ProgramDraft
from purse.service.admin.points_of_sale import PointOfSaleDraft
from purse.service.admin.terminals import TerminalDraft

good_program = ProgramDraft("Club", True, AccessType.LIMITED, NoticeChannel.NONE)
good_point_of_sale = PointOfSaleDraft(
    1, "Shop", "Europe/Kyiv", {"en": "Shop", "pt-BR": "Loja"}, {}, {"en": "1 Main St"}, True
)
good_terminal = TerminalDraft(1, "Till", TerminalKind.EXTERNAL_POS, True)


def violated(check: Callable[[], None]) -> list[str]:
    with pytest.raises(InvalidArgument) as raised:
        check()
    return [violation.field for violation in raised.value.violations]


def test_good_drafts_pass() -> None:
    loyalty_programs.validate(good_program)
    points_of_sale.validate(good_point_of_sale)
    terminals.validate(good_terminal)
    terminals.validate_new(good_terminal, "till-1@shop", "ten chars!")


def test_a_program_needs_a_name_an_enrolment_access_type_and_a_notice_channel() -> None:
    draft = ProgramDraft("", False, None, None)
    assert violated(lambda: loyalty_programs.validate(draft)) == [
        "program.name",
        "program.default_access_type",
        "program.notice_channel",
    ]


def test_customers_are_never_enrolled_blacklisted() -> None:
    draft = ProgramDraft("Club", True, AccessType.BLACKLISTED, NoticeChannel.SMS)
    assert violated(lambda: loyalty_programs.validate(draft)) == ["program.default_access_type"]


def test_a_point_of_sale_names_each_wrong_field_and_language() -> None:
    draft = PointOfSaleDraft(
        0, "x" * 201, "Europe/Atlantis", {"EN!": "Shop"}, {},
        {"en": "a" * (address_characters_max + 1)}, False,
    )  # fmt: skip
    assert violated(lambda: points_of_sale.validate(draft)) == [
        "point_of_sale.program_id",
        "point_of_sale.name",
        "point_of_sale.time_zone",
        "point_of_sale.title['EN!']",
        "point_of_sale.address['en']",
    ]


def test_a_new_terminal_needs_a_kind_a_login_and_a_long_enough_password() -> None:
    draft = TerminalDraft(0, "", None, True)
    assert violated(lambda: terminals.validate_new(draft, "no spaces", "short")) == [
        "terminal.point_of_sale_id",
        "terminal.name",
        "terminal.kind",
        "terminal.login",
        "password",
    ]


@pytest.mark.parametrize(
    ("domain_path", "request_path"),
    [
        ("program.name", "program.name"),
        ("program.notice_channel", "program.notice_channel"),
        ("program.hold_seconds", "rules.hold_seconds"),
        ("program.rules[2].value", "rules.rules[2].value"),
        ("program.redemption_check_sum_min", "rules.redemption_check_sum_min_minor_units"),
    ],
)
def test_rules_paths_become_the_requests_rules_and_the_programs_stay(
    domain_path: str, request_path: str
) -> None:
    assert proto_field_path(domain_path) == request_path
