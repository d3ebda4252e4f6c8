"""``AuthorizationCodeCredential``: redeems an authorization code the application obtained itself
(a web app's sign-in), then keeps the account's tokens fresh with its refresh token.

The first ``get_token`` redeems the code (``grant_type=authorization_code`` with ``redirect_uri``,
the ``code_verifier`` when the authorization request used PKCE, which azure-identity cannot send,
and the client secret for a confidential client) and forgets it. Later calls use only the access
and refresh tokens of the account that redemption established (``client_info``, else the ID
token's ``oid.tid``), so a shared cache never hands this credential another user's token. Once the
code is spent and no token is left, ``get_token`` raises ``ClientAuthenticationError``.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx

from protocol.authorization_code import GRANT_TYPE, authorization_code_flow
from protocol.client_auth import PUBLIC_CLIENT, ClientAuth, ClientSecret
from protocol.drivers import SyncDriver
from protocol.errors import ProtocolError, ServiceError, TransportError
from protocol.flows import Flow
from protocol.retry import RetryPolicy

from .credential import SyncCredential
from .persistence_options import TokenCachePersistenceOptions
from .settings import attach_persistent_cache, authority_settings, constructor_options
from .user import Interactive, SignIn, SignInRequest, UserSession

__all__ = ["AuthorizationCodeCredential", "authorization_code_session"]

SPENT = "No authorization code, cached access token, or refresh token available."


class CodeSpentError(ProtocolError):
    """The code was redeemed already and no token of the account is left."""


def _redeem_once(
    client_id: str, code: str, redirect_uri: str, code_verifier: str | None, client_auth: ClientAuth
) -> Interactive:
    remaining = [code]
    guard = threading.Lock()

    def sign_in(request: SignInRequest) -> Flow[SignIn]:
        with guard:
            current = remaining.pop() if remaining else None
        if current is None:
            raise CodeSpentError(SPENT)
        try:
            result = yield from authorization_code_flow(
                request.endpoints.token_endpoint,
                client_id=client_id,
                code=current,
                redirect_uri=redirect_uri,
                scopes=request.scopes,
                policy=request.policy,
                clock=request.clock,
                code_verifier=code_verifier,
                client_auth=client_auth,
                claims=request.claims,
            )
        except ProtocolError as exc:
            # No answer, a gateway error or a transient one (temporarily_unavailable, 5xx, 429)
            # after the retries: the code was not redeemed, so the next get_token tries it again.
            if isinstance(exc, (TransportError, ServiceError)) or getattr(exc, "retryable", False):
                with guard:
                    remaining.append(current)
            raise
        return SignIn(result, None, GRANT_TYPE)

    return sign_in


def authorization_code_session(
    credential: str,
    tenant_id: str,
    client_id: str,
    authorization_code: str,
    redirect_uri: str,
    *,
    client_secret: str | None,
    code_verifier: str | None,
    authority: str | None,
    disable_instance_discovery: bool,
    additionally_allowed_tenants: list[str] | None,
    retry_policy: RetryPolicy | None,
) -> UserSession:
    """Validate the arguments and build the session (shared by the sync and async classes).

    Raises:
        ValueError: an empty tenant, client id, code or redirect URI; a bad tenant or authority.
    """
    for name, value in (
        ("tenant_id", tenant_id),
        ("client_id", client_id),
        ("authorization_code", authorization_code),
        ("redirect_uri", redirect_uri),
    ):
        if not value or not isinstance(value, str):
            raise ValueError(f"{name} must be a non-empty string")
    if code_verifier is not None and not (43 <= len(code_verifier) <= 128):
        raise ValueError("code_verifier must be 43 to 128 characters (RFC 7636 section 4.1)")
    settings = authority_settings(
        tenant_id=tenant_id,
        authority=authority,
        disable_instance_discovery=disable_instance_discovery,
        additionally_allowed_tenants=additionally_allowed_tenants,
    )
    client_auth: ClientAuth = ClientSecret(client_secret) if client_secret else PUBLIC_CLIENT
    return UserSession(
        credential=credential,
        client_id=client_id,
        settings=settings,
        policy=retry_policy or RetryPolicy(),
        interactive=_redeem_once(client_id, authorization_code, redirect_uri, code_verifier, client_auth),
        client_auth=client_auth,
        forget_refused=True,  # azure-identity's AadClient removes a refused refresh token
    )


class AuthorizationCodeCredential(SyncCredential):
    """Authenticates by redeeming an authorization code previously obtained from Microsoft Entra ID.

    Args:
        tenant_id: the tenant.
        client_id: the application.
        authorization_code: the code from the authorize endpoint's redirect.
        redirect_uri: the redirect URI of that authorization request (sent again, as required).

    Keyword Args:
        client_secret: the application's secret (confidential clients; web apps).
        code_verifier: the PKCE verifier of the authorization request (RFC 7636).
        authority, disable_instance_discovery, additionally_allowed_tenants,
        cache_persistence_options, transport, http_client, retry_policy: as for every credential.
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        authorization_code: str,
        redirect_uri: str,
        *,
        client_secret: str | None = None,
        code_verifier: str | None = None,
        authority: str | None = None,
        additionally_allowed_tenants: list[str] | None = None,
        cache_persistence_options: TokenCachePersistenceOptions | None = None,
        disable_instance_discovery: bool = False,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        retry_policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        http = constructor_options(self, locals())
        self._session = authorization_code_session(
            type(self).__name__,
            tenant_id,
            client_id,
            authorization_code,
            redirect_uri,
            client_secret=client_secret,
            code_verifier=code_verifier,
            authority=authority,
            disable_instance_discovery=disable_instance_discovery,
            additionally_allowed_tenants=additionally_allowed_tenants,
            retry_policy=http.retry_policy,
        )
        self._core = self._session.core
        attach_persistent_cache(self._core, http)
        self._driver = SyncDriver(client=http_client, transport=transport, client_options=http.client_options)
