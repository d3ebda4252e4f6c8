"""``ClientAssertionCredential``: an application authenticates with an assertion from a callable.

For federated identity (a Kubernetes service account token, a GitHub Actions OIDC token, another
cloud's identity): ``func()`` is called for every token request, because such assertions rotate,
and its result is sent as ``client_assertion`` (:class:`protocol.client_auth.AssertionCallable`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from protocol.client_auth import AssertionCallable
from protocol.drivers import SyncDriver
from protocol.retry import RetryPolicy

from .core import TokenCore
from .credential import SyncCredential
from .persistence_options import TokenCachePersistenceOptions
from .service_principal import check_ids, service_principal_core
from .settings import attach_persistent_cache, constructor_options

__all__ = ["ClientAssertionCredential", "client_assertion_core"]


def client_assertion_core(
    credential: str,
    tenant_id: str,
    client_id: str,
    func: Callable[[], str],
    *,
    authority: str | None,
    disable_instance_discovery: bool,
    additionally_allowed_tenants: list[str] | None,
    retry_policy: RetryPolicy | None,
) -> TokenCore:
    """Validate the arguments and build the token core."""
    check_ids(tenant_id, client_id)
    if not callable(func):
        raise ValueError("func should be a callable that returns a client assertion (a JWT string)")
    return service_principal_core(
        credential,
        tenant_id,
        client_id,
        AssertionCallable(func),
        authority=authority,
        disable_instance_discovery=disable_instance_discovery,
        additionally_allowed_tenants=additionally_allowed_tenants,
        retry_policy=retry_policy,
    )


class ClientAssertionCredential(SyncCredential):
    """Authenticates a service principal with a JWT assertion returned by ``func``.

    Args:
        tenant_id: ID of the application's Microsoft Entra tenant.
        client_id: the application's client ID.
        func: called with no arguments for every token request; returns the assertion.

    Keyword Args:
        authority, disable_instance_discovery, additionally_allowed_tenants, transport,
        http_client, retry_policy: as :class:`identity.ClientSecretCredential`.
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        func: Callable[[], str],
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
        self._core = client_assertion_core(
            type(self).__name__,
            tenant_id,
            client_id,
            func,
            authority=authority,
            disable_instance_discovery=disable_instance_discovery,
            additionally_allowed_tenants=additionally_allowed_tenants,
            retry_policy=http.retry_policy,
        )
        attach_persistent_cache(self._core, http)
        self._driver = SyncDriver(client=http_client, transport=transport, client_options=http.client_options)
