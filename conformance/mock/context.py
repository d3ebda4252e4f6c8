"""One incoming request, parsed once, and the helpers that build JSON answers to it."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx

from conformance.mock.errors import WRONG_METHOD, EntraError, error_body

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def _body(request: httpx.Request) -> bytes:
    """The request body; mounts read it before calling the handler, hand-built requests carry it."""
    try:
        return request.content
    except httpx.RequestNotRead:
        return request.read()


@dataclass(frozen=True)
class RequestContext:
    """A request with what every endpoint needs: its origin, path segments, query, form, headers.

    ``origin`` is ``scheme://host[:port]`` exactly as the client addressed it, which is what makes the
    authority host-agnostic: metadata URLs and the expected assertion audience derive from it.
    """

    request: httpx.Request
    origin: str
    segments: tuple[str, ...]
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    correlation_id: str

    @classmethod
    def parse(cls, request: httpx.Request) -> RequestContext:
        """Parse ``request``; the body is read as a form only when it says it is one."""
        url = request.url
        origin = f"{url.scheme}://{url.netloc.decode('ascii')}"
        segments = tuple(part for part in url.path.split("/") if part)
        query = dict(url.params.multi_items())
        headers = {name.lower(): value for name, value in request.headers.multi_items()}
        form: dict[str, str] = {}
        if headers.get("content-type", "").split(";")[0].strip().lower() == FORM_CONTENT_TYPE:
            body = _body(request).decode("utf-8", errors="replace")
            form = dict(parse_qsl(body, keep_blank_values=True))
        correlation_id = (
            headers.get("client-request-id") or headers.get("x-ms-client-request-id") or str(uuid.uuid4())
        )
        return cls(request, origin, segments, query, form, headers, correlation_id)

    @property
    def endpoint_url(self) -> str:
        """The origin plus path the request was sent to (the expected client assertion ``aud``)."""
        return self.origin + self.request.url.path

    @property
    def host(self) -> str:
        """The host name the request was sent to, lower-cased, without port."""
        return self.request.url.host.lower()

    def require_method(self, *methods: str) -> None:
        """Refuse other HTTP methods the way Entra does (400 ``invalid_request``, AADSTS900561)."""
        if self.request.method not in methods:
            raise EntraError(
                400,
                "invalid_request",
                WRONG_METHOD,
                f"The endpoint only accepts {', '.join(methods)} requests. "
                f"Received a {self.request.method} request.",
            )

    def json_response(
        self, body: Any, *, status: int = 200, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """A JSON answer with the headers Entra adds to token-endpoint responses."""
        all_headers = {
            "content-type": "application/json; charset=utf-8",
            "cache-control": "no-store, no-cache",
            "pragma": "no-cache",
            "client-request-id": self.correlation_id,
            "x-ms-request-id": str(uuid.uuid4()),
        }
        all_headers.update(headers or {})
        return httpx.Response(status, headers=all_headers, content=json.dumps(body).encode("utf-8"))

    def error_response(self, err: EntraError, *, now: float) -> httpx.Response:
        """The Entra-shaped error answer for ``err``."""
        body = error_body(err, origin=self.origin, correlation_id=self.correlation_id, now=now)
        return self.json_response(body, status=err.status, headers=err.headers)
