"""protocol.drivers: the only code that performs I/O or sleeps."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from protocol.drivers import DEFAULT_TIMEOUT, AsyncDriver, SyncDriver
from protocol.errors import TransportError
from protocol.flows import Sleep, exchange
from protocol.memo import ResponseMemo
from protocol.retry import NO_RETRY
from protocol.wire import build_form_request, build_get_request

from .helpers import SECRET_CANARY, assert_no_canary

URL = "https://login.contoso.com/tenant/oauth2/v2.0/token"


class RecordingTransport(httpx.MockTransport):
    """A MockTransport that records requests and whether it was closed."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.seen: list[httpx.Request] = []
        self.closed = 0

        def record(request: httpx.Request) -> httpx.Response:
            self.seen.append(request)
            if handler is not None:
                return handler(request)
            return httpx.Response(200, json={"n": len(self.seen)}, request=request)

        super().__init__(record)

    def close(self) -> None:
        self.closed += 1

    async def aclose(self) -> None:
        self.closed += 1


def raising(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


# --------------------------------------------------------------------------- client ownership


def test_sync_injected_client_is_used_and_not_closed() -> None:
    transport = RecordingTransport()
    client = httpx.Client(transport=transport)
    driver = SyncDriver(client=client, transport=RecordingTransport())
    response = driver.send(build_get_request(URL))
    driver.close()
    assert (response.json(), len(transport.seen), transport.closed, client.is_closed) == (
        {"n": 1},
        1,
        0,
        False,
    )
    assert client.get(URL).status_code == 200
    client.close()


async def test_async_injected_client_is_used_and_not_closed() -> None:
    transport = RecordingTransport()
    client = httpx.AsyncClient(transport=transport)
    driver = AsyncDriver(client=client)
    response = await driver.send(build_get_request(URL))
    await driver.close()
    assert (response.json(), len(transport.seen), transport.closed, client.is_closed) == (
        {"n": 1},
        1,
        0,
        False,
    )
    await client.aclose()


def test_sync_driver_created_client_is_closed() -> None:
    transport = RecordingTransport()
    driver = SyncDriver(transport=transport)
    driver.close()  # nothing created yet: nothing to close
    assert transport.closed == 0
    driver.send(build_get_request(URL))
    driver.close()
    driver.close()
    assert (len(transport.seen), transport.closed) == (1, 1)


async def test_async_driver_created_client_is_closed() -> None:
    transport = RecordingTransport()
    driver = AsyncDriver(transport=transport)
    await driver.close()
    assert transport.closed == 0
    await driver.send(build_get_request(URL))
    await driver.close()
    await driver.close()
    assert (len(transport.seen), transport.closed) == (1, 1)


def test_sync_driver_created_client_has_the_default_timeouts() -> None:
    transport = RecordingTransport()
    driver = SyncDriver(transport=transport)
    driver.send(build_form_request(URL, {"a": "1"}))
    driver.close()
    assert transport.seen[0].extensions["timeout"] == DEFAULT_TIMEOUT.as_dict()
    assert DEFAULT_TIMEOUT.as_dict() == {"connect": 10.0, "read": 30.0, "write": 30.0, "pool": 30.0}


async def test_async_driver_created_client_has_the_default_timeouts() -> None:
    transport = RecordingTransport()
    driver = AsyncDriver(transport=transport)
    await driver.send(build_form_request(URL, {"a": "1"}))
    await driver.close()
    assert transport.seen[0].extensions["timeout"] == DEFAULT_TIMEOUT.as_dict()


def test_sync_driver_does_not_follow_redirects() -> None:
    transport = RecordingTransport(
        lambda request: httpx.Response(302, headers={"location": "https://evil.example/"}, request=request)
    )
    driver = SyncDriver(transport=transport)
    response = driver.send(build_form_request(URL, {"client_secret": SECRET_CANARY}))
    driver.close()
    assert (response.status_code, [str(r.url) for r in transport.seen]) == (302, [URL])


def test_sync_driver_creates_one_client_under_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[object] = []
    real_client = httpx.Client

    class SlowClient(real_client):  # type: ignore[misc, valid-type]
        def __init__(self, **kwargs: Any) -> None:
            created.append(self)
            time.sleep(0.02)
            super().__init__(**kwargs)

    monkeypatch.setattr(httpx, "Client", SlowClient)
    driver = SyncDriver(transport=RecordingTransport())
    barrier = threading.Barrier(8)

    def use() -> None:
        barrier.wait()
        driver.send(build_get_request(URL))

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    driver.close()
    assert len(created) == 1


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ReadTimeout("read timed out"), "timed out"),
        (httpx.ConnectTimeout("connect timed out"), "timed out"),
        (httpx.ConnectError("refused"), "could not connect"),
        (httpx.RemoteProtocolError("eof"), "the connection was closed without a complete response"),
        (httpx.ReadError("reset"), "the request failed"),
    ],
)
async def test_httpx_failures_become_transport_errors(exc: httpx.RequestError, kind: str) -> None:
    request = build_form_request(URL + "?code=" + SECRET_CANARY, {"client_secret": SECRET_CANARY})
    sync = SyncDriver(transport=httpx.MockTransport(raising(exc)))
    asyn = AsyncDriver(transport=httpx.MockTransport(raising(exc)))
    with pytest.raises(TransportError) as sync_info:
        sync.send(request)
    with pytest.raises(TransportError) as async_info:
        await asyn.send(request)
    sync.close()
    await asyn.close()
    for info in (sync_info, async_info):
        assert str(info.value).startswith(f"POST {URL}: {kind} ({type(exc).__name__}).")
        assert info.value.__cause__ is exc
        assert_no_canary(str(info.value), repr(info.value))


async def test_read_timeout_in_a_flow_is_a_transport_error() -> None:
    sync = SyncDriver(transport=httpx.MockTransport(raising(httpx.ReadTimeout("slow"))))
    asyn = AsyncDriver(transport=httpx.MockTransport(raising(httpx.ReadTimeout("slow"))))
    with pytest.raises(TransportError, match="timed out"):
        sync.run(exchange(lambda: build_get_request(URL), NO_RETRY))
    with pytest.raises(TransportError, match="timed out"):
        await asyn.run(exchange(lambda: build_get_request(URL), NO_RETRY))
    sync.close()
    await asyn.close()


async def test_other_handler_exceptions_are_not_translated() -> None:
    sync = SyncDriver(transport=httpx.MockTransport(raising(RuntimeError("bug in transport"))))
    asyn = AsyncDriver(transport=httpx.MockTransport(raising(RuntimeError("bug in transport"))))
    with pytest.raises(RuntimeError, match="bug in transport"):
        sync.send(build_get_request(URL))
    with pytest.raises(RuntimeError, match="bug in transport"):
        await asyn.send(build_get_request(URL))
    sync.close()
    await asyn.close()


# --------------------------------------------------------------------------- sleeping and memo


def sleepy_flow():  # type: ignore[no-untyped-def]
    first = yield build_get_request(URL)
    yield Sleep(1.5)
    yield Sleep(0.0)
    second = yield build_get_request(URL)
    return first.json()["n"], second.json()["n"]


async def test_drivers_sleep_with_the_injected_function() -> None:
    sync_sleeps: list[float] = []
    async_sleeps: list[float] = []

    async def record(seconds: float) -> None:
        async_sleeps.append(seconds)

    sync = SyncDriver(transport=RecordingTransport(), sleep=sync_sleeps.append)
    asyn = AsyncDriver(transport=RecordingTransport(), sleep=record)
    assert sync.run(sleepy_flow()) == (1, 2)
    assert await asyn.run(sleepy_flow()) == (1, 2)
    sync.close()
    await asyn.close()
    assert (sync_sleeps, async_sleeps) == ([1.5, 0.0], [1.5, 0.0])


async def test_memoized_gets_go_through_the_memo() -> None:
    memo = ResponseMemo()
    transport = RecordingTransport()
    sync = SyncDriver(transport=transport, memo=memo)
    asyn = AsyncDriver(transport=transport, memo=memo)
    first = sync.send(build_get_request(URL, memoize=True))
    second = sync.send(build_get_request(URL, memoize=True))
    third = await asyn.send(build_get_request(URL, memoize=True))
    plain = [sync.send(build_get_request(URL)), await asyn.send(build_get_request(URL))]
    sync.close()
    await asyn.close()
    assert first is second is third
    assert [r.json()["n"] for r in (first, *plain)] == [1, 2, 3]
    assert len(transport.seen) == 3


async def test_plain_posts_are_not_memoized() -> None:
    memo = ResponseMemo()
    transport = RecordingTransport()
    sync = SyncDriver(transport=transport, memo=memo)
    sync.send(build_form_request(URL, {"a": "1"}))
    sync.send(build_form_request(URL, {"a": "1"}))
    sync.close()
    assert len(transport.seen) == 2
