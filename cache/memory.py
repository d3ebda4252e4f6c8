"""The in-memory access-token store: explicit keys, immutable entries, O(1) lookups.

Key (:class:`CacheKey`), every field explicit:

====================  ===============================================================
``kind``              what the entry is (``"access_token"``)
``environment``       authority host (and port), lower-cased: tokens of two clouds never mix
``tenant``            the tenant the token was issued for (the resolved, per-call tenant)
``client_id``         the application
``account``           the user's home account id, ``None`` for app-only tokens
``scopes``            the requested scopes, sorted and de-duplicated
``cae``               whether the token was requested with the CAE capability (``cp1``)
====================  ===============================================================

CAE and non-CAE tokens therefore live in separate partitions: a token that asked for ``cp1`` is
never handed to a caller that did not, and the reverse.

Freshness (:func:`freshness`) is a pure function of (entry, now):

* ``EXPIRED``: fewer than :data:`EXPIRY_MARGIN` (300 s) seconds left; must not be served;
* ``STALE``: ``refresh_on`` has passed (and no refresh attempt is deferred); serve it, but try to
  refresh first;
* ``FRESH``: serve it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import Enum

__all__ = [
    "ACCESS_TOKEN",
    "EXPIRY_MARGIN",
    "REFRESH_RETRY_DELAY",
    "AccessTokenEntry",
    "CacheKey",
    "Freshness",
    "MemoryTokenCache",
    "fresh_until",
    "freshness",
]

ACCESS_TOKEN = "access_token"
#: A token with fewer seconds than this left is treated as expired (clock skew, request time).
EXPIRY_MARGIN = 300
#: After a failed proactive refresh, the next attempt waits this long.
REFRESH_RETRY_DELAY = 30


@dataclass(frozen=True, slots=True)
class CacheKey:
    """Identifies one cached access token (see the module docstring for each field)."""

    kind: str
    environment: str
    tenant: str
    client_id: str
    account: str | None
    scopes: tuple[str, ...]
    cae: bool

    @classmethod
    def for_access_token(
        cls,
        *,
        environment: str,
        tenant: str,
        client_id: str,
        scopes: Iterable[str],
        cae: bool,
        account: str | None = None,
    ) -> CacheKey:
        return cls(
            kind=ACCESS_TOKEN,
            environment=environment.lower(),
            tenant=tenant,
            client_id=client_id,
            account=account,
            scopes=tuple(sorted(set(scopes))),
            cae=cae,
        )


@dataclass(frozen=True, slots=True)
class AccessTokenEntry:
    """A cached access token. The token value is kept out of ``repr``.

    Attributes:
        token: the access token.
        token_type: usually ``"Bearer"``.
        expires_on: epoch seconds, computed from the clock reading taken before the request.
        refresh_on: epoch seconds after which a proactive refresh is due, if any.
        refresh_deferred_until: epoch seconds before which no new proactive refresh is tried
            (set after a failed one).
    """

    token: str = field(repr=False)
    token_type: str
    expires_on: int
    refresh_on: int | None = None
    refresh_deferred_until: float = 0.0

    def deferred(self, now: float) -> AccessTokenEntry:
        """The same entry with proactive refresh paused for :data:`REFRESH_RETRY_DELAY` seconds."""
        return replace(self, refresh_deferred_until=now + REFRESH_RETRY_DELAY)


class Freshness(Enum):
    FRESH = "fresh"
    STALE = "stale"
    EXPIRED = "expired"


def freshness(entry: AccessTokenEntry, now: float) -> Freshness:
    """Classify ``entry`` at time ``now`` (epoch seconds)."""
    if now >= entry.expires_on - EXPIRY_MARGIN:
        return Freshness.EXPIRED
    if entry.refresh_on is not None and now >= entry.refresh_on and now >= entry.refresh_deferred_until:
        return Freshness.STALE
    return Freshness.FRESH


def fresh_until(entry: AccessTokenEntry) -> float:
    """The moment ``entry`` stops being FRESH: ``freshness(entry, now)`` is FRESH for every ``now``
    before it (and not at or after it). Lets a caller cache the verdict and skip recomputing it."""
    limit = float(entry.expires_on - EXPIRY_MARGIN)
    if entry.refresh_on is not None:
        limit = min(limit, max(float(entry.refresh_on), entry.refresh_deferred_until))
    return limit


class MemoryTokenCache:
    """A dictionary of access tokens; lookups cost the same with 1 or 100,000 entries.

    Entries are immutable and replaced whole, so readers never see a half-written entry; writers
    are serialised by a lock.
    """

    def __init__(self) -> None:
        self._entries: dict[CacheKey, AccessTokenEntry] = {}
        self._lock = threading.Lock()

    def get(self, key: CacheKey) -> AccessTokenEntry | None:
        return self._entries.get(key)

    def put(self, key: CacheKey, entry: AccessTokenEntry) -> None:
        with self._lock:
            self._entries[key] = entry

    def remove(self, key: CacheKey) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"MemoryTokenCache(entries={len(self._entries)})"
