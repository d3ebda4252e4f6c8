"""Fixtures of the protocol tests.

``wire`` runs a flow three ways from one parametrised fixture: through ``run_sync_flow`` with the
fake authority's ``send``, and through the real :class:`SyncDriver` and :class:`AsyncDriver` over
``httpx.MockTransport``. ``driven`` is the same without ``run_sync_flow`` (for tests about sleeping,
memoization or transport translation, which only the drivers do).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from protocol.drivers import AsyncDriver, SyncDriver
from protocol.flows import Flow, run_sync_flow

from .helpers import CertMaterial, Router, cert_material


class Wire:
    """A fake authority plus a way to run flows against it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.router = Router()
        self.sleeps: list[float] = []
        self._sync: SyncDriver | None = None
        self._async: AsyncDriver | None = None
        if kind == "SyncDriver":
            self._sync = SyncDriver(
                transport=httpx.MockTransport(self.router.handler), sleep=self.sleeps.append
            )
        elif kind == "AsyncDriver":
            self._async = AsyncDriver(transport=httpx.MockTransport(self.router.ahandler), sleep=self._asleep)

    async def _asleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def run(self, flow: Flow[Any]) -> Any:
        if self._sync is not None:
            return self._sync.run(flow)
        if self._async is not None:
            return await self._async.run(flow)
        return run_sync_flow(flow, self.router.send)

    async def close(self) -> None:
        """Close the driver, then fail for routes never called or requests that matched no route."""
        if self._sync is not None:
            self._sync.close()
        if self._async is not None:
            await self._async.close()
        self.router.assert_all_called()


@pytest.fixture(params=["run_sync_flow", "SyncDriver", "AsyncDriver"])
async def wire(request: pytest.FixtureRequest) -> AsyncIterator[Wire]:
    harness = Wire(request.param)
    yield harness
    await harness.close()


@pytest.fixture(params=["SyncDriver", "AsyncDriver"])
async def driven(request: pytest.FixtureRequest) -> AsyncIterator[Wire]:
    harness = Wire(request.param)
    yield harness
    await harness.close()


@pytest.fixture(scope="session")
def certs() -> CertMaterial:
    return cert_material()
