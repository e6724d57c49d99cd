"""The operator's use cases: creating a business with its first owner.

One database transaction creates the business, its default customer category ("New
customers", localized in the business's first language), the first owner (scrypt
password) and that owner's API key (returned once, kept as a digest), each with its
audit entry by the operator. Bad input creates nothing. The operator authenticates with
a key made on the server's machine (`purse operator-key create`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from purse.domain import credentials
from purse.domain.administrators import Role
from purse.domain.errors import InvalidArgument, Unauthenticated
from purse.domain.setup import Fields
from purse.service.admin.administrators import ADMINISTRATORS, API_KEYS, AdministratorWrites, hashed
from purse.service.admin.business import BusinessSettings, validate_settings
from purse.service.admin.categories import CATEGORIES
from purse.service.admin.records import unique_fields
from purse.service.cache import ExpiringCache
from purse.service.ports import BackOfficeWriting

default_category_name = "New customers"
_owner_login_taken = {
    "administrators_login_key": ("owner_login", "an administrator with that login", "LOGIN_TAKEN")
}


@dataclass(frozen=True, slots=True)
class NewOwner:
    login: str
    password: str
    name: str


@dataclass(frozen=True, slots=True)
class FoundedBusiness:
    business_id: int
    owner_administrator_id: int
    owner_api_key: str


class OperatorKeys(Protocol):
    async def known(self, key_digest: bytes) -> bool: ...


class Platform:
    def __init__(
        self,
        writes: BackOfficeWriting,
        administrators: AdministratorWrites,
        operator_keys: OperatorKeys,
        cache_seconds: float,
    ) -> None:
        self._writes = writes
        self._administrators = administrators
        self._operator_keys = operator_keys
        self._known: ExpiringCache[bool] = ExpiringCache(cache_seconds, 64)

    async def authenticate(self, credential: str) -> None:
        """Refuses anything but a live operator key."""
        if not credential:
            raise Unauthenticated(
                "send 'authorization: Bearer <operator key>'", reason="CREDENTIALS_MISSING"
            )
        if not credential.startswith(credentials.api_key_prefix):
            raise Unauthenticated(
                f"not an operator key: they start with {credentials.api_key_prefix}"
                " (send 'authorization: Bearer <key>', 'Bearer' once)",
                reason="OPERATOR_KEY_INVALID",
            )
        digest = credentials.api_key_digest(credential)
        if self._known.get(digest) is None:
            if not await self._operator_keys.known(digest):
                raise Unauthenticated(
                    "unknown or revoked operator key (terminal and administrator keys open"
                    " their own services)",
                    reason="OPERATOR_KEY_INVALID",
                )
            self._known.put(digest, True)

    async def create_business(self, settings: BusinessSettings, owner: NewOwner) -> FoundedBusiness:
        fields = Fields()
        fields.login("owner_login", owner.login)
        fields.password("owner_password", owner.password)
        fields.name("owner_name", owner.name, required=False)
        exponent = 0
        try:
            exponent = validate_settings(settings, "")
        except InvalidArgument as error:
            fields.violations[:0] = error.violations
        fields.raise_if_any()
        password_hash = await hashed(owner.password)
        secret = credentials.new_api_key()
        values = {
            "name": settings.name,
            "currency": settings.currency,
            "currency_exponent": exponent,
            "languages": list(settings.languages),
            "time_zone": settings.time_zone,
            "phone_prefix": settings.phone_prefix,
        }
        async with self._writes.founding(values) as writing:
            category = await writing.inserted(
                CATEGORIES,
                {
                    "name": default_category_name,
                    "title": {settings.languages[0]: default_category_name},
                    "is_default": True,
                },
            )
            await writing.record("create", CATEGORIES, category["category_id"], None, category)
            with unique_fields(_owner_login_taken):
                administrator = await writing.inserted(
                    ADMINISTRATORS,
                    {
                        "login": owner.login,
                        "name": owner.name,
                        "role": Role.OWNER.value,
                        "password_hash": password_hash,
                    },
                )
            administrator_id = administrator["administrator_id"]
            await writing.record("create", ADMINISTRATORS, administrator_id, None, administrator)
            key = await self._administrators.add_key(
                writing, administrator_id, "first owner key", credentials.api_key_digest(secret)
            )
            await writing.record("create", API_KEYS, key["api_key_id"], None, key)
        return FoundedBusiness(writing.actor.business_id, administrator_id, secret)
