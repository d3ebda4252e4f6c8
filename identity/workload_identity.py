"""``WorkloadIdentityCredential``: Microsoft Entra Workload ID (Kubernetes and other federated
workloads).

A client assertion credential whose assertion is the federated token the platform projects into a
file (``AZURE_FEDERATED_TOKEN_FILE``): the file is read for every token request, because the
platform rotates it, and an expired token is refused with the time it expired
(:class:`protocol.client_auth.TokenFileAssertion`).

AKS identity binding (``enable_azure_proxy=True``): when ``AZURE_KUBERNETES_TOKEN_PROXY`` is set,
every request goes to that token proxy instead of the authority, over TLS that trusts only the CA
in ``AZURE_KUBERNETES_CA_FILE`` or ``AZURE_KUBERNETES_CA_DATA`` (the system's trust store when
neither is set) and presents ``AZURE_KUBERNETES_SNI_NAME`` when set (:mod:`protocol.aks_proxy`).
Those variables are read here, in the constructor; without ``enable_azure_proxy`` they are ignored.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from protocol.aks_proxy import (
    AsyncClientTransport,
    AsyncTokenProxyTransport,
    ClientTransport,
    ProxyTrust,
    TokenProxy,
    TokenProxyTransport,
)
from protocol.client_auth import TokenFileAssertion
from protocol.drivers import SyncDriver
from protocol.retry import RetryPolicy

from .constants import EnvironmentVariables
from .core import TokenCore
from .credential import SyncCredential
from .http_options import HttpOptions
from .persistence_options import TokenCachePersistenceOptions
from .service_principal import service_principal_core
from .settings import attach_persistent_cache, constructor_options

__all__ = [
    "AzureProxy",
    "WorkloadIdentityCredential",
    "azure_proxy_from_environment",
    "workload_identity_core",
]

TROUBLESHOOT = "https://aka.ms/azsdk/python/identity/workloadidentitycredential/troubleshoot"
CA_DATA_FILE_ERROR = (
    "Both AZURE_KUBERNETES_CA_FILE and AZURE_KUBERNETES_CA_DATA are set. Only one should be set."
)
CUSTOM_PROXY_ENV_ERROR = (
    "AZURE_KUBERNETES_TOKEN_PROXY is not set but other custom endpoint-related environment variables "
    "are present."
)


@dataclass(frozen=True, slots=True)
class AzureProxy:
    """The AKS token proxy a credential sends its requests to, and how its HTTP stack is built.

    Attributes:
        proxy: the proxy's URL and SNI name.
        trust: the CA for connections the credential opens itself; ``None`` when the caller gave a
            transport or client (their TLS settings are theirs).
    """

    proxy: TokenProxy
    trust: ProxyTrust | None

    def client_options(self, credential: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """Options for the client the driver builds around the proxy transport.

        ``trust_env`` is off: an ``HTTPS_PROXY`` mount would take the requests away from the proxy
        transport. Raises ``ValueError`` for ``proxies`` and ``connection_verify``, which would do
        the same or contradict the proxy's CA.
        """
        if "proxy" in options:
            raise ValueError(
                f"{credential}: proxies cannot be combined with the AKS token proxy "
                "(AZURE_KUBERNETES_TOKEN_PROXY): token requests go to it directly."
            )
        if "verify" in options:
            raise ValueError(
                f"{credential}: connection_verify cannot be combined with the AKS token proxy: its CA "
                "comes from AZURE_KUBERNETES_CA_FILE or AZURE_KUBERNETES_CA_DATA."
            )
        return {**options, "trust_env": False}

    def sync_transport(
        self, transport: httpx.BaseTransport | None, http_client: httpx.Client | None
    ) -> httpx.BaseTransport:
        """The proxy transport, around the caller's transport or client if given."""
        inner = ClientTransport(http_client) if http_client is not None else transport
        return TokenProxyTransport(self.proxy, trust=self.trust, transport=inner)

    def async_transport(
        self, transport: httpx.AsyncBaseTransport | None, http_client: httpx.AsyncClient | None
    ) -> httpx.AsyncBaseTransport:
        """The async proxy transport, around the caller's transport or client if given."""
        inner = AsyncClientTransport(http_client) if http_client is not None else transport
        return AsyncTokenProxyTransport(self.proxy, trust=self.trust, transport=inner)


def azure_proxy_from_environment(enable_azure_proxy: bool, *, custom_transport: bool) -> AzureProxy | None:
    """The AKS token proxy configuration, when ``enable_azure_proxy`` and the environment ask for it.

    Args:
        enable_azure_proxy: the constructor's flag; ``False`` ignores the variables entirely.
        custom_transport: the caller gave a transport or client: the CA is not loaded (requests
            are only rewritten).

    Raises:
        ValueError: the proxy URL is not https or has user information, a query or a fragment; both
            CA variables are set; the CA file is unreadable, empty or not PEM; the CA data is not
            PEM; or an SNI/CA variable is set without the proxy URL.
    """
    if not enable_azure_proxy:
        return None
    url = os.environ.get(EnvironmentVariables.AZURE_KUBERNETES_TOKEN_PROXY, "")
    sni_name = os.environ.get(EnvironmentVariables.AZURE_KUBERNETES_SNI_NAME, "")
    ca_file = os.environ.get(EnvironmentVariables.AZURE_KUBERNETES_CA_FILE, "")
    ca_data = os.environ.get(EnvironmentVariables.AZURE_KUBERNETES_CA_DATA, "")
    if not url:
        if sni_name or ca_file or ca_data:
            raise ValueError(CUSTOM_PROXY_ENV_ERROR)
        return None
    if ca_file and ca_data:
        raise ValueError(CA_DATA_FILE_ERROR)
    try:
        proxy = TokenProxy.create(url, sni_name=sni_name or None)
        trust = None if custom_transport else ProxyTrust(ca_file=ca_file or None, ca_data=ca_data or None)
    except ValueError as exc:
        raise ValueError(f"WorkloadIdentityCredential: AKS token proxy configuration: {exc}") from exc
    return AzureProxy(proxy, trust)


def workload_identity_core(
    credential: str,
    *,
    tenant_id: str | None,
    client_id: str | None,
    token_file_path: str | None,
    authority: str | None,
    disable_instance_discovery: bool,
    additionally_allowed_tenants: list[str] | None,
    retry_policy: RetryPolicy | None,
) -> TokenCore:
    """Resolve the arguments from the environment and build the token core.

    Raises:
        ValueError: a required value is neither given nor in the environment (all missing ones are
            named).
    """
    tenant_id = tenant_id or os.environ.get(EnvironmentVariables.AZURE_TENANT_ID)
    client_id = client_id or os.environ.get(EnvironmentVariables.AZURE_CLIENT_ID)
    token_file_path = token_file_path or os.environ.get(EnvironmentVariables.AZURE_FEDERATED_TOKEN_FILE)
    if not tenant_id or not client_id or not token_file_path:
        values = (("tenant_id", tenant_id), ("client_id", client_id), ("token_file_path", token_file_path))
        missing = ", ".join(repr(name) for name, value in values if not value)
        raise ValueError(
            "WorkloadIdentityCredential authentication unavailable. The workload options are not fully "
            f"configured. See the troubleshooting guide for more information: {TROUBLESHOOT}. "
            f"Missing required arguments: {missing}."
        )
    return service_principal_core(
        credential,
        tenant_id,
        client_id,
        TokenFileAssertion(token_file_path),
        authority=authority,
        disable_instance_discovery=disable_instance_discovery,
        additionally_allowed_tenants=additionally_allowed_tenants,
        retry_policy=retry_policy,
    )


def configure(credential: Any, arguments: dict[str, Any]) -> tuple[HttpOptions, AzureProxy | None]:
    """The constructor steps both twins share, given ``locals()``: options, the token core (with its
    persistent cache, if asked for) and the AKS proxy settings (``None`` in normal mode).

    Raises:
        ValueError: see :func:`workload_identity_core` and :func:`azure_proxy_from_environment`.
    """
    http = constructor_options(credential, arguments)
    credential._core = workload_identity_core(
        type(credential).__name__,
        tenant_id=arguments["tenant_id"],
        client_id=arguments["client_id"],
        token_file_path=arguments["token_file_path"],
        authority=arguments["authority"],
        disable_instance_discovery=arguments["disable_instance_discovery"],
        additionally_allowed_tenants=arguments["additionally_allowed_tenants"],
        retry_policy=http.retry_policy,
    )
    attach_persistent_cache(credential._core, http)
    custom = arguments["transport"] is not None or arguments["http_client"] is not None
    return http, azure_proxy_from_environment(arguments["enable_azure_proxy"], custom_transport=custom)


class WorkloadIdentityCredential(SyncCredential):
    """Authenticates with a federated token from a file, as Microsoft Entra Workload ID provides.

    Keyword Args:
        tenant_id: the tenant (default ``AZURE_TENANT_ID``).
        client_id: the application or user-assigned identity (default ``AZURE_CLIENT_ID``).
        token_file_path: the projected token file (default ``AZURE_FEDERATED_TOKEN_FILE``).
        enable_azure_proxy: AKS identity-binding mode: when ``AZURE_KUBERNETES_TOKEN_PROXY`` is set,
            send every request through that token proxy (see the module docstring). With a
            ``transport`` or ``http_client``, requests are rewritten to the proxy and sent through
            it; the CA variables then do not apply.
        authority, disable_instance_discovery, additionally_allowed_tenants,
        cache_persistence_options, transport, http_client, retry_policy: as
        :class:`identity.ClientSecretCredential`.

    Raises:
        ValueError: tenant, client or token file unknown; an invalid token proxy configuration.
    """

    def __init__(
        self,
        *,
        tenant_id: str | None = None,
        client_id: str | None = None,
        token_file_path: str | None = None,
        enable_azure_proxy: bool = False,
        authority: str | None = None,
        disable_instance_discovery: bool = False,
        additionally_allowed_tenants: list[str] | None = None,
        cache_persistence_options: TokenCachePersistenceOptions | None = None,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        retry_policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        http, proxy = configure(self, locals())
        if proxy is None:
            self._driver = SyncDriver(
                client=http_client, transport=transport, client_options=http.client_options
            )
        else:
            self._driver = SyncDriver(
                transport=proxy.sync_transport(transport, http_client),
                client_options=proxy.client_options(type(self).__name__, http.client_options),
            )
