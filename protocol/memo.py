"""Process-wide sharing of discovery responses, fetched once even under concurrency.

Discovery documents (instance discovery, OpenID metadata) are the same for every credential that
uses an authority, so a process fetches each URL once: the first caller sends the request while
concurrent callers for the same URL wait for it (threads on a :class:`threading.Lock`, asyncio
tasks on an :class:`asyncio.Lock` of their own event loop), then all read the shared response.
Only successful (2xx) responses are kept, for ``ttl`` seconds; failures are never shared, so the
next caller tries again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from .single_flight import KeyedLocks

__all__ = ["DISCOVERY_MEMO", "ResponseMemo"]


@dataclass(frozen=True, slots=True)
class _Entry:
    response: httpx.Response
    stored_at: float


class ResponseMemo:
    """Single-flight memo of successful GET responses, keyed by URL."""

    def __init__(self, *, ttl: float = 24 * 3600.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._monotonic = monotonic
        self._entries: dict[str, _Entry] = {}
        self._guard = threading.Lock()
        self._locks: KeyedLocks[str] = KeyedLocks()

    def get(self, key: str) -> httpx.Response | None:
        """The shared response for ``key`` if one is stored and not older than ``ttl``."""
        entry = self._entries.get(key)
        if entry is None or self._monotonic() - entry.stored_at > self._ttl:
            return None
        return entry.response

    def _store(self, key: str, response: httpx.Response) -> None:
        if 200 <= response.status_code < 300:
            self._entries[key] = _Entry(response, self._monotonic())

    def clear(self) -> None:
        """Forget every stored response (tests; a process that changed its network setup)."""
        with self._guard:
            self._entries.clear()

    def fetch(
        self, request: httpx.Request, send: Callable[[httpx.Request], httpx.Response]
    ) -> httpx.Response:
        """Return the shared response for ``request``'s URL, sending it at most once at a time."""
        key = str(request.url)
        hit = self.get(key)
        if hit is not None:
            return hit
        with self._locks.thread_lock(key):
            hit = self.get(key)
            if hit is not None:
                return hit
            response = send(request)
            self._store(key, response)
            return response

    async def afetch(
        self, request: httpx.Request, send: Callable[[httpx.Request], Awaitable[httpx.Response]]
    ) -> httpx.Response:
        """Async twin of :meth:`fetch`; waiters never block the event loop."""
        key = str(request.url)
        hit = self.get(key)
        if hit is not None:
            return hit
        async with self._locks.task_lock(key):
            hit = self.get(key)
            if hit is not None:
                return hit
            response = await send(request)
            self._store(key, response)
            return response


#: The memo every driver uses for requests built with ``memoize=True``.
DISCOVERY_MEMO = ResponseMemo()
