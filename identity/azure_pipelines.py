"""``AzurePipelinesCredential``: workload identity federation for Azure Pipelines service connections.

For every new access token the credential asks Azure DevOps for an OIDC token issued to the
service connection (authenticated with the job's ``System.AccessToken``) and sends it to Entra as
a client assertion; both requests are one flow (:mod:`protocol.azure_pipelines`). The URL of the
OIDC endpoint comes from ``SYSTEM_OIDCREQUESTURI``, which the pipeline agent sets; it is read when
a token must be requested, so a credential built outside a pipeline fails only when it is used,
with :class:`~identity.CredentialUnavailableError` (a chain moves on).
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from protocol.azure_pipelines import (
    TROUBLESHOOTING_GUIDE,
    ServiceConnection,
    azure_pipelines_flow,
    oidc_request_url,
)
from protocol.drivers import SyncDriver
from protocol.flows import Flow
from protocol.responses import TokenResult
from protocol.retry import RetryPolicy

from .core import TokenCore
from .credential import SyncCredential
from .errors import CredentialUnavailableError
from .persistence_options import TokenCachePersistenceOptions
from .service_principal import GrantRequest, confidential_core
from .settings import attach_persistent_cache, constructor_options

__all__ = ["SYSTEM_OIDCREQUESTURI", "AzurePipelinesCredential", "azure_pipelines_core"]

#: Set by the Azure Pipelines agent: the job's OIDC token endpoint.
SYSTEM_OIDCREQUESTURI = "SYSTEM_OIDCREQUESTURI"


def _oidc_request_uri(service_connection_id: str) -> str:
    """``SYSTEM_OIDCREQUESTURI``, read when a token is requested.

    Raises:
        CredentialUnavailableError: the variable is unset, empty or not an http(s) URL.
    """
    uri = os.environ.get(SYSTEM_OIDCREQUESTURI, "").strip()
    if not uri:
        raise CredentialUnavailableError(
            message=f"Missing value for the {SYSTEM_OIDCREQUESTURI} environment variable. "
            f"AzurePipelinesCredential is intended for use in Azure Pipelines where the "
            f"{SYSTEM_OIDCREQUESTURI} environment variable is set. The agent sets it for tasks; a "
            f"script step that does not see it can map it: env: {SYSTEM_OIDCREQUESTURI}: "
            f"$(System.OidcRequestUri). Please refer to the troubleshooting guide at {TROUBLESHOOTING_GUIDE}."
        )
    try:
        oidc_request_url(uri, service_connection_id)
    except ValueError as exc:
        raise CredentialUnavailableError(
            message=f"The {SYSTEM_OIDCREQUESTURI} environment variable does not hold the OIDC token "
            f"endpoint: {exc} Please refer to the troubleshooting guide at {TROUBLESHOOTING_GUIDE}."
        ) from exc
    return uri


def azure_pipelines_core(
    credential: str,
    *,
    tenant_id: str,
    client_id: str,
    service_connection_id: str,
    system_access_token: str,
    authority: str | None,
    disable_instance_discovery: bool,
    additionally_allowed_tenants: list[str] | None,
    retry_policy: RetryPolicy | None,
) -> TokenCore:
    """Validate the arguments and build the token core.

    Raises:
        ValueError: a required argument is empty (every missing one is named), or the tenant or
            authority is invalid.
    """
    values = (
        ("tenant_id", tenant_id),
        ("client_id", client_id),
        ("service_connection_id", service_connection_id),
        ("system_access_token", system_access_token),
    )
    missing = [name for name, value in values if not isinstance(value, str) or not value]
    if missing:
        raise ValueError(
            f"{credential}: 'tenant_id', 'client_id', 'service_connection_id', and 'system_access_token' "
            f"must be passed in as keyword arguments (missing or empty: "
            f"{', '.join(repr(name) for name in missing)}). Please refer to the troubleshooting guide "
            f"at {TROUBLESHOOTING_GUIDE}."
        )
    connection = ServiceConnection(service_connection_id, system_access_token)

    def grant(request: GrantRequest) -> Flow[TokenResult]:
        return azure_pipelines_flow(
            request.authority,
            client_id=client_id,
            scopes=request.scopes,
            oidc_request_uri=_oidc_request_uri(service_connection_id),
            connection=connection,
            policy=request.policy,
            claims=request.claims,
            instance_discovery=request.settings.instance_discovery,
            region=request.settings.region,
            clock=request.clock,
        )

    return confidential_core(
        credential,
        tenant_id,
        client_id,
        grant,
        authority=authority,
        disable_instance_discovery=disable_instance_discovery,
        additionally_allowed_tenants=additionally_allowed_tenants,
        retry_policy=retry_policy,
        use_region=True,
    )


class AzurePipelinesCredential(SyncCredential):
    """Authenticates with Microsoft Entra Workload ID in Azure Pipelines (a service connection's
    federated identity).

    Keyword Args:
        tenant_id: the service connection's tenant.
        client_id: the service connection's application (client) id.
        service_connection_id: the service connection's id: the ``resourceId`` query parameter of
            its page in the Azure DevOps portal.
        system_access_token: the job's ``System.AccessToken`` (map it into the step's environment
            and pass its value).
        authority, disable_instance_discovery, additionally_allowed_tenants,
        cache_persistence_options, transport, http_client, retry_policy: as
        :class:`identity.ClientSecretCredential`.

    Raises:
        ValueError: a required argument is empty.

    ``get_token`` raises :class:`~identity.CredentialUnavailableError` when ``SYSTEM_OIDCREQUESTURI``
    is not set (outside a pipeline), and :class:`~identity.ClientAuthenticationError` when Azure
    DevOps or Entra refuses.
    """

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        service_connection_id: str,
        system_access_token: str,
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
        self._core = azure_pipelines_core(
            type(self).__name__,
            tenant_id=tenant_id,
            client_id=client_id,
            service_connection_id=service_connection_id,
            system_access_token=system_access_token,
            authority=authority,
            disable_instance_discovery=disable_instance_discovery,
            additionally_allowed_tenants=additionally_allowed_tenants,
            retry_policy=http.retry_policy,
        )
        attach_persistent_cache(self._core, http)
        self._driver = SyncDriver(client=http_client, transport=transport, client_options=http.client_options)
