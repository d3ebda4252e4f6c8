"""Async ``ChainedTokenCredential``: the walk of :func:`identity.chained.chain_flow`, awaiting members."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

from ..chained import (
    WITHIN_CHAIN,
    as_access_token,
    as_info,
    chain_flow,
    check_members,
    member_get_token,
    member_get_token_info,
)
from ..tokens import AccessToken, AccessTokenInfo, TokenRequestOptions

__all__ = ["ChainedTokenCredential"]

_Self = TypeVar("_Self", bound="ChainedTokenCredential")


class ChainedTokenCredential:
    """A sequence of async credentials that is itself an async credential (async); see
    :class:`identity.ChainedTokenCredential`."""

    def __init__(self, *credentials: Any) -> None:
        self.credentials = check_members(credentials)

    async def _walk(self, call: Callable[[Any], Awaitable[Any]]) -> Any:
        flow = chain_flow(type(self).__name__, self.credentials)
        member = next(flow)
        marker = WITHIN_CHAIN.set(True)
        try:
            while True:
                try:
                    outcome = await call(member)
                except Exception as exc:
                    member = flow.throw(exc)
                    continue
                try:
                    member = flow.send(outcome)
                except StopIteration as stop:
                    return stop.value
        finally:
            WITHIN_CHAIN.reset(marker)

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """The first token a member provides."""
        arguments = {"claims": claims, "tenant_id": tenant_id, "enable_cae": enable_cae, **kwargs}
        return as_access_token(await self._walk(lambda member: member_get_token(member, scopes, arguments)))

    async def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo:
        """The first token a member provides, with its type and refresh time."""
        return as_info(await self._walk(lambda member: member_get_token_info(member, scopes, options)))

    async def close(self) -> None:
        """Close every member, concurrently."""
        await asyncio.gather(*(c.close() for c in self.credentials if hasattr(c, "close")))

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
        names = (getattr(c, "credential_name", None) or type(c).__name__ for c in self.credentials)
        return f"{type(self).__name__}({', '.join(names)})"
