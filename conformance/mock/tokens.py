"""Successful token responses: access tokens, refresh tokens, id tokens, ``client_info``.

Shapes follow reference §3.1-3.2 and §4. Access tokens are opaque (``mock-at-...``): clients must not
parse them, and :meth:`MockAuthority.describe_token` tells tests what each one grants.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from conformance.mock.context import RequestContext
from conformance.mock.errors import MALFORMED_REQUEST, EntraError
from conformance.mock.keys import b64url, client_info
from conformance.mock.models import Application, IssuedToken, RefreshGrant, User
from conformance.mock.state import AuthorityState, new_secret

#: Scopes that shape the response (id token, refresh token) rather than the access token.
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
ADFS_TENANT = "adfs"


def parse_scopes(value: str) -> tuple[str, ...]:
    """Scopes of a space-delimited ``scope`` parameter, in request order, without duplicates."""
    return tuple(dict.fromkeys(value.split()))


def resource_scopes(scopes: tuple[str, ...]) -> tuple[str, ...]:
    """``scopes`` without the OIDC ones (case-insensitive)."""
    return tuple(scope for scope in scopes if scope.lower() not in OIDC_SCOPES)


def requests_cae(claims: str | None) -> bool:
    """Whether a ``claims`` parameter declares the ``cp1`` client capability (reference §2.11).

    A ``claims`` value that is not a JSON object is rejected like Entra rejects malformed input.
    """
    if not claims:
        return False
    try:
        parsed = json.loads(claims)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise EntraError(
            400,
            "invalid_request",
            MALFORMED_REQUEST,
            "Invalid request. Request is malformed or invalid. The 'claims' parameter must be a JSON object.",
        )
    access = parsed.get("access_token")
    xms_cc = access.get("xms_cc") if isinstance(access, dict) else None
    values = xms_cc.get("values") if isinstance(xms_cc, dict) else None
    if not isinstance(values, list):
        return False
    return any(isinstance(value, str) and value.lower() == "cp1" for value in values)


def issuer(origin: str, tenant_id: str) -> str:
    """The ``iss`` of tokens and metadata: ``{origin}/{tenant}/v2.0``, ADFS ``{origin}/adfs``."""
    if tenant_id == ADFS_TENANT:
        return f"{origin}/adfs"
    return f"{origin}/{tenant_id}/v2.0"


def pairwise_subject(object_id: str, client_id: str) -> str:
    """Entra's ``sub`` is per (user, app); a hash of both gives the same property."""
    return b64url(hashlib.sha256(f"{object_id}:{client_id.lower()}".encode()).digest())


def id_token(
    state: AuthorityState,
    ctx: RequestContext,
    *,
    tenant_id: str,
    client_id: str,
    user: User,
    now: int,
    nonce: str | None,
) -> str:
    """A signed v2.0 id token for ``user`` as seen by ``client_id`` (reference §4)."""
    claims: dict[str, Any] = {
        "iss": issuer(ctx.origin, tenant_id),
        "aud": client_id,
        "sub": pairwise_subject(user.object_id, client_id),
        "oid": user.object_id,
        "tid": tenant_id,
        "preferred_username": user.username,
        "name": user.display_name,
        "iat": now,
        "nbf": now,
        "exp": now + state.token_lifetime,
        "ver": "2.0",
    }
    if tenant_id == ADFS_TENANT:
        claims["upn"] = user.username  # ADFS 2019 names the user in ``upn`` (reference §1.4)
        del claims["tid"]
    if nonce is not None:
        claims["nonce"] = nonce
    return state.key.sign(claims)


def issue(
    state: AuthorityState,
    ctx: RequestContext,
    *,
    tenant_id: str,
    app: Application,
    scopes: tuple[str, ...],
    grant_type: str,
    user: User | None = None,
    nonce: str | None = None,
    refresh_token: str | None = None,
) -> dict[str, Any]:
    """Record an access token and build the token response body.

    User grants (``user`` given) also get a refresh token (``refresh_token`` when the caller reuses
    one, else a new one), an id token and, when ``client_info=1`` was sent, ``client_info``.
    """
    claims = ctx.form.get("claims") or None
    cae = requests_cae(claims)
    now = int(state.now())
    access_token = new_secret("mock-at-")
    state.access_tokens[access_token] = IssuedToken(
        access_token=access_token,
        tenant=tenant_id,
        client_id=app.client_id,
        scopes=resource_scopes(scopes),
        user=user.username if user else None,
        cae=cae,
        claims=claims,
        expires_on=now + state.token_lifetime,
        grant_type=grant_type,
        issued_at=now,
    )
    lifetime: int | str = str(state.token_lifetime) if state.expires_in_as_string else state.token_lifetime
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "scope": " ".join(scopes),
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    }
    if state.refresh_in is not None:
        body["refresh_in"] = state.refresh_in
    if user is None:
        return body
    if refresh_token is None:
        refresh_token = new_refresh_token(state, tenant_id, app.client_id, scopes, user.username)
    body["refresh_token"] = refresh_token
    body["id_token"] = id_token(
        state, ctx, tenant_id=tenant_id, client_id=app.client_id, user=user, now=now, nonce=nonce
    )
    if ctx.form.get("client_info") == "1" and tenant_id != ADFS_TENANT:
        body["client_info"] = client_info(user.object_id, user.tenant_id)
    return body


def new_refresh_token(
    state: AuthorityState, tenant_id: str, client_id: str, scopes: tuple[str, ...], username: str | None
) -> str:
    """Store and return a new refresh token."""
    token = new_secret("mock-rt-")
    state.refresh_tokens[token] = RefreshGrant(token, tenant_id, client_id, tuple(scopes), username)
    return token
