"""Async ``AuthorizationCodeCredential``: the same session as :mod:`identity.authorization_code`."""

from __future__ import annotations

from typing import Any

import httpx

from protocol.drivers import AsyncDriver
from protocol.retry import RetryPolicy

from ..authorization_code import authorization_code_session
from ..persistence_options import TokenCachePersistenceOptions
from ..settings import attach_persistent_cache, constructor_options
from .credential import AsyncCredential

__all__ = ["AuthorizationCodeCredential"]


class AuthorizationCodeCredential(AsyncCredential):
    """Authenticates by redeeming an authorization code (async).

    Arguments as :class:`identity.AuthorizationCodeCredential`, with an ``httpx.AsyncBaseTransport``
    for ``transport`` and an ``httpx.AsyncClient`` for ``http_client``.
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        authorization_code: str,
        redirect_uri: str,
        *,
        client_secret: str | None = None,
        code_verifier: str | None = None,
        authority: str | None = None,
        additionally_allowed_tenants: list[str] | None = None,
        cache_persistence_options: TokenCachePersistenceOptions | None = None,
        disable_instance_discovery: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        retry_policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        http = constructor_options(self, locals())
        self._session = authorization_code_session(
            type(self).__name__,
            tenant_id,
            client_id,
            authorization_code,
            redirect_uri,
            client_secret=client_secret,
            code_verifier=code_verifier,
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
