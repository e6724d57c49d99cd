"""Every AdminService RPC declares the access it needs, and the roles grant it as the
control panel promises."""

from __future__ import annotations

from purse.admin.v1 import admin_service_pb2
from purse.api.grpc.admin.calls import access_of
from purse.api.grpc.admin.servicer import AdminServicer
from purse.domain.administrators import Access, Role, allows


def test_every_admin_rpc_is_implemented_and_declares_its_access() -> None:
    service = admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"]
    undeclared = [
        method.name
        for method in service.methods
        if method.name != "SignIn" and access_of(getattr(AdminServicer, method.name)) is None
    ]
    assert undeclared == []


def test_owners_do_everything_managers_change_and_analysts_only_read() -> None:
    assert all(allows(Role.OWNER, access) for access in Access)
    assert [access for access in Access if allows(Role.MANAGER, access)] == [
        Access.READ,
        Access.CHANGE,
    ]
    assert [access for access in Access if allows(Role.ANALYST, access)] == [Access.READ]


def test_admin_cli_sets_nested_fields_and_refuses_a_path_through_a_value() -> None:
    from purse.admin_cli import command_name, request_fields

    assert command_name("CreatePointOfSale") == "create-point-of-sale"
    assert request_fields('{"a": 1}', ["b.c=2", "b.d=x", 'b.e={"en": "Gold"}']) == {
        "a": 1,
        "b": {"c": 2, "d": "x", "e": {"en": "Gold"}},
    }
    try:
        request_fields('{"a": 1}', ["a.b=2"])
    except SystemExit as refused:
        assert "a is not a message" in str(refused)
    else:
        raise AssertionError("a path through a value was accepted")
