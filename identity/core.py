"""The ``get_token`` template's decisions, shared by every sync and async credential.

A credential holds a :class:`TokenCore` (composition): the core validates a request, resolves its
tenant, looks in the cache, builds the acquisition flow and stores the result. The sync and async
credential shells (:mod:`identity.credential`, :mod:`identity.aio.credential`) only add locking and
run the flow with their driver:

    plan -> cached? FRESH: return
         -> single flight per cache key -> second look -> run flow -> store -> return
         (STALE: one caller refreshes while the others keep getting the cached token; a failed
          proactive refresh keeps serving it and pauses refreshes for 30 s)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from cache.errors import TokenCacheError
from cache.memory import AccessTokenEntry, CacheKey, Freshness, MemoryTokenCache, fresh_until, freshness
from cache.store import AccessTokenStore
from protocol.authority import Authority, validate_tenant_id
from protocol.claims import CAE_CAPABILITY, merge_claims
from protocol.errors import ProtocolError, SourceUnavailableError
from protocol.flows import Flow
from protocol.responses import TokenResult
from protocol.single_flight import KeyedLocks

from .errors import ClientAuthenticationError, authentication_failed
from .tokens import AccessToken, AccessTokenInfo, TokenRequestOptions

__all__ = ["AcquireFlow", "Attempt", "Plan", "TokenCore", "check_scopes", "resolve_tenant"]

_LOGGER = logging.getLogger("identity")

#: Builds the flow that acquires a token: (authority for the resolved tenant, scopes, claims to send).
AcquireFlow = Callable[[Authority, Sequence[str], "str | None"], Flow[TokenResult]]


def check_scopes(scopes: tuple[str, ...], method: str) -> None:
    """``ValueError`` unless ``scopes`` holds at least one non-empty string."""
    if not scopes:
        raise ValueError(f'"{method}" requires at least one scope')
    for scope in scopes:
        if not isinstance(scope, str) or not scope.strip():
            raise ValueError(f"Each scope must be a non-empty string, got {scope!r}.")


def resolve_tenant(
    default_tenant: str,
    requested: str | None,
    *,
    additionally_allowed_tenants: Sequence[str],
    multitenant_disabled: bool,
    credential: str,
) -> str:
    """The tenant a request goes to, by azure-identity's rules.

    Raises:
        ValueError: ``requested`` is not a valid tenant id.
        ClientAuthenticationError: ``requested`` is not allowed for this credential.
    """
    if not requested or requested == default_tenant:
        return default_tenant
    validate_tenant_id(requested)
    if default_tenant == "adfs" or multitenant_disabled:
        _LOGGER.info(
            "%s: a token was requested for tenant %s, but the configured tenant %s was used because "
            "multi-tenant authentication is disabled (adfs, or AZURE_IDENTITY_DISABLE_MULTITENANTAUTH).",
            credential,
            requested,
            default_tenant,
        )
        return default_tenant
    if not default_tenant:
        return requested
    if "*" in additionally_allowed_tenants or requested in additionally_allowed_tenants:
        _LOGGER.info("%s: acquiring a token for additionally allowed tenant %s.", credential, requested)
        return requested
    if not additionally_allowed_tenants and default_tenant == "organizations":
        return requested
    raise ClientAuthenticationError(
        message=f"{credential}: the current credential is not configured to acquire tokens for tenant "
        f"{requested}. To enable acquiring tokens for this tenant add it to the "
        'additionally_allowed_tenants when creating the credential, or add "*" to '
        "additionally_allowed_tenants to allow acquiring tokens for any tenant."
    )


#: A request as the caller wrote it: (scopes, tenant_id, enable_cae). The fast path looks it up
#: directly, before any validation, so a cached token costs one dictionary probe.
RequestKey = tuple[tuple[str, ...], "str | None", bool]


@dataclass(frozen=True, slots=True)
class FastEntry:
    """A token ready to hand out, valid for the fast path until ``until`` (epoch seconds)."""

    until: float
    token: AccessToken
    info: AccessTokenInfo


@dataclass(frozen=True, slots=True)
class Plan:
    """One validated token request.

    Attributes:
        key: the cache key.
        authority: the authority with the resolved tenant.
        scopes: the requested scopes, in the caller's order.
        claims: the ``claims`` value to send (challenge merged with capabilities), or ``None``.
        bypass_cache: a claims challenge was given: the cached token is not good enough.
    """

    key: CacheKey
    authority: Authority
    scopes: tuple[str, ...]
    claims: str | None
    bypass_cache: bool
    request_key: RequestKey | None = None


class TokenCore:
    """Request validation, tenant resolution, caching and error mapping for one credential.

    Args:
        credential: the public class name, used in messages and logs.
        client_id: the application id (part of the cache key).
        authority: the configured authority and tenant.
        acquire: builds the acquisition flow for a plan.
        additionally_allowed_tenants: tenants (or ``"*"``) a per-call ``tenant_id`` may name.
        multitenant_disabled: ``AZURE_IDENTITY_DISABLE_MULTITENANTAUTH`` was set.
        cache: the access-token store (a fresh one by default).
        clock: epoch seconds.
        account: the account dimension of cache keys (``None`` for app-only tokens; on-behalf-of
            credentials bind tokens to their user assertion here).
    """

    def __init__(
        self,
        *,
        credential: str,
        client_id: str,
        authority: Authority,
        acquire: AcquireFlow,
        additionally_allowed_tenants: Sequence[str] = (),
        multitenant_disabled: bool = False,
        cache: AccessTokenStore | None = None,
        clock: Callable[[], float] = time.time,
        account: str | None = None,
    ) -> None:
        self.credential = credential
        self.client_id = client_id
        self.authority = authority
        self._acquire = acquire
        self._allowed = tuple(additionally_allowed_tenants)
        self._multitenant_disabled = multitenant_disabled
        self.cache: AccessTokenStore = cache if cache is not None else MemoryTokenCache()
        self.clock = clock
        self.account = account
        self.locks: KeyedLocks[CacheKey] = KeyedLocks()
        #: The fast path: requests as written by callers -> tokens that are FRESH until a time.
        self.fast: dict[RequestKey, FastEntry] = {}
        self._plans: dict[RequestKey, Plan] = {}
        self._fast_keys: dict[CacheKey, set[RequestKey]] = {}
        self._fast_lock = threading.Lock()  # orders fast-path writes against token replacement
        # Per key: how many acquisitions have finished, and the last one's failure (if it failed),
        # so callers that waited for an attempt get its outcome instead of trying again.
        self._generations: dict[CacheKey, int] = {}
        self._failures: dict[CacheKey, tuple[int, ProtocolError]] = {}

    def plan(
        self,
        scopes: Iterable[str],
        *,
        claims: str | None,
        tenant_id: str | None,
        enable_cae: bool,
        method: str = "get_token",
    ) -> Plan:
        """Validate a request and decide where it goes.

        Raises:
            ValueError: no scope, a scope that is not a non-empty string, an invalid tenant id, or
                claims that are not a JSON object when CAE is enabled.
            ClientAuthenticationError: the tenant is not allowed.
        """
        scope_list = tuple(scopes)
        request_key: RequestKey | None = None if claims else (scope_list, tenant_id, enable_cae)
        if request_key is not None:
            try:
                known = self._plans.get(request_key)  # a plan depends only on the request and the config
            except TypeError:  # an unhashable "scope": validation below says what is wrong
                request_key, known = None, None
            if known is not None:
                return known
        check_scopes(scope_list, method)
        plan = self.new_plan(scope_list, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae)
        plan = replace(plan, request_key=request_key)
        if request_key is not None:
            self._plans[request_key] = plan
        return plan

    def new_plan(
        self, scope_list: tuple[str, ...], *, claims: str | None, tenant_id: str | None, enable_cae: bool
    ) -> Plan:
        """Decide where a validated request goes (subclasses for other token sources override it)."""
        tenant = resolve_tenant(
            self.authority.tenant,
            tenant_id,
            additionally_allowed_tenants=self._allowed,
            multitenant_disabled=self._multitenant_disabled,
            credential=self.credential,
        )
        authority = self.authority if tenant == self.authority.tenant else self.authority.with_tenant(tenant)
        wire_claims = merge_claims(claims, [CAE_CAPABILITY] if enable_cae else [])
        key = CacheKey.for_access_token(
            environment=authority.environment,
            tenant=tenant,
            client_id=self.client_id,
            scopes=scope_list,
            cae=enable_cae,
            account=self.account,
        )
        bypass = bool(claims and claims.strip())
        return Plan(key, authority, scope_list, wire_claims, bypass_cache=bypass)

    def cached(self, plan: Plan) -> tuple[AccessTokenEntry | None, Freshness]:
        """The cached entry for ``plan`` and its freshness (``EXPIRED`` when there is none)."""
        if plan.bypass_cache:
            return None, Freshness.EXPIRED
        entry = self._read(plan.key)
        if entry is None:
            return None, Freshness.EXPIRED
        return entry, freshness(entry, self.clock())

    def ticket(self, plan: Plan) -> int:
        """Taken before waiting for the single-flight lock: identifies the attempts that finish while
        the caller waits."""
        return self._generations.get(plan.key, 0)

    def attempt(self, plan: Plan, ticket: int) -> AccessTokenInfo | Attempt:
        """Second look, under the single-flight lock.

        Returns the token another caller stored while this one waited, or an :class:`Attempt` to run.

        Raises:
            ClientAuthenticationError: the attempt this caller waited for failed; every waiter gets
                that failure instead of sending the same doomed request again.
        """
        entry, state = self.cached(plan)
        if entry is not None and state is Freshness.FRESH:
            return self.serve(plan, entry)
        failure = None if plan.bypass_cache else self._failures.get(plan.key)
        if failure is not None and failure[0] > ticket:
            raise authentication_failed(self.credential, failure[1]) from failure[1]
        return Attempt(self, plan, entry if state is Freshness.STALE else None)

    def finished(self, plan: Plan, error: ProtocolError | None) -> None:
        """Record the outcome of an attempt (called under the single-flight lock)."""
        generation = self._generations.get(plan.key, 0) + 1
        self._generations[plan.key] = generation
        # A claims request differs from the others on its key: its failure is its own.
        if error is None or plan.bypass_cache:
            self._failures.pop(plan.key, None)
        else:
            self._failures[plan.key] = (generation, error)

    def flow(self, plan: Plan) -> Flow[TokenResult]:
        """The acquisition flow for ``plan``."""
        return self._acquire(plan.authority, plan.scopes, plan.claims)

    def describe(self) -> str:
        """Secret-free constructor summary for ``repr``."""
        return (
            f"tenant_id={self.authority.tenant!r}, client_id={self.client_id!r}, "
            f"authority={self.authority.base!r}"
        )

    def serve(self, plan: Plan, entry: AccessTokenEntry) -> AccessTokenInfo:
        """Hand out a FRESH ``entry`` and remember it for the fast path."""
        info = self.info(entry)
        if plan.request_key is not None:
            fast = FastEntry(fresh_until(entry), AccessToken(entry.token, entry.expires_on), info)
            with self._fast_lock:
                # Not replaced meanwhile by a newer token, and the credential still bound to the
                # plan's account (a user credential may have signed another user in meanwhile).
                if plan.key.account == self.account and self._read(plan.key) is entry:
                    self.fast[plan.request_key] = fast
                    self._fast_keys.setdefault(plan.key, set()).add(plan.request_key)
        return info

    def replace(self, plan: Plan, entry: AccessTokenEntry) -> None:
        """Store a new token for ``plan``'s key; the fast path forgets the one it replaces."""
        with self._fast_lock:
            self.write(plan.key, entry)
            for request_key in self._fast_keys.pop(plan.key, ()):
                self.fast.pop(request_key, None)

    def _read(self, key: CacheKey) -> AccessTokenEntry | None:
        """The cached entry; a persistent store that cannot be read counts as a miss (WARNING)."""
        try:
            return self.cache.get(key)
        except TokenCacheError as exc:
            _LOGGER.warning("%s: the token cache cannot be read, so it is bypassed: %s", self.credential, exc)
            return None

    def write(self, key: CacheKey, entry: AccessTokenEntry) -> None:
        """Store ``entry``; when a persistent store refuses (lock timeout, disk, a planted link) the
        token is still handed out, and the failure is logged at WARNING."""
        try:
            self.cache.put(key, entry)
        except TokenCacheError as exc:
            _LOGGER.warning("%s: the token could not be stored in the token cache: %s", self.credential, exc)

    def set_account(self, account: str | None) -> None:
        """Bind the credential to ``account`` (a user credential learns it at sign-in): cache keys
        change, so memoized plans and fast-path entries are dropped."""
        with self._fast_lock:
            if account == self.account:
                return
            self.account = account
            self._plans.clear()
            self.fast.clear()
            self._fast_keys.clear()

    def settle(self, plan: Plan) -> Plan:
        """The plan a new token is stored under: a plan made before the credential knew its account
        gets the account it learned during the flow (its first sign-in)."""
        if plan.key.account is not None or self.account is None:
            return plan  # a token of a known account stays that account's, whatever is bound now
        return replace(plan, key=replace(plan.key, account=self.account))

    def store_result(self, plan: Plan, result: TokenResult) -> AccessTokenInfo:
        """Cache a token acquired outside ``get_token`` (``authenticate``) and return it."""
        settled = self.settle(plan)
        entry = AccessTokenEntry(
            token=result.access_token,
            token_type=result.token_type,
            expires_on=result.expires_on,
            refresh_on=result.refresh_on,
        )
        self.replace(settled, entry)
        return self.serve(settled, entry)

    @property
    def unsaved(self) -> int:
        """Tokens a write-behind persistent store holds in memory and has not written yet."""
        pending: int = getattr(self.cache, "pending", 0)
        return pending

    def flush(self) -> None:
        """Write a persistent store's pending tokens to its file now (a failure is a WARNING)."""
        flush = getattr(self.cache, "flush", None)
        if flush is None:
            return
        try:
            flush()
        except TokenCacheError as exc:
            _LOGGER.warning("%s: tokens could not be saved in the token cache: %s", self.credential, exc)

    def fast_hit(self, scopes: tuple[str, ...], tenant_id: str | None, enable_cae: bool) -> FastEntry | None:
        """The fast path: a FRESH token for exactly this request, or ``None`` (then take the slow
        path, which also reports invalid arguments)."""
        try:
            hit = self.fast.get((scopes, tenant_id, enable_cae))
        except TypeError:  # an unhashable "scope": the slow path says what is wrong
            return None
        if hit is not None and self.clock() < hit.until:
            return hit
        return None

    @staticmethod
    def info(entry: AccessTokenEntry) -> AccessTokenInfo:
        return AccessTokenInfo(
            entry.token, entry.expires_on, token_type=entry.token_type, refresh_on=entry.refresh_on
        )

    @staticmethod
    def options(options: TokenRequestOptions | None) -> tuple[str | None, str | None, bool]:
        """``(claims, tenant_id, enable_cae)`` from ``get_token_info`` options (unknown keys ignored)."""
        if not options:
            return None, None, False
        return options.get("claims"), options.get("tenant_id"), bool(options.get("enable_cae", False))


class Attempt:
    """One acquisition under the single-flight lock: the flow to run and what to do with its outcome.

    ``stale`` is the cached token being refreshed proactively, if any: when the refresh fails it
    keeps being served (and refreshes pause for 30 s) instead of failing the caller.
    """

    __slots__ = ("_core", "_plan", "stale")

    def __init__(self, core: TokenCore, plan: Plan, stale: AccessTokenEntry | None) -> None:
        self._core = core
        self._plan = plan
        self.stale = stale

    def flow(self) -> Flow[TokenResult]:
        return self._core.flow(self._plan)

    def succeeded(self, result: TokenResult) -> AccessTokenInfo:
        """Cache the new token and return it."""
        core = self._core
        entry = AccessTokenEntry(
            token=result.access_token,
            token_type=result.token_type,
            expires_on=result.expires_on,
            refresh_on=result.refresh_on,
        )
        plan = core.settle(self._plan)
        core.replace(plan, entry)
        core.finished(self._plan, None)
        _LOGGER.info("%s.get_token_info succeeded", core.credential)
        return core.serve(plan, entry)

    def failed(self, exc: ProtocolError) -> AccessTokenInfo:
        """Keep serving a still-valid token after a failed proactive refresh; otherwise raise the
        public error."""
        core = self._core
        core.finished(self._plan, exc)
        if self.stale is not None:
            core.write(self._plan.key, self.stale.deferred(core.clock()))
            _LOGGER.warning(
                "%s: proactive token refresh failed; the cached token stays in use until it expires. %s",
                core.credential,
                exc.message,
            )
            return core.info(self.stale)
        error = authentication_failed(core.credential, exc)
        unavailable = isinstance(exc, SourceUnavailableError)
        _LOGGER.log(logging.INFO if unavailable else logging.WARNING, "%s", error.message)
        raise error from exc
