"""AuthorizationCodeCredential against the mock authority, sync and async: the code redeemed once
(with PKCE's verifier, or a client secret), then the account's refresh token only."""

from __future__ import annotations

from typing import Any

import pytest

import identity
import identity.aio
from conformance.authority import DEFAULT_TENANT, DEFAULT_USERNAME, MockAuthority
from protocol.pkce import new_pkce

VAULT = "https://vault.azure.net/.default"
STORAGE = "https://storage.azure.com/.default"
WEB_APP = "5b0c6a1e-7d2f-4c3b-9a8e-1f2d3c4b5a69"
WEB_SECRET = "CANARY-web-app-secret-7a1"
NATIVE_APP = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
REDIRECT = "https://app.contoso.com/signin"
LOOPBACK = "http://localhost:53123/"


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def call(mode: str, method: Any, *args: Any, **kwargs: Any) -> Any:
    result = method(*args, **kwargs)
    return await result if mode == "async" else result


@pytest.fixture
def authority() -> MockAuthority:
    mock = MockAuthority.with_defaults()
    mock.add_application(DEFAULT_TENANT, WEB_APP, secret=WEB_SECRET, redirect_uris=[REDIRECT])
    mock.add_application(DEFAULT_TENANT, NATIVE_APP, public_client=True, redirect_uris=[LOOPBACK])
    return mock


def credential(mode: str, authority: MockAuthority, *args: Any, **kwargs: Any) -> Any:
    module = identity.aio if mode == "async" else identity
    return module.AuthorizationCodeCredential(*args, transport=authority.transport(), **kwargs)


def grants(authority: MockAuthority) -> list[str]:
    return [r.form["grant_type"] for r in authority.requests_to("token")]


async def test_a_web_app_redeems_its_code_with_its_secret_then_refreshes(
    mode: str, authority: MockAuthority
) -> None:
    code = authority.issue_authorization_code(
        DEFAULT_TENANT, WEB_APP, redirect_uri=REDIRECT, scopes=[VAULT], username=DEFAULT_USERNAME
    )
    cred = credential(mode, authority, DEFAULT_TENANT, WEB_APP, code, REDIRECT, client_secret=WEB_SECRET)
    token = await call(mode, cred.get_token, VAULT)
    assert authority.describe_token(token.token) is not None
    [redeem] = authority.requests_to("token")
    assert redeem.form["grant_type"] == "authorization_code"
    assert (redeem.form["code"], redeem.form["redirect_uri"]) == (code, REDIRECT)
    assert redeem.form["client_secret"] == WEB_SECRET
    assert redeem.form["client_info"] == "1"
    assert "code_verifier" not in redeem.form

    await call(mode, cred.get_token, STORAGE)
    assert grants(authority) == ["authorization_code", "refresh_token"]
    refresh = authority.requests_to("token")[1]
    assert refresh.form["client_secret"] == WEB_SECRET  # a confidential client authenticates refreshes
    assert "code" not in refresh.form
    assert WEB_SECRET not in repr(cred)


async def test_a_native_app_sends_the_pkce_verifier(mode: str, authority: MockAuthority) -> None:
    pkce = new_pkce()
    code = authority.issue_authorization_code(
        DEFAULT_TENANT,
        NATIVE_APP,
        redirect_uri=LOOPBACK,
        scopes=[VAULT],
        username=DEFAULT_USERNAME,
        code_challenge=pkce.challenge,
    )
    cred = credential(
        mode, authority, DEFAULT_TENANT, NATIVE_APP, code, LOOPBACK, code_verifier=pkce.verifier
    )
    token = await call(mode, cred.get_token, VAULT)
    assert authority.describe_token(token.token) is not None
    [redeem] = authority.requests_to("token")
    assert redeem.form["code_verifier"] == pkce.verifier
    assert "client_secret" not in redeem.form


async def test_a_wrong_verifier_is_refused_by_the_authority(mode: str, authority: MockAuthority) -> None:
    pkce = new_pkce()
    code = authority.issue_authorization_code(
        DEFAULT_TENANT,
        NATIVE_APP,
        redirect_uri=LOOPBACK,
        scopes=[VAULT],
        username=DEFAULT_USERNAME,
        code_challenge=pkce.challenge,
    )
    cred = credential(
        mode, authority, DEFAULT_TENANT, NATIVE_APP, code, LOOPBACK, code_verifier=new_pkce().verifier
    )
    with pytest.raises(identity.ClientAuthenticationError) as raised:
        await call(mode, cred.get_token, VAULT)
    assert "invalid_grant" in str(raised.value)


async def test_once_the_code_is_spent_and_the_refresh_token_revoked_it_says_so(
    mode: str, authority: MockAuthority
) -> None:
    code = authority.issue_authorization_code(
        DEFAULT_TENANT, WEB_APP, redirect_uri=REDIRECT, scopes=[VAULT], username=DEFAULT_USERNAME
    )
    cred = credential(mode, authority, DEFAULT_TENANT, WEB_APP, code, REDIRECT, client_secret=WEB_SECRET)
    await call(mode, cred.get_token, VAULT)
    for grant in list(authority.refresh_tokens):
        authority.revoke_refresh_token(grant)
    with pytest.raises(identity.ClientAuthenticationError) as raised:
        await call(mode, cred.get_token, STORAGE)
    assert "No authorization code, cached access token, or refresh token available." in str(raised.value)
    assert grants(authority) == ["authorization_code", "refresh_token"]  # the code was not sent again


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("", WEB_APP, "code", REDIRECT), {}, "tenant_id must be a non-empty string"),
        ((DEFAULT_TENANT, WEB_APP, "", REDIRECT), {}, "authorization_code must be a non-empty string"),
        ((DEFAULT_TENANT, WEB_APP, "code", ""), {}, "redirect_uri must be a non-empty string"),
        ((DEFAULT_TENANT, WEB_APP, "code", REDIRECT), {"code_verifier": "short"}, "43 to 128 characters"),
    ],
)
def test_bad_arguments_are_value_errors(
    mode: str, authority: MockAuthority, args: tuple[str, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        credential(mode, authority, *args, **kwargs)


async def test_a_code_whose_redemption_never_reached_the_authority_is_tried_again(
    mode: str, authority: MockAuthority
) -> None:
    from conformance.authority import Fault
    from protocol.retry import RetryPolicy

    code = authority.issue_authorization_code(
        DEFAULT_TENANT, WEB_APP, redirect_uri=REDIRECT, scopes=[VAULT], username=DEFAULT_USERNAME
    )
    cred = credential(
        mode,
        authority,
        DEFAULT_TENANT,
        WEB_APP,
        code,
        REDIRECT,
        client_secret=WEB_SECRET,
        retry_policy=RetryPolicy(max_retries=0),
    )
    authority.inject(Fault.status(503), endpoint="token")
    with pytest.raises(identity.ClientAuthenticationError):
        await call(mode, cred.get_token, VAULT)
    token = await call(mode, cred.get_token, VAULT)  # the code was not spent: redeemed now
    assert authority.describe_token(token.token) is not None
    assert [r.form["code"] for r in authority.requests_to("token")] == [code, code]
