"""Request envelopes and the first step of reading any authority response.

Every request to an authority carries:

* ``User-Agent: entra-identity/{version} Python/{x.y.z} ({platform})``;
* ``client-request-id``: a fresh UUID4 that Entra echoes as ``correlation_id`` in error bodies;
* ``Accept: application/json``.

Token requests are ``POST`` with ``application/x-www-form-urlencoded`` bodies (RFC 6749 section
4.1.3 and following). Responses are JSON objects; anything else becomes
:class:`~protocol.errors.MalformedResponseError` or :class:`~protocol.errors.ServiceError`, never a
``JSONDecodeError``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Mapping
from typing import Any

import httpx

from .errors import MalformedResponseError, ServiceError
from .retry import RETRYABLE_STATUS

__all__ = [
    "MEMOIZE",
    "USER_AGENT",
    "build_form_request",
    "build_get_request",
    "describe_body",
    "read_json_object",
]

VERSION = "0.1.0"
USER_AGENT = f"entra-identity/{VERSION} Python/{platform.python_version()} ({sys.platform})"

#: Request extension that marks a GET whose successful response may be shared by the whole process
#: (discovery documents). The drivers fetch such a URL once, even for concurrent callers.
MEMOIZE = "entra_identity.memoize"


def new_request_id() -> str:
    """A random (version 4) UUID, formatted like ``str(uuid.uuid4())`` without importing ``uuid``."""
    value = bytearray(os.urandom(16))
    value[6] = (value[6] & 0x0F) | 0x40  # version 4
    value[8] = (value[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = value.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _headers(extra: Mapping[str, str] | None) -> dict[str, str]:
    headers = {
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        "client-request-id": new_request_id(),
    }
    if extra:
        headers.update(extra)
    return headers


def build_form_request(
    url: str, fields: Mapping[str, str | None], *, headers: Mapping[str, str] | None = None
) -> httpx.Request:
    """A form ``POST``; fields whose value is ``None`` are left out."""
    data = {name: value for name, value in fields.items() if value is not None}
    return httpx.Request(
        "POST",
        url,
        data=data,
        headers=_headers(headers),
    )


def build_get_request(
    url: str,
    params: Mapping[str, str] | None = None,
    *,
    memoize: bool = False,
    headers: Mapping[str, str] | None = None,
) -> httpx.Request:
    """A ``GET``; ``memoize=True`` lets the drivers share its successful response process-wide."""
    extensions: dict[str, Any] = {MEMOIZE: True} if memoize else {}
    return httpx.Request("GET", url, params=params, headers=_headers(headers), extensions=extensions)


def describe_body(response: httpx.Response) -> str:
    """A secret-free description of a body: its content type and size, and whether it is HTML.

    Bodies are never quoted: a misbehaving endpoint may reflect credentials or tokens.
    """
    content_type = response.headers.get("content-type", "no content type")
    size = len(response.content)
    looks_html = response.content[:512].lstrip().lower().startswith((b"<!doctype html", b"<html"))
    kind = " (an HTML page: often a proxy or captive portal)" if looks_html else ""
    return f"{size} bytes of {content_type}{kind}"


def _endpoint(response: httpx.Response) -> str:
    return str(response.request.url.copy_with(query=None, fragment=None))


def read_json_object(response: httpx.Response) -> dict[str, Any] | None:
    """Parse the body as a JSON object.

    Returns ``None`` when the body is empty. Raises :class:`MalformedResponseError` when it is not a
    JSON object on a success status, and :class:`ServiceError` when an error status carries a body
    that is not a JSON object (for example a gateway's HTML error page).
    """
    status = response.status_code
    if not response.content.strip():
        return None
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: absurdly nested JSON; nothing an authority sends legitimately.
        if status >= 400:
            raise _service_error(response) from exc
        raise MalformedResponseError(
            f"The authority's response to {_endpoint(response)} is not JSON: got "
            f"{describe_body(response)} with HTTP {status}.",
            status_code=status,
            url=_endpoint(response),
        ) from exc
    if not isinstance(body, dict):
        if status >= 400:
            raise _service_error(response)
        raise MalformedResponseError(
            f"The authority's response to {_endpoint(response)} is JSON but not an object (HTTP {status}).",
            status_code=status,
            url=_endpoint(response),
        )
    return body


def _service_error(response: httpx.Response) -> ServiceError:
    status = response.status_code
    retryable = status in RETRYABLE_STATUS
    hint = (
        "The service may be temporarily unavailable; try again later."
        if retryable
        else "Check the authority URL and any proxy between this host and the authority."
    )
    return ServiceError(
        f"HTTP {status} from {_endpoint(response)} without an OAuth error body "
        f"({describe_body(response)}). {hint}",
        status_code=status,
        retryable=retryable,
        url=_endpoint(response),
    )


def raise_service_error(response: httpx.Response) -> None:
    """Raise :class:`ServiceError` for an error status whose body could not be interpreted."""
    raise _service_error(response)
