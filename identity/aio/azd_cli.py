"""Async ``AzureDeveloperCliCredential``: the same core as :mod:`identity.azd_cli`, run by the async
driver (``asyncio.create_subprocess_exec``; the event loop is never blocked)."""

from __future__ import annotations

from protocol.drivers import AsyncDriver

from ..azd_cli import azd_core
from ..settings import picklable_arguments
from .credential import AsyncCredential

__all__ = ["AzureDeveloperCliCredential"]


class AzureDeveloperCliCredential(AsyncCredential):
    """Authenticates with the account signed in to the Azure Developer CLI (async).

    Arguments and behaviour as :class:`identity.AzureDeveloperCliCredential`.
    """

    def __init__(
        self,
        *,
        tenant_id: str = "",
        additionally_allowed_tenants: list[str] | None = None,
        process_timeout: int = 10,
        _within_dac: bool = False,
    ) -> None:
        self._arguments = picklable_arguments(locals())
        self._core = azd_core(
            type(self).__name__,
            tenant_id=tenant_id,
            additionally_allowed_tenants=additionally_allowed_tenants,
            process_timeout=process_timeout,
            within_dac=_within_dac,
        )
        self._driver = AsyncDriver()
