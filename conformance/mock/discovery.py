"""Discovery endpoints: OpenID metadata, instance discovery, JWKS and user realm.

Every URL in the answers is built from the request's own origin, so the same authority serves
``https://login.microsoftonline.com`` in process and ``https://127.0.0.1:<port>`` over HTTPS.
"""

from __future__ import annotations

from typing import Any

import httpx

from conformance.mock import errors
from conformance.mock.context import RequestContext
from conformance.mock.errors import EntraError
from conformance.mock.models import Tenant
from conformance.mock.state import MULTI_TENANT_ALIASES, AuthorityState
from conformance.mock.tokens import ADFS_TENANT, issuer

#: Alias groups of the Microsoft clouds: (preferred_network, preferred_cache, aliases).
CLOUD_ALIASES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "login.microsoftonline.com",
        "login.windows.net",
        ("login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"),
    ),
    (
        "login.partner.microsoftonline.cn",
        "login.partner.microsoftonline.cn",
        ("login.partner.microsoftonline.cn", "login.chinacloudapi.cn"),
    ),
    ("login.microsoftonline.de", "login.microsoftonline.de", ("login.microsoftonline.de",)),
    (
        "login.microsoftonline.us",
        "login.microsoftonline.us",
        ("login.microsoftonline.us", "login.usgovcloudapi.net"),
    ),
    ("login-us.microsoftonline.com", "login-us.microsoftonline.com", ("login-us.microsoftonline.com",)),
)


def tenant_not_found(segment: str, *, error: str) -> EntraError:
    """AADSTS90002; ``error`` is ``invalid_tenant`` on metadata, ``invalid_request`` on the token endpoint."""
    return EntraError(
        400,
        error,
        errors.TENANT_NOT_FOUND,
        f"Tenant '{segment[:100]}' not found. Check to make sure you have the correct tenant ID and are "
        "signing into the correct cloud. Check with your subscription administrator, this may happen if "
        "there are no active subscriptions for the tenant.",
    )


def resolve_tenant(state: AuthorityState, segment: str, *, error: str) -> Tenant | None:
    """The tenant a path segment names; ``None`` for ``common``/``organizations``/``consumers``."""
    if segment.lower() in MULTI_TENANT_ALIASES:
        return None
    tenant = state.find_tenant(segment)
    if tenant is None:
        raise tenant_not_found(segment, error=error)
    return tenant


def openid_configuration(state: AuthorityState, ctx: RequestContext, segment: str) -> httpx.Response:
    """``GET /{tenant}/v2.0/.well-known/openid-configuration`` (ADFS: ``/adfs/.well-known/...``)."""
    ctx.require_method("GET", "HEAD")
    origin = ctx.origin
    if segment.lower() == ADFS_TENANT:
        if state.find_tenant(ADFS_TENANT) is None:
            raise tenant_not_found(segment, error="invalid_tenant")
        base = f"{origin}/adfs"
        return ctx.json_response(
            {
                "issuer": issuer(origin, ADFS_TENANT),
                "authorization_endpoint": f"{base}/oauth2/authorize",
                "token_endpoint": f"{base}/oauth2/token",
                "device_authorization_endpoint": f"{base}/oauth2/devicecode",
                "jwks_uri": f"{base}/discovery/keys",
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "profile", "email", "offline_access", "allatclaims"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "client_secret_basic",
                    "private_key_jwt",
                ],
                "grant_types_supported": [
                    "authorization_code",
                    "refresh_token",
                    "client_credentials",
                    "password",
                    "urn:ietf:params:oauth:grant-type:device_code",
                ],
                "access_token_issuer": f"{origin}/adfs/services/trust",
            }
        )
    tenant = resolve_tenant(state, segment, error="invalid_tenant")
    # Entra's metadata names a domain tenant by its GUID (reference §1.2) and aliases literally;
    # multi-tenant issuers carry a literal ``{tenantid}`` placeholder (reference §1.7).
    path_tenant = tenant.tenant_id if tenant is not None else segment
    issuer_tenant = tenant.tenant_id if tenant is not None else "{tenantid}"
    base = f"{origin}/{path_tenant}"
    return ctx.json_response(
        {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": issuer(origin, issuer_tenant),
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "acr",
                "nonce",
                "preferred_username",
                "name",
                "tid",
                "ver",
                "at_hash",
                "c_hash",
                "email",
            ],
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }
    )


def jwks(state: AuthorityState, ctx: RequestContext, segment: str) -> httpx.Response:
    """``GET /{tenant}/discovery/v2.0/keys`` (ADFS ``/adfs/discovery/keys``): the signing keys."""
    ctx.require_method("GET", "HEAD")
    if segment.lower() == ADFS_TENANT:
        if state.find_tenant(ADFS_TENANT) is None:
            raise tenant_not_found(segment, error="invalid_tenant")
    else:
        resolve_tenant(state, segment, error="invalid_tenant")
    return ctx.json_response(state.jwks)


def _missing_query(name: str) -> EntraError:
    return EntraError(
        400, "invalid_request", errors.MISSING_QUERY_PARAMETER, f"The required field '{name}' is missing."
    )


def _alias_metadata(*netlocs: str) -> list[dict[str, Any]]:
    metadata = [
        {"preferred_network": network, "preferred_cache": cache, "aliases": list(aliases)}
        for network, cache, aliases in CLOUD_ALIASES
    ]
    known = {alias for _, _, aliases in CLOUD_ALIASES for alias in aliases}
    for netloc in dict.fromkeys(netlocs):
        if netloc not in known:
            metadata.append({"preferred_network": netloc, "preferred_cache": netloc, "aliases": [netloc]})
    return metadata


def instance_discovery(state: AuthorityState, ctx: RequestContext) -> httpx.Response:
    """``GET /common/discovery/instance?api-version=1.1&authorization_endpoint=...`` (reference §1.6)."""
    ctx.require_method("GET", "HEAD")
    api_version = ctx.query.get("api-version")
    if not api_version:
        raise _missing_query("api-version")
    endpoint = ctx.query.get("authorization_endpoint")
    if not endpoint:
        raise _missing_query("authorization_endpoint")
    try:
        url = httpx.URL(endpoint)
    except httpx.InvalidURL:
        url = None
    trusted = {host.lower() for host in state.trusted_hosts} | {ctx.host}
    if url is None or url.scheme != "https" or not url.host or url.host.lower() not in trusted:
        raise EntraError(
            400,
            "invalid_instance",
            errors.INVALID_INSTANCE,
            f"Unknown or invalid instance. The authority '{endpoint[:200]}' is not trusted here.",
        )
    segments = [part for part in url.path.split("/") if part]
    tenant_path = (
        "/".join(segments[: segments.index("oauth2")] if "oauth2" in segments else segments) or "common"
    )
    netloc = url.netloc.decode("ascii")
    return ctx.json_response(
        {
            "tenant_discovery_endpoint": f"https://{netloc}/{tenant_path}/v2.0/.well-known/openid-configuration",
            "api-version": api_version,
            "metadata": _alias_metadata(netloc, ctx.request.url.netloc.decode("ascii")),
        }
    )


def user_realm(state: AuthorityState, ctx: RequestContext, username: str) -> httpx.Response:
    """``GET /common/userrealm/{username}?api-version=1.0``: every known user is ``Managed``.

    MSAL asks this before a password grant (reference §2.10); ``Managed`` makes it go straight to
    the token endpoint, ``Unknown`` is what Entra says for domains it does not know.
    """
    ctx.require_method("GET", "HEAD")
    domain = username.rpartition("@")[2].lower()
    known = state.find_user(None, username) is not None or state.find_tenant(domain) is not None
    return ctx.json_response(
        {
            "ver": "1.0",
            "account_type": "Managed" if known else "Unknown",
            "domain_name": domain,
            "cloud_instance_name": "microsoftonline.com",
            "cloud_audience_urn": "urn:federation:MicrosoftOnline",
        }
    )
