"""Async ``WorkloadIdentityCredential``: the same core as :mod:`identity.workload_identity`."""

from __future__ import annotations

from typing import Any

import httpx

from protocol.drivers import AsyncDriver
from protocol.retry import RetryPolicy

from ..persistence_options import TokenCachePersistenceOptions
from ..workload_identity import configure
from .credential import AsyncCredential

__all__ = ["WorkloadIdentityCredential"]


class WorkloadIdentityCredential(AsyncCredential):
    """Authenticates with a federated token from a file (async).

    Arguments as :class:`identity.WorkloadIdentityCredential`, with async ``transport`` and ``http_client``.
    """

    def __init__(
        self,
        *,
        tenant_id: str | None = None,
        client_id: str | None = None,
        token_file_path: str | None = None,
        enable_azure_proxy: bool = False,
        authority: str | None = None,
        disable_instance_discovery: bool = False,
        additionally_allowed_tenants: list[str] | None = None,
        cache_persistence_options: TokenCachePersistenceOptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        retry_policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        http, proxy = configure(self, locals())
        if proxy is None:
            self._driver = AsyncDriver(
                client=http_client, transport=transport, client_options=http.client_options
            )
        else:
            self._driver = AsyncDriver(
                transport=proxy.async_transport(transport, http_client),
                client_options=proxy.client_options(type(self).__name__, http.client_options),
            )
