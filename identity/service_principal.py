"""The token core shared by every client-credentials credential (secret, certificate, assertion).

A credential differs from the others only by its client authentication strategy
(:mod:`protocol.client_auth`); everything else (authority, discovery, region, tenants, cache) is
built here once, for the sync and the async classes alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from protocol.authority import Authority
from protocol.client_auth import ClientAuth
from protocol.client_credentials import client_credentials_flow
from protocol.flows import Clock, Flow
from protocol.responses import TokenResult
from protocol.retry import RetryPolicy

from .core import TokenCore
from .settings import AuthoritySettings, authority_settings

__all__ = ["Grant", "GrantRequest", "check_ids", "confidential_core", "service_principal_core"]


def check_ids(tenant_id: str, client_id: str) -> None:
    """azure-identity's argument checks for the ids every service principal needs."""
    if not client_id:
        raise ValueError("client_id should be the id of a Microsoft Entra application")
    if not tenant_id:
        raise ValueError("tenant_id should be a Microsoft Entra tenant's id (also called its 'directory id')")


@dataclass(frozen=True, slots=True)
class GrantRequest:
    """What a grant needs to build its flow for one token request."""

    authority: Authority
    scopes: Sequence[str]
    claims: str | None
    settings: AuthoritySettings
    policy: RetryPolicy
    clock: Clock


#: Builds the acquisition flow of a confidential client's grant.
Grant = Callable[[GrantRequest], Flow[TokenResult]]


def confidential_core(
    credential: str,
    tenant_id: str,
    client_id: str,
    grant: Grant,
    *,
    authority: str | None,
    disable_instance_discovery: bool,
    additionally_allowed_tenants: Iterable[str] | None,
    retry_policy: RetryPolicy | None,
    use_region: bool = False,
    account: str | None = None,
) -> TokenCore:
    """A token core for a confidential client whose tokens come from ``grant``.

    Raises:
        ValueError: invalid tenant id, authority or region (see :func:`identity.settings.authority_settings`).
    """
    settings = authority_settings(
        tenant_id=tenant_id,
        authority=authority,
        disable_instance_discovery=disable_instance_discovery,
        additionally_allowed_tenants=additionally_allowed_tenants,
        use_region=use_region,
    )
    policy = retry_policy or RetryPolicy()
    core: TokenCore

    def acquire(target: Authority, scopes: Sequence[str], claims: str | None) -> Flow[TokenResult]:
        return grant(GrantRequest(target, scopes, claims, settings, policy, core.clock))

    core = TokenCore(
        credential=credential,
        client_id=client_id,
        authority=settings.authority,
        acquire=acquire,
        additionally_allowed_tenants=settings.additionally_allowed_tenants,
        multitenant_disabled=settings.multitenant_disabled,
        account=account,
    )
    return core


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
    """A token core that acquires app tokens with the client credentials grant (regions honoured)."""

    def grant(request: GrantRequest) -> Flow[TokenResult]:
        return client_credentials_flow(
            request.authority,
            client_id=client_id,
            scopes=request.scopes,
            client_auth=client_auth,
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
