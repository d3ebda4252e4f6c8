"""protocol.memo: discovery documents are fetched once per process, even under concurrency."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from protocol.authority import Authority
from protocol.client_auth import ClientSecret
from protocol.client_credentials import client_credentials_flow
from protocol.drivers import AsyncDriver, SyncDriver
from protocol.errors import ServiceError
from protocol.flows import Flow
from protocol.memo import DISCOVERY_MEMO, ResponseMemo
from protocol.responses import TokenResult
from protocol.retry import NO_RETRY, RetryPolicy
from protocol.wire import build_get_request

from .conftest import Wire
from .helpers import CLIENT_ID, NOW, SCOPE, SECRET_CANARY, TENANT, Reply, Router, ok, token_body

URL = "https://login.contoso.com/tenant/v2.0/.well-known/openid-configuration"
CUSTOM = "https://login.contoso.com"
INSTANCE_URL = "https://login.microsoftonline.com/common/discovery/instance"
METADATA_URL = f"https://login.contoso.com/{TENANT}/v2.0/.well-known/openid-configuration"
TOKEN_URL = f"https://login.contoso.com/{TENANT}/oauth2/v2.0/token"
METADATA = {"token_endpoint": TOKEN_URL}


class Sender:
    """A counting send function for ResponseMemo."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.count += 1
            n = self.count
        if self.delay:
            time.sleep(self.delay)
        return httpx.Response(self.status, json={"n": n}, request=request)

    async def async_send(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        n = self.count
        await asyncio.sleep(self.delay)
        return httpx.Response(self.status, json={"n": n}, request=request)


# --------------------------------------------------------------------------- ResponseMemo


def test_success_is_shared() -> None:
    memo, send = ResponseMemo(), Sender()
    first = memo.fetch(build_get_request(URL), send)
    second = memo.fetch(build_get_request(URL), send)
    assert (first is second, send.count, memo.get(URL) is first) == (True, 1, True)


@pytest.mark.parametrize("status", [201, 204, 299])
def test_any_2xx_is_shared(status: int) -> None:
    memo, send = ResponseMemo(), Sender(status)
    memo.fetch(build_get_request(URL), send)
    memo.fetch(build_get_request(URL), send)
    assert send.count == 1


@pytest.mark.parametrize("status", [301, 400, 404, 429, 500, 503])
def test_failures_are_not_shared(status: int) -> None:
    memo, send = ResponseMemo(), Sender(status)
    first = memo.fetch(build_get_request(URL), send)
    second = memo.fetch(build_get_request(URL), send)
    assert (first.json(), second.json(), send.count, memo.get(URL)) == ({"n": 1}, {"n": 2}, 2, None)


def test_exception_is_not_shared_and_releases_the_lock() -> None:
    memo = ResponseMemo()

    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        memo.fetch(build_get_request(URL), broken)
    send = Sender()
    assert memo.fetch(build_get_request(URL), send).json() == {"n": 1}


def test_keys_are_full_urls() -> None:
    memo, send = ResponseMemo(), Sender()
    memo.fetch(build_get_request(URL, {"a": "1"}), send)
    memo.fetch(build_get_request(URL, {"a": "2"}), send)
    memo.fetch(build_get_request(URL + "x"), send)
    memo.fetch(build_get_request(URL, {"a": "1"}), send)
    assert send.count == 3


def test_ttl_expiry() -> None:
    clock = [0.0]
    memo, send = ResponseMemo(ttl=100.0, monotonic=lambda: clock[0]), Sender()
    memo.fetch(build_get_request(URL), send)
    clock[0] = 100.0
    memo.fetch(build_get_request(URL), send)
    assert send.count == 1
    clock[0] = 100.5
    assert memo.get(URL) is None
    memo.fetch(build_get_request(URL), send)
    assert send.count == 2


def test_clear_forgets() -> None:
    memo, send = ResponseMemo(), Sender()
    memo.fetch(build_get_request(URL), send)
    memo.clear()
    assert memo.get(URL) is None
    memo.fetch(build_get_request(URL), send)
    assert send.count == 2


def test_threads_fetch_once() -> None:
    memo, send = ResponseMemo(), Sender(delay=0.05)
    barrier = threading.Barrier(32)
    results: list[httpx.Response] = []

    def worker() -> None:
        barrier.wait()
        results.append(memo.fetch(build_get_request(URL), send))

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (send.count, len(results), len({id(r) for r in results})) == (1, 32, 1)


async def test_async_fetch_once_and_failures_not_shared() -> None:
    memo, send = ResponseMemo(), Sender(delay=0.02)
    results = await asyncio.gather(*(memo.afetch(build_get_request(URL), send.async_send) for _ in range(50)))
    assert (send.count, len({id(r) for r in results})) == (1, 1)
    failing = Sender(503)
    await memo.afetch(build_get_request(URL + "/f"), failing.async_send)
    await memo.afetch(build_get_request(URL + "/f"), failing.async_send)
    assert failing.count == 2


async def test_async_and_sync_share_entries() -> None:
    memo, send = ResponseMemo(), Sender()
    first = memo.fetch(build_get_request(URL), send)
    second = await memo.afetch(build_get_request(URL), send.async_send)
    assert (first is second, send.count) == (True, 1)


# --------------------------------------------------------------------------- through the drivers and flows


def cc_flow(policy: RetryPolicy | None = None) -> Flow[TokenResult]:
    return client_credentials_flow(
        Authority.create(CUSTOM, TENANT),
        client_id=CLIENT_ID,
        scopes=[SCOPE],
        client_auth=ClientSecret(SECRET_CANARY),
        policy=policy or RetryPolicy(jitter=0.0),
        clock=lambda: NOW,
    )


def discovery_routes(router: Router, delay: float = 0.0) -> None:
    router.add("GET", INSTANCE_URL, ok({"tenant_discovery_endpoint": METADATA_URL}, delay=delay))
    router.add("GET", METADATA_URL, ok(METADATA, delay=delay))
    router.add("POST", TOKEN_URL, ok(token_body()))


def counts(router: Router) -> tuple[int, int, int]:
    return (
        len(router.calls("GET", INSTANCE_URL)),
        len(router.calls("GET", METADATA_URL)),
        len(router.calls("POST", TOKEN_URL)),
    )


async def test_two_flows_in_a_row_discover_once(driven: Wire) -> None:
    discovery_routes(driven.router)
    await driven.run(cc_flow())
    await driven.run(cc_flow())
    assert counts(driven.router) == (1, 1, 2)


async def test_two_drivers_share_the_process_memo() -> None:
    router = Router()
    discovery_routes(router)
    sync = SyncDriver(transport=httpx.MockTransport(router.handler))
    asyn = AsyncDriver(transport=httpx.MockTransport(router.ahandler))
    sync.run(cc_flow())
    await asyn.run(cc_flow())
    sync.close()
    await asyn.close()
    assert counts(router) == (1, 1, 2)
    assert DISCOVERY_MEMO.get(METADATA_URL) is not None


def test_64_threads_discover_once() -> None:
    router = Router()
    discovery_routes(router, delay=0.05)
    driver = SyncDriver(transport=httpx.MockTransport(router.handler))
    barrier = threading.Barrier(64)
    results: list[object] = []
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(driver.run(cc_flow()))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    driver.close()
    assert (errors, len(results), counts(router)) == ([], 64, (1, 1, 64))


async def test_100_tasks_discover_once() -> None:
    router = Router()
    discovery_routes(router, delay=0.05)
    driver = AsyncDriver(transport=httpx.MockTransport(router.ahandler))
    results = await asyncio.gather(*(driver.run(cc_flow()) for _ in range(100)))
    await driver.close()
    assert (len(results), counts(router)) == (100, (1, 1, 100))


@pytest.mark.parametrize("status", [500, 404])
async def test_failed_metadata_is_not_memoized(driven: Wire, status: int) -> None:
    driven.router.add("GET", INSTANCE_URL, ok({"tenant_discovery_endpoint": METADATA_URL}))
    driven.router.add("GET", METADATA_URL, Reply(status, content=b"unavailable"), ok(METADATA))
    driven.router.add("POST", TOKEN_URL, ok(token_body()))
    with pytest.raises(ServiceError):
        await driven.run(cc_flow(NO_RETRY))
    await driven.run(cc_flow(NO_RETRY))
    await driven.run(cc_flow(NO_RETRY))
    assert counts(driven.router) == (1, 2, 2)


async def test_failed_instance_discovery_is_not_memoized(driven: Wire) -> None:
    driven.router.add(
        "GET", INSTANCE_URL, Reply(500, content=b"oops"), ok({"tenant_discovery_endpoint": METADATA_URL})
    )
    driven.router.add("GET", METADATA_URL, ok(METADATA))
    driven.router.add("POST", TOKEN_URL, ok(token_body()))
    with pytest.raises(ServiceError):
        await driven.run(cc_flow(NO_RETRY))
    await driven.run(cc_flow(NO_RETRY))
    assert counts(driven.router) == (2, 1, 1)


async def test_404_on_entra_layout_is_refetched(driven: Wire) -> None:
    generic = f"https://login.contoso.com/{TENANT}/.well-known/openid-configuration"
    driven.router.add("GET", METADATA_URL, Reply(404, content=b"nope"))
    driven.router.add("GET", generic, ok(METADATA))
    driven.router.add("POST", TOKEN_URL, ok(token_body()))
    for _ in range(2):
        await driven.run(
            client_credentials_flow(
                Authority.create(CUSTOM, TENANT),
                client_id=CLIENT_ID,
                scopes=[SCOPE],
                client_auth=ClientSecret(SECRET_CANARY),
                policy=NO_RETRY,
                instance_discovery=False,
                clock=lambda: NOW,
            )
        )
    assert (len(driven.router.calls("GET", METADATA_URL)), len(driven.router.calls("GET", generic))) == (2, 1)
