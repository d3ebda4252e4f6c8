"""protocol.flows: the generator protocol, exchange() stepped by hand, and run_sync_flow."""

from __future__ import annotations

from collections.abc import Generator

import httpx
import pytest

from protocol.errors import TransportError
from protocol.flows import Exchange, Sleep, exchange, run_sync_flow
from protocol.retry import NO_RETRY, RetryPolicy
from protocol.wire import build_get_request

URL = "https://login.contoso.com/resource"


def respond(request: httpx.Request, status: int = 200, **kwargs: object) -> httpx.Response:
    return httpx.Response(status, request=request, **kwargs)  # type: ignore[arg-type]


class Ticker:
    """A clock that advances by one second on every reading."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start - 1
        self.readings = 0

    def __call__(self) -> float:
        self.now += 1
        self.readings += 1
        return self.now


def test_exchange_steps_by_hand() -> None:
    built: list[httpx.Request] = []

    def build() -> httpx.Request:
        built.append(build_get_request(URL))
        return built[-1]

    flow = exchange(build, RetryPolicy(jitter=0.0), jitter=lambda: 0.5)
    first = next(flow)
    assert first is built[0]
    step = flow.send(respond(first, 503))
    assert step == Sleep(pytest.approx(0.8))  # type: ignore[arg-type]
    second = flow.send(None)
    assert second is built[1]
    assert second is not first
    with pytest.raises(StopIteration) as stop:
        flow.send(respond(second, 200, json={"ok": True}))
    result = stop.value.value
    assert isinstance(result, Exchange)
    assert (result.response.json(), result.attempts) == ({"ok": True}, 2)


def test_sent_at_is_read_just_before_the_final_attempt() -> None:
    clock = Ticker()
    flow = exchange(lambda: build_get_request(URL), RetryPolicy(jitter=0.0), clock=clock)
    request = next(flow)  # clock reading 1 (sent_at of attempt 1) = 1000
    assert isinstance(flow.send(respond(request, 503)), Sleep)  # reading 2 for Retry-After "now"
    request = flow.send(None)  # reading 3: sent_at of attempt 2 = 1002
    with pytest.raises(StopIteration) as stop:
        flow.send(respond(request, 200))
    assert stop.value.value.sent_at == 1002.0


def test_retry_after_header_drives_the_sleep() -> None:
    flow = exchange(lambda: build_get_request(URL), RetryPolicy())
    request = next(flow)
    assert flow.send(respond(request, 429, headers={"Retry-After": "3"})) == Sleep(3.0)


def test_retry_after_zero_skips_the_sleep_step() -> None:
    flow = exchange(lambda: build_get_request(URL), RetryPolicy())
    request = next(flow)
    step = flow.send(respond(request, 503, headers={"Retry-After": "0"}))
    assert isinstance(step, httpx.Request)


def test_deadline_uses_the_injected_monotonic_clock() -> None:
    readings = iter([0.0, 119.9])
    flow = exchange(lambda: build_get_request(URL), RetryPolicy(jitter=0.0), monotonic=lambda: next(readings))
    request = next(flow)
    with pytest.raises(StopIteration) as stop:
        flow.send(respond(request, 503))
    assert (stop.value.value.response.status_code, stop.value.value.attempts) == (503, 1)


def test_injected_jitter_is_used() -> None:
    flow = exchange(lambda: build_get_request(URL), RetryPolicy(), jitter=lambda: 0.0)
    request = next(flow)
    assert flow.send(respond(request, 503)) == Sleep(pytest.approx(0.64))  # type: ignore[arg-type]


def test_transport_error_is_thrown_in_and_retried() -> None:
    flow = exchange(lambda: build_get_request(URL), RetryPolicy(jitter=0.0))
    next(flow)
    step = flow.throw(TransportError("boom", url=URL))
    assert step == Sleep(pytest.approx(0.8))  # type: ignore[arg-type]
    assert isinstance(flow.send(None), httpx.Request)


def test_transport_error_is_reraised_when_retries_are_exhausted() -> None:
    flow = exchange(lambda: build_get_request(URL), NO_RETRY)
    next(flow)
    error = TransportError("boom", url=URL)
    with pytest.raises(TransportError) as info:
        flow.throw(error)
    assert info.value is error


def test_non_retryable_response_returns_after_one_attempt() -> None:
    flow = exchange(lambda: build_get_request(URL), RetryPolicy())
    request = next(flow)
    with pytest.raises(StopIteration) as stop:
        flow.send(respond(request, 400, json={"error": "invalid_grant"}))
    assert (stop.value.value.response.status_code, stop.value.value.attempts) == (400, 1)


def sample_flow() -> Generator[httpx.Request | Sleep, httpx.Response | None, list[object]]:
    seen: list[object] = []
    response = yield build_get_request(URL + "/1")
    seen.append(response.status_code if response is not None else None)
    seen.append((yield Sleep(30.0)))
    try:
        yield build_get_request(URL + "/2")
    except TransportError as exc:
        seen.append(f"caught {exc.url}")
    response = yield build_get_request(URL + "/3")
    seen.append(response.json() if response is not None else None)
    return seen


def test_run_sync_flow_sends_skips_sleeps_and_throws_transport_errors() -> None:
    sent: list[str] = []

    def send(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        if request.url.path.endswith("/2"):
            raise TransportError("down", url=str(request.url))
        return respond(request, 201, json={"n": len(sent)})

    result = run_sync_flow(sample_flow(), send)
    assert result == [201, None, f"caught {URL}/2", {"n": 3}]
    assert sent == [f"{URL}/1", f"{URL}/2", f"{URL}/3"]


def test_run_sync_flow_propagates_flow_errors() -> None:
    def failing() -> Generator[httpx.Request, httpx.Response | None, None]:
        yield build_get_request(URL)
        raise ValueError("flow failed")

    with pytest.raises(ValueError, match="flow failed"):
        run_sync_flow(failing(), respond)


def test_run_sync_flow_uncaught_transport_error_propagates() -> None:
    def send(request: httpx.Request) -> httpx.Response:
        raise TransportError("down", url=URL)

    with pytest.raises(TransportError, match="down"):
        run_sync_flow(exchange(lambda: build_get_request(URL), NO_RETRY), send)


def test_flow_without_steps_returns_at_once() -> None:
    def immediate() -> Generator[httpx.Request, httpx.Response | None, str]:
        return "done"
        yield  # pragma: no cover

    assert run_sync_flow(immediate(), respond) == "done"


def test_retries_are_logged_at_debug_without_query_or_body(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="protocol")

    def build() -> httpx.Request:
        return httpx.Request("POST", f"{URL}?code=CANARY-CODE", data={"client_secret": "CANARY-SECRET"})

    flow = exchange(build, RetryPolicy(jitter=0.0), jitter=lambda: 0.5)
    request = next(flow)
    assert isinstance(flow.send(respond(request, 503)), Sleep)
    flow.send(None)
    assert isinstance(flow.throw(TransportError("boom", url=URL)), Sleep)
    messages = [record.getMessage() for record in caplog.records if record.name == "protocol"]
    assert messages[0] == f"POST {URL}: HTTP 503; retry 1 in 0.80 s"
    assert messages[1] == f"POST {URL}: no response; retry 2 in 1.60 s"
    assert all("CANARY" not in message for message in messages)
