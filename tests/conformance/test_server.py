"""The HTTPS mount: a real TLS server on loopback in front of an ``httpx`` handler."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
import requests

from conformance.authority import (
    DEFAULT_CLIENT_ID,
    DEFAULT_SECRET,
    DEFAULT_TENANT,
    Fault,
    MockAuthority,
    generate_client_certificate,
)
from conformance.server import HttpsServer

CLIENT_CREDENTIALS = {
    "grant_type": "client_credentials",
    "client_id": DEFAULT_CLIENT_ID,
    "client_secret": DEFAULT_SECRET,
    "scope": "https://vault.azure.net/.default",
}
TOKEN_PATH = f"/{DEFAULT_TENANT}/oauth2/v2.0/token"
METADATA_PATH = f"/{DEFAULT_TENANT}/v2.0/.well-known/openid-configuration"


@pytest.fixture
def authority() -> MockAuthority:
    return MockAuthority.with_defaults()


@pytest.fixture
def server(authority: MockAuthority) -> Iterator[HttpsServer]:
    with authority.serve() as running:
        yield running


@pytest.fixture
def client(server: HttpsServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, verify=trust(server)) as http:
        yield http


def trust_file(ca_path: str) -> ssl.SSLContext:
    """A client context trusting the server's CA (httpx 0.28 deprecates ``verify=<path>``)."""
    return ssl.create_default_context(cafile=ca_path)


def trust(server: HttpsServer) -> ssl.SSLContext:
    return trust_file(server.ca_path)


def echo(request: httpx.Request) -> httpx.Response:
    """A handler that describes the request it got."""
    return httpx.Response(
        200,
        json={
            "method": request.method,
            "url": str(request.url),
            "body": request.content.decode(),
            "headers": dict(request.headers),
        },
    )


def test_address_and_ca(server: HttpsServer) -> None:
    assert server.url == f"https://127.0.0.1:{server.port}"
    assert server.port > 0
    assert Path(server.ca_path).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert server.client_env() == {"SSL_CERT_FILE": server.ca_path, "REQUESTS_CA_BUNDLE": server.ca_path}


def test_tls_round_trip_and_origin(
    client: httpx.Client, server: HttpsServer, authority: MockAuthority
) -> None:
    response = client.get(METADATA_PATH)
    assert response.status_code == 200
    assert response.json()["token_endpoint"] == f"{server.url}/{DEFAULT_TENANT}/oauth2/v2.0/token"
    assert response.headers["content-length"] == str(len(response.content))
    token = client.post(TOKEN_PATH, data=CLIENT_CREDENTIALS)
    assert token.status_code == 200
    assert authority.describe_token(token.json()["access_token"]) is not None
    recorded = authority.requests_to("token")[0]
    assert recorded.url == f"{server.url}{TOKEN_PATH}"
    assert recorded.form == CLIENT_CREDENTIALS


def test_the_ca_is_required(server: HttpsServer) -> None:
    with httpx.Client(verify=True) as http, pytest.raises(httpx.ConnectError):
        http.get(f"{server.url}{METADATA_PATH}")


def test_certificate_names_localhost(server: HttpsServer, authority: MockAuthority) -> None:
    # the Host header keeps the name the client used, so metadata names it too
    with httpx.Client(verify=trust(server)) as http:
        response = http.get(f"https://localhost:{server.port}{METADATA_PATH}")
    assert response.json()["issuer"] == f"https://localhost:{server.port}/{DEFAULT_TENANT}/v2.0"


def test_keep_alive_reuses_one_connection(client: httpx.Client, server: HttpsServer) -> None:
    for _ in range(5):
        assert client.get(METADATA_PATH).status_code == 200
    assert server.stats.connections == 1
    assert server.stats.requests == 5


def test_tcp_nodelay_on_accepted_sockets(client: httpx.Client, server: HttpsServer) -> None:
    client.get(METADATA_PATH)
    with httpx.Client(verify=trust(server)) as second:
        second.get(f"{server.url}{METADATA_PATH}")
    assert server.stats.nodelay == [True, True]


def test_listen_backlog_and_daemon_threads() -> None:
    from conformance.server import _Server

    assert _Server.request_queue_size >= 128
    assert _Server.daemon_threads is True


def test_requests_library_with_the_ca_bundle(server: HttpsServer) -> None:
    response = requests.post(
        f"{server.url}{TOKEN_PATH}", data=CLIENT_CREDENTIALS, verify=server.ca_path, timeout=10
    )
    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"


def test_client_ssl_context(server: HttpsServer) -> None:
    with httpx.Client(verify=server.client_ssl_context()) as http:
        assert http.get(f"{server.url}{METADATA_PATH}").status_code == 200


async def test_async_client(server: HttpsServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, verify=trust(server)) as http:
        responses = await asyncio.gather(*(http.get(METADATA_PATH) for _ in range(5)))
    assert [r.status_code for r in responses] == [200] * 5


def test_error_bodies_cross_the_wire(client: httpx.Client, server: HttpsServer) -> None:
    response = client.post(
        TOKEN_PATH,
        data={**CLIENT_CREDENTIALS, "client_secret": "nope"},
        headers={"client-request-id": "corr-over-https"},
    )
    assert response.status_code == 401
    body = response.json()
    assert (body["error"], body["error_codes"], body["correlation_id"]) == (
        "invalid_client",
        [7000215],
        "corr-over-https",
    )
    assert body["error_uri"] == f"{server.url}/error?code=7000215"


def test_unmatched_requests_are_404(client: httpx.Client, authority: MockAuthority) -> None:
    assert client.get("/nothing").status_code == 404
    assert [r.path for r in authority.unmatched] == ["/nothing"]


def test_drop_connection_closes_the_socket(client: httpx.Client, authority: MockAuthority) -> None:
    authority.inject(Fault.drop_connection(), endpoint="token")
    with pytest.raises(httpx.TransportError):
        client.post(TOKEN_PATH, data=CLIENT_CREDENTIALS)
    assert client.post(TOKEN_PATH, data=CLIENT_CREDENTIALS).status_code == 200


def test_latency_is_applied_server_side(client: httpx.Client, authority: MockAuthority) -> None:
    client.get(METADATA_PATH)  # connect and handshake first
    authority.inject(Fault.latency(0.3))
    started = time.perf_counter()
    response = client.get(METADATA_PATH)
    assert time.perf_counter() - started >= 0.3
    assert response.status_code == 200


def test_requests_are_served_concurrently() -> None:
    # Six requests whose handler only returns once all six are inside it at the same time: a server
    # that handled them one after another would break the barrier (a 500) instead of answering 200.
    barrier = threading.Barrier(6, timeout=10)

    def handler(request: httpx.Request) -> httpx.Response:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return httpx.Response(500)
        return httpx.Response(200, json={"ok": True})

    results: list[int] = []
    with HttpsServer(handler) as concurrent_server:

        def fetch() -> None:
            with httpx.Client(verify=trust(concurrent_server)) as http:
                results.append(http.get(f"{concurrent_server.url}/anything").status_code)

        threads = [threading.Thread(target=fetch) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == [200] * 6


def test_status_fault_over_https(client: httpx.Client, authority: MockAuthority) -> None:
    authority.inject(Fault.status(429, retry_after="3"), endpoint="token")
    response = client.post(TOKEN_PATH, data=CLIENT_CREDENTIALS)
    assert (response.status_code, response.headers["retry-after"]) == (429, "3")
    authority.inject(Fault.malformed(b"not json", "text/plain"))
    response = client.post(TOKEN_PATH, data=CLIENT_CREDENTIALS)
    assert (response.status_code, response.content, response.headers["content-length"]) == (
        200,
        b"not json",
        "8",
    )


def test_certificate_assertion_audience_is_the_https_url(
    server: HttpsServer, authority: MockAuthority
) -> None:
    cert = generate_client_certificate()
    client_id = str(uuid.uuid4())
    authority.add_application(DEFAULT_TENANT, client_id, certificate=cert.certificate_pem)
    x5t = base64.urlsafe_b64encode(bytes.fromhex(cert.thumbprint)).decode()  # SHA-1, padded like MSAL
    token_url = f"{server.url}{TOKEN_PATH}"
    now = int(time.time())
    assertion = jwt.encode(
        {"aud": token_url, "iss": client_id, "sub": client_id, "jti": str(uuid.uuid4()), "exp": now + 600},
        cert.private_key,
        algorithm="RS256",
        headers={"x5t": x5t},
    )
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "scope": CLIENT_CREDENTIALS["scope"],
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    with httpx.Client(verify=trust(server)) as http:
        assert http.post(token_url, data=form).status_code == 200


def test_request_translation_with_echo_handler() -> None:
    with HttpsServer(echo) as server, httpx.Client(verify=trust(server)) as http:
        response = http.post(f"{server.url}/a/b?x=1&y=%20z", content=b"payload", headers={"X-Test": "yes"})
        seen = response.json()
        assert seen["method"] == "POST"
        assert seen["url"] == f"{server.url}/a/b?x=1&y=%20z"
        assert seen["body"] == "payload"
        assert seen["headers"]["x-test"] == "yes"
        head = http.head(f"{server.url}/x")
        assert head.status_code == 200
        assert head.content == b""


def test_chunked_request_body() -> None:
    def chunks() -> Iterator[bytes]:
        yield b"grant_type=client_"
        yield b"credentials"

    with HttpsServer(echo) as server, httpx.Client(verify=trust(server)) as http:
        response = http.post(f"{server.url}/t", content=chunks())
    assert response.json()["body"] == "grant_type=client_credentials"


def test_handler_error_is_a_500() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("bug in the handler")

    with HttpsServer(broken) as server, httpx.Client(verify=trust(server)) as http:
        response = http.get(f"{server.url}/x")
    assert response.status_code == 500


def test_only_loopback_can_be_bound() -> None:
    for host in ("0.0.0.0", "192.168.1.10", "::"):
        with pytest.raises(ValueError, match="loopback"):
            HttpsServer(echo, host=host)


def test_listening_socket_is_loopback_only(server: HttpsServer) -> None:
    bound = server._server.socket.getsockname()  # type: ignore[union-attr]
    assert bound[0] == "127.0.0.1"


def test_stop_closes_the_port_and_removes_the_ca(authority: MockAuthority) -> None:
    server = authority.serve()
    with server:
        ca_path = server.ca_path
        port = server.port
        with httpx.Client(
            verify=trust_file(ca_path)
        ) as http:  # hold a keep-alive connection open across stop
            http.get(f"{server.url}{METADATA_PATH}")
    assert not os.path.exists(ca_path)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    with pytest.raises(RuntimeError):
        _ = server.stats


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        server = HttpsServer(echo, host="::1").start()
    except OSError as exc:
        pytest.skip(f"cannot bind ::1: {exc}")
    try:
        assert server.url == f"https://[::1]:{server.port}"
        with httpx.Client(verify=trust(server)) as http:
            assert http.get(f"{server.url}/x").json()["url"] == f"{server.url}/x"
    finally:
        server.stop()


def test_tls_handshake_garbage_does_not_kill_the_server(server: HttpsServer, client: httpx.Client) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # plain HTTP to a TLS port
        raw.settimeout(5)
        with contextlib.suppress(OSError):
            raw.recv(100)
    assert client.get(METADATA_PATH).status_code == 200
