"""Who administers a business, and what each role may do — pure.

An administrator belongs to one business and has one role:

* owner — everything, including the business's administrators and their keys;
* manager — setup (programs, points of sale, terminals, goods …) and customers;
* analyst — reads only.

Every control panel call declares the `Access` it needs; `allows` is the one table that
says which roles have it. The operator (whoever runs the instance) is not an
administrator: it creates businesses and their first owner through its own key.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from purse.domain.errors import PermissionDenied


class Role(Enum):
    """An administrator's role (stored as the enum value)."""

    OWNER = "owner"
    MANAGER = "manager"
    ANALYST = "analyst"


class Access(Enum):
    """What a call does to the business."""

    # Reads anything of the business.
    READ = "read"
    # Changes setup or customers.
    CHANGE = "change"
    # Changes administrators and their credentials.
    ADMINISTER = "administer"


_allowed: dict[Role, frozenset[Access]] = {
    Role.OWNER: frozenset(Access),
    Role.MANAGER: frozenset({Access.READ, Access.CHANGE}),
    Role.ANALYST: frozenset({Access.READ}),
}


def allows(role: Role, access: Access) -> bool:
    return access in _allowed[role]


@dataclass(frozen=True, slots=True)
class AdministratorContext:
    """Who a control panel call speaks for: an administrator of one business."""

    business_id: int
    currency: str
    administrator_id: int = 0
    login: str = ""
    role: Role = Role.OWNER
    # A digest of the password's hash: tokens carry it, so a new password revokes them.
    credential_stamp: bytes = bytes(8)

    def require(self, access: Access) -> None:
        """PermissionDenied (ROLE_NOT_ALLOWED) unless this administrator's role has it."""
        if not allows(self.role, access):
            raise PermissionDenied(
                f"the {self.role.value} role may not {_verbs[access]}", reason="ROLE_NOT_ALLOWED"
            )

    @property
    def actor(self) -> Actor:
        return Actor(self.business_id, self.administrator_id, f"{self.login} ({self.role.value})")


_verbs = {
    Access.READ: "read this business",
    Access.CHANGE: "change this business's setup or customers",
    Access.ADMINISTER: "manage administrators",
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who the audit log says made a change: an administrator, or the operator (id None)."""

    business_id: int
    administrator_id: int | None
    name: str


def operator_actor(business_id: int) -> Actor:
    return Actor(business_id, None, "operator")
