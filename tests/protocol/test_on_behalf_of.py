"""protocol.on_behalf_of: the JWT bearer grant used by a middle tier (RFC 7523 section 2.1)."""

from __future__ import annotations

import httpx
import pytest

from protocol.client_auth import CLIENT_ASSERTION_TYPE, CertificateAssertion, ClientSecret
from protocol.errors import ClaimsChallengeError, OAuthError
from protocol.on_behalf_of import (
    GRANT_TYPE,
    build_on_behalf_of_request,
    on_behalf_of_flow,
    parse_on_behalf_of_response,
)
from protocol.retry import RetryPolicy

from .conftest import Wire
from .helpers import (
    ASSERTION_CANARY,
    AT_CANARY,
    CLIENT_ID,
    NOW,
    PUBLIC_TOKEN_URL,
    SECRET_CANARY,
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

DOWNSTREAM = "https://downstream.contoso.com/.default"
FIELDS = {
    "client_id": CLIENT_ID,
    "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "assertion": ASSERTION_CANARY,
    "requested_token_use": "on_behalf_of",
    "client_info": "1",
    "scope": f"{DOWNSTREAM} openid profile offline_access",
    "client_secret": SECRET_CANARY,
}


def build(**kwargs: object) -> httpx.Request:
    arguments: dict[str, object] = {
        "client_id": CLIENT_ID,
        "user_assertion": ASSERTION_CANARY,
        "scopes": [DOWNSTREAM],
        "client_auth": ClientSecret(SECRET_CANARY),
        "now": NOW,
    }
    arguments.update(kwargs)
    return build_on_behalf_of_request(PUBLIC_TOKEN_URL, **arguments)  # type: ignore[arg-type]


def test_grant_type() -> None:
    assert GRANT_TYPE == "urn:ietf:params:oauth:grant-type:jwt-bearer"


def test_request_with_secret() -> None:
    check_form_post(build(), url=PUBLIC_TOKEN_URL, fields=FIELDS)


def test_request_with_claims() -> None:
    check_form_post(build(claims='{"a":1}'), url=PUBLIC_TOKEN_URL, fields={**FIELDS, "claims": '{"a":1}'})


def test_request_with_certificate(certs: CertMaterial) -> None:
    request = build(client_auth=CertificateAssertion(client_certificate()))
    form = single_form(request)
    assertion = form["client_assertion"]
    expected = {k: v for k, v in FIELDS.items() if k != "client_secret"}
    expected |= {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion}
    check_form_post(request, url=PUBLIC_TOKEN_URL, fields=expected)
    decode_jwt(
        assertion, certs.key.public_key(), algorithm="PS256", audience=PUBLIC_TOKEN_URL, check_times=False
    )
    assert assertion != ASSERTION_CANARY


def test_request_ids_differ() -> None:
    assert build().headers["client-request-id"] != build().headers["client-request-id"]


def test_empty_user_assertion_is_rejected() -> None:
    with pytest.raises(ValueError, match="user assertion"):
        build(user_assertion="")


def test_parse_success_and_consent_error() -> None:
    result = parse_on_behalf_of_response(make_response(200, json=token_body()), requested_at=NOW)
    assert (result.access_token, result.expires_on) == (AT_CANARY, int(NOW) + 3599)
    claims = '{"access_token":{"capolids":{"essential":true,"values":["x"]}}}'
    response = make_response(400, json=error_body("invalid_grant", 53003, claims=claims))
    with pytest.raises(ClaimsChallengeError) as info:
        parse_on_behalf_of_response(response, requested_at=NOW)
    assert info.value.claims == claims


async def test_flow(wire: Wire) -> None:
    wire.router.add("POST", PUBLIC_TOKEN_URL, ok(token_body(refresh_token="CANARY-RT-obo")))
    result = await wire.run(
        on_behalf_of_flow(
            PUBLIC_TOKEN_URL,
            client_id=CLIENT_ID,
            user_assertion=ASSERTION_CANARY,
            scopes=[DOWNSTREAM],
            client_auth=ClientSecret(SECRET_CANARY),
            policy=RetryPolicy(jitter=0.0),
            clock=lambda: NOW,
        )
    )
    assert (result.access_token, result.refresh_token) == (AT_CANARY, "CANARY-RT-obo")
    check_form_post(wire.router.requests[0], url=PUBLIC_TOKEN_URL, fields=FIELDS)


async def test_flow_error_does_not_leak_the_assertion(wire: Wire) -> None:
    wire.router.add("POST", PUBLIC_TOKEN_URL, Reply(400, json=error_body("invalid_grant", 65001)))
    with pytest.raises(OAuthError) as info:
        await wire.run(
            on_behalf_of_flow(
                PUBLIC_TOKEN_URL,
                client_id=CLIENT_ID,
                user_assertion=ASSERTION_CANARY,
                scopes=[DOWNSTREAM],
                client_auth=ClientSecret(SECRET_CANARY),
                policy=RetryPolicy(),
                clock=lambda: NOW,
            )
        )
    assert_no_canary(str(info.value), repr(info.value))
