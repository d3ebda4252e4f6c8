"""protocol.refresh_token: redeeming a refresh token (RFC 6749 section 6)."""

from __future__ import annotations

import httpx
import pytest

from protocol.client_auth import ClientSecret
from protocol.errors import InteractionRequiredError, OAuthError, TransportError
from protocol.refresh_token import (
    GRANT_TYPE,
    build_refresh_token_request,
    parse_refresh_token_response,
    refresh_token_flow,
)
from protocol.retry import NO_RETRY, RetryPolicy

from .conftest import Wire
from .helpers import (
    AT_CANARY,
    CLIENT_ID,
    NOW,
    PUBLIC_TOKEN_URL,
    RT_CANARY,
    SECRET_CANARY,
    Reply,
    assert_no_canary,
    check_form_post,
    error_body,
    make_response,
    ok,
    token_body,
)

USER_SCOPE = "https://graph.microsoft.com/User.Read"
FIELDS = {
    "client_id": CLIENT_ID,
    "grant_type": "refresh_token",
    "refresh_token": RT_CANARY,
    "client_info": "1",
    "scope": f"{USER_SCOPE} openid profile offline_access",
}


def build(**kwargs: object) -> httpx.Request:
    arguments: dict[str, object] = {
        "client_id": CLIENT_ID,
        "refresh_token": RT_CANARY,
        "scopes": [USER_SCOPE],
        "now": NOW,
    }
    arguments.update(kwargs)
    return build_refresh_token_request(PUBLIC_TOKEN_URL, **arguments)  # type: ignore[arg-type]


def test_grant_type() -> None:
    assert GRANT_TYPE == "refresh_token"


def test_public_client_request() -> None:
    check_form_post(build(), url=PUBLIC_TOKEN_URL, fields=FIELDS)


def test_confidential_client_request_with_claims() -> None:
    request = build(client_auth=ClientSecret(SECRET_CANARY), claims='{"access_token":{}}')
    check_form_post(
        request,
        url=PUBLIC_TOKEN_URL,
        fields={**FIELDS, "client_secret": SECRET_CANARY, "claims": '{"access_token":{}}'},
    )


def test_reserved_scopes_are_sent_once() -> None:
    request = build(scopes=["offline_access", USER_SCOPE, "openid"])
    check_form_post(
        request,
        url=PUBLIC_TOKEN_URL,
        fields={**FIELDS, "scope": f"offline_access {USER_SCOPE} openid profile"},
    )


def test_request_ids_differ() -> None:
    assert build().headers["client-request-id"] != build().headers["client-request-id"]


def test_empty_refresh_token_is_rejected() -> None:
    with pytest.raises(ValueError, match="refresh token is empty"):
        build(refresh_token="")


def test_parse_rotated_refresh_token() -> None:
    response = make_response(
        200, json=token_body(refresh_token="CANARY-RT-rotated", scope=f"{USER_SCOPE} openid")
    )
    result = parse_refresh_token_response(response, requested_at=NOW)
    assert (result.access_token, result.refresh_token, result.scopes, result.expires_on) == (
        AT_CANARY,
        "CANARY-RT-rotated",
        (USER_SCOPE, "openid"),
        int(NOW) + 3599,
    )


@pytest.mark.parametrize("code", [700082, 70043, 700084, 50173, 50076])
def test_expired_or_revoked_refresh_token_requires_interaction(code: int) -> None:
    response = make_response(400, json=error_body("invalid_grant", code))
    with pytest.raises(InteractionRequiredError) as info:
        parse_refresh_token_response(response, requested_at=NOW)
    assert info.value.error_codes == (code,)


def flow(**kwargs: object):  # type: ignore[no-untyped-def]
    arguments: dict[str, object] = {
        "client_id": CLIENT_ID,
        "refresh_token": RT_CANARY,
        "scopes": [USER_SCOPE],
        "policy": RetryPolicy(jitter=0.0),
        "clock": lambda: NOW,
    }
    arguments.update(kwargs)
    return refresh_token_flow(PUBLIC_TOKEN_URL, **arguments)  # type: ignore[arg-type]


async def test_flow(wire: Wire) -> None:
    wire.router.add("POST", PUBLIC_TOKEN_URL, ok(token_body(refresh_token="CANARY-RT-new")))
    result = await wire.run(flow())
    assert (result.access_token, result.refresh_token) == (AT_CANARY, "CANARY-RT-new")
    check_form_post(wire.router.requests[0], url=PUBLIC_TOKEN_URL, fields=FIELDS)


async def test_flow_invalid_grant_is_not_retried_and_does_not_leak(wire: Wire) -> None:
    wire.router.add("POST", PUBLIC_TOKEN_URL, Reply(400, json=error_body("invalid_grant", 70000)))
    with pytest.raises(OAuthError) as info:
        await wire.run(flow())
    assert len(wire.router.requests) == 1
    assert_no_canary(str(info.value), repr(info.value))


async def test_flow_transport_error_does_not_leak(wire: Wire) -> None:
    wire.router.add("POST", PUBLIC_TOKEN_URL, httpx.ReadTimeout("slow"))
    with pytest.raises(TransportError) as info:
        await wire.run(flow(policy=NO_RETRY))
    assert_no_canary(str(info.value), repr(info.value))
