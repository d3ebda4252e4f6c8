"""``OnBehalfOfCredential``: a middle-tier service acts for the user whose token it received.

On-behalf-of grant (:mod:`protocol.on_behalf_of`) with the middle tier's own credential: a client
secret, a certificate, or an assertion callable (exactly one). Tokens are cached per user
assertion (the cache key's account is a SHA-256 of it), so one credential never hands a token
obtained for one user to a request made for another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import httpx

from protocol.client_auth import AssertionCallable, ClientAuth, ClientSecret
from protocol.discovery import resolve_endpoints
from protocol.drivers import SyncDriver
from protocol.flows import Flow
from protocol.on_behalf_of import on_behalf_of_flow
from protocol.responses import TokenResult
from protocol.retry import RetryPolicy

from .certificate import certificate_auth, load_client_certificate
from .core import TokenCore
from .credential import SyncCredential
from .persistence_options import TokenCachePersistenceOptions
from .service_principal import GrantRequest, check_ids, confidential_core
from .settings import attach_persistent_cache, constructor_options

__all__ = ["OnBehalfOfCredential", "on_behalf_of_core"]


def _client_auth(
    tenant_id: str,
    *,
    client_secret: str | None,
    client_certificate: bytes | None,
    password: str | bytes | None,
    client_assertion_func: Callable[[], str] | None,
    send_certificate_chain: bool,
) -> ClientAuth:
    given = [v is not None for v in (client_secret, client_certificate, client_assertion_func)]
    if sum(given) != 1:
        raise ValueError(
            'Exactly one of "client_secret", "client_certificate" or "client_assertion_func" must be '
            "provided for OnBehalfOfCredential."
        )
    if client_secret is not None:
        return ClientSecret(client_secret)
    if client_certificate is not None:
        if not client_certificate:
            raise ValueError('"client_certificate" is empty: pass the bytes of a PEM or PKCS#12 certificate')
        certificate = load_client_certificate(None, client_certificate, password)
        return certificate_auth(tenant_id, certificate, send_certificate_chain)
    assert client_assertion_func is not None
    if not callable(client_assertion_func):
        raise ValueError("client_assertion_func should be a callable that returns a client assertion")
    return AssertionCallable(client_assertion_func)


def on_behalf_of_core(
    credential: str,
    tenant_id: str,
    client_id: str,
    *,
    user_assertion: str,
    client_secret: str | None,
    client_certificate: bytes | None,
    password: str | bytes | None,
    client_assertion_func: Callable[[], str] | None,
    send_certificate_chain: bool,
    authority: str | None,
    disable_instance_discovery: bool,
    additionally_allowed_tenants: list[str] | None,
    retry_policy: RetryPolicy | None,
) -> TokenCore:
    """Validate the arguments and build the token core (shared by the sync and async classes)."""
    check_ids(tenant_id, client_id)
    if not isinstance(user_assertion, str) or not user_assertion:
        raise TypeError(
            '"user_assertion" must be the access token the middle tier received (a non-empty string)'
        )
    client_auth = _client_auth(
        tenant_id,
        client_secret=client_secret,
        client_certificate=client_certificate,
        password=password,
        client_assertion_func=client_assertion_func,
        send_certificate_chain=send_certificate_chain,
    )

    def grant(request: GrantRequest) -> Flow[TokenResult]:
        endpoints = yield from resolve_endpoints(
            request.authority, instance_discovery=request.settings.instance_discovery, policy=request.policy
        )
        return (
            yield from on_behalf_of_flow(
                endpoints.token_endpoint,
                client_id=client_id,
                user_assertion=user_assertion,
                scopes=request.scopes,
                client_auth=client_auth,
                policy=request.policy,
                clock=request.clock,
                claims=request.claims,
            )
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
        account="obo:" + hashlib.sha256(user_assertion.encode("utf-8")).hexdigest(),
    )


class OnBehalfOfCredential(SyncCredential):
    """Authenticates a service principal on behalf of a user via the on-behalf-of flow.

    Args:
        tenant_id: ID of the service principal's tenant.
        client_id: the service principal's client ID.

    Keyword Args:
        user_assertion: the access token the service received from its caller (required).
        client_secret: the service principal's secret, or
        client_certificate: its certificate (PEM or PKCS#12 bytes) with ``password``, or
        client_assertion_func: a callable returning a client assertion (exactly one of the three).
        send_certificate_chain: send the certificate chain (``x5c``) with certificate assertions.
        authority, disable_instance_discovery, additionally_allowed_tenants, transport,
        http_client, retry_policy: as :class:`identity.ClientSecretCredential`.

    Raises:
        TypeError: no ``user_assertion``.
        ValueError: not exactly one client credential, or an unusable certificate.
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        *,
        user_assertion: str,
        client_secret: str | None = None,
        client_certificate: bytes | None = None,
        password: str | bytes | None = None,
        client_assertion_func: Callable[[], str] | None = None,
        send_certificate_chain: bool = False,
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
        self._core = on_behalf_of_core(
            type(self).__name__,
            tenant_id,
            client_id,
            user_assertion=user_assertion,
            client_secret=client_secret,
            client_certificate=client_certificate,
            password=password,
            client_assertion_func=client_assertion_func,
            send_certificate_chain=send_certificate_chain,
            authority=authority,
            disable_instance_discovery=disable_instance_discovery,
            additionally_allowed_tenants=additionally_allowed_tenants,
            retry_policy=http.retry_policy,
        )
        attach_persistent_cache(self._core, http)
        self._driver = SyncDriver(client=http_client, transport=transport, client_options=http.client_options)
