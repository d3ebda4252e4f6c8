"""Property tests: every parser of network input fails only with ``ProtocolError`` (or not at all).

Inputs are arbitrary bytes, arbitrary JSON values, and objects with the right keys holding values
of arbitrary types, under arbitrary status codes and ``Retry-After`` headers. Successful results
must have sane types.

The generators include the hostile shapes that once escaped as foreign exceptions: JSON nested
tens of thousands deep, ``Retry-After`` dates with years beyond a C long, and URLs with an
unbalanced ``[``.
"""

from __future__ import annotations

import base64
import json
import math
import string
from typing import Any
from urllib.parse import urlsplit

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.authority import Authority, Endpoints
from protocol.device_code import (
    DeviceCode,
    Pending,
    parse_device_code_response,
    parse_device_code_token_response,
)
from protocol.discovery import (
    UntrustedAuthorityError,
    parse_instance_discovery_response,
    parse_openid_configuration_response,
)
from protocol.errors import ProtocolError
from protocol.responses import TokenResult, decode_client_info, parse_token_response
from protocol.retry import parse_retry_after
from protocol.wire import read_json_object

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NOW = 1_700_000_000.5
URL = "https://login.contoso.com/tenant/oauth2/v2.0/token"
AUTHORITY = Authority.create("https://login.contoso.com", "tenant")

# --------------------------------------------------------------------------- strategies

statuses = st.integers(min_value=100, max_value=599)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
numbers = st.one_of(
    st.integers(min_value=-10, max_value=10**12),
    st.integers(min_value=-10, max_value=10**6).map(str),
    st.floats(min_value=-10, max_value=1e9).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e999", " 42 ", "4_2", "", "0x10", "\uff11\uff12"]),
)
safe_url_text = st.text(
    alphabet=string.ascii_letters + string.digits + "-._~:/?#@!$&'()*+,;=%[]", max_size=30
)
urls = st.one_of(
    st.tuples(
        st.sampled_from(["https://", "http://", "", "HTTPS://", "ftp://", "https:///"]), safe_url_text
    ).map("".join),
    json_values,
)
months = st.sampled_from(["Jan", "Feb", "Mar", "Dec", "Foo"])
http_dates = st.builds(
    "{}, {:02d} {} {} {:02d}:{:02d}:{:02d} {}".format,
    st.sampled_from(["Mon", "Tue", "Sun", "Xyz"]),
    st.integers(0, 40),
    months,
    st.one_of(st.integers(0, 10**6), st.integers(10**18, 10**30)),
    st.integers(0, 30),
    st.integers(0, 70),
    st.integers(0, 70),
    st.sampled_from(["GMT", "UTC", "+0000", "-0800", "+9999", "-9999", "", "EST", "+99999999"]),
)
header_values = st.one_of(
    st.text(alphabet=string.printable, max_size=30),
    numbers.map(str).filter(str.isascii),
    http_dates,
)
retry_headers = st.dictionaries(
    st.sampled_from(["retry-after", "retry-after-ms", "x-ms-retry-after-ms", "content-type"]),
    header_values,
    max_size=4,
)


def optional_fields(fields: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with any subset of ``fields``, each holding a plausible value or any JSON value."""
    return st.fixed_dictionaries(
        {}, optional={name: st.one_of(value, json_values) for name, value in fields.items()}
    )


token_objects = optional_fields(
    {
        "access_token": st.text(max_size=10),
        "token_type": st.sampled_from(["Bearer", "pop", ""]),
        "expires_in": numbers,
        "expires_on": numbers,
        "ext_expires_in": numbers,
        "refresh_in": numbers,
        "scope": st.text(max_size=20),
        "refresh_token": st.text(max_size=10),
        "id_token": st.text(max_size=10),
        "client_info": st.one_of(
            st.text(max_size=20),
            json_values.map(lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).decode().rstrip("=")),
        ),
        "foci": st.sampled_from(["1", ""]),
    }
)
error_objects = optional_fields(
    {
        "error": st.sampled_from(
            [
                "invalid_grant",
                "interaction_required",
                "authorization_pending",
                "slow_down",
                "expired_token",
                "authorization_declined",
                "bad_verification_code",
                "invalid_instance",
                "",
            ]
        ),
        "error_description": st.text(max_size=30),
        "error_codes": st.lists(st.integers(min_value=0, max_value=10**7), max_size=3),
        "timestamp": st.text(max_size=10),
        "trace_id": st.text(max_size=10),
        "correlation_id": st.text(max_size=10),
        "suberror": st.text(max_size=10),
        "claims": st.text(max_size=10),
        "error_uri": st.text(max_size=10),
    }
)
device_objects = optional_fields(
    {
        "device_code": st.text(max_size=10),
        "user_code": st.text(max_size=10),
        "verification_uri": st.text(max_size=20),
        "verification_url": st.text(max_size=20),
        "verification_uri_complete": st.text(max_size=20),
        "expires_in": numbers,
        "interval": numbers,
        "message": st.text(max_size=20),
    }
)
metadata_objects = optional_fields(
    {
        "token_endpoint": urls,
        "authorization_endpoint": urls,
        "device_authorization_endpoint": urls,
        "issuer": urls,
    }
)
instance_objects = optional_fields({"tenant_discovery_endpoint": urls, "error": st.just("invalid_instance")})


def merged(*strategies: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.tuples(*strategies).map(lambda parts: {k: v for part in parts for k, v in part.items()})


def encoded(values: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return values.map(lambda value: json.dumps(value).encode("utf-8"))


bodies_of = {
    "bytes": st.binary(max_size=200),
    "json": encoded(json_values),
}


def response(status: int, content: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=content, headers=headers, request=httpx.Request("POST", URL))


# --------------------------------------------------------------------------- checks


def check_token_result(result: object) -> None:
    assert isinstance(result, TokenResult)
    assert isinstance(result.access_token, str)
    assert result.access_token
    assert isinstance(result.token_type, str)
    assert result.token_type
    assert type(result.expires_on) is int
    assert result.refresh_on is None or type(result.refresh_on) is int
    assert result.ext_expires_on is None or type(result.ext_expires_on) is int
    assert result.scopes is None or all(isinstance(s, str) and s and s.split() == [s] for s in result.scopes)
    assert result.refresh_token is None or (isinstance(result.refresh_token, str) and result.refresh_token)
    assert result.id_token is None or (isinstance(result.id_token, str) and result.id_token)
    assert result.home_account_id is None or (
        isinstance(result.home_account_id, str) and "." in result.home_account_id
    )
    assert result.foci is None or isinstance(result.foci, str)


def check_token_parse(resp: httpx.Response) -> None:
    try:
        result = parse_token_response(resp, requested_at=NOW)
    except ProtocolError:
        return
    check_token_result(result)


def check_device_parse(resp: httpx.Response) -> None:
    try:
        result = parse_device_code_response(resp, requested_at=NOW)
    except ProtocolError:
        return
    assert isinstance(result, DeviceCode)
    for text in (result.device_code, result.user_code, result.verification_uri, result.message):
        assert isinstance(text, str)
        assert text
    assert type(result.expires_on) is int
    assert type(result.interval) is int
    assert result.interval >= 0
    assert result.verification_uri_complete is None or isinstance(result.verification_uri_complete, str)


def check_device_token_parse(resp: httpx.Response) -> None:
    try:
        result = parse_device_code_token_response(resp, requested_at=NOW)
    except ProtocolError:
        return
    if isinstance(result, Pending):
        assert isinstance(result.slow_down, bool)
    else:
        check_token_result(result)


def is_https(url: object) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme.lower() == "https" and bool(parts.hostname)


def check_metadata_parse(resp: httpx.Response) -> None:
    try:
        result = parse_openid_configuration_response(resp)
    except ProtocolError:
        return
    assert isinstance(result, Endpoints)
    assert is_https(result.token_endpoint)
    assert result.authorization_endpoint == "" or is_https(result.authorization_endpoint)
    assert result.device_authorization_endpoint is None or is_https(result.device_authorization_endpoint)
    assert result.issuer is None or isinstance(result.issuer, str)


def check_instance_parse(resp: httpx.Response) -> None:
    try:
        result = parse_instance_discovery_response(resp, authority=AUTHORITY)
    except (ProtocolError, UntrustedAuthorityError):
        return
    assert is_https(result)


def check_read_json(resp: httpx.Response) -> None:
    try:
        result = read_json_object(resp)
    except ProtocolError:
        return
    assert result is None or isinstance(result, dict)


PARSERS = [
    check_token_parse,
    check_device_parse,
    check_device_token_parse,
    check_metadata_parse,
    check_instance_parse,
    check_read_json,
]


# --------------------------------------------------------------------------- arbitrary bytes / JSON


deeply_nested = st.builds(
    lambda depth, opener, inner: opener * depth + inner,
    st.integers(1_000, 100_000),
    st.sampled_from([b"[", b'{"a":', b'{"access_token":"x","client_info":']),
    st.sampled_from([b"", b"1", b"]"]),
)


@PROPERTY
@given(status=statuses, content=st.one_of(st.binary(max_size=300), deeply_nested), headers=retry_headers)
def test_every_parser_on_arbitrary_bytes(status: int, content: bytes, headers: dict[str, str]) -> None:
    for check in PARSERS:
        check(response(status, content, headers))


@PROPERTY
@given(status=statuses, content=encoded(json_values), headers=retry_headers)
def test_every_parser_on_arbitrary_json(status: int, content: bytes, headers: dict[str, str]) -> None:
    for check in PARSERS:
        check(response(status, content, headers))


# --------------------------------------------------------------------------- right keys, any types


@PROPERTY
@given(status=statuses, body=merged(token_objects, error_objects), headers=retry_headers)
def test_parse_token_response_on_token_and_error_shapes(
    status: int, body: dict[str, Any], headers: dict[str, str]
) -> None:
    check_token_parse(response(status, json.dumps(body).encode(), headers))


@PROPERTY
@given(body=token_objects)
def test_parse_token_response_on_token_shapes_with_200(body: dict[str, Any]) -> None:
    check_token_parse(response(200, json.dumps(body).encode()))


@PROPERTY
@given(
    status=statuses,
    body=st.one_of(device_objects, merged(device_objects, error_objects)),
    headers=retry_headers,
)
def test_parse_device_code_response_on_device_shapes(
    status: int, body: dict[str, Any], headers: dict[str, str]
) -> None:
    check_device_parse(response(status, json.dumps(body).encode(), headers))


@PROPERTY
@given(body=device_objects)
def test_parse_device_code_response_on_device_shapes_with_200(body: dict[str, Any]) -> None:
    check_device_parse(response(200, json.dumps(body).encode()))


@PROPERTY
@given(
    status=statuses,
    body=st.one_of(error_objects, token_objects, merged(token_objects, error_objects)),
    headers=retry_headers,
)
def test_parse_device_code_token_response_on_poll_shapes(
    status: int, body: dict[str, Any], headers: dict[str, str]
) -> None:
    check_device_token_parse(response(status, json.dumps(body).encode(), headers))


@PROPERTY
@given(
    status=statuses,
    body=st.one_of(metadata_objects, merged(metadata_objects, error_objects)),
    headers=retry_headers,
)
def test_parse_openid_configuration_response_on_metadata_shapes(
    status: int, body: dict[str, Any], headers: dict[str, str]
) -> None:
    check_metadata_parse(response(status, json.dumps(body).encode(), headers))


@PROPERTY
@given(body=metadata_objects)
def test_parse_openid_configuration_response_on_metadata_shapes_with_200(body: dict[str, Any]) -> None:
    check_metadata_parse(response(200, json.dumps(body).encode()))


@PROPERTY
@given(
    status=statuses,
    body=st.one_of(instance_objects, merged(instance_objects, error_objects)),
    headers=retry_headers,
)
def test_parse_instance_discovery_response_on_discovery_shapes(
    status: int, body: dict[str, Any], headers: dict[str, str]
) -> None:
    check_instance_parse(response(status, json.dumps(body).encode(), headers))


@PROPERTY
@given(status=statuses, body=st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_read_json_object_returns_the_object(status: int, body: dict[str, Any]) -> None:
    content = json.dumps(body).encode()
    try:
        result = read_json_object(response(status, content))
    except ProtocolError:
        return
    assert result is not None
    assert json.dumps(result) == json.dumps(json.loads(content))


# --------------------------------------------------------------------------- client_info and Retry-After


def _check_client_info(value: str) -> None:
    result = decode_client_info(value)
    assert result is None or (isinstance(result, str) and "." in result)


@PROPERTY
@given(value=st.text(max_size=60))
def test_decode_client_info_on_arbitrary_text(value: str) -> None:
    _check_client_info(value)


@PROPERTY
@given(raw=st.binary(max_size=80), strip=st.booleans())
def test_decode_client_info_on_base64_of_arbitrary_bytes(raw: bytes, strip: bool) -> None:
    value = base64.urlsafe_b64encode(raw).decode()
    _check_client_info(value.rstrip("=") if strip else value)


@PROPERTY
@given(
    data=st.one_of(
        json_values,
        st.fixed_dictionaries({}, optional={"uid": json_values, "utid": json_values}),
        st.fixed_dictionaries({"uid": st.text(max_size=8), "utid": st.text(max_size=8)}),
    ),
    strip=st.booleans(),
)
def test_decode_client_info_on_encoded_json(data: Any, strip: bool) -> None:
    value = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
    value = value.rstrip("=") if strip else value
    result = decode_client_info(value)
    if isinstance(data, dict) and isinstance(data.get("uid"), str) and isinstance(data.get("utid"), str):
        expected = f"{data['uid']}.{data['utid']}" if data["uid"] and data["utid"] else None
        assert result == expected
    else:
        assert result is None


def _check_retry_after(result: float | None) -> None:
    assert result is None or (isinstance(result, float) and math.isfinite(result) and result >= 0)


@PROPERTY
@given(
    headers=st.dictionaries(
        st.sampled_from(["retry-after", "retry-after-ms", "x-ms-retry-after-ms", "other"]),
        st.one_of(st.text(max_size=40), header_values),
        max_size=4,
    ),
    now=st.one_of(st.none(), st.floats(min_value=0, max_value=4e9)),
)
def test_parse_retry_after_never_raises(headers: dict[str, str], now: float | None) -> None:
    _check_retry_after(parse_retry_after(headers, now=now))


@PROPERTY
@given(headers=retry_headers)
def test_parse_retry_after_on_httpx_headers(headers: dict[str, str]) -> None:
    _check_retry_after(parse_retry_after(httpx.Headers(headers), now=NOW))
