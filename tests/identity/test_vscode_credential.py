"""VisualStudioCodeCredential: the Azure Resources extension's record, validated; the account's
tokens from the shared cache when another tool left one; otherwise unavailable, saying why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import identity
import identity.aio
from conformance.authority import DEFAULT_TENANT, DEFAULT_USERNAME, MockAuthority

from .test_shared_cache_credential import DEV_CLIENT, VAULT, leave_account

VS_CODE = "aebc6443-996d-45c2-90f0-388ff96faa56"


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
    keyring.set_keyring(keyring.backends.fail.Keyring())
    yield tmp_path
    keyring.set_keyring(previous)


@pytest.fixture
def authority() -> MockAuthority:
    mock = MockAuthority.with_defaults()
    mock.add_application(DEFAULT_TENANT, DEV_CLIENT, public_client=True)
    mock.add_application(DEFAULT_TENANT, VS_CODE, public_client=True)
    return mock


def write_record(home: Path, **overrides: Any) -> Path:
    record = {
        "tenantId": DEFAULT_TENANT,
        "clientId": VS_CODE,
        "username": DEFAULT_USERNAME,
        "homeAccountId": "will-be-replaced",
        "authority": "login.microsoftonline.com",
        "version": "1.0",
    }
    record.update(overrides)
    path = home / ".azure" / "ms-azuretools.vscode-azureresourcegroups" / "authRecord.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({k: v for k, v in record.items() if v is not None}))
    return path


def credential(mode: str, authority: MockAuthority) -> Any:
    module = identity.aio if mode == "async" else identity
    return module.VisualStudioCodeCredential(transport=authority.transport())


async def test_without_a_record_it_is_unavailable(mode: str, home: Path, authority: MockAuthority) -> None:
    with pytest.raises(identity.CredentialUnavailableError) as raised:
        await call(mode, credential(mode, authority).get_token, VAULT)
    assert "no Visual Studio Code sign-in was found" in str(raised.value)
    assert "authRecord.json" in str(raised.value)
    assert authority.requests == []


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"clientId": "00000000-0000-0000-0000-000000000000"}, "'clientId' is not VS Code's"),
        ({"username": None}, "'username' is missing"),
        ({"tenantId": "bad tenant!"}, "'tenantId' has characters"),
        ({"padding": "x" * 11_000}, "larger than 10240 bytes"),
    ],
)
async def test_an_invalid_record_is_unavailable_and_named(
    mode: str, home: Path, authority: MockAuthority, overrides: dict[str, Any], problem: str
) -> None:
    write_record(home, **overrides)
    with pytest.raises(identity.CredentialUnavailableError) as raised:
        await call(mode, credential(mode, authority).get_token, VAULT)
    assert "Authentication record validation failed" in str(raised.value)
    assert problem in str(raised.value)


async def test_the_records_account_is_served_from_the_shared_cache(
    mode: str, home: Path, authority: MockAuthority
) -> None:
    # VS Code's own family refresh token (another family member's would do in Entra; the mock has
    # no token families, so the test uses VS Code's client).
    home_account_id, secret = leave_account(home, authority, DEFAULT_USERNAME, client=VS_CODE)
    write_record(home, homeAccountId=home_account_id)
    token = await call(mode, credential(mode, authority).get_token, VAULT)
    assert authority.describe_token(token.token) is not None
    [request] = authority.requests_to("token")
    assert request.form["refresh_token"] == secret
    # The record's application and tenant, as azure-identity's broker request would use them.
    assert request.form["client_id"] == VS_CODE
    assert request.path == f"/{DEFAULT_TENANT}/oauth2/v2.0/token"


async def test_a_record_without_tokens_explains_the_broker(
    mode: str, home: Path, authority: MockAuthority
) -> None:
    write_record(home, homeAccountId="0a1b2c3d-0000-0000-0000-000000000000." + DEFAULT_TENANT)
    with pytest.raises(identity.CredentialUnavailableError) as raised:
        await call(mode, credential(mode, authority).get_token, VAULT)
    assert "OS authentication broker" in str(raised.value)
    assert "AzureCliCredential" in str(raised.value)
