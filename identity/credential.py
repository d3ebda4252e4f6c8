"""The sync credential shell: the ``get_token`` template's locking and I/O around a :class:`TokenCore`.

Concrete credentials (``ClientSecretCredential``...) build a core and a driver and inherit the
public methods from :class:`SyncCredential`; they contain no token logic of their own.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, TypeVar

from cache.memory import Freshness
from protocol.drivers import SyncDriver
from protocol.errors import ProtocolError

from .core import Attempt, TokenCore
from .tokens import AccessToken, AccessTokenInfo, TokenRequestOptions

__all__ = ["SyncCredential"]

_Self = TypeVar("_Self", bound="SyncCredential")


class SyncCredential:
    """``get_token``, ``get_token_info``, ``close`` and the context manager protocol."""

    _core: TokenCore
    _arguments: dict[str, Any]
    _driver: SyncDriver

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """Request an access token for ``scopes``.

        Args:
            scopes: the scopes, e.g. ``"https://graph.microsoft.com/.default"``.
            claims: a claims challenge (decoded JSON) from a resource's 401; bypasses the cache.
            tenant_id: a tenant for this request (see ``additionally_allowed_tenants``).
            enable_cae: request a token that supports Continuous Access Evaluation.

        Raises:
            ValueError: no scope, or an invalid argument.
            ClientAuthenticationError: authentication failed.
        """
        if not claims:  # the fast path: a FRESH token for exactly this request, one dict probe
            hit = self._core.fast_hit(scopes, tenant_id, enable_cae)
            if hit is not None:
                return hit.token
        info = self._token_info(scopes, claims, tenant_id, enable_cae, "get_token")
        return AccessToken(info.token, info.expires_on)

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        """Request an access token for ``scopes``, with its type and refresh time.

        Args:
            scopes: the scopes.
            options: ``claims``, ``tenant_id`` and ``enable_cae`` (other keys are ignored).
        """
        claims, tenant_id, enable_cae = TokenCore.options(options)
        if not claims:  # the fast path, as in get_token
            hit = self._core.fast_hit(scopes, tenant_id, enable_cae)
            if hit is not None:
                return hit.info
        return self._token_info(scopes, claims, tenant_id, enable_cae, "get_token_info")

    def _token_info(
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
        lock = core.locks.thread_lock(plan.key)
        ticket = core.ticket(plan)
        if entry is not None and state is Freshness.STALE:
            if not lock.acquire(blocking=False):
                return core.info(entry)  # another caller is already refreshing it
        else:
            lock.acquire()
        try:
            attempt = core.attempt(plan, ticket)
            if isinstance(attempt, Attempt):
                try:
                    result = self._driver.run(attempt.flow())
                except ProtocolError as exc:
                    return attempt.failed(exc)
                return attempt.succeeded(result)
            return attempt
        finally:
            lock.release()

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its constructor arguments: new locks, HTTP client and (empty) token cache.
        return (_restore, (type(self), self._arguments))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._core.describe()})"

    def close(self) -> None:
        """Write any token a persistent cache still holds in memory to its file, and close the HTTP
        client this credential created."""
        self._core.flush()
        self._driver.close()

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _restore(cls: type[Any], arguments: dict[str, Any]) -> Any:
    return cls(**arguments)
