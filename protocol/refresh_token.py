"""Refresh token grant (RFC 6749 section 6).

``POST {token_endpoint}`` with ``grant_type=refresh_token``, ``client_id``, ``refresh_token``,
``scope`` (plus ``openid profile offline_access``), ``client_info=1``, optional ``claims`` and, for
confidential clients, the client's credentials. Entra usually returns a new refresh token
(rotation); the caller stores it in place of the old one.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from .client_auth import PUBLIC_CLIENT, ClientAuth
from .flows import Clock, Flow
from .responses import TokenResult, parse_token_response
from .retry import RetryPolicy
from .token_endpoint import build_token_request, request_token, user_scopes

__all__ = [
    "GRANT_TYPE",
    "build_refresh_token_request",
    "parse_refresh_token_response",
    "refresh_token_flow",
]

GRANT_TYPE = "refresh_token"


def build_refresh_token_request(
    token_endpoint: str,
    *,
    client_id: str,
    refresh_token: str,
    scopes: Iterable[str],
    now: float,
    client_auth: ClientAuth = PUBLIC_CLIENT,
    claims: str | None = None,
) -> httpx.Request:
    """The refresh token request."""
    if not refresh_token:
        raise ValueError("The refresh token is empty.")
    return build_token_request(
        token_endpoint,
        grant_type=GRANT_TYPE,
        client_id=client_id,
        client_auth=client_auth,
        now=now,
        fields={"refresh_token": refresh_token, "client_info": "1"},
        scopes=user_scopes(scopes),
        claims=claims,
    )


def parse_refresh_token_response(response: httpx.Response, *, requested_at: float) -> TokenResult:
    """Parse the response; ``refresh_token`` on the result is the rotated token when one was issued."""
    return parse_token_response(response, requested_at=requested_at)


def refresh_token_flow(
    token_endpoint: str,
    *,
    client_id: str,
    refresh_token: str,
    scopes: Iterable[str],
    policy: RetryPolicy,
    clock: Clock,
    client_auth: ClientAuth = PUBLIC_CLIENT,
    claims: str | None = None,
) -> Flow[TokenResult]:
    """Redeem a refresh token."""
    scope_list = list(scopes)
    return (
        yield from request_token(
            lambda now: build_refresh_token_request(
                token_endpoint,
                client_id=client_id,
                refresh_token=refresh_token,
                scopes=scope_list,
                now=now,
                client_auth=client_auth,
                claims=claims,
            ),
            policy=policy,
            clock=clock,
        )
    )
