"""Per-key locks for single-flight work, usable from threads and from asyncio tasks.

``KeyedLocks`` hands out one :class:`threading.Lock` per key for threads, and one
:class:`asyncio.Lock` per key *per event loop* for tasks (an asyncio lock belongs to the loop it is
first used on, so a credential used from several loops gets a lock set for each). Waiting on the
asyncio lock never blocks the loop.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["KeyedLocks"]

K = TypeVar("K", bound=Hashable)


class KeyedLocks(Generic[K]):
    """One lock per key, created on first use."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._thread_locks: dict[K, threading.Lock] = {}
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[K, asyncio.Lock]] = (
            weakref.WeakKeyDictionary()
        )

    def thread_lock(self, key: K) -> threading.Lock:
        """The lock threads use for ``key``."""
        lock = self._thread_locks.get(key)
        if lock is None:
            with self._guard:
                lock = self._thread_locks.setdefault(key, threading.Lock())
        return lock

    def task_lock(self, key: K) -> asyncio.Lock:
        """The lock tasks of the running event loop use for ``key``."""
        loop = asyncio.get_running_loop()
        with self._guard:
            locks = self._loop_locks.get(loop)
            if locks is None:
                locks = self._loop_locks[loop] = {}
            lock = locks.get(key)
            if lock is None:
                lock = locks[key] = asyncio.Lock()
        return lock
