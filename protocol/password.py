"""Resource owner password credentials grant (RFC 6749 section 4.3; Microsoft Learn "v2-oauth-ropc").

``grant_type=password``, ``username``, ``password``, ``scope`` (plus ``openid profile
offline_access``), ``client_id``, ``client_info=1``, optional ``claims``; confidential clients add
their credentials. Entra routes the request by ``X-AnchorMailbox: upn:{username}``. Not usable for
accounts with MFA, personal Microsoft accounts or federated users; deprecated by Microsoft.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from .client_auth import PUBLIC_CLIENT, ClientAuth
from .flows import Clock, Flow
from .responses import TokenResult, parse_token_response
from .retry import RetryPolicy
from .token_endpoint import build_token_request, request_token, user_scopes

__all__ = ["GRANT_TYPE", "build_password_request", "parse_password_response", "password_flow"]

GRANT_TYPE = "password"


def build_password_request(
    token_endpoint: str,
    *,
    client_id: str,
    username: str,
    password: str,
    scopes: Iterable[str],
    now: float,
    client_auth: ClientAuth = PUBLIC_CLIENT,
    claims: str | None = None,
) -> httpx.Request:
    """The password grant request."""
    if not username or not password:
        raise ValueError("Both a username and a password are required.")
    return build_token_request(
        token_endpoint,
        grant_type=GRANT_TYPE,
        client_id=client_id,
        client_auth=client_auth,
        now=now,
        fields={"username": username, "password": password, "client_info": "1"},
        scopes=user_scopes(scopes),
        claims=claims,
        headers={"X-AnchorMailbox": f"upn:{username}"},
    )


def parse_password_response(response: httpx.Response, *, requested_at: float) -> TokenResult:
    """Parse the response (see :func:`protocol.responses.parse_token_response`)."""
    return parse_token_response(response, requested_at=requested_at)


def password_flow(
    token_endpoint: str,
    *,
    client_id: str,
    username: str,
    password: str,
    scopes: Iterable[str],
    policy: RetryPolicy,
    clock: Clock,
    client_auth: ClientAuth = PUBLIC_CLIENT,
    claims: str | None = None,
) -> Flow[TokenResult]:
    """Request a user token with a username and password."""
    scope_list = list(scopes)
    return (
        yield from request_token(
            lambda now: build_password_request(
                token_endpoint,
                client_id=client_id,
                username=username,
                password=password,
                scopes=scope_list,
                now=now,
                client_auth=client_auth,
                claims=claims,
            ),
            policy=policy,
            clock=clock,
        )
    )
