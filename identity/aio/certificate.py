"""Async ``CertificateCredential``: the same core as :mod:`identity.certificate`, async driver."""

from __future__ import annotations

from typing import Any

import httpx

from protocol.drivers import AsyncDriver
from protocol.retry import RetryPolicy

from ..certificate import certificate_core
from ..persistence_options import TokenCachePersistenceOptions
from ..settings import attach_persistent_cache, constructor_options
from .credential import AsyncCredential

__all__ = ["CertificateCredential"]


class CertificateCredential(AsyncCredential):
    """Authenticates as a service principal using a certificate (async).

    Arguments as :class:`identity.CertificateCredential` (including ``send_certificate_chain``, which
    azure-identity's async class ignores), with async ``transport`` and ``http_client``.
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        certificate_path: str | None = None,
        *,
        certificate_data: bytes | None = None,
        password: str | bytes | None = None,
        send_certificate_chain: bool = False,
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
        self._core = certificate_core(
            type(self).__name__,
            tenant_id,
            client_id,
            certificate_path=certificate_path,
            certificate_data=certificate_data,
            password=password,
            send_certificate_chain=send_certificate_chain,
            authority=authority,
            disable_instance_discovery=disable_instance_discovery,
            additionally_allowed_tenants=additionally_allowed_tenants,
            retry_policy=http.retry_policy,
        )
        attach_persistent_cache(self._core, http)
        self._driver = AsyncDriver(
            client=http_client, transport=transport, client_options=http.client_options
        )
