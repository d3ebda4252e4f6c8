"""Entra-shaped error responses.

Entra answers OAuth failures with a JSON body (reference §3.4)::

    {"error": "invalid_client",
     "error_description": "AADSTS7000215: Invalid client secret provided. ...\\r\\nTrace ID: <uuid>\\r\\n
                           Correlation ID: <uuid>\\r\\nTimestamp: 2024-01-01 00:00:00Z",
     "error_codes": [7000215], "timestamp": "2024-01-01 00:00:00Z", "trace_id": "<uuid>",
     "correlation_id": "<uuid>", "error_uri": "https://<host>/error?code=7000215"}

Handlers raise :class:`EntraError`; the authority turns it into such a response with
:func:`error_body`. Messages are built by the mock from parameter *names* and non-secret values
only: a secret, password, assertion or token never reaches an error body.

Codes marked "mock's choice" below are not confirmed by the reference material; clients must branch
on ``error``, not on AADSTS numbers (Microsoft's own guidance), so only ``error`` is load-bearing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

# Codes stated by the reference (entra-protocol.md §3.5) or by the brief of this mock.
MISSING_PARAMETER = 900144
UNSUPPORTED_GRANT_TYPE = 70003
UNKNOWN_APPLICATION = 700016
INVALID_SECRET = 7000215
MISSING_CLIENT_CREDENTIAL = 7000218
ASSERTION_TIME_RANGE = 700024
ASSERTION_SIGNATURE = 700027
INVALID_CLIENT_SCOPE = 1002012
TENANT_NOT_FOUND = 90002
INVALID_INSTANCE = 50049  # reference: [UNCONFIRMED]
PKCE_MISMATCH = 501481
REDIRECT_MISMATCH = 50011  # the brief's choice; Entra may use 500112 at the token endpoint
GRANT_REVOKED = 50173
BAD_CREDENTIALS = 50126
DEVICE_PENDING = 70016
DEVICE_EXPIRED = 70019
# Codes that are the mock's choice (plausible Entra codes, not confirmed by the reference).
INVALID_GRANT = 70000
CREDENTIAL_VALIDATION = 70002  # "Error validating credentials."
AUTH_CODE_REDEEMED = 54005
AUTH_CODE_EXPIRED = 70008
PUBLIC_CLIENT_CREDENTIAL = 700025
ASSERTION_MALFORMED = 50027
ASSERTION_CLIENT_MISMATCH = 700021
UNKNOWN_USER = 50034
OBO_ASSERTION_INVALID = 50013
OBO_ASSERTION_EXPIRED = 500133
WRONG_METHOD = 900561
MISSING_QUERY_PARAMETER = 90014
SERVICE_UNAVAILABLE = 90006
MALFORMED_REQUEST = 9002313  # "Invalid request. Request is malformed or invalid."
NO_ROUTE = 404  # not an Entra code: the mock's marker for "no endpoint here"


@dataclass
class EntraError(Exception):
    """An OAuth error the mock answers with, raised anywhere below the handler.

    ``status`` is the HTTP status (400 for most OAuth errors, 401 for ``invalid_client``), ``error``
    the OAuth code, ``code`` the AADSTS number and ``message`` the text after ``AADSTSnnnnn: ``.
    """

    status: int
    error: str
    code: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.error} AADSTS{self.code}: {self.message}"


def missing_parameter(name: str) -> EntraError:
    """The error Entra gives when a required form field is absent or empty."""
    return EntraError(
        400,
        "invalid_request",
        MISSING_PARAMETER,
        f"The request body must contain the following parameter: '{name}'.",
    )


def invalid_client(code: int, message: str) -> EntraError:
    """Client authentication failed: Entra answers these with HTTP 401."""
    return EntraError(401, "invalid_client", code, message)


def invalid_grant(code: int, message: str) -> EntraError:
    """The presented grant (code, refresh token, device code, assertion, password) is not valid."""
    return EntraError(400, "invalid_grant", code, message)


def entra_timestamp(epoch_seconds: float) -> str:
    """Entra's timestamp format, ``YYYY-MM-DD HH:MM:SSZ`` in UTC (the raw number if out of range)."""
    try:
        return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(epoch_seconds)


def error_body(err: EntraError, *, origin: str, correlation_id: str, now: float) -> dict[str, Any]:
    """The JSON body Entra sends for ``err``; ``origin`` is the scheme://host[:port] asked."""
    trace_id = str(uuid.uuid4())
    timestamp = entra_timestamp(now)
    description = (
        f"AADSTS{err.code}: {err.message}\r\nTrace ID: {trace_id}\r\n"
        f"Correlation ID: {correlation_id}\r\nTimestamp: {timestamp}"
    )
    return {
        "error": err.error,
        "error_description": description,
        "error_codes": [err.code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"{origin}/error?code={err.code}",
    }
