"""``ClientSecretCredential``: an application authenticates with a client secret.

Client credentials grant (:mod:`protocol.client_credentials`) with
:class:`protocol.client_auth.ClientSecret`. Known clouds need one round trip for the first token;
other authorities are discovered once per process.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import httpx

from protocol.authority import Authority
from protocol.client_auth import ClientSecret
from protocol.client_credentials import client_credentials_flow
from protocol.drivers import SyncDriver
from protocol.flows import Flow
from protocol.responses import TokenResult
from protocol.retry import RetryPolicy

from .core import TokenCore
from .credential import SyncCredential
from .settings import authority_settings, reject_unknown_arguments

__all__ = ["ClientSecretCredential", "client_secret_core"]


def _check_arguments(tenant_id: str, client_id: str, client_secret: str) -> None:
    if not client_id:
        raise ValueError("client_id should be the id of a Microsoft Entra application")
    if not client_secret:
        raise ValueError("secret should be a Microsoft Entra application's client secret")
    if not tenant_id:
        raise ValueError("tenant_id should be a Microsoft Entra tenant's id (also called its 'directory id')")


def client_secret_core(
    credential: str,
    tenant_id: str,
    client_id: str,
    client_secret: str,
    *,
    authority: str | None,
    disable_instance_discovery: bool,
    additionally_allowed_tenants: Iterable[str] | None,
    retry_policy: RetryPolicy,
) -> TokenCore:
    """The token core of a client secret credential (shared by the sync and async classes)."""
    _check_arguments(tenant_id, client_id, client_secret)
    settings = authority_settings(
        tenant_id=tenant_id,
        authority=authority,
        disable_instance_discovery=disable_instance_discovery,
        additionally_allowed_tenants=additionally_allowed_tenants,
        use_region=True,
    )
    client_auth = ClientSecret(client_secret)
    core: TokenCore

    def acquire(target: Authority, scopes: Sequence[str], claims: str | None) -> Flow[TokenResult]:
        return client_credentials_flow(
            target,
            client_id=client_id,
            scopes=scopes,
            client_auth=client_auth,
            policy=retry_policy,
            claims=claims,
            instance_discovery=settings.instance_discovery,
            region=settings.region,
            clock=core.clock,
        )

    core = TokenCore(
        credential=credential,
        client_id=client_id,
        authority=settings.authority,
        acquire=acquire,
        additionally_allowed_tenants=settings.additionally_allowed_tenants,
        multitenant_disabled=settings.multitenant_disabled,
    )
    return core


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
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        retry_policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        reject_unknown_arguments(type(self).__name__, kwargs)
        self._core = client_secret_core(
            type(self).__name__,
            tenant_id,
            client_id,
            client_secret,
            authority=authority,
            disable_instance_discovery=disable_instance_discovery,
            additionally_allowed_tenants=additionally_allowed_tenants,
            retry_policy=retry_policy or RetryPolicy(),
        )
        self._driver = SyncDriver(client=http_client, transport=transport)
