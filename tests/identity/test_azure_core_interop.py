"""Our credentials inside azure-core pipelines, as real Azure SDK clients use them.

A resource server on loopback (the HTTPS mount with a handler of our own) answers the first request
with a CAE claims challenge (401, ``WWW-Authenticate: Bearer ... error="insufficient_claims",
claims="<base64>"``) and the retried request with 200. azure-core's
``BearerTokenCredentialPolicy`` / ``AsyncBearerTokenCredentialPolicy`` with their real transports
(requests / aiohttp) carry the token; the credential talks to the mock authority in process.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator

import httpx
import pytest
from azure.core.pipeline import AsyncPipeline, Pipeline
from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy, BearerTokenCredentialPolicy
from azure.core.pipeline.transport import AioHttpTransport, RequestsTransport
from azure.core.rest import HttpRequest

import identity
import identity.aio
from conformance.authority import DEFAULT_CLIENT_ID, DEFAULT_SECRET, DEFAULT_TENANT, MockAuthority
from conformance.server import HttpsServer

SCOPE = "https://vault.azure.net/.default"
CHALLENGE_CLAIMS = '{"access_token":{"nbf":{"essential":true,"value":"1726077595"}}}'


class Resource:
    """A resource API that demands a claims challenge once, then accepts the new token."""

    def __init__(self, authority: MockAuthority) -> None:
        self.authority = authority
        self.authorizations: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.authorizations.append(request.headers.get("authorization", ""))
            first = len(self.authorizations) == 1
        if first:
            encoded = base64.urlsafe_b64encode(CHALLENGE_CLAIMS.encode()).decode().rstrip("=")
            challenge = (
                'Bearer realm="", '
                'authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
                f'error="insufficient_claims", claims="{encoded}"'
            )
            return httpx.Response(401, headers={"WWW-Authenticate": challenge}, json={"error": "challenge"})
        return httpx.Response(200, json={"value": "secret-value"})


@pytest.fixture
def authority() -> MockAuthority:
    return MockAuthority.with_defaults()


@pytest.fixture
def resource(authority: MockAuthority) -> Iterator[tuple[Resource, HttpsServer]]:
    api = Resource(authority)
    with HttpsServer(api) as server:
        yield api, server


def _check(authority: MockAuthority, api: Resource) -> None:
    tokens = authority.requests_to("token")
    assert len(tokens) == 2, "one token up front, one after the challenge"
    assert "claims" not in tokens[0].form
    sent = json.loads(tokens[1].form["claims"])
    assert sent["access_token"]["nbf"] == {"essential": True, "value": "1726077595"}
    first, second = (a.removeprefix("Bearer ") for a in api.authorizations)
    assert first != second
    issued_first = authority.describe_token(first)
    issued_second = authority.describe_token(second)
    assert issued_first is not None
    assert issued_second is not None
    assert issued_second.claims == tokens[1].form["claims"]


def test_sync_pipeline_sets_the_header_and_answers_the_claims_challenge(
    authority: MockAuthority, resource: tuple[Resource, HttpsServer]
) -> None:
    api, server = resource
    credential = identity.ClientSecretCredential(
        DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, transport=authority.transport()
    )
    calls: list[str] = []
    original = credential.get_token_info

    def spy(*scopes: str, options: identity.TokenRequestOptions | None = None) -> identity.AccessTokenInfo:
        calls.append("get_token_info")
        return original(*scopes, options=options)

    credential.get_token_info = spy  # type: ignore[method-assign]
    pipeline = Pipeline(
        transport=RequestsTransport(connection_verify=str(server.ca_path)),
        policies=[BearerTokenCredentialPolicy(credential, SCOPE)],
    )
    with pipeline:
        response = pipeline.run(HttpRequest("GET", f"{server.url}/secrets/x")).http_response
    assert response.status_code == 200
    assert calls == ["get_token_info", "get_token_info"], "the policy prefers get_token_info"
    _check(authority, api)


async def test_async_pipeline_sets_the_header_and_answers_the_claims_challenge(
    authority: MockAuthority, resource: tuple[Resource, HttpsServer]
) -> None:
    api, server = resource
    credential = identity.aio.ClientSecretCredential(
        DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, transport=authority.transport()
    )
    pipeline = AsyncPipeline(
        transport=AioHttpTransport(connection_verify=str(server.ca_path)),
        policies=[AsyncBearerTokenCredentialPolicy(credential, SCOPE)],
    )
    async with pipeline, credential:
        response = (await pipeline.run(HttpRequest("GET", f"{server.url}/secrets/x"))).http_response
        assert response.status_code == 200
    _check(authority, api)


def test_bearer_token_provider_feeds_an_authorization_header(authority: MockAuthority) -> None:
    credential = identity.ClientSecretCredential(
        DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, transport=authority.transport()
    )
    provider = identity.get_bearer_token_provider(credential, SCOPE)
    tokens = {provider() for _ in range(25)}
    assert len(tokens) == 1
    assert len(authority.requests_to("token")) == 1
    issued = authority.describe_token(tokens.pop())
    assert issued is not None
    assert issued.scopes == (SCOPE,)
