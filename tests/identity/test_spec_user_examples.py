"""The spec's user sign-in examples (../shared/spec/advanced-features.md), run end to end with
``identity`` for ``azure.identity``: the authentication record example, the persistence options
with InteractiveBrowserCredential, and the AuthenticationRequiredError fallback. The public cloud
is routed to the mock authority; the browser is scripted (the real Chromium runs in tests/browser)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import respx

from conformance.authority import DEFAULT_PASSWORD, DEFAULT_TENANT, DEFAULT_USERNAME, MockAuthority
from conformance.browser import MockUserBrowser
from conformance.transport import route_to

DEV_CLIENT = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MockAuthority, MockUserBrowser]]:
    import keyring
    import keyring.backends.fail

    mock = MockAuthority.with_defaults()
    mock.add_application(DEFAULT_TENANT, DEV_CLIENT, public_client=True)
    browser = MockUserBrowser(mock, DEFAULT_USERNAME, DEFAULT_PASSWORD)
    monkeypatch.setattr("webbrowser.open", browser)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())  # no OS keyring: encryption is impossible
    try:
        with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
            route_to(router, mock.handle, base_url="https://login.microsoftonline.com")
            router.route(host="127.0.0.1").pass_through()  # the browser's visit to the loopback server
            yield mock, browser
    finally:
        keyring.set_keyring(previous)
        browser.finish()
    assert mock.unmatched == []


def test_authentication_record_example(
    world: tuple[MockAuthority, MockUserBrowser], capsys: pytest.CaptureFixture[str]
) -> None:
    from identity import AuthenticationRecord, AuthenticationRequiredError, InteractiveBrowserCredential

    _, browser = world
    # Perform interactive authentication
    credential = InteractiveBrowserCredential()
    record = credential.authenticate(scopes=["https://graph.microsoft.com/.default"])

    print(f"Authenticated user: {record.username}")
    print(f"Tenant: {record.tenant_id}")
    print(f"Authority: {record.authority}")

    # Serialize for persistent storage
    serialized = record.serialize()
    with open("auth_record.json", "w") as f:
        f.write(serialized)

    # Later, deserialize and reuse
    with open("auth_record.json") as f:
        serialized = f.read()

    restored_record = AuthenticationRecord.deserialize(serialized)

    # Create new credential with cached account info
    cached_credential = InteractiveBrowserCredential(
        authentication_record=restored_record,
        disable_automatic_authentication=True,  # Only use cache, don't prompt
    )

    try:
        token = cached_credential.get_token("https://graph.microsoft.com/.default")  # noqa: F841
        print("Silent authentication successful")
    except AuthenticationRequiredError:
        print("Cache expired, interactive authentication required")

    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"Authenticated user: {DEFAULT_USERNAME}",
        f"Tenant: {DEFAULT_TENANT}",
        "Authority: login.microsoftonline.com",
        # Without cache_persistence_options the new credential has the account but no refresh
        # token (each credential caches in its own memory), so it may not prompt: it says so.
        "Cache expired, interactive authentication required",
    ]
    assert len(browser.opened) == 1
    assert restored_record == record
    assert '"homeAccountId"' in Path("auth_record.json").read_text()


def test_authentication_record_example_with_a_persistent_cache_is_silent(
    world: tuple[MockAuthority, MockUserBrowser],
) -> None:
    from identity import AuthenticationRecord, InteractiveBrowserCredential, TokenCachePersistenceOptions

    authority, browser = world
    options = TokenCachePersistenceOptions(name="records.cache", allow_unencrypted_storage=True)
    record = InteractiveBrowserCredential(cache_persistence_options=options).authenticate(
        scopes=["https://graph.microsoft.com/.default"]
    )
    cached_credential = InteractiveBrowserCredential(
        authentication_record=AuthenticationRecord.deserialize(record.serialize()),
        disable_automatic_authentication=True,
        cache_persistence_options=options,
    )
    token = cached_credential.get_token("https://vault.azure.net/.default")
    assert authority.describe_token(token.token) is not None
    assert len(browser.opened) == 1
    assert [r.form["grant_type"] for r in authority.requests_to("token")] == [
        "authorization_code",
        "refresh_token",
    ]


def test_persistence_options_example_with_interactive_credentials(
    world: tuple[MockAuthority, MockUserBrowser],
) -> None:
    from identity import InteractiveBrowserCredential, TokenCachePersistenceOptions

    _, browser = world
    # Configure encrypted token caching
    cache_options = TokenCachePersistenceOptions(
        allow_unencrypted_storage=False,  # Require encryption (secure default)
        name="myapp.cache",  # Isolate cache from other applications
    )
    # Use with interactive credential: no OS keyring here, so encryption is impossible and the
    # constructor says what is missing and how to opt in.
    with pytest.raises(ValueError, match=r"allow_unencrypted_storage=True"):
        InteractiveBrowserCredential(cache_persistence_options=cache_options)

    # Development environment with unencrypted fallback (less secure)
    dev_cache_options = TokenCachePersistenceOptions(
        allow_unencrypted_storage=True,  # Allow unencrypted storage if needed
        name="dev.cache",
    )
    dev_credential = InteractiveBrowserCredential(cache_persistence_options=dev_cache_options)
    dev_credential.get_token("https://graph.microsoft.com/.default")
    dev_credential.close()
    document = Path(os.environ["HOME"]) / ".IdentityService" / "dev.cache.nocae"
    assert '"RefreshToken"' in document.read_text()
    assert len(browser.opened) == 1


def test_exception_handling_example(
    world: tuple[MockAuthority, MockUserBrowser],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from identity import (
        AuthenticationRequiredError,
        ClientAuthenticationError,
        CredentialUnavailableError,
        DefaultAzureCredential,
        InteractiveBrowserCredential,
    )

    def robust_authentication() -> Any:
        """Implement robust authentication with proper exception handling."""
        # Try DefaultAzureCredential first
        try:
            credential = DefaultAzureCredential()
            credential.get_token("https://graph.microsoft.com/.default")
            print("Automatic authentication successful")
            return credential

        except CredentialUnavailableError as e:
            print(f"Default authentication unavailable: {e}")

            # Fall back to interactive authentication
            try:
                interactive_credential = InteractiveBrowserCredential()
                interactive_credential.get_token("https://graph.microsoft.com/.default")
                print("Interactive authentication successful")
                return interactive_credential

            except AuthenticationRequiredError as e:
                print(f"Interactive authentication required for scopes: {list(e.scopes)}")
                record = interactive_credential.authenticate(*e.scopes, claims=e.claims)
                print(f"Authentication completed for user: {record.username}")
                return interactive_credential

        except ClientAuthenticationError as e:
            print(f"Authentication failed: {e}")
            raise

    # Nothing configured: every member of the chain is unavailable, and the chain (as
    # azure-identity's) reports that as a ClientAuthenticationError listing each member.
    with pytest.raises(ClientAuthenticationError) as raised:
        robust_authentication()
    assert not isinstance(raised.value, CredentialUnavailableError)
    out = capsys.readouterr().out
    assert out.startswith("Authentication failed: DefaultAzureCredential failed to retrieve a token")
    assert "EnvironmentCredential: EnvironmentCredential authentication unavailable" in out

    # Configured for the user (username and password in the environment): automatic.
    monkeypatch.setenv("AZURE_CLIENT_ID", DEV_CLIENT)
    monkeypatch.setenv("AZURE_USERNAME", DEFAULT_USERNAME)
    monkeypatch.setenv("AZURE_PASSWORD", DEFAULT_PASSWORD)
    with pytest.warns(DeprecationWarning, match="username and password authentication"):
        credential = robust_authentication()
    assert capsys.readouterr().out == "Automatic authentication successful\n"
    assert credential.selected_credential_name == "EnvironmentCredential"


def test_the_authentication_required_fallback(world: tuple[MockAuthority, MockUserBrowser]) -> None:
    """The example's inner fallback, reached: a credential that may not prompt raises
    AuthenticationRequiredError; authenticate(*e.scopes, claims=e.claims) then signs in."""
    from identity import AuthenticationRequiredError, InteractiveBrowserCredential

    authority, browser = world
    interactive_credential = InteractiveBrowserCredential(disable_automatic_authentication=True)
    claims = '{"access_token":{"xms_cc":{"values":["cp1"]}}}'
    with pytest.raises(AuthenticationRequiredError) as raised:
        interactive_credential.get_token("https://graph.microsoft.com/.default", claims=claims)
    e = raised.value
    assert list(e.scopes) == ["https://graph.microsoft.com/.default"]
    assert e.claims == claims
    assert browser.opened == []
    record = interactive_credential.authenticate(*e.scopes, claims=e.claims)
    assert record.username == DEFAULT_USERNAME
    assert len(browser.opened) == 1
    assert "claims=" in browser.opened[0]
    token = interactive_credential.get_token("https://vault.azure.net/.default")  # now silent
    assert authority.describe_token(token.token) is not None
