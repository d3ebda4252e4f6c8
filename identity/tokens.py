"""Token value types: azure-core's when it is installed, structurally identical ones otherwise.

* ``AccessToken``: a named tuple ``(token, expires_on)``; ``expires_on`` is Unix seconds.
* ``AccessTokenInfo``: ``token``, ``expires_on``, and keyword-only ``token_type`` (``"Bearer"``) and
  ``refresh_on`` (Unix seconds or ``None``).
* ``TokenRequestOptions``: the ``options`` mapping of ``get_token_info`` (``claims``,
  ``tenant_id``, ``enable_cae``).

Our own classes keep the token out of ``repr``; azure-core's (used when it is installed) show it,
so never log a token object.
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypedDict

__all__ = ["AccessToken", "AccessTokenInfo", "TokenRequestOptions"]

try:
    from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions
except ImportError:  # azure-core is optional

    class AccessToken(NamedTuple):  # type: ignore[no-redef]
        """An access token and its expiry (Unix seconds)."""

        token: str
        expires_on: int

        def __repr__(self) -> str:  # the token value stays out of logs and tracebacks
            return f"AccessToken(token='***', expires_on={self.expires_on})"

    class AccessTokenInfo:  # type: ignore[no-redef]
        """An access token with its type and refresh time."""

        __slots__ = ("expires_on", "refresh_on", "token", "token_type")

        def __init__(
            self, token: str, expires_on: int, *, token_type: str = "Bearer", refresh_on: int | None = None
        ) -> None:
            self.token = token
            self.expires_on = expires_on
            self.token_type = token_type
            self.refresh_on = refresh_on

        def __repr__(self) -> str:
            return (
                f"AccessTokenInfo(token='***', expires_on={self.expires_on}, "
                f"token_type='{self.token_type}', refresh_on={self.refresh_on})"
            )

        def __eq__(self, other: Any) -> bool:
            if not isinstance(other, AccessTokenInfo):
                return NotImplemented
            return (self.token, self.expires_on, self.token_type, self.refresh_on) == (
                other.token,
                other.expires_on,
                other.token_type,
                other.refresh_on,
            )

        __hash__ = None  # type: ignore[assignment]

    class TokenRequestOptions(TypedDict, total=False):  # type: ignore[no-redef]
        """Options of ``get_token_info``."""

        claims: str
        tenant_id: str
        enable_cae: bool
