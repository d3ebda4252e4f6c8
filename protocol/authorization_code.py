"""Authorization code grant with PKCE (RFC 6749 section 4.1, RFC 7636; Microsoft Learn
"v2-oauth2-auth-code-flow").

1. :func:`build_authorization_url`: the URL the browser opens, with ``client_id``,
   ``response_type=code``, ``redirect_uri``, ``scope`` (plus ``openid profile offline_access``),
   ``state``, ``nonce``, ``code_challenge`` + ``code_challenge_method=S256``, ``client_info=1``
   and the optional ``prompt``, ``login_hint``, ``domain_hint``, ``claims``, ``response_mode``.
2. :func:`parse_authorization_response`: the redirect's parameters; ``state`` must match
   (RFC 6749 section 10.12), otherwise the code is never redeemed.
3. :func:`build_authorization_code_request`: ``grant_type=authorization_code``, ``code``,
   ``redirect_uri`` (identical to step 1), ``code_verifier``, ``scope``, ``client_info=1``.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from .client_auth import PUBLIC_CLIENT, ClientAuth
from .errors import OAuthError, ProtocolError
from .flows import Clock, Flow
from .responses import TokenResult, parse_token_response
from .retry import RetryPolicy
from .token_endpoint import build_token_request, join_scopes, request_token, user_scopes

__all__ = [
    "GRANT_TYPE",
    "AuthorizationResponseError",
    "authorization_code_flow",
    "build_authorization_code_request",
    "build_authorization_url",
    "parse_authorization_code_response",
    "parse_authorization_response",
]

GRANT_TYPE = "authorization_code"


class AuthorizationResponseError(ProtocolError):
    """The redirect to ``redirect_uri`` is unusable: wrong ``state``, or neither code nor error."""


@dataclass(frozen=True, slots=True)
class AuthorizationResponse:
    """A successful authorization response."""

    code: str
    client_info: str | None = None


def build_authorization_url(
    authorization_endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: Iterable[str],
    state: str,
    nonce: str,
    code_challenge: str,
    prompt: str | None = None,
    login_hint: str | None = None,
    domain_hint: str | None = None,
    claims: str | None = None,
    response_mode: str | None = None,
) -> str:
    """The authorization request URL (``None`` options are left out)."""
    params = {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": join_scopes(user_scopes(scopes)),
        "state": state,
        "nonce": nonce,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        "client_info": "1",
        "prompt": prompt,
        "login_hint": login_hint,
        "domain_hint": domain_hint,
        "claims": claims,
        "response_mode": response_mode,
    }
    query = urlencode({name: value for name, value in params.items() if value is not None})
    separator = "&" if "?" in authorization_endpoint else "?"
    return f"{authorization_endpoint}{separator}{query}"


def parse_authorization_response(params: Mapping[str, str], *, expected_state: str) -> AuthorizationResponse:
    """Check and read the parameters the authority redirected back with.

    Raises:
        AuthorizationResponseError: ``state`` is missing or differs (the code is not returned), or
            the response has neither ``code`` nor ``error``.
        OAuthError: the authority returned an error (``access_denied``...).
    """
    state = params.get("state")
    if state is None or not hmac.compare_digest(state.encode(), expected_state.encode()):
        raise AuthorizationResponseError(
            "The authorization response's 'state' does not match the request; it was ignored. "
            "This can be a cross-site request forgery attempt or a stale browser tab: sign in again."
        )
    if "error" in params:
        error = params.get("error") or "unknown_error"
        description = (params.get("error_description") or "").strip().splitlines()
        message = f"{error}: {description[0]}" if description else error
        raise OAuthError(message, error=error, error_description=params.get("error_description") or "")
    code = params.get("code")
    if not code:
        raise AuthorizationResponseError("The authorization response has neither a 'code' nor an 'error'.")
    return AuthorizationResponse(code=code, client_info=params.get("client_info"))


def build_authorization_code_request(
    token_endpoint: str,
    *,
    client_id: str,
    code: str,
    redirect_uri: str,
    scopes: Iterable[str],
    now: float,
    code_verifier: str | None = None,
    client_auth: ClientAuth = PUBLIC_CLIENT,
    claims: str | None = None,
) -> httpx.Request:
    """The code redemption request."""
    if not code:
        raise ValueError("The authorization code is empty.")
    return build_token_request(
        token_endpoint,
        grant_type=GRANT_TYPE,
        client_id=client_id,
        client_auth=client_auth,
        now=now,
        fields={
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
            "client_info": "1",
        },
        scopes=user_scopes(scopes),
        claims=claims,
    )


def parse_authorization_code_response(response: httpx.Response, *, requested_at: float) -> TokenResult:
    """Parse the response (see :func:`protocol.responses.parse_token_response`)."""
    return parse_token_response(response, requested_at=requested_at)


def authorization_code_flow(
    token_endpoint: str,
    *,
    client_id: str,
    code: str,
    redirect_uri: str,
    scopes: Iterable[str],
    policy: RetryPolicy,
    clock: Clock,
    code_verifier: str | None = None,
    client_auth: ClientAuth = PUBLIC_CLIENT,
    claims: str | None = None,
) -> Flow[TokenResult]:
    """Redeem an authorization code."""
    scope_list = list(scopes)
    # A code is single-use: a retry after a response that Entra may have processed would fail with
    # invalid_grant, so only transport failures and 429/5xx (not processed) are retried.
    return (
        yield from request_token(
            lambda now: build_authorization_code_request(
                token_endpoint,
                client_id=client_id,
                code=code,
                redirect_uri=redirect_uri,
                scopes=scope_list,
                now=now,
                code_verifier=code_verifier,
                client_auth=client_auth,
                claims=claims,
            ),
            policy=policy,
            clock=clock,
        )
    )
