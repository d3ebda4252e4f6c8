"""azure-core's HTTP pipeline keyword arguments, mapped onto the httpx client a credential creates.

azure-identity forwards these keywords to its azure-core pipeline; code written for it passes
them, so each credential accepts the ones that have an httpx meaning:

=====================================  ==================================================
``connection_verify``                  ``True``/``False`` or a CA bundle path
``connection_timeout``, ``read_timeout``  seconds (connect, and read/write/pool)
``proxies``                            ``{"https": url}`` (or ``"all"``)
``headers``                            extra headers on every request
``retry_total``, ``retry_connect``,    the retry policy's ``max_retries`` (the smallest
``retry_read``, ``retry_status``       given)
``retry_backoff_factor``, ``retry_backoff_max``  the policy's backoff
``logging_enable``                     accepted and ignored: azure-core would log whole
                                       bodies and headers, secrets included
=====================================  ==================================================

``policies``, ``user_agent``, ``raw_request_hook`` and ``raw_response_hook`` have no httpx
equivalent and raise ``TypeError`` saying so, as does an azure-core object passed as ``transport``
(pass an httpx transport, or ``http_client=``).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from protocol.retry import RetryPolicy

__all__ = ["HttpOptions", "http_options", "positive_seconds"]

_UNSUPPORTED = {
    "policies": "pass an httpx transport or http_client= to customise the HTTP stack",
    "user_agent": "requests identify this library in User-Agent; add headers= to add your own",
    "raw_request_hook": "use an httpx client with event_hooks (http_client=) instead",
    "raw_response_hook": "use an httpx client with event_hooks (http_client=) instead",
}


@dataclass(frozen=True)
class HttpOptions:
    """Options for the httpx client a credential creates, and its retry policy."""

    client_options: dict[str, Any] = field(default_factory=dict)
    retry_policy: RetryPolicy | None = None
    #: The ``RetryPolicy`` fields the azure-core ``retry_*`` keywords set, to apply over a
    #: credential's own default policy (managed identity's IMDS policy, for one).
    retry_overrides: dict[str, Any] = field(default_factory=dict)
    #: The validated ``cache_persistence_options`` (``TokenCachePersistenceOptions``), if any.
    persistence: Any = None


def _verify(value: Any) -> bool | ssl.SSLContext:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value:
        try:
            return ssl.create_default_context(cafile=value)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"connection_verify: cannot load the CA bundle {value!r} ({exc}).") from exc
    raise TypeError("connection_verify must be True, False or the path of a CA bundle")


def positive_seconds(name: str, value: Any) -> float:
    """``value`` as seconds; ``ValueError`` naming ``name`` unless it is a positive number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def http_options(
    credential: str, kwargs: dict[str, Any], retry_policy: RetryPolicy | None, transport: object
) -> HttpOptions:
    """Take azure-core pipeline keywords out of ``kwargs`` (what is left is unknown) and map them.

    Raises:
        TypeError: an unsupported azure-core keyword, or an azure-core transport.
        ValueError: a keyword with an unusable value.
    """
    if transport is not None and not isinstance(transport, (httpx.BaseTransport, httpx.AsyncBaseTransport)):
        raise TypeError(
            f"{credential}: transport must be an httpx transport (httpx.HTTPTransport, "
            f"httpx.AsyncHTTPTransport, httpx.MockTransport...), not {type(transport).__name__}; "
            "to use your own client, pass http_client="
        )
    for name, hint in _UNSUPPORTED.items():
        if name in kwargs:
            raise TypeError(f"{credential} does not support {name}: {hint}.")
    client: dict[str, Any] = {}
    if "connection_verify" in kwargs:
        client["verify"] = _verify(kwargs.pop("connection_verify"))
    connect = kwargs.pop("connection_timeout", None)
    read = kwargs.pop("read_timeout", None)
    if connect is not None or read is not None:
        client["timeout"] = httpx.Timeout(
            positive_seconds("read_timeout", read) if read is not None else 30.0,
            connect=positive_seconds("connection_timeout", connect) if connect is not None else 10.0,
        )
    proxies = kwargs.pop("proxies", None)
    if proxies is not None:
        if not isinstance(proxies, Mapping):
            raise TypeError('proxies must be a mapping such as {"https": "http://proxy:8080"}')
        proxy = proxies.get("https") or proxies.get("all") or proxies.get("https://")
        if proxy:
            client["proxy"] = proxy
    headers = kwargs.pop("headers", None)
    if headers is not None:
        if not isinstance(headers, Mapping):
            raise TypeError("headers must be a mapping of header names to values")
        client["headers"] = dict(headers)
    kwargs.pop("logging_enable", None)
    policy = retry_policy
    retry_names = ("retry_total", "retry_connect", "retry_read", "retry_status")
    retries = [kwargs.pop(name) for name in retry_names if name in kwargs]
    backoff: dict[str, float] = {}
    for name, key in (("retry_backoff_factor", "backoff_factor"), ("retry_backoff_max", "backoff_max")):
        if name in kwargs:
            value = kwargs.pop(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number of seconds >= 0")
            backoff[key] = float(value)
    overrides: dict[str, Any] = dict(backoff)
    if retries:
        if not all(isinstance(r, int) and not isinstance(r, bool) and r >= 0 for r in retries):
            raise ValueError(f"{', '.join(retry_names)} must be integers >= 0")
        overrides["max_retries"] = min(retries)
    if overrides:
        policy = replace(policy or RetryPolicy(), **overrides)
    return HttpOptions(client, policy, overrides)
