"""The socket guard itself: loopback works, everything else fails before any packet leaves."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.conftest import NetworkGuardError


def test_connect_to_public_address_is_refused() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetworkGuardError, match="only loopback"):
            sock.connect(("20.190.160.1", 443))
    finally:
        sock.close()


def test_imds_address_is_refused() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetworkGuardError, match=r"169\.254\.169\.254"):
            sock.connect_ex(("169.254.169.254", 80))
    finally:
        sock.close()


def test_name_lookup_of_real_authority_is_refused() -> None:
    with pytest.raises(NetworkGuardError, match=r"login\.microsoftonline\.com"):
        socket.getaddrinfo("login.microsoftonline.com", 443)


def test_httpx_to_real_authority_fails_without_traffic() -> None:
    with httpx.Client() as client, pytest.raises(NetworkGuardError):
        client.get("https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration")


def test_loopback_is_allowed() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        client.connect(server.getsockname())
        accepted, _ = server.accept()
        accepted.sendall(b"ok")
        assert client.recv(2) == b"ok"
        accepted.close()
    finally:
        client.close()
        server.close()
