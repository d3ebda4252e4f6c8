"""protocol.retry: the pure retry decision, Retry-After parsing, and retries applied by the drivers."""

from __future__ import annotations

import datetime

import httpx
import pytest

from protocol.authority import Authority
from protocol.client_auth import CertificateAssertion, ClientSecret
from protocol.client_credentials import client_credentials_flow
from protocol.errors import OAuthError, ServiceError, ThrottledError, TransportError
from protocol.flows import Exchange, exchange
from protocol.retry import NO_RETRY, RETRYABLE_STATUS, RetryPolicy, next_retry_delay, parse_retry_after
from protocol.wire import build_get_request

from .conftest import Wire
from .helpers import (
    CLIENT_ID,
    PUBLIC_TOKEN_URL,
    SCOPE,
    SECRET_CANARY,
    TENANT,
    Reply,
    assert_no_canary,
    client_certificate,
    error_body,
    is_uuid4,
    ok,
    single_form,
    token_body,
    unverified_claims,
)

POLICY = RetryPolicy()  # 3 retries, 0.8 s factor, 30 s cap, 60 s Retry-After cap, 120 s deadline, 20 % jitter


def delay(
    *,
    policy: RetryPolicy = POLICY,
    retries_done: int = 0,
    status: int | None = 503,
    retry_after: float | None = None,
    elapsed: float = 0.0,
    jitter_sample: float = 0.5,
) -> float | None:
    return next_retry_delay(
        policy,
        retries_done=retries_done,
        status=status,
        retry_after=retry_after,
        elapsed=elapsed,
        jitter_sample=jitter_sample,
    )


# --------------------------------------------------------------------------- next_retry_delay


def test_retryable_statuses() -> None:
    assert frozenset({408, 429, 500, 502, 503, 504}) == RETRYABLE_STATUS


@pytest.mark.parametrize("status", sorted(RETRYABLE_STATUS))
def test_each_retryable_status_is_retried(status: int) -> None:
    assert delay(status=status) == pytest.approx(0.8)


@pytest.mark.parametrize("status", [200, 201, 302, 400, 401, 403, 404, 409, 412, 501, 505, 511])
def test_other_statuses_are_never_retried(status: int) -> None:
    assert delay(status=status) is None
    assert delay(status=status, retry_after=1.0) is None


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"status": None}, 0.8),
        ({"status": None, "retries_done": 2}, 3.2),
        ({"retries_done": 0}, 0.8),
        ({"retries_done": 1}, 1.6),
        ({"retries_done": 2}, 3.2),
        ({"retries_done": 3}, None),
        ({"retries_done": 7}, None),
        ({"policy": NO_RETRY}, None),
        ({"policy": NO_RETRY, "status": None}, None),
        ({"policy": RetryPolicy(max_retries=10), "retries_done": 5}, 25.6),
        ({"policy": RetryPolicy(max_retries=10), "retries_done": 6}, 30.0),
        ({"policy": RetryPolicy(max_retries=50), "retries_done": 40}, 30.0),
        ({"policy": RetryPolicy(backoff_factor=0.0)}, 0.0),
        ({"retry_after": 2.0}, 2.0),
        ({"retry_after": 2.0, "jitter_sample": 0.0}, 2.0),
        ({"retry_after": 0.0}, 0.0),
        ({"retry_after": 60.0}, 60.0),
        ({"retry_after": 60.5}, None),
        ({"retry_after": 3600.0}, None),
        ({"retry_after": 5.0, "status": 429, "retries_done": 2}, 5.0),
        ({"retry_after": 5.0, "retries_done": 3}, None),
        ({"elapsed": 100.0}, 0.8),
        ({"elapsed": 119.5}, None),
        ({"elapsed": 500.0}, None),
        ({"elapsed": 100.0, "retry_after": 20.0}, 20.0),
        ({"elapsed": 100.0, "retry_after": 20.5}, None),
        ({"policy": RetryPolicy(deadline=0.0)}, None),
        ({"jitter_sample": 0.0}, 0.64),
        ({"jitter_sample": 0.999}, 0.8 * (1 + 0.2 * (2 * 0.999 - 1))),
        ({"jitter_sample": 0.0, "retries_done": 2}, 2.56),
        ({"jitter_sample": 0.999, "retries_done": 2}, 3.2 * (1 + 0.2 * 0.998)),
        ({"policy": RetryPolicy(jitter=0.0), "jitter_sample": 0.0}, 0.8),
        ({"policy": RetryPolicy(jitter=1.0), "jitter_sample": 0.0}, 0.0),
    ],
)
def test_next_retry_delay_table(kwargs: dict, expected: float | None) -> None:
    result = delay(**kwargs)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


@pytest.mark.parametrize("sample", [0.0, 0.25, 0.5, 0.75, 0.999])
@pytest.mark.parametrize("retries_done", [0, 1, 2])
def test_jitter_stays_within_twenty_percent(sample: float, retries_done: int) -> None:
    base = 0.8 * 2**retries_done
    result = delay(retries_done=retries_done, jitter_sample=sample)
    assert result is not None
    assert base * 0.8 - 1e-9 <= result <= base * 1.2 + 1e-9


def test_jittered_wait_never_exceeds_backoff_max() -> None:
    policy = RetryPolicy(max_retries=20)
    result = delay(policy=policy, retries_done=10, jitter_sample=0.999)
    assert result is not None
    assert result <= policy.backoff_max


@pytest.mark.parametrize("kwargs", [{"max_retries": -1}, {"backoff_factor": -0.1}, {"deadline": -1.0}])
def test_negative_policy_values_are_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        RetryPolicy(**kwargs)


# --------------------------------------------------------------------------- parse_retry_after

NOW_DT = datetime.datetime(2024, 1, 1, 0, 0, 0, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "5"}, 5.0),
        ({"Retry-After": "0"}, 0.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"Retry-After": " 7 "}, 7.0),
        ({"Retry-After": "Mon, 01 Jan 2024 00:00:30 GMT"}, 30.0),
        ({"Retry-After": "Mon, 01 Jan 2024 01:00:00 +0100"}, 0.0),
        ({"Retry-After": "Mon, 01 Jan 2024 00:02:00 +0000"}, 120.0),
        ({"Retry-After": "Sun, 31 Dec 2023 23:59:00 GMT"}, 0.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "0"}, 0.0),
        ({"x-ms-retry-after-ms": "250"}, 0.25),
        ({"X-MS-Retry-After-MS": "250.5"}, 0.2505),
        ({"retry-after-ms": "1000", "Retry-After": "9"}, 1.0),
        ({"retry-after-ms": "1000", "x-ms-retry-after-ms": "3000"}, 1.0),
        ({"retry-after-ms": "soon", "x-ms-retry-after-ms": "3000"}, 3.0),
        ({"retry-after-ms": "-5", "Retry-After": "4"}, 4.0),
        ({"retry-after-ms": "nan", "Retry-After": "4"}, 4.0),
        ({"retry-after-ms": "inf"}, None),
        ({}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": ""}, None),
        ({"Retry-After": "-5"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "1e999"}, None),
        ({"Retry-After": "Mon, 32 Jan 2024 00:00:00 GMT"}, None),
        ({"Retry-After": "Mon, 01 Jan 2024 00:00:30"}, None),
        ({"Retry-After": "Mon, 01 Foo 2024 00:00:30 GMT"}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    result = parse_retry_after(httpx.Headers(headers), now=NOW_DT.timestamp())
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_parse_retry_after_date_uses_the_clock_when_now_is_omitted() -> None:
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    header = future.strftime("%a, %d %b %Y %H:%M:%S GMT")
    result = parse_retry_after(httpx.Headers({"Retry-After": header}))
    assert result is not None
    assert 3500 < result <= 3600


@pytest.mark.parametrize(
    "value",
    ["Mon, 01 Jan 99999999999999999999 00:00:00 GMT", "Mon, 01 Jan 2024 00:00:00 +999999999999999"],
)
def test_parse_retry_after_absurd_date_is_none(value: str) -> None:
    assert parse_retry_after(httpx.Headers({"Retry-After": value}), now=0.0) is None


# --------------------------------------------------------------------------- exchange via the drivers


def cc_flow(policy: RetryPolicy, auth: object = None):  # type: ignore[no-untyped-def]
    return client_credentials_flow(
        Authority.create("login.microsoftonline.com", TENANT),
        client_id=CLIENT_ID,
        scopes=[SCOPE],
        client_auth=auth or ClientSecret(SECRET_CANARY),  # type: ignore[arg-type]
        policy=policy,
        clock=lambda: 1_700_000_000.0,
    )


HTML_503 = Reply(503, content=b"<html>busy</html>", headers={"content-type": "text/html"})


async def test_503_503_200_retries_with_backoff(driven: Wire) -> None:
    driven.router.add("POST", PUBLIC_TOKEN_URL, HTML_503, HTML_503, ok(token_body(expires_in=100)))
    result = await driven.run(cc_flow(RetryPolicy(jitter=0.0)))
    attempts = driven.router.calls("POST", PUBLIC_TOKEN_URL)
    assert (len(attempts), driven.sleeps, result.expires_on) == (
        3,
        [pytest.approx(0.8), pytest.approx(1.6)],
        1_700_000_100,
    )
    ids = [request.headers["client-request-id"] for request in attempts]
    assert len(set(ids)) == 3
    assert all(is_uuid4(value) for value in ids)
    assert all(single_form(request)["client_secret"] == SECRET_CANARY for request in attempts)


async def test_default_policy_waits_are_jittered_within_bounds(driven: Wire) -> None:
    driven.router.add("POST", PUBLIC_TOKEN_URL, HTML_503, HTML_503, ok(token_body()))
    await driven.run(cc_flow(RetryPolicy()))
    first, second = driven.sleeps
    assert 0.64 <= first <= 0.96
    assert 1.28 <= second <= 1.92


async def test_429_retry_after_is_honoured(driven: Wire) -> None:
    throttled = Reply(429, json=error_body("temporarily_unavailable", 50196), headers={"Retry-After": "2"})
    driven.router.add("POST", PUBLIC_TOKEN_URL, throttled, ok(token_body()))
    result = await driven.run(cc_flow(RetryPolicy()))
    assert (len(driven.router.requests), driven.sleeps, result.access_token) == (
        2,
        [2.0],
        token_body()["access_token"],
    )


async def test_retry_after_zero_retries_without_sleeping(driven: Wire) -> None:
    throttled = Reply(503, json=error_body("temporarily_unavailable"), headers={"Retry-After": "0"})
    driven.router.add("POST", PUBLIC_TOKEN_URL, throttled, ok(token_body()))
    await driven.run(cc_flow(RetryPolicy()))
    assert (len(driven.router.requests), driven.sleeps) == (2, [])


async def test_retry_after_above_the_cap_fails_at_once(driven: Wire) -> None:
    throttled = Reply(429, json=error_body("temporarily_unavailable", 50196), headers={"Retry-After": "120"})
    driven.router.add("POST", PUBLIC_TOKEN_URL, throttled)
    with pytest.raises(ThrottledError) as info:
        await driven.run(cc_flow(RetryPolicy()))
    assert (len(driven.router.requests), driven.sleeps, info.value.retry_after) == (1, [], 120.0)


@pytest.mark.parametrize(
    ("status", "error"), [(400, "invalid_grant"), (401, "invalid_client"), (400, "invalid_scope")]
)
async def test_oauth_errors_are_not_retried(driven: Wire, status: int, error: str) -> None:
    driven.router.add("POST", PUBLIC_TOKEN_URL, Reply(status, json=error_body(error, 70000)))
    with pytest.raises(OAuthError) as info:
        await driven.run(cc_flow(RetryPolicy()))
    assert (len(driven.router.requests), driven.sleeps, info.value.error, info.value.status_code) == (
        1,
        [],
        error,
        status,
    )


async def test_persistent_503_gives_up_after_max_retries(driven: Wire) -> None:
    driven.router.add("POST", PUBLIC_TOKEN_URL, HTML_503)
    with pytest.raises(ServiceError) as info:
        await driven.run(cc_flow(RetryPolicy(jitter=0.0)))
    assert (len(driven.router.requests), info.value.status_code, info.value.retryable) == (4, 503, True)
    assert driven.sleeps == [pytest.approx(0.8), pytest.approx(1.6), pytest.approx(3.2)]


async def test_transport_errors_are_retried_then_raised(driven: Wire) -> None:
    url = "https://login.contoso.com/common/discovery/instance"
    driven.router.add("GET", url, httpx.ConnectError("connection refused"))
    flow = exchange(lambda: build_get_request(url, {"secret": SECRET_CANARY}), RetryPolicy(jitter=0.0))
    with pytest.raises(TransportError) as info:
        await driven.run(flow)
    assert len(driven.router.requests) == 4
    assert driven.sleeps == [pytest.approx(0.8), pytest.approx(1.6), pytest.approx(3.2)]
    assert str(info.value).startswith(f"GET {url}: could not connect (ConnectError).")
    assert info.value.url == url
    assert_no_canary(str(info.value), repr(info.value))


async def test_transport_error_on_token_request_names_the_endpoint(driven: Wire) -> None:
    driven.router.add("POST", PUBLIC_TOKEN_URL, httpx.ReadTimeout("slow"))
    with pytest.raises(TransportError) as info:
        await driven.run(cc_flow(RetryPolicy(max_retries=1, jitter=0.0)))
    assert str(info.value).startswith(f"POST {PUBLIC_TOKEN_URL}: timed out (ReadTimeout).")
    assert (len(driven.router.requests), driven.sleeps) == (2, [pytest.approx(0.8)])
    assert_no_canary(str(info.value), repr(info.value))


async def test_transport_error_then_success(driven: Wire) -> None:
    driven.router.add("POST", PUBLIC_TOKEN_URL, httpx.ConnectError("refused"), ok(token_body()))
    result = await driven.run(cc_flow(RetryPolicy(jitter=0.0)))
    assert (result.access_token, len(driven.router.requests), driven.sleeps) == (
        token_body()["access_token"],
        2,
        [pytest.approx(0.8)],
    )


async def test_no_retry_policy_makes_one_attempt(driven: Wire) -> None:
    driven.router.add("POST", PUBLIC_TOKEN_URL, httpx.ConnectError("refused"))
    with pytest.raises(TransportError):
        await driven.run(cc_flow(NO_RETRY))
    assert (len(driven.router.requests), driven.sleeps) == (1, [])


async def test_each_attempt_is_a_fresh_request_with_a_fresh_assertion(driven: Wire) -> None:
    driven.router.add("POST", PUBLIC_TOKEN_URL, HTML_503, ok(token_body()))
    await driven.run(cc_flow(RetryPolicy(jitter=0.0), CertificateAssertion(client_certificate())))
    first, second = driven.router.calls("POST", PUBLIC_TOKEN_URL)
    assert first is not second
    assert first.headers["client-request-id"] != second.headers["client-request-id"]
    jtis = [unverified_claims(single_form(r)["client_assertion"])["jti"] for r in (first, second)]
    assert jtis[0] != jtis[1]


async def test_exchange_returns_the_final_response(driven: Wire) -> None:
    url = "https://login.contoso.com/x"
    driven.router.add("GET", url, HTML_503)
    result = await driven.run(
        exchange(lambda: build_get_request(url), RetryPolicy(max_retries=2, jitter=0.0))
    )
    assert isinstance(result, Exchange)
    assert (result.response.status_code, result.attempts) == (503, 3)
