"""What every managed identity source shares: the identity to ask for, response parsing, errors.

Token responses (reference §3.5): a JSON object with ``access_token`` and ``expires_on`` (epoch
seconds as an integer or a numeric string, or App Service 2017's date form
``"06/20/2019 02:57:58 +00:00"`` / ``"1/16/2020 5:24:12 AM +00:00"``) or ``expires_in``; tokens living two
hours or more are refreshed at half their lifetime. Error bodies come in several shapes
(``{"error", "error_description"}`` from IMDS and Arc, ``{"statusCode", "message"}`` from App
Service, ``{"error": {"code", "message"}}`` from Service Fabric); :func:`server_message` reads each.
Bodies are never quoted whole: only the server's message field, cut short.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

import httpx

from ..errors import MalformedResponseError, ServiceError, SourceUnavailableError
from ..fields import Fields
from ..responses import HALF_LIFE_THRESHOLD, TokenResult
from ..retry import RETRYABLE_STATUS

__all__ = [
    "IdentityKind",
    "UserAssignedIdentity",
    "endpoint_of",
    "parse_expires_on",
    "parse_token",
    "read_body",
    "server_error",
    "server_message",
]

IdentityKind = Literal["client_id", "object_id", "resource_id"]

#: Longest server message quoted in an error.
_MESSAGE_LIMIT = 300


@dataclass(frozen=True, slots=True)
class UserAssignedIdentity:
    """A user-assigned identity, named by one of its ids."""

    kind: IdentityKind
    value: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.value}"


def endpoint_of(response: httpx.Response) -> str:
    return str(response.request.url.copy_with(query=None, fragment=None))


def read_body(response: httpx.Response) -> Any:
    """The body parsed as JSON, or ``None`` when it is empty or not JSON."""
    if not response.content.strip():
        return None
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 3] + "..."


def server_message(body: Any) -> str:
    """The human-readable message of an error body in any of the sources' shapes, or ``""``."""
    if not isinstance(body, dict):
        return ""
    parts: list[str] = []
    error = body.get("error")
    if isinstance(error, dict):  # Service Fabric: {"error": {"code": ..., "message": ...}}
        for name in ("code", "message"):
            if isinstance(error.get(name), str):
                parts.append(error[name])
    elif isinstance(error, str):
        parts.append(error)
    for name in ("error_description", "message", "Message"):
        if isinstance(body.get(name), str):
            parts.append(body[name])
    return _clip(": ".join(part for part in parts if part))


def server_error(source: str, response: httpx.Response) -> ServiceError:
    """The error for an HTTP error status from a managed identity endpoint."""
    status = response.status_code
    message = server_message(read_body(response))
    detail = f": {message}" if message else " (no error message in the body)"
    return ServiceError(
        f"The {source} endpoint {endpoint_of(response)} answered HTTP {status}{detail}",
        status_code=status,
        retryable=status in RETRYABLE_STATUS,
        url=endpoint_of(response),
    )


_DATE_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p")
_NUMERIC = re.compile(r"\s*\d+(\.\d+)?\s*\Z")


def parse_expires_on(value: Any) -> int | None:
    """``expires_on`` as epoch seconds: an integer, a numeric string or App Service 2017's UTC date
    form (``"06/20/2019 02:57:58 +00:00"``, ``"1/16/2020 5:24:12 AM +00:00"``); ``None`` when it is
    none of these."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and 0 <= value < 1e12 else None
    if not isinstance(value, str):
        return None
    if _NUMERIC.match(value):
        number = float(value)
        return int(number) if number < 1e12 else None
    text = value.strip()
    if not text.endswith(" +00:00"):
        return None
    text = text[: -len(" +00:00")]
    for form in _DATE_FORMATS:
        try:
            moment = datetime.strptime(text, form).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
        return int(moment.timestamp())
    return None


def parse_token(
    response: httpx.Response, *, requested_at: float, source: str, non_json_unavailable: bool = False
) -> TokenResult:
    """Parse a successful managed identity token response.

    Args:
        response: a 2xx response (body read).
        requested_at: epoch seconds read before the request was sent.
        source: the source's name for messages ("IMDS", "App Service managed identity"...).
        non_json_unavailable: a body that is not JSON and not labelled JSON means "no managed
            identity endpoint here" (something else answered the IMDS address), so a chain moves on.

    Raises:
        SourceUnavailableError: (``non_json_unavailable``) the body is not JSON.
        MalformedResponseError: anything else that is not a token response.
    """
    url = endpoint_of(response)
    body = read_body(response)
    content_type = response.headers.get("content-type", "")
    if body is None or not isinstance(body, dict):
        if body is None and non_json_unavailable and not content_type.lower().startswith("application/json"):
            raise SourceUnavailableError(
                f"ManagedIdentityCredential authentication unavailable. The {source} endpoint {url} "
                f'answered with unexpected content type "{content_type or "none"}": this host does not '
                "seem to offer a managed identity."
            )
        what = "no token" if not response.content.strip() else "a body that is not a JSON object"
        raise MalformedResponseError(
            f"The {source} endpoint {url} answered HTTP {response.status_code} with {what}.",
            status_code=response.status_code,
            url=url,
        )
    fields = Fields(body)
    token = fields.required_str("access_token")
    token_type = fields.optional_str("token_type", "Bearer") or "Bearer"
    expires_in = fields.seconds("expires_in")
    refresh_in = fields.seconds("refresh_in")
    raw_expires_on = body.get("expires_on")
    expires_on = parse_expires_on(raw_expires_on) if raw_expires_on is not None else None
    invalid = list(fields.invalid)
    if raw_expires_on is not None and expires_on is None:
        invalid.append("expires_on")
    if not invalid and expires_on is None and expires_in is None:
        invalid.append("expires_on or expires_in")
    if invalid:
        raise MalformedResponseError(
            f"The {source} endpoint {url} sent a token response with missing or invalid field(s) "
            f"{', '.join(invalid)}.",
            status_code=response.status_code,
            url=url,
        )
    now = int(requested_at)
    if expires_on is None:
        assert expires_in is not None
        expires_on = now + expires_in
    lifetime = max(0, expires_on - now)
    if refresh_in is not None:
        refresh_on: int | None = now + refresh_in
    elif lifetime >= HALF_LIFE_THRESHOLD:
        refresh_on = now + lifetime // 2
    else:
        refresh_on = None
    return TokenResult(
        access_token=token,
        token_type=token_type,
        expires_on=expires_on,
        refresh_on=refresh_on,
        ext_expires_on=None,
        scopes=None,
    )
