"""The OpenAPI document: valid OpenAPI 3.1, a path for every RPC, the protos' comments in it,
and schemas that accept what protobuf's canonical JSON printer writes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from purse.admin.v1 import admin_service_pb2, setup_pb2
from purse.api.http import openapi
from purse.domain.reasons import ERROR_REASONS
from purse.platform.v1 import platform_service_pb2
from purse.v1 import common_pb2, terminal_service_pb2

_DOCUMENT_URI = "urn:purse:openapi"
_SERVICES = (
    terminal_service_pb2.DESCRIPTOR.services_by_name["TerminalService"],
    admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"],
    platform_service_pb2.DESCRIPTOR.services_by_name["PlatformService"],
)


def _validator(component: str) -> Draft202012Validator:
    """Validates against one component schema, its `$ref`s resolved in the document."""
    resource = DRAFT202012.create_resource(openapi.document())
    registry: Registry[Any] = Registry().with_resource(_DOCUMENT_URI, resource)
    schema = {"$ref": f"{_DOCUMENT_URI}#/components/schemas/{component}"}
    return Draft202012Validator(schema, registry=registry)


def _errors(component: str, instance: object) -> list[str]:
    return [error.message for error in _validator(component).iter_errors(instance)]


def _canonical(message: Message) -> dict[str, Any]:
    printed: dict[str, Any] = json_format.MessageToDict(message)
    return printed


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi.document()

    validate(document)
    assert document["openapi"].startswith("3.1.")


def test_the_json_form_is_the_document() -> None:
    assert json.loads(openapi.document_json()) == openapi.document()


def test_every_rpc_of_the_three_services_is_a_post_path_with_its_operation_id() -> None:
    paths = openapi.document()["paths"]

    expected = {
        f"/{service.full_name}/{method.name}": f"{service.name}_{method.name}"
        for service in _SERVICES
        for method in service.methods
    }
    assert set(paths) == set(expected)
    assert {path: paths[path]["post"]["operationId"] for path in paths} == expected


def test_requests_and_answers_refer_to_their_messages_and_refusals_to_connect_errors() -> None:
    operation = openapi.document()["paths"]["/purse.v1.TerminalService/IdentifyCustomer"]["post"]

    request = operation["requestBody"]["content"]["application/json"]["schema"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert request == {"$ref": "#/components/schemas/purse.v1.IdentifyCustomerRequest"}
    assert answer == {"$ref": "#/components/schemas/purse.v1.IdentifyCustomerResponse"}
    refusals = openapi.document()["components"]["responses"]
    for status in ("400", "401", "403", "404", "409", "413", "415", "429", "500", "503"):
        name = operation["responses"][status]["$ref"].rsplit("/", 1)[-1]
        schema = refusals[name]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ConnectError"}


def test_only_the_sign_ins_are_called_without_a_credential() -> None:
    operations = [path["post"] for path in openapi.document()["paths"].values()]

    public = sorted(
        operation["operationId"] for operation in operations if not operation["security"]
    )
    assert public == ["AdminService_SignIn", "TerminalService_SignIn"]
    schemes = openapi.document()["components"]["securitySchemes"]
    assert all(scheme["scheme"] == "bearer" for scheme in schemes.values())


def test_the_stream_is_ndjson_lines_of_its_messages() -> None:
    operation = openapi.document()["paths"]["/purse.v1.TerminalService/ProcessChecks"]["post"]

    line = operation["requestBody"]["content"]["application/x-ndjson"]["schema"]
    assert line["$ref"] == "#/components/schemas/purse.v1.ProcessChecksRequest"
    answer = operation["responses"]["200"]["content"]["application/x-ndjson"]["schema"]
    assert {"$ref": "#/components/schemas/StreamError"} in answer["anyOf"]


def test_the_export_takes_a_json_request_and_answers_a_csv_file_to_save() -> None:
    operation = openapi.document()["paths"]["/purse.admin.v1.AdminService/ExportCustomers"]["post"]

    request = operation["requestBody"]["content"]["application/json"]["schema"]
    answer = operation["responses"]["200"]
    assert request == {"$ref": "#/components/schemas/purse.admin.v1.ExportCustomersRequest"}
    assert answer["content"] == {"text/csv": {"schema": {"type": "string"}}}
    assert "attachment" in answer["headers"]["Content-Disposition"]["description"]
    assert operation["responses"]["400"]["$ref"].endswith("Status400")


def test_a_comment_written_in_a_proto_reaches_the_document() -> None:
    # The comment of TerminalService.SignIn as the packaged descriptor set holds it.
    data = openapi.packaged_descriptor_set()
    file = next(file for file in data.file if file.name == "purse/v1/terminal_service.proto")
    service_index = [service.name for service in file.service].index("TerminalService")
    method_index = [method.name for method in file.service[service_index].method].index("SignIn")
    location = next(
        location
        for location in file.source_code_info.location
        if list(location.path) == [6, service_index, 2, method_index]
    )

    operation = openapi.document()["paths"]["/purse.v1.TerminalService/SignIn"]["post"]
    assert location.leading_comments.split() == operation["description"].split()


def _commented_contract() -> descriptor_pb2.FileDescriptorSet:
    """A one-method TerminalService whose method, message, field and enum value have comments."""
    field_type = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="purse/v1/beans.proto", package="purse.v1", syntax="proto3"
    )
    request = file.message_type.add(name="CountBeansRequest")
    request.field.add(
        name="bean_count", number=1, type=field_type.TYPE_INT64, label=field_type.LABEL_OPTIONAL
    )
    request.field.add(
        name="kind",
        number=2,
        type=field_type.TYPE_ENUM,
        type_name=".purse.v1.BeanKind",
        label=field_type.LABEL_OPTIONAL,
    )
    file.message_type.add(name="CountBeansResponse")
    enum = file.enum_type.add(name="BeanKind")
    enum.value.add(name="BEAN_KIND_UNSPECIFIED", number=0)
    enum.value.add(name="BEAN_KIND_COFFEE", number=1)
    method = file.service.add(name="TerminalService").method.add(name="CountBeans")
    method.input_type, method.output_type = (
        ".purse.v1.CountBeansRequest",
        ".purse.v1.CountBeansResponse",
    )
    comments = {
        (6, 0, 2, 0): " Counts the beans. Twice when asked.\n",
        (4, 0): " What to count.\n",
        (4, 0, 2, 0): " How many beans there were.\n",
        (5, 0, 2, 1): " Roasted.\n",
    }
    for path, comment in comments.items():
        file.source_code_info.location.add(path=path, leading_comments=comment)
    return descriptor_pb2.FileDescriptorSet(file=[file])


def test_comments_become_summaries_and_descriptions_and_names_become_json_names() -> None:
    document = openapi.build_document(_commented_contract(), "1.2.3", {"BEANS_SPILLED": "spilled"})

    operation = document["paths"]["/purse.v1.TerminalService/CountBeans"]["post"]
    assert operation["summary"] == "Counts the beans."
    assert operation["description"] == "Counts the beans. Twice when asked."
    schemas = document["components"]["schemas"]
    request = schemas["purse.v1.CountBeansRequest"]
    assert request["description"] == "What to count."
    assert request["properties"]["beanCount"]["description"] == "How many beans there were."
    assert schemas["purse.v1.BeanKind"]["x-enumDescriptions"]["BEAN_KIND_COFFEE"] == "Roasted."
    assert document["info"]["version"] == "1.2.3"
    validate(document)


def test_the_error_catalogue_is_the_error_reason_enum_with_its_meanings() -> None:
    reason = openapi.document()["components"]["schemas"]["ErrorReason"]

    assert reason["enum"] == list(ERROR_REASONS)
    assert reason["x-enumDescriptions"]["TOKEN_EXPIRED"] in reason["description"]


@dataclass(frozen=True)
class _ReasonRecord:
    meaning: str
    status: int


def test_a_catalogue_of_records_gives_their_meanings() -> None:
    schema = openapi.error_reason_schema(
        {"BEANS_SPILLED": _ReasonRecord("the beans fell", 400), "CUP_FULL": "no room left"}
    )

    assert schema["x-enumDescriptions"] == {
        "BEANS_SPILLED": "the beans fell",
        "CUP_FULL": "no room left",
    }


def _process_check_request() -> terminal_service_pb2.ProcessCheckRequest:
    return terminal_service_pb2.ProcessCheckRequest(
        check_number="A-17",
        identifier=common_pb2.CustomerIdentifier(phone="+380501234567"),
        check=terminal_service_pb2.Check(
            currency="UAH",
            sum_minor_units=17500,
            lines=[
                terminal_service_pb2.CheckLine(
                    position=1,
                    product_code="LATTE",
                    price_minor_units=7000,
                    quantity_thousandths=2000,
                ),
                terminal_service_pb2.CheckLine(
                    position=2,
                    product_code="CROISSANT",
                    price_minor_units=3500,
                    amount_minor_units=0,
                ),
            ],
        ),
        redemption=terminal_service_pb2.Redemption(
            points_hundredths=5000, coupon_codes=["ESPRESSO-1"]
        ),
        sale_time=Timestamp(seconds=1_714_555_800, nanos=250_000_000),
    )


def _identify_customer_response() -> terminal_service_pb2.IdentifyCustomerResponse:
    pocket = common_pb2.Pocket(
        pocket_id=9_007_199_254_740_993,  # beyond a double's integers: written as a string
        kind=common_pb2.POCKET_KIND_POINTS,
        unit=common_pb2.POCKET_UNIT_POINT_HUNDREDTHS,
        title="Points",
        balance=25000,
        available=25000,
        next_expiry_time=Timestamp(seconds=1_800_000_000),
        redemption_limit_without_pin=0,  # optional: written although zero
    )
    return terminal_service_pb2.IdentifyCustomerResponse(
        membership=common_pb2.Membership(
            customer_id=42,
            phone="+380501234567",
            access_type=common_pb2.ACCESS_TYPE_FULL,
            participation_confirmed=True,
            pockets=[pocket],
            last_visit_time=Timestamp(seconds=1_714_555_800),
            given_name="Olena",
        )
    )


def _list_terminals_response() -> setup_pb2.ListTerminalsResponse:
    terminal = setup_pb2.Terminal(
        terminal_id=3,
        point_of_sale_id=2,
        name="Cash desk 1",
        kind=terminal_service_pb2.TERMINAL_KIND_CASH_DESK,
        login="desk-1",
        enabled=False,  # optional: written although false
        version=4,
        create_time=Timestamp(seconds=1_714_555_800),
        archive_time=Timestamp(seconds=1_714_642_200, nanos=1),
    )
    return setup_pb2.ListTerminalsResponse(terminals=[terminal], next_page_token="next")


@pytest.mark.parametrize(
    "message",
    [
        _process_check_request(),
        _identify_customer_response(),
        _list_terminals_response(),
        common_pb2.LocalizedText(texts={"en": "Coffee", "uk": "Кава"}),
    ],
    ids=lambda message: type(message).__name__,
)
def test_canonical_json_of_a_filled_message_validates_against_its_schema(message: Message) -> None:
    printed = _canonical(message)

    assert _errors(message.DESCRIPTOR.full_name, printed) == []


def test_the_examples_print_the_forms_the_schemas_describe() -> None:
    pocket = _canonical(_identify_customer_response())["membership"]["pockets"][0]
    terminal = _canonical(_list_terminals_response())["terminals"][0]

    assert pocket["pocketId"] == "9007199254740993"
    assert pocket["redemptionLimitWithoutPin"] == "0"
    assert pocket["kind"] == "POCKET_KIND_POINTS"
    assert terminal["enabled"] is False
    assert terminal["archiveTime"] == "2024-05-02T09:30:00.000000001Z"


def test_64_bit_integers_are_taken_as_numbers_or_strings_of_digits() -> None:
    check = {"currency": "UAH", "sumMinorUnits": 17500}

    assert _errors("purse.v1.Check", check) == []
    assert _errors("purse.v1.Check", {**check, "sumMinorUnits": "17500"}) == []
    assert _errors("purse.v1.Check", {**check, "sumMinorUnits": "17.5"}) != []


def test_a_request_with_a_field_its_message_lacks_is_refused_by_its_schema() -> None:
    request = _canonical(_process_check_request())

    assert _errors("purse.v1.ProcessCheckRequest", {**request, "tip": "5"}) != []
    line = {**request["check"]["lines"][0], "colour": "red"}
    nested = {**request, "check": {**request["check"], "lines": [line]}}
    assert _errors("purse.v1.ProcessCheckRequest", nested) != []


def test_two_members_of_one_oneof_are_refused_by_the_schema() -> None:
    assert _errors("purse.v1.CustomerIdentifier", {"phone": "+380501234567"}) == []
    both = {"phone": "+380501234567", "cardNumber": "DEMO0001"}
    assert _errors("purse.v1.CustomerIdentifier", both) != []


def test_an_enum_is_its_value_names() -> None:
    assert _errors("purse.v1.TerminalKind", "TERMINAL_KIND_KIOSK") == []
    assert _errors("purse.v1.TerminalKind", "KIOSK") != []


def test_a_connect_error_with_its_details_validates_and_its_reason_must_be_catalogued() -> None:
    error: dict[str, Any] = {
        "code": "failed_precondition",
        "message": "the steward code has expired",
        "details": [
            {
                "type": "google.rpc.ErrorInfo",
                "value": "ChRTVEVXQVJEX0NPREVfRVhQSVJFRBIFcHVyc2U",
                "debug": {"reason": "STEWARD_CODE_EXPIRED", "domain": "purse"},
            },
            {"type": "google.rpc.RetryInfo", "value": "CgIIAQ", "debug": {"retryDelay": "1s"}},
        ],
    }

    assert _errors("ConnectError", error) == []
    unknown = {**error["details"][0], "debug": {"reason": "BEANS_SPILLED", "domain": "purse"}}
    assert _errors("ConnectError", {**error, "details": [unknown]}) != []


def test_the_store_protos_are_not_part_of_the_document() -> None:
    schemas = openapi.document()["components"]["schemas"]

    assert [name for name in schemas if name.startswith("purse.store.")] == []
    assert "purse.v1.ProcessCheckRequest" in schemas
