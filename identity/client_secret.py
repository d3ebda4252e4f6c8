"""``ClientSecretCredential``: an application authenticates with a client secret.

Client credentials grant (:mod:`protocol.client_credentials`) with
:class:`protocol.client_auth.ClientSecret`. Known clouds need one round trip for the first token;
other authorities are discovered once per process.
"""

from __future__ import annotations

from typing import Any

import httpx

from protocol.client_auth import ClientSecret
from protocol.drivers import SyncDriver
from protocol.retry import RetryPolicy

from .core import TokenCore
from .credential import SyncCredential
from .persistence_options import TokenCachePersistenceOptions
from .service_principal import check_ids, service_principal_core
from .settings import attach_persistent_cache, constructor_options

__all__ = ["ClientSecretCredential", "client_secret_core"]


def client_secret_core(
    credential: str,
    tenant_id: str,
    client_id: str,
    client_secret: str,
    *,
    authority: str | None,
    disable_instance_discovery: bool,
    additionally_allowed_tenants: list[str] | None,
    retry_policy: RetryPolicy | None,
) -> TokenCore:
    """Validate the arguments and build the token core (shared by the sync and async classes)."""
    # azure-identity checks client id, then secret, then tenant: the first message matches it.
    if not client_id:
        check_ids(tenant_id, client_id)
    if not client_secret:
        raise ValueError("secret should be a Microsoft Entra application's client secret")
    check_ids(tenant_id, client_id)
    return service_principal_core(
        credential,
        tenant_id,
        client_id,
        ClientSecret(client_secret),
        authority=authority,
        disable_instance_discovery=disable_instance_discovery,
        additionally_allowed_tenants=additionally_allowed_tenants,
        retry_policy=retry_policy,
    )


class ClientSecretCredential(SyncCredential):
    """Authenticates as a service principal using a client secret.

    Args:
        tenant_id: ID of the application's Microsoft Entra tenant (its "directory ID").
        client_id: the application's client ID.
        client_secret: one of the application's client secrets.

    Keyword Args:
        authority: authority host, e.g. ``"login.microsoftonline.com"`` (the default, or
            ``AZURE_AUTHORITY_HOST``); see :class:`identity.AzureAuthorityHosts`.
        disable_instance_discovery: skip asking Entra to vouch for a custom authority (private
            clouds, Azure Stack, any OpenID provider); its metadata is still read.
        additionally_allowed_tenants: tenants besides ``tenant_id`` that ``get_token(tenant_id=...)``
            may name; ``"*"`` allows any.
        cache_persistence_options: a :class:`identity.TokenCachePersistenceOptions` (validated;
            persistence itself is not implemented yet and a WARNING says so).
        transport: an httpx transport for the client this credential creates.
        http_client: an ``httpx.Client`` to use instead (the caller closes it).
        retry_policy: a :class:`protocol.retry.RetryPolicy` (default: 3 retries of 408/429/5xx and
            network errors, ``Retry-After`` honoured).

    Raises:
        ValueError: an empty argument, an invalid tenant id, or a non-https authority.
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        *,
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
        self._core = client_secret_core(
            type(self).__name__,
            tenant_id,
            client_id,
            client_secret,
            authority=authority,
            disable_instance_discovery=disable_instance_discovery,
            additionally_allowed_tenants=additionally_allowed_tenants,
            retry_policy=http.retry_policy,
        )
        attach_persistent_cache(self._core, http)
        self._driver = SyncDriver(client=http_client, transport=transport, client_options=http.client_options)
