"""protocol.responses: token responses and OAuth error bodies parsed into typed values."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from protocol.errors import (
    ClaimsChallengeError,
    InteractionRequiredError,
    MalformedResponseError,
    OAuthError,
    ProtocolError,
    ServiceError,
    ThrottledError,
)
from protocol.responses import (
    HALF_LIFE_THRESHOLD,
    TokenResult,
    decode_client_info,
    oauth_error_from_body,
    parse_token_response,
    raise_for_error_response,
)

from .helpers import (
    AT_CANARY,
    ID_TOKEN_CANARY,
    NOW,
    PUBLIC_TOKEN_URL,
    RT_CANARY,
    assert_no_canary,
    error_body,
    make_response,
    token_body,
)

T0 = int(NOW)
UID = "00000000-0000-0000-66f3-3332eca7ea81"
UTID = "9188040d-6c67-4c5b-b112-36a304b66dad"


def client_info(data: Any, *, padded: bool) -> str:
    raw = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
    return raw if padded else raw.rstrip("=")


def parse(body: Any = None, status: int = 200, **kwargs: Any) -> TokenResult:
    return parse_token_response(make_response(status, json=body, **kwargs), requested_at=NOW)


# --------------------------------------------------------------------------- success


def test_full_success_body() -> None:
    info = client_info({"uid": UID, "utid": UTID}, padded=False)
    result = parse(
        token_body(
            expires_in=3599,
            ext_expires_in=7199,
            scope="https://graph.microsoft.com/User.Read openid profile",
            refresh_token=RT_CANARY,
            id_token=ID_TOKEN_CANARY,
            client_info=info,
            foci="1",
            unknown_field={"ignored": True},
        )
    )
    assert result == TokenResult(
        access_token=AT_CANARY,
        token_type="Bearer",
        expires_on=T0 + 3599,
        refresh_on=None,
        ext_expires_on=T0 + 7199,
        scopes=("https://graph.microsoft.com/User.Read", "openid", "profile"),
        refresh_token=RT_CANARY,
        id_token=ID_TOKEN_CANARY,
        home_account_id=f"{UID}.{UTID}",
        foci="1",
    )


def test_minimal_success_body() -> None:
    result = parse({"access_token": "at", "expires_in": 60})
    assert result == TokenResult(
        access_token="at",
        token_type="Bearer",
        expires_on=T0 + 60,
        refresh_on=None,
        ext_expires_on=None,
        scopes=None,
        refresh_token=None,
        id_token=None,
        home_account_id=None,
        foci=None,
    )


def test_repr_hides_tokens() -> None:
    result = parse(token_body(refresh_token=RT_CANARY, id_token=ID_TOKEN_CANARY))
    assert_no_canary(repr(result), str(result))
    assert "expires_on" in repr(result)


@pytest.mark.parametrize(
    ("expires_in", "lifetime"),
    [
        (3599, 3599),
        ("3599", 3599),
        (" 3599 ", 3599),
        ("3599.0", 3599),
        (3599.9, 3599),
        ("3599.9", 3599),
        (0, 0),
    ],
)
def test_expires_in_int_or_numeric_string(expires_in: Any, lifetime: int) -> None:
    result = parse(token_body(expires_in=expires_in))
    assert (result.expires_on, type(result.expires_on)) == (T0 + lifetime, int)


def test_expiry_is_computed_from_requested_at() -> None:
    response = make_response(200, json=token_body(expires_in=100))
    assert parse_token_response(response, requested_at=5.9).expires_on == 105
    assert parse_token_response(response, requested_at=1000).expires_on == 1100


@pytest.mark.parametrize("expires_on", [T0 + 4000, str(T0 + 4000)])
def test_expires_on_fallback(expires_on: Any) -> None:
    body = {"access_token": "at", "expires_on": expires_on}
    result = parse(body)
    assert (result.expires_on, result.refresh_on) == (T0 + 4000, None)


def test_expires_on_fallback_long_lived_refreshes_at_half_remaining() -> None:
    result = parse({"access_token": "at", "expires_on": T0 + 10_000})
    assert (result.expires_on, result.refresh_on) == (T0 + 10_000, T0 + 5000)


def test_expires_on_in_the_past_is_reported_as_is() -> None:
    result = parse({"access_token": "at", "expires_on": T0 - 10})
    assert (result.expires_on, result.refresh_on) == (T0 - 10, None)


def test_expires_in_wins_over_expires_on() -> None:
    result = parse({"access_token": "at", "expires_in": 100, "expires_on": T0 + 99_999})
    assert result.expires_on == T0 + 100


@pytest.mark.parametrize(
    ("extra", "refresh_on"),
    [
        ({"expires_in": 3599, "refresh_in": 1800}, T0 + 1800),
        ({"expires_in": 86399, "refresh_in": "600"}, T0 + 600),
        ({"expires_in": HALF_LIFE_THRESHOLD}, T0 + 3600),
        ({"expires_in": 86399}, T0 + 43199),
        ({"expires_in": "7201"}, T0 + 3600),
        ({"expires_in": HALF_LIFE_THRESHOLD - 1}, None),
        ({"expires_in": 3599}, None),
        ({"expires_in": 0}, None),
    ],
)
def test_refresh_on(extra: dict[str, Any], refresh_on: int | None) -> None:
    assert parse({"access_token": "at", **extra}).refresh_on == refresh_on


def test_half_life_threshold_is_two_hours() -> None:
    assert HALF_LIFE_THRESHOLD == 7200


@pytest.mark.parametrize(("token_type", "expected"), [(None, "Bearer"), ("", "Bearer"), ("pop", "pop")])
def test_token_type(token_type: str | None, expected: str) -> None:
    body = {"access_token": "at", "expires_in": 1}
    if token_type is not None:
        body["token_type"] = token_type
    assert parse(body).token_type == expected


@pytest.mark.parametrize(("scope", "scopes"), [("", None), ("a", ("a",)), ("a  b\tc", ("a", "b", "c"))])
def test_scopes(scope: str, scopes: tuple[str, ...] | None) -> None:
    assert parse(token_body(scope=scope)).scopes == scopes


def test_empty_refresh_and_id_tokens_are_none() -> None:
    result = parse(token_body(refresh_token="", id_token=""))
    assert (result.refresh_token, result.id_token) == (None, None)


@pytest.mark.parametrize("padded", [True, False])
def test_client_info_gives_home_account_id(padded: bool) -> None:
    info = client_info({"uid": "u", "utid": "tenant-id-x"}, padded=padded)
    # "u" + "tenant-id-x" makes a JSON text whose base64 needs padding.
    assert padded is False or info.endswith("=")
    assert parse(token_body(client_info=info)).home_account_id == "u.tenant-id-x"


@pytest.mark.parametrize(
    "value",
    [
        client_info({"uid": "u"}, padded=True),
        client_info({"utid": "t"}, padded=True),
        client_info({"uid": "", "utid": "t"}, padded=True),
        client_info({"uid": 1, "utid": "t"}, padded=True),
        client_info(["u", "t"], padded=True),
        client_info("u.t", padded=True),
        "not base64 !!!",
        "a",
        "////",
        base64.urlsafe_b64encode(b"\xff\xfe not utf8").decode(),
        "ü",
    ],
)
def test_client_info_without_uid_and_utid_gives_none(value: str) -> None:
    assert decode_client_info(value) is None
    assert parse(token_body(client_info=value)).home_account_id is None


def test_deeply_nested_client_info_gives_none() -> None:
    assert decode_client_info(base64.urlsafe_b64encode(b"[" * 100_000).decode()) is None


# --------------------------------------------------------------------------- OAuth errors


@pytest.mark.parametrize(
    ("status", "error", "codes", "extra", "cls", "retryable"),
    [
        (400, "invalid_grant", (70000,), {}, OAuthError, False),
        (400, "invalid_request", (90002,), {}, OAuthError, False),
        (401, "invalid_client", (7000215,), {}, OAuthError, False),
        (400, "unauthorized_client", (700016,), {}, OAuthError, False),
        (400, "invalid_scope", (70011,), {}, OAuthError, False),
        (400, "interaction_required", (), {}, InteractionRequiredError, False),
        (400, "login_required", (50058,), {}, InteractionRequiredError, False),
        (400, "consent_required", (65001,), {}, InteractionRequiredError, False),
        (400, "invalid_grant", (50076,), {}, InteractionRequiredError, False),
        (400, "invalid_grant", (50079,), {}, InteractionRequiredError, False),
        (400, "invalid_grant", (50058,), {}, InteractionRequiredError, False),
        (400, "invalid_grant", (65001,), {}, InteractionRequiredError, False),
        (400, "invalid_grant", (700082,), {}, InteractionRequiredError, False),
        (400, "invalid_grant", (70043,), {}, InteractionRequiredError, False),
        (400, "invalid_grant", (700084,), {}, InteractionRequiredError, False),
        (400, "invalid_grant", (50173,), {}, InteractionRequiredError, False),
        (400, "invalid_grant", (9999, 50076), {}, InteractionRequiredError, False),
        (
            400,
            "invalid_grant",
            (50076,),
            {"claims": '{"access_token":{"capolids":{"essential":true}}}'},
            ClaimsChallengeError,
            False,
        ),
        (400, "interaction_required", (53003,), {"claims": '{"x":1}'}, ClaimsChallengeError, False),
        (429, "temporarily_unavailable", (50196,), {}, ThrottledError, True),
        (429, "invalid_grant", (), {"claims": '{"x":1}'}, ThrottledError, True),
        (503, "temporarily_unavailable", (), {}, OAuthError, True),
        (500, "server_error", (), {}, OAuthError, True),
        (408, "request_timeout", (), {}, OAuthError, True),
        (400, "temporarily_unavailable", (), {}, OAuthError, True),
        (200, "invalid_grant", (), {}, OAuthError, False),
        (200, "interaction_required", (), {}, InteractionRequiredError, False),
    ],
)
def test_oauth_error_mapping(
    status: int, error: str, codes: tuple[int, ...], extra: dict[str, Any], cls: type, retryable: bool
) -> None:
    body = error_body(error, *codes, suberror="basic_action", **extra)
    with pytest.raises(ProtocolError) as info:
        parse(body, status=status)
    exc = info.value
    assert type(exc) is cls
    assert isinstance(exc, OAuthError)
    assert {
        "error": exc.error,
        "error_description": exc.error_description,
        "error_codes": exc.error_codes,
        "correlation_id": exc.correlation_id,
        "trace_id": exc.trace_id,
        "timestamp": exc.timestamp,
        "suberror": exc.suberror,
        "claims": exc.claims,
        "status_code": exc.status_code,
        "retryable": exc.retryable,
    } == {
        "error": error,
        "error_description": body["error_description"],
        "error_codes": codes,
        "correlation_id": "5d1e2f3a-0000-4000-8000-000000000002",
        "trace_id": "0b8f1a7c-0000-4000-8000-000000000001",
        "timestamp": "2024-01-01 00:00:00Z",
        "suberror": "basic_action",
        "claims": extra.get("claims"),
        "status_code": status,
        "retryable": retryable,
    }


def test_error_message_is_code_and_first_description_line() -> None:
    with pytest.raises(OAuthError) as info:
        parse(error_body("invalid_grant", 70000, 50000), status=400)
    assert str(info.value) == "invalid_grant (AADSTS70000): Something went wrong."
    assert "Trace ID" not in str(info.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"error": "invalid_grant"}, "invalid_grant"),
        ({"error": "invalid_grant", "error_codes": [50126]}, "invalid_grant (AADSTS50126)"),
        ({"error": "x", "error_description": "\n\n  first  \nsecond"}, "x: first"),
        ({"error": "x", "error_description": "   "}, "x"),
        (
            {"error": "x", "error_codes": [1], "error_description": "AADSTS2: other"},
            "x (AADSTS1): AADSTS2: other",
        ),
    ],
)
def test_error_message_forms(body: dict[str, Any], message: str) -> None:
    with pytest.raises(OAuthError) as info:
        parse(body, status=400)
    assert str(info.value) == message
    assert info.value.error_codes == tuple(body.get("error_codes", ()))


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "0.5"}, 0.5),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"x-ms-retry-after-ms": "250"}, 0.25),
        ({}, None),
        ({"Retry-After": "soon"}, None),
    ],
)
def test_throttled_error_carries_retry_after(headers: dict[str, str], retry_after: float | None) -> None:
    with pytest.raises(ThrottledError) as info:
        parse(error_body("temporarily_unavailable", 50196), status=429, headers=headers)
    assert (info.value.retry_after, info.value.status_code, info.value.retryable) == (retry_after, 429, True)


def test_throttled_error_with_absurd_retry_after_date() -> None:
    with pytest.raises(ThrottledError) as info:
        parse(
            error_body("temporarily_unavailable"),
            status=429,
            headers={"Retry-After": "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"},
        )
    assert info.value.retry_after is None


def test_error_body_with_a_token_canary_does_not_leak() -> None:
    body = error_body("invalid_grant", 70000, access_token=AT_CANARY, refresh_token=RT_CANARY)
    with pytest.raises(OAuthError) as info:
        parse(body, status=400)
    assert_no_canary(str(info.value), repr(info.value))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"error": 5}, "error"),
        ({"error": ""}, "error"),
        ({"error": None}, "error"),
        ({"error": "x", "error_codes": "50076"}, "error_codes"),
        ({"error": "x", "error_codes": ["abc"]}, "error_codes"),
        ({"error": "x", "error_description": ["a"]}, "error_description"),
        ({"error": "x", "claims": {"a": 1}}, "claims"),
        ({"error": "x", "correlation_id": 5}, "correlation_id"),
    ],
)
@pytest.mark.parametrize("status", [200, 400, 429, 500])
def test_error_body_with_wrong_types_is_malformed(body: dict[str, Any], field: str, status: int) -> None:
    with pytest.raises(MalformedResponseError) as info:
        parse({**body, "access_token": AT_CANARY}, status=status)
    exc = info.value
    assert (exc.status_code, exc.url) == (status, PUBLIC_TOKEN_URL)
    assert f"unexpected types ({field})." in str(exc)
    assert_no_canary(str(exc), repr(exc))


def test_oauth_error_from_body_returns_not_raises() -> None:
    response = make_response(400, json={"error": "invalid_grant"})
    assert type(oauth_error_from_body({"error": "invalid_grant"}, response)) is OAuthError
    assert type(oauth_error_from_body({"error": 1}, response)) is MalformedResponseError


def test_raise_for_error_response() -> None:
    assert raise_for_error_response(make_response(200, json={"a": 1}), {"a": 1}) is None
    assert raise_for_error_response(make_response(200), None) is None
    with pytest.raises(ServiceError):
        raise_for_error_response(make_response(404), None)
    with pytest.raises(ServiceError):
        raise_for_error_response(make_response(500, json={"a": 1}), {"a": 1})
    with pytest.raises(OAuthError):
        raise_for_error_response(make_response(200, json={"error": "x"}), {"error": "x"})


# --------------------------------------------------------------------------- malformed / service


@pytest.mark.parametrize(
    "content",
    [b"<html>login page</html>", b"OK", f"access_token={AT_CANARY}&expires_in=3599".encode()],
)
def test_non_json_200_is_malformed(content: bytes) -> None:
    with pytest.raises(MalformedResponseError) as info:
        parse_token_response(make_response(200, content=content), requested_at=NOW)
    assert info.value.status_code == 200
    assert_no_canary(str(info.value), repr(info.value))


@pytest.mark.parametrize(
    ("status", "retryable"), [(502, True), (503, True), (504, True), (400, False), (403, False)]
)
def test_html_error_is_service_error(status: int, retryable: bool) -> None:
    html = b"<!doctype html><html><h1>Bad Gateway</h1></html>"
    with pytest.raises(ServiceError) as info:
        parse(content=html, status=status, headers={"content-type": "text/html"})
    assert (info.value.status_code, info.value.retryable) == (status, retryable)
    assert "HTML page" in str(info.value)


@pytest.mark.parametrize(
    ("status", "cls"),
    [(200, MalformedResponseError), (302, MalformedResponseError), (400, ServiceError), (500, ServiceError)],
)
def test_empty_body(status: int, cls: type) -> None:
    with pytest.raises(cls) as info:
        parse(content=b"", status=status)
    assert info.value.status_code == status  # type: ignore[attr-defined]
    if cls is MalformedResponseError:
        assert "has no content" in str(info.value)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, "access_token"),
        ({"expires_in": 3599, "token_type": "Bearer"}, "access_token"),
        ({"access_token": ""}, "access_token"),
        ({"access_token": 123, "expires_in": 5}, "access_token"),
        ({"access_token": None, "expires_in": 5}, "access_token"),
        ({"access_token": ["a"], "expires_in": 5}, "access_token"),
        ({"access_token": AT_CANARY, "expires_in": "soon"}, "expires_in"),
        ({"access_token": AT_CANARY, "expires_in": -5}, "expires_in"),
        ({"access_token": AT_CANARY, "expires_in": True}, "expires_in"),
        ({"access_token": AT_CANARY, "expires_in": "nan"}, "expires_in"),
        ({"access_token": AT_CANARY, "expires_in": "inf"}, "expires_in"),
        ({"access_token": AT_CANARY, "expires_in": "1e999"}, "expires_in"),
        ({"access_token": AT_CANARY, "expires_in": [3599]}, "expires_in"),
        ({"access_token": AT_CANARY, "expires_in": {"s": 1}}, "expires_in"),
        ({"access_token": AT_CANARY, "expires_in": 5, "refresh_in": []}, "refresh_in"),
        ({"access_token": AT_CANARY, "expires_in": 5, "ext_expires_in": "x"}, "ext_expires_in"),
        ({"access_token": AT_CANARY, "expires_on": "tomorrow"}, "expires_on"),
        ({"access_token": AT_CANARY, "expires_in": 5, "scope": 5}, "scope"),
        ({"access_token": AT_CANARY, "expires_in": 5, "token_type": 7}, "token_type"),
        ({"access_token": AT_CANARY, "expires_in": 5, "refresh_token": 1}, "refresh_token"),
        ({"access_token": AT_CANARY, "expires_in": 5, "client_info": {}}, "client_info"),
        ({"access_token": 1, "expires_in": "x"}, "access_token, expires_in"),
    ],
)
def test_invalid_token_body_is_malformed_naming_the_field(body: dict[str, Any], fields: str) -> None:
    with pytest.raises(MalformedResponseError) as info:
        parse(body)
    exc = info.value
    assert f"field(s) {fields}." in str(exc)
    assert (exc.status_code, exc.url) == (200, PUBLIC_TOKEN_URL)
    assert exc.__cause__ is None
    assert_no_canary(str(exc), repr(exc))


def test_no_expiry_is_malformed() -> None:
    with pytest.raises(MalformedResponseError, match="expires_in") as info:
        parse({"access_token": AT_CANARY, "token_type": "Bearer"})
    assert_no_canary(str(info.value), repr(info.value))


@pytest.mark.parametrize("content", [b"[]", b'"token"', b"null", b"3599"])
def test_json_non_object_token_body_is_malformed(content: bytes) -> None:
    with pytest.raises(MalformedResponseError, match="not an object"):
        parse(content=content)


def test_query_string_is_not_in_messages() -> None:
    url = PUBLIC_TOKEN_URL + "?secret=" + AT_CANARY
    for status, body in [(200, {}), (200, {"error": 1})]:
        with pytest.raises(ProtocolError) as info:
            parse_token_response(make_response(status, json=body, url=url), requested_at=NOW)
        assert_no_canary(str(info.value), repr(info.value))
