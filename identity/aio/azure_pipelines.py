"""Async ``AzurePipelinesCredential``: the same core as :mod:`identity.azure_pipelines`, async driver."""

from __future__ import annotations

from typing import Any

import httpx

from protocol.drivers import AsyncDriver
from protocol.retry import RetryPolicy

from ..azure_pipelines import azure_pipelines_core
from ..persistence_options import TokenCachePersistenceOptions
from ..settings import attach_persistent_cache, constructor_options
from .credential import AsyncCredential

__all__ = ["AzurePipelinesCredential"]


class AzurePipelinesCredential(AsyncCredential):
    """Authenticates with Microsoft Entra Workload ID in Azure Pipelines (async).

    Arguments as :class:`identity.AzurePipelinesCredential`, with async ``transport`` and ``http_client``.
    """

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        service_connection_id: str,
        system_access_token: str,
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
        self._core = azure_pipelines_core(
            type(self).__name__,
            tenant_id=tenant_id,
            client_id=client_id,
            service_connection_id=service_connection_id,
            system_access_token=system_access_token,
            authority=authority,
            disable_instance_discovery=disable_instance_discovery,
            additionally_allowed_tenants=additionally_allowed_tenants,
            retry_policy=http.retry_policy,
        )
        attach_persistent_cache(self._core, http)
        self._driver = AsyncDriver(
            client=http_client, transport=transport, client_options=http.client_options
        )
