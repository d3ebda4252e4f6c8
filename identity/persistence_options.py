"""``TokenCachePersistenceOptions``: how a credential's token cache persists across processes.

Validated here; the persistent stores themselves live in :mod:`cache` (a later issue). ``name`` is
the prefix of the cache's files (``<name>.nocae`` and ``<name>.cae``), so it must be a safe file-name
component.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["TokenCachePersistenceOptions"]

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class TokenCachePersistenceOptions:
    """Options for persistent token caching.

    Keyword Args:
        allow_unencrypted_storage: fall back to a plaintext file (mode 0600) when no encryption key
            store is available. Default ``False``: without one, persistence is refused.
        name: the cache's name, a prefix isolating it from other applications' caches. Letters,
            digits, ``.``, ``_`` and ``-`` (up to 128 characters, not starting with ``.``).

    Raises:
        ValueError: ``name`` is not a safe file-name component.
        TypeError: ``allow_unencrypted_storage`` is not a bool.
    """

    __slots__ = ("allow_unencrypted_storage", "name")

    def __init__(
        self, *, allow_unencrypted_storage: bool = False, name: str = "msal.cache", **kwargs: Any
    ) -> None:
        if not isinstance(allow_unencrypted_storage, bool):
            raise TypeError("allow_unencrypted_storage must be True or False")
        if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or name in (".", ".."):
            raise ValueError(
                f"Invalid token cache name {name!r}: use letters, digits, '.', '_' and '-' (up to 128 "
                "characters, starting with a letter or digit); it names files in the cache directory."
            )
        self.allow_unencrypted_storage = allow_unencrypted_storage
        self.name = name

    def __repr__(self) -> str:
        return (
            f"TokenCachePersistenceOptions(allow_unencrypted_storage={self.allow_unencrypted_storage}, "
            f"name={self.name!r})"
        )
