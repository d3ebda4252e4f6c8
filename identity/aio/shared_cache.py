"""Async ``SharedTokenCacheCredential``: the same session as :mod:`identity.shared_cache`; the cache
file is opened and read in a worker thread."""

from __future__ import annotations

import platform
from typing import Any

import httpx

from protocol.drivers import AsyncDriver
from protocol.retry import RetryPolicy

from ..auth_record import AuthenticationRecord
from ..http_options import HttpOptions
from ..persistence_options import TokenCachePersistenceOptions
from ..settings import constructor_options
from ..shared_cache import shared_cache_session
from .credential import AsyncCredential

__all__ = ["SharedTokenCacheCredential"]


class SharedTokenCacheCredential(AsyncCredential):
    """Authenticates using tokens in the local cache shared between Microsoft applications (async).

    Arguments as :class:`identity.SharedTokenCacheCredential`, with an ``httpx.AsyncBaseTransport``
    for ``transport`` and an ``httpx.AsyncClient`` for ``http_client``.
    """

    def __init__(
        self,
        username: str | None = None,
        *,
        tenant_id: str | None = None,
        authority: str | None = None,
        authentication_record: AuthenticationRecord | None = None,
        cache_persistence_options: TokenCachePersistenceOptions | None = None,
        additionally_allowed_tenants: list[str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        retry_policy: RetryPolicy | None = None,
        _within_dac: bool = False,
        **kwargs: Any,
    ) -> None:
        http: HttpOptions = constructor_options(self, locals())
        self._session = shared_cache_session(
            type(self).__name__,
            username,
            tenant_id=tenant_id,
            authority=authority,
            authentication_record=authentication_record,
            persistence=http.persistence,
            retry_policy=http.retry_policy,
            additionally_allowed_tenants=additionally_allowed_tenants,
            within_dac=_within_dac,
        )
        self._core = self._session.core
        self._driver = AsyncDriver(
            client=http_client, transport=transport, client_options=http.client_options
        )

    @staticmethod
    def supported() -> bool:
        """Whether the shared cache can be used on this platform (Windows, macOS, Linux)."""
        return platform.system() in {"Windows", "Darwin", "Linux"}
