"""protocol.authorization_code: the authorize URL, the redirect check, and code redemption."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from protocol.authorization_code import (
    GRANT_TYPE,
    AuthorizationResponseError,
    authorization_code_flow,
    build_authorization_code_request,
    build_authorization_url,
    parse_authorization_code_response,
    parse_authorization_response,
)
from protocol.client_auth import ClientSecret
from protocol.errors import InteractionRequiredError, OAuthError, ProtocolError
from protocol.pkce import new_nonce, new_pkce, new_state
from protocol.retry import RetryPolicy

from .conftest import Wire
from .helpers import (
    AT_CANARY,
    CLIENT_ID,
    CODE_CANARY,
    NOW,
    PUBLIC_TOKEN_URL,
    SECRET_CANARY,
    TENANT,
    VERIFIER_CANARY,
    Reply,
    assert_no_canary,
    check_form_post,
    error_body,
    make_response,
    ok,
    token_body,
)

AUTHORIZE = f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/authorize"
REDIRECT = "http://localhost:8400"
USER_SCOPE = "https://graph.microsoft.com/User.Read"


def split(url: str) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(url)
    return parts._replace(query="").geturl(), parse_qs(
        parts.query, keep_blank_values=True, strict_parsing=True
    )


def authorize_url(**kwargs: object) -> str:
    arguments: dict[str, object] = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scopes": [USER_SCOPE],
        "state": "state-1",
        "nonce": "nonce-1",
        "code_challenge": "challenge-1",
    }
    arguments.update(kwargs)
    return build_authorization_url(AUTHORIZE, **arguments)  # type: ignore[arg-type]


BASE_QUERY = {
    "client_id": [CLIENT_ID],
    "response_type": ["code"],
    "redirect_uri": [REDIRECT],
    "scope": [f"{USER_SCOPE} openid profile offline_access"],
    "state": ["state-1"],
    "nonce": ["nonce-1"],
    "code_challenge": ["challenge-1"],
    "code_challenge_method": ["S256"],
    "client_info": ["1"],
}


def test_grant_type() -> None:
    assert GRANT_TYPE == "authorization_code"


def test_authorization_url_parameters_are_exact() -> None:
    assert split(authorize_url()) == (AUTHORIZE, BASE_QUERY)


def test_authorization_url_options() -> None:
    url = authorize_url(
        prompt="select_account",
        login_hint="someone@contoso.com",
        domain_hint="contoso.com",
        claims='{"access_token":{"xms_cc":{"values":["CP1"]}}}',
        response_mode="form_post",
    )
    assert split(url) == (
        AUTHORIZE,
        {
            **BASE_QUERY,
            "prompt": ["select_account"],
            "login_hint": ["someone@contoso.com"],
            "domain_hint": ["contoso.com"],
            "claims": ['{"access_token":{"xms_cc":{"values":["CP1"]}}}'],
            "response_mode": ["form_post"],
        },
    )


def test_reserved_scopes_appear_once() -> None:
    url = authorize_url(scopes=["openid", USER_SCOPE, "offline_access", "profile"])
    scope = split(url)[1]["scope"][0].split(" ")
    assert scope == ["openid", USER_SCOPE, "offline_access", "profile"]


def test_endpoint_with_query_keeps_it() -> None:
    url = build_authorization_url(
        AUTHORIZE + "?slice=testslice",
        client_id=CLIENT_ID,
        redirect_uri=REDIRECT,
        scopes=[USER_SCOPE],
        state="state-1",
        nonce="nonce-1",
        code_challenge="challenge-1",
    )
    assert split(url) == (AUTHORIZE, {"slice": ["testslice"], **BASE_QUERY})


def test_authorization_url_with_real_pkce_state_and_nonce() -> None:
    pkce, state, nonce = new_pkce(), new_state(), new_nonce()
    url = authorize_url(state=state, nonce=nonce, code_challenge=pkce.challenge)
    query = split(url)[1]
    assert (query["state"], query["nonce"], query["code_challenge"]) == ([state], [nonce], [pkce.challenge])
    assert pkce.verifier not in url


# --------------------------------------------------------------------------- the redirect


def test_good_response() -> None:
    result = parse_authorization_response(
        {"code": CODE_CANARY, "state": "state-1", "client_info": "eyJ1aWQiOiJ1In0", "session_state": "s"},
        expected_state="state-1",
    )
    assert (result.code, result.client_info) == (CODE_CANARY, "eyJ1aWQiOiJ1In0")


@pytest.mark.parametrize(
    "params",
    [
        {"code": CODE_CANARY, "state": "other"},
        {"code": CODE_CANARY, "state": ""},
        {"code": CODE_CANARY, "state": "state-1x"},
        {"code": CODE_CANARY},
        {"code": CODE_CANARY, "state": "STATE-1"},
        {"error": "access_denied", "state": "forged"},
    ],
)
def test_wrong_or_missing_state_refuses_the_code(params: dict[str, str]) -> None:
    with pytest.raises(AuthorizationResponseError, match="'state' does not match") as info:
        parse_authorization_response(params, expected_state="state-1")
    assert isinstance(info.value, ProtocolError)
    assert_no_canary(str(info.value), repr(info.value))


@pytest.mark.parametrize(
    ("params", "message", "description"),
    [
        (
            {"error": "access_denied", "error_description": "AADSTS65004: User declined.\r\nTrace ID: x"},
            "access_denied: AADSTS65004: User declined.",
            "AADSTS65004: User declined.\r\nTrace ID: x",
        ),
        ({"error": "interaction_required"}, "interaction_required", ""),
        ({"error": "", "error_description": ""}, "unknown_error", ""),
        ({"error": "server_error", "code": CODE_CANARY}, "server_error", ""),
    ],
)
def test_error_response_is_oauth_error(params: dict[str, str], message: str, description: str) -> None:
    with pytest.raises(OAuthError) as info:
        parse_authorization_response({**params, "state": "state-1"}, expected_state="state-1")
    assert (str(info.value), info.value.error_description) == (message, description)
    assert_no_canary(str(info.value), repr(info.value))


@pytest.mark.parametrize("params", [{"state": "state-1"}, {"state": "state-1", "code": ""}])
def test_neither_code_nor_error(params: dict[str, str]) -> None:
    with pytest.raises(AuthorizationResponseError, match="neither a 'code' nor an 'error'"):
        parse_authorization_response(params, expected_state="state-1")


# --------------------------------------------------------------------------- redemption

FIELDS = {
    "client_id": CLIENT_ID,
    "grant_type": "authorization_code",
    "code": CODE_CANARY,
    "redirect_uri": REDIRECT,
    "code_verifier": VERIFIER_CANARY,
    "client_info": "1",
    "scope": f"{USER_SCOPE} openid profile offline_access",
}


def build(**kwargs: object) -> httpx.Request:
    arguments: dict[str, object] = {
        "client_id": CLIENT_ID,
        "code": CODE_CANARY,
        "redirect_uri": REDIRECT,
        "scopes": [USER_SCOPE],
        "now": NOW,
        "code_verifier": VERIFIER_CANARY,
    }
    arguments.update(kwargs)
    return build_authorization_code_request(PUBLIC_TOKEN_URL, **arguments)  # type: ignore[arg-type]


def test_redemption_request() -> None:
    check_form_post(build(), url=PUBLIC_TOKEN_URL, fields=FIELDS)


def test_redemption_without_verifier_sends_no_verifier_field() -> None:
    fields = {k: v for k, v in FIELDS.items() if k != "code_verifier"}
    check_form_post(build(code_verifier=None), url=PUBLIC_TOKEN_URL, fields=fields)


def test_confidential_redemption_with_claims() -> None:
    check_form_post(
        build(client_auth=ClientSecret(SECRET_CANARY), claims='{"c":1}'),
        url=PUBLIC_TOKEN_URL,
        fields={**FIELDS, "client_secret": SECRET_CANARY, "claims": '{"c":1}'},
    )


def test_empty_code_is_rejected() -> None:
    with pytest.raises(ValueError, match="authorization code is empty"):
        build(code="")


def test_parse_redemption() -> None:
    result = parse_authorization_code_response(
        make_response(200, json=token_body(refresh_token="CANARY-RT-ac", id_token="CANARY-IDT-ac")),
        requested_at=NOW,
    )
    assert (result.access_token, result.refresh_token, result.id_token) == (
        AT_CANARY,
        "CANARY-RT-ac",
        "CANARY-IDT-ac",
    )
    with pytest.raises(InteractionRequiredError):
        parse_authorization_code_response(
            make_response(400, json=error_body("invalid_grant", 50076)), requested_at=NOW
        )


def flow(**kwargs: object):  # type: ignore[no-untyped-def]
    arguments: dict[str, object] = {
        "client_id": CLIENT_ID,
        "code": CODE_CANARY,
        "redirect_uri": REDIRECT,
        "scopes": [USER_SCOPE],
        "policy": RetryPolicy(jitter=0.0),
        "clock": lambda: NOW,
        "code_verifier": VERIFIER_CANARY,
    }
    arguments.update(kwargs)
    return authorization_code_flow(PUBLIC_TOKEN_URL, **arguments)  # type: ignore[arg-type]


async def test_flow(wire: Wire) -> None:
    wire.router.add("POST", PUBLIC_TOKEN_URL, ok(token_body(refresh_token="CANARY-RT-x")))
    result = await wire.run(flow())
    assert (result.access_token, result.expires_on) == (AT_CANARY, int(NOW) + 3599)
    check_form_post(wire.router.requests[0], url=PUBLIC_TOKEN_URL, fields=FIELDS)


async def test_flow_invalid_grant_is_sent_once_and_does_not_leak(wire: Wire) -> None:
    wire.router.add("POST", PUBLIC_TOKEN_URL, Reply(400, json=error_body("invalid_grant", 70008)))
    with pytest.raises(OAuthError) as info:
        await wire.run(flow())
    assert len(wire.router.requests) == 1
    assert_no_canary(str(info.value), repr(info.value))
