"""``get_bearer_token_provider``: a callable that returns a bearer token string.

Each call asks the credential for a token; the credential's cache and proactive refresh decide
whether that costs a request (almost never). Unlike azure-identity's version, this does not build
an azure-core pipeline policy per provider, so it works without azure-core installed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["get_bearer_token_provider"]


def get_bearer_token_provider(credential: Any, *scopes: str) -> Callable[[], str]:
    """A callable returning a bearer token (without the ``Bearer `` prefix) for ``scopes``.

    Args:
        credential: any credential with ``get_token_info`` or ``get_token``.
        scopes: the scopes the tokens are for.

    Raises:
        ValueError: no scope was given.
    """
    if not scopes:
        raise ValueError("get_bearer_token_provider requires at least one scope")
    getter = getattr(credential, "get_token_info", None)

    def provider() -> str:
        if getter is not None:
            return str(getter(*scopes).token)
        return str(credential.get_token(*scopes).token)

    return provider
