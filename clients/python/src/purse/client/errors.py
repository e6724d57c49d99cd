"""Refusals as exceptions: a failed call raises `PurseError`, the google.rpc details the
server attached to its status unpacked (the reason word, the wrong fields, how long to
wait). Pure: reads the error it is given."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


class PurseError(Exception):
    """A refusal from the server, with the google.rpc details unpacked.

    `code` is the gRPC status code; `reason` the stable word of its ErrorInfo
    (`PHONE_INVALID`, `TOKEN_EXPIRED`…; empty when the server sent none, as for a
    transport failure); `field_violations` each wrong field's path in the request with
    what is wrong; `retry_after_seconds` the RetryInfo's delay (0 when waiting does not
    help).
    """

    def __init__(self, error: grpc.aio.AioRpcError) -> None:
        self.code = error.code()
        self.message = error.details() or ""
        self.reason = ""
        self.field_violations: dict[str, str] = {}
        self.retry_after_seconds = 0
        status = rpc_status.from_call(error)
        for detail in status.details if status is not None else ():
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                self.reason = info.reason
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                self.field_violations.update(
                    {item.field: item.description for item in bad_request.field_violations}
                )
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                self.retry_after_seconds = retry.retry_delay.seconds
        super().__init__(f"{self.code.name} {self.reason}: {self.message}")
