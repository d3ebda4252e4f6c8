"""The access-token store protocol: what a credential core needs from a cache.

:class:`~cache.memory.MemoryTokenCache` and :class:`~cache.persistent.PersistentTokenCache` both
satisfy it, so a core typed against it takes either.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from cache.memory import AccessTokenEntry, CacheKey

__all__ = ["AccessTokenStore"]


@runtime_checkable
class AccessTokenStore(Protocol):
    """Access tokens by :class:`~cache.memory.CacheKey`; ``get`` is a dictionary probe.

    ``get`` may return the very entry object given to ``put`` (both stores do), which lets a caller
    compare identities to learn whether a token was replaced meanwhile. The persistent store may
    raise :class:`~cache.errors.TokenCacheError` subclasses from any method (see
    :mod:`cache.errors`); the memory store raises nothing.
    """

    def get(self, key: CacheKey) -> AccessTokenEntry | None: ...

    def put(self, key: CacheKey, entry: AccessTokenEntry) -> None: ...

    def remove(self, key: CacheKey) -> None: ...

    def clear(self) -> None: ...

    def __len__(self) -> int: ...
