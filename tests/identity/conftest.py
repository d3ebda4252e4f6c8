"""Fixtures for the credential tests: a recording fake authority and the sync/async ``api`` driver.

Every test here also checks, after it ran, that no log record (any logger, any level) holds the
canary secret or access token.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from .fakes import Api, FakeClock, FakeEntra, assert_no_canary

_ENVIRONMENT = (
    "AZURE_AUTHORITY_HOST",
    "AZURE_IDENTITY_DISABLE_MULTITENANTAUTH",
    "AZURE_REGIONAL_AUTHORITY_NAME",
    "REGION_NAME",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _no_canary_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    for name in ("identity", "protocol"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for phase in ("setup", "call"):
        for record in caplog.get_records(phase):  # type: ignore[arg-type]
            assert_no_canary(formatter.format(record))


@pytest.fixture
def entra() -> Iterator[FakeEntra]:
    fake = FakeEntra()
    yield fake
    fake.verify()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sync", "async"])
async def api(request: pytest.FixtureRequest, entra: FakeEntra, clock: FakeClock) -> AsyncIterator[Api]:
    driver = Api(request.param, entra, clock)
    yield driver
    for credential in driver.opened:
        await driver.close(credential)
