"""Async ``DefaultAzureCredential``: the members and rules of :mod:`identity.default`, awaited."""

from __future__ import annotations

import time
from typing import Any

from ..default import _SENTINEL, Attempts, _name, build_members, log_sticky, member_specs
from ..errors import CredentialUnavailableError
from .chained import ChainedTokenCredential

__all__ = ["DefaultAzureCredential"]


class UnavailableMember:
    """Stands in for a member whose construction failed (async)."""

    def __init__(self, name: str, message: str) -> None:
        self.credential_name = name
        self._message = message

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise CredentialUnavailableError(message=self._message)

    async def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        raise CredentialUnavailableError(message=self._message)

    async def close(self) -> None:
        """Nothing to close."""


class DefaultAzureCredential(ChainedTokenCredential):
    """The default chain (async); see :class:`identity.DefaultAzureCredential`. The interactive
    browser and broker members are sync only, as in azure-identity."""

    def __init__(
        self,
        *,
        authority: str | None = None,
        exclude_environment_credential: bool | None = None,
        exclude_workload_identity_credential: bool | None = None,
        exclude_managed_identity_credential: bool | None = None,
        exclude_shared_token_cache_credential: bool | None = None,
        exclude_visual_studio_code_credential: bool | None = None,
        exclude_cli_credential: bool | None = None,
        exclude_powershell_credential: bool | None = None,
        exclude_developer_cli_credential: bool | None = None,
        managed_identity_client_id: str | None = _SENTINEL,
        workload_identity_client_id: str | None = None,
        workload_identity_tenant_id: str | None = None,
        shared_cache_username: str | None = None,
        shared_cache_tenant_id: str | None = None,
        visual_studio_code_tenant_id: str | None = None,
        process_timeout: int = 10,
        require_envvar: bool = False,
        **kwargs: Any,
    ) -> None:
        arguments = {
            name: value for name, value in locals().items() if name not in ("self", "kwargs", "__class__")
        }
        specs, _ = member_specs(arguments, kwargs, is_async=True)
        import identity.aio

        members = build_members(specs, lambda name: getattr(identity.aio, name), UnavailableMember)
        if not members:
            raise ValueError("DefaultAzureCredential: every credential is excluded; include at least one.")
        super().__init__(*members)
        self._selected: Any = None

    @property
    def selected_credential(self) -> Any:
        """The member that provided the first token (``None`` before that)."""
        return self._selected

    @property
    def selected_credential_name(self) -> str | None:
        """The selected member's class name (``None`` before the first token)."""
        return _name(self._selected) if self._selected is not None else None

    async def _walk(self, call: Any) -> Any:
        selected = self._selected
        if selected is not None:
            result = await call(selected)
            log_sticky(selected)
            return result
        attempts = Attempts()

        async def timed(member: Any) -> Any:
            start = time.perf_counter()
            try:
                result = await call(member)
            except Exception as exc:
                attempts.failed(member, start, exc)
                raise
            attempts.succeeded(member, start)
            return result

        result = await super()._walk(timed)
        self._selected = attempts.selected()
        return result
