"""AKS identity binding: token requests sent through the cluster's token proxy.

With identity bindings, Azure Kubernetes Service runs a token proxy inside the cluster that
forwards a pod's token requests to Microsoft Entra ID. The pod learns where it is, and how to trust
it, from ``AZURE_KUBERNETES_TOKEN_PROXY`` (an ``https`` URL), ``AZURE_KUBERNETES_SNI_NAME`` (the
TLS server name to present and verify), and ``AZURE_KUBERNETES_CA_FILE`` or
``AZURE_KUBERNETES_CA_DATA`` (the CA the proxy's certificate chains to; the file is rotated in
place). The identity layer reads those variables; this module takes their values:

* :class:`TokenProxy` validates the proxy URL and rewrites every request:
  ``https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token?q`` becomes
  ``{proxy scheme, host, port}{proxy path}/{tenant}/oauth2/v2.0/token?q``, with ``Host`` the proxy's
  and httpcore's ``sni_hostname`` request extension set to the SNI name (the TLS handshake then
  sends that name and checks the certificate against it instead of the URL's host). A request
  already aimed at the proxy is left alone.
* :class:`ProxyTrust` holds the CA: PEM data, or a file read at start (empty, unreadable or not PEM:
  ``ValueError``) and read again whenever it changes on disk (an empty, unreadable or invalid file
  later keeps the CA in use, with a warning); neither means the system's default trust store.
* :class:`TokenProxyTransport` / :class:`AsyncTokenProxyTransport` are httpx transports that
  rewrite and then send, over their own connection pool that trusts only that CA (a new pool when
  the CA changes), or over a transport the caller gave (then the rewrite is all they add).
  :class:`ClientTransport` / :class:`AsyncClientTransport` turn a caller's httpx client into such a
  transport.

What the credential sends is unchanged: the token request is addressed to the Entra authority (the
assertion audience and the cache key still name it); only where the bytes go differs.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = [
    "SNI_EXTENSION",
    "AsyncClientTransport",
    "AsyncTokenProxyTransport",
    "ClientTransport",
    "ProxyTrust",
    "TokenProxy",
    "TokenProxyTransport",
]

_LOGGER = logging.getLogger("protocol")

#: The httpcore request extension that sets the TLS server name (SNI, and the name the
#: certificate is verified against) independently of the URL's host.
SNI_EXTENSION = "sni_hostname"


def _redacted(url: str) -> str:
    """``url`` without user information, for messages (it may hold a password)."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f"{scheme}://{authority}{slash}{path}"


@dataclass(frozen=True, slots=True)
class TokenProxy:
    """Where token requests go instead of the authority.

    Attributes:
        url: the proxy's URL (``https``; no user information, query or fragment).
        sni_name: the TLS server name to send and verify, if not the URL's host.
    """

    url: httpx.URL
    sni_name: str | None = None
    _prefix: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_prefix", self.url.raw_path.rstrip(b"/"))

    @classmethod
    def create(cls, url: str, *, sni_name: str | None = None) -> TokenProxy:
        """Validate ``url`` and ``sni_name``.

        Raises:
            ValueError: the URL is not absolute ``https``, or has user information, a query or a
                fragment; or the SNI name is blank or not a host name.
        """
        shown = _redacted(url)
        try:
            parsed = httpx.URL(url.strip())
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise ValueError(f"The token proxy URL ({shown}) is not a valid URL.") from exc
        if parsed.scheme != "https":
            raise ValueError(
                f"The token proxy URL ({shown}) must use the 'https' scheme, not '{parsed.scheme}'."
            )
        if not parsed.host:
            raise ValueError(f"The token proxy URL ({shown}) has no host.")
        if parsed.userinfo:
            raise ValueError(f"The token proxy URL ({shown}) must not contain a user name or password.")
        if parsed.query:
            raise ValueError(f"The token proxy URL ({shown}) must not contain query parameters.")
        if parsed.fragment:
            raise ValueError(f"The token proxy URL ({shown}) must not contain a fragment.")
        parsed = parsed.copy_with(raw_path=parsed.raw_path.split(b"?", 1)[0])  # drop a bare "?"
        name = sni_name.strip() if sni_name is not None else None
        if sni_name is not None and (not name or any(c.isspace() or c in "/:@" for c in name)):
            raise ValueError(f"The SNI name {sni_name!r} is not a host name.")
        return cls(parsed, name or None)

    def target(self, url: httpx.URL) -> httpx.URL:
        """Where a request for ``url`` goes: the proxy's origin, its path, then ``url``'s path and
        query."""
        proxy = self.url
        if (url.scheme, url.host, url.port) == (proxy.scheme, proxy.host, proxy.port):
            path = url.raw_path.split(b"?", 1)[0]
            if not self._prefix or path == self._prefix or path.startswith(self._prefix + b"/"):
                return url  # already rewritten (a retried request, or the proxy itself)
        return proxy.copy_with(raw_path=self._prefix + b"/" + url.raw_path.lstrip(b"/"))

    def rewrite(self, request: httpx.Request) -> httpx.Request:
        """``request`` sent to the proxy: new URL and ``Host``, the SNI extension, same method,
        other headers and body (``request`` itself is not changed)."""
        url = self.target(request.url)
        headers = [(b"Host", url.netloc)]
        headers += [(name, value) for name, value in request.headers.raw if name.lower() != b"host"]
        extensions = dict(request.extensions)
        if self.sni_name:
            extensions[SNI_EXTENSION] = self.sni_name
        return httpx.Request(
            request.method, url, headers=headers, stream=request.stream, extensions=extensions
        )

    def describe(self) -> str:
        """The proxy, for messages and logs."""
        sni = f" (SNI {self.sni_name})" if self.sni_name else ""
        return f"{self.url}{sni}"


def _context(pem: str | None, origin: str) -> ssl.SSLContext:
    """A TLS client context trusting only ``pem`` (the system default store when ``None``)."""
    if pem is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError) as exc:
        raise ValueError(f"{origin} holds no usable PEM certificate ({exc}).") from exc


#: An unmatched file state.
_UNSEEN: Any = object()


def _file_state(path: str) -> tuple[int, int, int] | None:
    """What identifies a version of the file: inode, modification time and size (``None`` when it
    cannot be read)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


class ProxyTrust:
    """The CA certificates the token proxy's certificate must chain to.

    Args:
        ca_file: a PEM file; read now, and again whenever its modification time (or inode or size)
            changes.
        ca_data: PEM text.

    Neither: the system's default trust store.

    Raises:
        ValueError: both given; the file is unreadable, empty or not PEM; the data is not PEM.
    """

    def __init__(self, *, ca_file: str | None = None, ca_data: str | None = None) -> None:
        if ca_file and ca_data:
            raise ValueError("Both a CA file and CA data are set; only one should be.")
        self.ca_file = ca_file or None
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None
        self._pem = ca_data or None
        self._loaded: object = _UNSEEN
        self._failed: object = _UNSEEN
        if self._pem is not None:
            self._context = _context(self._pem, "The CA data")
        elif self.ca_file is not None:
            state = _file_state(self.ca_file)
            pem = self._read(self.ca_file)  # raises ValueError at start
            self._context = _context(pem, f"The CA file {self.ca_file!r}")
            self._pem, self._loaded = pem, state

    @staticmethod
    def _read(path: str) -> str:
        try:
            with open(path, encoding="utf-8") as file:
                pem = file.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise ValueError(f"Failed to read the CA file {path!r}: {reason}.") from exc
        if not pem.strip():
            raise ValueError(f"The CA file {path!r} is empty; cannot establish a secure connection.")
        return pem

    @property
    def pem(self) -> str | None:
        """The CA certificates in use (PEM), or ``None`` for the system default store."""
        return self._pem

    def context(self) -> ssl.SSLContext:
        """The TLS context to use now: a new object after the CA file changed and was read."""
        if self.ca_file is not None:
            self._reload_if_changed(self.ca_file)
        context = self._context
        if context is None:  # system default store: built on first use (it costs milliseconds)
            with self._lock:
                if self._context is None:
                    self._context = _context(None, "")
                context = self._context
        return context

    def _reload_if_changed(self, path: str) -> None:
        state = _file_state(path)
        if state in (self._loaded, self._failed):
            return  # unchanged, or a version that already failed to load
        with self._lock:
            if state in (self._loaded, self._failed):
                return
            try:
                pem = self._read(path)
                context = _context(pem, f"The CA file {path!r}")
            except ValueError as exc:
                self._failed = state
                _LOGGER.warning("Keeping the token proxy's previous CA: %s", exc)
                return
            self._context, self._pem, self._loaded, self._failed = context, pem, state, _UNSEEN
            _LOGGER.info("Reloaded the token proxy's CA from %s.", path)


def _log_failure(proxy: TokenProxy, exc: httpx.TransportError) -> None:
    # The public error only names the failure's type: say here which proxy failed, and why.
    _LOGGER.warning("Token proxy %s: %s: %s", proxy.describe(), type(exc).__name__, exc)


class TokenProxyTransport(httpx.BaseTransport):
    """An httpx transport that sends every request to the token proxy.

    Args:
        proxy: where requests go.
        trust: the CA for this transport's own connections (system default when ``None``).
        transport: send through this transport instead (then ``trust`` is not used; closing this
            transport closes it).
    """

    def __init__(
        self,
        proxy: TokenProxy,
        *,
        trust: ProxyTrust | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.proxy = proxy
        self._trust = trust or ProxyTrust()
        self._given = transport
        self._lock = threading.Lock()
        self._pool: tuple[ssl.SSLContext, httpx.HTTPTransport] | None = None
        self._retired: list[httpx.HTTPTransport] = []

    def _transport(self) -> httpx.BaseTransport:
        if self._given is not None:
            return self._given
        context = self._trust.context()
        with self._lock:
            pool = self._pool
            if pool is None or pool[0] is not context:
                if pool is not None:
                    # Requests in flight may still use it: closed with this transport.
                    self._retired.append(pool[1])
                pool = self._pool = (context, httpx.HTTPTransport(verify=context, trust_env=False))
            return pool[1]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        rewritten = self.proxy.rewrite(request)
        try:
            return self._transport().handle_request(rewritten)
        except httpx.TransportError as exc:
            _log_failure(self.proxy, exc)
            raise

    def close(self) -> None:
        """Close the connections (or the given transport); the transport stays usable."""
        if self._given is not None:
            self._given.close()
            return
        with self._lock:
            pools = [*self._retired, *([self._pool[1]] if self._pool else [])]
            self._pool, self._retired = None, []
        for pool in pools:
            pool.close()


@dataclass
class _LoopPools:
    context: ssl.SSLContext
    current: httpx.AsyncHTTPTransport
    retired: list[httpx.AsyncHTTPTransport] = field(default_factory=list)


class AsyncTokenProxyTransport(httpx.AsyncBaseTransport):
    """The async :class:`TokenProxyTransport`.

    Connections belong to the event loop that opened them, so each running loop gets its own
    connection pool (like :class:`protocol.drivers.AsyncDriver` keeps a client per loop).
    """

    def __init__(
        self,
        proxy: TokenProxy,
        *,
        trust: ProxyTrust | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.proxy = proxy
        self._trust = trust or ProxyTrust()
        self._given = transport
        self._loops: weakref.WeakKeyDictionary[Any, _LoopPools] = weakref.WeakKeyDictionary()

    def _transport(self) -> httpx.AsyncBaseTransport:
        if self._given is not None:
            return self._given
        import asyncio

        loop = asyncio.get_running_loop()
        context = self._trust.context()
        pools = self._loops.get(loop)
        if pools is None:
            pools = self._loops[loop] = _LoopPools(context, self._new_pool(context))
        elif pools.context is not context:
            pools.retired.append(pools.current)
            pools.context, pools.current = context, self._new_pool(context)
        return pools.current

    @staticmethod
    def _new_pool(context: ssl.SSLContext) -> httpx.AsyncHTTPTransport:
        return httpx.AsyncHTTPTransport(verify=context, trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        rewritten = self.proxy.rewrite(request)
        try:
            return await self._transport().handle_async_request(rewritten)
        except httpx.TransportError as exc:
            _log_failure(self.proxy, exc)
            raise

    async def aclose(self) -> None:
        """Close this loop's connections (or the given transport); the transport stays usable."""
        if self._given is not None:
            await self._given.aclose()
            return
        import asyncio

        pools = self._loops.pop(asyncio.get_running_loop(), None)
        if pools is not None:
            for pool in [*pools.retired, pools.current]:
                await pool.aclose()


class ClientTransport(httpx.BaseTransport):
    """A transport that sends through a caller's ``httpx.Client`` (which the caller closes)."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._client.send(request, stream=True)
        # The raw stream: the outer client decodes the body by the headers, exactly once.
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=response.stream,
            extensions=response.extensions,
        )

    def close(self) -> None:
        """Nothing to do: the client is the caller's."""


class AsyncClientTransport(httpx.AsyncBaseTransport):
    """A transport that sends through a caller's ``httpx.AsyncClient`` (which the caller closes)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._client.send(request, stream=True)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=response.stream,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        """Nothing to do: the client is the caller's."""
