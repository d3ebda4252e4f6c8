"""``WorkloadIdentityCredential``: Microsoft Entra Workload ID (Kubernetes and other federated
workloads).

A client assertion credential whose assertion is the federated token the platform projects into a
file (``AZURE_FEDERATED_TOKEN_FILE``): the file is read for every token request, because the
platform rotates it, and an expired token is refused with the time it expired
(:class:`protocol.client_auth.TokenFileAssertion`).
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from protocol.client_auth import TokenFileAssertion
from protocol.drivers import SyncDriver
from protocol.retry import RetryPolicy

from .constants import EnvironmentVariables
from .core import TokenCore
from .credential import SyncCredential
from .persistence_options import TokenCachePersistenceOptions
from .service_principal import service_principal_core
from .settings import constructor_options

__all__ = ["WorkloadIdentityCredential", "workload_identity_core"]

TROUBLESHOOT = "https://aka.ms/azsdk/python/identity/workloadidentitycredential/troubleshoot"


def workload_identity_core(
    credential: str,
    *,
    tenant_id: str | None,
    client_id: str | None,
    token_file_path: str | None,
    enable_azure_proxy: bool,
    authority: str | None,
    disable_instance_discovery: bool,
    additionally_allowed_tenants: list[str] | None,
    retry_policy: RetryPolicy | None,
) -> TokenCore:
    """Resolve the arguments from the environment and build the token core.

    Raises:
        ValueError: a required value is neither given nor in the environment (all missing ones are
            named), or the AKS token proxy mode is requested (not supported yet).
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
    if enable_azure_proxy and os.environ.get(EnvironmentVariables.AZURE_KUBERNETES_TOKEN_PROXY):
        raise ValueError(
            "WorkloadIdentityCredential: the AKS identity-binding token proxy (enable_azure_proxy with "
            "AZURE_KUBERNETES_TOKEN_PROXY) is not supported by this release."
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


class WorkloadIdentityCredential(SyncCredential):
    """Authenticates with a federated token from a file, as Microsoft Entra Workload ID provides.

    Keyword Args:
        tenant_id: the tenant (default ``AZURE_TENANT_ID``).
        client_id: the application or user-assigned identity (default ``AZURE_CLIENT_ID``).
        token_file_path: the projected token file (default ``AZURE_FEDERATED_TOKEN_FILE``).
        enable_azure_proxy: AKS identity-binding mode; refused while ``AZURE_KUBERNETES_TOKEN_PROXY``
            is set (not supported yet), ignored otherwise.
        authority, disable_instance_discovery, additionally_allowed_tenants,
        cache_persistence_options, transport, http_client, retry_policy: as
        :class:`identity.ClientSecretCredential`.

    Raises:
        ValueError: tenant, client or token file unknown.
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
        http = constructor_options(self, locals())
        self._core = workload_identity_core(
            type(self).__name__,
            tenant_id=tenant_id,
            client_id=client_id,
            token_file_path=token_file_path,
            enable_azure_proxy=enable_azure_proxy,
            authority=authority,
            disable_instance_discovery=disable_instance_discovery,
            additionally_allowed_tenants=additionally_allowed_tenants,
            retry_policy=http.retry_policy,
        )
        self._driver = SyncDriver(client=http_client, transport=transport, client_options=http.client_options)
