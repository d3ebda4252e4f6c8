"""Async ``ClientSecretCredential``: the same core as :mod:`identity.client_secret`, async driver."""

from __future__ import annotations

from typing import Any

import httpx

from protocol.drivers import AsyncDriver
from protocol.retry import RetryPolicy

from ..client_secret import client_secret_core
from ..persistence_options import TokenCachePersistenceOptions
from ..settings import attach_persistent_cache, constructor_options
from .credential import AsyncCredential

__all__ = ["ClientSecretCredential"]


class ClientSecretCredential(AsyncCredential):
    """Authenticates as a service principal using a client secret (async).

    Arguments as :class:`identity.ClientSecretCredential`, with an ``httpx.AsyncBaseTransport`` for
    ``transport`` and an ``httpx.AsyncClient`` for ``http_client``.
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        *,
        authority: str | None = None,
        disable_instance_discovery: bool = False,
        additionally_allowed_tenants: list[str] | None = None,
        cache_persistence_options: TokenCachePersistenceOptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        retry_policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        http = constructor_options(self, locals())
        self._core = client_secret_core(
            type(self).__name__,
            tenant_id,
            client_id,
            client_secret,
            authority=authority,
            disable_instance_discovery=disable_instance_discovery,
            additionally_allowed_tenants=additionally_allowed_tenants,
            retry_policy=http.retry_policy,
        )
        attach_persistent_cache(self._core, http)
        self._driver = AsyncDriver(
            client=http_client, transport=transport, client_options=http.client_options
        )
