"""On-behalf-of grant (RFC 7523 section 2.1 as profiled by Microsoft Learn "v2-oauth2-on-behalf-of-flow").

A middle tier exchanges the access token it received (``assertion``) for a token to a downstream
API: ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``,
``requested_token_use=on_behalf_of``, ``assertion``, ``scope``, ``client_id``, ``client_info=1``,
optional ``claims`` and the middle tier's own client credentials. This is the JWT bearer grant, not
RFC 8693 token exchange.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from .client_auth import ClientAuth
from .flows import Clock, Flow
from .responses import TokenResult, parse_token_response
from .retry import RetryPolicy
from .token_endpoint import build_token_request, request_token, user_scopes

__all__ = [
    "GRANT_TYPE",
    "build_on_behalf_of_request",
    "on_behalf_of_flow",
    "parse_on_behalf_of_response",
]

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def build_on_behalf_of_request(
    token_endpoint: str,
    *,
    client_id: str,
    user_assertion: str,
    scopes: Iterable[str],
    client_auth: ClientAuth,
    now: float,
    claims: str | None = None,
) -> httpx.Request:
    """The on-behalf-of request."""
    if not user_assertion:
        raise ValueError("The user assertion (the access token the middle tier received) is empty.")
    return build_token_request(
        token_endpoint,
        grant_type=GRANT_TYPE,
        client_id=client_id,
        client_auth=client_auth,
        now=now,
        fields={"assertion": user_assertion, "requested_token_use": "on_behalf_of", "client_info": "1"},
        scopes=user_scopes(scopes),
        claims=claims,
    )


def parse_on_behalf_of_response(response: httpx.Response, *, requested_at: float) -> TokenResult:
    """Parse the response (see :func:`protocol.responses.parse_token_response`)."""
    return parse_token_response(response, requested_at=requested_at)


def on_behalf_of_flow(
    token_endpoint: str,
    *,
    client_id: str,
    user_assertion: str,
    scopes: Iterable[str],
    client_auth: ClientAuth,
    policy: RetryPolicy,
    clock: Clock,
    claims: str | None = None,
) -> Flow[TokenResult]:
    """Exchange ``user_assertion`` for a downstream token."""
    scope_list = list(scopes)
    return (
        yield from request_token(
            lambda now: build_on_behalf_of_request(
                token_endpoint,
                client_id=client_id,
                user_assertion=user_assertion,
                scopes=scope_list,
                client_auth=client_auth,
                now=now,
                claims=claims,
            ),
            policy=policy,
            clock=clock,
        )
    )
