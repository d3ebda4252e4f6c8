"""The two drivers: the only code in :mod:`protocol` that performs I/O or sleeps.

:class:`SyncDriver` runs flows over an :class:`httpx.Client`, :class:`AsyncDriver` over an
:class:`httpx.AsyncClient`. Both do the same three things: send a yielded request (through the
process-wide discovery memo when the request asks for it), translate httpx failures into
:class:`~protocol.errors.TransportError` thrown into the flow, and sleep when the flow yields
:class:`~protocol.flows.Sleep`. They also run the local processes developer-tool flows yield
(:class:`~protocol.process.RunProcess`).

The default client is created on first use (an httpx client builds a TLS context, which costs
tens of milliseconds) with ``trust_env=True``, so ``HTTPS_PROXY``, ``NO_PROXY``, ``SSL_CERT_FILE``
and ``SSL_CERT_DIR`` are honoured. Callers may inject their own client or transport.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from .errors import TransportError, translate_transport_error
from .flows import Call, Flow, Sleep
from .memo import DISCOVERY_MEMO, ResponseMemo
from .process import ProcessError, RunProcess, run_process, run_process_async
from .wire import MEMOIZE

if TYPE_CHECKING:  # pragma: no cover - the sync path never loads asyncio
    pass

__all__ = ["DEFAULT_TIMEOUT", "AsyncDriver", "SyncDriver"]

T = TypeVar("T")

#: Connect within 10 s, and give each read/write 30 s: an authority that takes longer is down.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def _client_options(options: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, str]]:
    """Client keyword arguments with our defaults, and the extra headers to put on every request
    (``httpx.Client.send`` does not apply a client's default headers to a built request)."""
    merged: dict[str, Any] = {"timeout": DEFAULT_TIMEOUT, "trust_env": True}
    merged.update(options or {})
    headers = dict(merged.pop("headers", None) or {})
    return merged, headers


def _with_headers(request: httpx.Request, headers: Mapping[str, str]) -> httpx.Request:
    for name, value in headers.items():
        if name not in request.headers:
            request.headers[name] = value
    return request


class SyncDriver:
    """Runs flows with blocking I/O.

    Args:
        client: an ``httpx.Client`` to use (the caller keeps ownership and closes it).
        transport: an httpx transport for the client this driver creates (ignored with ``client``).
        sleep: the function that waits (injectable for tests).
        memo: the shared response memo for discovery documents.
        client_options: keyword arguments for the client this driver creates (``verify``,
            ``timeout``, ``proxy``, ``headers``...).
    """

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        memo: ResponseMemo = DISCOVERY_MEMO,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._client = client
        self._owns_client = client is None
        self._transport = transport
        self._sleep = sleep
        self._memo = memo
        self._client_options, self._headers = _client_options(client_options)
        self._client_lock = threading.Lock()

    def _http(self) -> httpx.Client:
        client = self._client
        if client is None:
            with self._client_lock:  # threads starting together must share one client
                client = self._client
                if client is None:
                    client = self._client = httpx.Client(transport=self._transport, **self._client_options)
        return client

    def _send_once(self, request: httpx.Request) -> httpx.Response:
        try:
            return self._http().send(_with_headers(request, self._headers))
        except httpx.RequestError as exc:
            raise translate_transport_error(exc, request) from exc

    def send(self, request: httpx.Request) -> httpx.Response:
        """Send one request; memoized GETs go through the shared memo."""
        if request.extensions.get(MEMOIZE):
            return self._memo.fetch(request, self._send_once)
        return self._send_once(request)

    def run(self, flow: Flow[T]) -> T:
        """Drive ``flow`` to completion and return its result (its exceptions propagate)."""
        try:
            step = next(flow)
            while True:
                if isinstance(step, Sleep):
                    self._sleep(step.seconds)
                    step = flow.send(None)
                    continue
                if isinstance(step, RunProcess):
                    try:
                        outcome = run_process(step)
                    except ProcessError as exc:
                        step = flow.throw(exc)
                    else:
                        step = flow.send(outcome)
                    continue
                if isinstance(step, Call):
                    try:
                        result = step.function()
                    except Exception as exc:  # handed to the flow, which decides what it means
                        step = flow.throw(exc)
                    else:
                        step = flow.send(result)
                    continue
                try:
                    response = self.send(step)
                except TransportError as exc:
                    step = flow.throw(exc)
                else:
                    step = flow.send(response)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        except BaseException:
            flow.close()  # interrupted (KeyboardInterrupt...): the flow's finally blocks run now
            raise

    def close(self) -> None:
        """Close the client this driver created (an injected client is left to its owner)."""
        if not self._owns_client:
            return
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


class AsyncDriver:
    """Runs flows with asyncio I/O; the event loop is never blocked.

    Same arguments as :class:`SyncDriver`, with an ``httpx.AsyncClient``, an async transport and an
    async ``sleep``. Connections belong to the event loop that opened them, so the driver keeps one
    client per running loop: a credential may serve several loops (one per thread, or successive
    ``asyncio.run`` calls). An injected client or transport is the caller's to share or not.
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        memo: ResponseMemo = DISCOVERY_MEMO,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._client = client
        self._owns_client = client is None
        self._transport = transport
        import asyncio  # loaded only by async users, who have it already

        self._asyncio = asyncio
        self._sleep = sleep or asyncio.sleep
        self._memo = memo
        self._client_options, self._headers = _client_options(client_options)
        self._loop_clients: weakref.WeakKeyDictionary[Any, httpx.AsyncClient] = weakref.WeakKeyDictionary()

    def _http(self) -> httpx.AsyncClient:
        if self._client is not None:
            return self._client
        loop = self._asyncio.get_running_loop()
        client = self._loop_clients.get(loop)
        if client is None:
            client = self._loop_clients[loop] = httpx.AsyncClient(
                transport=self._transport, **self._client_options
            )
        return client

    async def _send_once(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._http().send(_with_headers(request, self._headers))
        except httpx.RequestError as exc:
            raise translate_transport_error(exc, request) from exc

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send one request; memoized GETs go through the shared memo."""
        if request.extensions.get(MEMOIZE):
            return await self._memo.afetch(request, self._send_once)
        return await self._send_once(request)

    async def run(self, flow: Flow[T]) -> T:
        """Drive ``flow`` to completion and return its result (its exceptions propagate)."""
        try:
            step = next(flow)
            while True:
                if isinstance(step, Sleep):
                    await self._sleep(step.seconds)
                    step = flow.send(None)
                    continue
                if isinstance(step, RunProcess):
                    try:
                        outcome = await run_process_async(step)
                    except ProcessError as exc:
                        step = flow.throw(exc)
                    else:
                        step = flow.send(outcome)
                    continue
                if isinstance(step, Call):
                    try:
                        import asyncio  # loaded only by async users, who have it already

                        result = await asyncio.to_thread(step.function)
                    except Exception as exc:  # handed to the flow, which decides what it means
                        step = flow.throw(exc)
                    else:
                        step = flow.send(result)
                    continue
                try:
                    response = await self.send(step)
                except TransportError as exc:
                    step = flow.throw(exc)
                else:
                    step = flow.send(response)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        except BaseException:
            flow.close()  # cancelled: the flow's finally blocks (a loopback server...) run now
            raise

    async def close(self) -> None:
        """Close the client this driver created for the running loop (an injected client is left to
        its owner). A loop's client can only be closed on that loop: a credential shared by several
        loops should be closed (or used with ``async with``) in each. The driver stays usable: the
        next request opens a new client."""
        if not self._owns_client:
            return
        client = self._loop_clients.pop(self._asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
