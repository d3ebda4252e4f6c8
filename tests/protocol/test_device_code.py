"""protocol.device_code: the device authorization grant (RFC 8628) and its polling flow."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest

from protocol.client_auth import ClientSecret
from protocol.device_code import (
    GRANT_TYPE,
    DeviceCode,
    DeviceCodeExpiredError,
    Pending,
    build_device_code_request,
    build_device_code_token_request,
    device_code_poll_flow,
    parse_device_code_response,
    parse_device_code_token_response,
)
from protocol.errors import MalformedResponseError, OAuthError, ServiceError
from protocol.flows import Sleep, run_sync_flow
from protocol.responses import TokenResult
from protocol.retry import RetryPolicy

from .conftest import Wire
from .helpers import (
    AT_CANARY,
    CLIENT_ID,
    DEVICE_CODE_CANARY,
    NOW,
    PUBLIC_TOKEN_URL,
    SECRET_CANARY,
    TENANT,
    Reply,
    assert_no_canary,
    check_form_post,
    error_body,
    make_response,
    ok,
    token_body,
)

DEVICE_URL = f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/devicecode"
USER_SCOPE = "https://graph.microsoft.com/User.Read"
T0 = int(NOW)
ENTRA_BODY = {
    "device_code": DEVICE_CODE_CANARY,
    "user_code": "FJ5TQ2RPL",
    "verification_uri": "https://microsoft.com/devicelogin",
    "expires_in": 900,
    "interval": 5,
    "message": "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter "
    "the code FJ5TQ2RPL to authenticate.",
}
POLL_FIELDS = {
    "client_id": CLIENT_ID,
    "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
    "device_code": DEVICE_CODE_CANARY,
    "client_info": "1",
}


def parse_device(body: Any, status: int = 200) -> DeviceCode:
    return parse_device_code_response(make_response(status, json=body, url=DEVICE_URL), requested_at=NOW)


def test_grant_type() -> None:
    assert GRANT_TYPE == "urn:ietf:params:oauth:grant-type:device_code"


# --------------------------------------------------------------------------- initiation


def test_device_code_request() -> None:
    check_form_post(
        build_device_code_request(DEVICE_URL, client_id=CLIENT_ID, scopes=[USER_SCOPE]),
        url=DEVICE_URL,
        fields={"client_id": CLIENT_ID, "scope": f"{USER_SCOPE} openid profile offline_access"},
    )


def test_device_code_requests_have_fresh_request_ids() -> None:
    first = build_device_code_request(DEVICE_URL, client_id=CLIENT_ID, scopes=[USER_SCOPE])
    second = build_device_code_request(DEVICE_URL, client_id=CLIENT_ID, scopes=[USER_SCOPE])
    assert first.headers["client-request-id"] != second.headers["client-request-id"]


def test_device_code_request_with_claims() -> None:
    check_form_post(
        build_device_code_request(DEVICE_URL, client_id=CLIENT_ID, scopes=[USER_SCOPE], claims='{"a":1}'),
        url=DEVICE_URL,
        fields={
            "client_id": CLIENT_ID,
            "scope": f"{USER_SCOPE} openid profile offline_access",
            "claims": '{"a":1}',
        },
    )


def test_parse_entra_device_code_response() -> None:
    assert parse_device(ENTRA_BODY) == DeviceCode(
        device_code=DEVICE_CODE_CANARY,
        user_code="FJ5TQ2RPL",
        verification_uri="https://microsoft.com/devicelogin",
        expires_on=T0 + 900,
        interval=5,
        message=ENTRA_BODY["message"],
        verification_uri_complete=None,
    )


def test_message_is_composed_when_missing() -> None:
    body = {k: v for k, v in ENTRA_BODY.items() if k != "message"}
    result = parse_device(body)
    assert result.message == (
        "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the "
        "code FJ5TQ2RPL to authenticate."
    )
    assert "https://microsoft.com/devicelogin" in result.message
    assert "FJ5TQ2RPL" in result.message


def test_numeric_strings_and_defaults() -> None:
    strings = parse_device({**ENTRA_BODY, "interval": "7", "expires_in": " 1800 "})
    assert (strings.interval, strings.expires_on) == (7, T0 + 1800)
    minimal = parse_device({"device_code": "d", "user_code": "u", "verification_uri": "https://x/link"})
    assert (minimal.interval, minimal.expires_on) == (5, T0 + 900)


def test_older_field_names_and_complete_uri() -> None:
    result = parse_device(
        {
            "device_code": "d",
            "user_code": "u",
            "verification_url": "https://x/old",
            "verification_uri_complete": "https://x/old?code=u",
        }
    )
    assert (result.verification_uri, result.verification_uri_complete) == (
        "https://x/old",
        "https://x/old?code=u",
    )


def test_device_code_repr_hides_the_device_code() -> None:
    assert_no_canary(repr(parse_device(ENTRA_BODY)))


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({}, "device_code, user_code"),
        ({**ENTRA_BODY, "device_code": ""}, "device_code"),
        ({**ENTRA_BODY, "user_code": 5}, "user_code"),
        ({**ENTRA_BODY, "expires_in": 0}, "expires_in"),
        ({**ENTRA_BODY, "expires_in": "soon"}, "expires_in"),
        ({**ENTRA_BODY, "interval": -1}, "interval"),
        ({**ENTRA_BODY, "interval": "five"}, "interval"),
        ({k: v for k, v in ENTRA_BODY.items() if k != "verification_uri"}, "verification_uri"),
    ],
)
def test_malformed_device_code_response(body: dict[str, Any], text: str) -> None:
    with pytest.raises(MalformedResponseError, match=text) as info:
        parse_device(body)
    assert info.value.url == DEVICE_URL
    assert_no_canary(str(info.value), repr(info.value))


def test_device_code_errors() -> None:
    with pytest.raises(OAuthError) as info:
        parse_device(error_body("invalid_scope", 70011), status=400)
    assert (info.value.error, info.value.error_codes) == ("invalid_scope", (70011,))
    with pytest.raises(ServiceError):
        parse_device_code_response(
            make_response(502, content=b"<html>bad gateway</html>", url=DEVICE_URL), requested_at=NOW
        )
    with pytest.raises(MalformedResponseError):
        parse_device_code_response(make_response(200, content=b"", url=DEVICE_URL), requested_at=NOW)


# --------------------------------------------------------------------------- polling


def test_poll_request() -> None:
    request = build_device_code_token_request(
        PUBLIC_TOKEN_URL, client_id=CLIENT_ID, device_code=DEVICE_CODE_CANARY, now=NOW
    )
    check_form_post(request, url=PUBLIC_TOKEN_URL, fields=POLL_FIELDS)


def test_poll_request_with_client_auth_and_claims() -> None:
    request = build_device_code_token_request(
        PUBLIC_TOKEN_URL,
        client_id=CLIENT_ID,
        device_code=DEVICE_CODE_CANARY,
        now=NOW,
        client_auth=ClientSecret(SECRET_CANARY),
        claims='{"x":1}',
    )
    check_form_post(
        request,
        url=PUBLIC_TOKEN_URL,
        fields={**POLL_FIELDS, "client_secret": SECRET_CANARY, "claims": '{"x":1}'},
    )


def poll(body: Any, status: int = 400) -> TokenResult | Pending:
    return parse_device_code_token_response(make_response(status, json=body), requested_at=NOW)


def test_pending_and_slow_down() -> None:
    assert poll(error_body("authorization_pending", 70016)) == Pending()
    assert poll(error_body("slow_down")) == Pending(slow_down=True)
    assert Pending().slow_down is False


def test_expired_token() -> None:
    with pytest.raises(DeviceCodeExpiredError) as info:
        poll(error_body("expired_token", 70019))
    exc = info.value
    assert isinstance(exc, OAuthError)
    assert (exc.error, exc.error_codes, exc.correlation_id, exc.trace_id, exc.status_code) == (
        "expired_token",
        (70019,),
        "5d1e2f3a-0000-4000-8000-000000000002",
        "0b8f1a7c-0000-4000-8000-000000000001",
        400,
    )


@pytest.mark.parametrize("error", ["authorization_declined", "bad_verification_code", "invalid_grant"])
def test_terminal_poll_errors(error: str) -> None:
    with pytest.raises(OAuthError) as info:
        poll(error_body(error))
    assert (type(info.value), info.value.error) == (OAuthError, error)


def test_poll_token() -> None:
    result = poll(token_body(refresh_token="CANARY-RT-dc"), status=200)
    assert isinstance(result, TokenResult)
    assert (result.access_token, result.refresh_token, result.expires_on) == (
        AT_CANARY,
        "CANARY-RT-dc",
        T0 + 3599,
    )


@pytest.mark.parametrize(("body", "status"), [({"error": 5}, 400), ({}, 200), ({"error": ["x"]}, 200)])
def test_malformed_poll_response(body: Any, status: int) -> None:
    with pytest.raises(MalformedResponseError):
        poll(body, status=status)


# --------------------------------------------------------------------------- poll flow

PENDING = Reply(400, json=error_body("authorization_pending", 70016))
SLOW_DOWN = Reply(400, json=error_body("slow_down"))


def device(expires_in: int = 900, interval: int = 5) -> DeviceCode:
    return parse_device({**ENTRA_BODY, "expires_in": expires_in, "interval": interval})


def poll_flow(wire: Wire, code: DeviceCode, **kwargs: Any):  # type: ignore[no-untyped-def]
    """The poll flow with a clock that moves by exactly what the driver slept."""
    return device_code_poll_flow(
        PUBLIC_TOKEN_URL,
        code,
        client_id=CLIENT_ID,
        policy=RetryPolicy(jitter=0.0),
        clock=lambda: NOW + sum(wire.sleeps),
        **kwargs,
    )


async def test_poll_pending_slow_down_success(driven: Wire) -> None:
    driven.router.add("POST", PUBLIC_TOKEN_URL, PENDING, PENDING, SLOW_DOWN, PENDING, ok(token_body()))
    result = await driven.run(poll_flow(driven, device()))
    assert (result.access_token, driven.sleeps) == (AT_CANARY, [5.0, 5.0, 10.0, 10.0])
    polls = driven.router.requests
    assert len(polls) == 5
    assert len({r.headers["client-request-id"] for r in polls}) == 5
    for request in polls:
        check_form_post(request, url=PUBLIC_TOKEN_URL, fields=POLL_FIELDS)
    # Expiry counts from the clock reading before the successful poll (t = 30 s).
    assert result.expires_on == T0 + 30 + 3599


async def test_poll_gives_up_when_the_code_expires(driven: Wire) -> None:
    driven.router.add("POST", PUBLIC_TOKEN_URL, PENDING)
    with pytest.raises(DeviceCodeExpiredError, match="Timed out waiting") as info:
        await driven.run(poll_flow(driven, device(expires_in=12)))
    assert (info.value.error, len(driven.router.requests), driven.sleeps) == ("expired_token", 3, [5.0, 5.0])


async def test_poll_gives_up_at_the_callers_deadline(driven: Wire) -> None:
    driven.router.add("POST", PUBLIC_TOKEN_URL, PENDING)
    with pytest.raises(DeviceCodeExpiredError):
        await driven.run(poll_flow(driven, device(), deadline=NOW + 7))
    assert (len(driven.router.requests), driven.sleeps) == (2, [5.0])


async def test_poll_stops_on_server_expired_token(driven: Wire) -> None:
    driven.router.add("POST", PUBLIC_TOKEN_URL, PENDING, Reply(400, json=error_body("expired_token", 70019)))
    with pytest.raises(DeviceCodeExpiredError) as info:
        await driven.run(poll_flow(driven, device()))
    assert (info.value.error_codes, len(driven.router.requests)) == ((70019,), 2)


async def test_poll_stops_on_declined(driven: Wire) -> None:
    driven.router.add("POST", PUBLIC_TOKEN_URL, Reply(400, json=error_body("authorization_declined")))
    with pytest.raises(OAuthError) as info:
        await driven.run(poll_flow(driven, device()))
    assert (info.value.error, len(driven.router.requests), driven.sleeps) == ("authorization_declined", 1, [])
    assert_no_canary(str(info.value), repr(info.value))


async def test_zero_interval_polls_every_second(driven: Wire) -> None:
    driven.router.add("POST", PUBLIC_TOKEN_URL, PENDING, PENDING, ok(token_body()))
    await driven.run(poll_flow(driven, device(interval=0)))
    assert driven.sleeps == [1.0, 1.0]


def test_poll_flow_steps_by_hand() -> None:
    clock = [NOW]
    flow = device_code_poll_flow(
        PUBLIC_TOKEN_URL, device(), client_id=CLIENT_ID, policy=RetryPolicy(), clock=lambda: clock[0]
    )
    steps: list[object] = []
    answers = iter([PENDING, SLOW_DOWN, ok(token_body())])
    step = next(flow)
    try:
        while True:
            if isinstance(step, Sleep):
                steps.append(step)
                clock[0] += step.seconds
                step = flow.send(None)
            else:
                assert isinstance(step, httpx.Request)
                steps.append(step.method)
                step = flow.send(next(answers).to_response(step))
    except StopIteration as stop:
        result = stop.value
    assert steps == ["POST", Sleep(5.0), "POST", Sleep(10.0), "POST"]
    assert result.expires_on == T0 + 15 + 3599


def test_expired_token_keeps_every_error_field() -> None:
    with pytest.raises(DeviceCodeExpiredError) as info:
        poll(error_body("expired_token", 70019, suberror="x"))
    assert (info.value.timestamp, info.value.suberror) == ("2024-01-01 00:00:00Z", "x")


def test_absurd_expires_in_is_malformed() -> None:
    with pytest.raises(MalformedResponseError, match="expires_in"):
        parse_device({**ENTRA_BODY, "expires_in": 10**400})


def test_deadline_shorter_than_the_code_lifetime_wins() -> None:
    readings = itertools.count()
    code = parse_device({**ENTRA_BODY, "expires_in": 86_400})
    flow = device_code_poll_flow(
        PUBLIC_TOKEN_URL,
        code,
        client_id=CLIENT_ID,
        policy=RetryPolicy(),
        clock=lambda: NOW + next(readings),
        deadline=NOW + 7,
    )
    with pytest.raises(DeviceCodeExpiredError):
        run_sync_flow(flow, PENDING.to_response)
