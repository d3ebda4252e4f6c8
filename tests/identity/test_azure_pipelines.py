"""AzurePipelinesCredential (sync and ``identity.aio``) against the mock authority in process.

The app registration trusts an Azure DevOps issuer (an ``ExternalIssuer`` federated to the default
app); a small fake of the Azure DevOps OIDC endpoint, written here, mints its tokens. One
``httpx.MockTransport`` sends ``dev.azure.com`` requests to that fake and everything else to the
authority. The system access token and every minted OIDC token are canaries: they must appear in
no log record, exception message or ``repr``.
"""

from __future__ import annotations

import json
import logging
import pickle
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import identity
import identity.aio
from conformance.authority import DEFAULT_CLIENT_ID, DEFAULT_TENANT, ExternalIssuer, MockAuthority
from identity import ClientAuthenticationError, CredentialUnavailableError
from identity.aio.azure_pipelines import AzurePipelinesCredential as AsyncAzurePipelinesCredential
from identity.azure_pipelines import AzurePipelinesCredential
from protocol.errors import MalformedResponseError, ServiceError
from protocol.retry import RetryPolicy

from .fakes import error_chain

SCOPE = "https://vault.azure.net/.default"
OTHER_SCOPE = "https://storage.azure.com/.default"
SYSTEM_TOKEN = "CANARY-SYSTEM-ACCESS-TOKEN-51af9e"
CONNECTION_ID = "5c0a2b1e-7d3f-4e6a-9b8c-1d2e3f4a5b6c"
SUBJECT = "sc://contoso/payments/prod-connection"
OIDC_HOST = "dev.azure.com"
OIDC_URI = (
    f"https://{OIDC_HOST}/contoso/8f1d2c3b-0000-4000-8000-000000000001/_apis/distributedtask/hubs/build"
    "/plans/9a8b7c6d-0000-4000-8000-000000000002/jobs/1e2d3c4b-0000-4000-8000-000000000003/oidctoken"
)
TOKEN_URL = f"https://login.microsoftonline.com/{DEFAULT_TENANT}/oauth2/v2.0/token"
TROUBLESHOOT = "https://aka.ms/azsdk/python/identity/azurepipelinescredential/troubleshoot"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FAST = RetryPolicy(backoff_factor=0)
CLASSES = {"sync": AzurePipelinesCredential, "async": AsyncAzurePipelinesCredential}


class FakeDevOps:
    """The Azure DevOps OIDC token endpoint: queued replies first, then a fresh OIDC token."""

    def __init__(self, issuer: ExternalIssuer) -> None:
        self.issuer = issuer
        self.requests: list[httpx.Request] = []
        self.minted: list[str] = []
        self.replies: deque[httpx.Response] = deque()

    def reply(self, *responses: httpx.Response) -> None:
        self.replies.extend(responses)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.replies:
            return self.replies.popleft()
        token = self.issuer.mint(SUBJECT)
        self.minted.append(token)
        return httpx.Response(200, json={"oidcToken": token, "extra": "ignored"})


@pytest.fixture
def issuer() -> ExternalIssuer:
    return ExternalIssuer("https://vstoken.dev.azure.com/0f1e2d3c-0000-4000-8000-00000000a11c")


@pytest.fixture
def authority(issuer: ExternalIssuer) -> MockAuthority:
    mock = MockAuthority.with_defaults()
    mock.add_federated_credential(DEFAULT_TENANT, DEFAULT_CLIENT_ID, issuer, SUBJECT)
    return mock


@pytest.fixture
def devops(issuer: ExternalIssuer) -> FakeDevOps:
    return FakeDevOps(issuer)


@pytest.fixture(autouse=True)
def _pipeline_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSTEM_OIDCREQUESTURI", OIDC_URI + "/")


@pytest.fixture(autouse=True)
def _no_secret_in_logs(caplog: pytest.LogCaptureFixture, devops: FakeDevOps) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for phase in ("setup", "call"):
        for record in caplog.get_records(phase):  # type: ignore[arg-type]
            assert_no_secret(devops, formatter.format(record))


def assert_no_secret(devops: FakeDevOps, *texts: str) -> None:
    secrets = (SYSTEM_TOKEN, *devops.minted)
    leaks = [text for text in texts for secret in secrets if secret in text]
    assert leaks == [], f"secrets leaked into {leaks}"


def assert_error_has_no_secret(devops: FakeDevOps, exc: BaseException) -> None:
    for link in error_chain(exc):
        assert_no_secret(devops, str(link), repr(link), *(str(arg) for arg in link.args))


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def transport(authority: MockAuthority, devops: FakeDevOps) -> httpx.MockTransport:
    def route(request: httpx.Request) -> httpx.Response:
        if request.url.host == OIDC_HOST:
            return devops.handle(request)
        return authority.handle(request)

    return httpx.MockTransport(route)


def credential(mode: str, authority: MockAuthority, devops: FakeDevOps, **kwargs: Any) -> Any:
    arguments: dict[str, Any] = {
        "tenant_id": DEFAULT_TENANT,
        "client_id": DEFAULT_CLIENT_ID,
        "service_connection_id": CONNECTION_ID,
        "system_access_token": SYSTEM_TOKEN,
        "transport": transport(authority, devops),
        "retry_policy": FAST,
    }
    arguments.update(kwargs)
    return CLASSES[mode](**arguments)


async def call(mode: str, method: Any, *args: Any, **kwargs: Any) -> Any:
    result = method(*args, **kwargs)
    return await result if mode == "async" else result


def check_oidc_request(request: httpx.Request) -> None:
    actual = {
        "method": request.method,
        "url": str(request.url.copy_with(query=None)),
        "query": list(request.url.params.multi_items()),
        "content-type": request.headers.get("content-type"),
        "authorization": request.headers.get("authorization"),
        "x-tfs-fedauthredirect": request.headers.get("x-tfs-fedauthredirect"),
        "user-agent is ours": request.headers.get("user-agent", "").startswith("entra-identity/"),
        "body": json.loads(request.read()),
    }
    assert actual == {
        "method": "POST",
        "url": OIDC_URI,
        "query": [("api-version", "7.1"), ("serviceConnectionId", CONNECTION_ID)],
        "content-type": "application/json",
        "authorization": f"Bearer {SYSTEM_TOKEN}",
        "x-tfs-fedauthredirect": "Suppress",
        "user-agent is ours": True,
        "body": {},
    }


def assertion_form(assertion: str, scope: str = SCOPE) -> dict[str, str]:
    return {
        "client_id": DEFAULT_CLIENT_ID,
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }


# --- the exchange ---------------------------------------------------------------------------------


async def test_an_oidc_token_is_exchanged_for_an_access_token(
    mode: str, authority: MockAuthority, devops: FakeDevOps
) -> None:
    cred = credential(mode, authority, devops)

    token = await call(mode, cred.get_token, SCOPE)

    issued = authority.describe_token(token.token)
    assert issued is not None
    assert (issued.client_id, issued.tenant, issued.scopes, issued.user) == (
        DEFAULT_CLIENT_ID,
        DEFAULT_TENANT,
        (SCOPE,),
        None,
    )
    [oidc] = devops.requests
    check_oidc_request(oidc)
    [token_request] = authority.requests
    assert (token_request.method, token_request.url) == ("POST", TOKEN_URL)
    assert token_request.form == assertion_form(devops.minted[0])
    assert authority.unmatched == []
    await call(mode, cred.close)


async def test_an_oidc_token_is_requested_for_each_new_access_token_only(
    mode: str, authority: MockAuthority, devops: FakeDevOps
) -> None:
    cred = credential(mode, authority, devops)

    first = await call(mode, cred.get_token, SCOPE)
    cached = await call(mode, cred.get_token, SCOPE)
    info = await call(mode, cred.get_token_info, SCOPE)
    other = await call(mode, cred.get_token, OTHER_SCOPE)

    assert cached == first
    assert info.token == first.token
    assert other.token != first.token
    assert len(devops.requests) == 2
    assert len(set(devops.minted)) == 2
    assert [r.form for r in authority.requests_to("token")] == [
        assertion_form(devops.minted[0]),
        assertion_form(devops.minted[1], OTHER_SCOPE),
    ]
    await call(mode, cred.close)


async def test_a_503_from_the_oidc_endpoint_is_retried(
    mode: str, authority: MockAuthority, devops: FakeDevOps
) -> None:
    devops.reply(httpx.Response(503, json={"message": "busy"}, headers={"retry-after": "0"}))
    cred = credential(mode, authority, devops)

    token = await call(mode, cred.get_token, SCOPE)

    assert authority.describe_token(token.token) is not None
    assert len(devops.requests) == 2
    for request in devops.requests:
        check_oidc_request(request)
    assert len(authority.requests_to("token")) == 1


async def test_a_context_manager_closes_and_serves(
    mode: str, authority: MockAuthority, devops: FakeDevOps
) -> None:
    cred = credential(mode, authority, devops)
    if mode == "sync":
        with cred as entered:
            token = entered.get_token(SCOPE)
    else:
        async with cred as entered:
            token = await entered.get_token(SCOPE)
    assert authority.describe_token(token.token) is not None


# --- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, ""])
async def test_missing_oidc_request_uri_is_unavailable(
    mode: str,
    authority: MockAuthority,
    devops: FakeDevOps,
    monkeypatch: pytest.MonkeyPatch,
    value: str | None,
) -> None:
    if value is None:
        monkeypatch.delenv("SYSTEM_OIDCREQUESTURI")
    else:
        monkeypatch.setenv("SYSTEM_OIDCREQUESTURI", value)
    cred = credential(mode, authority, devops)

    with pytest.raises(CredentialUnavailableError) as caught:
        await call(mode, cred.get_token, SCOPE)

    message = caught.value.message
    assert message.startswith(
        "Missing value for the SYSTEM_OIDCREQUESTURI environment variable. AzurePipelinesCredential is "
        "intended for use in Azure Pipelines where the SYSTEM_OIDCREQUESTURI environment variable is set."
    )
    assert "$(System.OidcRequestUri)" in message
    assert message.endswith(f"troubleshooting guide at {TROUBLESHOOT}.")
    assert (devops.requests, authority.requests) == ([], [])


async def test_an_unusable_oidc_request_uri_is_unavailable(
    mode: str, authority: MockAuthority, devops: FakeDevOps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYSTEM_OIDCREQUESTURI", "dev.azure.com/contoso/oidctoken")
    cred = credential(mode, authority, devops)

    with pytest.raises(
        CredentialUnavailableError, match="SYSTEM_OIDCREQUESTURI environment variable does not"
    ):
        await call(mode, cred.get_token, SCOPE)

    assert (devops.requests, authority.requests) == ([], [])


async def test_an_unavailable_credential_lets_a_chain_move_on(
    mode: str, authority: MockAuthority, devops: FakeDevOps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SYSTEM_OIDCREQUESTURI")
    module: Any = identity if mode == "sync" else identity.aio
    fallback = module.ClientSecretCredential(
        DEFAULT_TENANT, DEFAULT_CLIENT_ID, "mock-secret-CANARY-0d9f", transport=authority.transport()
    )
    chain = module.ChainedTokenCredential(credential(mode, authority, devops), fallback)

    token = await call(mode, chain.get_token, SCOPE)

    assert authority.describe_token(token.token) is not None
    assert devops.requests == []


NAMES = ("tenant_id", "client_id", "service_connection_id", "system_access_token")


@pytest.mark.parametrize(
    "empty",
    [("tenant_id",), ("system_access_token",), ("client_id", "service_connection_id"), NAMES],
    ids=["tenant", "token", "two", "all"],
)
@pytest.mark.parametrize("cls", list(CLASSES.values()), ids=list(CLASSES))
def test_empty_required_arguments_are_named(cls: type, empty: tuple[str, ...]) -> None:
    arguments = {
        "tenant_id": DEFAULT_TENANT,
        "client_id": DEFAULT_CLIENT_ID,
        "service_connection_id": CONNECTION_ID,
        "system_access_token": SYSTEM_TOKEN,
    }
    arguments.update(dict.fromkeys(empty, ""))

    with pytest.raises(ValueError) as caught:
        cls(**arguments)

    missing = ", ".join(repr(name) for name in NAMES if name in empty)
    assert str(caught.value) == (
        f"AzurePipelinesCredential: 'tenant_id', 'client_id', 'service_connection_id', and "
        f"'system_access_token' must be passed in as keyword arguments (missing or empty: {missing}). "
        f"Please refer to the troubleshooting guide at {TROUBLESHOOT}."
    )
    assert SYSTEM_TOKEN not in str(caught.value)


@pytest.mark.parametrize("cls", list(CLASSES.values()), ids=list(CLASSES))
def test_arguments_are_keyword_only_and_checked(cls: type) -> None:
    with pytest.raises(TypeError):
        cls(DEFAULT_TENANT, DEFAULT_CLIENT_ID, CONNECTION_ID, SYSTEM_TOKEN)
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        cls(
            tenant_id=DEFAULT_TENANT,
            client_id=DEFAULT_CLIENT_ID,
            service_connection_id=CONNECTION_ID,
            system_access_token=SYSTEM_TOKEN,
            additionaly_allowed_tenants=["*"],
        )
    with pytest.raises(ValueError, match="tenant"):
        cls(
            tenant_id="not/a tenant",
            client_id=DEFAULT_CLIENT_ID,
            service_connection_id=CONNECTION_ID,
            system_access_token=SYSTEM_TOKEN,
        )


@pytest.mark.parametrize("cls", list(CLASSES.values()), ids=list(CLASSES))
def test_repr_and_pickle_keep_the_system_access_token_out_of_sight(cls: type, devops: FakeDevOps) -> None:
    cred = cls(
        tenant_id=DEFAULT_TENANT,
        client_id=DEFAULT_CLIENT_ID,
        service_connection_id=CONNECTION_ID,
        system_access_token=SYSTEM_TOKEN,
    )
    assert repr(cred) == (
        f"AzurePipelinesCredential(tenant_id={DEFAULT_TENANT!r}, client_id={DEFAULT_CLIENT_ID!r}, "
        "authority='https://login.microsoftonline.com')"
    )
    assert_no_secret(devops, repr(cred), str(cred))
    restored = pickle.loads(pickle.dumps(cred))
    assert type(restored) is cls
    assert repr(restored) == repr(cred)


# --- failures -------------------------------------------------------------------------------------


def _devops_error(status: int, message: str) -> Callable[[], httpx.Response]:
    body = {"$id": "1", "innerException": None, "message": message, "typeKey": "UnauthorizedRequestException"}
    return lambda: httpx.Response(status, json=body)


def _reply(status: int, **kwargs: Any) -> Callable[[], httpx.Response]:
    """A response factory: a response object can be sent only once."""
    return lambda: httpx.Response(status, **kwargs)


PREFIX = "AzurePipelinesCredential: authentication failed. "


@pytest.mark.parametrize(
    ("reply", "expected", "advice"),
    [
        (
            _devops_error(401, f"TF400813: The user is not authorized ({SYSTEM_TOKEN})."),
            'Unexpected response from OIDC token endpoint. HTTP 401 from {uri}: "TF400813: The user is '
            'not authorized (***)."',
            "The system access token is invalid or expired",
        ),
        (
            _reply(302, headers={"location": "https://app.vssps.visualstudio.com/_signin"}),
            "Unexpected response from OIDC token endpoint. HTTP 302 from {uri}: an empty body.",
            "map the job's System.AccessToken",
        ),
        (
            _reply(
                200,
                content=b"<html><body>Azure DevOps Services | Sign In</body></html>",
                headers={"content-type": "text/html"},
            ),
            "The authority's response to {uri} is not JSON",
            "an HTML page",
        ),
        (
            _devops_error(404, "Service connection not found."),
            "Unexpected response from OIDC token endpoint. HTTP 404 from {uri}: "
            '"Service connection not found."',
            "Check service_connection_id",
        ),
        (
            _reply(200, json={"value": "no token here"}),
            "OIDC token not found in response.",
            "without an 'oidcToken' string",
        ),
        (
            _reply(200, json={"oidcToken": {"nested": True}}),
            "OIDC token not found in response.",
            TROUBLESHOOT,
        ),
        (
            _reply(200, content=b'{"oidcToken": "CANARY-SYSTEM-ACCESS-TOKEN-51af9e"'),
            "The authority's response to {uri} is not JSON",
            "HTTP 200",
        ),
    ],
    ids=["401", "302", "html-200", "404", "no-token", "token-not-string", "truncated-json"],
)
async def test_oidc_failures_are_authentication_errors(
    mode: str,
    authority: MockAuthority,
    devops: FakeDevOps,
    reply: Callable[[], httpx.Response],
    expected: str,
    advice: str,
) -> None:
    devops.reply(reply())
    cred = credential(mode, authority, devops)

    with pytest.raises(ClientAuthenticationError) as caught:
        await call(mode, cred.get_token, SCOPE)

    error = caught.value
    assert not isinstance(error, CredentialUnavailableError)
    assert error.message.startswith(PREFIX + expected.format(uri=OIDC_URI))
    assert advice in error.message
    # Whatever the body, the public error's cause is one of ours (a JSONDecodeError only behind it).
    assert isinstance(error.__cause__, (ServiceError, MalformedResponseError))
    assert_error_has_no_secret(devops, error)
    assert authority.requests == []  # no token request without an OIDC token
    assert len(devops.requests) == 1


async def test_exhausted_oidc_retries_report_the_status(
    mode: str, authority: MockAuthority, devops: FakeDevOps
) -> None:
    devops.reply(*(httpx.Response(503, json={"message": "busy"}) for _ in range(FAST.max_retries + 1)))
    cred = credential(mode, authority, devops)

    with pytest.raises(ClientAuthenticationError) as caught:
        await call(mode, cred.get_token, SCOPE)

    assert caught.value.message.startswith(
        PREFIX + f'Unexpected response from OIDC token endpoint. HTTP 503 from {OIDC_URI}: "busy".'
    )
    assert "temporarily unavailable" in caught.value.message
    assert len(devops.requests) == FAST.max_retries + 1
    assert authority.requests == []


async def test_entra_refusing_the_oidc_token_is_an_authentication_error(
    mode: str, authority: MockAuthority, devops: FakeDevOps, issuer: ExternalIssuer
) -> None:
    devops.reply(httpx.Response(200, json={"oidcToken": issuer.mint("sc://contoso/payments/other")}))
    cred = credential(mode, authority, devops)

    with pytest.raises(ClientAuthenticationError, match="AADSTS700213") as caught:
        await call(mode, cred.get_token, SCOPE)

    assert_error_has_no_secret(devops, caught.value)
    assert len(authority.requests_to("token")) == 1


async def test_the_oidc_token_is_not_in_an_entra_error(
    mode: str, authority: MockAuthority, devops: FakeDevOps, issuer: ExternalIssuer
) -> None:
    other = ExternalIssuer(issuer.issuer)  # same issuer name, another key: a bad signature
    token = other.mint(SUBJECT)
    devops.minted.append(token)  # a canary too
    devops.reply(httpx.Response(200, json={"oidcToken": token}))
    cred = credential(mode, authority, devops)

    with pytest.raises(ClientAuthenticationError, match="AADSTS700027") as caught:
        await call(mode, cred.get_token, SCOPE)

    assert_error_has_no_secret(devops, caught.value)
