"""protocol.client_credentials: the app-token request, its parsing and its flow."""

from __future__ import annotations

import httpx
import pytest

from protocol.authority import Authority
from protocol.claims import merge_claims
from protocol.client_auth import CLIENT_ASSERTION_TYPE, AssertionCallable, CertificateAssertion, ClientSecret
from protocol.client_credentials import (
    GRANT_TYPE,
    build_client_credentials_request,
    client_credentials_flow,
    parse_client_credentials_response,
)
from protocol.errors import OAuthError, TransportError
from protocol.responses import TokenResult
from protocol.retry import NO_RETRY, RetryPolicy

from .conftest import Wire
from .helpers import (
    ASSERTION_CANARY,
    AT_CANARY,
    CLIENT_ID,
    NOW,
    PUBLIC_TOKEN_URL,
    SCOPE,
    SECRET_CANARY,
    TENANT,
    CertMaterial,
    Reply,
    assert_no_canary,
    check_form_post,
    client_certificate,
    decode_jwt,
    error_body,
    make_response,
    ok,
    single_form,
    token_body,
)

SECRET_FIELDS = {
    "client_id": CLIENT_ID,
    "grant_type": "client_credentials",
    "scope": SCOPE,
    "client_secret": SECRET_CANARY,
}


def build(**kwargs: object) -> httpx.Request:
    arguments: dict[str, object] = {
        "client_id": CLIENT_ID,
        "scopes": [SCOPE],
        "client_auth": ClientSecret(SECRET_CANARY),
        "now": NOW,
    }
    arguments.update(kwargs)
    return build_client_credentials_request(PUBLIC_TOKEN_URL, **arguments)  # type: ignore[arg-type]


def test_grant_type() -> None:
    assert GRANT_TYPE == "client_credentials"


def test_request_with_secret() -> None:
    check_form_post(build(), url=PUBLIC_TOKEN_URL, fields=SECRET_FIELDS)


def test_two_requests_have_different_request_ids() -> None:
    assert build().headers["client-request-id"] != build().headers["client-request-id"]


def test_request_repr_does_not_show_the_secret() -> None:
    assert_no_canary(repr(build()), str(build().url))


@pytest.mark.parametrize("claims", [None, ""])
def test_no_claims_no_field(claims: str | None) -> None:
    check_form_post(build(claims=claims), url=PUBLIC_TOKEN_URL, fields=SECRET_FIELDS)


def test_claims_are_sent() -> None:
    claims = merge_claims(None, ["CP1"])
    check_form_post(build(claims=claims), url=PUBLIC_TOKEN_URL, fields={**SECRET_FIELDS, "claims": claims})  # type: ignore[dict-item]


def test_scopes_keep_order_and_drop_duplicates() -> None:
    request = build(scopes=["b/.default", "a/.default", "b/.default", ""])
    check_form_post(request, url=PUBLIC_TOKEN_URL, fields={**SECRET_FIELDS, "scope": "b/.default a/.default"})


@pytest.mark.parametrize(
    ("scopes", "message"),
    [
        ([], "At least one scope"),
        ([""], "At least one scope"),
        (["a b"], "whitespace"),
        ([" a"], "whitespace"),
        (["a\t"], "whitespace"),
        (["a\tb"], "whitespace"),
        ([5], "must be a string"),
    ],
)
def test_invalid_scopes(scopes: list[object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(scopes=scopes)


@pytest.mark.parametrize("scope", ["a\nb", "a\rb", "a\u00a0b"])
def test_scope_with_inner_newline_is_rejected(scope: str) -> None:
    with pytest.raises(ValueError, match="whitespace"):
        build(scopes=[scope])


def test_empty_client_id_is_rejected() -> None:
    with pytest.raises(ValueError, match="client_id should be the id of a Microsoft Entra application"):
        build(client_id="")


def test_request_with_certificate(certs: CertMaterial) -> None:
    request = build(client_auth=CertificateAssertion(client_certificate()))
    form = single_form(request)
    assertion = form.pop("client_assertion")
    check_form_post(
        request,
        url=PUBLIC_TOKEN_URL,
        fields={
            "client_id": CLIENT_ID,
            "grant_type": "client_credentials",
            "scope": SCOPE,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )
    decode_jwt(
        assertion, certs.key.public_key(), algorithm="PS256", audience=PUBLIC_TOKEN_URL, check_times=False
    )


def test_explicit_audience_is_used_for_the_assertion(certs: CertMaterial) -> None:
    central = "https://login.microsoftonline.com/t/oauth2/v2.0/token"
    request = build(client_auth=CertificateAssertion(client_certificate()), audience=central)
    assert str(request.url) == PUBLIC_TOKEN_URL
    decode_jwt(
        single_form(request)["client_assertion"],
        certs.key.public_key(),
        algorithm="PS256",
        audience=central,
        check_times=False,
    )


def test_request_with_assertion_callable() -> None:
    request = build(client_auth=AssertionCallable(lambda: ASSERTION_CANARY))
    check_form_post(
        request,
        url=PUBLIC_TOKEN_URL,
        fields={
            "client_id": CLIENT_ID,
            "grant_type": "client_credentials",
            "scope": SCOPE,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": ASSERTION_CANARY,
        },
    )


def test_parse_success() -> None:
    response = make_response(200, json=token_body(expires_in="3599", ext_expires_in=3599))
    result = parse_client_credentials_response(response, requested_at=NOW)
    assert result == TokenResult(
        access_token=AT_CANARY,
        token_type="Bearer",
        expires_on=int(NOW) + 3599,
        refresh_on=None,
        ext_expires_on=int(NOW) + 3599,
        scopes=None,
    )
    assert_no_canary(repr(result))


def test_parse_error() -> None:
    response = make_response(401, json=error_body("invalid_client", 7000215))
    with pytest.raises(OAuthError) as info:
        parse_client_credentials_response(response, requested_at=NOW)
    assert (info.value.error, info.value.error_codes, info.value.status_code) == (
        "invalid_client",
        (7000215,),
        401,
    )


# --------------------------------------------------------------------------- flow


def flow(clock: object = lambda: NOW, **kwargs: object):  # type: ignore[no-untyped-def]
    arguments: dict[str, object] = {
        "client_id": CLIENT_ID,
        "scopes": [SCOPE],
        "client_auth": ClientSecret(SECRET_CANARY),
        "policy": RetryPolicy(jitter=0.0),
        "clock": clock,
    }
    arguments.update(kwargs)
    return client_credentials_flow(Authority.create("login.microsoftonline.com", TENANT), **arguments)  # type: ignore[arg-type]


async def test_flow_success(wire: Wire) -> None:
    wire.router.add("POST", PUBLIC_TOKEN_URL, ok(token_body(expires_in=86399, refresh_in=43200)))
    result = await wire.run(flow())
    assert (result.access_token, result.expires_on, result.refresh_on) == (
        AT_CANARY,
        int(NOW) + 86399,
        int(NOW) + 43200,
    )
    (request,) = wire.router.requests
    check_form_post(request, url=PUBLIC_TOKEN_URL, fields=SECRET_FIELDS)


async def test_flow_with_cae_claims(wire: Wire) -> None:
    claims = merge_claims('{"access_token":{"nbf":{"essential":true,"value":"1"}}}', ["CP1"])
    wire.router.add("POST", PUBLIC_TOKEN_URL, ok(token_body()))
    await wire.run(flow(claims=claims))
    check_form_post(wire.router.requests[0], url=PUBLIC_TOKEN_URL, fields={**SECRET_FIELDS, "claims": claims})  # type: ignore[dict-item]


async def test_flow_expiry_counts_from_the_successful_attempt(wire: Wire) -> None:
    readings = iter(range(1000, 2000, 10))
    wire.router.add("POST", PUBLIC_TOKEN_URL, Reply(503, content=b"busy"), ok(token_body(expires_in=100)))
    result = await wire.run(flow(clock=lambda: float(next(readings))))
    # Attempt 1 builds at 1000, is sent at 1010; the retry reads 1020 for Retry-After; attempt 2 is
    # built at 1030 and sent at 1040.
    assert result.expires_on == 1140


async def test_flow_error_does_not_leak_the_secret(wire: Wire) -> None:
    wire.router.add("POST", PUBLIC_TOKEN_URL, Reply(401, json=error_body("invalid_client", 7000215)))
    with pytest.raises(OAuthError) as info:
        await wire.run(flow())
    assert_no_canary(str(info.value), repr(info.value))


async def test_flow_transport_failure_does_not_leak_the_secret(wire: Wire) -> None:
    wire.router.add("POST", PUBLIC_TOKEN_URL, httpx.ConnectError(f"refused {SECRET_CANARY}"))
    with pytest.raises(TransportError) as info:
        await wire.run(flow(policy=NO_RETRY))
    assert_no_canary(str(info.value), repr(info.value))
