"""A loopback-only socket guard for benchmark child processes.

The children are separate processes, so the test suite's network guard does not reach them; they
install this one first thing. Any connection or name lookup for a host other than ``127.0.0.1``
(or ``localhost``) raises :class:`NonLoopbackError` before a packet is sent, so a client library
that tried to reach the public cloud (instance discovery, region detection, IMDS) fails the
benchmark instead of sending traffic. Standard library only, and cheap: it is imported inside the
processes whose import time and peak memory are measured.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

__all__ = ["ALLOWED_HOSTS", "NonLoopbackError", "install"]

#: Hosts a child may connect to or resolve.
ALLOWED_HOSTS = frozenset({"127.0.0.1", "localhost"})


class NonLoopbackError(OSError):
    """A benchmark child tried to reach something other than 127.0.0.1."""


_installed = False


def _host_of(address: Any) -> Any:
    return address[0] if isinstance(address, tuple) else address


def _check(family: int, address: Any) -> None:
    if family == getattr(socket, "AF_UNIX", None):
        return  # local IPC (e.g. an event loop's self-pipe), not network traffic
    host = _host_of(address)
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if host not in ALLOWED_HOSTS:
        raise NonLoopbackError(f"benchmark child tried to reach {address!r}: only 127.0.0.1 is allowed")


def _guarded_lookup(real: Callable[..., Any]) -> Callable[..., Any]:
    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        _check(socket.AF_INET, (host, 0))
        return real(host, *args, **kwargs)

    return lookup


def install() -> None:
    """Patch ``socket.socket.connect``/``connect_ex`` and the name lookups (idempotent)."""
    global _installed
    if _installed:
        return
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo
    real_lookups = {
        name: getattr(socket, name) for name in ("gethostbyname", "gethostbyname_ex", "gethostbyaddr")
    }

    def connect(self: socket.socket, address: Any) -> None:
        _check(self.family, address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check(self.family, address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None:
            _check(socket.AF_INET, (host, 0))
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = getaddrinfo
    for name, real in real_lookups.items():
        setattr(socket, name, _guarded_lookup(real))
    _installed = True
