"""In-process mounts of a request handler: an ``httpx.MockTransport`` or a respx route.

Both hand every request to a handler ``httpx.Request -> httpx.Response`` (usually
:meth:`conformance.authority.MockAuthority.handle`), so the in-process and HTTPS mounts run the
same logic. A handler signals a network failure by raising an ``httpx.TransportError``, which
reaches the client exactly as a real transport's error would.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:  # pragma: no cover - respx is a test dependency, imported by route_to's caller
    import respx

Handler = Callable[[httpx.Request], httpx.Response]
AsyncHandler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class _DualTransport(httpx.MockTransport):
    """A ``MockTransport`` whose async path may use its own coroutine handler.

    ``httpx.MockTransport`` calls the same handler for sync and async clients; a handler that sleeps
    (the latency fault) would then block the event loop. With ``async_handler`` the async client
    awaits a coroutine instead.
    """

    def __init__(self, handler: Handler, async_handler: AsyncHandler | None) -> None:
        super().__init__(handler)
        self._async_handler = async_handler

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._async_handler is None:
            return await super().handle_async_request(request)
        await request.aread()
        response = await self._async_handler(request)
        await response.aread()
        return response


def mock_transport(handler: Handler, *, async_handler: AsyncHandler | None = None) -> httpx.MockTransport:
    """A transport for ``httpx.Client`` and ``httpx.AsyncClient`` that answers with ``handler``.

    ``async_handler``, when given, serves async clients (same logic, non-blocking waits).
    """
    return _DualTransport(handler, async_handler)


def route_to(router: respx.Router, handler: Handler, *, base_url: str) -> None:
    """Route every request under ``base_url`` (scheme, host, port and path prefix) to ``handler``.

    Requests outside ``base_url`` stay unmatched, so a router with ``assert_all_mocked`` (respx's
    default) still fails them. ``https://login.microsoftonline.com`` does not match
    ``https://login.microsoftonline.com.evil.example``: the host is compared whole.
    """
    url = httpx.URL(base_url)
    if not url.scheme or not url.host:
        raise ValueError(f"base_url must be absolute, got {base_url!r}")
    prefix = url.path.rstrip("/")
    default_port = {"http": 80, "https": 443}.get(url.scheme)
    patterns: dict[str, object] = {"scheme": url.scheme, "host": url.host, "port": url.port or default_port}
    if prefix:
        # a path prefix matches itself and what lies below it, never "/prefixmore"
        patterns["path__regex"] = rf"^{re.escape(prefix)}(/.*)?$"
    router.route(**patterns).mock(side_effect=handler)  # type: ignore[arg-type]
