"""protocol.wire: request envelopes and the first read of any authority response."""

from __future__ import annotations

import platform
import re
import sys

import httpx
import pytest

from protocol.errors import MalformedResponseError, ServiceError
from protocol.wire import (
    MEMOIZE,
    USER_AGENT,
    build_form_request,
    build_get_request,
    describe_body,
    raise_service_error,
    read_json_object,
)

from .helpers import AT_CANARY, SECRET_CANARY, assert_no_canary, check_form_post, check_get, make_response

URL = "https://login.contoso.com/tenant/oauth2/v2.0/token"


def test_user_agent_names_library_python_and_platform() -> None:
    assert re.fullmatch(r"entra-identity/\d+\.\d+\.\d+ Python/\S+ \(\S+\)", USER_AGENT)
    assert f"Python/{platform.python_version()}" in USER_AGENT
    assert USER_AGENT.endswith(f"({sys.platform})")


def test_form_request_drops_none_fields() -> None:
    request = build_form_request(URL, {"a": "1", "b": None, "c": "x y&z=", "d": "ü"})
    check_form_post(request, url=URL, fields={"a": "1", "c": "x y&z=", "d": "ü"})
    assert request.headers["user-agent"] == USER_AGENT


def test_form_request_extra_headers_are_added() -> None:
    request = build_form_request(URL, {"a": "1"}, headers={"X-AnchorMailbox": "upn:someone@contoso.com"})
    check_form_post(
        request, url=URL, fields={"a": "1"}, headers={"X-AnchorMailbox": "upn:someone@contoso.com"}
    )


def test_every_request_gets_a_fresh_client_request_id() -> None:
    ids = {build_form_request(URL, {"a": "1"}).headers["client-request-id"] for _ in range(20)}
    ids |= {build_get_request(URL).headers["client-request-id"] for _ in range(20)}
    assert len(ids) == 40


def test_get_request() -> None:
    request = build_get_request(URL, {"api-version": "1.1", "x": "a b/c"})
    check_get(request, url=URL, params={"api-version": "1.1", "x": "a b/c"}, memoize=False)
    assert "content-type" not in request.headers


def test_get_request_memoize_flag() -> None:
    assert build_get_request(URL, memoize=True).extensions[MEMOIZE] is True
    assert MEMOIZE not in build_get_request(URL).extensions


def test_read_json_object_returns_the_object() -> None:
    body = {"a": 1, "nested": {"b": [1, 2]}}
    assert read_json_object(make_response(200, json=body)) == body


@pytest.mark.parametrize("status", [200, 400, 401, 500])
def test_error_status_with_json_object_returns_it(status: int) -> None:
    assert read_json_object(make_response(status, json={"error": "x"})) == {"error": "x"}


@pytest.mark.parametrize("content", [b"", b"   ", b"\r\n\t "])
@pytest.mark.parametrize("status", [200, 204, 400, 500])
def test_empty_body_is_none(content: bytes, status: int) -> None:
    assert read_json_object(make_response(status, content=content)) is None


@pytest.mark.parametrize(
    "content",
    [b"not json", b"<html><body>hi</body></html>", b"{", b'{"a": 1', b"\xff\xfe\x00garbage", b"nan-ish"],
)
def test_non_json_success_is_malformed(content: bytes) -> None:
    response = make_response(200, content=content, url=URL + "?secret=" + SECRET_CANARY)
    with pytest.raises(MalformedResponseError, match="is not JSON") as info:
        read_json_object(response)
    exc = info.value
    assert (exc.status_code, exc.url) == (200, URL)
    assert f"{len(content)} bytes" in str(exc)
    assert_no_canary(str(exc), repr(exc))


@pytest.mark.parametrize("content", [b"[1, 2]", b'"a string"', b"42", b"null", b"true"])
def test_json_that_is_not_an_object_is_malformed(content: bytes) -> None:
    with pytest.raises(MalformedResponseError, match="not an object") as info:
        read_json_object(make_response(200, content=content))
    assert info.value.status_code == 200


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (501, False),
        (505, False),
    ],
)
def test_html_error_page_is_service_error(status: int, retryable: bool) -> None:
    html = b"<!DOCTYPE html><html><body>Bad gateway " + AT_CANARY.encode() + b"</body></html>"
    response = make_response(status, content=html, headers={"content-type": "text/html"}, url=URL)
    with pytest.raises(ServiceError) as info:
        read_json_object(response)
    exc = info.value
    assert (exc.status_code, exc.retryable, exc.url) == (status, retryable, URL)
    assert f"HTTP {status}" in str(exc)
    assert "an HTML page" in str(exc)
    assert f"{len(html)} bytes of text/html" in str(exc)
    assert_no_canary(str(exc), repr(exc))


@pytest.mark.parametrize("content", [b"[1]", b"123", b"not json at all"])
def test_error_status_with_non_object_is_service_error(content: bytes) -> None:
    with pytest.raises(ServiceError) as info:
        read_json_object(make_response(503, content=content))
    assert (info.value.status_code, info.value.retryable) == (503, True)


def test_deeply_nested_json_is_malformed() -> None:
    with pytest.raises(MalformedResponseError):
        read_json_object(make_response(200, content=b"[" * 100_000))


def test_describe_body() -> None:
    html = make_response(502, content=b"  <html>oops</html>", headers={"content-type": "text/html"})
    assert describe_body(html) == "19 bytes of text/html (an HTML page: often a proxy or captive portal)"
    plain = make_response(200, content=b"hello", headers={"content-type": "text/plain"})
    assert describe_body(plain) == "5 bytes of text/plain"
    bare = httpx.Response(200, content=b"xy", request=httpx.Request("GET", URL))
    del bare.headers["content-length"]
    assert describe_body(bare) == "2 bytes of no content type"


def test_describe_body_never_quotes_the_body() -> None:
    response = make_response(200, content=f'{{"access_token": "{AT_CANARY}"'.encode())
    assert_no_canary(describe_body(response))


def test_raise_service_error() -> None:
    with pytest.raises(ServiceError) as info:
        raise_service_error(make_response(404, content=b"nope", url=URL + "?q=1"))
    assert (info.value.status_code, info.value.retryable, info.value.url) == (404, False, URL)
    assert "Check the authority URL" in str(info.value)
