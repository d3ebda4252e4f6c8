"""The token endpoint: common checks, then one function per grant type.

Order of checks for ``POST /{tenant}/oauth2/v2.0/token`` (reference §2, §3.4-3.5):

1. ``grant_type`` present (AADSTS900144) and supported (``unsupported_grant_type``, AADSTS70003);
2. ``client_id`` present (form or HTTP Basic) and registered (``unauthorized_client``, AADSTS700016);
3. the grant's own required parameters (AADSTS900144), and a well-formed ``claims`` if sent;
4. client authentication (:mod:`conformance.mock.clientauth`, HTTP 401 ``invalid_client``);
5. the grant itself (``invalid_grant``, ``invalid_scope``, device-code states...).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx

from conformance.mock import errors
from conformance.mock.clientauth import application, authenticate_client, client_id_of
from conformance.mock.context import RequestContext
from conformance.mock.device import DEVICE_CODE, device_code
from conformance.mock.errors import EntraError, invalid_grant, missing_parameter
from conformance.mock.models import Application, Tenant
from conformance.mock.state import AuthorityState, new_secret
from conformance.mock.tokens import issue, parse_scopes, requests_cae

CLIENT_CREDENTIALS = "client_credentials"
REFRESH_TOKEN = "refresh_token"
AUTHORIZATION_CODE = "authorization_code"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
PASSWORD = "password"

GrantHandler = Callable[[AuthorityState, RequestContext, Tenant | None, Application], dict[str, Any]]


@dataclass(frozen=True)
class Grant:
    """A grant type: its required form fields, whether it needs a confidential client, its handler."""

    required: tuple[str, ...]
    confidential_only: bool
    handler: GrantHandler


def token_endpoint(
    state: AuthorityState, ctx: RequestContext, tenant: Tenant | None, tenant_label: str
) -> httpx.Response:
    """Answer a token request; ``tenant`` is ``None`` when the path named ``common`` & co."""
    ctx.require_method("POST", "OPTIONS")
    grant_type = ctx.form.get("grant_type", "")
    if not grant_type:
        raise missing_parameter("grant_type")
    grant = GRANTS.get(grant_type)
    if grant is None:
        raise EntraError(
            400,
            "unsupported_grant_type",
            errors.UNSUPPORTED_GRANT_TYPE,
            f"The app requested an unsupported grant type '{grant_type[:100]}'.",
        )
    app = application(state, tenant, client_id_of(ctx), tenant_label)
    for name in grant.required:
        if not ctx.form.get(name):
            raise missing_parameter(name)
    requests_cae(ctx.form.get("claims"))  # a malformed claims value fails before anything is consumed
    authenticate_client(state, ctx, app, confidential_only=grant.confidential_only)
    return ctx.json_response(grant.handler(state, ctx, tenant, app))


def _token_tenant(tenant: Tenant | None, fallback: str) -> str:
    return tenant.tenant_id if tenant is not None else fallback


# -- client credentials ----
def client_credentials(
    state: AuthorityState, ctx: RequestContext, tenant: Tenant | None, app: Application
) -> dict[str, Any]:
    """App-only token; the scope must be exactly one ``{resource}/.default`` (reference §2.2)."""
    scopes = parse_scopes(ctx.form["scope"])
    if len(scopes) != 1 or not scopes[0].endswith("/.default"):
        raise EntraError(
            400,
            "invalid_scope",
            errors.INVALID_CLIENT_SCOPE,
            f"The provided value for scope {' '.join(scopes)} is not valid. Client credential flows must "
            "have a scope value with /.default suffixed to the resource identifier (application ID URI).",
        )
    return issue(
        state,
        ctx,
        tenant_id=_token_tenant(tenant, app.tenant_id),
        app=app,
        scopes=scopes,
        grant_type=CLIENT_CREDENTIALS,
    )


# -- refresh token ----
def refresh_token(
    state: AuthorityState, ctx: RequestContext, tenant: Tenant | None, app: Application
) -> dict[str, Any]:
    """Redeem a refresh token, rotating it when ``rotate_refresh_tokens`` is on (reference §2.8)."""
    grant = state.refresh_tokens.get(ctx.form["refresh_token"])
    if grant is not None and grant.revoked:
        raise invalid_grant(
            errors.GRANT_REVOKED,
            "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user "
            "might have changed or reset their password.",
        )
    # Unknown and rotated-away tokens: AADSTS70000 is the mock's choice (reference has no code).
    if grant is None or grant.superseded:
        raise invalid_grant(errors.INVALID_GRANT, "Provided grant is invalid or malformed.")
    if grant.client_id.lower() != app.client_id.lower():
        raise invalid_grant(
            errors.INVALID_GRANT, "Provided grant is invalid or malformed: it was issued to another client."
        )
    user = state.find_user(None, grant.username) if grant.username else None
    if grant.username and user is None:
        raise invalid_grant(errors.UNKNOWN_USER, "The user account no longer exists in the directory.")
    scope = ctx.form.get("scope", "")
    scopes = parse_scopes(scope) if scope else grant.scopes
    reuse: str | None = None
    if not state.rotate_refresh_tokens:
        reuse = grant.token
    elif state.strict_rotation:
        grant.superseded = True
    tenant_id = _token_tenant(tenant, grant.tenant_id)
    if user is None:
        body = issue(state, ctx, tenant_id=tenant_id, app=app, scopes=scopes, grant_type=REFRESH_TOKEN)
        new_token = reuse or new_secret("mock-rt-")
        if reuse is None:
            state.refresh_tokens[new_token] = replace(grant, token=new_token, scopes=scopes, superseded=False)
        body["refresh_token"] = new_token
        return body
    return issue(
        state,
        ctx,
        tenant_id=tenant_id,
        app=app,
        scopes=scopes,
        grant_type=REFRESH_TOKEN,
        user=user,
        refresh_token=reuse,
    )


# -- authorization code ----
def pkce_challenge(verifier: str, method: str) -> str:
    """The ``code_challenge`` a verifier answers (RFC 7636 §4.2): S256 or plain."""
    if method.upper() == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", errors="replace")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier


def authorization_code(
    state: AuthorityState, ctx: RequestContext, tenant: Tenant | None, app: Application
) -> dict[str, Any]:
    """Redeem a code: single use, same client and ``redirect_uri``, PKCE verifier (reference §2.6)."""
    grant = state.authorization_codes.get(ctx.form["code"])
    if grant is None:
        raise invalid_grant(errors.INVALID_GRANT, "The provided authorization code is invalid or malformed.")
    if grant.redeemed:
        raise invalid_grant(
            errors.AUTH_CODE_REDEEMED,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an "
            "existing refresh token.",
        )
    if state.now() >= grant.expires_at:
        raise invalid_grant(
            errors.AUTH_CODE_EXPIRED, "The provided authorization code or refresh token has expired."
        )
    if grant.client_id.lower() != app.client_id.lower():
        raise invalid_grant(
            errors.INVALID_GRANT, "The provided authorization code was issued to another client."
        )
    redirect_uri = ctx.form["redirect_uri"]
    if redirect_uri != grant.redirect_uri:
        raise invalid_grant(
            errors.REDIRECT_MISMATCH,
            f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect URI "
            f"'{grant.redirect_uri}' used when requesting the authorization code.",
        )
    if grant.code_challenge is not None:
        verifier = ctx.form.get("code_verifier", "")
        if not verifier:
            raise missing_parameter("code_verifier")
        expected = pkce_challenge(verifier, grant.code_challenge_method)
        if not hmac.compare_digest(expected.encode(), grant.code_challenge.encode()):
            raise invalid_grant(
                errors.PKCE_MISMATCH,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            )
    user = state.find_user(grant.tenant_id, grant.username)
    if user is None:
        raise invalid_grant(errors.UNKNOWN_USER, "The user account no longer exists in the directory.")
    grant.redeemed = True
    scope = ctx.form.get("scope", "")
    scopes = parse_scopes(scope) if scope else grant.scopes
    return issue(
        state,
        ctx,
        tenant_id=grant.tenant_id,
        app=app,
        scopes=scopes,
        grant_type=AUTHORIZATION_CODE,
        user=user,
        nonce=grant.nonce,
    )


# -- on-behalf-of ----
def on_behalf_of(
    state: AuthorityState, ctx: RequestContext, tenant: Tenant | None, app: Application
) -> dict[str, Any]:
    """Exchange a user's access token for one to a downstream API (reference §2.9)."""
    if ctx.form["requested_token_use"] != "on_behalf_of":
        raise EntraError(
            400,
            "invalid_request",
            errors.MALFORMED_REQUEST,
            "Invalid request. Request is malformed or invalid. 'requested_token_use' must be 'on_behalf_of'.",
        )
    # The mock can only vouch for tokens it issued; codes below are the mock's choice.
    incoming = state.access_tokens.get(ctx.form["assertion"])
    if incoming is None or incoming.user is None:
        raise invalid_grant(
            errors.OBO_ASSERTION_INVALID, "Assertion failed signature validation or is not a user token."
        )
    if state.now() >= incoming.expires_on:
        raise invalid_grant(
            errors.OBO_ASSERTION_EXPIRED,
            "Assertion is not within its valid time range. Ensure that the access token is not expired "
            "before using it for user assertion, or request a new token.",
        )
    user = state.find_user(None, incoming.user)
    if user is None:
        raise invalid_grant(errors.UNKNOWN_USER, "The user account no longer exists in the directory.")
    scopes = parse_scopes(ctx.form["scope"])
    return issue(
        state,
        ctx,
        tenant_id=_token_tenant(tenant, incoming.tenant),
        app=app,
        scopes=scopes,
        grant_type=JWT_BEARER,
        user=user,
    )


# -- resource owner password ----
def password(
    state: AuthorityState, ctx: RequestContext, tenant: Tenant | None, app: Application
) -> dict[str, Any]:
    """Username and password (ROPC, reference §2.10); the user's home tenant issues the token."""
    user = state.find_user(tenant.tenant_id if tenant else None, ctx.form["username"])
    if user is None:
        raise invalid_grant(
            errors.UNKNOWN_USER,
            "The user account does not exist in the directory. To sign into this application, the account "
            "must be added to the directory.",
        )
    if not hmac.compare_digest(ctx.form["password"].encode(), user.password.encode()):
        raise invalid_grant(
            errors.BAD_CREDENTIALS, "Error validating credentials due to invalid username or password."
        )
    return issue(
        state,
        ctx,
        tenant_id=user.tenant_id,
        app=app,
        scopes=parse_scopes(ctx.form["scope"]),
        grant_type=PASSWORD,
        user=user,
    )


GRANTS: dict[str, Grant] = {
    CLIENT_CREDENTIALS: Grant(("scope",), True, client_credentials),
    REFRESH_TOKEN: Grant(("refresh_token",), False, refresh_token),
    AUTHORIZATION_CODE: Grant(("code", "redirect_uri"), False, authorization_code),
    DEVICE_CODE: Grant(("device_code",), False, device_code),
    JWT_BEARER: Grant(("requested_token_use", "assertion", "scope"), True, on_behalf_of),
    PASSWORD: Grant(("username", "password", "scope"), False, password),
}
