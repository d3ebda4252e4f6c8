"""Async ``OnBehalfOfCredential``: the same core as :mod:`identity.on_behalf_of`, async driver."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from protocol.drivers import AsyncDriver
from protocol.retry import RetryPolicy

from ..on_behalf_of import on_behalf_of_core
from ..persistence_options import TokenCachePersistenceOptions
from ..settings import attach_persistent_cache, constructor_options
from .credential import AsyncCredential

__all__ = ["OnBehalfOfCredential"]


class OnBehalfOfCredential(AsyncCredential):
    """Authenticates a service principal on behalf of a user (async).

    Arguments as :class:`identity.OnBehalfOfCredential` (including ``send_certificate_chain``), with
    async ``transport`` and ``http_client``.
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        *,
        user_assertion: str,
        client_secret: str | None = None,
        client_certificate: bytes | None = None,
        password: str | bytes | None = None,
        client_assertion_func: Callable[[], str] | None = None,
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
        self._core = on_behalf_of_core(
            type(self).__name__,
            tenant_id,
            client_id,
            user_assertion=user_assertion,
            client_secret=client_secret,
            client_certificate=client_certificate,
            password=password,
            client_assertion_func=client_assertion_func,
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
