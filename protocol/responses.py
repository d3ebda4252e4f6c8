"""Token and error responses of the token endpoint, parsed once into typed values.

* Success: RFC 6749 section 5.1 plus Entra's ``ext_expires_in``, ``refresh_in``, ``id_token``,
  ``client_info`` and ``foci``; ``expires_in`` may be an integer or a numeric string (v1-style
  endpoints), ``expires_on`` (epoch seconds) is accepted when ``expires_in`` is absent.
* Error: RFC 6749 section 5.2 plus Entra's ``error_codes``, ``timestamp``, ``trace_id``,
  ``correlation_id``, ``suberror`` and ``claims``
  (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).

Expiry is computed from ``requested_at``, the clock reading taken *before* the request was sent, so
network time never makes a token look fresher than it is. ``refresh_on`` comes from the server's
``refresh_in`` or, for tokens living two hours or more, half the lifetime.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from .errors import (
    ClaimsChallengeError,
    InteractionRequiredError,
    MalformedResponseError,
    OAuthError,
    ThrottledError,
)
from .fields import Fields
from .retry import RETRYABLE_STATUS, parse_retry_after
from .wire import raise_service_error, read_json_object

__all__ = [
    "ErrorBody",
    "TokenResult",
    "decode_client_info",
    "oauth_error_from_body",
    "parse_token_response",
    "raise_for_error_response",
    "read_error_body",
]

#: Tokens living at least this long are refreshed proactively at half their lifetime.
HALF_LIFE_THRESHOLD = 7200

_INTERACTION_ERRORS = frozenset({"interaction_required", "login_required", "consent_required"})
# AADSTS codes that mean "a user must act" even when ``error`` is ``invalid_grant``:
# MFA required (50076, 50079), no session (50058), consent (65001), refresh token expired by
# inactivity or policy (700082, 70043, 700084), grant revoked (50173).
_INTERACTION_CODES = frozenset({50076, 50079, 50058, 65001, 700082, 70043, 700084, 50173})


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """The fields of an OAuth error body (RFC 6749 section 5.2 and Entra's additions)."""

    error: str
    error_description: str
    error_codes: list[int]
    timestamp: str | None
    trace_id: str | None
    correlation_id: str | None
    suberror: str | None
    claims: str | None


def read_error_body(body: dict[str, Any]) -> tuple[ErrorBody, str]:
    """The error fields of ``body``, and the names of fields with a wrong type (``""`` if none)."""
    fields = Fields(body)
    parsed = ErrorBody(
        error=fields.required_str("error"),
        error_description=fields.optional_str("error_description", "") or "",
        error_codes=fields.int_list("error_codes"),
        timestamp=fields.optional_str("timestamp"),
        trace_id=fields.optional_str("trace_id"),
        correlation_id=fields.optional_str("correlation_id"),
        suberror=fields.optional_str("suberror"),
        claims=fields.optional_str("claims"),
    )
    fields.optional_str("error_uri")
    return parsed, fields.names()


@dataclass(frozen=True, slots=True)
class TokenResult:
    """A parsed, successful token response. Secrets are kept out of ``repr``."""

    access_token: str = field(repr=False)
    token_type: str
    expires_on: int
    refresh_on: int | None
    ext_expires_on: int | None
    scopes: tuple[str, ...] | None
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)
    home_account_id: str | None = None
    foci: str | None = None


def decode_client_info(client_info: str) -> str | None:
    """``uid.utid`` from Entra's ``client_info`` (base64url JSON, padding optional), or ``None``."""
    padded = client_info + "=" * (-len(client_info) % 4)
    try:
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    uid, utid = data.get("uid"), data.get("utid")
    if isinstance(uid, str) and isinstance(utid, str) and uid and utid:
        return f"{uid}.{utid}"
    return None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip() if text.strip() else ""


def oauth_error_from_body(
    body: dict[str, Any], response: httpx.Response
) -> OAuthError | MalformedResponseError:
    """Build the right :class:`OAuthError` subclass from an error body.

    An error body whose fields have the wrong types yields :class:`MalformedResponseError`.
    """
    parsed, invalid = read_error_body(body)
    if invalid:
        return MalformedResponseError(
            f"The authority answered HTTP {response.status_code} with an error body whose fields "
            f"have unexpected types ({invalid}).",
            status_code=response.status_code,
            url=str(response.request.url.copy_with(query=None)),
        )
    status = response.status_code
    code_text = f" (AADSTS{parsed.error_codes[0]})" if parsed.error_codes else ""
    description = _first_line(parsed.error_description)
    if parsed.error_codes and description.startswith(f"AADSTS{parsed.error_codes[0]}:"):
        description = description.split(":", 1)[1].strip()
    message = f"{parsed.error}{code_text}: {description}" if description else f"{parsed.error}{code_text}"
    kwargs: dict[str, Any] = {
        "error": parsed.error,
        "error_description": parsed.error_description,
        "error_codes": parsed.error_codes,
        "correlation_id": parsed.correlation_id,
        "trace_id": parsed.trace_id,
        "timestamp": parsed.timestamp,
        "suberror": parsed.suberror,
        "claims": parsed.claims,
        "status_code": status,
        "retryable": status in RETRYABLE_STATUS or parsed.error == "temporarily_unavailable",
    }
    if status == 429:
        return ThrottledError(message, retry_after=parse_retry_after(response.headers), **kwargs)
    if parsed.claims:
        return ClaimsChallengeError(message, **kwargs)
    if parsed.error in _INTERACTION_ERRORS or _INTERACTION_CODES.intersection(parsed.error_codes):
        return InteractionRequiredError(message, **kwargs)
    return OAuthError(message, **kwargs)


def raise_for_error_response(response: httpx.Response, body: dict[str, Any] | None) -> None:
    """Raise the typed error an error response stands for; return when it is a success.

    An error is an HTTP status >= 400 or any body with an ``error`` field.
    """
    status = response.status_code
    if body is not None and "error" in body:
        raise oauth_error_from_body(body, response)
    if status >= 400:
        raise_service_error(response)


def parse_token_response(response: httpx.Response, *, requested_at: float) -> TokenResult:
    """Parse a token-endpoint response into a :class:`TokenResult` or raise its typed error.

    Args:
        response: the authority's response (body already read).
        requested_at: epoch seconds read from the clock before the request was sent.

    Raises:
        OAuthError: (or a subclass) for OAuth error bodies.
        ServiceError: for error statuses without an OAuth body.
        MalformedResponseError: for anything else that is not a valid token response.
    """
    body = read_json_object(response)
    raise_for_error_response(response, body)
    url = str(response.request.url.copy_with(query=None))
    if body is None:
        raise MalformedResponseError(
            f"The token response from {url} has no content (HTTP {response.status_code}).",
            status_code=response.status_code,
            url=url,
        )
    fields = Fields(body)
    access_token = fields.required_str("access_token")
    token_type = fields.optional_str("token_type", "Bearer")
    expires_in = fields.seconds("expires_in")
    expires_on_field = fields.seconds("expires_on")
    ext_expires_in = fields.seconds("ext_expires_in")
    refresh_in = fields.seconds("refresh_in")
    scope = fields.optional_str("scope")
    refresh_token = fields.optional_str("refresh_token")
    id_token = fields.optional_str("id_token")
    client_info = fields.optional_str("client_info")
    foci = fields.optional_str("foci")
    if fields.invalid:
        raise MalformedResponseError(
            f"The token response from {url} is not a valid token response: missing or invalid "
            f"field(s) {fields.names()}.",
            status_code=response.status_code,
            url=url,
        )
    now = int(requested_at)
    if expires_in is not None:
        lifetime = expires_in
        expires_on = now + lifetime
    elif expires_on_field is not None:
        expires_on = expires_on_field
        lifetime = max(0, expires_on - now)
    else:
        raise MalformedResponseError(
            f"The token response from {url} says neither when the token expires "
            "(no 'expires_in') nor 'expires_on'.",
            status_code=response.status_code,
            url=url,
        )
    if refresh_in is not None:
        refresh_on: int | None = now + refresh_in
    elif lifetime >= HALF_LIFE_THRESHOLD:
        refresh_on = now + lifetime // 2
    else:
        refresh_on = None
    ext_expires_on = now + ext_expires_in if ext_expires_in is not None else None
    scopes = tuple(scope.split()) if scope else None
    home_account_id = decode_client_info(client_info) if client_info else None
    return TokenResult(
        access_token=access_token,
        token_type=token_type or "Bearer",
        expires_on=expires_on,
        refresh_on=refresh_on,
        ext_expires_on=ext_expires_on,
        scopes=scopes,
        refresh_token=refresh_token or None,
        id_token=id_token or None,
        home_account_id=home_account_id,
        foci=foci,
    )
