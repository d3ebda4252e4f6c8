"""The headless-Chromium harness against the mock authority over real HTTPS.

The authorization request goes through ``webbrowser.open`` with the harness's ``BROWSER``, exactly as
an ``InteractiveBrowserCredential`` opens it; a loopback HTTP server in the test is the redirect
target; the code it receives is redeemed at the token endpoint and the id token's nonce is checked.
"""

from __future__ import annotations

import queue
import threading
import time
import webbrowser
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from conformance.authority import (
    DEFAULT_PASSWORD,
    DEFAULT_TENANT,
    DEFAULT_USERNAME,
    PUBLIC_CLIENT_ID,
    MockAuthority,
)
from conformance.server import HttpsServer
from protocol.authorization_code import build_authorization_code_request, build_authorization_url
from protocol.pkce import Pkce, new_nonce, new_pkce, new_state
from tests.browser.chromium import (
    BINARY_VARIABLE,
    REQUIRE_VARIABLE,
    ChromiumTimeoutError,
    HeadlessChromium,
    SignInError,
    require_chromium,
    sign_in,
)

SCOPE = "https://graph.microsoft.com/User.Read"
DONE_TEXT = "Authentication complete. You can close this window."


# --------------------------------------------------------------------------- the app's redirect target


class _RedirectServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.received: queue.Queue[dict[str, str]] = queue.Queue()
        super().__init__(("127.0.0.1", 0), _RedirectHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN; loopback needs none.
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name, self.server_port = "127.0.0.1", int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a browser that hangs up early (its favicon request) is no test failure


class _RedirectHandler(BaseHTTPRequestHandler):
    server: _RedirectServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/":
            self.send_error(404)  # the browser's favicon request
            return
        self.server.received.put({name: values[0] for name, values in parse_qs(parts.query).items()})
        body = f'<!DOCTYPE html><html><body><p id="done">{DONE_TEXT}</p></body></html>'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Redirect:
    """The loopback redirect target: its URI and the query of each request to it."""

    uri: str
    server: _RedirectServer

    def wait(self, timeout: float = 10.0) -> dict[str, str]:
        try:
            return self.server.received.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no redirect reached {self.uri} within {timeout} s") from None


@pytest.fixture
def redirect() -> Iterator[Redirect]:
    server = _RedirectServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Redirect(f"http://127.0.0.1:{server.server_port}/", server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------- the authority


@pytest.fixture
def authority() -> MockAuthority:
    return MockAuthority.with_defaults()


@pytest.fixture
def server(authority: MockAuthority) -> Iterator[HttpsServer]:
    with authority.serve() as server:
        yield server


@dataclass
class AuthorizationRequest:
    url: str
    state: str
    nonce: str
    pkce: Pkce


def authorization_request(server: HttpsServer, redirect_uri: str) -> AuthorizationRequest:
    state, nonce, pkce = new_state(), new_nonce(), new_pkce()
    url = build_authorization_url(
        f"{server.url}/{DEFAULT_TENANT}/oauth2/v2.0/authorize",
        client_id=PUBLIC_CLIENT_ID,
        redirect_uri=redirect_uri,
        scopes=[SCOPE],
        state=state,
        nonce=nonce,
        code_challenge=pkce.challenge,
    )
    return AuthorizationRequest(url, state, nonce, pkce)


def open_in_system_browser(chromium: HeadlessChromium, url: str) -> None:
    """``webbrowser.open(url)`` with the harness as ``BROWSER``, as the credential will call it."""
    with chromium.as_system_browser():
        assert webbrowser.open(url) is True
    assert chromium.opened_urls() == [url]


# --------------------------------------------------------------------------- tests


def test_sign_in_through_webbrowser_open(
    chromium: HeadlessChromium, authority: MockAuthority, server: HttpsServer, redirect: Redirect
) -> None:
    started = time.monotonic()
    request = authorization_request(server, redirect.uri)
    open_in_system_browser(chromium, request.url)

    final_url = sign_in(chromium, DEFAULT_USERNAME, DEFAULT_PASSWORD, url_prefix=f"{server.url}/")

    params = redirect.wait()
    assert params["state"] == request.state
    assert params["code"]
    assert "error" not in params
    assert final_url.startswith(f"{redirect.uri}?")
    assert parse_qs(urlsplit(final_url).query)["code"] == [params["code"]]
    tab = chromium.wait_for_tab(redirect.uri)
    assert chromium.text(tab) == DONE_TEXT

    token_endpoint = f"{server.url}/{DEFAULT_TENANT}/oauth2/v2.0/token"
    with httpx.Client(verify=server.client_ssl_context()) as client:
        response = client.send(
            build_authorization_code_request(
                token_endpoint,
                client_id=PUBLIC_CLIENT_ID,
                code=params["code"],
                redirect_uri=redirect.uri,
                scopes=[SCOPE],
                now=time.time(),
                code_verifier=request.pkce.verifier,
            )
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["access_token"]
    claims = jwt.decode(
        body["id_token"], authority.signing_key.public_key(), algorithms=["RS256"], audience=PUBLIC_CLIENT_ID
    )
    assert claims["nonce"] == request.nonce
    assert claims["preferred_username"] == DEFAULT_USERNAME
    assert claims["iss"] == f"{server.url}/{DEFAULT_TENANT}/v2.0"
    assert time.monotonic() - started < 15


def test_declining_consent_redirects_with_access_denied(
    chromium: HeadlessChromium, server: HttpsServer, redirect: Redirect
) -> None:
    request = authorization_request(server, redirect.uri)
    open_in_system_browser(chromium, request.url)

    final_url = sign_in(
        chromium, DEFAULT_USERNAME, DEFAULT_PASSWORD, accept=False, url_prefix=f"{server.url}/"
    )

    params = redirect.wait()
    assert params["error"] == "access_denied"
    assert params["state"] == request.state
    assert "code" not in params
    assert "AADSTS65004" in params["error_description"]
    assert final_url.startswith(f"{redirect.uri}?error=access_denied&")


def test_wrong_password_shows_the_error_on_the_sign_in_page(
    chromium: HeadlessChromium, server: HttpsServer, redirect: Redirect
) -> None:
    request = authorization_request(server, redirect.uri)
    open_in_system_browser(chromium, request.url)

    with pytest.raises(SignInError, match="AADSTS50126") as raised:
        sign_in(chromium, DEFAULT_USERNAME, "not-the-password", url_prefix=f"{server.url}/")

    assert "Your account or password is incorrect" in str(raised.value)
    tab = chromium.wait_for_tab(f"{server.url}/")
    assert chromium.evaluate(tab, "document.body.dataset.page") == "signin"
    error = chromium.evaluate(tab, "document.getElementById('error').textContent")
    assert error.startswith("AADSTS50126: Your account or password is incorrect.")
    assert chromium.evaluate(tab, "document.getElementById('username').value") == DEFAULT_USERNAME
    assert redirect.server.received.empty()


def test_chromium_only_reaches_loopback(chromium: HeadlessChromium, redirect: Redirect) -> None:
    (tab,) = chromium.tabs()
    # A name goes to the dead proxy (and would not resolve anyway); so does an IP literal.
    assert chromium.navigate(tab, "http://example.com/") in (
        "net::ERR_PROXY_CONNECTION_FAILED",
        "net::ERR_NAME_NOT_RESOLVED",
    )
    assert chromium.navigate(tab, "http://203.0.113.7/") == "net::ERR_PROXY_CONNECTION_FAILED"
    assert chromium.navigate(tab, "https://[2001:db8::1]/") == "net::ERR_PROXY_CONNECTION_FAILED"
    # Loopback is reached directly, by address and by name.
    assert chromium.navigate(tab, f"{redirect.uri}?probe=1") is None
    assert redirect.wait() == {"probe": "1"}
    localhost = redirect.uri.replace("127.0.0.1", "localhost")
    assert chromium.navigate(tab, f"{localhost}?probe=2") is None
    assert redirect.wait() == {"probe": "2"}


def test_timeouts_name_the_tabs_url_and_text(chromium: HeadlessChromium) -> None:
    tab = chromium.open_tab("data:text/html,<p>Nothing to see here</p>")
    chromium.wait_for_url(tab, "data:")
    with pytest.raises(ChromiumTimeoutError) as raised:
        chromium.wait_for_tab("https://127.0.0.1:1/", timeout=0.3)
    message = str(raised.value)
    assert "'https://127.0.0.1:1/'" in message
    # Every tab is described (the first one, about:blank, too), each by its URL and text.
    assert "tab URL: data:text/html,<p>Nothing to see here</p>\npage text:\nNothing to see here" in message
    assert "tab URL: about:blank\npage text:\n" in message

    with pytest.raises(ChromiumTimeoutError, match="the sign-in button") as waited:
        chromium.wait_for(
            tab, "document.getElementById('signin')", timeout=0.3, description="the sign-in button"
        )
    assert "Nothing to see here" in str(waited.value)


def test_close_ends_every_process_and_removes_the_profile() -> None:
    with HeadlessChromium(require_chromium()) as browser:
        profile = browser.user_data_dir
        tab = browser.open_tab("data:text/html,<p>one</p>")
        browser.wait_for_url(tab, "data:")
        assert browser.evaluate(tab, "1 + 1") == 2
        assert len(browser.leftover_processes()) > 1  # the browser and its helpers
    assert not browser.running
    assert browser.leftover_processes() == []
    assert not profile.exists()
    browser.close()  # idempotent


def test_a_missing_chromium_skips_unless_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BINARY_VARIABLE, "/nonexistent/chromium")
    monkeypatch.delenv(REQUIRE_VARIABLE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="Chromium is not installed"):
        require_chromium()
    monkeypatch.setenv(REQUIRE_VARIABLE, "1")
    with pytest.raises(pytest.fail.Exception, match=f"Chromium is not installed.*{REQUIRE_VARIABLE} is set"):
        require_chromium()
