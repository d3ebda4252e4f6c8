"""Async ``EnvironmentCredential``: the selection of :mod:`identity.environment`, async credentials."""

from __future__ import annotations

from types import TracebackType
from typing import Any, TypeVar

from ..environment import credential_from_environment
from ..errors import CredentialUnavailableError
from ..tokens import AccessToken, AccessTokenInfo, TokenRequestOptions

__all__ = ["EnvironmentCredential"]

_Self = TypeVar("_Self", bound="EnvironmentCredential")


class EnvironmentCredential:
    """A credential configured by environment variables (async); see
    :class:`identity.EnvironmentCredential`."""

    def __init__(self, **kwargs: Any) -> None:
        from .certificate import CertificateCredential
        from .client_secret import ClientSecretCredential
        from .username_password import UsernamePasswordCredential

        classes = {
            "ClientSecretCredential": ClientSecretCredential,
            "CertificateCredential": CertificateCredential,
            "UsernamePasswordCredential": UsernamePasswordCredential,
        }
        self._credential, self._unavailable = credential_from_environment(classes, kwargs)

    def _inner(self) -> Any:
        if self._credential is None:
            raise CredentialUnavailableError(message=self._unavailable)
        return self._credential

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """A token from the configured credential (``CredentialUnavailableError`` when there is none)."""
        token: AccessToken = await self._inner().get_token(
            *scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs
        )
        return token

    async def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo:
        """A token with its type and refresh time from the configured credential."""
        info: AccessTokenInfo = await self._inner().get_token_info(*scopes, options=options)
        return info

    async def close(self) -> None:
        if self._credential is not None:
            await self._credential.close()

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"EnvironmentCredential({self._credential!r})"
