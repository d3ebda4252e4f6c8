"""Async ``ManagedIdentityCredential``: the setup of :mod:`identity.managed_identity`, awaited."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping
from typing import Any

import httpx

from protocol.drivers import AsyncDriver
from protocol.retry import RetryPolicy

from ..managed_identity import ManagedIdentitySetup, client_options, configure
from .credential import AsyncCredential

__all__ = ["ManagedIdentityCredential"]


class ManagedIdentityCredential(AsyncCredential):
    """Authenticates with an Azure managed identity (async).

    Arguments as :class:`identity.ManagedIdentityCredential`, with async ``transport`` and ``http_client``.
    """

    _setup: ManagedIdentitySetup
    _delegate: Any  # the workload identity credential, when that is the source

    def __init__(
        self,
        *,
        client_id: str | None = None,
        identity_config: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        retry_policy: RetryPolicy | None = None,
        _enable_imds_probe: bool | None = None,
        _exclude_workload_identity_credential: bool = False,
        _within_dac: bool = False,
        **kwargs: Any,
    ) -> None:
        http, setup = configure(self, locals(), _workload_identity_class)
        if transport is None and http_client is None and setup.settings.kind == "service_fabric":
            transport = _pinned(setup)
        self._driver = AsyncDriver(
            client=http_client,
            transport=transport,
            client_options=client_options(setup.settings, http.client_options),
        )

    async def close(self) -> None:
        if self._delegate is not None:
            await self._delegate.close()
        await super().close()


def _workload_identity_class() -> Any:
    from .workload_identity import WorkloadIdentityCredential

    return WorkloadIdentityCredential


class _PinnedPerLoop(httpx.AsyncBaseTransport):
    """A pinned transport for each running event loop.

    The driver opens one client per loop, but a transport handed to it is shared by all of them,
    and a connection pool belongs to the loop that opened its connections: a second loop (another
    thread, a later ``asyncio.run``) must not reuse them.
    """

    def __init__(self, thumbprint: str) -> None:
        from protocol.managed_identity.pinning import normalize_thumbprint

        self._thumbprint = normalize_thumbprint(thumbprint)
        self._transports: weakref.WeakKeyDictionary[Any, httpx.AsyncHTTPTransport]
        self._transports = weakref.WeakKeyDictionary()

    def _current(self) -> httpx.AsyncHTTPTransport:
        from protocol.managed_identity.pinning import pinned_async_transport

        loop = asyncio.get_running_loop()
        transport = self._transports.get(loop)
        if transport is None:
            transport = self._transports[loop] = pinned_async_transport(self._thumbprint)
        return transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._current().handle_async_request(request)

    async def aclose(self) -> None:
        transport = self._transports.pop(asyncio.get_running_loop(), None)
        if transport is not None:
            await transport.aclose()


def _pinned(setup: ManagedIdentitySetup) -> httpx.AsyncBaseTransport | None:
    try:
        return _PinnedPerLoop(setup.settings.thumbprint)
    except ValueError:
        return None  # the core reports the bad thumbprint at get_token
