"""Async ``VisualStudioCodeCredential`` (see :mod:`identity.vscode`)."""

from __future__ import annotations

import asyncio
from typing import Any

from protocol.errors import SourceUnavailableError

from ..errors import CredentialUnavailableError
from ..tokens import AccessToken, AccessTokenInfo, TokenRequestOptions
from ..vscode import load_vscode_record, unavailable_message
from .shared_cache import SharedTokenCacheCredential

__all__ = ["VisualStudioCodeCredential"]


class VisualStudioCodeCredential:
    """Authenticates as the user signed in to VS Code's Azure Resources extension (async)."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._inner: SharedTokenCacheCredential | None = None

    async def _credential(self) -> SharedTokenCacheCredential:
        if self._inner is None:
            try:
                record = await asyncio.to_thread(load_vscode_record)
            except SourceUnavailableError as exc:
                raise CredentialUnavailableError(message=exc.message) from exc
            # tenant_id (default: the record's) and additionally_allowed_tenants go to the lookup.
            self._inner = SharedTokenCacheCredential(authentication_record=record, **self._kwargs)
        return self._inner

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """Request an access token for ``scopes``.

        Raises:
            CredentialUnavailableError: no usable VS Code sign-in here.
        """
        inner = await self._credential()
        try:
            return await inner.get_token(
                *scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs
            )
        except CredentialUnavailableError as exc:
            raise CredentialUnavailableError(message=unavailable_message(exc)) from exc

    async def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo:
        """Like :meth:`get_token`, with azure-core's ``TokenRequestOptions``."""
        inner = await self._credential()
        try:
            return await inner.get_token_info(*scopes, options=options)
        except CredentialUnavailableError as exc:
            raise CredentialUnavailableError(message=unavailable_message(exc)) from exc

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()

    async def __aenter__(self) -> VisualStudioCodeCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()
