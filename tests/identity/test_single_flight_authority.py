"""Single flight, counted at the mock authority: one token request per key for any crowd of callers,
and unrelated keys never wait on each other."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

import identity
import identity.aio
from conformance.authority import DEFAULT_CLIENT_ID, DEFAULT_SECRET, DEFAULT_TENANT, Fault, MockAuthority
from conformance.transport import mock_transport

SCOPE = "https://vault.azure.net/.default"
OTHER = "https://storage.azure.com/.default"


def test_64_threads_on_a_fresh_credential_make_one_request() -> None:
    authority = MockAuthority.with_defaults()
    authority.inject(Fault.latency(0.05), endpoint="token")
    credential = identity.ClientSecretCredential(
        DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, transport=authority.transport()
    )
    barrier = threading.Barrier(64)

    def call() -> str:
        barrier.wait(timeout=10)
        return credential.get_token(SCOPE).token

    with ThreadPoolExecutor(64) as pool:
        tokens = list(pool.map(lambda _: call(), range(64)))
    assert len(set(tokens)) == 1
    assert len(authority.requests_to("token")) == 1
    assert authority.describe_token(tokens[0]) is not None


async def test_1000_tasks_on_a_fresh_credential_make_one_request() -> None:
    authority = MockAuthority.with_defaults()
    authority.inject(Fault.latency(0.05), endpoint="token")
    credential = identity.aio.ClientSecretCredential(
        DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, transport=authority.transport()
    )
    async with credential:
        tokens = await asyncio.gather(*(credential.get_token(SCOPE) for _ in range(1000)))
    assert len({t.token for t in tokens}) == 1
    assert len(authority.requests_to("token")) == 1


def test_tasks_of_four_event_loops_make_one_request() -> None:
    authority = MockAuthority.with_defaults()
    authority.inject(Fault.latency(0.05), endpoint="token")
    credential = identity.aio.ClientSecretCredential(
        DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, transport=authority.transport()
    )
    barrier = threading.Barrier(4)

    def loop() -> set[str]:
        async def crowd() -> set[str]:
            barrier.wait(timeout=10)
            async with credential:
                tokens = await asyncio.gather(*(credential.get_token(SCOPE) for _ in range(50)))
            return {t.token for t in tokens}

        return asyncio.run(crowd())

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: loop(), range(4)))
    assert len(set().union(*results)) == 1
    assert len(authority.requests_to("token")) == 1


def test_an_unrelated_key_does_not_wait_for_a_slow_one() -> None:
    """The token request for SCOPE is held at the authority until OTHER's token has been returned:
    if OTHER waited behind SCOPE, this would time out instead."""
    authority = MockAuthority.with_defaults()
    other_done = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        if b"vault.azure.net" in request.content:
            assert other_done.wait(timeout=10), "the unrelated key was blocked by the slow one"
        return authority.handle(request)

    credential = identity.ClientSecretCredential(
        DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, transport=mock_transport(handler)
    )
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(credential.get_token, SCOPE)
        fast = pool.submit(credential.get_token, OTHER)
        assert authority.describe_token(fast.result(timeout=10).token) is not None
        other_done.set()
        assert authority.describe_token(slow.result(timeout=10).token) is not None
    assert len(authority.requests_to("token")) == 2


async def test_an_unrelated_key_does_not_wait_for_a_slow_one_async() -> None:
    authority = MockAuthority.with_defaults()
    other_done = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if b"vault.azure.net" in request.content:
            await asyncio.wait_for(other_done.wait(), timeout=10)
        return authority.handle(request)

    credential = identity.aio.ClientSecretCredential(
        DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, transport=httpx.MockTransport(handler)
    )
    async with credential:
        slow = asyncio.create_task(credential.get_token(SCOPE))
        fast = await asyncio.wait_for(credential.get_token(OTHER), timeout=10)
        assert authority.describe_token(fast.token) is not None
        other_done.set()
        assert authority.describe_token((await slow).token) is not None
    assert len(authority.requests_to("token")) == 2
