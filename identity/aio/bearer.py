"""Async ``get_bearer_token_provider`` (see :mod:`identity.bearer`)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["get_bearer_token_provider"]


def get_bearer_token_provider(credential: Any, *scopes: str) -> Callable[[], Coroutine[Any, Any, str]]:
    """A callable returning a coroutine that yields a bearer token for ``scopes``.

    Raises:
        ValueError: no scope was given.
    """
    if not scopes:
        raise ValueError("get_bearer_token_provider requires at least one scope")
    getter = getattr(credential, "get_token_info", None)

    async def provider() -> str:
        if getter is not None:
            return str((await getter(*scopes)).token)
        return str((await credential.get_token(*scopes)).token)

    return provider
