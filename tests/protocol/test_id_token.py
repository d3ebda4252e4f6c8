"""protocol.id_token: ID tokens from the token endpoint are decoded, their audience and nonce
checked, and anything malformed is a MalformedResponseError that never quotes the token."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import MalformedResponseError
from protocol.id_token import IdTokenMismatchError, decode_jwt_payload, parse_id_token

CLIENT = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
TENANT = "7f3c1a52-9d4e-4b8a-a1c6-2e5f0b9d8c31"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims: Any, *, header: Any = None) -> str:
    head = b64(json.dumps(header or {"alg": "RS256", "typ": "JWT"}).encode())
    return f"{head}.{b64(json.dumps(claims).encode())}.c2lnbmF0dXJl"


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
        "aud": CLIENT,
        "sub": "pairwise-subject",
        "oid": "11111111-2222-3333-4444-555555555555",
        "tid": TENANT,
        "preferred_username": "user@contoso.com",
        "name": "A User",
        "nonce": "n-0S6_WzA2Mj",
        "exp": 1_900_000_000,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_an_entra_id_token_gives_the_account_fields() -> None:
    parsed = parse_id_token(jwt(claims()), client_id=CLIENT, nonce="n-0S6_WzA2Mj")
    assert (parsed.object_id, parsed.tenant_id, parsed.username, parsed.name) == (
        "11111111-2222-3333-4444-555555555555",
        TENANT,
        "user@contoso.com",
        "A User",
    )
    assert (parsed.subject, parsed.nonce, parsed.expires_on, parsed.audience) == (
        "pairwise-subject",
        "n-0S6_WzA2Mj",
        1_900_000_000,
        CLIENT,
    )
    assert "claims=" not in repr(parsed)  # the raw claims stay out of logs


def test_username_falls_back_to_upn_and_ids_to_sub_and_the_issuer() -> None:
    token = jwt(
        claims(
            preferred_username=None,
            upn="legacy@contoso.com",
            oid=None,
            tid=None,
            iss="https://sts.windows.net/9188040d-6c67-4c5b-b112-36a304b66dad/",
        )
    )
    parsed = parse_id_token(token, client_id=CLIENT)
    assert parsed.username == "legacy@contoso.com"
    assert parsed.object_id == "pairwise-subject"
    assert parsed.tenant_id == "9188040d-6c67-4c5b-b112-36a304b66dad"


def test_no_username_at_all_is_an_empty_username() -> None:
    parsed = parse_id_token(jwt(claims(preferred_username=None)), client_id=CLIENT)
    assert parsed.username == ""


def test_an_audience_list_holding_our_client_is_accepted() -> None:
    parsed = parse_id_token(jwt(claims(aud=["other", CLIENT])), client_id=CLIENT)
    assert parsed.audience == CLIENT


def test_another_applications_token_is_refused() -> None:
    with pytest.raises(IdTokenMismatchError) as raised:
        parse_id_token(jwt(claims(aud="someone-else")), client_id=CLIENT)
    assert "issued to another application" in str(raised.value)
    assert "'someone-else'" in str(raised.value)


@pytest.mark.parametrize("token_nonce", ["another-nonce", None])
def test_a_nonce_that_is_not_ours_is_refused(token_nonce: str | None) -> None:
    token = jwt(claims(nonce=token_nonce))
    with pytest.raises(IdTokenMismatchError) as raised:
        parse_id_token(token, client_id=CLIENT, nonce="n-0S6_WzA2Mj")
    assert "nonce does not match" in str(raised.value)
    assert token not in str(raised.value)


def test_without_an_expected_nonce_any_nonce_is_accepted() -> None:
    assert parse_id_token(jwt(claims(nonce="whatever")), client_id=CLIENT).nonce == "whatever"


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("only.two", "not a JWT (expected 3 dot-separated parts, got 2)"),
        ("a..c", "not a JWT"),
        ("a.!!!.c", "not base64url-encoded JSON"),
        (f"a.{b64(b'[1, 2]')}.c", "not a JSON object"),
        (f"a.{b64(b'not json')}.c", "not base64url-encoded JSON"),
    ],
)
def test_malformed_tokens_are_named(token: str, expected: str) -> None:
    with pytest.raises(MalformedResponseError) as raised:
        parse_id_token(token, client_id=CLIENT)
    assert expected in str(raised.value)


def test_every_bad_claim_is_named_at_once() -> None:
    token = jwt({"iss": 5, "aud": 7, "exp": "soon", "preferred_username": ["x"]})
    with pytest.raises(MalformedResponseError) as raised:
        parse_id_token(token, client_id=CLIENT)
    message = str(raised.value)
    for name in (
        "iss (not a non-empty string)",
        "oid / sub (neither is present)",
        "aud",
        "exp",
        "preferred_username",
    ):
        assert name in message


def test_a_canary_token_never_appears_in_errors() -> None:
    canary = "CANARY-ID-TOKEN-SECRET"
    token = jwt(claims(aud="other", secret=canary))
    with pytest.raises(IdTokenMismatchError) as raised:
        parse_id_token(token, client_id=CLIENT)
    assert canary not in str(raised.value)
    assert token not in str(raised.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@given(st.text(max_size=200))
def test_any_string_parses_or_raises_a_protocol_error(text: str) -> None:
    with contextlib.suppress(MalformedResponseError, IdTokenMismatchError):
        parse_id_token(text, client_id=CLIENT)


@given(st.dictionaries(st.sampled_from([*claims(), "upn", "extra"]), json_values, max_size=12))
def test_any_json_payload_parses_or_raises_a_protocol_error(payload: dict[str, Any]) -> None:
    token = jwt(payload)
    failure = ""
    try:
        parsed = parse_id_token(token, client_id=CLIENT, nonce="n")
    except (MalformedResponseError, IdTokenMismatchError) as exc:
        failure = str(exc)
    if failure:
        assert token not in failure
    else:
        assert parsed.audience == CLIENT
        assert parsed.nonce == "n"
        assert parsed.object_id


@given(json_values)
def test_decode_accepts_only_objects(value: Any) -> None:
    token = f"h.{b64(json.dumps(value).encode())}.s"
    if isinstance(value, dict):
        assert decode_jwt_payload(token) == value
    else:
        with pytest.raises(MalformedResponseError):
            decode_jwt_payload(token)
