"""User sign-in credentials against the mock authority, sync and async: DeviceCodeCredential and
UsernamePasswordCredential, authenticate() and its record, silent authentication with the
account's refresh token, disable_automatic_authentication, revoked refresh tokens, secrets kept
out of logs, messages and repr."""

from __future__ import annotations

import json
import logging
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import identity
import identity.aio
from conformance.authority import (
    DEFAULT_PASSWORD,
    DEFAULT_TENANT,
    DEFAULT_USERNAME,
    PUBLIC_CLIENT_ID,
    MockAuthority,
)

VAULT = "https://vault.azure.net/.default"
STORAGE = "https://storage.azure.com/.default"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def call(mode: str, method: Any, *args: Any, **kwargs: Any) -> Any:
    result = method(*args, **kwargs)
    return await result if mode == "async" else result


def module(mode: str) -> Any:
    return identity.aio if mode == "async" else identity


def transport(mode: str, authority: MockAuthority) -> Any:
    return authority.transport()  # an httpx.MockTransport serves sync and async clients


class Approver:
    """A prompt_callback that plays the user: approves the code at once (or declines it)."""

    def __init__(self, authority: MockAuthority, *, decline: bool = False) -> None:
        self.authority = authority
        self.decline = decline
        self.prompts: list[tuple[str, str, datetime]] = []

    def __call__(self, verification_uri: str, user_code: str, expires_on: datetime) -> None:
        self.prompts.append((verification_uri, user_code, expires_on))
        if self.decline:
            self.authority.decline_device_code(user_code)
        else:
            self.authority.approve_device_code(user_code, DEFAULT_USERNAME)


def device_credential(
    mode: str, authority: MockAuthority, approver: Approver | None = None, **kwargs: Any
) -> Any:
    return module(mode).DeviceCodeCredential(
        PUBLIC_CLIENT_ID,
        tenant_id=DEFAULT_TENANT,
        prompt_callback=approver,
        transport=transport(mode, authority),
        **kwargs,
    )


def grants(authority: MockAuthority) -> list[str]:
    return [r.form.get("grant_type", "") for r in authority.requests_to("token")]


async def test_device_code_sign_in_on_the_wire(mode: str) -> None:
    authority = MockAuthority.with_defaults()
    approver = Approver(authority)
    credential = device_credential(mode, authority, approver)
    token = await call(mode, credential.get_token, VAULT)

    assert authority.describe_token(token.token) is not None
    [(uri, code, expires_on)] = approver.prompts
    assert uri == "https://microsoft.com/devicelogin"
    assert expires_on.tzinfo is timezone.utc
    [start] = authority.requests_to("devicecode")
    assert start.method == "POST"
    assert start.path == f"/{DEFAULT_TENANT}/oauth2/v2.0/devicecode"
    assert start.form["client_id"] == PUBLIC_CLIENT_ID
    assert set(start.form["scope"].split()) == {VAULT, "openid", "profile", "offline_access"}
    [poll] = authority.requests_to("token")
    assert poll.form["grant_type"] == DEVICE_GRANT
    assert poll.form["client_id"] == PUBLIC_CLIENT_ID
    assert poll.form["client_info"] == "1"
    assert poll.form["device_code"]
    assert code not in json.dumps(poll.form)  # the user code is for the user, not the token endpoint


async def test_the_default_prompt_prints_the_servers_message(
    mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    authority = MockAuthority.with_defaults()
    credential = device_credential(mode, authority, None, timeout=0.5)
    with pytest.raises(identity.ClientAuthenticationError) as raised:
        await call(mode, credential.get_token, VAULT)  # nobody approves: the timeout ends it
    printed = capsys.readouterr().out
    assert len(authority.requests_to("devicecode")) == 1
    assert "https://microsoft.com/devicelogin" in printed
    assert "enter the code" in printed
    assert "Timed out" in str(raised.value)


async def test_a_declined_sign_in_is_a_client_authentication_error(mode: str) -> None:
    authority = MockAuthority.with_defaults()
    credential = device_credential(mode, authority, Approver(authority, decline=True))
    with pytest.raises(identity.ClientAuthenticationError) as raised:
        await call(mode, credential.get_token, VAULT)
    assert not isinstance(raised.value, identity.CredentialUnavailableError)
    assert "authorization_declined" in str(raised.value)


async def test_later_tokens_come_silently_from_the_refresh_token(mode: str) -> None:
    authority = MockAuthority.with_defaults()
    authority.rotate_refresh_tokens = True
    approver = Approver(authority)
    credential = device_credential(mode, authority, approver)
    await call(mode, credential.get_token, VAULT)
    storage = await call(mode, credential.get_token, STORAGE)
    again = await call(mode, credential.get_token, STORAGE)

    assert len(approver.prompts) == 1
    assert again.token == storage.token  # cached
    assert grants(authority) == [DEVICE_GRANT, "refresh_token"]
    first_rt = authority.requests_to("token")[1].form["refresh_token"]
    await call(mode, credential.get_token, "https://graph.microsoft.com/.default")
    assert grants(authority)[-1] == "refresh_token"
    assert authority.requests_to("token")[2].form["refresh_token"] != first_rt  # the rotated one


async def test_authenticate_returns_the_record_and_caches_the_token(mode: str) -> None:
    authority = MockAuthority.with_defaults()
    approver = Approver(authority)
    credential = device_credential(mode, authority, approver)
    record = await call(mode, credential.authenticate, scopes=[VAULT])
    assert (record.username, record.client_id, record.authority) == (
        DEFAULT_USERNAME,
        PUBLIC_CLIENT_ID,
        "login.microsoftonline.com",
    )
    assert record.tenant_id == DEFAULT_TENANT
    uid, utid = record.home_account_id.split(".")
    assert utid == DEFAULT_TENANT
    assert uid
    assert json.loads(record.serialize())["homeAccountId"] == record.home_account_id
    await call(mode, credential.get_token, VAULT)
    assert len(authority.requests_to("token")) == 1  # authenticate's token was cached
    positional = await call(mode, credential.authenticate, STORAGE)  # the spec's positional form
    assert positional.home_account_id == record.home_account_id
    assert len(approver.prompts) == 2  # authenticate always signs in


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((VAULT,), {"scopes": [STORAGE]}, "not both"),
        ((), {"scopes": VAULT}, "must be a list"),
    ],
)
async def test_authenticate_rejects_ambiguous_scopes(
    mode: str, args: tuple[str, ...], kwargs: dict[str, Any], message: str
) -> None:
    authority = MockAuthority.with_defaults()
    credential = device_credential(mode, authority, Approver(authority))
    with pytest.raises(ValueError, match=message):
        await call(mode, credential.authenticate, *args, **kwargs)
    assert authority.requests == []


async def test_authenticate_without_scopes_asks_for_resource_manager(mode: str) -> None:
    authority = MockAuthority.with_defaults()
    credential = device_credential(mode, authority, Approver(authority))
    await call(mode, credential.authenticate)
    [start] = authority.requests_to("devicecode")
    assert "https://management.core.windows.net//.default" in start.form["scope"].split()


async def test_a_record_with_disabled_automatic_authentication_never_prompts(mode: str) -> None:
    authority = MockAuthority.with_defaults()
    first = device_credential(mode, authority, Approver(authority))
    record = await call(mode, first.authenticate, scopes=[VAULT])
    approver = Approver(authority)
    # A new credential without a shared cache knows the account but holds no refresh token.
    second = device_credential(
        mode, authority, approver, authentication_record=record, disable_automatic_authentication=True
    )
    with pytest.raises(identity.AuthenticationRequiredError) as raised:
        await call(mode, second.get_token, STORAGE, claims='{"access_token":{"acrs":{"essential":true}}}')
    assert list(raised.value.scopes) == [STORAGE]
    assert raised.value.claims == '{"access_token":{"acrs":{"essential":true}}}'
    assert "Call 'authenticate' to begin" in str(raised.value)
    assert approver.prompts == []


async def test_a_revoked_refresh_token_leads_to_authentication_required(mode: str) -> None:
    authority = MockAuthority.with_defaults()
    credential = device_credential(
        mode, authority, Approver(authority), disable_automatic_authentication=True
    )
    await call(mode, credential.authenticate, scopes=[VAULT])
    [redeemed] = [r for r in authority.requests_to("token") if r.form["grant_type"] == DEVICE_GRANT]
    for grant in list(authority.refresh_tokens):
        authority.revoke_refresh_token(grant)
    with pytest.raises(identity.AuthenticationRequiredError) as raised:
        await call(mode, credential.get_token, STORAGE)
    assert "invalid_grant" in str(raised.value)
    assert grants(authority)[-1] == "refresh_token"
    # The refused refresh token stays stored, as MSAL keeps it (a refusal is often for one resource
    # only): the next call tries it again, and is refused again.
    sent = authority.requests_to("token")[-1].form["refresh_token"]
    with pytest.raises(identity.AuthenticationRequiredError):
        await call(mode, credential.get_token, STORAGE)
    assert authority.requests_to("token")[-1].form["refresh_token"] == sent
    assert redeemed.form["device_code"]


async def test_a_revoked_refresh_token_prompts_again_when_allowed(mode: str) -> None:
    authority = MockAuthority.with_defaults()
    approver = Approver(authority)
    credential = device_credential(mode, authority, approver)
    await call(mode, credential.get_token, VAULT)
    for grant in list(authority.refresh_tokens):
        authority.revoke_refresh_token(grant)
    token = await call(mode, credential.get_token, STORAGE)
    assert authority.describe_token(token.token) is not None
    assert len(approver.prompts) == 2
    assert grants(authority) == [DEVICE_GRANT, "refresh_token", DEVICE_GRANT]


async def test_the_persistent_cache_keeps_the_account_for_another_credential(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyring
    import keyring.backends.fail

    monkeypatch.setenv("HOME", str(tmp_path))
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        authority = MockAuthority.with_defaults()
        options = identity.TokenCachePersistenceOptions(name="users", allow_unencrypted_storage=True)
        first = device_credential(mode, authority, Approver(authority), cache_persistence_options=options)
        record = await call(mode, first.authenticate, scopes=[VAULT])
        await call(mode, first.close)
        document = json.loads((tmp_path / ".IdentityService" / "users.nocae").read_text())
        [rt] = document["RefreshToken"].values()
        [account] = document["Account"].values()
        assert (rt["home_account_id"], rt["client_id"]) == (record.home_account_id, PUBLIC_CLIENT_ID)
        assert (account["username"], account["realm"]) == (DEFAULT_USERNAME, DEFAULT_TENANT)
        assert len(document["IdToken"]) == 1

        approver = Approver(authority)
        second = device_credential(
            mode,
            authority,
            approver,
            authentication_record=identity.AuthenticationRecord.deserialize(record.serialize()),
            disable_automatic_authentication=True,
            cache_persistence_options=options,
        )
        token = await call(mode, second.get_token, STORAGE)
        assert authority.describe_token(token.token) is not None
        assert approver.prompts == []
        assert grants(authority)[-1] == "refresh_token"
    finally:
        keyring.set_keyring(previous)


def password_credential(
    mode: str, authority: MockAuthority, password: str = DEFAULT_PASSWORD, **kwargs: Any
) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return module(mode).UsernamePasswordCredential(
            PUBLIC_CLIENT_ID,
            DEFAULT_USERNAME,
            password,
            tenant_id=DEFAULT_TENANT,
            transport=transport(mode, authority),
            **kwargs,
        )


async def test_username_password_is_deprecated_and_sends_ropc(mode: str) -> None:
    authority = MockAuthority.with_defaults()
    with pytest.warns(DeprecationWarning, match="doesn't support multifactor authentication"):
        module(mode).UsernamePasswordCredential(PUBLIC_CLIENT_ID, DEFAULT_USERNAME, DEFAULT_PASSWORD)
    credential = password_credential(mode, authority)
    token = await call(mode, credential.get_token, VAULT)
    assert authority.describe_token(token.token) is not None
    [request] = authority.requests_to("token")
    assert request.form["grant_type"] == "password"
    assert (request.form["username"], request.form["password"]) == (DEFAULT_USERNAME, DEFAULT_PASSWORD)
    assert request.form["client_info"] == "1"
    await call(mode, credential.get_token, STORAGE)
    assert grants(authority) == ["password", "refresh_token"]
    record = await call(mode, credential.authenticate, scopes=[VAULT])
    assert record.username == DEFAULT_USERNAME


async def test_secrets_stay_out_of_errors_logs_and_repr(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    canary = "CANARY-PASSWORD-5f3e"
    authority = MockAuthority.with_defaults()
    credential = password_credential(mode, authority, password=canary)
    with pytest.raises(identity.ClientAuthenticationError) as raised:
        await call(mode, credential.get_token, VAULT)
    assert "invalid_grant" in str(raised.value)
    good = password_credential(mode, authority)
    token = await call(mode, good.get_token, VAULT)
    await call(mode, good.get_token, STORAGE)
    secrets = [canary, DEFAULT_PASSWORD, token.token]
    secrets += [r.form["refresh_token"] for r in authority.requests_to("token") if "refresh_token" in r.form]
    text = caplog.text + str(raised.value) + repr(credential) + repr(good) + repr(good._session.record)
    for secret in secrets:
        assert secret not in text


async def test_an_authority_without_a_device_message_gets_one_composed(
    mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import httpx

    authority = MockAuthority.with_defaults()

    def without_message(request: httpx.Request) -> httpx.Response:
        response = authority.handle(request)
        if request.url.path.endswith("/devicecode"):
            body = json.loads(response.content)
            del body["message"]  # RFC 8628 defines no message; Entra adds one
            authority.approve_device_code(body["user_code"], DEFAULT_USERNAME)
            return httpx.Response(200, json=body)
        return response

    credential = module(mode).DeviceCodeCredential(
        PUBLIC_CLIENT_ID, tenant_id=DEFAULT_TENANT, transport=httpx.MockTransport(without_message)
    )
    token = await call(mode, credential.get_token, VAULT)
    assert authority.describe_token(token.token) is not None
    printed = capsys.readouterr().out
    assert printed.startswith(
        "To sign in, use a web browser to open the page https://microsoft.com/devicelogin"
    )
    assert "and enter the code" in printed


async def test_an_expired_device_code_is_a_clear_error(mode: str) -> None:
    now = [1_800_000_000.0]
    authority = MockAuthority.with_defaults(clock=lambda: now[0])

    def user_walks_away(verification_uri: str, user_code: str, expires_on: datetime) -> None:
        now[0] += authority.device_code_lifetime + 1  # the authority's clock passes the code's lifetime

    credential = module(mode).DeviceCodeCredential(
        PUBLIC_CLIENT_ID,
        tenant_id=DEFAULT_TENANT,
        prompt_callback=user_walks_away,
        transport=transport(mode, authority),
    )
    with pytest.raises(identity.ClientAuthenticationError) as raised:
        await call(mode, credential.get_token, VAULT)
    assert "expired_token" in str(raised.value)
    assert grants(authority) == [DEVICE_GRANT]  # one poll: the authority said the code expired


async def test_authenticate_with_enable_cae_declares_cp1_and_caches_a_cae_token(mode: str) -> None:
    authority = MockAuthority.with_defaults()
    credential = device_credential(mode, authority, Approver(authority))
    await call(mode, credential.authenticate, scopes=[VAULT], enable_cae=True)
    [start] = authority.requests_to("devicecode")
    assert json.loads(start.form["claims"]) == {"access_token": {"xms_cc": {"values": ["CP1"]}}}
    token = await call(mode, credential.get_token, VAULT, enable_cae=True)  # the cached CAE token
    assert len(authority.requests_to("token")) == 1
    described = authority.describe_token(token.token)
    assert described is not None
    assert described.cae


async def test_a_cae_sign_in_keeps_its_records_in_the_cae_document(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyring
    import keyring.backends.fail

    monkeypatch.setenv("HOME", str(tmp_path))
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        authority = MockAuthority.with_defaults()
        options = identity.TokenCachePersistenceOptions(name="cae-users", allow_unencrypted_storage=True)
        credential = device_credential(
            mode, authority, Approver(authority), cache_persistence_options=options
        )
        await call(mode, credential.authenticate, scopes=[VAULT], enable_cae=True)
        await call(mode, credential.close)
    finally:
        keyring.set_keyring(previous)
    folder = tmp_path / ".IdentityService"
    cae = json.loads((folder / "cae-users.cae").read_text())
    assert len(cae["RefreshToken"]) == 1
    assert len(cae["AccessToken"]) == 1
    non_cae = folder / "cae-users.nocae"
    assert not non_cae.exists() or not json.loads(non_cae.read_text()).get("RefreshToken")
