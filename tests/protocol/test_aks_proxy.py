"""protocol.aks_proxy: the AKS token proxy's URL rules, request rewrite, CA handling and transports.

The TLS tests run a real HTTPS server on 127.0.0.1 whose certificate (from a ``trustme`` CA) names
only ``aks-proxy.test``: the client connects by IP and must present, and verify, that name through
the SNI extension. :class:`TlsProxy` is shared with the credential tests
(``tests/identity/test_workload_identity_proxy.py``).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest
import trustme

from protocol.aks_proxy import (
    SNI_EXTENSION,
    AsyncClientTransport,
    AsyncTokenProxyTransport,
    ClientTransport,
    ProxyTrust,
    TokenProxy,
    TokenProxyTransport,
)

SNI_NAME = "aks-proxy.test"
TOKEN_URL = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token"
TOKEN_PATH = "/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token"


# --------------------------------------------------------------------------- the TLS server


@dataclass(frozen=True)
class Seen:
    """A request as the proxy received it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class _Record:
    requests: list[Seen] = field(default_factory=list)
    sni_names: list[str | None] = field(default_factory=list)
    handshake_failures: int = 0


def echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"path": request.url.path})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext, app: Callable[[httpx.Request], httpx.Response]) -> None:
        self.context = context
        self.app = app
        self.record = _Record()
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:  # no reverse DNS lookup of the host name
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            self.record.handshake_failures += 1
            return
        try:
            _Handler(tls, client_address, self)
        finally:
            tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up is not a test failure


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.record.requests.append(Seen(self.command, self.path, headers, body))
        request = httpx.Request(
            self.command,
            f"https://{headers.get('host', 'unknown')}{self.path}",
            headers=headers,
            content=body,
        )
        response = self.server.app(request)
        content = response.read()
        self.close_connection = True
        self.send_response(response.status_code)
        for name, value in response.headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST


class TlsProxy:
    """An HTTPS server on 127.0.0.1 with a certificate for :data:`SNI_NAME` only, issued by ``ca``.

    Records every request (``requests``), the SNI name of every handshake (``sni_names``) and the
    handshakes that failed; answers with ``app`` (by default, the path as JSON).
    """

    def __init__(self, ca: trustme.CA, app: Callable[[httpx.Request], httpx.Response] = echo) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(SNI_NAME).configure_cert(context)
        self._server = _Server(context, app)
        context.sni_callback = self._sni
        self._thread: threading.Thread | None = None
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"

    def _sni(self, sock: Any, name: str | None, context: Any) -> None:
        self._server.record.sni_names.append(name)

    @property
    def requests(self) -> list[Seen]:
        return self._server.record.requests

    @property
    def sni_names(self) -> list[str | None]:
        return self._server.record.sni_names

    @property
    def handshake_failures(self) -> int:
        return self._server.record.handshake_failures

    def __enter__(self) -> TlsProxy:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def pem(ca: trustme.CA) -> str:
    return ca.cert_pem.bytes().decode("ascii")


def write_ca(path: Path, ca: trustme.CA | None, *, mtime_ns: int | None = None) -> None:
    """Write ``ca`` (empty when ``None``) in place, then move the modification time on (or set it)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(pem(ca) if ca is not None else "")
    target = mtime_ns if mtime_ns is not None else before + 2_000_000_000
    os.utime(path, ns=(target, target))


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def other_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server(ca: trustme.CA) -> Iterator[TlsProxy]:
    with TlsProxy(ca) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_ambient_trust(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def proxy_transport(mode: str, proxy: TokenProxy, trust: ProxyTrust | None = None) -> Any:
    if mode == "sync":
        return TokenProxyTransport(proxy, trust=trust)
    return AsyncTokenProxyTransport(proxy, trust=trust)


def _post_sync(transport: Any, url: str, **kwargs: Any) -> httpx.Response:
    client = httpx.Client(transport=transport, trust_env=False)
    return client.post(url, **kwargs)


async def post(
    mode: str, transport: Any, url: str = TOKEN_URL + "?x=1&y=%2F", **kwargs: Any
) -> httpx.Response:
    """POST a form through a client on ``transport`` (the client does not close the transport)."""
    kwargs.setdefault("data", {"grant_type": "client_credentials"})
    if mode == "sync":
        return _post_sync(transport, url, **kwargs)
    async_client = httpx.AsyncClient(transport=transport, trust_env=False)
    return await async_client.post(url, **kwargs)


async def close(mode: str, transport: Any) -> None:
    if mode == "sync":
        transport.close()
    else:
        await transport.aclose()


# --------------------------------------------------------------------------- the proxy URL


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://10.0.0.1:8443", "https://10.0.0.1:8443/"),
        ("https://10.0.0.1:8443/", "https://10.0.0.1:8443/"),
        (
            "https://proxy.kube-system.svc/identity/binding/",
            "https://proxy.kube-system.svc/identity/binding/",
        ),
        (" https://[fd00::1]:443/p\n", "https://[fd00::1]/p"),
        ("https://10.0.0.1:8443/?", "https://10.0.0.1:8443/"),
    ],
)
def test_valid_proxy_urls(url: str, expected: str) -> None:
    assert str(TokenProxy.create(url).url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://10.0.0.1:8080", r"must use the 'https' scheme, not 'http'"),
        ("10.0.0.1:8443", r"must use the 'https' scheme"),
        ("https:///path", r"has no host"),
        ("https://user@10.0.0.1", r"must not contain a user name or password"),
        (
            "https://user:pa55w0rd-CANARY@10.0.0.1/p",
            r"\(https://\*\*\*@10\.0\.0\.1/p\) must not contain a user",
        ),
        ("https://10.0.0.1/p?api-version=1", r"must not contain query parameters"),
        ("https://10.0.0.1/p#frag", r"must not contain a fragment"),
        ("https://10.0.0.1:notaport/", r"is not a valid URL"),
    ],
)
def test_invalid_proxy_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        TokenProxy.create(url)
    assert "pa55w0rd" not in str(caught.value)


@pytest.mark.parametrize("name", ["", "  ", "aks proxy", "aks-proxy.test/path", "user@aks-proxy.test"])
def test_invalid_sni_names(name: str) -> None:
    with pytest.raises(ValueError, match="is not a host name"):
        TokenProxy.create("https://10.0.0.1", sni_name=name)


# --------------------------------------------------------------------------- the rewrite


@pytest.mark.parametrize(
    ("proxy", "url", "expected"),
    [
        ("https://10.0.0.1:8443", TOKEN_URL, f"https://10.0.0.1:8443{TOKEN_PATH}"),
        ("https://10.0.0.1:8443/", TOKEN_URL, f"https://10.0.0.1:8443{TOKEN_PATH}"),
        ("https://10.0.0.1:8443/base", TOKEN_URL, f"https://10.0.0.1:8443/base{TOKEN_PATH}"),
        (
            "https://10.0.0.1:8443/a/b/",
            TOKEN_URL + "?x=1&y=%2F",
            f"https://10.0.0.1:8443/a/b{TOKEN_PATH}?x=1&y=%2F",
        ),
        (
            "https://proxy.test/p",
            "https://login.microsoftonline.com/common/discovery/instance?api-version=1.1&authorization_endpoint=x",
            "https://proxy.test/p/common/discovery/instance?api-version=1.1&authorization_endpoint=x",
        ),
        ("https://proxy.test", "https://login.microsoftonline.com", "https://proxy.test/"),
        # already aimed at the proxy (a retried request): unchanged
        (
            "https://10.0.0.1:8443/base",
            f"https://10.0.0.1:8443/base{TOKEN_PATH}",
            f"https://10.0.0.1:8443/base{TOKEN_PATH}",
        ),
        ("https://10.0.0.1:8443", f"https://10.0.0.1:8443{TOKEN_PATH}", f"https://10.0.0.1:8443{TOKEN_PATH}"),
        # same origin, outside the proxy's path: rewritten
        (
            "https://10.0.0.1:8443/base",
            "https://10.0.0.1:8443/basement/x",
            "https://10.0.0.1:8443/base/basement/x",
        ),
    ],
)
def test_target(proxy: str, url: str, expected: str) -> None:
    assert str(TokenProxy.create(proxy).target(httpx.URL(url))) == expected


def test_rewrite_keeps_the_request_but_its_destination() -> None:
    proxy = TokenProxy.create("https://10.0.0.1:8443/base/", sni_name=SNI_NAME)
    original = httpx.Request(
        "POST",
        TOKEN_URL + "?x=1",
        data={"grant_type": "client_credentials", "client_assertion": "eyJ.a.b"},
        headers={"User-Agent": "entra-identity/test", "client-request-id": "id-1"},
        extensions={"timeout": {"connect": 1.0}},
    )

    rewritten = proxy.rewrite(original)

    assert (rewritten.method, str(rewritten.url)) == ("POST", f"https://10.0.0.1:8443/base{TOKEN_PATH}?x=1")
    assert rewritten.headers.multi_items() == [
        ("host", "10.0.0.1:8443"),
        ("user-agent", "entra-identity/test"),
        ("client-request-id", "id-1"),
        ("content-length", "54"),
        ("content-type", "application/x-www-form-urlencoded"),
    ]
    assert rewritten.read() == original.read()
    assert rewritten.extensions == {"timeout": {"connect": 1.0}, SNI_EXTENSION: SNI_NAME}
    assert str(original.url) == TOKEN_URL + "?x=1"
    assert original.headers["host"] == "login.microsoftonline.com"
    assert SNI_EXTENSION not in original.extensions


def test_no_sni_name_no_extension() -> None:
    rewritten = TokenProxy.create("https://10.0.0.1").rewrite(httpx.Request("GET", TOKEN_URL))
    assert SNI_EXTENSION not in rewritten.extensions
    assert rewritten.headers["host"] == "10.0.0.1"


# --------------------------------------------------------------------------- the CA


def test_ca_file_and_data_are_exclusive(tmp_path: Path, ca: trustme.CA) -> None:
    path = tmp_path / "ca.pem"
    path.write_text(pem(ca))
    with pytest.raises(ValueError, match="Both a CA file and CA data are set"):
        ProxyTrust(ca_file=str(path), ca_data=pem(ca))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"Failed to read the CA file .*ca\.pem': No such file or directory"),
        ("", r"The CA file .*ca\.pem' is empty"),
        (" \n", r"The CA file .*ca\.pem' is empty"),
        ("not a certificate", r"The CA file .*ca\.pem' holds no usable PEM certificate"),
    ],
    ids=["missing", "empty", "blank", "garbage"],
)
def test_an_unusable_ca_file_is_refused_at_start(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=message):
        ProxyTrust(ca_file=str(path))


def test_unusable_ca_data_is_refused() -> None:
    with pytest.raises(ValueError, match="The CA data holds no usable PEM certificate"):
        ProxyTrust(ca_data="-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")


def test_trust_sources(tmp_path: Path, ca: trustme.CA) -> None:
    path = tmp_path / "ca.pem"
    path.write_text(pem(ca))
    assert ProxyTrust(ca_file=str(path)).pem == pem(ca)
    assert ProxyTrust(ca_data=pem(ca)).pem == pem(ca)
    system = ProxyTrust()
    assert system.pem is None
    assert system.context() is system.context()  # built once


# --------------------------------------------------------------------------- over TLS


@pytest.mark.parametrize("source", ["file", "data"])
async def test_requests_reach_the_proxy_by_ip_with_the_sni_name(
    mode: str, server: TlsProxy, ca: trustme.CA, tmp_path: Path, source: str
) -> None:
    path = tmp_path / "ca.pem"
    path.write_text(pem(ca))
    trust = ProxyTrust(ca_file=str(path)) if source == "file" else ProxyTrust(ca_data=pem(ca))
    transport = proxy_transport(
        mode, TokenProxy.create(server.url + "/aks/binding/", sni_name=SNI_NAME), trust
    )

    response = await post(mode, transport, headers={"client-request-id": "id-1"})

    assert response.status_code == 200
    assert response.json() == {"path": f"/aks/binding{TOKEN_PATH}"}
    [seen] = server.requests
    assert (seen.method, seen.target) == ("POST", f"/aks/binding{TOKEN_PATH}?x=1&y=%2F")
    assert seen.headers["host"] == server.url.removeprefix("https://")
    assert seen.headers["client-request-id"] == "id-1"
    assert seen.body == b"grant_type=client_credentials"
    assert server.sni_names == [SNI_NAME]
    await close(mode, transport)


async def test_a_certificate_from_another_ca_is_refused(
    mode: str, server: TlsProxy, other_ca: trustme.CA, caplog: pytest.LogCaptureFixture
) -> None:
    transport = proxy_transport(
        mode, TokenProxy.create(server.url, sni_name=SNI_NAME), ProxyTrust(ca_data=pem(other_ca))
    )

    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        await post(mode, transport)

    assert server.requests == []
    assert f"Token proxy {server.url}/ (SNI {SNI_NAME}): ConnectError: [SSL: CERTIFICATE_VERIFY_FAILED]" in (
        caplog.text
    )
    await close(mode, transport)


async def test_without_the_sni_name_the_certificate_does_not_match(
    mode: str, server: TlsProxy, ca: trustme.CA
) -> None:
    transport = proxy_transport(mode, TokenProxy.create(server.url), ProxyTrust(ca_data=pem(ca)))

    with pytest.raises(httpx.ConnectError, match=r"CERTIFICATE_VERIFY_FAILED.*127\.0\.0\.1"):
        await post(mode, transport)

    assert server.requests == []
    await close(mode, transport)


async def test_neither_file_nor_data_means_the_system_trust_store(mode: str, server: TlsProxy) -> None:
    transport = proxy_transport(mode, TokenProxy.create(server.url, sni_name=SNI_NAME))

    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        await post(mode, transport)

    assert server.sni_names == [SNI_NAME]
    await close(mode, transport)


async def test_the_ca_file_is_reloaded_when_it_changes(
    mode: str,
    server: TlsProxy,
    ca: trustme.CA,
    other_ca: trustme.CA,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "ca.pem"
    write_ca(path, other_ca)
    trust = ProxyTrust(ca_file=str(path))
    transport = proxy_transport(mode, TokenProxy.create(server.url, sni_name=SNI_NAME), trust)

    with pytest.raises(httpx.ConnectError):
        await post(mode, transport)  # the file names the wrong CA

    write_ca(path, ca)  # rotated to the right one
    assert (await post(mode, transport)).status_code == 200

    unchanged = path.stat().st_mtime_ns
    write_ca(path, other_ca, mtime_ns=unchanged)  # same size, same mtime: not seen as a change
    assert (await post(mode, transport)).status_code == 200
    assert trust.pem == pem(ca)

    write_ca(path, None)  # emptied mid-rotation: the previous CA stays
    assert (await post(mode, transport)).status_code == 200
    assert "Keeping the token proxy's previous CA: The CA file" in caplog.text

    path.unlink()  # gone: the previous CA stays
    assert (await post(mode, transport)).status_code == 200

    write_ca(path, other_ca)  # back, with a new content: reloaded
    with pytest.raises(httpx.ConnectError):
        await post(mode, transport)
    assert trust.pem == pem(other_ca)
    assert len(server.requests) == 4
    await close(mode, transport)


def test_async_transport_serves_successive_event_loops(server: TlsProxy, ca: trustme.CA) -> None:
    transport = AsyncTokenProxyTransport(
        TokenProxy.create(server.url, sni_name=SNI_NAME), trust=ProxyTrust(ca_data=pem(ca))
    )

    async def once() -> int:
        async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
            response = await client.post(TOKEN_URL, data={"a": "b"})
            return response.status_code

    assert [asyncio.run(once()), asyncio.run(once())] == [200, 200]
    assert len(server.requests) == 2


def test_a_closed_transport_opens_new_connections(server: TlsProxy, ca: trustme.CA) -> None:
    transport = TokenProxyTransport(
        TokenProxy.create(server.url, sni_name=SNI_NAME), trust=ProxyTrust(ca_data=pem(ca))
    )
    with httpx.Client(transport=transport, trust_env=False) as client:
        assert client.post(TOKEN_URL).status_code == 200
    with httpx.Client(transport=transport, trust_env=False) as client:
        assert client.post(TOKEN_URL).status_code == 200
    assert len(server.requests) == 2


# --------------------------------------------------------------------------- given transports and clients


class Recorder:
    """A MockTransport handler that records requests and answers a gzip-encoded JSON body."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = gzip.compress(json.dumps({"path": request.url.path}).encode())
        return httpx.Response(200, content=body, headers={"content-encoding": "gzip"})


class ClosingMock(httpx.MockTransport):
    closed = 0

    def close(self) -> None:
        self.closed += 1

    async def aclose(self) -> None:
        self.closed += 1


async def test_a_given_transport_gets_rewritten_requests(mode: str) -> None:
    recorder = Recorder()
    inner = ClosingMock(recorder)
    proxy = TokenProxy.create("https://10.0.0.1:8443/base", sni_name=SNI_NAME)
    transport: Any = (
        TokenProxyTransport(proxy, transport=inner)
        if mode == "sync"
        else AsyncTokenProxyTransport(proxy, transport=inner)
    )

    response = await post(mode, transport)

    assert response.json() == {"path": f"/base{TOKEN_PATH}"}
    [request] = recorder.requests
    assert str(request.url) == f"https://10.0.0.1:8443/base{TOKEN_PATH}?x=1&y=%2F"
    assert request.headers["host"] == "10.0.0.1:8443"
    assert request.extensions[SNI_EXTENSION] == SNI_NAME
    await close(mode, transport)
    assert inner.closed == 1


async def test_a_given_client_sends_and_stays_open(mode: str) -> None:
    recorder = Recorder()
    proxy = TokenProxy.create("https://10.0.0.1:8443/base", sni_name=SNI_NAME)
    transport: Any
    if mode == "sync":
        user_client: Any = httpx.Client(transport=httpx.MockTransport(recorder))
        transport = TokenProxyTransport(proxy, transport=ClientTransport(user_client))
    else:
        user_client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
        transport = AsyncTokenProxyTransport(proxy, transport=AsyncClientTransport(user_client))

    response = await post(mode, transport)

    assert response.json() == {"path": f"/base{TOKEN_PATH}"}  # the gzip body decoded exactly once
    assert str(recorder.requests[0].url) == f"https://10.0.0.1:8443/base{TOKEN_PATH}?x=1&y=%2F"
    await close(mode, transport)
    assert not user_client.is_closed
    if mode == "sync":
        user_client.close()
    else:
        await user_client.aclose()


def test_describe_names_the_proxy_and_sni() -> None:
    proxy = TokenProxy.create("https://10.0.0.1:8443/p", sni_name=SNI_NAME)
    assert proxy.describe() == f"https://10.0.0.1:8443/p (SNI {SNI_NAME})"
    assert TokenProxy.create("https://10.0.0.1:8443/p").describe() == "https://10.0.0.1:8443/p"
