"""Single flight: concurrent callers (64 threads sync, 1,000 tasks async) share one token request.

The fake authority holds every request for 50 ms so callers really overlap; assertions are on
request counts and tokens, never on timing.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

import identity
from identity import ClientAuthenticationError

from .fakes import (
    CLIENT_ID,
    GRAPH,
    NOW,
    SECRET,
    STORAGE,
    TENANT,
    VAULT,
    Api,
    FakeClock,
    FakeEntra,
    cred_form,
    invalid_client,
    token_response,
)

DELAY = 0.05


async def test_concurrent_callers_share_one_request(api: Api, entra: FakeEntra) -> None:
    entra.delay = DELAY
    credential = api.credential()

    tokens = await api.concurrently(credential, [(VAULT,)] * api.callers)

    assert len(entra.requests) == 1
    assert {(t.token, t.expires_on) for t in tokens} == {("CANARY-AT-9b2c-1", int(NOW) + 3599)}
    assert len(tokens) == api.callers


async def test_concurrent_callers_for_different_scopes_send_one_request_per_scope(
    api: Api, entra: FakeEntra
) -> None:
    entra.delay = DELAY
    credential = api.credential()
    scopes = [VAULT, GRAPH, STORAGE, f"{VAULT}|{GRAPH}"]
    calls = [tuple(scopes[i % 4].split("|")) for i in range(api.callers)]

    tokens = await api.concurrently(credential, calls)

    assert sorted(f["scope"] for f in entra.forms) == sorted(s.replace("|", " ") for s in scopes)
    assert sorted(entra.forms, key=lambda f: f["scope"]) == sorted(
        (cred_form(s.replace("|", " ")) for s in scopes), key=lambda f: f["scope"]
    )
    by_scope: dict[tuple[str, ...], set[str]] = {}
    for call, token in zip(calls, tokens, strict=True):
        by_scope.setdefault(call, set()).add(token.token)
    assert all(len(tokens_for_scope) == 1 for tokens_for_scope in by_scope.values())
    assert len({next(iter(t)) for t in by_scope.values()}) == 4  # four distinct tokens


async def test_concurrent_callers_of_a_stale_token_trigger_one_refresh(
    api: Api, entra: FakeEntra, clock: FakeClock
) -> None:
    entra.reply(token_response("CANARY-AT-9b2c-old", expires_in=3600, refresh_in=600))
    credential = api.credential()
    await api.get_token(credential, VAULT)
    clock.advance(600)
    entra.delay = DELAY

    tokens = await api.concurrently(credential, [(VAULT,)] * api.callers)

    assert len(entra.requests) == 2
    assert {t.token for t in tokens} <= {"CANARY-AT-9b2c-old", "CANARY-AT-9b2c-2"}
    assert (await api.get_token(credential, VAULT)).token == "CANARY-AT-9b2c-2"
    assert len(entra.requests) == 2


async def test_concurrent_callers_share_one_failure(api: Api, entra: FakeEntra) -> None:
    entra.delay = DELAY
    callers = 16
    entra.fallback = lambda request: invalid_client()
    credential = api.credential()

    outcomes = await api.concurrently(credential, [(VAULT,)] * callers, return_exceptions=True)

    assert all(isinstance(outcome, ClientAuthenticationError) for outcome in outcomes)
    assert len(entra.requests) == 1


def test_sync_credential_creates_one_http_client_under_concurrency(
    entra: FakeEntra, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent first requests for different scopes must share (and close) one httpx.Client."""
    created: list[httpx.Client] = []
    real_client = httpx.Client

    class SlowClient(real_client):  # type: ignore[valid-type, misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            time.sleep(DELAY)  # widen the window between "no client yet" and "client stored"
            super().__init__(*args, **kwargs)
            created.append(self)

    monkeypatch.setattr(httpx, "Client", SlowClient)
    credential = identity.ClientSecretCredential(
        TENANT, CLIENT_ID, SECRET, transport=httpx.MockTransport(entra.handler)
    )
    scopes = [f"https://resource-{i}.example/.default" for i in range(8)]
    barrier = threading.Barrier(len(scopes))

    def call(scope: str) -> None:
        barrier.wait(timeout=10)
        credential.get_token(scope)

    threads = [threading.Thread(target=call, args=(scope,)) for scope in scopes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    credential.close()

    leaked = [client for client in created if not client.is_closed]
    for client in leaked:
        client.close()
    assert len(entra.requests) == len(scopes)
    assert (len(created), len(leaked)) == (1, 0)
