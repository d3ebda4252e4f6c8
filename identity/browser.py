"""``InteractiveBrowserCredential``: the user signs in in their web browser (authorization code
flow with PKCE, RFC 6749 section 4.1, RFC 7636, RFC 8252 for native apps).

1. A loopback HTTP server starts on ``127.0.0.1`` with an ephemeral port (or on the host and port
   of the given ``redirect_uri``); the redirect URI sent is ``http://localhost:<port>`` (the form
   Entra's public clients, the Azure CLI's included, register; any port matches).
2. The system browser opens the authorize URL (``webbrowser``, which honours ``BROWSER``) with
   ``state``, ``nonce``, an S256 code challenge, ``prompt=select_account`` and ``login_hint``.
3. The server waits (``timeout``, 300 s by default) for the redirect. A redirect whose ``state`` is
   not ours is answered 400 and never redeemed (a stale tab, or a forgery); ``favicon.ico`` gets
   204; the right one gets a page saying the sign-in is complete (or failed).
4. The code is redeemed with the verifier; the ID token must carry our ``nonce`` and name our
   client (see :mod:`protocol.id_token`).

Silent authentication with the account's refresh token comes first (see :mod:`identity.user`).
"""

from __future__ import annotations

import hmac
import html
import logging
import platform
import shutil
import subprocess
import threading
import webbrowser
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from protocol.authorization_code import (
    GRANT_TYPE,
    authorization_code_flow,
    build_authorization_url,
    parse_authorization_response,
)
from protocol.drivers import SyncDriver
from protocol.errors import ProtocolError, SourceUnavailableError
from protocol.flows import Flow, call
from protocol.pkce import new_nonce, new_pkce, new_state
from protocol.retry import RetryPolicy

from .auth_record import AuthenticationRecord
from .http_options import positive_seconds
from .persistence_options import TokenCachePersistenceOptions
from .settings import attach_persistent_cache, authority_settings, constructor_options
from .user import (
    DEFAULT_USER_TENANT,
    DEVELOPER_SIGN_ON_CLIENT_ID,
    Interactive,
    SignIn,
    SignInRequest,
    UserSession,
)
from .user_credential import SyncUserCredential

__all__ = ["InteractiveBrowserCredential", "LoopbackServer", "browser_session", "open_browser"]

_LOGGER = logging.getLogger("identity")

DEFAULT_TIMEOUT = 300.0

_DONE_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Signed in</title></head><body>"
    "<p>Authentication complete. You can close this window.</p></body></html>"
)
_FAILED_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Sign-in failed</title></head><body>"
    "<p>Authentication failed: {error}. You can close this window.</p></body></html>"
)
_REJECTED_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Rejected</title></head><body>"
    "<p>This response does not belong to the sign-in in progress and was ignored.</p></body></html>"
)


class TimedOut(ProtocolError):
    """Nobody completed the sign-in in time."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a connection left open never keeps the process alive

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN: a loopback server needs none.
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that hangs up or stays idle is no error of the sign-in


class LoopbackServer:
    """Waits on a loopback address for the authority's redirect (one sign-in).

    Connections are served each on a thread of their own, with a socket timeout, so a client that
    connects and sends nothing (a browser's preconnect, another local process) delays no one, and
    :meth:`wait` ends at its deadline whatever the clients do.

    Args:
        expected_state: the ``state`` of this sign-in; other redirects are answered 400.
        host: the address to bind (``127.0.0.1`` by default).
        port: the port (0: ephemeral).

    Raises:
        OSError: the address cannot be bound.
    """

    #: Seconds a connection may stay idle before the server drops it.
    CONNECTION_TIMEOUT = 10.0

    def __init__(self, expected_state: str, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._expected = expected_state
        self._result: dict[str, str] | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.rejected = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            timeout = LoopbackServer.CONNECTION_TIMEOUT

            def do_GET(self) -> None:
                outer._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                return  # the query holds the code: never log it

        self._server = _Server((host, port), Handler)
        self.port: int = self._server.server_port

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        # The request target as sent (urlsplit would read "//x" as a host and refuse "//[").
        path, _, query = request.path.partition("?")
        if path == "/favicon.ico":
            _reply(request, 204, "")
            return
        params = dict(parse_qsl(query.partition("#")[0], keep_blank_values=True))
        state = params.get("state", "")
        with self._lock:
            ours = hmac.compare_digest(state.encode(), self._expected.encode()) and self._result is None
            if ours:
                self._result = params
            else:
                self.rejected += 1
        if not ours:
            _reply(request, 400, _REJECTED_PAGE)
            return
        if "error" in params:
            _reply(request, 200, _FAILED_PAGE.format(error=html.escape(params.get("error", ""))))
        else:
            _reply(request, 200, _DONE_PAGE)
        self._done.set()

    def wait(self, timeout: float) -> dict[str, str] | None:
        """The redirect's parameters, or ``None`` when ``timeout`` seconds passed first (or the
        server was closed)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._server.serve_forever,
                    kwargs={"poll_interval": 0.05},
                    name="entra-identity loopback redirect",
                    daemon=True,
                )
                self._thread.start()
        self._done.wait(timeout)
        with self._lock:
            return self._result

    def close(self) -> None:
        """Stop listening (idempotent); a :meth:`wait` in progress returns at once."""
        self._done.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._server.shutdown()
            thread.join(5)
        self._server.server_close()


def _reply(request: BaseHTTPRequestHandler, status: int, page: str) -> None:
    body = page.encode()
    request.send_response(status)
    request.send_header("Content-Type", "text/html; charset=utf-8")
    request.send_header("Content-Length", str(len(body)))
    request.send_header("Cache-Control", "no-store")
    request.end_headers()
    request.wfile.write(body)


def open_browser(url: str) -> bool:
    """Open ``url`` in the user's browser (``BROWSER`` honoured); on WSL fall back to Windows'."""
    try:
        if webbrowser.open(url):
            return True
    except webbrowser.Error:
        pass
    if "microsoft" in platform.uname().release.lower():  # WSL: the Windows browser
        powershell = shutil.which("powershell.exe")
        if powershell is None or any(c in url for c in "\"'`$;"):  # the URL goes in a command line
            return False
        try:
            completed = subprocess.run(  # noqa: S603 - a resolved program; the URL is checked above
                [powershell, "-NoProfile", "-Command", f'Start-Process "{url}"'],
                capture_output=True,
                timeout=5,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return completed.returncode == 0
    return False


def parse_redirect_uri(redirect_uri: str | None) -> tuple[str, int] | None:
    """The host and port to listen on for ``redirect_uri``.

    Raises:
        ValueError: the URI has no host or port.
    """
    if redirect_uri is None:
        return None
    parts = urlsplit(redirect_uri)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or not port:
        raise ValueError('"redirect_uri" must be a URL with port number, for example "http://localhost:8400"')
    return parts.hostname, port


def browser_sign_in(
    client_id: str,
    *,
    redirect: tuple[str, int] | None,
    login_hint: str | None,
    timeout: float,
    opener: Callable[[str], bool] | None = None,
    within_dac: bool = False,
) -> Interactive:
    """The browser sign-in flow of a credential (inside DefaultAzureCredential a timeout is
    "unavailable", as in azure-identity, so the chain's error lists every member)."""

    def sign_in(request: SignInRequest) -> Flow[SignIn]:
        state, nonce, pkce = new_state(), new_nonce(), new_pkce()
        host, port = redirect if redirect is not None else ("127.0.0.1", 0)
        try:
            server = LoopbackServer(state, host=host, port=port)
        except OSError as exc:
            where = f"http://{host}:{port}" if redirect is not None else "localhost"
            raise SourceUnavailableError(f"Couldn't start an HTTP server on {where}: {exc.strerror}") from exc
        try:
            redirect_uri = f"http://{'localhost' if redirect is None else host}:{server.port}"
            url = build_authorization_url(
                request.endpoints.authorization_endpoint,
                client_id=client_id,
                redirect_uri=redirect_uri,
                scopes=request.scopes,
                state=state,
                nonce=nonce,
                code_challenge=pkce.challenge,
                prompt="select_account",
                login_hint=login_hint,
                claims=request.claims,
            )
            opened = yield from call(lambda: (opener or open_browser)(url))
            if not opened:
                raise SourceUnavailableError(
                    "InteractiveBrowserCredential: failed to open a browser. Set the BROWSER environment "
                    "variable to a browser command, or use DeviceCodeCredential on machines without one."
                )
            params = yield from call(lambda: server.wait(timeout))
        finally:
            server.close()
        if params is None:
            extra = (
                f" ({server.rejected} redirect(s) with another state were rejected)"
                if server.rejected
                else ""
            )
            message = f"Timed out after waiting {timeout:g} seconds for the user to authenticate{extra}."
            raise SourceUnavailableError(message) if within_dac else TimedOut(message)
        response = parse_authorization_response(params, expected_state=state)
        result = yield from authorization_code_flow(
            request.endpoints.token_endpoint,
            client_id=client_id,
            code=response.code,
            redirect_uri=redirect_uri,
            scopes=request.scopes,
            policy=request.policy,
            clock=request.clock,
            code_verifier=pkce.verifier,
            claims=request.claims,
        )
        return SignIn(result, nonce, GRANT_TYPE)

    return sign_in


def browser_session(
    credential: str,
    *,
    client_id: str | None,
    tenant_id: str | None,
    authority: str | None,
    redirect_uri: str | None,
    login_hint: str | None,
    timeout: float | None,
    authentication_record: AuthenticationRecord | None,
    disable_automatic_authentication: bool,
    disable_instance_discovery: bool,
    additionally_allowed_tenants: list[str] | None,
    retry_policy: RetryPolicy | None,
    within_dac: bool = False,
) -> UserSession:
    """Validate the arguments and build the session (shared by the sync and async classes).

    Raises:
        ValueError: a redirect URI without host or port, a bad timeout, tenant or authority.
    """
    redirect = parse_redirect_uri(redirect_uri)
    wait = positive_seconds("timeout", DEFAULT_TIMEOUT if timeout is None else timeout)
    client = client_id or DEVELOPER_SIGN_ON_CLIENT_ID
    tenant = tenant_id or (authentication_record.tenant_id if authentication_record else DEFAULT_USER_TENANT)
    settings = authority_settings(
        tenant_id=tenant,
        authority=authority,
        disable_instance_discovery=disable_instance_discovery,
        additionally_allowed_tenants=additionally_allowed_tenants,
    )
    return UserSession(
        credential=credential,
        client_id=client,
        settings=settings,
        policy=retry_policy or RetryPolicy(),
        interactive=browser_sign_in(
            client, redirect=redirect, login_hint=login_hint, timeout=wait, within_dac=within_dac
        ),
        authentication_record=authentication_record,
        disable_automatic_authentication=disable_automatic_authentication,
    )


class InteractiveBrowserCredential(SyncUserCredential):
    """Opens a browser to interactively authenticate a user.

    Keyword Args:
        tenant_id: the tenant (default ``"organizations"``, or the record's tenant).
        client_id: the public client (default: azure-identity's developer sign-on application).
        authority: the authority host.
        redirect_uri: ``http://<host>:<port>`` to listen on (default: ``127.0.0.1``, an ephemeral
            port, and ``http://localhost:<port>`` as the redirect URI).
        login_hint: pre-fills the username on the sign-in page.
        timeout: seconds to wait for the user (default 300).
        authentication_record, disable_automatic_authentication, cache_persistence_options,
        disable_instance_discovery, additionally_allowed_tenants, transport, http_client,
        retry_policy: as for :class:`identity.DeviceCodeCredential`.

    Raises:
        ValueError: ``redirect_uri`` without host or port; a bad timeout, tenant or authority.
    """

    def __init__(
        self,
        *,
        tenant_id: str | None = None,
        client_id: str | None = None,
        authority: str | None = None,
        redirect_uri: str | None = None,
        login_hint: str | None = None,
        timeout: float | None = None,
        authentication_record: AuthenticationRecord | None = None,
        disable_automatic_authentication: bool = False,
        cache_persistence_options: TokenCachePersistenceOptions | None = None,
        disable_instance_discovery: bool = False,
        additionally_allowed_tenants: list[str] | None = None,
        enable_support_logging: bool = False,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        retry_policy: RetryPolicy | None = None,
        _within_dac: bool = False,
        **kwargs: Any,
    ) -> None:
        http = constructor_options(self, locals())
        self._session = browser_session(
            type(self).__name__,
            client_id=client_id,
            tenant_id=tenant_id,
            authority=authority,
            redirect_uri=redirect_uri,
            login_hint=login_hint,
            timeout=timeout,
            authentication_record=authentication_record,
            disable_automatic_authentication=disable_automatic_authentication,
            disable_instance_discovery=disable_instance_discovery,
            additionally_allowed_tenants=additionally_allowed_tenants,
            retry_policy=http.retry_policy,
            within_dac=_within_dac,
        )
        self._core = self._session.core
        attach_persistent_cache(self._core, http)
        self._driver = SyncDriver(client=http_client, transport=transport, client_options=http.client_options)
