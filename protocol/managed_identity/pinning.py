"""TLS certificate pinning for Service Fabric's managed identity endpoint.

Service Fabric serves its token endpoint over HTTPS with a self-signed certificate whose SHA-1
thumbprint it publishes in ``IDENTITY_SERVER_THUMBPRINT``. The right check is "this exact
certificate", not "no check at all" (which is what disabling verification amounts to, and what
some clients do): the transports here skip CA validation and instead compare the SHA-1 of the
server's DER certificate with the pin, in constant time, right after the TLS handshake and
before a single byte of the request (which carries the ``Secret`` header) is written.

They plug into httpx at the connection level (an httpcore network backend), are never routed
through a proxy, and raise :class:`CertificatePinError` (an ``httpx.ConnectError``) on mismatch.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import ssl
from typing import Any

import httpcore
import httpx

__all__ = ["CertificatePinError", "normalize_thumbprint", "pinned_async_transport", "pinned_transport"]

_SEPARATORS = re.compile(r"[\s:]")
_SHA1_HEX = re.compile(r"[0-9A-F]{40}\Z")


class CertificatePinError(httpx.ConnectError):
    """The server's certificate is not the pinned one."""

    explains = True
    retryable = False  # the same server presents the same certificate


def normalize_thumbprint(value: str) -> str:
    """The thumbprint as 40 upper-case hex digits (spaces, tabs, newlines and colons removed).

    Raises:
        ValueError: not a SHA-1 thumbprint.
    """
    cleaned = _SEPARATORS.sub("", value).upper()
    if not _SHA1_HEX.match(cleaned):
        raise ValueError(
            "IDENTITY_SERVER_THUMBPRINT must be the 40 hexadecimal digits of a SHA-1 certificate thumbprint"
        )
    return cleaned


def _context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # replaced by the pin check below
    return context


def _check(stream: Any, pin: bytes) -> None:
    ssl_object = stream.get_extra_info("ssl_object")
    # httpcore's sync stream hands out the low-level ``_ssl._SSLSocket``, whose ``getpeercert`` takes
    # its argument positionally only (``ssl.SSLObject``, from the async backend, accepts both).
    der = ssl_object.getpeercert(True) if ssl_object is not None else None
    if not der or not hmac.compare_digest(hashlib.sha1(der).digest(), pin):  # noqa: S324 - the platform's pin is SHA-1
        seen = hashlib.sha1(der).hexdigest().upper() if der else "none"  # noqa: S324
        raise CertificatePinError(
            f"The Service Fabric managed identity endpoint presented a certificate with thumbprint {seen}, "
            "not the one in IDENTITY_SERVER_THUMBPRINT; the request was not sent."
        )


class _PinnedStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, pin: bytes) -> None:
        self._inner = inner
        self._pin = pin

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        stream = self._inner.start_tls(ssl_context, server_hostname, timeout)
        try:
            _check(stream, self._pin)
        except BaseException:
            stream.close()
            raise
        return stream

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    def __init__(self, pin: bytes) -> None:
        self._inner = httpcore.SyncBackend()
        self._pin = pin

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _PinnedStream(stream, self._pin)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncPinnedStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream, pin: bytes) -> None:
        self._inner = inner
        self._pin = pin

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        try:
            _check(stream, self._pin)
        except BaseException:
            await stream.aclose()
            raise
        return stream

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _AsyncPinnedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, pin: bytes) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._pin = pin

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _AsyncPinnedStream(stream, self._pin)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def pinned_transport(thumbprint: str) -> httpx.HTTPTransport:
    """A sync transport that only talks to a server presenting the certificate ``thumbprint``."""
    pin = bytes.fromhex(normalize_thumbprint(thumbprint))
    context = _context()
    transport = httpx.HTTPTransport(verify=context, trust_env=False)
    transport._pool = httpcore.ConnectionPool(ssl_context=context, network_backend=_PinnedBackend(pin))
    return transport


def pinned_async_transport(thumbprint: str) -> httpx.AsyncHTTPTransport:
    """The async twin of :func:`pinned_transport`."""
    pin = bytes.fromhex(normalize_thumbprint(thumbprint))
    context = _context()
    transport = httpx.AsyncHTTPTransport(verify=context, trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=context, network_backend=_AsyncPinnedBackend(pin)
    )
    return transport
