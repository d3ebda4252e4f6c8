"""azure-core pipeline keyword arguments accepted by the credentials (identity.http_options)."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from azure.core.pipeline.transport import RequestsTransport

import identity
import identity.aio
from conformance.authority import DEFAULT_CLIENT_ID, DEFAULT_SECRET, DEFAULT_TENANT, Fault, MockAuthority
from conformance.server import HttpsServer
from identity.http_options import http_options
from protocol.retry import RetryPolicy

SCOPE = "https://vault.azure.net/.default"


@pytest.fixture
def served() -> Iterator[tuple[MockAuthority, HttpsServer]]:
    authority = MockAuthority.with_defaults()
    with authority.serve() as server:
        yield authority, server


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _token(mode: str, **kwargs: Any) -> Any:
    module = identity if mode == "sync" else identity.aio
    credential = module.ClientSecretCredential(DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, **kwargs)
    try:
        result = credential.get_token(SCOPE)
        return await result if mode == "async" else result
    finally:
        closed = credential.close()
        if mode == "async":
            await closed


Served = tuple[MockAuthority, HttpsServer]


async def test_connection_verify_with_a_ca_bundle(mode: str, served: Served) -> None:
    authority, server = served
    token = await _token(
        mode, authority=server.url, disable_instance_discovery=True, connection_verify=str(server.ca_path)
    )
    assert authority.describe_token(token.token) is not None


async def test_without_the_ca_the_tls_failure_is_an_authentication_error(
    mode: str, served: tuple[MockAuthority, HttpsServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    authority, server = served
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with pytest.raises(identity.ClientAuthenticationError, match="could not connect"):
        await _token(
            mode,
            authority=server.url,
            disable_instance_discovery=True,
            retry_total=0,
        )
    assert authority.requests == []


async def test_connection_verify_false(mode: str, served: tuple[MockAuthority, HttpsServer]) -> None:
    authority, server = served
    token = await _token(mode, authority=server.url, disable_instance_discovery=True, connection_verify=False)
    assert authority.describe_token(token.token) is not None


async def test_headers_are_sent_with_every_request(mode: str, served: Served) -> None:
    authority, server = served
    await _token(
        mode,
        authority=server.url,
        disable_instance_discovery=True,
        connection_verify=str(server.ca_path),
        headers={"x-tenant-routing": "eu-1"},
    )
    assert [r.headers.get("x-tenant-routing") for r in authority.requests] == ["eu-1", "eu-1"]


async def test_retry_total_zero_means_one_attempt(mode: str) -> None:
    authority = MockAuthority.with_defaults()
    authority.inject(Fault.status(503), endpoint="token", times=5)
    with pytest.raises(identity.ClientAuthenticationError, match="temporarily_unavailable"):
        await _token(mode, transport=authority.transport(), retry_total=0)
    assert len(authority.requests_to("token")) == 1


def test_mapping_of_every_supported_keyword() -> None:
    kwargs: dict[str, Any] = {
        "connection_verify": False,
        "connection_timeout": 4,
        "read_timeout": 12.5,
        "proxies": {"https": "http://proxy.internal:3128"},
        "headers": {"x-a": "1"},
        "retry_total": 5,
        "retry_status": 2,
        "retry_backoff_factor": 0.1,
        "retry_backoff_max": 7,
        "logging_enable": True,
        "unknown_one": 1,
    }
    options = http_options("ClientSecretCredential", kwargs, None, None)
    assert kwargs == {"unknown_one": 1}, "known keywords are taken out; the rest is reported as unknown"
    timeout = options.client_options.pop("timeout")
    assert (timeout.connect, timeout.read) == (4.0, 12.5)
    assert options.client_options == {
        "verify": False,
        "proxy": "http://proxy.internal:3128",
        "headers": {"x-a": "1"},
    }
    assert options.retry_policy == RetryPolicy(max_retries=2, backoff_factor=0.1, backoff_max=7.0)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"policies": []}, TypeError, "does not support policies"),
        ({"user_agent": "app/1"}, TypeError, "does not support user_agent"),
        ({"raw_request_hook": print}, TypeError, "does not support raw_request_hook"),
        ({"connection_verify": 3}, TypeError, "connection_verify must be"),
        ({"connection_verify": "/no/such/ca.pem"}, ValueError, "cannot load the CA bundle"),
        ({"read_timeout": -1}, ValueError, "read_timeout must be a positive"),
        ({"retry_total": -1}, ValueError, "must be integers >= 0"),
        ({"proxies": "http://proxy"}, TypeError, "proxies must be a mapping"),
    ],
)
def test_unusable_keywords_are_refused(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        identity.ClientSecretCredential(DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, **kwargs)


def test_an_azure_core_transport_is_refused_with_advice() -> None:
    with pytest.raises(
        TypeError, match=r"transport must be an httpx transport.*RequestsTransport.*http_client="
    ):
        identity.ClientSecretCredential(
            DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, transport=RequestsTransport()
        )


def test_typos_are_still_refused() -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword argument.*additionaly_allowed_tenants"):
        identity.ClientSecretCredential(
            DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, additionaly_allowed_tenants=["*"]
        )


def test_pipeline_keywords_survive_pickle(served: tuple[MockAuthority, HttpsServer]) -> None:
    authority, server = served
    credential = identity.ClientSecretCredential(
        DEFAULT_TENANT,
        DEFAULT_CLIENT_ID,
        DEFAULT_SECRET,
        authority=server.url,
        disable_instance_discovery=True,
        connection_verify=str(server.ca_path),
    )
    restored = pickle.loads(pickle.dumps(credential))
    with restored:
        assert authority.describe_token(restored.get_token(SCOPE).token) is not None
    assert isinstance(restored, identity.ClientSecretCredential)
    assert httpx.URL(authority.requests_to("token")[0].url).host == "127.0.0.1"
