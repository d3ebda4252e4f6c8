"""Authorities: which host and tenant a token is requested from, and the endpoints that follow.

An authority is ``https://{host}[/{path}]/{tenant}``. For the known Microsoft Entra clouds the
endpoints are derived locally (no request); any other host is resolved by discovery
(:mod:`protocol.discovery`).

Facts implemented here (see ``reference/entra-protocol.md`` section 1):

* only ``https`` authorities are accepted; a bare host gets ``https://``;
* a tenant is letters, digits, ``-`` and ``.`` (a GUID, a verified domain, ``common``,
  ``organizations``, ``consumers`` or ``adfs``);
* the ``adfs`` tenant marks an AD FS authority: its endpoints live under ``/adfs/oauth2/`` and its
  metadata under ``/adfs/.well-known/openid-configuration`` (no ``/v2.0``);
* regional token endpoints (ESTS-R) are ``{region}.login.microsoft.com`` for the public cloud and
  ``{region}.{host}`` elsewhere; they serve the client-credentials grant only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "ADFS_TENANT",
    "KNOWN_CLOUD_HOSTS",
    "WELL_KNOWN_HOSTS",
    "Authority",
    "Endpoints",
    "host_aliases",
    "normalize_authority",
    "regional_token_endpoint",
    "validate_region",
    "validate_tenant_id",
]

ADFS_TENANT = "adfs"

#: The cloud hosts azure-identity names in ``AzureAuthorityHosts``.
KNOWN_CLOUD_HOSTS: dict[str, str] = {
    "public": "login.microsoftonline.com",
    "government": "login.microsoftonline.us",
    "china": "login.chinacloudapi.cn",
    "germany": "login.microsoftonline.de",
}

#: Hosts Entra itself vouches for: no instance discovery is needed for them (MSAL 1.39's list).
WELL_KNOWN_HOSTS: frozenset[str] = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "sts.windows.net",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
        "login.microsoftonline.de",
        "login-us.microsoftonline.com",
        "login.microsoftonline.us",
        "login.usgovcloudapi.net",
        "login.sovcloud-identity.fr",
        "login.sovcloud-identity.de",
        "login.sovcloud-identity.sg",
    }
)

_PUBLIC_CLOUD_HOSTS = frozenset(
    {"login.microsoftonline.com", "login.microsoft.com", "login.windows.net", "sts.windows.net"}
)
#: Hosts that name the same cloud (MSAL's aliases): cache entries written under one serve the others.
_ALIAS_GROUPS = (
    _PUBLIC_CLOUD_HOSTS,
    frozenset({"login.chinacloudapi.cn", "login.partner.microsoftonline.cn"}),
    frozenset({"login.microsoftonline.us", "login.usgovcloudapi.net"}),
)


def host_aliases(host: str) -> frozenset[str]:
    """``host`` and the other hosts of its cloud (just ``host`` for one outside the known clouds)."""
    for group in _ALIAS_GROUPS:
        if host in group:
            return group
    return frozenset({host})


_TENANT_RE = re.compile(r"[A-Za-z0-9.\-]+")
_REGION_RE = re.compile(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TENANT_HELP = (
    "You can locate your tenant ID by following the instructions here: "
    "https://learn.microsoft.com/partner-center/find-ids-and-domain-names"
)


def normalize_authority(authority: str) -> str:
    """Return ``authority`` as ``https://host[:port][/path]`` without a trailing slash.

    Raises:
        ValueError: the authority uses a scheme other than ``https``, has no host, carries
            credentials (``user:password@``), a query or a fragment.
    """
    value = authority.strip() if isinstance(authority, str) else ""
    if not value:
        raise ValueError("The authority is empty. Pass a host such as 'login.microsoftonline.com'.")
    if "://" not in value:
        value = "https://" + value
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"'{authority}' is an invalid authority: {exc}.") from None
    if parts.scheme.lower() != "https":
        raise ValueError(
            f"'{authority}' is an invalid authority. The value must be a TLS protected (https) URL."
        )
    if not hostname:
        raise ValueError(f"'{authority}' is an invalid authority: it has no host name.")
    if "@" in parts.netloc:
        raise ValueError(f"The authority for host {hostname!r} must not contain a user name or password.")
    if parts.query or parts.fragment:
        raise ValueError(f"'{authority}' is an invalid authority: it must not have a query or fragment.")
    path = parts.path.rstrip("/")
    return f"https://{parts.netloc.lower()}{path}"


def validate_tenant_id(tenant_id: str) -> None:
    """Raise ``ValueError`` unless ``tenant_id`` is letters, digits, ``-`` and ``.`` only."""
    if not isinstance(tenant_id, str) or not _TENANT_RE.fullmatch(tenant_id):
        raise ValueError(f"Invalid tenant ID provided. {_TENANT_HELP}")


def validate_region(region: str) -> str:
    """Return ``region`` if it is a lowercase DNS label (how Entra names regions); else ``ValueError``."""
    if not isinstance(region, str) or not _REGION_RE.fullmatch(region):
        raise ValueError(
            f"Invalid regional authority name {region!r}: it must be a lowercase DNS label such as "
            "'westus2'. Set AZURE_REGIONAL_AUTHORITY_NAME to the region your service runs in."
        )
    return region


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The endpoints of one authority (from local derivation or from its OpenID metadata)."""

    token_endpoint: str
    authorization_endpoint: str
    device_authorization_endpoint: str | None
    issuer: str | None = None


@dataclass(frozen=True, slots=True)
class Authority:
    """An authority host plus tenant.

    Attributes:
        base: ``https://host[:port][/path]``, normalised by :func:`normalize_authority`.
        tenant: the tenant (validated).
    """

    base: str
    tenant: str

    @classmethod
    def create(cls, authority: str, tenant: str) -> Authority:
        """Validate and normalise ``authority`` and ``tenant`` (``ValueError`` when invalid)."""
        validate_tenant_id(tenant)
        return cls(normalize_authority(authority), tenant)

    def with_tenant(self, tenant: str) -> Authority:
        """The same host with another (validated) tenant."""
        validate_tenant_id(tenant)
        return Authority(self.base, tenant)

    @property
    def host(self) -> str:
        """The lower-cased host name (no port)."""
        return urlsplit(self.base).hostname or ""

    @property
    def environment(self) -> str:
        """The cache environment: the host with its port, lower-cased."""
        return urlsplit(self.base).netloc.lower()

    @property
    def url(self) -> str:
        """``{base}/{tenant}``."""
        return f"{self.base}/{self.tenant}"

    @property
    def is_adfs(self) -> bool:
        return self.tenant.lower() == ADFS_TENANT

    @property
    def is_well_known(self) -> bool:
        """True for hosts whose endpoints follow Entra's layout without asking anyone."""
        return self.host in WELL_KNOWN_HOSTS and urlsplit(self.base).path == ""

    def derived_endpoints(self) -> Endpoints:
        """The endpoints by Entra's URL layout, computed locally.

        Used as-is for well-known hosts; for other hosts discovery decides.
        """
        if self.is_adfs:
            root = f"{self.base}/adfs"
            return Endpoints(
                token_endpoint=f"{root}/oauth2/token",
                authorization_endpoint=f"{root}/oauth2/authorize",
                device_authorization_endpoint=f"{root}/oauth2/devicecode",
                issuer=None,
            )
        root = f"{self.url}/oauth2/v2.0"
        return Endpoints(
            token_endpoint=f"{root}/token",
            authorization_endpoint=f"{root}/authorize",
            device_authorization_endpoint=f"{root}/devicecode",
            issuer=f"{self.url}/v2.0",
        )

    def openid_configuration_url(self) -> str:
        """Where this authority's OpenID Provider metadata is published (Entra layout)."""
        if self.is_adfs:
            return f"{self.base}/adfs/.well-known/openid-configuration"
        return f"{self.url}/v2.0/.well-known/openid-configuration"


def regional_token_endpoint(token_endpoint: str, region: str) -> str:
    """The ESTS-R token endpoint of ``region`` for a central ``token_endpoint``.

    Public-cloud hosts map to ``{region}.login.microsoft.com``; other hosts to ``{region}.{host}``.
    """
    parts = urlsplit(token_endpoint)
    host = parts.hostname or ""
    regional_host = f"{region}.login.microsoft.com" if host in _PUBLIC_CLOUD_HOSTS else f"{region}.{host}"
    netloc = regional_host if parts.port is None else f"{regional_host}:{parts.port}"
    return parts._replace(netloc=netloc).geturl()
