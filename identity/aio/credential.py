"""The async credential shell: the same template as :mod:`identity.credential`, awaiting I/O.

Waiting for another task's acquisition uses an :class:`asyncio.Lock` of the running loop, so the
event loop is never blocked; a credential may be used from several event loops.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, TypeVar

from cache.memory import Freshness
from protocol.drivers import AsyncDriver
from protocol.errors import ProtocolError
from protocol.single_flight import acquire_from_loop

from ..core import Attempt, TokenCore
from ..tokens import AccessToken, AccessTokenInfo, TokenRequestOptions

__all__ = ["AsyncCredential"]

_Self = TypeVar("_Self", bound="AsyncCredential")


class AsyncCredential:
    """Async ``get_token``, ``get_token_info``, ``close`` and ``async with`` support."""

    _core: TokenCore
    _arguments: dict[str, Any]
    _driver: AsyncDriver

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """Request an access token for ``scopes`` (see the sync twin for the arguments)."""
        if not claims:  # the fast path: a FRESH token for exactly this request, one dict probe
            hit = self._core.fast_hit(scopes, tenant_id, enable_cae)
            if hit is not None:
                return hit.token
        info = await self._token_info(scopes, claims, tenant_id, enable_cae, "get_token")
        return AccessToken(info.token, info.expires_on)

    async def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo:
        """Request an access token for ``scopes``, with its type and refresh time."""
        claims, tenant_id, enable_cae = TokenCore.options(options)
        if not claims:  # the fast path, as in get_token
            hit = self._core.fast_hit(scopes, tenant_id, enable_cae)
            if hit is not None:
                return hit.info
        return await self._token_info(scopes, claims, tenant_id, enable_cae, "get_token_info")

    async def _token_info(
        self,
        scopes: tuple[str, ...],
        claims: str | None,
        tenant_id: str | None,
        enable_cae: bool,
        method: str,
    ) -> AccessTokenInfo:
        core = self._core
        plan = core.plan(scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, method=method)
        entry, state = core.cached(plan)
        if entry is not None and state is Freshness.FRESH:
            return core.serve(plan, entry)
        lock = core.locks.task_lock(plan.key)
        ticket = core.ticket(plan)
        if lock.locked():
            if entry is not None and state is Freshness.STALE:
                return core.info(entry)  # another task is already refreshing
            # Wait for the acquisition in flight with every other waiter, and wake together: no
            # queueing through the lock one task at a time (1,000 tasks would pay 1,000 handoffs).
            await core.locks.task_event(plan.key).wait()
            hit = core.fast_hit(scopes, tenant_id, enable_cae) if not claims else None
            if hit is not None:  # usually the new token is on the fast path already
                return hit.info
            outcome = core.attempt(plan, ticket)  # its token, or its failure (raised)
            if not isinstance(outcome, Attempt):
                return outcome
        async with lock:
            done = core.locks.task_event(plan.key)
            done.clear()
            # Tasks of other event loops (other threads) share the key's thread lock.
            other_loops = core.locks.thread_lock(plan.key)
            if entry is not None and state is Freshness.STALE:
                if not other_loops.acquire(blocking=False):
                    return core.info(entry)  # another loop is already refreshing it
            else:
                await acquire_from_loop(other_loops)
            try:
                attempt = core.attempt(plan, ticket)
                if isinstance(attempt, Attempt):
                    try:
                        result = await self._driver.run(attempt.flow())
                    except ProtocolError as exc:
                        return attempt.failed(exc)
                    return attempt.succeeded(result)
                return attempt
            finally:
                other_loops.release()
                done.set()

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its constructor arguments: new locks, HTTP client and (empty) token cache.
        return (_restore, (type(self), self._arguments))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._core.describe()})"

    async def close(self) -> None:
        """Write any token a persistent cache still holds in memory to its file (in a worker
        thread: the file lock and the disk never block the event loop), and close the HTTP client
        this credential created."""
        if self._core.unsaved:
            await asyncio.to_thread(self._core.flush)
        await self._driver.close()

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


def _restore(cls: type[Any], arguments: dict[str, Any]) -> Any:
    return cls(**arguments)
