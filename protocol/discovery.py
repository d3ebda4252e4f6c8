"""Authority discovery: instance discovery and OpenID Provider metadata.

* Instance discovery (Entra): ``GET https://login.microsoftonline.com/common/discovery/instance``
  with ``api-version=1.1`` and ``authorization_endpoint`` = the authority's authorize URL. Entra
  answers with ``tenant_discovery_endpoint`` (where the metadata lives) or ``invalid_instance``
  when it does not vouch for the host.
* OpenID Provider metadata (OpenID Connect Discovery 1.0, section 4): ``GET`` the
  ``.well-known/openid-configuration`` document; its ``token_endpoint``, ``authorization_endpoint``
  and ``device_authorization_endpoint`` (RFC 8628 section 4) are used as published, never assumed.

:func:`resolve_endpoints` decides which of them an authority needs:

* well-known Entra hosts: none (endpoints derived locally);
* other hosts with instance discovery on (the default): instance discovery, then metadata;
* other hosts with instance discovery off, and AD FS: metadata only, first at Entra's layout
  (``{authority}/{tenant}/v2.0/.well-known/openid-configuration``) and, if that is 404, at the
  generic OpenID layout (``{authority}/{tenant}/.well-known/openid-configuration``), so any
  standards-compliant OpenID provider works.

Discovery GETs are built with ``memoize=True``: a process fetches each document once.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx

from .authority import Authority, Endpoints
from .errors import MalformedResponseError, ProtocolError
from .fields import Fields
from .flows import Flow, exchange
from .responses import raise_for_error_response
from .retry import RetryPolicy
from .wire import build_get_request, read_json_object

__all__ = [
    "INSTANCE_DISCOVERY_HOST",
    "UntrustedAuthorityError",
    "build_instance_discovery_request",
    "build_openid_configuration_request",
    "parse_instance_discovery_response",
    "parse_openid_configuration_response",
    "resolve_endpoints",
]

INSTANCE_DISCOVERY_HOST = "login.microsoftonline.com"
# A DNS name (after IDNA encoding) or an IP literal: what a token endpoint's host can be.
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|[0-9A-Fa-f:.]+")


class UntrustedAuthorityError(ValueError):
    """Entra's instance discovery does not vouch for the authority host (``invalid_instance``).

    A configuration error, so a ``ValueError`` (as in azure-identity), not a protocol failure.
    """


def build_instance_discovery_request(authority: Authority) -> httpx.Request:
    """Ask Entra whether it vouches for ``authority``."""
    return build_get_request(
        f"https://{INSTANCE_DISCOVERY_HOST}/common/discovery/instance",
        {
            "api-version": "1.1",
            "authorization_endpoint": authority.derived_endpoints().authorization_endpoint,
        },
        memoize=True,
    )


def _url(response: httpx.Response) -> str:
    return str(response.request.url.copy_with(query=None))


def _require_https(value: str, what: str, response: httpx.Response) -> str:
    """``value`` if it is a usable https URL without credentials; else MalformedResponseError."""
    try:
        # Both parsers must agree: urllib rejects broken IPv6 brackets that httpx would percent-encode,
        # httpx rejects control characters and bad IDNA labels that urllib lets through.
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
        url = httpx.URL(value)
        usable = (
            parts.scheme == "https"
            and bool(parts.hostname)
            and _HOST.fullmatch(url.host) is not None
            and not url.userinfo
        )
    except (httpx.InvalidURL, ValueError, UnicodeError):  # IDNA errors are UnicodeErrors
        usable = False
    if not usable:
        raise MalformedResponseError(
            f"The discovery document at {_url(response)} names a {what} that is not an https URL "
            "(or is malformed, or carries credentials). Refusing to send credentials to it.",
            status_code=response.status_code,
            url=_url(response),
        )
    return value


def parse_instance_discovery_response(response: httpx.Response, *, authority: Authority) -> str:
    """The metadata URL Entra returned for ``authority``.

    Raises:
        UntrustedAuthorityError: Entra answered ``invalid_instance`` (also a ``ValueError``).
        OAuthError, ServiceError, MalformedResponseError: other failures.
    """
    body = read_json_object(response)
    if body is not None and body.get("error") == "invalid_instance":
        raise UntrustedAuthorityError(
            f"The authority provided, {authority.base}, is not well-known. If this authority is valid "
            "and trustworthy, you can disable this check by passing in "
            "'disable_instance_discovery=True' when constructing the credential."
        )
    raise_for_error_response(response, body)
    fields = Fields(body or {})
    tenant_discovery_endpoint = fields.required_str("tenant_discovery_endpoint")
    if fields.invalid:
        raise MalformedResponseError(
            f"The instance discovery response from {_url(response)} is missing or has invalid "
            f"field(s) {fields.names()}.",
            status_code=response.status_code,
            url=_url(response),
        )
    return _require_https(tenant_discovery_endpoint, "tenant discovery endpoint", response)


def build_openid_configuration_request(url: str) -> httpx.Request:
    """Fetch OpenID Provider metadata from ``url``."""
    return build_get_request(url, memoize=True)


def parse_openid_configuration_response(response: httpx.Response) -> Endpoints:
    """The endpoints published in an OpenID Provider metadata document.

    Raises:
        OAuthError: e.g. ``invalid_tenant`` (AADSTS90002) for a tenant that does not exist.
        ServiceError, MalformedResponseError: other failures; an endpoint that is not ``https``
            is refused as malformed.
    """
    body = read_json_object(response)
    raise_for_error_response(response, body)
    fields = Fields(body or {})
    token_endpoint = fields.required_str("token_endpoint")
    authorization_endpoint = fields.optional_str("authorization_endpoint") or ""
    device = fields.optional_str("device_authorization_endpoint")
    issuer = fields.optional_str("issuer")
    if fields.invalid:
        raise MalformedResponseError(
            f"The OpenID configuration at {_url(response)} is missing or has invalid field(s) "
            f"{fields.names()}.",
            status_code=response.status_code,
            url=_url(response),
        )
    token_endpoint = _require_https(token_endpoint, "token endpoint", response)
    if authorization_endpoint:
        _require_https(authorization_endpoint, "authorization endpoint", response)
    if device:
        _require_https(device, "device authorization endpoint", response)
    return Endpoints(
        token_endpoint=token_endpoint,
        authorization_endpoint=authorization_endpoint,
        device_authorization_endpoint=device or None,
        issuer=issuer,
    )


def resolve_endpoints(
    authority: Authority, *, instance_discovery: bool, policy: RetryPolicy
) -> Flow[Endpoints]:
    """The endpoints of ``authority``, with as few requests as its kind allows (see module doc)."""
    if authority.is_well_known and not authority.is_adfs:
        return authority.derived_endpoints()
    if instance_discovery and not authority.is_adfs:
        result = yield from exchange(lambda: build_instance_discovery_request(authority), policy)
        metadata_url = parse_instance_discovery_response(result.response, authority=authority)
        result = yield from exchange(lambda: build_openid_configuration_request(metadata_url), policy)
        return parse_openid_configuration_response(result.response)
    primary = authority.openid_configuration_url()
    result = yield from exchange(lambda: build_openid_configuration_request(primary), policy)
    if result.response.status_code == 404 and not authority.is_adfs:
        generic = f"{authority.url}/.well-known/openid-configuration"
        fallback = yield from exchange(lambda: build_openid_configuration_request(generic), policy)
        try:
            return parse_openid_configuration_response(fallback.response)
        except ProtocolError as fallback_error:
            # Report the Entra-layout location's failure, chained to the generic location's.
            try:
                parse_openid_configuration_response(result.response)
            except ProtocolError as primary_error:
                raise primary_error from fallback_error
            raise  # pragma: no cover - a 404 always fails to parse
    return parse_openid_configuration_response(result.response)
