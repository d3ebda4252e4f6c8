"""Real HTTPS and plain-HTTP servers on loopback that hand every request to an ``httpx`` handler.

They let clients that are not ours (azure-identity over ``requests`` or ``aiohttp``) talk to the mock
authority exactly as they would talk to Entra: TLS with a throw-away CA made by ``trustme``,
HTTP/1.1 keep-alive, ``Content-Length`` framing. :class:`HttpServer` is the same server without TLS,
for the managed-identity endpoints, which are plain HTTP on a local address in real life (IMDS at
``http://169.254.169.254``, the App Service and Arc agents on ``http://localhost``). Properties that
matter for tests and measurements:

* it binds loopback only (127.0.0.1 by default, or ``::1``), on an ephemeral port unless told;
* every accepted socket gets ``TCP_NODELAY`` (without it Nagle plus delayed ACK add ~40 ms to each
  response and every latency figure measures the mock), and the listen backlog is 128;
* each connection is served on its own daemon thread; the TLS handshake happens there too, so a
  slow client never stalls the accept loop;
* :attr:`HttpsServer.certificate_thumbprint` is the SHA-1 of the server certificate (40 upper-case
  hex digits), the pin Service Fabric clients read from ``IDENTITY_SERVER_THUMBPRINT``;
* a handler that raises ``httpx.TransportError`` (the drop-connection fault) gets the connection
  closed without a response; a handler that sleeps (the latency fault) sleeps in the server thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import shutil
import socket
import socketserver
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

logger = logging.getLogger(__name__)

Handler = Callable[[httpx.Request], httpx.Response]
_HOP_BY_HOP = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}
)


@dataclass
class ServerStats:
    """Counters a test can assert on: connections accepted, ``TCP_NODELAY`` as read back, requests."""

    connections: int = 0
    nodelay: list[bool] = field(default_factory=list)
    requests: int = 0


class _Server(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` with per-connection TLS (unless ``ssl_context`` is ``None``),
    ``TCP_NODELAY`` and connection tracking."""

    daemon_threads = True
    request_queue_size = 128  # listen backlog
    allow_reuse_address = True
    handshake_timeout = 10.0

    def __init__(self, address: tuple[str, int], ssl_context: ssl.SSLContext | None, app: Handler) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.ssl_context = ssl_context
        self.scheme = "http" if ssl_context is None else "https"
        self.app = app
        self.stats = ServerStats()
        self.connections: set[socket.socket] = set()
        self.lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN (a reverse DNS lookup); loopback needs none.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Runs on the connection's thread: TLS handshake, then HTTP until the connection closes."""
        conn: socket.socket = request
        if self.ssl_context is not None:
            request.settimeout(self.handshake_timeout)
            try:
                conn = self.ssl_context.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError) as exc:
                logger.debug("TLS handshake with %s failed: %s", client_address, exc)
                return
            conn.settimeout(None)
        with self.lock:
            self.connections.add(conn)
            self.stats.connections += 1
            self.stats.nodelay.append(bool(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)))
        try:
            _RequestHandler(conn, client_address, self)
        finally:
            with self.lock:
                self.connections.discard(conn)
            conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanishes mid-request is normal here; keep stderr clean.
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close_connections(self) -> None:
        """Wake every handler thread blocked on a keep-alive connection by shutting its socket."""
        with self.lock:
            live = list(self.connections)
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _RequestHandler(BaseHTTPRequestHandler):
    """Translate one HTTP request to ``httpx.Request``, call the app, write its ``httpx.Response``."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline(65537)
                try:
                    size = int(size_line.split(b";")[0].strip(), 16)
                except ValueError:
                    return None
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _plain(self, status: int, text: str) -> None:
        body = text.encode()
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _serve(self) -> None:
        with self.server.lock:
            self.server.stats.requests += 1
        body = self._read_body()
        if body is None or not self.path.startswith("/"):
            self._plain(400, "malformed request")
            return
        # The Host header keeps the origin the client used (127.0.0.1, localhost, with or without
        # port): the authority derives metadata URLs and the expected assertion audience from it.
        host = self.headers.get("Host") or f"{self.server.server_name}:{self.server.server_port}"
        headers = [
            (name, value) for name, value in self.headers.items() if name.lower() != "transfer-encoding"
        ]
        try:
            request = httpx.Request(
                self.command, f"{self.server.scheme}://{host}{self.path}", headers=headers, content=body
            )
        except (httpx.InvalidURL, ValueError):
            self._plain(400, "malformed request target")
            return
        try:
            response = self.server.app(request)
            content = response.read()
        except httpx.TransportError:
            self.close_connection = True  # the drop-connection fault: no response at all
            return
        except Exception:
            logger.exception("handler failed for %s %s", self.command, self.path)
            self._plain(500, "mock handler error")
            return
        self.send_response(response.status_code, response.reason_phrase)
        for name, value in response.headers.multi_items():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)


class _LoopbackServer:
    """What the HTTPS and plain-HTTP servers share: loopback binding, the serving thread, stop."""

    _scheme = "http"

    def __init__(self, handler: Handler, *, host: str = "127.0.0.1", port: int = 0) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the mock {self._scheme.upper()} server binds loopback only, not {host!r}")
        self._handler = handler
        self._host = host
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.url = ""

    def _listen(self, ssl_context: ssl.SSLContext | None) -> None:
        """Bind and start serving on a daemon thread (the subclass prepared TLS, or not)."""
        self._server = _Server((self._host, self._requested_port), ssl_context, self._handler)
        self.port = int(self._server.server_address[1])
        netloc = f"[{self._host}]" if ":" in self._host else self._host
        self.url = f"{self._scheme}://{netloc}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"mock-authority-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def _check_not_running(self) -> None:
        if self._server is not None:
            raise RuntimeError("the server is already running")

    def _shutdown(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def running(self) -> bool:
        """Whether the server is serving (between :meth:`start` and :meth:`stop`)."""
        return self._server is not None

    @property
    def stats(self) -> ServerStats:
        """Connection and request counters of the running server."""
        if self._server is None:
            raise RuntimeError("the server is not running")
        return self._server.stats


class HttpServer(_LoopbackServer):
    """Serve ``handler`` over plain HTTP on loopback; use as a context manager.

    ``url`` (``http://127.0.0.1:<port>``) and ``port`` are set once started. Managed-identity
    endpoints are plain HTTP on a local address in real life, so this is their natural mount.
    """

    _scheme = "http"

    def start(self) -> HttpServer:
        """Bind and start serving on a daemon thread."""
        self._check_not_running()
        self._listen(None)
        return self

    def stop(self) -> None:
        """Stop serving and close live connections."""
        self._shutdown()

    def __enter__(self) -> HttpServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class HttpsServer(_LoopbackServer):
    """Serve ``handler`` over HTTPS on loopback; use as a context manager.

    ``url`` (``https://127.0.0.1:<port>``), ``port``, ``ca_path`` (PEM of the generated CA) and
    :attr:`certificate_thumbprint` are set once started; :meth:`client_env` gives the environment
    that makes ``requests`` and ``aiohttp`` trust the CA. The CA and certificate live in a temporary
    directory removed on exit.
    """

    _scheme = "https"

    def __init__(self, handler: Handler, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(handler, host=host, port=port)
        self._tempdir: Path | None = None
        self._ca: Any = None  # trustme.CA, imported when the server starts
        self._thumbprint = ""
        self.ca_path = ""

    def start(self) -> HttpsServer:
        """Generate the CA and certificate, bind, and start serving on a daemon thread."""
        self._check_not_running()
        self._tempdir = Path(tempfile.mkdtemp(prefix="mock-authority-"))
        import trustme  # the conformance extra; only the HTTPS mount needs it

        self._ca = trustme.CA()
        server_cert = self._ca.issue_cert("127.0.0.1", "localhost", "::1")
        ca_file = self._tempdir / "ca.pem"
        self._ca.cert_pem.write_to_path(str(ca_file))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_cert.configure_cert(context)
        leaf_pem = server_cert.cert_chain_pems[0].bytes()
        try:
            self._listen(context)
        except BaseException:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            raise
        self._thumbprint = _sha1_thumbprint(leaf_pem)
        self.ca_path = str(ca_file)
        return self

    def stop(self) -> None:
        """Stop serving, close live connections and remove the CA files."""
        self._shutdown()
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None

    @property
    def certificate_thumbprint(self) -> str:
        """SHA-1 of the server certificate's DER encoding as 40 upper-case hex digits.

        The value a Service Fabric client pins (``IDENTITY_SERVER_THUMBPRINT``, reference §3.4:
        MSAL compares the SHA-1 of the server's DER certificate with it).
        """
        if not self._thumbprint:
            raise RuntimeError("the server has not been started")
        return self._thumbprint

    def client_env(self) -> dict[str, str]:
        """Environment variables that make ``requests`` and ``ssl`` defaults trust the CA."""
        return {"SSL_CERT_FILE": self.ca_path, "REQUESTS_CA_BUNDLE": self.ca_path}

    def client_ssl_context(self) -> ssl.SSLContext:
        """An ``ssl.SSLContext`` that trusts the generated CA (for clients configured in code)."""
        if self._ca is None:
            raise RuntimeError("the server is not running")
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context

    def __enter__(self) -> HttpsServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _sha1_thumbprint(pem: bytes) -> str:
    """SHA-1 over the DER form of a PEM certificate, upper-case hex (Windows-style thumbprint)."""
    der = ssl.PEM_cert_to_DER_cert(pem.decode("ascii"))
    return hashlib.sha1(der).hexdigest().upper()  # a certificate pin, as the clients define it
