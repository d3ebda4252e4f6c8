"""Async ``UsernamePasswordCredential`` (azure-identity has none; deprecated like the sync class)."""

from __future__ import annotations

from typing import Any

import httpx

from protocol.drivers import AsyncDriver
from protocol.retry import RetryPolicy

from ..persistence_options import TokenCachePersistenceOptions
from ..settings import attach_persistent_cache, constructor_options
from ..username_password import username_password_session
from .user_credential import AsyncUserCredential

__all__ = ["UsernamePasswordCredential"]


class UsernamePasswordCredential(AsyncUserCredential):
    """Authenticates a user with a username and password (async; deprecated: no MFA).

    Arguments as :class:`identity.UsernamePasswordCredential`, with an ``httpx.AsyncBaseTransport``
    for ``transport`` and an ``httpx.AsyncClient`` for ``http_client``.
    """

    def __init__(
        self,
        client_id: str,
        username: str,
        password: str,
        *,
        tenant_id: str | None = None,
        authority: str | None = None,
        additionally_allowed_tenants: list[str] | None = None,
        cache_persistence_options: TokenCachePersistenceOptions | None = None,
        disable_instance_discovery: bool = False,
        enable_support_logging: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        retry_policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("authentication_record", None)  # azure-identity 1.27 discards it too
        http = constructor_options(self, locals())
        self._session = username_password_session(
            type(self).__name__,
            client_id,
            username,
            password,
            tenant_id=tenant_id,
            authority=authority,
            disable_instance_discovery=disable_instance_discovery,
            additionally_allowed_tenants=additionally_allowed_tenants,
            retry_policy=http.retry_policy,
        )
        self._core = self._session.core
        attach_persistent_cache(self._core, http)
        self._driver = AsyncDriver(
            client=http_client, transport=transport, client_options=http.client_options
        )
