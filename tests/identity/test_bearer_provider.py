"""``get_bearer_token_provider`` (``identity`` and ``identity.aio``): a callable returning the token.

Runs sync and async through the ``api`` fixture: the sync mode uses ``identity``'s provider with the
sync credential, the async mode ``identity.aio``'s with the async one.
"""

from __future__ import annotations

from typing import Any

import pytest

import identity
import identity.aio
from identity import AccessToken

from .fakes import GRAPH, NOW, VAULT, Api, FakeEntra, cred_form


def provider_factory(api: Api) -> Any:
    return (
        identity.get_bearer_token_provider if api.mode == "sync" else identity.aio.get_bearer_token_provider
    )


async def call(api: Api, provider: Any) -> Any:
    result = provider()
    return await result if api.mode == "async" else result


async def test_provider_returns_the_token_string(api: Api, entra: FakeEntra) -> None:
    provider = provider_factory(api)(api.credential(), VAULT)

    token = await call(api, provider)

    assert token == "CANARY-AT-9b2c-1"
    assert type(token) is str
    assert entra.forms == [cred_form()]


async def test_ten_calls_make_one_token_request(api: Api, entra: FakeEntra) -> None:
    provider = provider_factory(api)(api.credential(), VAULT)

    tokens = [await call(api, provider) for _ in range(10)]

    assert tokens == ["CANARY-AT-9b2c-1"] * 10
    assert entra.forms == [cred_form()]


async def test_provider_passes_every_scope(api: Api, entra: FakeEntra) -> None:
    provider = provider_factory(api)(api.credential(), VAULT, GRAPH)

    await call(api, provider)

    assert entra.forms == [cred_form(f"{VAULT} {GRAPH}")]


async def test_provider_without_scopes_is_a_value_error(api: Api, entra: FakeEntra) -> None:
    with pytest.raises(ValueError) as caught:
        provider_factory(api)(api.credential())

    assert str(caught.value) == "get_bearer_token_provider requires at least one scope"
    assert entra.requests == []


class GetTokenOnly:
    """A credential with ``get_token`` only (azure-core's older ``TokenCredential`` protocol)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append(scopes)
        return AccessToken(self.token, int(NOW) + 3600)


class AsyncGetTokenOnly(GetTokenOnly):
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:  # type: ignore[override]
        return super().get_token(*scopes, **kwargs)


async def test_provider_works_with_a_credential_that_only_has_get_token(api: Api) -> None:
    credential = (
        GetTokenOnly("CANARY-AT-9b2c-plain")
        if api.mode == "sync"
        else AsyncGetTokenOnly("CANARY-AT-9b2c-plain")
    )
    provider = provider_factory(api)(credential, VAULT, GRAPH)

    tokens = [await call(api, provider), await call(api, provider)]

    assert tokens == ["CANARY-AT-9b2c-plain"] * 2
    assert credential.calls == [(VAULT, GRAPH), (VAULT, GRAPH)]


async def test_provider_is_lazy(api: Api, entra: FakeEntra) -> None:
    provider_factory(api)(api.credential(), VAULT)

    assert entra.requests == []
