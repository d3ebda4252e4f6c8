"""``UsernamePasswordCredential``: a user's name and password (OAuth 2.0 resource owner password
credentials, "ROPC"). Deprecated, as in azure-identity: it cannot satisfy multifactor
authentication, which Entra requires of more and more accounts.

The first ``get_token`` (and ``authenticate``) sends the password; later ones use the account's
refresh token silently (see :mod:`identity.user`). An ``authentication_record`` argument is
accepted and ignored, as in azure-identity 1.27, so the password is always checked first.
"""

from __future__ import annotations

import warnings
from typing import Any

import httpx

from protocol.drivers import SyncDriver
from protocol.flows import Flow
from protocol.password import GRANT_TYPE as PASSWORD_GRANT
from protocol.password import password_flow
from protocol.retry import RetryPolicy

from .persistence_options import TokenCachePersistenceOptions
from .settings import attach_persistent_cache, authority_settings, constructor_options
from .user import DEFAULT_USER_TENANT, Interactive, SignIn, SignInRequest, UserSession
from .user_credential import SyncUserCredential

__all__ = ["UsernamePasswordCredential", "username_password_session"]

DEPRECATION = (
    "UsernamePasswordCredential is deprecated, as it doesn't support multifactor authentication (MFA): "
    "use an interactive credential (InteractiveBrowserCredential, DeviceCodeCredential) or a service "
    "principal instead."
)


def _password_sign_in(client_id: str, username: str, password: str) -> Interactive:
    def sign_in(request: SignInRequest) -> Flow[SignIn]:
        result = yield from password_flow(
            request.endpoints.token_endpoint,
            client_id=client_id,
            username=username,
            password=password,
            scopes=request.scopes,
            policy=request.policy,
            clock=request.clock,
            claims=request.claims,
        )
        return SignIn(result, None, PASSWORD_GRANT)

    return sign_in


def username_password_session(
    credential: str,
    client_id: str,
    username: str,
    password: str,
    *,
    tenant_id: str | None,
    authority: str | None,
    disable_instance_discovery: bool,
    additionally_allowed_tenants: list[str] | None,
    retry_policy: RetryPolicy | None,
) -> UserSession:
    """Validate the arguments, warn that the credential is deprecated, and build the session.

    Raises:
        ValueError: an empty client id, username or password; a bad tenant or authority.
    """
    warnings.warn(DEPRECATION, DeprecationWarning, stacklevel=3)
    if not client_id:
        raise ValueError("client_id should be the id of a Microsoft Entra application")
    if not username:
        raise ValueError("username should be the user's name, e.g. 'user@contoso.com'")
    if not password:
        raise ValueError("password should be the user's password")
    settings = authority_settings(
        tenant_id=tenant_id or DEFAULT_USER_TENANT,
        authority=authority,
        disable_instance_discovery=disable_instance_discovery,
        additionally_allowed_tenants=additionally_allowed_tenants,
    )
    return UserSession(
        credential=credential,
        client_id=client_id,
        settings=settings,
        policy=retry_policy or RetryPolicy(),
        interactive=_password_sign_in(client_id, username, password),
    )


class UsernamePasswordCredential(SyncUserCredential):
    """Authenticates a user with a username and password (deprecated: no MFA).

    Args:
        client_id: the public client application.
        username: the user's name, e.g. ``user@contoso.com``.
        password: the user's password.

    Keyword Args:
        tenant_id: the tenant (default ``"organizations"``).
        authority, disable_instance_discovery, additionally_allowed_tenants,
        cache_persistence_options, transport, http_client, retry_policy: as for every credential.

    Warns:
        DeprecationWarning: at construction.
    """

    def __init__(
        self,
        client_id: str,
        username: str,
        password: str,
        *,
        tenant_id: str | None = None,
        authority: str | None = None,
        additionally_allowed_tenants: list[str] | None = None,
        cache_persistence_options: TokenCachePersistenceOptions | None = None,
        disable_instance_discovery: bool = False,
        enable_support_logging: bool = False,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        retry_policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("authentication_record", None)  # azure-identity 1.27 discards it too
        http = constructor_options(self, locals())
        self._session = username_password_session(
            type(self).__name__,
            client_id,
            username,
            password,
            tenant_id=tenant_id,
            authority=authority,
            disable_instance_discovery=disable_instance_discovery,
            additionally_allowed_tenants=additionally_allowed_tenants,
            retry_policy=http.retry_policy,
        )
        self._core = self._session.core
        attach_persistent_cache(self._core, http)
        self._driver = SyncDriver(client=http_client, transport=transport, client_options=http.client_options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._core.describe()})"  # never the username's password
