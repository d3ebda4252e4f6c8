"""The token core shared by every client-credentials credential (secret, certificate, assertion).

A credential differs from the others only by its client authentication strategy
(:mod:`protocol.client_auth`); everything else (authority, discovery, region, tenants, cache) is
built here once, for the sync and the async classes alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from protocol.authority import Authority
from protocol.client_auth import ClientAuth
from protocol.client_credentials import client_credentials_flow
from protocol.flows import Flow
from protocol.responses import TokenResult
from protocol.retry import RetryPolicy

from .core import TokenCore
from .settings import authority_settings

__all__ = ["check_ids", "service_principal_core"]


def check_ids(tenant_id: str, client_id: str) -> None:
    """azure-identity's argument checks for the ids every service principal needs."""
    if not client_id:
        raise ValueError("client_id should be the id of a Microsoft Entra application")
    if not tenant_id:
        raise ValueError("tenant_id should be a Microsoft Entra tenant's id (also called its 'directory id')")


def service_principal_core(
    credential: str,
    tenant_id: str,
    client_id: str,
    client_auth: ClientAuth,
    *,
    authority: str | None,
    disable_instance_discovery: bool,
    additionally_allowed_tenants: Iterable[str] | None,
    retry_policy: RetryPolicy | None,
) -> TokenCore:
    """A token core that acquires app tokens with the client credentials grant.

    Raises:
        ValueError: invalid tenant id, authority or region (see :func:`identity.settings.authority_settings`).
    """
    settings = authority_settings(
        tenant_id=tenant_id,
        authority=authority,
        disable_instance_discovery=disable_instance_discovery,
        additionally_allowed_tenants=additionally_allowed_tenants,
        use_region=True,
    )
    policy = retry_policy or RetryPolicy()
    core: TokenCore

    def acquire(target: Authority, scopes: Sequence[str], claims: str | None) -> Flow[TokenResult]:
        return client_credentials_flow(
            target,
            client_id=client_id,
            scopes=scopes,
            client_auth=client_auth,
            policy=policy,
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
