"""``DeviceCodeCredential``: the user signs in on another device with a code (RFC 8628).

The credential asks the authority's device authorization endpoint for a code, shows it (the
server's ``message`` on stdout, or ``prompt_callback(verification_uri, user_code, expires_on)``),
then polls the token endpoint at the server's ``interval`` (``slow_down`` adds 5 s), until the user
finishes, declines (``authorization_declined``), the code expires (``expired_token``) or
``timeout`` passes. Authorities whose device response has no ``message`` get one composed from the
URI and code. Silent authentication with the account's refresh token comes first (see
:mod:`identity.user`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import httpx

from protocol.device_code import (
    GRANT_TYPE,
    build_device_code_request,
    device_code_poll_flow,
    parse_device_code_response,
)
from protocol.drivers import SyncDriver
from protocol.errors import SourceUnavailableError
from protocol.flows import Flow, call, exchange
from protocol.retry import RetryPolicy

from .auth_record import AuthenticationRecord
from .http_options import positive_seconds
from .persistence_options import TokenCachePersistenceOptions
from .settings import attach_persistent_cache, authority_settings, constructor_options
from .user import (
    DEFAULT_USER_TENANT,
    DEVELOPER_SIGN_ON_CLIENT_ID,
    Interactive,
    SignIn,
    SignInRequest,
    UserSession,
)
from .user_credential import SyncUserCredential

__all__ = ["DeviceCodeCredential", "PromptCallback", "device_code_session"]

#: ``prompt_callback(verification_uri, user_code, expires_on)``; ``expires_on`` is an aware UTC datetime.
PromptCallback = Callable[[str, str, datetime], Any]


def _print_message(message: str) -> None:
    print(message, flush=True)


def device_code_sign_in(
    client_id: str, timeout: float | None, prompt_callback: PromptCallback | None
) -> Interactive:
    """The device code sign-in flow of a credential."""

    def sign_in(request: SignInRequest) -> Flow[SignIn]:
        endpoint = request.endpoints.device_authorization_endpoint
        if not endpoint:
            raise SourceUnavailableError(
                "DeviceCodeCredential: the authority's metadata has no device_authorization_endpoint, so it "
                "cannot sign users in with a device code; use another credential for this authority."
            )
        started = yield from exchange(
            lambda: build_device_code_request(
                endpoint, client_id=client_id, scopes=request.scopes, claims=request.claims
            ),
            request.policy,
            clock=request.clock,
        )
        device = parse_device_code_response(started.response, requested_at=started.sent_at)
        if prompt_callback is not None:
            expires_on = datetime.fromtimestamp(device.expires_on, timezone.utc)
            yield from call(lambda: prompt_callback(device.verification_uri, device.user_code, expires_on))
        else:
            yield from call(lambda: _print_message(device.message))
        deadline = request.clock() + timeout if timeout else None
        result = yield from device_code_poll_flow(
            request.endpoints.token_endpoint,
            device,
            client_id=client_id,
            policy=request.policy,
            clock=request.clock,
            deadline=deadline,
            claims=request.claims,
        )
        return SignIn(result, None, GRANT_TYPE)

    return sign_in


def device_code_session(
    credential: str,
    client_id: str,
    *,
    tenant_id: str | None,
    authority: str | None,
    timeout: float | None,
    prompt_callback: PromptCallback | None,
    authentication_record: AuthenticationRecord | None,
    disable_automatic_authentication: bool,
    disable_instance_discovery: bool,
    additionally_allowed_tenants: list[str] | None,
    retry_policy: RetryPolicy | None,
) -> UserSession:
    """Validate the arguments and build the session (shared by the sync and async classes).

    Raises:
        ValueError: an empty client id, a bad tenant or authority, a negative timeout.
        TypeError: ``prompt_callback`` is not callable.
    """
    if not client_id:
        raise ValueError("client_id should be the id of a Microsoft Entra application")
    if timeout is not None:
        timeout = positive_seconds("timeout", timeout)
    if prompt_callback is not None and not callable(prompt_callback):
        raise TypeError(
            "prompt_callback must be callable: prompt_callback(verification_uri, user_code, expires_on)"
        )
    tenant = tenant_id or (authentication_record.tenant_id if authentication_record else DEFAULT_USER_TENANT)
    settings = authority_settings(
        tenant_id=tenant,
        authority=authority,
        disable_instance_discovery=disable_instance_discovery,
        additionally_allowed_tenants=additionally_allowed_tenants,
    )
    return UserSession(
        credential=credential,
        client_id=client_id,
        settings=settings,
        policy=retry_policy or RetryPolicy(),
        interactive=device_code_sign_in(client_id, timeout, prompt_callback),
        authentication_record=authentication_record,
        disable_automatic_authentication=disable_automatic_authentication,
    )


class DeviceCodeCredential(SyncUserCredential):
    """Authenticates users through the device code flow.

    ``get_token`` first tries the account's cached tokens silently; when it must sign the user in,
    it shows a code and a URL (the server's message on stdout, or ``prompt_callback``) and waits
    while the user signs in on any device.

    Args:
        client_id: the public client (default: azure-identity's developer sign-on application).

    Keyword Args:
        tenant_id: the tenant (default ``"organizations"``, or the record's tenant).
        authority: the authority host (default ``login.microsoftonline.com`` or ``AZURE_AUTHORITY_HOST``).
        timeout: seconds to wait for the user (default: until the code expires).
        prompt_callback: ``prompt_callback(verification_uri, user_code, expires_on)`` (an aware UTC
            ``datetime``) instead of printing the server's message.
        authentication_record: the account to use silently (from a previous ``authenticate``).
        disable_automatic_authentication: raise :class:`~identity.AuthenticationRequiredError`
            instead of prompting from ``get_token``.
        cache_persistence_options: a persistent cache for access and refresh tokens.
        disable_instance_discovery: skip instance discovery for a custom authority.
        additionally_allowed_tenants: tenants ``get_token(tenant_id=...)`` may name (``"*"``: any).
        transport / http_client / retry_policy: HTTP plumbing, as for every credential.
    """

    def __init__(
        self,
        client_id: str = DEVELOPER_SIGN_ON_CLIENT_ID,
        *,
        tenant_id: str | None = None,
        authority: str | None = None,
        timeout: float | None = None,
        prompt_callback: PromptCallback | None = None,
        authentication_record: AuthenticationRecord | None = None,
        disable_automatic_authentication: bool = False,
        cache_persistence_options: TokenCachePersistenceOptions | None = None,
        disable_instance_discovery: bool = False,
        additionally_allowed_tenants: list[str] | None = None,
        enable_support_logging: bool = False,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        retry_policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        http = constructor_options(self, locals())
        self._session = device_code_session(
            type(self).__name__,
            client_id,
            tenant_id=tenant_id,
            authority=authority,
            timeout=timeout,
            prompt_callback=prompt_callback,
            authentication_record=authentication_record,
            disable_automatic_authentication=disable_automatic_authentication,
            disable_instance_discovery=disable_instance_discovery,
            additionally_allowed_tenants=additionally_allowed_tenants,
            retry_policy=http.retry_policy,
        )
        self._core = self._session.core
        attach_persistent_cache(self._core, http)
        self._driver = SyncDriver(client=http_client, transport=transport, client_options=http.client_options)
