"""Async ``AzurePowerShellCredential``: the same core as :mod:`identity.azure_powershell`, run by the
async driver (``asyncio.create_subprocess_exec``; the event loop is never blocked)."""

from __future__ import annotations

from protocol.drivers import AsyncDriver

from ..azure_powershell import azure_powershell_core
from ..settings import picklable_arguments
from .credential import AsyncCredential

__all__ = ["AzurePowerShellCredential"]


class AzurePowerShellCredential(AsyncCredential):
    """Authenticates with the account signed in to Azure PowerShell (async).

    Arguments and behaviour as :class:`identity.AzurePowerShellCredential`.
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
        self._core = azure_powershell_core(
            type(self).__name__,
            tenant_id=tenant_id,
            additionally_allowed_tenants=additionally_allowed_tenants,
            process_timeout=process_timeout,
            within_dac=_within_dac,
        )
        self._driver = AsyncDriver()
