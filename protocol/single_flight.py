"""Per-key locks for single-flight work, usable from threads and from asyncio tasks.

Tasks of one loop queue on the loop's :class:`asyncio.Lock`; the one at the head then takes the
key's :class:`threading.Lock` too (:func:`acquire_from_loop`), so tasks of *different* loops (and
threads) are also serialised per key without blocking any loop.

``KeyedLocks`` hands out one :class:`threading.Lock` per key for threads, and one
:class:`asyncio.Lock` per key *per event loop* for tasks (an asyncio lock belongs to the loop it is
first used on, so a credential used from several loops gets a lock set for each). Waiting on the
asyncio lock never blocks the loop.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    import asyncio

__all__ = ["KeyedLocks", "acquire_from_loop"]

K = TypeVar("K", bound=Hashable)


class KeyedLocks(Generic[K]):
    """One lock per key, created on first use."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._thread_locks: dict[K, threading.Lock] = {}
        self._loop_locks: weakref.WeakKeyDictionary[Any, dict[K, asyncio.Lock]] = weakref.WeakKeyDictionary()
        self._loop_events: weakref.WeakKeyDictionary[Any, dict[K, asyncio.Event]] = (
            weakref.WeakKeyDictionary()
        )

    def thread_lock(self, key: K) -> threading.Lock:
        """The lock threads use for ``key``."""
        lock = self._thread_locks.get(key)
        if lock is None:
            with self._guard:
                lock = self._thread_locks.setdefault(key, threading.Lock())
        return lock

    def task_event(self, key: K) -> asyncio.Event:
        """Set whenever the holder of ``key``'s task lock finishes (all waiters wake at once)."""
        return _loop_event(self, key)

    def task_lock(self, key: K) -> asyncio.Lock:
        """The lock tasks of the running event loop use for ``key``."""
        import asyncio  # a caller on an event loop has loaded asyncio already: this is a lookup

        loop = asyncio.get_running_loop()
        with self._guard:
            locks = self._loop_locks.get(loop)
            if locks is None:
                locks = self._loop_locks[loop] = {}
            lock = locks.get(key)
            if lock is None:
                lock = locks[key] = asyncio.Lock()
        return lock


async def acquire_from_loop(lock: threading.Lock) -> None:
    """Acquire a :class:`threading.Lock` from a coroutine without blocking the event loop.

    Uncontended, it is taken at once. Otherwise a worker thread waits for it; if the waiting task is
    cancelled, the lock is released as soon as the worker gets it, so it is never left held.
    """
    import asyncio

    if lock.acquire(blocking=False):
        return
    waiter = asyncio.get_running_loop().run_in_executor(None, lock.acquire)
    try:
        await asyncio.shield(waiter)
    except asyncio.CancelledError:
        waiter.add_done_callback(lambda _: lock.release())
        raise


def _loop_event(registry: KeyedLocks[Any], key: Any) -> asyncio.Event:
    import asyncio

    loop = asyncio.get_running_loop()
    with registry._guard:
        events = registry._loop_events.get(loop)
        if events is None:
            events = registry._loop_events[loop] = {}
        event = events.get(key)
        if event is None:
            event = events[key] = asyncio.Event()
    return event
