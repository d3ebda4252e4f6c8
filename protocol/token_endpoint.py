"""The token endpoint request envelope shared by every grant (RFC 6749 section 3.2).

A grant module supplies its ``grant_type`` and fields; this module adds ``client_id``, the scopes,
``claims`` and the client authentication strategy's fields, and builds the form ``POST``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import httpx

from .client_auth import ClientAuth
from .flows import Clock, Flow, exchange
from .responses import TokenResult, parse_token_response
from .retry import RetryPolicy
from .wire import build_form_request

__all__ = ["OIDC_SCOPES", "build_token_request", "join_scopes", "request_token", "user_scopes"]

#: Scopes added to user sign-in grants so that the response carries an id token and a refresh token.
OIDC_SCOPES = ("openid", "profile", "offline_access")


def join_scopes(scopes: Iterable[str]) -> str:
    """Space-join scopes in the caller's order, dropping duplicates and blanks.

    Raises:
        ValueError: no scope is left, or a scope contains whitespace.
    """
    seen: dict[str, None] = {}
    for scope in scopes:
        if not isinstance(scope, str):
            raise ValueError(f"A scope must be a string, not {type(scope).__name__}.")
        if any(character.isspace() for character in scope):
            raise ValueError(f"The scope {scope!r} contains whitespace; pass each scope separately.")
        if scope:
            seen.setdefault(scope, None)
    if not seen:
        raise ValueError(
            "At least one scope is required, for example 'https://graph.microsoft.com/.default'."
        )
    return " ".join(seen)


def user_scopes(scopes: Iterable[str]) -> list[str]:
    """The requested scopes plus ``openid profile offline_access`` (for user grants)."""
    requested = list(scopes)
    return requested + [scope for scope in OIDC_SCOPES if scope not in requested]


def build_token_request(
    token_endpoint: str,
    *,
    grant_type: str,
    client_id: str,
    client_auth: ClientAuth,
    now: float,
    fields: Mapping[str, str | None],
    scopes: Iterable[str] | None = None,
    claims: str | None = None,
    audience: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Request:
    """A token request.

    Args:
        token_endpoint: where to ``POST``.
        grant_type: the OAuth grant type.
        client_id: the application id.
        client_auth: how the client authenticates.
        now: epoch seconds, for assertions.
        fields: grant-specific fields (``None`` values are left out).
        scopes: the scopes, joined by :func:`join_scopes`; ``None`` sends no ``scope``.
        claims: the merged ``claims`` value from :func:`protocol.claims.merge_claims`.
        audience: the assertion audience; defaults to ``token_endpoint`` (a regional endpoint passes
            the central one here).
    """
    if not client_id:
        raise ValueError("client_id should be the id of a Microsoft Entra application.")
    form: dict[str, str | None] = {"client_id": client_id, "grant_type": grant_type}
    form.update(fields)
    if scopes is not None:
        form["scope"] = join_scopes(scopes)
    if claims:
        form["claims"] = claims
    form.update(client_auth.form_fields(client_id=client_id, audience=audience or token_endpoint, now=now))
    return build_form_request(token_endpoint, form, headers=headers)


def request_token(
    build: Callable[[float], httpx.Request], *, policy: RetryPolicy, clock: Clock
) -> Flow[TokenResult]:
    """Send the token request ``build(now)`` returns and parse the answer.

    The request is rebuilt for every attempt (a fresh assertion, ``jti`` and ``client-request-id``)
    and the token's expiry counts from the clock reading taken before the successful attempt.
    """
    result = yield from exchange(lambda: build(clock()), policy, clock=clock)
    return parse_token_response(result.response, requested_at=result.sent_at)
