"""The user sign-in credentials with a real browser: headless Chromium, opened by the credential
through ``webbrowser`` (``BROWSER``), signs in on the mock authority's HTML pages served over HTTPS
on 127.0.0.1, and is redirected to the credential's loopback server.

Flows: InteractiveBrowserCredential get_token (sync) and authenticate (async), a declined consent,
a persistent cache and record used silently afterwards (the spec's example), and the device code
approved on the authority's /devicelogin page in the browser.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
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
from conformance.server import HttpsServer
from tests.browser.chromium import HeadlessChromium, sign_in

VAULT = "https://vault.azure.net/.default"
STORAGE = "https://storage.azure.com/.default"
DONE = "Authentication complete. You can close this window."


@pytest.fixture
def authority() -> MockAuthority:
    return MockAuthority.with_defaults()


@pytest.fixture
def server(authority: MockAuthority) -> Iterator[HttpsServer]:
    with authority.serve() as server:
        yield server


def options(server: HttpsServer, **extra: Any) -> dict[str, Any]:
    return {
        "authority": server.url,
        "tenant_id": DEFAULT_TENANT,
        "disable_instance_discovery": True,
        "connection_verify": server.ca_path,
        **extra,
    }


class Background:
    """Runs the credential call in a thread while the test drives the browser."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.result = call()
            except BaseException as exc:  # handed to the test
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def outcome(self, timeout: float = 30) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the credential did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def test_get_token_signs_in_through_chromium(
    chromium: HeadlessChromium, authority: MockAuthority, server: HttpsServer
) -> None:
    with chromium.as_system_browser():
        credential = identity.InteractiveBrowserCredential(
            client_id=PUBLIC_CLIENT_ID, login_hint=DEFAULT_USERNAME, **options(server)
        )
        call = Background(lambda: credential.get_token(VAULT))
        landed = sign_in(chromium, DEFAULT_USERNAME, DEFAULT_PASSWORD)
        token = call.outcome()
    assert landed.startswith("http://localhost:")
    [opened] = chromium.opened_urls()
    assert opened.startswith(f"{server.url}/{DEFAULT_TENANT}/oauth2/v2.0/authorize?")
    [tab] = [t for t in chromium.tabs() if chromium.url(t).startswith("http://localhost:")]
    assert DONE in chromium.text(tab)
    issued = authority.describe_token(token.token)
    assert issued is not None
    assert issued.user == DEFAULT_USERNAME
    [redeem] = authority.requests_to("token")
    assert redeem.form["grant_type"] == "authorization_code"
    assert redeem.form["code_verifier"]
    # The next resource comes silently: no second browser tab.
    credential.get_token(STORAGE)
    credential.close()
    assert len(chromium.opened_urls()) == 1


def test_async_authenticate_signs_in_through_chromium(
    chromium: HeadlessChromium, authority: MockAuthority, server: HttpsServer
) -> None:
    async def authenticate() -> Any:
        async with identity.aio.InteractiveBrowserCredential(
            client_id=PUBLIC_CLIENT_ID, **options(server)
        ) as credential:
            return await credential.authenticate(scopes=[VAULT])

    with chromium.as_system_browser():
        call = Background(lambda: asyncio.run(authenticate()))
        sign_in(chromium, DEFAULT_USERNAME, DEFAULT_PASSWORD)
        record = call.outcome()
    assert (record.username, record.tenant_id, record.client_id) == (
        DEFAULT_USERNAME,
        DEFAULT_TENANT,
        PUBLIC_CLIENT_ID,
    )
    assert json.loads(record.serialize())["homeAccountId"] == record.home_account_id


def test_a_declined_consent_in_chromium_is_access_denied(
    chromium: HeadlessChromium, authority: MockAuthority, server: HttpsServer
) -> None:
    with chromium.as_system_browser():
        credential = identity.InteractiveBrowserCredential(client_id=PUBLIC_CLIENT_ID, **options(server))
        call = Background(lambda: credential.get_token(VAULT))
        sign_in(chromium, DEFAULT_USERNAME, DEFAULT_PASSWORD, accept=False)
        with pytest.raises(identity.ClientAuthenticationError) as raised:
            call.outcome()
        credential.close()
    assert "access_denied" in str(raised.value)
    assert authority.requests_to("token") == []


def test_the_record_and_persistent_cache_make_the_next_credential_silent(
    chromium: HeadlessChromium,
    authority: MockAuthority,
    server: HttpsServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import keyring
    import keyring.backends.fail

    monkeypatch.setenv("HOME", str(tmp_path))
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        cache = identity.TokenCachePersistenceOptions(name="browser-app", allow_unencrypted_storage=True)
        with chromium.as_system_browser():
            first = identity.InteractiveBrowserCredential(
                client_id=PUBLIC_CLIENT_ID, cache_persistence_options=cache, **options(server)
            )
            call = Background(lambda: first.authenticate(scopes=[VAULT]))
            sign_in(chromium, DEFAULT_USERNAME, DEFAULT_PASSWORD)
            record = call.outcome()
            first.close()
        saved = record.serialize()
        later = identity.InteractiveBrowserCredential(
            client_id=PUBLIC_CLIENT_ID,
            authentication_record=identity.AuthenticationRecord.deserialize(saved),
            disable_automatic_authentication=True,
            cache_persistence_options=cache,
            **options(server),
        )
        token = later.get_token(STORAGE)
        later.close()
    finally:
        keyring.set_keyring(previous)
    assert authority.describe_token(token.token) is not None
    assert len(chromium.opened_urls()) == 1
    assert [r.form["grant_type"] for r in authority.requests_to("token")] == [
        "authorization_code",
        "refresh_token",
    ]


def test_device_code_approved_on_the_device_page_in_chromium(
    chromium: HeadlessChromium, authority: MockAuthority, server: HttpsServer
) -> None:
    authority.device_code_interval = 1
    prompts: list[tuple[str, str, datetime]] = []
    shown = threading.Event()

    def prompt(verification_uri: str, user_code: str, expires_on: datetime) -> None:
        prompts.append((verification_uri, user_code, expires_on))
        shown.set()

    credential = identity.DeviceCodeCredential(PUBLIC_CLIENT_ID, prompt_callback=prompt, **options(server))
    call = Background(lambda: credential.get_token(VAULT))
    assert shown.wait(15), "no device code was shown"
    [(uri, code, _)] = prompts
    assert uri == f"{server.url}/devicelogin"
    # The user, on "another device": the verification page, the code, then sign-in and consent.
    tab = chromium.open_tab(uri)
    chromium.wait_for_page(tab, "devicecode")
    chromium.evaluate(
        tab,
        f"document.getElementById('otc').value = {json.dumps(code)};"
        "document.getElementById('next').click(); true",
    )
    chromium.wait_for_page(tab, "signin")
    chromium.evaluate(
        tab,
        f"document.getElementById('username').value = {json.dumps(DEFAULT_USERNAME)};"
        f"document.getElementById('password').value = {json.dumps(DEFAULT_PASSWORD)};"
        "document.getElementById('signin').click(); true",
    )
    if chromium.wait_for_page(tab, "consent", "device-done") == "consent":
        chromium.evaluate(tab, "document.getElementById('accept').click(); true")
        chromium.wait_for_page(tab, "device-done")
    token = call.outcome()
    credential.close()
    issued = authority.describe_token(token.token)
    assert issued is not None
    assert issued.user == DEFAULT_USERNAME
    grants = [r.form["grant_type"] for r in authority.requests_to("token")]
    assert grants[-1] == "urn:ietf:params:oauth:grant-type:device_code"
