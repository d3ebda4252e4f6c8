"""ManagedIdentityCredential, sync and async: source selection, every source's wire request, the
identity arguments, scopes and caching, the IMDS probe and error mapping, Service Fabric's
certificate pin over real TLS, and secrets kept out of logs and errors (reference §3)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

import identity
import identity.aio
from conformance.authority import DEFAULT_TENANT, ExternalIssuer, MockAuthority
from conformance.server import HttpsServer
from identity import ClientAuthenticationError, CredentialUnavailableError
from protocol.managed_identity import azure_arc, imds
from protocol.retry import RetryPolicy

from .fakes import ACCESS_TOKEN, SECRET, assert_exception_has_no_canary, assert_no_canary

SCOPE = "https://vault.azure.net/.default"
RESOURCE = "https://vault.azure.net"
OTHER_SCOPE = "https://storage.azure.com/.default"
CLIENT_ID = "11111111-aaaa-bbbb-cccc-000000000001"
OBJECT_ID = "22222222-aaaa-bbbb-cccc-000000000002"
RESOURCE_ID = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u"
APP_SERVICE = "http://127.0.0.1:41001/msi/token"
ARC = "http://127.0.0.1:40342/metadata/identity/oauth2/token"
ML = "http://127.0.0.1:41002/msi/token"
CLOUD_SHELL = "http://127.0.0.1:41003/oauth2/token"
SF = "https://127.0.0.1:2377/metadata/identity/oauth2/token"
POD_HOST = "http://127.0.0.1:2579"
IMDS_PATH = "/metadata/identity/oauth2/token"
TROUBLESHOOT = "https://aka.ms/azsdk/python/identity/managedidentitycredential/troubleshoot"
THUMBPRINT = "0123456789ABCDEF0123456789ABCDEF01234567"
ARC_KEY = SECRET + "-arc-key"

#: No waiting between retries (tests that count attempts of the default policies record the sleeps).
FAST = RetryPolicy(backoff_factor=0)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def module(mode: str) -> Any:
    return identity if mode == "sync" else identity.aio


async def call(mode: str, method: Any, *args: Any, **kwargs: Any) -> Any:
    result = method(*args, **kwargs)
    return await result if mode == "async" else result


def token_body(token: str = ACCESS_TOKEN, **fields: Any) -> dict[str, Any]:
    if "expires_on" not in fields and "expires_in" not in fields:
        fields["expires_in"] = 3600
    return {"access_token": token, "token_type": "Bearer", "resource": RESOURCE, **fields}


def ok(**fields: Any) -> httpx.Response:
    return httpx.Response(200, json=token_body(**fields))


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


class Endpoint:
    """A managed identity endpoint in process: records requests, answers from a script (responses,
    or callables taking the request), then with a fresh token for every further request."""

    def __init__(self, *script: httpx.Response | Callable[[httpx.Request], httpx.Response]) -> None:
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if self.script:
            answer = self.script.pop(0)
            return answer(request) if callable(answer) else answer
        return ok(token=f"{ACCESS_TOKEN}-{len(self.requests)}")

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def query(request: httpx.Request) -> dict[str, str]:
    parsed = parse_qs(request.url.query.decode(), keep_blank_values=True)
    assert all(len(values) == 1 for values in parsed.values()), parsed
    return {name: values[0] for name, values in parsed.items()}


def base_url(request: httpx.Request) -> str:
    return str(request.url.copy_with(query=None))


class Credentials:
    """Builds credentials of the test's mode and closes them at the end."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.opened: list[Any] = []

    def __call__(self, endpoint: Endpoint | None = None, **kwargs: Any) -> Any:
        if endpoint is not None:
            kwargs.setdefault("transport", endpoint.transport())
        credential = module(self.mode).ManagedIdentityCredential(**kwargs)
        self.opened.append(credential)
        return credential

    def no_sleep(self, credential: Any) -> list[float]:
        """Record the driver's sleeps instead of sleeping."""
        sleeps: list[float] = []
        if self.mode == "sync":
            credential._driver._sleep = sleeps.append
        else:

            async def sleep(seconds: float) -> None:
                sleeps.append(seconds)

            credential._driver._sleep = sleep
        return sleeps


@pytest.fixture
async def make(mode: str) -> Any:
    credentials = Credentials(mode)
    yield credentials
    for credential in credentials.opened:
        await call(mode, credential.close)


@pytest.fixture
def key_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "tokens"
    directory.mkdir()
    monkeypatch.setattr(azure_arc, "default_key_directory", lambda: str(directory))
    return directory


def arc_challenge(path: Path | str) -> httpx.Response:
    return httpx.Response(401, headers={"WWW-Authenticate": f"Basic realm={path}"})


class Member:
    """A chain member of the test's mode that returns a fixed token."""

    def __init__(self, mode: str) -> None:
        self.mode, self.calls = mode, 0

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        self.calls += 1
        token = identity.AccessToken("second-member-token", int(time.time()) + 3600)
        if self.mode == "async":

            async def give() -> Any:
                return token

            return give()
        return token

    def close(self) -> Any:
        if self.mode == "async":

            async def done() -> None:
                return None

            return done()
        return None


# -- source selection (§3.1) ----

SELECTIONS = [
    ({}, "imds", "IMDS"),
    (
        {"IDENTITY_ENDPOINT": APP_SERVICE, "IDENTITY_HEADER": SECRET},
        "app_service",
        "App Service managed identity",
    ),
    (
        {"IDENTITY_ENDPOINT": SF, "IDENTITY_HEADER": SECRET, "IDENTITY_SERVER_THUMBPRINT": THUMBPRINT},
        "service_fabric",
        "Service Fabric managed identity",
    ),
    (
        {
            "IDENTITY_ENDPOINT": APP_SERVICE,
            "IDENTITY_HEADER": SECRET,
            "IMDS_ENDPOINT": "http://127.0.0.1:40342",
        },
        "app_service",
        "App Service managed identity",
    ),
    (
        {"IDENTITY_ENDPOINT": ARC, "IMDS_ENDPOINT": "http://127.0.0.1:40342"},
        "azure_arc",
        "Azure Arc managed identity",
    ),
    ({"MSI_ENDPOINT": ML, "MSI_SECRET": SECRET}, "azure_ml", "Azure ML managed identity"),
    ({"MSI_ENDPOINT": CLOUD_SHELL}, "cloud_shell", "Cloud Shell managed identity"),
    ({"IDENTITY_ENDPOINT": ARC}, "none", "no managed identity source"),
    ({"AZURE_POD_IDENTITY_AUTHORITY_HOST": POD_HOST}, "imds", "IMDS"),
]


@pytest.mark.parametrize(("environ", "kind", "label"), SELECTIONS)
async def test_each_environment_selects_its_source(
    make: Credentials,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    environ: dict[str, str],
    kind: str,
    label: str,
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    caplog.clear()
    credential = make()
    assert credential._setup.settings.kind == kind
    messages = [r.getMessage() for r in caplog.records if r.name == "identity" and r.levelno == logging.INFO]
    assert messages == [f"ManagedIdentityCredential will use {label}"]
    assert repr(credential) == f"ManagedIdentityCredential(source={label!r})"


@pytest.mark.parametrize(
    ("kwargs", "suffix"),
    [
        ({"client_id": CLIENT_ID}, f" with client_id: {CLIENT_ID}"),
        ({"identity_config": {"object_id": OBJECT_ID}}, f" with object_id: {OBJECT_ID}"),
        ({"identity_config": {"resource_id": RESOURCE_ID}}, f" with resource_id: {RESOURCE_ID}"),
        ({"identity_config": {"mi_res_id": RESOURCE_ID}}, f" with resource_id: {RESOURCE_ID}"),
    ],
)
async def test_the_log_names_the_user_assigned_identity(
    make: Credentials, caplog: pytest.LogCaptureFixture, kwargs: dict[str, Any], suffix: str
) -> None:
    caplog.clear()
    make(**kwargs)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        f"ManagedIdentityCredential will use IMDS{suffix}"
    ]


async def test_identity_endpoint_alone_is_unavailable_at_get_token(
    mode: str, make: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", ARC)
    endpoint = Endpoint()
    credential = make(endpoint)  # constructing is fine: the failure is get_token's
    for attempt in range(2):
        with pytest.raises(CredentialUnavailableError) as caught:
            await call(mode, credential.get_token, SCOPE)
        message = caught.value.message
        assert message.startswith(
            "ManagedIdentityCredential authentication unavailable. No managed identity endpoint found."
        ), attempt
        assert "The Target Azure platform could not be determined from environment variables" in message
        assert TROUBLESHOOT in message
    assert endpoint.requests == []


@pytest.fixture
def workload(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[MockAuthority, ExternalIssuer, str]:
    authority = MockAuthority.with_defaults()
    issuer = ExternalIssuer("https://oidc.aks.example.test/cluster/")
    client_id = "workload-app-0001"
    authority.add_application(DEFAULT_TENANT, client_id)
    authority.add_federated_credential(DEFAULT_TENANT, client_id, issuer, "system:serviceaccount:prod:api")
    token_file = tmp_path / "token"
    token_file.write_text(issuer.mint("system:serviceaccount:prod:api"))
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com")
    monkeypatch.setenv("AZURE_TENANT_ID", DEFAULT_TENANT)
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    return authority, issuer, client_id


@pytest.mark.parametrize("by", ["environment", "argument"])
async def test_workload_identity_is_delegated(
    mode: str,
    make: Credentials,
    workload: tuple[MockAuthority, ExternalIssuer, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    by: str,
) -> None:
    authority, _, client_id = workload
    caplog.clear()
    if by == "environment":
        monkeypatch.setenv("AZURE_CLIENT_ID", client_id)
        credential = make(transport=authority.transport())
    else:
        monkeypatch.setenv("AZURE_CLIENT_ID", "not-this-one")
        credential = make(client_id=client_id, transport=authority.transport())
    assert type(credential._delegate).__name__ == "WorkloadIdentityCredential"
    token = await call(mode, credential.get_token, SCOPE)
    described = authority.describe_token(token.token)
    assert described is not None
    assert described.client_id == client_id
    info = await call(mode, credential.get_token_info, OTHER_SCOPE)
    assert authority.describe_token(info.token) is not None
    requests = authority.requests_to("token")
    assert len(requests) == 2
    assert requests[0].form["client_id"] == client_id
    assert (
        requests[0].form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    )
    assert requests[0].form["scope"] == SCOPE
    suffix = f" with client_id: {client_id}" if by == "argument" else ""
    assert f"ManagedIdentityCredential will use workload identity{suffix}" in [
        r.getMessage() for r in caplog.records
    ]


async def test_workload_identity_excluded_falls_to_imds(
    mode: str,
    make: Credentials,
    workload: tuple[MockAuthority, ExternalIssuer, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, _, client_id = workload
    monkeypatch.setenv("AZURE_CLIENT_ID", client_id)
    endpoint = Endpoint()
    credential = make(endpoint, _exclude_workload_identity_credential=True)
    assert credential._delegate is None
    assert credential._setup.settings.kind == "imds"
    await call(mode, credential.get_token, SCOPE)
    assert base_url(endpoint.last) == imds.DEFAULT_HOST + IMDS_PATH
    assert query(endpoint.last) == {"api-version": "2018-02-01", "resource": RESOURCE}  # system-assigned


async def test_workload_identity_without_client_id(
    mode: str, workload: tuple[MockAuthority, ExternalIssuer, str]
) -> None:
    with pytest.raises(ValueError) as caught:
        module(mode).ManagedIdentityCredential()
    assert str(caught.value) == (
        "Workload identity was selected but no client ID was provided. Configure the environment with a "
        'client ID or pass a value for "client_id" argument'
    )
    with pytest.raises(ValueError, match="not by object_id"):
        module(mode).ManagedIdentityCredential(identity_config={"object_id": OBJECT_ID})


# -- request shapes (§3.4) ----

IDENTITIES: list[tuple[dict[str, Any], dict[str, str]]] = [
    ({}, {}),
    ({"client_id": CLIENT_ID}, {"client_id": CLIENT_ID}),
    ({"identity_config": {"client_id": CLIENT_ID}}, {"client_id": CLIENT_ID}),
    ({"identity_config": {"object_id": OBJECT_ID}}, {"object_id": OBJECT_ID}),
    ({"identity_config": {"resource_id": RESOURCE_ID}}, {"resource_id": RESOURCE_ID}),
    ({"identity_config": {"mi_res_id": RESOURCE_ID}}, {"resource_id": RESOURCE_ID}),
    ({"identity_config": {"msi_res_id": RESOURCE_ID}}, {"resource_id": RESOURCE_ID}),
]


def renamed(named: dict[str, str], resource_param: str) -> dict[str, str]:
    return {resource_param if key == "resource_id" else key: value for key, value in named.items()}


@pytest.mark.parametrize(("kwargs", "named"), IDENTITIES)
async def test_imds_request(
    mode: str, make: Credentials, kwargs: dict[str, Any], named: dict[str, str]
) -> None:
    endpoint = Endpoint(ok(expires_in=3600))
    credential = make(endpoint, **kwargs)
    before = int(time.time())
    token = await call(mode, credential.get_token, SCOPE)
    after = int(time.time())
    assert token.token == ACCESS_TOKEN
    assert before + 3600 <= token.expires_on <= after + 3600
    (request,) = endpoint.requests
    assert request.method == "GET"
    assert base_url(request) == imds.DEFAULT_HOST + IMDS_PATH
    assert query(request) == {
        "api-version": "2018-02-01",
        "resource": RESOURCE,
        **renamed(named, "msi_res_id"),
    }
    assert request.headers["Metadata"] == "true"
    # The client's timeouts: local endpoints connect within 2 s (reference §3.7), no probe's 1 s.
    assert request.extensions["timeout"] == {"connect": 2.0, "read": 30.0, "write": 30.0, "pool": 30.0}


@pytest.mark.parametrize(
    "host",
    [
        POD_HOST,
        POD_HOST + "/",
        POD_HOST + "//",
        POD_HOST.removeprefix("http://"),
        POD_HOST.removeprefix("http://") + "/",
    ],
)
async def test_imds_on_the_pod_identity_host(
    mode: str, make: Credentials, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", host)
    endpoint = Endpoint()
    credential = make(endpoint, client_id=CLIENT_ID)
    await call(mode, credential.get_token, SCOPE)
    assert base_url(endpoint.last) == POD_HOST + IMDS_PATH
    assert query(endpoint.last)["client_id"] == CLIENT_ID


@pytest.mark.parametrize(("kwargs", "named"), IDENTITIES)
async def test_app_service_request(
    mode: str,
    make: Credentials,
    monkeypatch: pytest.MonkeyPatch,
    kwargs: dict[str, Any],
    named: dict[str, str],
) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", APP_SERVICE)
    monkeypatch.setenv("IDENTITY_HEADER", SECRET)
    expires_on = int(time.time()) + 3600
    endpoint = Endpoint(ok(expires_on=str(expires_on)))
    credential = make(endpoint, **kwargs)
    token = await call(mode, credential.get_token, SCOPE)
    assert (token.token, token.expires_on) == (ACCESS_TOKEN, expires_on)
    (request,) = endpoint.requests
    assert request.method == "GET"
    assert base_url(request) == APP_SERVICE
    assert query(request) == {
        "api-version": "2019-08-01",
        "resource": RESOURCE,
        **renamed(named, "mi_res_id"),
    }
    assert request.headers["X-IDENTITY-HEADER"] == SECRET


async def test_app_service_error(mode: str, make: Credentials, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", APP_SERVICE)
    monkeypatch.setenv("IDENTITY_HEADER", SECRET)
    endpoint = Endpoint(
        httpx.Response(
            400, json={"statusCode": 400, "message": "Unable to load the proper Managed Identity."}
        )
    )
    credential = make(endpoint, client_id=CLIENT_ID)
    with pytest.raises(ClientAuthenticationError) as caught:
        await call(mode, credential.get_token, SCOPE)
    assert not isinstance(caught.value, CredentialUnavailableError)
    assert caught.value.message == (
        "ManagedIdentityCredential: authentication failed. The App Service managed identity endpoint "
        f"{APP_SERVICE} answered HTTP 400: Unable to load the proper Managed Identity."
    )
    assert len(endpoint.requests) == 1


@pytest.fixture
def service_fabric(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", SF)
    monkeypatch.setenv("IDENTITY_HEADER", SECRET)
    monkeypatch.setenv("IDENTITY_SERVER_THUMBPRINT", THUMBPRINT)


@pytest.mark.usefixtures("service_fabric")
async def test_service_fabric_request(mode: str, make: Credentials) -> None:
    expires_on = int(time.time()) + 3600
    endpoint = Endpoint(ok(expires_on=str(expires_on)))
    credential = make(endpoint)  # a caller's transport: pinning is then the transport's business
    token = await call(mode, credential.get_token, SCOPE)
    assert (token.token, token.expires_on) == (ACCESS_TOKEN, expires_on)
    (request,) = endpoint.requests
    assert request.method == "GET"
    assert base_url(request) == SF
    assert query(request) == {"api-version": "2019-07-01-preview", "resource": RESOURCE}
    assert request.headers["Secret"] == SECRET


@pytest.mark.usefixtures("service_fabric")
@pytest.mark.parametrize("kwargs", [kw for kw, _ in IDENTITIES[1:]])
async def test_service_fabric_refuses_a_user_assigned_identity(
    mode: str, make: Credentials, kwargs: dict[str, Any]
) -> None:
    endpoint = Endpoint()
    credential = make(endpoint, **kwargs)
    with pytest.raises(ClientAuthenticationError) as caught:
        await call(mode, credential.get_token, SCOPE)
    assert not isinstance(caught.value, CredentialUnavailableError)
    assert (
        "Specifying a client_id or identity_config is not supported by the Service Fabric managed identity "
        "environment" in caught.value.message
    )
    assert "https://aka.ms/servicefabricmi" in caught.value.message
    assert endpoint.requests == []


@pytest.mark.parametrize(
    ("url", "thumbprint", "problem"),
    [
        (
            "http://127.0.0.1:2377/metadata/identity/oauth2/token",
            THUMBPRINT,
            "IDENTITY_ENDPOINT must be an https URL",
        ),
        (SF, "not-a-thumbprint", "IDENTITY_SERVER_THUMBPRINT must be the 40 hexadecimal digits"),
        (SF, THUMBPRINT[:-1], "IDENTITY_SERVER_THUMBPRINT must be the 40 hexadecimal digits"),
    ],
)
@pytest.mark.parametrize("transport", [True, False])
async def test_service_fabric_insecure_configuration_sends_nothing(
    mode: str,
    make: Credentials,
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    thumbprint: str,
    problem: str,
    transport: bool,
) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", url)
    monkeypatch.setenv("IDENTITY_HEADER", SECRET)
    monkeypatch.setenv("IDENTITY_SERVER_THUMBPRINT", thumbprint)
    endpoint = Endpoint()
    credential = make(endpoint) if transport else make()
    with pytest.raises(ClientAuthenticationError) as caught:
        await call(mode, credential.get_token, SCOPE)
    assert not isinstance(caught.value, CredentialUnavailableError)
    assert problem in caught.value.message
    assert caught.value.message.startswith("ManagedIdentityCredential: authentication failed. Service Fabric")
    assert endpoint.requests == []


@pytest.mark.parametrize(
    ("kwargs", "params"),
    [
        ({}, {}),
        ({"client_id": CLIENT_ID}, {"clientid": CLIENT_ID}),
        ({"identity_config": {"client_id": CLIENT_ID}}, {"clientid": CLIENT_ID}),
    ],
)
async def test_azure_ml_request(
    mode: str,
    make: Credentials,
    monkeypatch: pytest.MonkeyPatch,
    kwargs: dict[str, Any],
    params: dict[str, str],
) -> None:
    monkeypatch.setenv("MSI_ENDPOINT", ML)
    monkeypatch.setenv("MSI_SECRET", SECRET)
    # Azure ML's 2017 API answers with App Service 2017's date form.
    moment = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
    endpoint = Endpoint(ok(expires_on=moment.strftime("%m/%d/%Y %H:%M:%S +00:00")))
    credential = make(endpoint, **kwargs)
    token = await call(mode, credential.get_token, SCOPE)
    assert (token.token, token.expires_on) == (ACCESS_TOKEN, int(moment.timestamp()))
    (request,) = endpoint.requests
    assert request.method == "GET"
    assert base_url(request) == ML
    assert query(request) == {"api-version": "2017-09-01", "resource": RESOURCE, **params}
    assert request.headers["secret"] == SECRET


@pytest.mark.parametrize(
    "config", [{"object_id": OBJECT_ID}, {"resource_id": RESOURCE_ID}, {"msi_res_id": RESOURCE_ID}]
)
async def test_azure_ml_names_identities_by_client_id_only(
    mode: str, make: Credentials, monkeypatch: pytest.MonkeyPatch, config: dict[str, str]
) -> None:
    monkeypatch.setenv("MSI_ENDPOINT", ML)
    monkeypatch.setenv("MSI_SECRET", SECRET)
    endpoint = Endpoint()
    credential = make(endpoint, identity_config=config)
    with pytest.raises(ClientAuthenticationError) as caught:
        await call(mode, credential.get_token, SCOPE)
    assert not isinstance(caught.value, CredentialUnavailableError)
    assert (
        "Azure ML managed identity names a user-assigned identity by client_id only" in caught.value.message
    )
    assert endpoint.requests == []


async def test_cloud_shell_request(mode: str, make: Credentials, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSI_ENDPOINT", CLOUD_SHELL)
    expires_on = int(time.time()) + 3600
    endpoint = Endpoint(ok(expires_on=expires_on))
    credential = make(endpoint)
    token = await call(mode, credential.get_token, SCOPE)
    assert (token.token, token.expires_on) == (ACCESS_TOKEN, expires_on)
    (request,) = endpoint.requests
    assert request.method == "POST"
    assert str(request.url) == CLOUD_SHELL  # no query string
    assert request.headers["Metadata"] == "true"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode(), keep_blank_values=True) == {"resource": [RESOURCE]}


@pytest.mark.parametrize("kwargs", [kw for kw, _ in IDENTITIES[1:]])
async def test_cloud_shell_has_no_user_assigned_identities(
    mode: str, make: Credentials, monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any]
) -> None:
    monkeypatch.setenv("MSI_ENDPOINT", CLOUD_SHELL)
    with pytest.raises(
        ValueError, match="Cloud Shell managed identity does not support user-assigned identities"
    ):
        module(mode).ManagedIdentityCredential(**kwargs)
    # Inside DefaultAzureCredential construction succeeds and get_token says "not here".
    endpoint = Endpoint()
    credential = make(endpoint, _within_dac=True, **kwargs)
    with pytest.raises(CredentialUnavailableError, match="Cloud Shell managed identity does not support"):
        await call(mode, credential.get_token, SCOPE)
    assert endpoint.requests == []


# -- Azure Arc ----


@pytest.fixture
def arc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", ARC)
    monkeypatch.setenv("IMDS_ENDPOINT", "http://127.0.0.1:40342")


def write_key(directory: Path, name: str = "0b9d.key", content: str = ARC_KEY) -> Path:
    path = directory / name
    path.write_text(content)
    return path


@pytest.mark.usefixtures("arc")
async def test_arc_challenge_then_key(mode: str, make: Credentials, key_directory: Path) -> None:
    key = write_key(key_directory)
    endpoint = Endpoint(arc_challenge(key), ok(expires_in="3600"))
    credential = make(endpoint)
    before = int(time.time())
    token = await call(mode, credential.get_token, SCOPE)
    assert token.token == ACCESS_TOKEN
    assert before + 3600 <= token.expires_on <= int(time.time()) + 3600
    first, second = endpoint.requests
    for request in (first, second):
        assert request.method == "GET"
        assert base_url(request) == ARC
        assert query(request) == {"api-version": "2020-06-01", "resource": RESOURCE}
        assert request.headers["Metadata"] == "true"
    assert "authorization" not in first.headers
    assert second.headers["Authorization"] == f"Basic {ARC_KEY}"
    # Cached: no third request.
    assert (await call(mode, credential.get_token, SCOPE)).token == ACCESS_TOKEN
    assert len(endpoint.requests) == 2


@pytest.mark.usefixtures("arc")
@pytest.mark.parametrize(
    ("kwargs", "param", "echo"),
    [
        ({"client_id": CLIENT_ID}, "client_id", {"client_id": CLIENT_ID.upper()}),
        ({"identity_config": {"object_id": OBJECT_ID}}, "object_id", {"object_id": OBJECT_ID}),
        ({"identity_config": {"resource_id": RESOURCE_ID}}, "msi_res_id", {"mi_res_id": RESOURCE_ID.upper()}),
    ],
)
async def test_arc_user_assigned_identity_is_echoed(
    mode: str,
    make: Credentials,
    key_directory: Path,
    kwargs: dict[str, Any],
    param: str,
    echo: dict[str, str],
) -> None:
    key = write_key(key_directory)
    endpoint = Endpoint(arc_challenge(key), ok(**echo))
    credential = make(endpoint, **kwargs)
    assert (await call(mode, credential.get_token, SCOPE)).token == ACCESS_TOKEN
    value = next(iter(kwargs.values()))
    value = value if isinstance(value, str) else next(iter(value.values()))
    assert query(endpoint.requests[0])[param] == query(endpoint.requests[1])[param] == value


@pytest.mark.usefixtures("arc")
async def test_arc_token_of_the_system_identity_is_refused(
    mode: str, make: Credentials, key_directory: Path
) -> None:
    key = write_key(key_directory)
    endpoint = Endpoint(
        arc_challenge(key), ok(), arc_challenge(key), ok(client_id="33333333-0000-0000-0000-000000000000")
    )
    credential = make(endpoint, client_id=CLIENT_ID)
    for _ in range(2):
        with pytest.raises(ClientAuthenticationError) as caught:
            await call(mode, credential.get_token, SCOPE)
        assert not isinstance(caught.value, CredentialUnavailableError)
        assert (
            "Azure Arc did not confirm the requested user-assigned managed identity in the token response. "
            "The agent likely does not support user-assigned managed identities and returned the "
            "system-assigned identity"
        ) in caught.value.message
        assert_exception_has_no_canary(caught.value)
    assert len(endpoint.requests) == 4


@pytest.mark.usefixtures("arc")
@pytest.mark.parametrize(
    ("challenge", "problem"),
    [
        (lambda d, t: arc_challenge(write_key(t, "elsewhere.key")), "it is not in"),
        (lambda d, t: arc_challenge(write_key(d, "key.txt")), "it does not have the .key extension"),
        (lambda d, t: arc_challenge(write_key(d, "big.key", "k" * 4097)), "it is larger than 4096 bytes"),
        (lambda d, t: arc_challenge(d / "missing.key"), "it cannot be read"),
        (lambda d, t: httpx.Response(401), "has no WWW-Authenticate header"),
        (
            lambda d, t: httpx.Response(401, headers={"WWW-Authenticate": "Bearer realm=x"}),
            "unrecognizable WWW-Authenticate header",
        ),
        (
            lambda d, t: httpx.Response(401, headers={"WWW-Authenticate": "Basic"}),
            "unrecognizable WWW-Authenticate",
        ),
        (lambda d, t: ok(), "answered HTTP 200 instead of the expected 401 challenge"),
        (
            lambda d, t: httpx.Response(404, json={"error": "not_found", "error_description": "no identity"}),
            "answered HTTP 404: not_found: no identity",
        ),
    ],
)
async def test_arc_untrusted_challenges_send_no_key(
    mode: str, make: Credentials, key_directory: Path, tmp_path: Path, challenge: Any, problem: str
) -> None:
    endpoint = Endpoint(challenge(key_directory, tmp_path))
    credential = make(endpoint, retry_policy=FAST)
    with pytest.raises(ClientAuthenticationError) as caught:
        await call(mode, credential.get_token, SCOPE)
    assert not isinstance(caught.value, CredentialUnavailableError)
    assert problem in caught.value.message
    assert caught.value.message.startswith("ManagedIdentityCredential: authentication failed.")
    requests = [r for r in endpoint.requests if "authorization" in r.headers]
    assert requests == []
    assert len(endpoint.requests) == 1


@pytest.mark.usefixtures("arc")
async def test_arc_on_an_unsupported_platform(
    mode: str, make: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(azure_arc.sys, "platform", "darwin")
    endpoint = Endpoint()
    credential = make(endpoint)
    with pytest.raises(ClientAuthenticationError, match=r"not supported on this platform \(darwin\)"):
        await call(mode, credential.get_token, SCOPE)
    assert endpoint.requests == []


# -- identity arguments (§3.2) ----


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"client_id": CLIENT_ID, "identity_config": {"client_id": CLIENT_ID}},
            "must not contain 'client_id'",
        ),
        (
            {"client_id": CLIENT_ID, "identity_config": {"object_id": OBJECT_ID}},
            "when the client_id argument",
        ),
        (
            {"client_id": CLIENT_ID, "identity_config": {"mi_res_id": RESOURCE_ID}},
            "when the client_id argument",
        ),
        (
            {"identity_config": {"client_id": CLIENT_ID, "object_id": OBJECT_ID}},
            "must not contain more than one of the following keys: 'client_id', 'object_id', 'resource_id'",
        ),
        ({"identity_config": {"resource_id": RESOURCE_ID, "msi_res_id": RESOURCE_ID}}, "more than one"),
        ({"identity_config": {"mi_res_id": RESOURCE_ID, "msi_res_id": RESOURCE_ID}}, "more than one"),
        ({"client_id": ""}, "client_id must be a non-empty string"),
        ({"client_id": "   "}, "client_id must be a non-empty string"),
        (
            {"identity_config": {"client_id": ""}},
            r"identity_config\['client_id'\] must be a non-empty string",
        ),
        (
            {"identity_config": {"object_id": " "}},
            r"identity_config\['object_id'\] must be a non-empty string",
        ),
        ({"identity_config": {"resource_id": None}}, "must be a non-empty string"),
        ({"identity_config": {"clientid": CLIENT_ID}}, "identity_config key 'clientid' is not supported"),
        ({"identity_config": {"principal_id": OBJECT_ID}}, "key 'principal_id' is not supported"),
    ],
)
def test_identity_arguments_are_validated(mode: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        module(mode).ManagedIdentityCredential(**kwargs)


async def test_an_empty_identity_config_is_the_system_identity(mode: str, make: Credentials) -> None:
    endpoint = Endpoint()
    credential = make(endpoint, identity_config={}, client_id=None)
    await call(mode, credential.get_token, SCOPE)
    assert query(endpoint.last) == {"api-version": "2018-02-01", "resource": RESOURCE}


def test_unknown_keyword_arguments_are_rejected(mode: str) -> None:
    with pytest.raises(TypeError):
        module(mode).ManagedIdentityCredential(tenant="x")


# -- scopes, tenants, claims and caching (§3.3, §3.8) ----


async def test_exactly_one_scope(mode: str, make: Credentials) -> None:
    endpoint = Endpoint()
    credential = make(endpoint)
    for method in (credential.get_token, credential.get_token_info):
        with pytest.raises(ValueError) as caught:
            await call(mode, method, SCOPE, OTHER_SCOPE)
        assert str(caught.value) == "This credential requires exactly one scope per token request."
    # No scope at all is every credential's error.
    with pytest.raises(ValueError, match='"get_token" requires at least one scope'):
        await call(mode, credential.get_token)
    with pytest.raises(ValueError, match='"get_token_info" requires at least one scope'):
        await call(mode, credential.get_token_info)
    assert endpoint.requests == []


@pytest.mark.parametrize(
    ("scope", "resource"),
    [
        (SCOPE, RESOURCE),
        (RESOURCE, RESOURCE),
        ("https://management.azure.com//.default", "https://management.azure.com/"),
        ("api://0c1d2e3f/.default", "api://0c1d2e3f"),
        ("https://graph.microsoft.com/User.Read", "https://graph.microsoft.com/User.Read"),
    ],
)
async def test_scope_becomes_a_resource(mode: str, make: Credentials, scope: str, resource: str) -> None:
    endpoint = Endpoint()
    credential = make(endpoint)
    await call(mode, credential.get_token, scope)
    assert query(endpoint.last)["resource"] == resource


async def test_tenant_id_is_ignored(mode: str, make: Credentials) -> None:
    endpoint = Endpoint()
    credential = make(endpoint)
    first = await call(mode, credential.get_token, SCOPE, tenant_id="c0ffee00-1111-4222-8333-444455556666")
    second = await call(mode, credential.get_token, SCOPE, tenant_id="another-tenant")
    third = await call(mode, credential.get_token_info, SCOPE, options={"tenant_id": "x"})
    assert first.token == second.token == third.token
    (request,) = endpoint.requests
    assert "tenant" not in request.url.query.decode()


async def test_claims_bypass_the_cache_but_are_never_sent(mode: str, make: Credentials) -> None:
    claims = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}'
    endpoint = Endpoint()
    credential = make(endpoint)
    first = await call(mode, credential.get_token, SCOPE)
    second = await call(mode, credential.get_token, SCOPE, claims=claims)
    third = await call(mode, credential.get_token_info, SCOPE, options={"claims": claims})
    assert len(endpoint.requests) == 3
    assert len({first.token, second.token, third.token}) == 3
    for request in endpoint.requests:
        assert query(request) == {"api-version": "2018-02-01", "resource": RESOURCE}
        assert request.content == b""
        assert all("nbf" not in value for value in request.headers.values())
    # The token the claims produced is the one served from now on.
    assert (await call(mode, credential.get_token, SCOPE)).token == third.token
    assert len(endpoint.requests) == 3


async def test_enable_cae_is_accepted(mode: str, make: Credentials) -> None:
    endpoint = Endpoint()
    credential = make(endpoint)
    token = await call(mode, credential.get_token, SCOPE, enable_cae=True)
    assert token.token.startswith(ACCESS_TOKEN)
    assert query(endpoint.last) == {"api-version": "2018-02-01", "resource": RESOURCE}


async def test_tokens_are_cached_per_resource(mode: str, make: Credentials) -> None:
    endpoint = Endpoint()
    credential = make(endpoint)
    first = await call(mode, credential.get_token, SCOPE)
    assert (await call(mode, credential.get_token, SCOPE)).token == first.token
    assert (await call(mode, credential.get_token, RESOURCE)).token == first.token  # same resource
    info = await call(mode, credential.get_token_info, SCOPE)
    assert (info.token, info.expires_on) == (first.token, first.expires_on)
    assert len(endpoint.requests) == 1
    other = await call(mode, credential.get_token, OTHER_SCOPE)
    assert other.token != first.token
    assert len(endpoint.requests) == 2


@pytest.mark.parametrize(
    ("lifetime", "half_life"), [(7200, True), (86_399, True), (7199, False), (3600, False)]
)
@pytest.mark.parametrize("form", ["expires_in", "expires_on"])
async def test_long_lived_tokens_refresh_at_half_life(
    mode: str, make: Credentials, lifetime: int, half_life: bool, form: str
) -> None:
    now = int(time.time())
    value = lifetime if form == "expires_in" else str(now + lifetime)
    endpoint = Endpoint(ok(**{form: value}))
    credential = make(endpoint)
    info = await call(mode, credential.get_token_info, SCOPE)
    assert info.token_type == "Bearer"
    if not half_life:
        assert info.refresh_on is None
        return
    assert abs(info.refresh_on - (now + lifetime // 2)) <= 2
    if form == "expires_in":  # both count from the same request time
        assert info.refresh_on == info.expires_on - lifetime + lifetime // 2


def app_service_date(moment: datetime, twelve_hour: bool) -> str:
    if twelve_hour:
        hour = moment.hour % 12 or 12
        meridiem = "AM" if moment.hour < 12 else "PM"
        return f"{moment.month}/{moment.day}/{moment.year} {hour}:{moment:%M:%S} {meridiem} +00:00"
    return moment.strftime("%m/%d/%Y %H:%M:%S +00:00")


@pytest.mark.parametrize("form", ["int", "string", "date", "date12", "expires_in"])
async def test_expires_on_forms(
    mode: str, make: Credentials, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", APP_SERVICE)
    monkeypatch.setenv("IDENTITY_HEADER", SECRET)
    moment = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=5, minutes=7)
    expected = int(moment.timestamp())
    fields: dict[str, Any] = {
        "int": {"expires_on": expected},
        "string": {"expires_on": str(expected)},
        "date": {"expires_on": app_service_date(moment, False)},
        "date12": {"expires_on": app_service_date(moment, True)},
        "expires_in": {"expires_in": expected - int(time.time())},
    }[form]
    endpoint = Endpoint(ok(**fields))
    credential = make(endpoint)
    token = await call(mode, credential.get_token, SCOPE)
    assert abs(token.expires_on - expected) <= (2 if form == "expires_in" else 0)
    info = await call(mode, credential.get_token_info, SCOPE)
    assert info.refresh_on is not None  # five hours: refreshed at half-life
    assert len(endpoint.requests) == 1


async def test_malformed_expiry_is_an_authentication_error(
    mode: str, make: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", APP_SERVICE)
    monkeypatch.setenv("IDENTITY_HEADER", SECRET)
    endpoint = Endpoint(ok(expires_on="06/20/2099 02:57:58"))  # no " +00:00"
    credential = make(endpoint)
    with pytest.raises(ClientAuthenticationError, match="missing or invalid field") as caught:
        await call(mode, credential.get_token, SCOPE)
    assert not isinstance(caught.value, CredentialUnavailableError)
    assert_exception_has_no_canary(caught.value)


# -- the IMDS probe (§3.6) ----


def probe_400(request: httpx.Request) -> httpx.Response:
    assert "metadata" not in request.headers
    return httpx.Response(
        400, json={"error": "invalid_request", "error_description": "Required metadata header not specified"}
    )


async def test_inside_a_chain_imds_is_probed_and_the_chain_moves_on(mode: str, make: Credentials) -> None:
    endpoint = Endpoint(refuse, refuse, refuse)
    mi = make(endpoint)
    second = Member(mode)
    chain = module(mode).ChainedTokenCredential(mi, second)
    started = time.monotonic()
    token = await call(mode, chain.get_token, SCOPE)
    assert time.monotonic() - started < 1
    assert token.token == "second-member-token"
    assert second.calls == 1
    (probe,) = endpoint.requests  # no retry, no real request
    assert "metadata" not in probe.headers
    assert probe.extensions["timeout"] == {"connect": 1.0, "read": 1.0, "write": 1.0, "pool": 1.0}
    assert query(probe) == {"api-version": "2018-02-01", "resource": RESOURCE}
    # A failed probe is tried again on the next call.
    await call(mode, chain.get_token, SCOPE)
    assert len(endpoint.requests) == 2


async def test_inside_a_chain_a_closed_imds_port_is_skipped_quickly(mode: str, make: Credentials) -> None:
    # No transport: a real connection to the closed loopback port conftest put in IMDS's place.
    mi = make()
    second = Member(mode)
    chain = module(mode).ChainedTokenCredential(mi, second)
    started = time.monotonic()
    assert (await call(mode, chain.get_token, SCOPE)).token == "second-member-token"
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("where", ["flag", "chain"])
async def test_probe_answered_means_present(mode: str, make: Credentials, where: str) -> None:
    endpoint = Endpoint(probe_400, ok(token=ACCESS_TOKEN))
    if where == "flag":
        credential = make(endpoint, client_id=CLIENT_ID, _enable_imds_probe=True)
        getter = credential
    else:
        credential = make(endpoint, client_id=CLIENT_ID)
        getter = module(mode).ChainedTokenCredential(credential, Member(mode))
    token = await call(mode, getter.get_token, SCOPE)
    assert token.token == ACCESS_TOKEN
    probe, real = endpoint.requests
    assert "metadata" not in probe.headers
    assert real.headers["Metadata"] == "true"
    assert (
        query(probe)
        == query(real)
        == {"api-version": "2018-02-01", "resource": RESOURCE, "client_id": CLIENT_ID}
    )
    # IMDS is known to be there now: a new resource goes straight to the real request.
    await call(mode, getter.get_token, OTHER_SCOPE)
    assert len(endpoint.requests) == 3
    assert endpoint.last.headers["Metadata"] == "true"
    assert query(endpoint.last)["resource"] == "https://storage.azure.com"


async def test_probe_refused_with_the_flag(mode: str, make: Credentials) -> None:
    endpoint = Endpoint(refuse)
    credential = make(endpoint, _enable_imds_probe=True)
    with pytest.raises(CredentialUnavailableError) as caught:
        await call(mode, credential.get_token, SCOPE)
    assert caught.value.message == (
        "ManagedIdentityCredential authentication unavailable, no response from the IMDS endpoint."
    )
    assert len(endpoint.requests) == 1


async def test_probe_403_unreachable(mode: str, make: Credentials) -> None:
    message = (
        "connecting to 169.254.169.254:80: connecting to 169.254.169.254:80: dial tcp 169.254.169.254:80: "
        "connectex: A socket operation was attempted to an unreachable network."
    )
    endpoint = Endpoint(httpx.Response(403, text=message))
    credential = make(endpoint, _enable_imds_probe=True)
    with pytest.raises(CredentialUnavailableError) as caught:
        await call(mode, credential.get_token, SCOPE)
    assert caught.value.message == f"ManagedIdentityCredential authentication unavailable. Error: {message}"
    assert len(endpoint.requests) == 1


async def test_no_probe_outside_a_chain(mode: str, make: Credentials) -> None:
    endpoint = Endpoint()
    credential = make(endpoint)
    await call(mode, credential.get_token, SCOPE)
    assert [r.headers.get("metadata") for r in endpoint.requests] == ["true"]


async def test_no_probe_when_disabled_inside_a_chain(mode: str, make: Credentials) -> None:
    endpoint = Endpoint()
    credential = make(endpoint, _enable_imds_probe=False)
    chain = module(mode).ChainedTokenCredential(credential, Member(mode))
    await call(mode, chain.get_token, SCOPE)
    assert [r.headers.get("metadata") for r in endpoint.requests] == ["true"]


@pytest.mark.parametrize("flag", [None, True])
async def test_no_probe_of_the_pod_identity_host(
    mode: str, make: Credentials, monkeypatch: pytest.MonkeyPatch, flag: bool | None
) -> None:
    # AZURE_POD_IDENTITY_AUTHORITY_HOST means the endpoint is there (reference §3.6), also for
    # DefaultAzureCredential, which passes _enable_imds_probe=True.
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", POD_HOST)
    endpoint = Endpoint()
    credential = make(endpoint, _enable_imds_probe=flag)
    chain = module(mode).ChainedTokenCredential(credential, Member(mode))
    await call(mode, chain.get_token, SCOPE)
    assert [r.headers.get("metadata") for r in endpoint.requests] == ["true"]
    assert base_url(endpoint.last) == POD_HOST + IMDS_PATH


# -- IMDS errors on the real request ----


@pytest.mark.parametrize(
    ("kwargs", "wording"),
    [
        ({}, "No identity has been assigned to this resource."),
        ({"client_id": CLIENT_ID}, "The requested identity has not been assigned to this resource."),
    ],
)
async def test_imds_400_is_unavailable(
    mode: str, make: Credentials, kwargs: dict[str, Any], wording: str
) -> None:
    endpoint = Endpoint(
        httpx.Response(400, json={"error": "invalid_request", "error_description": "Identity not found"})
    )
    credential = make(endpoint, **kwargs)
    with pytest.raises(CredentialUnavailableError) as caught:
        await call(mode, credential.get_token, SCOPE)
    assert caught.value.message == (
        f"ManagedIdentityCredential authentication unavailable. {wording} "
        "Error: invalid_request: Identity not found"
    )
    assert len(endpoint.requests) == 1  # 400 is not retried


async def test_imds_403_unreachable_is_unavailable(mode: str, make: Credentials) -> None:
    endpoint = Endpoint(
        httpx.Response(403, json={"error": "forbidden", "error_description": "network unreachable"})
    )
    credential = make(endpoint)
    with pytest.raises(CredentialUnavailableError, match="Error: forbidden: network unreachable"):
        await call(mode, credential.get_token, SCOPE)
    assert len(endpoint.requests) == 1


async def test_imds_other_403_is_an_authentication_error(mode: str, make: Credentials) -> None:
    endpoint = Endpoint(httpx.Response(403, json={"error": "forbidden", "error_description": "not allowed"}))
    credential = make(endpoint)
    with pytest.raises(ClientAuthenticationError) as caught:
        await call(mode, credential.get_token, SCOPE)
    assert not isinstance(caught.value, CredentialUnavailableError)
    assert "answered HTTP 403: forbidden: not allowed" in caught.value.message
    assert len(endpoint.requests) == 1


@pytest.mark.parametrize("status", [403, 404, 502])
async def test_imds_error_status_with_a_foreign_body_is_unavailable(
    mode: str, make: Credentials, status: int
) -> None:
    # Something other than IMDS (a proxy's HTML page) answers at its address: a chain moves on.
    page = httpx.Response(
        status, content=b"<html><body>Blocked by proxy</body></html>", headers={"content-type": "text/html"}
    )
    endpoint = Endpoint(*[page] * 6)
    credential = make(endpoint)
    make.no_sleep(credential)
    with pytest.raises(CredentialUnavailableError) as caught:
        await call(mode, credential.get_token, SCOPE)
    assert f'answered HTTP {status} with content type "text/html"' in caught.value.message
    assert "Blocked by proxy" not in caught.value.message


async def test_retry_keywords_apply_over_the_imds_policy(mode: str, make: Credentials) -> None:
    # azure-core's retry keywords change the fields they name; IMDS keeps its statuses (404, 410)
    # and its longer 410 backoff.
    endpoint = Endpoint(httpx.Response(404), httpx.Response(410))
    credential = make(endpoint, retry_backoff_factor=0.01, retry_total=4)
    sleeps = make.no_sleep(credential)
    token = await call(mode, credential.get_token, SCOPE)
    assert token.token == f"{ACCESS_TOKEN}-3"
    assert len(endpoint.requests) == 3
    assert len(sleeps) == 2
    assert sleeps[0] <= 0.012  # 404: the caller's backoff factor
    assert sleeps[1] >= 4.8  # 410, second retry: 3 s * 2 (+/- 20 %)


async def test_imds_500_after_five_retries(mode: str, make: Credentials) -> None:
    endpoint = Endpoint(
        *[httpx.Response(500, json={"error": "server_error", "error_description": "boom"})] * 6
    )
    credential = make(endpoint)
    sleeps = make.no_sleep(credential)
    with pytest.raises(ClientAuthenticationError) as caught:
        await call(mode, credential.get_token, SCOPE)
    assert not isinstance(caught.value, CredentialUnavailableError)
    assert caught.value.message == (
        f"ManagedIdentityCredential: authentication failed. The IMDS endpoint {imds.DEFAULT_HOST}{IMDS_PATH} "
        "answered HTTP 500: server_error: boom"
    )
    assert len(endpoint.requests) == 6
    assert len(sleeps) == 5
    for retry, seconds in enumerate(sleeps):
        assert 0.8 * 0.8 * 2**retry <= seconds <= 1.2 * 0.8 * 2**retry


async def test_imds_410_is_retried_for_seventy_seconds(mode: str, make: Credentials) -> None:
    endpoint = Endpoint(*[httpx.Response(410)] * 5)
    credential = make(endpoint)
    sleeps = make.no_sleep(credential)
    token = await call(mode, credential.get_token, SCOPE)
    assert token.token == f"{ACCESS_TOKEN}-6"
    assert len(endpoint.requests) == 6
    assert sum(sleeps) >= 70


async def test_imds_connection_refused_outside_a_chain(mode: str, make: Credentials) -> None:
    endpoint = Endpoint(*[refuse] * 6)
    credential = make(endpoint)
    sleeps = make.no_sleep(credential)
    with pytest.raises(CredentialUnavailableError) as caught:
        await call(mode, credential.get_token, SCOPE)
    assert caught.value.message.startswith(
        "ManagedIdentityCredential authentication unavailable, no response from the IMDS endpoint."
    )
    assert len(endpoint.requests) == 6
    assert len(sleeps) == 5


async def test_imds_html_is_unavailable(mode: str, make: Credentials) -> None:
    endpoint = Endpoint(
        httpx.Response(
            200,
            text="<html><body>Sign in to the hotel wifi</body></html>",
            headers={"content-type": "text/html"},
        )
    )
    credential = make(endpoint)
    with pytest.raises(CredentialUnavailableError, match='unexpected content type "text/html"'):
        await call(mode, credential.get_token, SCOPE)


@pytest.mark.parametrize("content", [b"{not json", b"[]", b'{"access_token": 5, "expires_in": 3600}', b""])
async def test_imds_json_garbage_is_an_authentication_error(
    mode: str, make: Credentials, content: bytes
) -> None:
    endpoint = Endpoint(httpx.Response(200, content=content, headers={"content-type": "application/json"}))
    credential = make(endpoint)
    with pytest.raises(ClientAuthenticationError) as caught:
        await call(mode, credential.get_token, SCOPE)
    assert not isinstance(caught.value, CredentialUnavailableError)
    assert caught.value.message.startswith(
        f"ManagedIdentityCredential: authentication failed. The IMDS endpoint {imds.DEFAULT_HOST}{IMDS_PATH} "
    )


async def test_a_caller_retry_policy_replaces_imds_policy(mode: str, make: Credentials) -> None:
    endpoint = Endpoint(*[httpx.Response(503)] * 3)
    credential = make(endpoint, retry_policy=RetryPolicy(max_retries=1, backoff_factor=0))
    with pytest.raises(ClientAuthenticationError, match="answered HTTP 503"):
        await call(mode, credential.get_token, SCOPE)
    assert len(endpoint.requests) == 2


# -- Service Fabric over real TLS with the certificate pin ----


def sf_token(seen: list[httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "access_token": ACCESS_TOKEN,
                "expires_on": str(int(time.time()) + 3600),
                "token_type": "Bearer",
            },
        )

    return answer


@pytest.fixture
def sf_server() -> Iterator[tuple[HttpsServer, list[httpx.Request]]]:
    seen: list[httpx.Request] = []
    with HttpsServer(sf_token(seen)) as server:
        yield server, seen


def server_thumbprint(server: HttpsServer) -> str:
    import hashlib
    import socket
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", server.port)) as raw, context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha1(der).hexdigest()


async def test_service_fabric_pinned_tls(
    mode: str,
    make: Credentials,
    monkeypatch: pytest.MonkeyPatch,
    sf_server: tuple[HttpsServer, list[httpx.Request]],
) -> None:
    server, seen = sf_server
    thumbprint = server_thumbprint(server)
    assert thumbprint.upper() == server.certificate_thumbprint
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{server.url}/metadata/identity/oauth2/token")
    monkeypatch.setenv("IDENTITY_HEADER", SECRET)
    monkeypatch.setenv("IDENTITY_SERVER_THUMBPRINT", ":".join(thumbprint[i : i + 2] for i in range(0, 40, 2)))
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    credential = make()  # no CA configured anywhere: only the pin vouches for the server
    token = await call(mode, credential.get_token, SCOPE)
    assert token.token == ACCESS_TOKEN
    (request,) = seen
    assert request.headers["secret"] == SECRET
    assert request.url.path == "/metadata/identity/oauth2/token"
    assert query(request) == {"api-version": "2019-07-01-preview", "resource": RESOURCE}


async def test_service_fabric_wrong_pin_sends_nothing(
    mode: str,
    make: Credentials,
    monkeypatch: pytest.MonkeyPatch,
    sf_server: tuple[HttpsServer, list[httpx.Request]],
) -> None:
    server, seen = sf_server
    actual = server.certificate_thumbprint
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{server.url}/metadata/identity/oauth2/token")
    monkeypatch.setenv("IDENTITY_HEADER", SECRET)
    monkeypatch.setenv("IDENTITY_SERVER_THUMBPRINT", "0" * 40)
    credential = make()
    sleeps = make.no_sleep(credential)
    with pytest.raises(ClientAuthenticationError) as caught:
        await call(mode, credential.get_token, SCOPE)
    assert not isinstance(caught.value, CredentialUnavailableError)
    assert (
        f"presented a certificate with thumbprint {actual}, not the one in IDENTITY_SERVER_THUMBPRINT; "
        "the request was not sent" in caught.value.message
    )
    assert seen == []
    assert server.stats.requests == 0  # no request (and its Secret header) ever left the client
    # A certificate that is not the pinned one cannot become the pinned one: no retry.
    assert sleeps == []
    assert_exception_has_no_canary(caught.value)


def test_async_service_fabric_serves_several_event_loops(
    monkeypatch: pytest.MonkeyPatch, sf_server: tuple[HttpsServer, list[httpx.Request]]
) -> None:
    # The pinned transport the credential makes must not carry one loop's connections to the next.
    server, seen = sf_server
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{server.url}/metadata/identity/oauth2/token")
    monkeypatch.setenv("IDENTITY_HEADER", SECRET)
    monkeypatch.setenv("IDENTITY_SERVER_THUMBPRINT", server.certificate_thumbprint)
    credential = identity.aio.ManagedIdentityCredential()

    async def get_token(scope: str, close: bool) -> Any:
        try:
            return await credential.get_token(scope)
        finally:
            if close:
                await credential.close()

    first_loop = asyncio.new_event_loop()
    try:
        assert first_loop.run_until_complete(get_token(SCOPE, close=False)).token == ACCESS_TOKEN
        # Another loop while the first one's connection is still open (another thread's loop, say).
        assert asyncio.run(get_token(OTHER_SCOPE, close=True)).token == ACCESS_TOKEN
        assert first_loop.run_until_complete(get_token(OTHER_SCOPE, close=True)).token == ACCESS_TOKEN
    finally:
        first_loop.close()
    assert len(seen) == 2
    assert server.stats.connections == 2


# -- secrets never leak ----


@pytest.mark.parametrize(
    "source",
    ["imds", "app_service", "service_fabric", "azure_ml", "cloud_shell", "azure_arc"],
)
async def test_secrets_stay_out_of_logs_errors_and_repr(
    mode: str,
    make: Credentials,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    key_directory: Path,
    source: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    environ = {
        "imds": {},
        "app_service": {"IDENTITY_ENDPOINT": APP_SERVICE, "IDENTITY_HEADER": SECRET},
        "service_fabric": {
            "IDENTITY_ENDPOINT": SF,
            "IDENTITY_HEADER": SECRET,
            "IDENTITY_SERVER_THUMBPRINT": THUMBPRINT,
        },
        "azure_ml": {"MSI_ENDPOINT": ML, "MSI_SECRET": SECRET},
        "cloud_shell": {"MSI_ENDPOINT": CLOUD_SHELL},
        "azure_arc": {"IDENTITY_ENDPOINT": ARC, "IMDS_ENDPOINT": "http://127.0.0.1:40342"},
    }[source]
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    key = write_key(key_directory)
    failing = httpx.Response(500, json={"error": "server_error"})
    script: list[Any] = (
        [arc_challenge(key), ok(), arc_challenge(key), failing, failing]
        if source == "azure_arc"
        else [ok(), failing, failing]
    )
    endpoint = Endpoint(*script)
    credential = make(endpoint, retry_policy=RetryPolicy(max_retries=1, backoff_factor=0))
    token = await call(mode, credential.get_token, SCOPE)
    assert token.token == ACCESS_TOKEN
    with pytest.raises(ClientAuthenticationError) as caught:
        await call(mode, credential.get_token, OTHER_SCOPE)
    assert_exception_has_no_canary(caught.value)
    assert ARC_KEY not in str(caught.value)
    assert_no_canary(repr(credential), repr(credential._setup))
    assert ARC_KEY not in repr(credential._setup)
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert_no_canary(text)
    assert ARC_KEY not in text
    # The secrets did go on the wire, where they belong.
    sent = json.dumps([dict(r.headers) for r in endpoint.requests])
    if source in ("app_service", "service_fabric", "azure_ml"):
        assert SECRET in sent
    if source == "azure_arc":
        assert ARC_KEY in sent


async def test_errors_quoting_the_server_never_quote_the_token(mode: str, make: Credentials) -> None:
    endpoint = Endpoint(httpx.Response(200, json={"access_token": ACCESS_TOKEN, "expires_on": "later"}))
    credential = make(endpoint)
    with pytest.raises(ClientAuthenticationError) as caught:
        await call(mode, credential.get_token, SCOPE)
    assert_exception_has_no_canary(caught.value)


def test_plain_http_endpoints_skip_the_system_ca_store(monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    from identity.managed_identity import client_options
    from protocol.managed_identity.selection import SourceSettings

    imds_options = client_options(SourceSettings("imds", ""), {})
    assert isinstance(imds_options["verify"], ssl.SSLContext)
    assert imds_options["verify"].get_ca_certs() == []  # trusts nothing: fails closed on https
    assert imds_options["verify"].verify_mode == ssl.CERT_REQUIRED
    assert imds_options["trust_env"] is False  # never through a proxy
    assert "verify" not in client_options(SourceSettings("app_service", "https://example.test/msi"), {})
    assert "verify" not in client_options(
        SourceSettings("service_fabric", "https://127.0.0.1:1/", "s", "AB"), {}
    )
    assert (
        client_options(SourceSettings("imds", ""), {"verify": False})["verify"] is False
    )  # the caller's wins
