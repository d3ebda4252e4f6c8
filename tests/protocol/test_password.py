"""protocol.password: the resource owner password credentials grant (RFC 6749 section 4.3)."""

from __future__ import annotations

import httpx
import pytest

from protocol.client_auth import ClientSecret
from protocol.errors import OAuthError, TransportError
from protocol.password import GRANT_TYPE, build_password_request, parse_password_response, password_flow
from protocol.retry import NO_RETRY, RetryPolicy

from .conftest import Wire
from .helpers import (
    AT_CANARY,
    CLIENT_ID,
    NOW,
    PASSWORD_CANARY,
    PUBLIC_TOKEN_URL,
    SECRET_CANARY,
    Reply,
    assert_no_canary,
    check_form_post,
    error_body,
    make_response,
    ok,
    token_body,
)

USERNAME = "someone@contoso.com"
USER_SCOPE = "https://graph.microsoft.com/User.Read"
FIELDS = {
    "client_id": CLIENT_ID,
    "grant_type": "password",
    "username": USERNAME,
    "password": PASSWORD_CANARY,
    "client_info": "1",
    "scope": f"{USER_SCOPE} openid profile offline_access",
}
ANCHOR = {"X-AnchorMailbox": f"upn:{USERNAME}"}


def build(**kwargs: object) -> httpx.Request:
    arguments: dict[str, object] = {
        "client_id": CLIENT_ID,
        "username": USERNAME,
        "password": PASSWORD_CANARY,
        "scopes": [USER_SCOPE],
        "now": NOW,
    }
    arguments.update(kwargs)
    return build_password_request(PUBLIC_TOKEN_URL, **arguments)  # type: ignore[arg-type]


def test_grant_type() -> None:
    assert GRANT_TYPE == "password"


def test_public_client_request() -> None:
    check_form_post(build(), url=PUBLIC_TOKEN_URL, fields=FIELDS, headers=ANCHOR)


def test_confidential_client_request_with_claims() -> None:
    check_form_post(
        build(client_auth=ClientSecret(SECRET_CANARY), claims='{"x":1}'),
        url=PUBLIC_TOKEN_URL,
        fields={**FIELDS, "client_secret": SECRET_CANARY, "claims": '{"x":1}'},
        headers=ANCHOR,
    )


def test_request_ids_differ() -> None:
    assert build().headers["client-request-id"] != build().headers["client-request-id"]


@pytest.mark.parametrize(("username", "password"), [("", PASSWORD_CANARY), (USERNAME, ""), ("", "")])
def test_username_and_password_are_required(username: str, password: str) -> None:
    with pytest.raises(ValueError, match="username and a password") as info:
        build(username=username, password=password)
    assert_no_canary(str(info.value))


def test_parse_bad_password() -> None:
    response = make_response(400, json=error_body("invalid_grant", 50126))
    with pytest.raises(OAuthError) as info:
        parse_password_response(response, requested_at=NOW)
    assert (type(info.value), info.value.error_codes) == (OAuthError, (50126,))
    assert_no_canary(str(info.value))


async def test_flow(wire: Wire) -> None:
    wire.router.add("POST", PUBLIC_TOKEN_URL, ok(token_body()))
    result = await wire.run(
        password_flow(
            PUBLIC_TOKEN_URL,
            client_id=CLIENT_ID,
            username=USERNAME,
            password=PASSWORD_CANARY,
            scopes=[USER_SCOPE],
            policy=RetryPolicy(),
            clock=lambda: NOW,
        )
    )
    assert result.access_token == AT_CANARY
    check_form_post(wire.router.requests[0], url=PUBLIC_TOKEN_URL, fields=FIELDS, headers=ANCHOR)


@pytest.mark.parametrize(
    "answer", [Reply(400, json=error_body("invalid_grant", 50126)), httpx.ConnectError("x")]
)
async def test_flow_failures_do_not_leak_the_password(wire: Wire, answer: object) -> None:
    wire.router.add("POST", PUBLIC_TOKEN_URL, answer)  # type: ignore[arg-type]
    with pytest.raises((OAuthError, TransportError)) as info:
        await wire.run(
            password_flow(
                PUBLIC_TOKEN_URL,
                client_id=CLIENT_ID,
                username=USERNAME,
                password=PASSWORD_CANARY,
                scopes=[USER_SCOPE],
                policy=NO_RETRY,
                clock=lambda: NOW,
            )
        )
    assert_no_canary(str(info.value), repr(info.value))
