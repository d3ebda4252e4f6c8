"""Client credentials grant (RFC 6749 section 4.4; Microsoft Learn "v2-oauth2-client-creds-grant-flow").

``POST {token_endpoint}`` with ``grant_type=client_credentials``, ``client_id``, ``scope`` (one
resource's ``/.default``), optional ``claims`` and the client's credentials: a secret, a
certificate assertion or an assertion from a callable (:mod:`protocol.client_auth`). The response
has no refresh token and no id token.

The central token endpoint is the assertion audience even when a regional endpoint (ESTS-R, from
``AZURE_REGIONAL_AUTHORITY_NAME``) receives the request.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from .authority import Authority, regional_token_endpoint
from .client_auth import ClientAuth
from .discovery import resolve_endpoints
from .flows import Clock, Flow
from .responses import TokenResult, parse_token_response
from .retry import RetryPolicy
from .token_endpoint import build_token_request, request_token

__all__ = [
    "GRANT_TYPE",
    "build_client_credentials_request",
    "client_credentials_flow",
    "parse_client_credentials_response",
]

GRANT_TYPE = "client_credentials"


def build_client_credentials_request(
    token_endpoint: str,
    *,
    client_id: str,
    scopes: Iterable[str],
    client_auth: ClientAuth,
    now: float,
    claims: str | None = None,
    audience: str | None = None,
) -> httpx.Request:
    """The client credentials token request."""
    return build_token_request(
        token_endpoint,
        grant_type=GRANT_TYPE,
        client_id=client_id,
        client_auth=client_auth,
        now=now,
        fields={},
        scopes=scopes,
        claims=claims,
        audience=audience,
    )


def parse_client_credentials_response(response: httpx.Response, *, requested_at: float) -> TokenResult:
    """Parse the response (see :func:`protocol.responses.parse_token_response`)."""
    return parse_token_response(response, requested_at=requested_at)


def client_credentials_flow(
    authority: Authority,
    *,
    client_id: str,
    scopes: Iterable[str],
    client_auth: ClientAuth,
    policy: RetryPolicy,
    claims: str | None = None,
    instance_discovery: bool = True,
    region: str | None = None,
    clock: Clock,
) -> Flow[TokenResult]:
    """Resolve the authority's endpoints if needed, then request an app token."""
    endpoints = yield from resolve_endpoints(authority, instance_discovery=instance_discovery, policy=policy)
    central = endpoints.token_endpoint
    target = regional_token_endpoint(central, region) if region else central
    scope_list = list(scopes)
    return (
        yield from request_token(
            lambda now: build_client_credentials_request(
                target,
                client_id=client_id,
                scopes=scope_list,
                client_auth=client_auth,
                now=now,
                claims=claims,
                audience=central,
            ),
            policy=policy,
            clock=clock,
        )
    )
