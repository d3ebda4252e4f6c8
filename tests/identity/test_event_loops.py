"""Async credentials across event loops, cancellation, and single flight with claims challenges.

The event-loop tests are plain functions that call :func:`asyncio.run` themselves (one loop after
another, or one loop per thread), because what they test is a credential outliving a loop or
serving several at once. The claims tests run sync and async through the ``api`` fixture.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

import identity
import identity.aio
from identity import AccessToken, ClientAuthenticationError

from .fakes import (
    CLIENT_ID,
    GRAPH,
    SECRET,
    TENANT,
    VAULT,
    Api,
    FakeClock,
    FakeEntra,
    cred_form,
    decoded_form,
    invalid_client,
    token_response,
)

DELAY = 0.05
CHALLENGE = {"access_token": {"nbf": {"essential": True, "value": "1700000000"}}}
CLAIMS = json.dumps(CHALLENGE)
TIMEOUT = 10


def async_credential(handler: Callable[[httpx.Request], Awaitable[httpx.Response]]) -> Any:
    return identity.aio.ClientSecretCredential(
        TENANT, CLIENT_ID, SECRET, transport=httpx.MockTransport(handler)
    )


def claims_form(scope: str = VAULT) -> dict[str, Any]:
    return {**cred_form(scope), "claims": CHALLENGE}


# --- successive and concurrent event loops --------------------------------------------------------


def test_one_credential_serves_successive_asyncio_run_calls(entra: FakeEntra) -> None:
    credential = async_credential(entra.async_handler)

    async def use(scope: str, claims: str | None = None) -> AccessToken:
        async with credential:
            return await credential.get_token(scope, claims=claims)

    vault = asyncio.run(use(VAULT))
    graph = asyncio.run(use(GRAPH))
    vault_cached = asyncio.run(use(VAULT))
    vault_challenged = asyncio.run(use(VAULT, CLAIMS))

    assert [t.token for t in (vault, graph, vault_cached, vault_challenged)] == [
        "CANARY-AT-9b2c-1",
        "CANARY-AT-9b2c-2",
        "CANARY-AT-9b2c-1",
        "CANARY-AT-9b2c-3",
    ]
    assert [decoded_form(r) for r in entra.requests] == [cred_form(VAULT), cred_form(GRAPH), claims_form()]


def test_a_credential_not_closed_in_its_first_loop_still_works_in_the_next(entra: FakeEntra) -> None:
    credential = async_credential(entra.async_handler)

    first = asyncio.run(credential.get_token(VAULT))  # the loop ends without closing the client

    async def second_loop() -> AccessToken:
        async with credential:
            return await credential.get_token(GRAPH)

    second = asyncio.run(second_loop())

    assert (first.token, second.token) == ("CANARY-AT-9b2c-1", "CANARY-AT-9b2c-2")
    assert entra.forms == [cred_form(VAULT), cred_form(GRAPH)]


def test_four_threads_with_their_own_loops_share_one_request(entra: FakeEntra) -> None:
    entra.delay = DELAY
    credential = async_credential(entra.async_handler)
    barrier = threading.Barrier(4)

    async def call() -> AccessToken:
        async with credential:
            return await credential.get_token(VAULT)

    def thread() -> AccessToken:
        barrier.wait(timeout=TIMEOUT)
        return asyncio.run(call())

    with ThreadPoolExecutor(4) as pool:
        tokens = list(pool.map(lambda _: thread(), range(4)))

    assert {t.token for t in tokens} == {"CANARY-AT-9b2c-1"}
    assert len(tokens) == 4
    assert entra.forms == [cred_form()]


# --- cancellation ---------------------------------------------------------------------------------


class GatedAuthority:
    """Answers token requests in order; the first one is held until :attr:`release` is set."""

    def __init__(self) -> None:
        self.forms: list[dict[str, Any]] = []
        self.release = threading.Event()
        self.first_arrived = threading.Event()

    async def handler(self, request: httpx.Request) -> httpx.Response:
        self.forms.append(decoded_form(request))
        number = len(self.forms)
        if number == 1:
            self.first_arrived.set()
            await wait_until(self.release.is_set)
        return token_response(f"CANARY-AT-9b2c-{number}")


async def wait_until(condition: Callable[[], object]) -> None:
    """Poll ``condition`` without blocking the loop (it may be set from another thread or loop)."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.001)


def test_cancelling_a_task_waiting_in_the_same_loop_leaves_no_lock_held() -> None:
    authority = GatedAuthority()
    credential = async_credential(authority.handler)

    async def main() -> tuple[AccessToken, AccessToken]:
        async with credential:
            slow = asyncio.create_task(credential.get_token(VAULT))
            await wait_until(authority.first_arrived.is_set)
            waiting = asyncio.create_task(credential.get_token(VAULT))
            await asyncio.sleep(DELAY)  # the second task is now queued behind the slow one
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            authority.release.set()
            first = await asyncio.wait_for(slow, TIMEOUT)
            # A claims challenge bypasses the cache, so this call needs the key's locks again.
            third = await asyncio.wait_for(credential.get_token(VAULT, claims=CLAIMS), TIMEOUT)
            return first, third

    first, third = asyncio.run(main())

    assert (first.token, third.token) == ("CANARY-AT-9b2c-1", "CANARY-AT-9b2c-2")
    assert authority.forms == [cred_form(), claims_form()]


def test_cancelling_a_task_waiting_for_another_loop_leaves_no_lock_held() -> None:
    """The waiting task is parked on the key's thread lock (held by another thread's loop)."""
    authority = GatedAuthority()
    credential = async_credential(authority.handler)

    async def slow_call() -> AccessToken:
        async with credential:
            return await credential.get_token(VAULT)

    async def main() -> AccessToken:
        async with credential:
            await wait_until(authority.first_arrived.is_set)
            waiting = asyncio.create_task(credential.get_token(VAULT))
            await asyncio.sleep(DELAY)  # the task now waits for the other loop's acquisition
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            authority.release.set()
            await asyncio.wait_for(asyncio.wrap_future(slow), TIMEOUT)
            return await asyncio.wait_for(credential.get_token(VAULT, claims=CLAIMS), TIMEOUT)

    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(asyncio.run, slow_call())
        third = asyncio.run(main())
        first = slow.result(timeout=TIMEOUT)

    assert (first.token, third.token) == ("CANARY-AT-9b2c-1", "CANARY-AT-9b2c-2")
    assert authority.forms == [cred_form(), claims_form()]


def test_a_loop_that_ends_right_after_cancelling_a_waiter_leaves_no_lock_held() -> None:
    """The cancelled task's loop finishes while the other loop still holds the key: the worker
    thread that was waiting for the lock must still hand it back once it gets it."""
    authority = GatedAuthority()
    credential = async_credential(authority.handler)

    async def slow_call() -> AccessToken:
        async with credential:
            return await credential.get_token(VAULT)

    async def cancel_a_waiter() -> None:
        async with credential:
            await wait_until(authority.first_arrived.is_set)
            waiting = asyncio.create_task(credential.get_token(VAULT))
            await asyncio.sleep(DELAY)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
        threading.Timer(DELAY, authority.release.set).start()

    async def third_call() -> AccessToken:
        async with credential:
            return await asyncio.wait_for(credential.get_token(VAULT, claims=CLAIMS), TIMEOUT)

    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(asyncio.run, slow_call())
        asyncio.run(cancel_a_waiter())
        first = slow.result(timeout=TIMEOUT)
        third = asyncio.run(third_call())

    assert (first.token, third.token) == ("CANARY-AT-9b2c-1", "CANARY-AT-9b2c-2")
    assert authority.forms == [cred_form(), claims_form()]


def test_a_cancelled_acquisition_releases_the_key_for_the_next_caller() -> None:
    authority = GatedAuthority()
    credential = async_credential(authority.handler)

    async def main() -> AccessToken:
        async with credential:
            slow = asyncio.create_task(credential.get_token(VAULT))
            await wait_until(authority.first_arrived.is_set)
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            authority.release.set()
            return await asyncio.wait_for(credential.get_token(VAULT), TIMEOUT)

    token = asyncio.run(main())

    assert token.token == "CANARY-AT-9b2c-2"
    assert authority.forms == [cred_form(), cred_form()]


# --- a stale token while another loop refreshes it -----------------------------------------------


class RefreshGate:
    """First answer: a token due for refresh after 600 s; the refresh (second request) is held
    until :attr:`release` is set."""

    def __init__(self) -> None:
        self.forms: list[dict[str, Any]] = []
        self.release = threading.Event()
        self.refresh_arrived = threading.Event()

    async def handler(self, request: httpx.Request) -> httpx.Response:
        self.forms.append(decoded_form(request))
        number = len(self.forms)
        if number == 1:
            return token_response("CANARY-AT-9b2c-old", expires_in=3600, refresh_in=600)
        self.refresh_arrived.set()
        await wait_until(self.release.is_set)
        return token_response(f"CANARY-AT-9b2c-{number}")


def stale_credential(gate: RefreshGate) -> Any:
    clock = FakeClock()
    credential = async_credential(gate.handler)
    credential._core.clock = clock  # no public clock parameter (see fakes.Api.credential)
    asyncio.run(credential.get_token(VAULT))
    clock.advance(600)  # the token is now due for a proactive refresh, and still valid
    return credential


def test_a_stale_token_is_served_while_a_task_of_the_same_loop_refreshes_it() -> None:
    gate = RefreshGate()
    credential = stale_credential(gate)

    async def main() -> tuple[AccessToken, AccessToken]:
        async with credential:
            refreshing = asyncio.create_task(credential.get_token(VAULT))
            await wait_until(gate.refresh_arrived.is_set)
            served = await asyncio.wait_for(credential.get_token(VAULT), 1.0)
            gate.release.set()
            return served, await refreshing

    served, refreshed = asyncio.run(main())

    assert (served.token, refreshed.token) == ("CANARY-AT-9b2c-old", "CANARY-AT-9b2c-2")
    assert gate.forms == [cred_form(), cred_form()]


def test_a_stale_token_is_served_while_another_loop_refreshes_it() -> None:
    gate = RefreshGate()
    credential = stale_credential(gate)

    async def refresh() -> AccessToken:
        async with credential:
            return await credential.get_token(VAULT)

    async def meanwhile() -> AccessToken:
        async with credential:
            await wait_until(gate.refresh_arrived.is_set)
            try:
                return await asyncio.wait_for(credential.get_token(VAULT), 1.0)
            finally:
                gate.release.set()

    with ThreadPoolExecutor(1) as pool:
        refreshing = pool.submit(asyncio.run, refresh())
        served = asyncio.run(meanwhile())
        refreshed = refreshing.result(timeout=TIMEOUT)

    assert (served.token, refreshed.token) == ("CANARY-AT-9b2c-old", "CANARY-AT-9b2c-2")
    assert gate.forms == [cred_form(), cred_form()]


# --- claims and single flight ---------------------------------------------------------------------


def overlapping_threads(entra: FakeEntra, first: Callable[[], Any], second: Callable[[], Any]) -> list[Any]:
    """Sync twin of :func:`overlapping`: one thread per caller."""

    def outcome(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(2) as pool:
        first_future = pool.submit(outcome, first)
        deadline = time.monotonic() + TIMEOUT
        while not entra.requests:
            assert time.monotonic() < deadline, "the first request never arrived"
            time.sleep(0.001)
        second_future = pool.submit(outcome, second)
        return [first_future.result(timeout=TIMEOUT), second_future.result(timeout=TIMEOUT)]


async def overlapping(
    api: Api, entra: FakeEntra, credential: Any, first: Callable[[], Any], second: Callable[[], Any]
) -> list[Any]:
    """Start ``first``; hold its request at the authority until ``second`` has taken its place in
    the single flight (its ticket: it now waits for ``first``'s outcome); return both outcomes.

    Deterministic: the authority answers only once the second caller is queued."""
    core = credential._core
    original = core.ticket
    if api.mode == "sync":
        queued = threading.Semaphore(0)

        def ticket(plan: Any) -> int:
            value = original(plan)
            queued.release()
            return value

        def hold() -> None:
            entra.hold = None  # only the first request waits
            assert queued.acquire(timeout=TIMEOUT)  # the first caller's own ticket
            assert queued.acquire(timeout=TIMEOUT), "the second caller never queued"

        core.ticket = ticket
        entra.hold = hold
        return overlapping_threads(entra, first, second)
    tickets = asyncio.Queue[int]()

    def async_ticket(plan: Any) -> int:
        value = original(plan)
        tickets.put_nowait(value)
        return value

    async def async_hold() -> None:
        entra.hold = None
        for _ in range(2):
            await asyncio.wait_for(tickets.get(), timeout=TIMEOUT)

    core.ticket = async_ticket
    entra.hold = async_hold
    first_task = asyncio.ensure_future(first())
    await wait_until(lambda: entra.requests)
    second_task = asyncio.ensure_future(second())
    return list(await asyncio.gather(first_task, second_task, return_exceptions=True))


async def test_a_claims_caller_waiting_behind_a_failed_attempt_sends_its_own_request(
    api: Api, entra: FakeEntra
) -> None:
    entra.reply(invalid_client())
    credential = api.credential()

    plain, challenged = await overlapping(
        api,
        entra,
        credential,
        lambda: credential.get_token(VAULT),
        lambda: credential.get_token(VAULT, claims=CLAIMS),
    )

    assert isinstance(plain, ClientAuthenticationError)
    assert plain.message.startswith("ClientSecretCredential: authentication failed. Microsoft Entra ID")
    assert "AADSTS7000215" in plain.message
    assert isinstance(challenged, AccessToken)
    assert challenged.token == "CANARY-AT-9b2c-2"
    assert [decoded_form(r) for r in entra.requests] == [cred_form(), claims_form()]


async def test_plain_callers_waiting_behind_a_failed_attempt_share_its_failure(
    api: Api, entra: FakeEntra
) -> None:
    entra.reply(invalid_client())
    credential = api.credential()

    first, second = await overlapping(
        api, entra, credential, lambda: credential.get_token(VAULT), lambda: credential.get_token(VAULT)
    )

    assert isinstance(first, ClientAuthenticationError)
    assert isinstance(second, ClientAuthenticationError)
    assert second.message == first.message
    assert "AADSTS7000215" in first.message
    assert entra.forms == [cred_form()]


async def test_a_failed_claims_attempt_is_not_shared_with_a_plain_waiter(api: Api, entra: FakeEntra) -> None:
    entra.reply(invalid_client())
    credential = api.credential()

    challenged, plain = await overlapping(
        api,
        entra,
        credential,
        lambda: credential.get_token(VAULT, claims=CLAIMS),
        lambda: credential.get_token(VAULT),
    )

    assert isinstance(challenged, ClientAuthenticationError)
    assert isinstance(plain, AccessToken)
    assert plain.token == "CANARY-AT-9b2c-2"
    assert [decoded_form(r) for r in entra.requests] == [claims_form(), cred_form()]


async def test_a_later_caller_retries_after_a_shared_failure(api: Api, entra: FakeEntra) -> None:
    entra.reply(invalid_client())
    credential = api.credential()

    with pytest.raises(ClientAuthenticationError):
        await api.get_token(credential, VAULT)
    token = await api.get_token(credential, VAULT)

    assert token.token == "CANARY-AT-9b2c-2"
    assert entra.forms == [cred_form(), cred_form()]
