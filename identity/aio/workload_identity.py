"""Async ``WorkloadIdentityCredential``: the same core as :mod:`identity.workload_identity`."""

from __future__ import annotations

from typing import Any

import httpx

from protocol.drivers import AsyncDriver
from protocol.retry import RetryPolicy

from ..persistence_options import TokenCachePersistenceOptions
from ..settings import attach_persistent_cache, constructor_options
from ..workload_identity import azure_proxy_from_environment, workload_identity_core
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
        http = constructor_options(self, locals())
        self._core = workload_identity_core(
            type(self).__name__,
            tenant_id=tenant_id,
            client_id=client_id,
            token_file_path=token_file_path,
            authority=authority,
            disable_instance_discovery=disable_instance_discovery,
            additionally_allowed_tenants=additionally_allowed_tenants,
            retry_policy=http.retry_policy,
        )
        attach_persistent_cache(self._core, http)
        custom = transport is not None or http_client is not None
        proxy = azure_proxy_from_environment(enable_azure_proxy, custom_transport=custom)
        if proxy is None:
            self._driver = AsyncDriver(
                client=http_client, transport=transport, client_options=http.client_options
            )
        else:
            self._driver = AsyncDriver(
                transport=proxy.async_transport(transport, http_client),
                client_options=proxy.client_options(type(self).__name__, http.client_options),
            )
