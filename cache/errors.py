"""Errors of the persistent token cache, one class per cause.

::

    TokenCacheError                       anything the persistent cache raises
    ├── PersistenceUnavailableError       (also ValueError) no usable encryption and no opt-in
    │                                     to plaintext; raised when the cache is opened
    ├── UnsafeCachePathError              a link (or anything but a regular file / directory of
    │                                     ours) where a cache, temporary or lock file must be
    ├── CacheLockTimeoutError             (also TimeoutError) another process held the cache's
    │                                     lock file for longer than the bounded wait
    └── CacheStorageError                 the operating system refused a read or write
                                          (permissions, disk full, ...); ``__cause__`` is the
                                          ``OSError``

A malformed or undecryptable document is *not* an error: it reads as an empty cache and is logged
once at WARNING (a cache can always be rebuilt by signing in again; a crash cannot be worked
around by the user). ``OSError`` and the keyring's exceptions are translated here, once, at the
boundary, with ``from exc``.
"""

from __future__ import annotations

__all__ = [
    "CacheLockTimeoutError",
    "CacheStorageError",
    "PersistenceUnavailableError",
    "TokenCacheError",
    "UnsafeCachePathError",
]


class TokenCacheError(Exception):
    """Base class of every error the persistent token cache raises."""


class PersistenceUnavailableError(TokenCacheError, ValueError):
    """The cache cannot be encrypted here and plaintext storage was not allowed.

    A ``ValueError`` like azure-identity's (which raises ``ValueError`` when libsecret is unusable
    and ``allow_unencrypted_storage`` is False). The message says what is missing and how to opt
    in to plaintext storage.

    Args:
        reason: what is missing or failed (also kept as :attr:`reason`).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"Cannot encrypt the token cache: {reason}. To store the token cache unencrypted instead "
            "(a file only you can read), pass TokenCachePersistenceOptions(allow_unencrypted_storage=True)."
        )
        self.reason = reason


class UnsafeCachePathError(TokenCacheError):
    """A cache path is a symbolic link, or not a regular file (or directory), or not ours."""


class CacheLockTimeoutError(TokenCacheError, TimeoutError):
    """The cache's lock file stayed held by another process for the whole bounded wait."""


class CacheStorageError(TokenCacheError):
    """Reading or writing a cache file failed; the ``OSError`` is the ``__cause__``."""
