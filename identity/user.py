"""User sign-in: what every credential a person signs in with shares, sync and async alike.

A :class:`UserSession` holds the token core, the account the credential is bound to (from an
``authentication_record`` or from its first sign-in) and the store of refresh tokens, ID tokens and
accounts (the persistent cache when ``cache_persistence_options`` is given, else memory). Its
acquisition flow, run by the sync or async shell like any other credential's:

    cached access token (the core) -> silent: each refresh token of the account, newest rotation
    first; a revoked or expired one (``invalid_grant``, ``interaction_required``) is forgotten
    -> ``disable_automatic_authentication``? raise AuthenticationRequiredError(scopes, claims)
    -> the credential's interactive sign-in (device code, browser, password, code) -> remember the
       account: ID token checked (``aud``, and ``nonce`` when one was sent), records stored, the
       credential bound to that account.

``authenticate()`` always signs in interactively and returns the :class:`AuthenticationRecord`
(username from ``preferred_username``, else ``upn``; home account id from ``client_info``, else
``oid.tid``). Records hold no secret. Store writes run through the driver (:class:`protocol.flows.
Call`), so an async credential never blocks its event loop on the cache file or its lock.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cache.records import MemoryRecords, RecordStore
from cache.schema import MSSTS, AccountRecord, IdTokenRecord, RefreshTokenRecord
from protocol.authority import Authority, Endpoints, host_aliases
from protocol.claims import CAE_CAPABILITY
from protocol.client_auth import PUBLIC_CLIENT, ClientAuth
from protocol.discovery import resolve_endpoints
from protocol.errors import (
    InteractionRequiredError,
    MalformedResponseError,
    OAuthError,
    ProtocolError,
    SourceUnavailableError,
)
from protocol.flows import Clock, Flow, call
from protocol.id_token import parse_id_token
from protocol.refresh_token import refresh_token_flow
from protocol.responses import TokenResult
from protocol.retry import RetryPolicy

from .auth_record import AuthenticationRecord
from .core import Plan, TokenCore
from .errors import CredentialUnavailableError, describe
from .settings import AuthoritySettings

__all__ = [
    "DEFAULT_USER_TENANT",
    "DEVELOPER_SIGN_ON_CLIENT_ID",
    "SignIn",
    "SignInRequest",
    "UserInteractionRequired",
    "UserSession",
    "default_authenticate_scope",
]

_LOGGER = logging.getLogger("identity")

#: azure-identity's ``DEVELOPER_SIGN_ON_CLIENT_ID`` (the Azure CLI's public client).
DEVELOPER_SIGN_ON_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
#: The default tenant of user credentials: work or school accounts of any tenant.
DEFAULT_USER_TENANT = "organizations"

#: ``authenticate()`` without scopes asks for Azure Resource Manager in the configured cloud.
_ARM_SCOPES = {
    "login.microsoftonline.com": "https://management.core.windows.net//.default",
    "login.microsoftonline.us": "https://management.core.usgovcloudapi.net//.default",
    "login.chinacloudapi.cn": "https://management.core.chinacloudapi.cn//.default",
}


def default_authenticate_scope(authority: Authority) -> str:
    """The scope ``authenticate()`` uses when given none.

    Raises:
        CredentialUnavailableError: the authority is not a known cloud (scopes are required).
    """
    scope = _ARM_SCOPES.get(authority.environment)
    if scope is None:
        raise CredentialUnavailableError(
            message="Authenticating in this environment requires a value for the 'scopes' keyword argument."
        )
    return scope


class UserInteractionRequired(ProtocolError):
    """Silent authentication failed and the credential may not prompt: the public error is
    :class:`~identity.errors.AuthenticationRequiredError` with these ``scopes`` and ``claims``."""

    def __init__(
        self, message: str, *, scopes: Sequence[str], claims: str | None, cause: ProtocolError | None = None
    ) -> None:
        super().__init__(message)
        self.scopes = tuple(scopes)
        self.claims = claims
        self.cause = cause


@dataclass(frozen=True, slots=True)
class SignInRequest:
    """What an interactive sign-in needs for one request."""

    authority: Authority
    endpoints: Endpoints
    scopes: Sequence[str]
    claims: str | None
    policy: RetryPolicy
    clock: Clock


@dataclass(frozen=True, slots=True)
class SignIn:
    """An interactive sign-in's outcome.

    Attributes:
        result: the token response.
        nonce: the nonce sent to the authorize endpoint (the ID token must carry it), if any.
        source: the grant, recorded as the account's ``account_source``.
    """

    result: TokenResult
    nonce: str | None
    source: str


#: The credential's interactive sign-in.
Interactive = Callable[[SignInRequest], Flow[SignIn]]


def _wants_cae(claims: str | None) -> bool:
    """Whether the claims sent declare the CAE capability (its records go to the CAE document)."""
    return bool(claims) and f'"{CAE_CAPABILITY.lower()}"' in (claims or "").lower()


class UserSession:
    """The account, the records and the flows of a user credential (see the module docstring).

    Args:
        credential: the public class name (messages, logs).
        client_id: the public client.
        settings: authority, discovery and tenant rules.
        policy: retries.
        interactive: the credential's own sign-in flow, or ``None`` when it cannot prompt.
        authentication_record: the account to use silently, if known.
        disable_automatic_authentication: never prompt from ``get_token``.
        client_auth: how a confidential client authenticates its refresh requests.
        select_account: picks the account (a ``home_account_id``) when the credential has none yet;
            runs in the driver's worker (it may read files); raises ``SourceUnavailableError``.
        unavailable: the message of the ``CredentialUnavailableError`` raised when silent
            authentication finds nothing and the credential cannot prompt (instead of
            ``AuthenticationRequiredError``).
        family_refresh_tokens: also use the account's refresh tokens of other applications of the
            Microsoft token family (``family_id``), as the shared token cache does.
        forget_refused: remove a refresh token the authority refused (``invalid_grant``,
            ``interaction_required``) from the store. Off by default, as MSAL (and so azure-identity's
            user credentials) keeps it: such refusals are often for one resource (Conditional
            Access, consent) while the token still serves the others.
        within_dac: a member of DefaultAzureCredential: any failure but "sign in interactively"
            is reported as unavailable, so the chain moves on (azure-identity 1.25).
    """

    def __init__(
        self,
        *,
        credential: str,
        client_id: str,
        settings: AuthoritySettings,
        policy: RetryPolicy,
        interactive: Interactive | None,
        authentication_record: AuthenticationRecord | None = None,
        disable_automatic_authentication: bool = False,
        client_auth: ClientAuth = PUBLIC_CLIENT,
        select_account: Callable[[], str] | None = None,
        unavailable: Callable[[], str] | None = None,
        family_refresh_tokens: bool = False,
        forget_refused: bool = False,
        within_dac: bool = False,
        clock: Clock = time.time,
    ) -> None:
        if authentication_record is not None and not isinstance(authentication_record, AuthenticationRecord):
            raise TypeError(
                "authentication_record must be an AuthenticationRecord, not "
                f"{type(authentication_record).__name__}"
            )
        self.credential = credential
        self.client_id = client_id
        self.settings = settings
        self.policy = policy
        self.interactive = interactive
        self.record = authentication_record
        self.disable_automatic_authentication = disable_automatic_authentication
        self.client_auth = client_auth
        self._select_account = select_account
        self._unavailable = unavailable
        self._family = family_refresh_tokens
        self._forget_refused = forget_refused
        self._within_dac = within_dac
        self._memory = MemoryRecords()
        self.core = TokenCore(
            credential=credential,
            client_id=client_id,
            authority=settings.authority,
            acquire=self._acquire,
            additionally_allowed_tenants=settings.additionally_allowed_tenants,
            multitenant_disabled=settings.multitenant_disabled,
            clock=clock,
            account=authentication_record.home_account_id if authentication_record else None,
        )

    # --- stores -------------------------------------------------------------------------------------

    def store(self, *, cae: bool) -> RecordStore:
        """Where records go: the persistent cache's document for ``cae``, or memory."""
        partition = getattr(self.core.cache, "partition", None)
        if partition is None:
            return self._memory
        store: RecordStore = partition(cae=cae)
        return store

    def _refresh_tokens(
        self, account: str, environment: str, cae: bool
    ) -> list[tuple[RecordStore, RefreshTokenRecord]]:
        hosts = host_aliases(environment)
        found: list[tuple[RecordStore, RefreshTokenRecord]] = []
        seen: set[int] = set()
        for flag in (cae, not cae):
            store = self.store(cae=flag)
            if id(store) in seen:
                continue
            seen.add(id(store))
            for record in store.find(RefreshTokenRecord, home_account_id=account):
                usable = record.client_id == self.client_id or (self._family and bool(record.family_id))
                if usable and record.environment in hosts:
                    found.append((store, record))
        found.sort(key=lambda pair: pair[1].last_modification_time or 0, reverse=True)
        return found

    # --- flows --------------------------------------------------------------------------------------

    def _acquire(self, authority: Authority, scopes: Sequence[str], claims: str | None) -> Flow[TokenResult]:
        try:
            return (yield from self._acquire_token(authority, scopes, claims))
        except ProtocolError as exc:
            if not self._within_dac or isinstance(exc, (SourceUnavailableError, UserInteractionRequired)):
                raise
            raise SourceUnavailableError(
                f"{self.credential}: authentication failed. {describe(exc)}"
            ) from exc

    def _acquire_token(
        self, authority: Authority, scopes: Sequence[str], claims: str | None
    ) -> Flow[TokenResult]:
        if self.core.account is None and self._select_account is not None:
            account = yield from call(self._select_account)
            self.core.set_account(account)
        endpoints = yield from resolve_endpoints(
            authority, instance_discovery=self.settings.instance_discovery, policy=self.policy
        )
        result, failure = yield from self._silent(authority, endpoints, scopes, claims)
        if result is not None:
            return result
        if self.interactive is None and self._unavailable is not None:
            if failure is not None:
                raise failure
            raise SourceUnavailableError(self._unavailable())
        if self.disable_automatic_authentication or self.interactive is None:
            raise UserInteractionRequired(
                f"{self.credential}: interactive authentication is required to get a token. Call "
                "'authenticate' to begin."
                + (f" Silent authentication failed: {failure.message}" if failure is not None else ""),
                scopes=scopes,
                claims=claims,
                cause=failure,
            )
        sign_in = yield from self.interactive(
            SignInRequest(authority, endpoints, scopes, claims, self.policy, self.core.clock)
        )
        yield from self.remember(authority, scopes, claims, sign_in)
        return sign_in.result

    def sign_in_flow(
        self, authority: Authority, scopes: Sequence[str], claims: str | None
    ) -> Flow[TokenResult]:
        """``authenticate()``: always interactive.

        Raises:
            UserInteractionRequired: the credential cannot prompt.
        """
        if self.interactive is None:
            raise UserInteractionRequired(
                f"{self.credential} cannot sign a user in interactively.", scopes=scopes, claims=claims
            )
        endpoints = yield from resolve_endpoints(
            authority, instance_discovery=self.settings.instance_discovery, policy=self.policy
        )
        sign_in = yield from self.interactive(
            SignInRequest(authority, endpoints, scopes, claims, self.policy, self.core.clock)
        )
        yield from self.remember(authority, scopes, claims, sign_in)
        return sign_in.result

    def _silent(
        self, authority: Authority, endpoints: Endpoints, scopes: Sequence[str], claims: str | None
    ) -> Flow[tuple[TokenResult | None, ProtocolError | None]]:
        account = self.core.account
        if not account:
            return None, None
        cae = _wants_cae(claims)
        candidates = yield from call(lambda: self._refresh_tokens(account, authority.environment, cae))
        failure: ProtocolError | None = None
        for store, record in candidates:
            try:
                result = yield from refresh_token_flow(
                    endpoints.token_endpoint,
                    client_id=self.client_id,
                    refresh_token=record.secret,
                    scopes=scopes,
                    policy=self.policy,
                    clock=self.core.clock,
                    client_auth=self.client_auth,
                    claims=claims,
                )
            except OAuthError as exc:
                if exc.error not in ("invalid_grant", "interaction_required") and not isinstance(
                    exc, InteractionRequiredError
                ):
                    raise
                if not self._forget_refused:
                    failure = exc
                    continue
                _LOGGER.info(
                    "%s: a cached refresh token was refused (%s); it is forgotten.",
                    self.credential,
                    exc.error,
                )
                yield from call(functools.partial(store.remove_records, record))
                failure = exc
                continue
            if result.refresh_token and result.refresh_token != record.secret:
                # Rotation: the entry that was used gets the new secret (MSAL's update_rt), so a
                # reader in another process finds one current refresh token per account.
                rotated = dataclasses.replace(
                    record, secret=result.refresh_token, last_modification_time=int(self.core.clock())
                )
                yield from call(functools.partial(store.add_records, rotated))
            if result.id_token is not None:
                yield from self.remember(
                    authority, scopes, claims, SignIn(result, None, "refresh_token"), silent=True
                )
            return result, None
        return None, failure

    def remember(
        self,
        authority: Authority,
        scopes: Sequence[str],
        claims: str | None,
        sign_in: SignIn,
        *,
        silent: bool = False,
    ) -> Flow[AuthenticationRecord | None]:
        """Check the ID token, store the account's records and bind the credential to it.

        Raises:
            MalformedResponseError / IdTokenMismatchError: the ID token is missing (a nonce was
                sent) or malformed, or not for this client or sign-in.
        """
        result = sign_in.result
        if result.id_token is None:
            if sign_in.nonce is not None:
                raise MalformedResponseError(
                    "the token response has no id_token although the sign-in asked for one (scope "
                    "'openid'); the sign-in is refused"
                )
            return None
        id_claims = parse_id_token(result.id_token, client_id=self.client_id, nonce=sign_in.nonce)
        home = result.home_account_id or (
            f"{id_claims.object_id}.{id_claims.tenant_id}" if id_claims.tenant_id else id_claims.object_id
        )
        environment = authority.environment
        realm = id_claims.tenant_id or authority.tenant
        now = int(self.core.clock())
        records: list[Any] = [
            AccountRecord(
                home_account_id=home,
                environment=environment,
                realm=realm,
                local_account_id=id_claims.object_id,
                username=id_claims.username,
                authority_type="ADFS" if authority.is_adfs else MSSTS,
                account_source=sign_in.source,
            ),
            IdTokenRecord(
                secret=result.id_token,
                home_account_id=home,
                environment=environment,
                realm=realm,
                client_id=self.client_id,
            ),
        ]
        if result.refresh_token and not silent:  # a silent refresh updated the entry it used
            records.append(
                RefreshTokenRecord(
                    secret=result.refresh_token,
                    home_account_id=home,
                    environment=environment,
                    client_id=self.client_id,
                    target=" ".join(scopes),
                    last_modification_time=now,
                    family_id=result.foci,
                )
            )
        store = self.store(cae=_wants_cae(claims))
        yield from call(lambda: store.add_records(*records))
        host = urlsplit(id_claims.issuer).hostname or environment
        record = AuthenticationRecord(
            tenant_id=realm,
            client_id=self.client_id,
            authority=host if not authority.is_adfs else environment,
            home_account_id=home,
            username=id_claims.username,
        )
        if not silent or self.record is None:
            self.record = record
        self.core.set_account(home)
        return record

    # --- authenticate() -------------------------------------------------------------------------------

    def authenticate_plan(
        self,
        scopes: Iterable[str],
        claims: str | None,
        *,
        tenant_id: str | None = None,
        enable_cae: bool = False,
    ) -> Plan:
        """Validate ``authenticate``'s arguments.

        Raises:
            CredentialUnavailableError: no scopes and the cloud has no default.
            ValueError: an invalid scope.
        """
        scope_list = tuple(scopes) or (default_authenticate_scope(self.core.authority),)
        return self.core.plan(
            scope_list, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, method="authenticate"
        )

    def authenticated(self, plan: Plan, result: TokenResult) -> AuthenticationRecord:
        """Cache the token ``authenticate`` received and return the record.

        Raises:
            ClientAuthenticationError: the sign-in returned no usable ID token.
        """
        self.core.store_result(plan, result)
        if self.record is None:
            raise CredentialUnavailableError(
                message=f"{self.credential}: the sign-in did not identify an account (no id_token)."
            )
        return self.record
