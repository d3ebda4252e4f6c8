"""The token core of credentials whose tokens do not come from an Entra token endpoint: managed
identity endpoints and developer tools (Azure CLI, Azure Developer CLI, Azure PowerShell).

They share everything with the other credentials (fast path, cache, single flight, proactive
refresh, failure sharing: :class:`identity.core.TokenCore`) except where a request goes:

* a *source* (``"managed_identity:imds"``, ``"azure_cli"``) replaces the authority in cache keys;
* most of them take exactly one scope, sent as a resource (``https://vault.azure.net/.default`` ->
  ``https://vault.azure.net``);
* a per-call ``tenant_id`` is ignored (managed identity) or resolved by the usual rules and handed
  to the tool (developer tools);
* ``claims`` bypass the cache and are handed to the flow, which decides what they mean.

A developer tool's token is cached until it is stale, and forgotten as soon as the tool's sign-in
state changes (:class:`FileWatch`): a new ``az login`` is picked up by the next call.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Iterable, Sequence

from cache.memory import AccessTokenEntry, CacheKey
from protocol.authority import Authority
from protocol.flows import Flow
from protocol.responses import TokenResult

from .core import FastEntry, Plan, TokenCore, resolve_tenant

__all__ = ["FileWatch", "ResourceCore", "ResourceFlow", "SINGLE_SCOPE_MESSAGE", "scope_to_resource"]

#: Builds the acquisition flow: (scopes as the caller wrote them, resolved tenant or "", claims).
ResourceFlow = Callable[[tuple[str, ...], str, "str | None"], Flow[TokenResult]]

SINGLE_SCOPE_MESSAGE = "This credential requires exactly one scope per token request."


def scope_to_resource(scope: str) -> str:
    """The resource a scope names: a trailing ``/.default`` is removed, anything else is kept."""
    return scope[: -len("/.default")] if scope.endswith("/.default") else scope


class FileWatch:
    """Notices when any of a set of files is created, changed or removed (one ``stat`` each).

    Args:
        paths: the files to watch (they need not exist).
    """

    __slots__ = ("_paths", "_signature")

    def __init__(self, paths: Iterable[str]) -> None:
        self._paths = tuple(paths)
        self._signature = self._read()

    def _read(self) -> tuple[tuple[int, int] | None, ...]:
        signature: list[tuple[int, int] | None] = []
        for path in self._paths:
            try:
                stat = os.stat(path)
            except OSError:
                signature.append(None)
            else:
                signature.append((stat.st_mtime_ns, stat.st_size))
        return tuple(signature)

    def changed(self, absorb: Collection[str] = ()) -> bool:
        """Whether a file changed since the last call (or since construction). Changes to the
        files in ``absorb`` are taken in without counting (a tool's own token-cache writes)."""
        current = self._read()
        if current == self._signature:
            return False
        previous, self._signature = self._signature, current
        return any(
            before != after and path not in absorb
            for path, before, after in zip(self._paths, previous, current, strict=True)
        )

    @property
    def paths(self) -> tuple[str, ...]:
        return self._paths


class ResourceCore(TokenCore):
    """A :class:`TokenCore` for a non-Entra token source.

    Args:
        credential: the public class name.
        source: names the token source in cache keys and ``repr`` (``"managed_identity:imds"``).
        identity: the identity tokens are for (a user-assigned identity's id, ``""`` otherwise).
        acquire: builds the acquisition flow.
        single_scope: exactly one scope per request (``ValueError`` otherwise).
        tenant_id: the configured tenant (``""``: the tool's default).
        tenant_aware: resolve a per-call ``tenant_id`` (else it is ignored).
        additionally_allowed_tenants, multitenant_disabled: the usual tenant rules.
        watch: files whose change drops every cached token (a developer tool's sign-in state).
        description: the ``repr`` arguments.
    """

    def __init__(
        self,
        *,
        credential: str,
        source: str,
        identity: str,
        acquire: ResourceFlow,
        single_scope: bool = True,
        tenant_id: str = "",
        tenant_aware: bool = False,
        additionally_allowed_tenants: Sequence[str] = (),
        multitenant_disabled: bool = False,
        watch: FileWatch | None = None,
        description: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            credential=credential,
            client_id=identity,
            authority=Authority(source, tenant_id),
            acquire=self._unused,
            additionally_allowed_tenants=additionally_allowed_tenants,
            multitenant_disabled=multitenant_disabled,
            clock=clock,
        )
        self.source = source
        self._resource_acquire = acquire
        self._single_scope = single_scope
        self._tenant_aware = tenant_aware
        self._watch = watch
        self._description = description
        if watch is None:  # nothing to check: the fast path is TokenCore's own, without a layer
            self.fast_hit = TokenCore.fast_hit.__get__(self)  # type: ignore[method-assign]
        #: Bumped by :meth:`forget`; a token acquired across a bump is not cached.
        self.epoch = 0
        self._flow_epochs: dict[CacheKey, int] = {}

    @staticmethod
    def _unused(authority: Authority, scopes: Sequence[str], claims: str | None) -> Flow[TokenResult]:
        raise AssertionError("ResourceCore builds flows itself")  # pragma: no cover

    def new_plan(
        self, scope_list: tuple[str, ...], *, claims: str | None, tenant_id: str | None, enable_cae: bool
    ) -> Plan:
        if self._single_scope and len(scope_list) != 1:
            raise ValueError(SINGLE_SCOPE_MESSAGE)
        tenant = self.authority.tenant
        if self._tenant_aware:
            tenant = resolve_tenant(
                tenant,
                tenant_id,
                additionally_allowed_tenants=self._allowed,
                multitenant_disabled=self._multitenant_disabled,
                credential=self.credential,
            )
        key = CacheKey.for_access_token(
            environment=self.source,
            tenant=tenant,
            client_id=self.client_id,
            scopes=[scope_to_resource(scope) for scope in scope_list] if self._single_scope else scope_list,
            cae=enable_cae,
        )
        authority = self.authority if tenant == self.authority.tenant else Authority(self.source, tenant)
        return Plan(key, authority, scope_list, claims or None, bypass_cache=bool(claims and claims.strip()))

    def flow(self, plan: Plan) -> Flow[TokenResult]:
        self._flow_epochs[plan.key] = self.epoch  # under the key's single-flight lock
        return self._resource_acquire(plan.scopes, plan.authority.tenant, plan.claims)

    def replace(self, plan: Plan, entry: AccessTokenEntry) -> None:
        if self._flow_epochs.pop(plan.key, self.epoch) != self.epoch:
            return  # the sign-in changed while it was acquired: hand it out, do not keep it
        super().replace(plan, entry)

    def fast_hit(self, scopes: tuple[str, ...], tenant_id: str | None, enable_cae: bool) -> FastEntry | None:
        if self._watch is not None and self._watch.changed():
            self.forget()
        return super().fast_hit(scopes, tenant_id, enable_cae)

    def forget(self) -> None:
        """Drop every cached token (the source's sign-in state changed)."""
        with self._fast_lock:
            self.epoch += 1
            self.cache.clear()
            self.fast.clear()
            self._fast_keys.clear()

    def describe(self) -> str:
        return self._description
