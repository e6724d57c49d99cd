"""purse-client: typed Python clients of Purse's gRPC contract.

    from purse.client import AdminClient, PurseError, TerminalClient

    async with TerminalClient("127.0.0.1:50051", api_key="purse_key_...") as terminal:
        membership = await terminal.identify(phone="+380501234567")
        print(membership.pockets[0].available, membership.raw)

Every RPC of TerminalService (`TerminalClient`), AdminService (`AdminClient`) and
PlatformService (`PlatformClient`) is a method named in snake case. It takes the request
message, or its fields as keyword arguments, and answers a frozen dataclass of the
response (`purse.client.v1`, `.admin_v1`, `.platform_v1`) whose `raw` is the message as
received: Timestamps read as aware datetimes, enums as `ContractEnum`s, repeated fields
as tuples. A refusal raises `PurseError` (code, reason, field violations, retry after).
The generated protobuf modules are `purse.v1`, `purse.admin.v1` and `purse.platform.v1`.
"""

from purse.client.admin_v1 import AdminClient
from purse.client.errors import PurseError
from purse.client.platform_v1 import PlatformClient
from purse.client.terminal import CheckStream, TerminalClient, identifier

__all__ = [
    "AdminClient",
    "CheckStream",
    "PlatformClient",
    "PurseError",
    "TerminalClient",
    "identifier",
]
