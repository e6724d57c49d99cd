"""docs/reference.md is the contract as the protos describe it, current and complete."""

from __future__ import annotations

from pathlib import Path

from purse.api.http import openapi
from purse.api.http.reference_docs import packaged_markdown

reference = Path(__file__).resolve().parents[2] / "docs" / "reference.md"


def test_the_checked_in_reference_is_what_the_protos_give() -> None:
    assert reference.read_text() == packaged_markdown(), "run `make reference-docs`"


def test_every_method_message_and_enum_of_the_contract_has_its_section() -> None:
    page = packaged_markdown()
    contract = openapi.packaged_descriptor_set()
    for file in contract.file:
        if not file.package.startswith("purse."):
            continue
        for service in file.service:
            for method in service.method:
                assert f"`POST /{file.package}.{service.name}/{method.name}`" in page
        for message in file.message_type:
            assert f'<a id="{file.package}.{message.name}"></a>' in page
        for enum in file.enum_type:
            assert f'<a id="{file.package}.{enum.name}"></a>' in page


def test_a_field_shows_its_json_name_type_and_comment() -> None:
    row = next(
        line for line in packaged_markdown().splitlines() if "`quantity_thousandths`" in line
    )
    assert "`quantityThousandths`" in row
    assert "int64" in row
    assert "thousandths of a unit" in row
