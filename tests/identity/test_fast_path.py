"""The fast path of ``get_token`` / ``get_token_info``: a FRESH token for the same request costs one
dictionary probe (no validation, no key building), and never outlives its freshness."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

import identity
import identity.aio

SCOPE = "https://vault.azure.net/.default"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _issuer(lifetime: int = 3600) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"access_token": f"token-{len(seen)}", "expires_in": lifetime})

    return httpx.MockTransport(handler), seen


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _make(mode: str, transport: httpx.MockTransport, clock: Clock) -> Any:
    module = identity if mode == "sync" else identity.aio
    credential = module.ClientSecretCredential("tenant", "client", "secret", transport=transport)
    # The core's clock is the only time source (no public clock parameter exists).
    credential._core.clock = clock
    return credential


async def _call(mode: str, method: Any, *args: Any, **kwargs: Any) -> Any:
    result = method(*args, **kwargs)
    return await result if mode == "async" else result


async def test_a_hit_skips_validation_entirely(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    transport, seen = _issuer()
    clock = Clock()
    credential = _make(mode, transport, clock)
    await _call(mode, credential.get_token, SCOPE)
    first = await _call(mode, credential.get_token, SCOPE)  # served by the fast path
    info = await _call(mode, credential.get_token_info, SCOPE)

    def no_slow_path(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the fast path should have answered")

    monkeypatch.setattr(credential._core, "plan", no_slow_path)
    for _ in range(3):
        assert await _call(mode, credential.get_token, SCOPE) is first
        assert await _call(mode, credential.get_token_info, SCOPE) is info
        assert await _call(mode, credential.get_token_info, SCOPE, options={}) is info
    assert len(seen) == 1


async def test_the_fast_path_ends_where_freshness_ends(mode: str) -> None:
    transport, seen = _issuer(lifetime=3600)
    clock = Clock()
    credential = _make(mode, transport, clock)
    first = await _call(mode, credential.get_token, SCOPE)
    clock.now += 3600 - 300 - 1  # one second before the 300 s margin
    assert (await _call(mode, credential.get_token, SCOPE)).token == first.token
    clock.now += 1  # now within 300 s of expiry: expired for us
    assert (await _call(mode, credential.get_token, SCOPE)).token == "token-2"
    assert len(seen) == 2


async def test_a_claims_challenge_replaces_what_the_fast_path_serves(mode: str) -> None:
    transport, seen = _issuer()
    credential = _make(mode, transport, Clock())
    plain = await _call(mode, credential.get_token, SCOPE)
    challenged = await _call(mode, credential.get_token, SCOPE, claims=json.dumps({"access_token": {}}))
    after = await _call(mode, credential.get_token, SCOPE)
    reordered = await _call(mode, credential.get_token_info, SCOPE)
    assert (plain.token, challenged.token, after.token, reordered.token) == (
        "token-1",
        "token-2",
        "token-2",
        "token-2",
    )
    assert len(seen) == 2


async def test_requests_that_differ_do_not_share_fast_entries(mode: str) -> None:
    transport, seen = _issuer()
    credential = _make(mode, transport, Clock())
    plain = await _call(mode, credential.get_token, SCOPE)
    cae = await _call(mode, credential.get_token, SCOPE, enable_cae=True)
    cae_info = await _call(mode, credential.get_token_info, SCOPE, options={"enable_cae": True})
    assert plain.token != cae.token
    assert cae_info.token == cae.token
    assert len(seen) == 2


def test_a_refused_tenant_never_reaches_the_fast_path() -> None:
    transport, seen = _issuer()
    credential = _make("sync", transport, Clock())
    credential.get_token(SCOPE)
    for _ in range(2):
        with pytest.raises(identity.ClientAuthenticationError, match="other-tenant"):
            credential.get_token(SCOPE, tenant_id="other-tenant")
    assert len(seen) == 1
    assert ((SCOPE,), "other-tenant", False) not in credential._core.fast


def test_fast_path_from_many_loops() -> None:
    transport, seen = _issuer()
    credential = _make("async", transport, Clock())

    async def twice() -> tuple[str, str]:
        async with credential:
            a = await credential.get_token(SCOPE)
            b = await credential.get_token(SCOPE)
            return a.token, b.token

    assert asyncio.run(twice()) == asyncio.run(twice()) == ("token-1", "token-1")
    assert len(seen) == 1


async def test_a_list_passed_as_a_scope_is_a_value_error(mode: str) -> None:
    transport, seen = _issuer()
    credential = _make(mode, transport, Clock())
    for method in (credential.get_token, credential.get_token_info):
        with pytest.raises(
            ValueError, match=r"Each scope must be a non-empty string, got \['https://x/.default'\]"
        ):
            await _call(mode, method, ["https://x/.default"])
    assert seen == []
