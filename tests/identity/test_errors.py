"""Failures: what the authority's errors become, how often a request is retried, and the error types.

Every scenario runs sync and async, and checks that neither the canary secret nor the canary
token appears in the exception chain (the autouse fixture checks every log record).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

import identity
from identity import AuthenticationRequiredError, ClientAuthenticationError, CredentialUnavailableError
from protocol.errors import (
    MalformedResponseError,
    OAuthError,
    ProtocolError,
    ServiceError,
    ThrottledError,
    TransportError,
)

from .fakes import (
    ACCESS_TOKEN,
    CORRELATION_ID,
    GRAPH,
    NOW,
    SECRET,
    TRACE_ID,
    VAULT,
    Api,
    FakeEntra,
    Reply,
    assert_exception_has_no_canary,
    assert_no_canary,
    connect_error,
    cred_form,
    error_response,
    html_502,
    invalid_client,
    token_body,
    token_response,
    token_url,
    unavailable_503,
)


@dataclass(frozen=True)
class Failure:
    replies: Callable[[], list[Reply]]
    requests: int
    cause: type[ProtocolError]
    contains: tuple[str, ...]


def throttled(retry_after: str) -> httpx.Response:
    return error_response(
        429, "temporarily_unavailable", 50196, "The server is busy.", headers={"Retry-After": retry_after}
    )


def echo_page(request: httpx.Request) -> httpx.Response:
    """A misbehaving proxy that reflects the request body (with the secret) in its error page."""
    page = f"<html><body>Bad request: {request.content.decode()}</body></html>"
    return httpx.Response(400, text=page, headers={"content-type": "text/html"})


FAILURES = {
    "invalid_client": Failure(
        lambda: [invalid_client()],
        requests=1,
        cause=OAuthError,
        contains=(
            "ClientSecretCredential",
            "invalid_client",
            "AADSTS7000215",
            CORRELATION_ID,
            "use the secret's value (not its ID)",
        ),
    ),
    "html_502_x4": Failure(
        lambda: [html_502() for _ in range(4)],
        requests=4,
        cause=ServiceError,
        contains=("ClientSecretCredential", "HTTP 502", token_url(), "HTML"),
    ),
    "503_x4": Failure(
        lambda: [unavailable_503() for _ in range(4)],
        requests=4,
        cause=OAuthError,
        contains=("ClientSecretCredential", "temporarily_unavailable", "AADSTS90006", CORRELATION_ID),
    ),
    "429_x4": Failure(
        lambda: [throttled("0") for _ in range(4)],
        requests=4,
        cause=ThrottledError,
        contains=("ClientSecretCredential", "throttling", "AADSTS50196"),
    ),
    "429_retry_after_too_long": Failure(
        lambda: [throttled("3600")],
        requests=1,
        cause=ThrottledError,
        contains=("ClientSecretCredential", "try again after 3600 seconds"),
    ),
    "400_html_echoing_the_request": Failure(
        lambda: [echo_page],
        requests=1,
        cause=ServiceError,
        contains=("ClientSecretCredential", "HTTP 400", "HTML"),
    ),
    "200_not_json": Failure(
        lambda: [httpx.Response(200, text="not json", headers={"content-type": "text/plain"})],
        requests=1,
        cause=MalformedResponseError,
        contains=("ClientSecretCredential", "not JSON", "HTTP 200", token_url()),
    ),
    "200_empty_object": Failure(
        lambda: [httpx.Response(200, json={})],
        requests=1,
        cause=MalformedResponseError,
        contains=("ClientSecretCredential", "access_token"),
    ),
    "200_token_with_bad_expiry": Failure(
        lambda: [httpx.Response(200, json=token_body(expires_in="soon"))],
        requests=1,
        cause=MalformedResponseError,
        contains=("ClientSecretCredential", "expires_in"),
    ),
    "connect_error_x4": Failure(
        lambda: [connect_error for _ in range(4)],
        requests=4,
        cause=TransportError,
        contains=("ClientSecretCredential", "could not connect", "ConnectError", token_url()),
    ),
}


@pytest.mark.parametrize("scenario", list(FAILURES), ids=list(FAILURES))
async def test_failure_becomes_client_authentication_error(
    api: Api, entra: FakeEntra, caplog: pytest.LogCaptureFixture, scenario: str
) -> None:
    failure = FAILURES[scenario]
    entra.reply(*failure.replies())
    credential = api.credential()

    with pytest.raises(ClientAuthenticationError) as caught:
        await api.get_token(credential, "https://vault.azure.net/.default")

    error = caught.value
    assert type(error) is ClientAuthenticationError
    for part in failure.contains:
        assert part in error.message, f"{part!r} not in {error.message!r}"
    assert str(error) == error.message
    assert isinstance(error.__cause__, failure.cause)
    assert len(entra.requests) == failure.requests
    assert entra.forms == [cred_form()] * failure.requests
    assert len({r.headers["client-request-id"] for r in entra.requests}) == failure.requests
    assert_exception_has_no_canary(error)
    assert_exception_has_no_canary(error.__cause__)
    warnings = [r for r in caplog.records if r.name == "identity" and r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [error.message]


async def test_invalid_client_message_in_full(api: Api, entra: FakeEntra) -> None:
    entra.reply(invalid_client())

    with pytest.raises(ClientAuthenticationError) as caught:
        await api.get_token(api.credential(), "https://vault.azure.net/.default")

    assert caught.value.message == (
        "ClientSecretCredential: authentication failed. Microsoft Entra ID returned invalid_client "
        "(AADSTS7000215): Invalid client secret provided. Ensure the secret being sent in "
        "the request is the client secret value, not the client secret ID, for a secret added to app "
        "'0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f'. The client secret is not valid: use the secret's value "
        f"(not its ID) from the app registration. Correlation ID: {CORRELATION_ID}. Trace ID: {TRACE_ID}."
    )
    cause = caught.value.__cause__
    assert isinstance(cause, OAuthError)
    assert (cause.error, cause.error_codes, cause.correlation_id, cause.status_code) == (
        "invalid_client",
        (7000215,),
        CORRELATION_ID,
        401,
    )


async def test_transport_error_cause_chain(api: Api, entra: FakeEntra) -> None:
    entra.reply(*[connect_error] * 4)

    with pytest.raises(ClientAuthenticationError) as caught:
        await api.get_token(api.credential(), "https://vault.azure.net/.default")

    cause = caught.value.__cause__
    assert isinstance(cause, TransportError)
    assert cause.url == token_url()
    assert isinstance(cause.__cause__, httpx.ConnectError)


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(unavailable_503, id="503"),
        pytest.param(html_502, id="502-html"),
        pytest.param(lambda: throttled("0"), id="429-retry-after-0"),
        pytest.param(lambda: connect_error, id="connect-error"),
    ],
)
async def test_transient_failure_is_retried(api: Api, entra: FakeEntra, first: Callable[[], Reply]) -> None:
    entra.reply(first(), token_response("CANARY-AT-9b2c-retried"))

    token = await api.get_token(api.credential(), "https://vault.azure.net/.default")

    assert token.token == "CANARY-AT-9b2c-retried"
    assert token.expires_on == int(NOW) + 3599
    assert len(entra.requests) == 2
    assert entra.forms == [cred_form(), cred_form()]
    # each attempt is rebuilt: a fresh client-request-id
    assert entra.requests[0].headers["client-request-id"] != entra.requests[1].headers["client-request-id"]


async def test_failure_is_not_cached(api: Api, entra: FakeEntra) -> None:
    entra.reply(invalid_client())
    credential = api.credential()

    with pytest.raises(ClientAuthenticationError):
        await api.get_token(credential, "https://vault.azure.net/.default")
    token = await api.get_token(credential, "https://vault.azure.net/.default")

    assert token.token == "CANARY-AT-9b2c-2"
    assert len(entra.requests) == 2


async def test_canaries_never_reach_logs_repr_or_errors(
    api: Api, entra: FakeEntra, caplog: pytest.LogCaptureFixture
) -> None:
    entra.reply(
        token_response(expires_in=3600, refresh_in=1),
        *[unavailable_503() for _ in range(4)],
        echo_page,
        invalid_client(),
    )
    credential = api.credential()

    assert (await api.get_token(credential, VAULT)).token == ACCESS_TOKEN
    assert (await api.get_token(credential, VAULT)).token == ACCESS_TOKEN  # cache hit
    api.clock.advance(1)
    assert (await api.get_token(credential, VAULT)).token == ACCESS_TOKEN  # failed refresh, kept
    errors = []
    for _ in range(2):
        with pytest.raises(ClientAuthenticationError) as caught:
            await api.get_token(credential, GRAPH)
        errors.append(caught.value)

    assert_no_canary(repr(credential), str(credential))
    for error in errors:
        assert_exception_has_no_canary(error)
    logged = [r for r in caplog.records if r.name.startswith(("identity", "protocol"))]
    assert {r.levelno for r in logged} >= {logging.INFO, logging.WARNING}
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in caplog.records:
        assert_no_canary(formatter.format(record))


def test_canary_check_detects_a_leak() -> None:
    with pytest.raises(AssertionError):
        assert_no_canary(f"body: client_secret={SECRET}")
    wrapper = RuntimeError("wrapper")
    wrapper.__cause__ = ValueError(ACCESS_TOKEN)
    with pytest.raises(AssertionError):
        assert_exception_has_no_canary(wrapper)


# --- the exception types --------------------------------------------------------------------------


def test_client_authentication_error_is_azure_cores() -> None:
    from azure.core.exceptions import ClientAuthenticationError as AzureClientAuthenticationError

    assert ClientAuthenticationError is AzureClientAuthenticationError
    assert identity.ClientAuthenticationError is AzureClientAuthenticationError
    assert issubclass(CredentialUnavailableError, AzureClientAuthenticationError)
    assert issubclass(AuthenticationRequiredError, CredentialUnavailableError)


def test_credential_unavailable_error_carries_message() -> None:
    error = CredentialUnavailableError(message="no managed identity endpoint")

    assert (error.message, str(error), error.response) == (
        "no managed identity endpoint",
        "no managed identity endpoint",
        None,
    )


def test_authentication_required_error_defaults() -> None:
    error = AuthenticationRequiredError(["https://graph.microsoft.com/.default"], claims='{"a": 1}')

    assert list(error.scopes) == ["https://graph.microsoft.com/.default"]
    assert error.claims == '{"a": 1}'
    default = "Interactive authentication is required to get a token. Call 'authenticate' to begin."
    assert (error.message, str(error)) == (default, default)


def test_authentication_required_error_custom_message_and_no_claims() -> None:
    error = AuthenticationRequiredError(("s1", "s2"), message="sign in again")

    assert (list(error.scopes), error.claims, str(error)) == (["s1", "s2"], None, "sign in again")
    with pytest.raises(AttributeError):
        error.scopes = ()  # type: ignore[misc]
