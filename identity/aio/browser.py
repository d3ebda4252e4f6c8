"""Async ``InteractiveBrowserCredential`` (azure-identity has none): the same session as
:mod:`identity.browser`, async driver; the browser and the loopback wait run in a worker thread, so
the event loop keeps serving other tasks while the user signs in."""

from __future__ import annotations

from typing import Any

import httpx

from protocol.drivers import AsyncDriver
from protocol.retry import RetryPolicy

from ..auth_record import AuthenticationRecord
from ..browser import browser_session
from ..persistence_options import TokenCachePersistenceOptions
from ..settings import attach_persistent_cache, constructor_options
from .user_credential import AsyncUserCredential

__all__ = ["InteractiveBrowserCredential"]


class InteractiveBrowserCredential(AsyncUserCredential):
    """Opens a browser to interactively authenticate a user (async).

    Arguments as :class:`identity.InteractiveBrowserCredential`, with an
    ``httpx.AsyncBaseTransport`` for ``transport`` and an ``httpx.AsyncClient`` for ``http_client``.
    """

    def __init__(
        self,
        *,
        tenant_id: str | None = None,
        client_id: str | None = None,
        authority: str | None = None,
        redirect_uri: str | None = None,
        login_hint: str | None = None,
        timeout: float | None = None,
        authentication_record: AuthenticationRecord | None = None,
        disable_automatic_authentication: bool = False,
        cache_persistence_options: TokenCachePersistenceOptions | None = None,
        disable_instance_discovery: bool = False,
        additionally_allowed_tenants: list[str] | None = None,
        enable_support_logging: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        retry_policy: RetryPolicy | None = None,
        _within_dac: bool = False,
        **kwargs: Any,
    ) -> None:
        http = constructor_options(self, locals())
        self._session = browser_session(
            type(self).__name__,
            client_id=client_id,
            tenant_id=tenant_id,
            authority=authority,
            redirect_uri=redirect_uri,
            login_hint=login_hint,
            timeout=timeout,
            authentication_record=authentication_record,
            disable_automatic_authentication=disable_automatic_authentication,
            disable_instance_discovery=disable_instance_discovery,
            additionally_allowed_tenants=additionally_allowed_tenants,
            retry_policy=http.retry_policy,
            within_dac=_within_dac,
        )
        self._core = self._session.core
        attach_persistent_cache(self._core, http)
        self._driver = AsyncDriver(
            client=http_client, transport=transport, client_options=http.client_options
        )
