"""SharedTokenCacheCredential: accounts and family refresh tokens left in the shared cache by other
Microsoft tools, account selection and its messages, sync and async."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import identity
import identity.aio
from cache.persistent import PersistentTokenCache
from cache.schema import AccountRecord, RefreshTokenRecord
from conformance.authority import DEFAULT_TENANT, DEFAULT_USERNAME, MockAuthority

DEV_CLIENT = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
VAULT = "https://vault.azure.net/.default"
OTHER_USER = "other@contoso.onmicrosoft.com"


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def call(mode: str, method: Any, *args: Any, **kwargs: Any) -> Any:
    result = method(*args, **kwargs)
    return await result if mode == "async" else result


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    import keyring
    import keyring.backends.fail

    monkeypatch.setenv("HOME", str(tmp_path))
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())  # the shared cache is plaintext here
    yield tmp_path
    keyring.set_keyring(previous)


@pytest.fixture
def authority() -> MockAuthority:
    mock = MockAuthority.with_defaults()
    mock.add_application(DEFAULT_TENANT, DEV_CLIENT, public_client=True)
    mock.add_user(
        DEFAULT_TENANT, OTHER_USER, "other-password", object_id="0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    )
    return mock


def leave_account(
    home: Path, authority: MockAuthority, username: str, *, family: str | None = "1", client: str = DEV_CLIENT
) -> tuple[str, str]:
    """What `az login` leaves in the shared cache: an account and its family refresh token."""
    user = authority.find_user(None, username)
    assert user is not None
    home_account_id = f"{user.object_id}.{DEFAULT_TENANT}"
    secret = authority.issue_refresh_token(DEFAULT_TENANT, client, [VAULT], username=username)
    cache = PersistentTokenCache.open(
        "msal.cache", allow_unencrypted_storage=True, directory=home / ".IdentityService"
    )
    cache.partition(cae=False).add_records(
        AccountRecord(
            home_account_id=home_account_id,
            environment="login.microsoftonline.com",
            realm=DEFAULT_TENANT,
            local_account_id=user.object_id,
            username=username,
        ),
        RefreshTokenRecord(
            secret=secret,
            home_account_id=home_account_id,
            environment="login.windows.net",  # an alias: the same cloud
            client_id=client,
            target=VAULT,
            last_modification_time=int(time.time()),
            family_id=family,
        ),
    )
    return home_account_id, secret


def credential(mode: str, authority: MockAuthority, *args: Any, **kwargs: Any) -> Any:
    module = identity.aio if mode == "async" else identity
    return module.SharedTokenCacheCredential(*args, transport=authority.transport(), **kwargs)


async def test_the_one_account_is_used_with_its_family_refresh_token(
    mode: str, home: Path, authority: MockAuthority
) -> None:
    leave_account(home, authority, DEFAULT_USERNAME)
    cred = credential(mode, authority)
    token = await call(mode, cred.get_token, VAULT)
    assert authority.describe_token(token.token) is not None
    [request] = authority.requests_to("token")
    assert request.path == "/organizations/oauth2/v2.0/token"
    assert request.form["grant_type"] == "refresh_token"
    assert request.form["client_id"] == DEV_CLIENT
    again = await call(mode, cred.get_token, VAULT)
    assert again.token == token.token
    assert len(authority.requests_to("token")) == 1


def test_construction_reads_nothing(home: Path, authority: MockAuthority) -> None:
    identity.SharedTokenCacheCredential()
    assert not (home / ".IdentityService").exists()
    assert identity.SharedTokenCacheCredential.supported() is True


async def test_no_accounts(mode: str, home: Path, authority: MockAuthority) -> None:
    with pytest.raises(identity.CredentialUnavailableError) as raised:
        await call(mode, credential(mode, authority).get_token, VAULT)
    assert str(raised.value) == (
        "SharedTokenCacheCredential authentication unavailable. No accounts were found in the cache."
    )
    assert authority.requests == []


async def test_accounts_without_a_family_refresh_token_are_not_candidates(
    mode: str, home: Path, authority: MockAuthority
) -> None:
    leave_account(home, authority, DEFAULT_USERNAME, family=None)
    with pytest.raises(identity.CredentialUnavailableError, match="No accounts were found in the cache"):
        await call(mode, credential(mode, authority).get_token, VAULT)


async def test_several_accounts_need_a_username(mode: str, home: Path, authority: MockAuthority) -> None:
    leave_account(home, authority, DEFAULT_USERNAME)
    leave_account(home, authority, OTHER_USER)
    with pytest.raises(identity.CredentialUnavailableError) as raised:
        await call(mode, credential(mode, authority).get_token, VAULT)
    assert str(raised.value).endswith(
        "Multiple accounts were found in the cache. Use username and tenant id to disambiguate."
    )
    token = await call(mode, credential(mode, authority, OTHER_USER).get_token, VAULT)
    described = authority.describe_token(token.token)
    assert described is not None
    with pytest.raises(identity.CredentialUnavailableError) as missing:
        await call(mode, credential(mode, authority, "nobody@contoso.com").get_token, VAULT)
    assert str(missing.value) == (
        "SharedTokenCacheCredential authentication unavailable. No account matching the specified "
        "username: nobody@contoso.com was found in the cache."
    )
    with pytest.raises(
        identity.CredentialUnavailableError, match="Multiple accounts matching the specified tenant"
    ):
        await call(mode, credential(mode, authority, tenant_id=DEFAULT_TENANT).get_token, VAULT)


async def test_a_record_names_the_account(mode: str, home: Path, authority: MockAuthority) -> None:
    leave_account(home, authority, DEFAULT_USERNAME)
    other, other_secret = leave_account(home, authority, OTHER_USER)
    record = identity.AuthenticationRecord(
        DEFAULT_TENANT, DEV_CLIENT, "login.microsoftonline.com", other, OTHER_USER
    )
    await call(mode, credential(mode, authority, authentication_record=record).get_token, VAULT)
    [request] = authority.requests_to("token")
    assert request.form["refresh_token"] == other_secret


async def test_a_refused_refresh_token_is_an_error_and_stays_in_the_cache(
    mode: str, home: Path, authority: MockAuthority
) -> None:
    leave_account(home, authority, DEFAULT_USERNAME)
    for grant in list(authority.refresh_tokens):
        authority.revoke_refresh_token(grant)
    with pytest.raises(identity.ClientAuthenticationError) as raised:
        await call(mode, credential(mode, authority).get_token, VAULT)
    assert "invalid_grant" in str(raised.value)
    cache = PersistentTokenCache.open(
        "msal.cache", allow_unencrypted_storage=True, directory=home / ".IdentityService"
    )
    assert len(cache.partition(cae=False).find(RefreshTokenRecord)) == 1  # another tool's: left alone


async def test_inside_default_credential_a_refused_refresh_token_is_unavailable(
    mode: str, home: Path, authority: MockAuthority
) -> None:
    leave_account(home, authority, DEFAULT_USERNAME)
    for grant in list(authority.refresh_tokens):
        authority.revoke_refresh_token(grant)
    module = identity.aio if mode == "async" else identity
    chain = module.DefaultAzureCredential(
        exclude_environment_credential=True,
        exclude_workload_identity_credential=True,
        exclude_managed_identity_credential=True,
        exclude_visual_studio_code_credential=True,
        exclude_cli_credential=True,
        exclude_powershell_credential=True,
        exclude_developer_cli_credential=True,
        transport=authority.transport(),
    )
    with pytest.raises(identity.ClientAuthenticationError) as raised:
        await call(mode, chain.get_token, VAULT)
    message = str(raised.value)
    # The chain's own report, listing the member as unavailable (azure-identity 1.25), not the
    # member's error re-raised as a failure that stops the chain.
    assert message.startswith("DefaultAzureCredential failed to retrieve a token")
    assert "\n\tSharedTokenCacheCredential: SharedTokenCacheCredential: authentication failed." in message
    assert "invalid_grant" in message
    assert len(authority.requests_to("token")) == 1
