"""``SharedTokenCacheCredential``: the accounts Microsoft developer tools left in the persistent
token cache they share (``~/.IdentityService/msal.cache.nocae`` and ``.cae``; another cache with
``cache_persistence_options``).

Construction reads nothing; the first ``get_token`` opens the cache (plaintext allowed, as
azure-identity does for this credential) and picks the account:

* with an ``authentication_record``: that account;
* otherwise the cache's accounts in this cloud (the authority or a known alias) that hold a refresh
  token of the Microsoft application family (``family_id``), filtered by ``username`` and the
  tenant (the part of ``home_account_id`` after the dot, when ``tenant_id`` is given); exactly one
  must remain, else ``CredentialUnavailableError`` with azure-identity's messages.

Tokens: the account's refresh tokens (any family member's) are redeemed as the developer sign-on
client in ``organizations``; new tokens go back to the shared cache. A refused refresh token is
left in place (it belongs to another tool) and its error is raised.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from typing import Any

import httpx

from cache.schema import AccountRecord, RefreshTokenRecord
from protocol.authority import host_aliases
from protocol.drivers import SyncDriver
from protocol.errors import SourceUnavailableError
from protocol.retry import RetryPolicy

from .auth_record import AuthenticationRecord
from .credential import SyncCredential
from .http_options import HttpOptions
from .persistence_options import TokenCachePersistenceOptions
from .settings import authority_settings, constructor_options, open_persistent_cache
from .user import DEFAULT_USER_TENANT, DEVELOPER_SIGN_ON_CLIENT_ID, UserSession

__all__ = ["SharedTokenCacheCredential", "shared_cache_session"]

_PREFIX = "SharedTokenCacheCredential authentication unavailable."
NO_ACCOUNTS = f"{_PREFIX} No accounts were found in the cache."
MULTIPLE_ACCOUNTS = (
    f"{_PREFIX} Multiple accounts were found in the cache. Use username and tenant id to disambiguate."
)


def _matching(username: str | None, tenant_id: str | None) -> str:
    parts = []
    if username:
        parts.append(f"username: {username}")
    if tenant_id:
        parts.append(f"tenant: {tenant_id}")
    return " ".join(parts)


def shared_cache_session(
    credential: str,
    username: str | None,
    *,
    tenant_id: str | None,
    authority: str | None,
    authentication_record: AuthenticationRecord | None,
    persistence: TokenCachePersistenceOptions | None,
    retry_policy: RetryPolicy | None,
    additionally_allowed_tenants: list[str] | None = None,
    within_dac: bool = False,
    missing_record: str | None = None,
    unavailable_message: Callable[[str], str] | None = None,
) -> UserSession:
    """Build the session; the cache is opened and the account chosen at the first request.

    ``missing_record``: why there is no record although one is required (VS Code): the first
    request is unavailable with it. ``unavailable_message`` rewrites the message of "no token for
    the account" (VS Code explains the broker).

    Raises:
        ValueError: a bad tenant or authority.
    """
    options = persistence or TokenCachePersistenceOptions(allow_unencrypted_storage=True)
    if authentication_record is not None:
        # The record's account, in the record's tenant (a guest account gets that tenant's tokens),
        # with the record's application and authority host, as azure-identity does.
        tenant = tenant_id or authentication_record.tenant_id
        client_id = authentication_record.client_id
        authority = authority or authentication_record.authority
    else:
        # Any account: redeemed in "organizations"; tenant_id only chooses among the accounts.
        tenant, client_id = DEFAULT_USER_TENANT, DEVELOPER_SIGN_ON_CLIENT_ID
    settings = authority_settings(
        tenant_id=tenant,
        authority=authority,
        disable_instance_discovery=False,
        additionally_allowed_tenants=additionally_allowed_tenants,
    )
    session: UserSession
    chosen: list[str] = []

    def open_cache() -> Any:
        if getattr(session.core.cache, "partition", None) is None:
            try:
                session.core.cache = open_persistent_cache(options)
            except (ValueError, OSError) as exc:
                raise SourceUnavailableError(f"Shared token cache unavailable: {exc}") from exc
        return session.core.cache

    def select_account() -> str:
        if missing_record is not None:
            raise SourceUnavailableError(missing_record)
        cache = open_cache()
        if authentication_record is not None:
            chosen.append(authentication_record.username)
            return authentication_record.home_account_id
        hosts = host_aliases(settings.authority.environment)
        accounts: dict[str, AccountRecord] = {}
        family: set[str] = set()
        for cae in (False, True):
            partition = cache.partition(cae=cae)
            for account in partition.find(AccountRecord):
                if account.environment in hosts:
                    accounts.setdefault(account.home_account_id, account)
            for token in partition.find(RefreshTokenRecord):
                if token.family_id and token.home_account_id and token.environment in hosts:
                    family.add(token.home_account_id)
        candidates = [a for home, a in accounts.items() if home in family]
        if not candidates:
            raise SourceUnavailableError(NO_ACCOUNTS)
        if username or tenant_id:
            candidates = [
                a
                for a in candidates
                if (not username or a.username == username)
                and (not tenant_id or a.home_account_id.partition(".")[2] == tenant_id)
            ]
            if not candidates:
                raise SourceUnavailableError(
                    f"{_PREFIX} No account matching the specified {_matching(username, tenant_id)} was "
                    "found in the cache."
                )
            if len(candidates) > 1:
                raise SourceUnavailableError(
                    f"{_PREFIX} Multiple accounts matching the specified {_matching(username, tenant_id)} "
                    "were found in the cache."
                )
        elif len(candidates) > 1:
            raise SourceUnavailableError(MULTIPLE_ACCOUNTS)
        chosen.append(candidates[0].username)
        return candidates[0].home_account_id

    def unavailable() -> str:
        who = chosen[-1] if chosen else (username or "")
        message = (
            f"Token acquisition failed for user '{who}'. To fix, re-authenticate through developer tooling "
            "supporting Azure single sign on"
        )
        return unavailable_message(message) if unavailable_message is not None else message

    session = UserSession(
        credential=credential,
        client_id=client_id,
        settings=settings,
        policy=retry_policy or RetryPolicy(),
        interactive=None,
        select_account=select_account,
        unavailable=unavailable,
        family_refresh_tokens=True,
        forget_refused=False,
        within_dac=within_dac,
    )
    return session


class SharedTokenCacheCredential(SyncCredential):
    """Authenticates using tokens in the local cache shared between Microsoft applications.

    Args:
        username: the account to use when the cache holds several.

    Keyword Args:
        tenant_id: the account's tenant, to choose among several accounts.
        authority: the authority host.
        authentication_record: the account to use.
        cache_persistence_options: another cache than the default ``msal.cache``.
        transport, http_client, retry_policy: as for every credential.
    """

    def __init__(
        self,
        username: str | None = None,
        *,
        tenant_id: str | None = None,
        authority: str | None = None,
        authentication_record: AuthenticationRecord | None = None,
        cache_persistence_options: TokenCachePersistenceOptions | None = None,
        additionally_allowed_tenants: list[str] | None = None,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        retry_policy: RetryPolicy | None = None,
        _within_dac: bool = False,
        **kwargs: Any,
    ) -> None:
        http: HttpOptions = constructor_options(self, locals())
        self._session = shared_cache_session(
            type(self).__name__,
            username,
            tenant_id=tenant_id,
            authority=authority,
            authentication_record=authentication_record,
            persistence=http.persistence,
            retry_policy=http.retry_policy,
            additionally_allowed_tenants=additionally_allowed_tenants,
            within_dac=_within_dac,
        )
        self._core = self._session.core
        self._driver = SyncDriver(client=http_client, transport=transport, client_options=http.client_options)

    @staticmethod
    def supported() -> bool:
        """Whether the shared cache can be used on this platform (Windows, macOS, Linux)."""
        return platform.system() in {"Windows", "Darwin", "Linux"}
