"""Every setup RPC of AdminService declares the access it needs: reads READ, the rest
CHANGE (so an analyst reads the setup and only owners and managers change it)."""

from __future__ import annotations

from purse.admin.v1 import admin_service_pb2, setup_pb2
from purse.api.grpc.admin.calls import access_of
from purse.api.grpc.admin.servicer import AdminServicer
from purse.domain.administrators import Access

_service = admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"]
_setup_rpcs = sorted(
    method.name
    for method in _service.methods
    if method.input_type.file.name == setup_pb2.DESCRIPTOR.name
)


def test_the_setup_rpcs_are_served() -> None:
    assert len(_setup_rpcs) == 20


def test_every_setup_rpc_reads_with_read_and_changes_with_change() -> None:
    declared = {name: access_of(getattr(AdminServicer, name)) for name in _setup_rpcs}
    expected = {
        name: Access.READ if name.startswith(("Get", "List")) else Access.CHANGE
        for name in _setup_rpcs
    }
    assert declared == expected
