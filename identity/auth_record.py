"""``AuthenticationRecord``: non-secret account information for silent authentication.

Serialised as the same JSON object azure-identity writes (keys ``authority``, ``clientId``,
``homeAccountId``, ``tenantId``, ``username``, ``version`` = ``"1.0"``), so a record saved by one
library is read by the other. It never holds a token or secret.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["AuthenticationRecord"]

SUPPORTED_VERSIONS = ("1.0",)
_FIELDS = {
    "authority": "authority",
    "clientId": "client_id",
    "homeAccountId": "home_account_id",
    "tenantId": "tenant_id",
    "username": "username",
}


class AuthenticationRecord:
    """Non-secret account information for an authenticated user.

    Args:
        tenant_id: the tenant the account should authenticate in.
        client_id: the application that performed the original authentication.
        authority: the authority host used to authenticate the account (e.g.
            ``login.microsoftonline.com``).
        home_account_id: a unique identifier of the account (``uid.utid``).
        username: the user principal name of the account.
    """

    __slots__ = ("_authority", "_client_id", "_home_account_id", "_tenant_id", "_username")

    def __init__(
        self, tenant_id: str, client_id: str, authority: str, home_account_id: str, username: str
    ) -> None:
        self._tenant_id = tenant_id
        self._client_id = client_id
        self._authority = authority
        self._home_account_id = home_account_id
        self._username = username

    @property
    def authority(self) -> str:
        """The authority host used to authenticate the account."""
        return self._authority

    @property
    def client_id(self) -> str:
        """The client ID of the application which performed the original authentication."""
        return self._client_id

    @property
    def home_account_id(self) -> str:
        """A unique identifier of the account."""
        return self._home_account_id

    @property
    def tenant_id(self) -> str:
        """The tenant the account should authenticate in."""
        return self._tenant_id

    @property
    def username(self) -> str:
        """The user principal or service principal name of the account."""
        return self._username

    @classmethod
    def deserialize(cls, data: str) -> AuthenticationRecord:
        """Read a record written by :meth:`serialize` (or by azure-identity).

        Raises:
            ValueError: ``data`` is not JSON, is not an object, lacks a field, has a field that is not
                a string, or has an unsupported ``version``.
        """
        try:
            parsed: Any = json.loads(data)
        except (TypeError, ValueError, RecursionError) as exc:
            raise ValueError(
                f"The authentication record is not valid JSON: {exc.__class__.__name__}."
            ) from None
        if not isinstance(parsed, dict):
            raise ValueError("The authentication record must be a JSON object.")
        version = parsed.get("version")
        if version not in SUPPORTED_VERSIONS:
            raise ValueError(
                f"Unexpected authentication record version {version!r}. Supported versions: "
                f"{', '.join(SUPPORTED_VERSIONS)}."
            )
        values: dict[str, str] = {}
        for key, name in _FIELDS.items():
            value = parsed.get(key)
            if not isinstance(value, str):
                problem = "is missing" if value is None else f"must be a string, not {type(value).__name__}"
                raise ValueError(f"The authentication record's '{key}' {problem}.")
            values[name] = value
        return cls(**values)

    def serialize(self) -> str:
        """The record as JSON (the same keys and version azure-identity writes)."""
        return json.dumps(
            {
                "authority": self._authority,
                "clientId": self._client_id,
                "homeAccountId": self._home_account_id,
                "tenantId": self._tenant_id,
                "username": self._username,
                "version": SUPPORTED_VERSIONS[0],
            }
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AuthenticationRecord):
            return NotImplemented
        return self.serialize() == other.serialize()

    def __hash__(self) -> int:
        return hash(self.serialize())

    def __repr__(self) -> str:
        return (
            f"AuthenticationRecord(tenant_id={self._tenant_id!r}, client_id={self._client_id!r}, "
            f"authority={self._authority!r}, home_account_id={self._home_account_id!r}, "
            f"username={self._username!r})"
        )
