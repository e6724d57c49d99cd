"""gRPC server reflection that answers the contract's files with their comments.

grpcio-reflection serializes each file from the runtime's descriptor pool, which keeps no
source information: a client (grpcurl `describe`, Postman, IDE plugins) would see the
contract without a word of what a field means or in which unit it is. This servicer
answers the same files, but each of Purse's own in the form the packaged descriptor set
keeps it (`purse/api/http/descriptors.binpb`, written by `make protos` with
`--include_source_info`), so reflection shows every doc comment. Files it does not hold
(health, reflection itself, well-known types) are answered as grpcio-reflection answers
them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import grpc
from google.protobuf.descriptor_pb2 import FileDescriptorProto, FileDescriptorSet
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc


class DocumentedReflection(reflection.aio.ReflectionServicer):  # type: ignore[misc]
    """Reflection whose answers carry the documented form of the files it holds."""

    def __init__(self, service_names: Iterable[str], documented: FileDescriptorSet) -> None:
        super().__init__(tuple(service_names))
        self._documented: Mapping[str, bytes] = {
            file.name: file.SerializeToString() for file in documented.file
        }

    def _file_by_filename(self, request: Any, filename: str) -> Any:
        return self._with_comments(super()._file_by_filename(request, filename))

    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        return self._with_comments(super()._file_containing_symbol(request, fully_qualified_name))

    def _with_comments(self, response: Any) -> Any:
        if response.HasField("file_descriptor_response"):
            files = response.file_descriptor_response.file_descriptor_proto
            for index, serialized in enumerate(files):
                name = FileDescriptorProto.FromString(serialized).name
                files[index] = self._documented.get(name, serialized)
        return response


def enable_documented_reflection(
    service_names: Iterable[str], server: grpc.aio.Server, documented: FileDescriptorSet
) -> None:
    """Serves reflection for `service_names` (reflection itself included) on `server`."""
    names = (*service_names, reflection.SERVICE_NAME)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        DocumentedReflection(names, documented), server
    )
