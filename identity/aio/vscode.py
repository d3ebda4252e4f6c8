"""Async ``VisualStudioCodeCredential``: the same session as :mod:`identity.vscode`."""

from __future__ import annotations

from typing import Any

import httpx

from protocol.drivers import AsyncDriver
from protocol.retry import RetryPolicy

from ..settings import constructor_options
from ..vscode import vscode_session
from .credential import AsyncCredential

__all__ = ["VisualStudioCodeCredential"]


class VisualStudioCodeCredential(AsyncCredential):
    """Authenticates as the user signed in to VS Code's Azure Resources extension (async).

    Arguments as :class:`identity.VisualStudioCodeCredential`, with an ``httpx.AsyncBaseTransport``
    for ``transport`` and an ``httpx.AsyncClient`` for ``http_client``.
    """

    def __init__(
        self,
        *,
        tenant_id: str | None = None,
        additionally_allowed_tenants: list[str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        retry_policy: RetryPolicy | None = None,
        _within_dac: bool = False,
        **kwargs: Any,
    ) -> None:
        http = constructor_options(self, locals())
        self._session = vscode_session(
            type(self).__name__,
            tenant_id=tenant_id,
            additionally_allowed_tenants=additionally_allowed_tenants,
            retry_policy=http.retry_policy,
            within_dac=_within_dac,
        )
        self._core = self._session.core
        self._driver = AsyncDriver(
            client=http_client, transport=transport, client_options=http.client_options
        )
