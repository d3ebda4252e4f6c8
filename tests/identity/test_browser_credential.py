"""InteractiveBrowserCredential with a scripted browser (fast; the real Chromium runs in
tests/browser): the loopback server, PKCE, state and nonce checks, timeouts and failures, sync and
async."""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import identity
import identity.aio
import identity.browser
from conformance.authority import (
    DEFAULT_PASSWORD,
    DEFAULT_TENANT,
    DEFAULT_USERNAME,
    PUBLIC_CLIENT_ID,
    MockAuthority,
)

VAULT = "https://vault.azure.net/.default"


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def call(mode: str, method: Any, *args: Any, **kwargs: Any) -> Any:
    result = method(*args, **kwargs)
    return await result if mode == "async" else result


def loopback(url: str) -> str:
    """``localhost`` as a browser would reach it here: 127.0.0.1 (the server's address)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.replace("localhost", "127.0.0.1")))


class ScriptedBrowser:
    """Stands in for ``webbrowser.open``: signs in at the mock (its programmatic hook) and follows
    the redirect to the credential's loopback server from another thread, as a browser would."""

    def __init__(self, authority: MockAuthority, **behaviour: Any) -> None:
        self.authority = authority
        self.urls: list[str] = []
        self.visits: list[int] = []
        self.accept = behaviour.get("accept", True)
        self.wrong_state_first = behaviour.get("wrong_state_first", False)
        self.only_wrong_state = behaviour.get("only_wrong_state", False)
        self.tamper: Callable[[str], str] = behaviour.get("tamper", lambda url: url)
        self.opens = behaviour.get("opens", True)
        self.idle = behaviour.get("idle", False)
        self.threads: list[threading.Thread] = []

    def __call__(self, url: str, *args: Any, **kwargs: Any) -> bool:
        self.urls.append(url)
        if not self.opens:
            return False
        if not self.idle:
            thread = threading.Thread(target=self._browse, args=(url,), daemon=True)
            thread.start()
            self.threads.append(thread)
        return True

    def finish(self) -> list[int]:
        """Wait for the browser's threads; the status of every page it visited."""
        for thread in self.threads:
            thread.join(10)
        return self.visits

    def _visit(self, location: str) -> None:
        with httpx.Client(timeout=10) as client:
            self.visits.append(client.get(loopback(location)).status_code)

    def _browse(self, url: str) -> None:
        location = self.authority.authorize_redirect(
            self.tamper(url), DEFAULT_USERNAME, DEFAULT_PASSWORD, accept=self.accept
        )
        if self.wrong_state_first or self.only_wrong_state:
            query = parse_qs(urlsplit(location).query)
            forged = location.replace(f"state={query['state'][0]}", "state=forged-state")
            self._visit(forged)
            if self.only_wrong_state:
                return
        self._visit(location)


@pytest.fixture
def authority() -> MockAuthority:
    return MockAuthority.with_defaults()


def credential(mode: str, authority: MockAuthority, **kwargs: Any) -> Any:
    module = identity.aio if mode == "async" else identity
    return module.InteractiveBrowserCredential(
        client_id=PUBLIC_CLIENT_ID, tenant_id=DEFAULT_TENANT, transport=authority.transport(), **kwargs
    )


@pytest.fixture
def browser(authority: MockAuthority, monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedBrowser]:
    scripted = ScriptedBrowser(authority)
    monkeypatch.setattr("webbrowser.open", scripted)
    yield scripted
    for thread in scripted.threads:
        thread.join(10)


def challenge_of(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


async def test_sign_in_through_the_browser(
    mode: str, authority: MockAuthority, browser: ScriptedBrowser
) -> None:
    cred = credential(mode, authority, login_hint=DEFAULT_USERNAME)
    token = await call(mode, cred.get_token, VAULT)
    assert authority.describe_token(token.token) is not None

    [url] = browser.urls
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        f"https://login.microsoftonline.com/{DEFAULT_TENANT}/oauth2/v2.0/authorize"
    )
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["client_id"] == PUBLIC_CLIENT_ID
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    assert query["prompt"] == "select_account"
    assert query["login_hint"] == DEFAULT_USERNAME
    assert set(query["scope"].split()) == {VAULT, "openid", "profile", "offline_access"}
    redirect = urlsplit(query["redirect_uri"])
    assert (redirect.scheme, redirect.hostname) == ("http", "localhost")
    assert redirect.port
    assert len(query["state"]) >= 16
    assert len(query["nonce"]) >= 16
    assert browser.finish() == [200]

    [redeem] = authority.requests_to("token")
    assert redeem.form["grant_type"] == "authorization_code"
    assert redeem.form["redirect_uri"] == query["redirect_uri"]
    assert challenge_of(redeem.form["code_verifier"]) == query["code_challenge"]
    assert cred._session.record.username == DEFAULT_USERNAME

    await call(mode, cred.get_token, "https://storage.azure.com/.default")  # silent: no browser
    assert len(browser.urls) == 1


async def test_a_redirect_with_another_state_is_rejected_and_the_right_one_accepted(
    mode: str, authority: MockAuthority, browser: ScriptedBrowser
) -> None:
    browser.wrong_state_first = True
    token = await call(mode, credential(mode, authority).get_token, VAULT)
    assert authority.describe_token(token.token) is not None
    assert browser.finish() == [400, 200]
    assert len(authority.requests_to("token")) == 1


async def test_only_forged_redirects_end_in_a_timeout_and_nothing_is_redeemed(
    mode: str, authority: MockAuthority, browser: ScriptedBrowser
) -> None:
    browser.only_wrong_state = True
    with pytest.raises(identity.ClientAuthenticationError) as raised:
        await call(mode, credential(mode, authority, timeout=1).get_token, VAULT)
    assert "Timed out after waiting 1 seconds for the user to authenticate" in str(raised.value)
    assert "1 redirect(s) with another state were rejected" in str(raised.value)
    assert authority.requests_to("token") == []


async def test_an_id_token_with_another_nonce_is_refused(
    mode: str, authority: MockAuthority, browser: ScriptedBrowser
) -> None:
    # An injected authorization response: its code was issued for another nonce.
    browser.tamper = lambda url: url.replace("nonce=", "nonce=injected")
    cred = credential(mode, authority)
    with pytest.raises(identity.ClientAuthenticationError) as raised:
        await call(mode, cred.get_token, VAULT)
    assert "nonce does not match" in str(raised.value)
    assert cred._session.record is None


async def test_a_declined_consent_is_access_denied(
    mode: str, authority: MockAuthority, browser: ScriptedBrowser
) -> None:
    browser.accept = False
    with pytest.raises(identity.ClientAuthenticationError) as raised:
        await call(mode, credential(mode, authority).get_token, VAULT)
    assert "access_denied" in str(raised.value)
    assert browser.finish() == [200]  # the failure page
    assert authority.requests_to("token") == []


async def test_no_browser_is_credential_unavailable(
    mode: str, authority: MockAuthority, browser: ScriptedBrowser
) -> None:
    browser.opens = False
    with pytest.raises(identity.CredentialUnavailableError) as raised:
        await call(mode, credential(mode, authority).get_token, VAULT)
    assert "failed to open a browser" in str(raised.value)
    assert "BROWSER" in str(raised.value)


async def test_nobody_signs_in_before_the_timeout(
    mode: str, authority: MockAuthority, browser: ScriptedBrowser
) -> None:
    browser.idle = True
    with pytest.raises(identity.ClientAuthenticationError) as raised:
        await call(mode, credential(mode, authority, timeout=0.3).get_token, VAULT)
    assert "Timed out after waiting 0.3 seconds" in str(raised.value)
    assert not isinstance(raised.value, identity.CredentialUnavailableError)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_given_redirect_uri_is_listened_on_and_sent(
    mode: str, authority: MockAuthority, browser: ScriptedBrowser
) -> None:
    port = free_port()
    cred = credential(mode, authority, redirect_uri=f"http://127.0.0.1:{port}")
    await call(mode, cred.get_token, VAULT)
    query = parse_qs(urlsplit(browser.urls[0]).query)
    assert query["redirect_uri"] == [f"http://127.0.0.1:{port}"]


@pytest.mark.parametrize("uri", ["http://localhost", "localhost:8400", "http://:8400"])
def test_a_redirect_uri_without_host_or_port_is_a_value_error(mode: str, uri: str) -> None:
    module = identity.aio if mode == "async" else identity
    with pytest.raises(ValueError, match='"redirect_uri" must be a URL with port number'):
        module.InteractiveBrowserCredential(redirect_uri=uri)


async def test_a_port_in_use_is_credential_unavailable(
    mode: str, authority: MockAuthority, browser: ScriptedBrowser
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(identity.CredentialUnavailableError) as raised:
            await call(
                mode, credential(mode, authority, redirect_uri=f"http://127.0.0.1:{port}").get_token, VAULT
            )
    assert f"Couldn't start an HTTP server on http://127.0.0.1:{port}" in str(raised.value)
    assert browser.urls == []


class _FakeRequest:
    """Just enough of BaseHTTPRequestHandler for LoopbackServer._handle."""

    def __init__(self, path: str) -> None:
        import io

        self.path = path
        self.status: int | None = None
        self.wfile = io.BytesIO()

    def send_response(self, status: int) -> None:
        self.status = status

    def send_header(self, name: str, value: str) -> None:
        pass

    def end_headers(self) -> None:
        pass


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_any_request_path_is_answered_and_only_our_state_is_accepted(path: str) -> None:
    from identity.browser import LoopbackServer

    server = LoopbackServer("expected-state-0123456789")
    try:
        request = _FakeRequest("/" + path)
        server._handle(request)  # type: ignore[arg-type]
        assert request.status in (200, 204, 400)
        accepted = server._result is not None
        assert accepted == (request.status == 200)
        if accepted:
            assert server._result is not None
            assert server._result.get("state") == "expected-state-0123456789"
    finally:
        server.close()


def test_the_success_page_and_a_rejected_state() -> None:
    from identity.browser import LoopbackServer

    server = LoopbackServer("s1")
    try:
        wrong = _FakeRequest("/?code=c&state=other")
        server._handle(wrong)  # type: ignore[arg-type]
        assert (wrong.status, server.rejected, server._result) == (400, 1, None)
        favicon = _FakeRequest("/favicon.ico")
        server._handle(favicon)  # type: ignore[arg-type]
        assert favicon.status == 204
        right = _FakeRequest("/?code=c&state=s1")
        server._handle(right)  # type: ignore[arg-type]
        assert right.status == 200
        assert b"Authentication complete. You can close this window." in right.wfile.getvalue()
        assert server.wait(0.01) == {"code": "c", "state": "s1"}
    finally:
        server.close()


def test_inside_default_credential_a_browser_timeout_is_unavailable(
    authority: MockAuthority, browser: ScriptedBrowser, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser.idle = True
    monkeypatch.setenv("AZURE_TENANT_ID", DEFAULT_TENANT)
    chain = identity.DefaultAzureCredential(
        exclude_environment_credential=True,
        exclude_workload_identity_credential=True,
        exclude_managed_identity_credential=True,
        exclude_shared_token_cache_credential=True,
        exclude_visual_studio_code_credential=True,
        exclude_cli_credential=True,
        exclude_powershell_credential=True,
        exclude_developer_cli_credential=True,
        exclude_interactive_browser_credential=False,
        interactive_browser_client_id=PUBLIC_CLIENT_ID,
        transport=authority.transport(),
    )
    member = chain.credentials[-1]
    assert type(member).__name__ == "InteractiveBrowserCredential"
    member._session.interactive = identity.browser.browser_sign_in(  # a short wait for the test
        PUBLIC_CLIENT_ID, redirect=None, login_hint=None, timeout=0.3, within_dac=True
    )
    with pytest.raises(identity.ClientAuthenticationError) as raised:
        chain.get_token(VAULT)
    message = str(raised.value)
    assert message.startswith("DefaultAzureCredential failed to retrieve a token")  # the chain's own
    assert "\n\tInteractiveBrowserCredential: Timed out after waiting 0.3 seconds" in message  # unavailable
    assert not isinstance(raised.value, identity.CredentialUnavailableError)
    assert len(browser.urls) == 1
