"""protocol.azure_pipelines: the OIDC token request, its parser, and the two-step flow.

The system access token and the OIDC token are canaries: they must not appear in any message or
``repr``, even when Azure DevOps reflects them in an error body.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.authority import Authority
from protocol.azure_pipelines import (
    OIDC_API_VERSION,
    TROUBLESHOOTING_GUIDE,
    ServiceConnection,
    azure_pipelines_flow,
    build_oidc_request,
    oidc_request_url,
    oidc_token_flow,
    parse_oidc_response,
)
from protocol.client_auth import CLIENT_ASSERTION_TYPE
from protocol.errors import MalformedResponseError, ProtocolError, ServiceError, TransportError
from protocol.responses import TokenResult
from protocol.retry import RetryPolicy

from .conftest import Wire
from .helpers import (
    AT_CANARY,
    CLIENT_ID,
    NOW,
    PUBLIC_TOKEN_URL,
    SCOPE,
    TENANT,
    Reply,
    check_form_post,
    ok,
    token_body,
)

SYSTEM_TOKEN = "CANARY-SYSTEM-ACCESS-TOKEN-7c1d0e"
OIDC_TOKEN = "CANARY-OIDC-TOKEN-e4b2a9"
CANARIES = (SYSTEM_TOKEN, OIDC_TOKEN)
CONNECTION_ID = "5c0a2b1e-7d3f-4e6a-9b8c-1d2e3f4a5b6c"
OIDC_URI = (
    "https://dev.azure.com/contoso/8f1d2c3b-0000-4000-8000-000000000001/_apis/distributedtask/hubs/build"
    "/plans/9a8b7c6d-0000-4000-8000-000000000002/jobs/1e2d3c4b-0000-4000-8000-000000000003/oidctoken"
)
CONNECTION = ServiceConnection(CONNECTION_ID, SYSTEM_TOKEN)
FAST = RetryPolicy(backoff_factor=0)
AUTHORITY = Authority.create("https://login.microsoftonline.com", TENANT)


def assert_no_secret(*texts: str) -> None:
    leaks = [(canary, text) for text in texts for canary in CANARIES if canary in text]
    assert leaks == [], f"secrets leaked: {leaks}"


def response(
    status: int = 200, *, json_body: Any = None, content: bytes | None = None, **kw: Any
) -> httpx.Response:
    request = build_oidc_request(OIDC_URI, CONNECTION)
    if content is not None:
        return httpx.Response(status, content=content, request=request, **kw)
    if json_body is not None:
        return httpx.Response(status, json=json_body, request=request, **kw)
    return httpx.Response(status, request=request, **kw)


def check_oidc_request(
    request: httpx.Request, *, url: str = OIDC_URI, query: dict[str, str] | None = None
) -> None:
    """One assertion over everything about an OIDC token request."""
    actual = {
        "method": request.method,
        "url": str(request.url.copy_with(query=None)),
        "query": list(request.url.params.multi_items()),
        "content-type": request.headers.get("content-type"),
        "authorization": request.headers.get("authorization"),
        "x-tfs-fedauthredirect": request.headers.get("x-tfs-fedauthredirect"),
        "accept": request.headers.get("accept"),
        "user-agent is ours": request.headers.get("user-agent", "").startswith("entra-identity/"),
        "body": json.loads(request.read()),
    }
    expected = {
        "method": "POST",
        "url": url,
        "query": [
            *(query or {}).items(),
            ("api-version", OIDC_API_VERSION),
            ("serviceConnectionId", CONNECTION_ID),
        ],
        "content-type": "application/json",
        "authorization": f"Bearer {SYSTEM_TOKEN}",
        "x-tfs-fedauthredirect": "Suppress",
        "accept": "application/json",
        "user-agent is ours": True,
        "body": {},
    }
    assert actual == expected


# --------------------------------------------------------------------------- the request


def test_oidc_request_shape() -> None:
    check_oidc_request(build_oidc_request(OIDC_URI, CONNECTION))
    assert OIDC_API_VERSION == "7.1"


@pytest.mark.parametrize(
    ("uri", "url", "query"),
    [
        (OIDC_URI + "/", OIDC_URI, {}),
        (OIDC_URI + "///", OIDC_URI, {}),
        (OIDC_URI + "?hubName=build", OIDC_URI, {"hubName": "build"}),
        (OIDC_URI + "/?a=1&b=2", OIDC_URI, {"a": "1", "b": "2"}),
        (f"  {OIDC_URI}\n", OIDC_URI, {}),
    ],
    ids=["trailing-slash", "slashes", "query", "slash-and-query", "whitespace"],
)
def test_trailing_slash_is_dropped_and_a_query_kept(uri: str, url: str, query: dict[str, str]) -> None:
    check_oidc_request(build_oidc_request(uri, CONNECTION), url=url, query=query)


def test_our_parameters_win_over_a_query_that_has_them() -> None:
    url = oidc_request_url(OIDC_URI + "?api-version=5.0&serviceConnectionId=other", CONNECTION_ID)
    assert list(url.params.multi_items()) == [("api-version", "7.1"), ("serviceConnectionId", CONNECTION_ID)]


@pytest.mark.parametrize("uri", ["not a url", "ftp://dev.azure.com/x", "/relative/oidctoken", "https://", ""])
def test_an_unusable_uri_is_a_value_error(uri: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        oidc_request_url(uri, CONNECTION_ID)


def test_reprs_hide_the_system_access_token() -> None:
    assert repr(CONNECTION) == f"ServiceConnection(service_connection_id={CONNECTION_ID!r})"
    request = build_oidc_request(OIDC_URI, CONNECTION)
    assert_no_secret(repr(request), str(request.url))


# --------------------------------------------------------------------------- the parser


def test_a_token_is_returned() -> None:
    assert parse_oidc_response(response(json_body={"oidcToken": OIDC_TOKEN})) == OIDC_TOKEN
    assert parse_oidc_response(response(json_body={"oidcToken": f" {OIDC_TOKEN}\n", "x": 1})) == OIDC_TOKEN


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"oidcToken": None},
        {"oidcToken": 42},
        {"oidcToken": ""},
        {"oidcToken": "  "},
        {"token": OIDC_TOKEN},
    ],
    ids=["empty", "null", "number", "blank", "spaces", "other-key"],
)
def test_no_oidc_token_string_is_not_found(body: dict[str, Any]) -> None:
    with pytest.raises(MalformedResponseError, match=r"^OIDC token not found in response\.") as caught:
        parse_oidc_response(response(json_body=body), secrets=[SYSTEM_TOKEN])
    assert caught.value.status_code == 200
    assert TROUBLESHOOTING_GUIDE in caught.value.message
    assert_no_secret(str(caught.value), repr(caught.value))


def test_an_empty_200_is_not_found() -> None:
    with pytest.raises(MalformedResponseError, match=r"^OIDC token not found in response\."):
        parse_oidc_response(response(content=b""))


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'["oidcToken"]', b"\xff\xfe\x00garbage", b"[" * 50_000, f'"{OIDC_TOKEN}"'.encode()],
    ids=["broken", "array", "bytes", "deep", "string"],
)
def test_a_malformed_200_is_a_malformed_response(content: bytes) -> None:
    with pytest.raises(MalformedResponseError) as caught:
        parse_oidc_response(response(content=content))
    assert caught.value.status_code == 200
    assert not isinstance(caught.value.__cause__, RecursionError) or "not JSON" in caught.value.message
    assert_no_secret(str(caught.value), repr(caught.value))


def _devops_error(message: str) -> dict[str, Any]:
    return {
        "$id": "1",
        "innerException": None,
        "message": message,
        "typeName": "Microsoft.TeamFoundation.DistributedTask.WebApi.TaskOrchestrationPlanSecurityException",
        "typeKey": "TaskOrchestrationPlanSecurityException",
        "errorCode": 0,
        "eventId": 3000,
    }


TOKEN_ADVICE = "The system access token is invalid or expired"
CONNECTION_ADVICE = "Check service_connection_id"


@pytest.mark.parametrize(
    ("status", "kwargs", "quoted", "advice"),
    [
        (
            401,
            {"json_body": _devops_error(f"Access denied for token {SYSTEM_TOKEN}.")},
            '"Access denied for token ***."',
            TOKEN_ADVICE,
        ),
        (
            302,
            {
                "headers": {
                    "location": "https://spsprodweu5.vssps.visualstudio.com/_signin?realm=dev.azure.com"
                }
            },
            "an empty body",
            TOKEN_ADVICE,
        ),
        (
            203,
            {
                "content": b"<!DOCTYPE html><html><body>Sign in to Azure DevOps</body></html>",
                "headers": {"content-type": "text/html; charset=utf-8"},
            },
            "64 bytes of text/html; charset=utf-8 (an HTML page",
            TOKEN_ADVICE,
        ),
        (
            400,
            {"json_body": _devops_error(f"Service connection {CONNECTION_ID} could not be found.")},
            f'"Service connection {CONNECTION_ID} could not be found."',
            CONNECTION_ADVICE,
        ),
        (
            404,
            {"content": b"Not Found", "headers": {"content-type": "text/plain"}},
            "9 bytes of text/plain",
            CONNECTION_ADVICE,
        ),
        (
            503,
            {"json_body": {"message": "Service Unavailable"}},
            '"Service Unavailable"',
            "Azure DevOps may be temporarily unavailable",
        ),
    ],
    ids=["401-json", "302", "203-html", "400-json", "404-text", "503"],
)
def test_any_other_status_is_an_unexpected_response(
    status: int, kwargs: dict[str, Any], quoted: str, advice: str
) -> None:
    with pytest.raises(ServiceError) as caught:
        parse_oidc_response(response(status, **kwargs), secrets=[SYSTEM_TOKEN])
    error = caught.value
    assert error.message.startswith(
        f"Unexpected response from OIDC token endpoint. HTTP {status} from {OIDC_URI}: {quoted}"
    )
    assert advice in error.message
    assert error.message.endswith(f"See {TROUBLESHOOTING_GUIDE}.")
    assert (error.status_code, error.retryable, error.url) == (status, status == 503, OIDC_URI)
    assert_no_secret(str(error), repr(error))


def test_quoted_messages_are_scrubbed_and_short() -> None:
    jwt_like = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzYzovL2NvbnRvc28ifQ.c2lnbmF0dXJl"
    message = f"token {jwt_like} header Bearer {OIDC_TOKEN}\r\nline two {SYSTEM_TOKEN} " + "x" * 400
    with pytest.raises(ServiceError) as caught:
        parse_oidc_response(response(401, json_body=_devops_error(message)), secrets=[SYSTEM_TOKEN])
    text = caught.value.message
    assert '"token *** header Bearer *** line two *** xxx' in text
    assert jwt_like not in text
    assert "x" * 201 not in text
    assert 'xxx..."' in text
    assert_no_secret(text)


def test_an_html_body_with_a_message_field_is_not_quoted() -> None:
    with pytest.raises(ServiceError) as caught:
        parse_oidc_response(
            response(500, content=b'{"message": "hi"}', headers={"content-type": "text/html"}),
            secrets=[SYSTEM_TOKEN],
        )
    assert "hi" not in caught.value.message
    assert "17 bytes of text/html" in caught.value.message


# --------------------------------------------------------------------------- property


PROPERTY = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
oidc_shaped = st.fixed_dictionaries(
    {},
    optional={
        "oidcToken": st.one_of(json_values, st.just(OIDC_TOKEN)),
        "message": st.one_of(json_values, st.text(max_size=300).map(lambda t: t + SYSTEM_TOKEN + t)),
    },
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda value: json.dumps(value).encode()),
    oidc_shaped.map(lambda value: json.dumps(value).encode()),
)
statuses = st.one_of(st.sampled_from([200, 200, 200, 203, 302, 401, 404, 500, 503]), st.integers(100, 599))
content_types = st.sampled_from(["application/json", "text/html", "text/plain", "application/octet-stream"])


@PROPERTY
@given(status=statuses, body=bodies, content_type=content_types)
def test_parser_fails_only_with_documented_errors(status: int, body: bytes, content_type: str) -> None:
    reply = response(status, content=body, headers={"content-type": content_type})
    token: str | None = None
    error: ProtocolError | None = None
    try:
        token = parse_oidc_response(reply, secrets=[SYSTEM_TOKEN])
    except ProtocolError as exc:
        error = exc
    if error is not None:
        assert type(error) is (ServiceError if status != 200 else MalformedResponseError)
        assert_no_secret(str(error), repr(error))
    else:
        assert status == 200
        assert isinstance(token, str)
        assert token
        assert token == token.strip()


# --------------------------------------------------------------------------- the flows


def oidc_flow() -> Any:
    return oidc_token_flow(OIDC_URI, CONNECTION, policy=FAST, clock=lambda: NOW)


def pipelines_flow(**kwargs: Any) -> Any:
    return azure_pipelines_flow(
        AUTHORITY,
        client_id=CLIENT_ID,
        scopes=[SCOPE],
        oidc_request_uri=OIDC_URI + "/",
        connection=CONNECTION,
        policy=FAST,
        clock=lambda: NOW,
        **kwargs,
    )


async def test_the_oidc_token_becomes_the_client_assertion(wire: Wire) -> None:
    wire.router.add("POST", OIDC_URI, ok({"oidcToken": OIDC_TOKEN}))
    wire.router.add("POST", PUBLIC_TOKEN_URL, ok(token_body()))

    result = await wire.run(pipelines_flow())

    assert isinstance(result, TokenResult)
    assert (result.access_token, result.expires_on) == (AT_CANARY, int(NOW) + 3599)
    assert [r.url.host for r in wire.router.requests] == ["dev.azure.com", "login.microsoftonline.com"]
    oidc, token = wire.router.requests
    check_oidc_request(oidc)
    check_form_post(
        token,
        url=PUBLIC_TOKEN_URL,
        fields={
            "client_id": CLIENT_ID,
            "grant_type": "client_credentials",
            "scope": SCOPE,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": OIDC_TOKEN,
        },
    )


async def test_the_oidc_post_is_retried_on_503(wire: Wire) -> None:
    wire.router.add(
        "POST",
        OIDC_URI,
        Reply(503, json={"message": "busy"}, headers={"retry-after": "0"}),
        ok({"oidcToken": OIDC_TOKEN}),
    )
    wire.router.add("POST", PUBLIC_TOKEN_URL, ok(token_body()))

    result = await wire.run(pipelines_flow())

    assert result.access_token == AT_CANARY
    oidc_calls = wire.router.calls("POST", OIDC_URI)
    assert len(oidc_calls) == 2
    for call in oidc_calls:
        check_oidc_request(call)
    assert len(wire.router.calls("POST", PUBLIC_TOKEN_URL)) == 1


async def test_exhausted_retries_report_the_last_status(wire: Wire) -> None:
    wire.router.add("POST", OIDC_URI, Reply(503, json={"message": "busy"}))

    with pytest.raises(
        ServiceError, match=r"^Unexpected response from OIDC token endpoint\. HTTP 503"
    ) as caught:
        await wire.run(pipelines_flow())

    assert caught.value.retryable
    assert len(wire.router.requests) == FAST.max_retries + 1


async def test_a_refused_oidc_request_sends_no_token_request(wire: Wire) -> None:
    wire.router.add("POST", OIDC_URI, Reply(401, json=_devops_error("TF400813: not authorized")))

    with pytest.raises(ServiceError) as caught:
        await wire.run(pipelines_flow())

    assert '"TF400813: not authorized"' in caught.value.message
    assert len(wire.router.requests) == 1  # the router fails for any request to the token endpoint


async def test_a_transport_failure_is_retried_then_raised(wire: Wire) -> None:
    wire.router.add("POST", OIDC_URI, httpx.ConnectError("refused"))

    with pytest.raises(TransportError):
        await wire.run(oidc_flow())

    assert len(wire.router.requests) == FAST.max_retries + 1
