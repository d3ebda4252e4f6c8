"""Errors raised by the protocol layer.

Every failure the wire can produce is one of these; nothing from httpx or json escapes
``protocol``. Foreign exceptions are translated once, here (:func:`translate_transport_error`) and in
the parsers, with ``raise ... from exc``.

::

    ProtocolError                   base class; ``str()`` never contains a secret or token
    ├── TransportError              no HTTP response: connect/read failure, timeout, dropped connection
    ├── MalformedResponseError      a response arrived but is not what the protocol allows
    │                               (not JSON, an HTML page from a proxy, missing ``access_token``,
    │                               wrong types); carries ``status_code``
    ├── ClientAssertionError        the client assertion callable failed or returned no assertion
    ├── SourceUnavailableError      the token source is not there (no managed identity endpoint
    │                               answered, a developer tool is missing or not signed in): a
    │                               credential chain may try its next member
    ├── ServiceError                HTTP error status (5xx, or 4xx) without an OAuth error body;
    │                               carries ``status_code`` and ``retryable``
    └── OAuthError                  the authority answered with an OAuth 2.0 error body
        │                           (``error``, ``error_description``, ``error_codes``,
        │                           ``correlation_id``, ``trace_id``, ``timestamp``, ``suberror``,
        │                           ``claims``, ``status_code``, ``retryable``)
        ├── InteractionRequiredError   a user must sign in again (``interaction_required``,
        │                              ``login_required``, ``consent_required``, AADSTS50076/50079...)
        │   └── ClaimsChallengeError   the authority demands extra claims (the body has ``claims``)
        └── ThrottledError          HTTP 429; carries ``retry_after`` seconds when the server said so

``retryable`` is true for the statuses the retry policy retries (408, 429, 500, 502, 503, 504) and
for ``temporarily_unavailable``: trying again later may succeed (the retries, if any, were spent).
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

__all__ = [
    "ClaimsChallengeError",
    "ClientAssertionError",
    "InteractionRequiredError",
    "MalformedResponseError",
    "OAuthError",
    "ProtocolError",
    "ServiceError",
    "SourceUnavailableError",
    "ThrottledError",
    "TransportError",
    "translate_transport_error",
]


class ProtocolError(Exception):
    """Base class of every error raised by :mod:`protocol`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TransportError(ProtocolError):
    """No HTTP response was received (connection refused, reset, timed out, TLS failure)."""

    def __init__(self, message: str, *, url: str = "", retryable: bool = True) -> None:
        super().__init__(message)
        self.url = url
        #: False when trying again cannot help (the server's certificate is not the pinned one).
        self.retryable = retryable


class MalformedResponseError(ProtocolError):
    """The authority's response does not follow the protocol.

    ``str()`` describes the problem and at most a short, scrubbed excerpt of the body.
    """

    def __init__(self, message: str, *, status_code: int | None = None, url: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.url = url


class ClientAssertionError(ProtocolError):
    """The callable that supplies a client assertion raised, or returned something unusable."""


class SourceUnavailableError(ProtocolError):
    """The token source is not present or not usable here; ``message`` says why and what to do.

    Credentials surface it as ``CredentialUnavailableError`` (a chain moves on to its next member).
    """


class ServiceError(ProtocolError):
    """An HTTP error status whose body is not an OAuth error (for example a gateway's 502 page)."""

    def __init__(self, message: str, *, status_code: int, retryable: bool, url: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retryable = retryable
        self.url = url


class OAuthError(ProtocolError):
    """An OAuth 2.0 error response (RFC 6749 section 5.2) with Entra's extra fields."""

    def __init__(
        self,
        message: str,
        *,
        error: str,
        error_description: str = "",
        error_codes: Sequence[int] = (),
        correlation_id: str | None = None,
        trace_id: str | None = None,
        timestamp: str | None = None,
        suberror: str | None = None,
        claims: str | None = None,
        status_code: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.error = error
        self.error_description = error_description
        self.error_codes = tuple(error_codes)
        self.correlation_id = correlation_id
        self.trace_id = trace_id
        self.timestamp = timestamp
        self.suberror = suberror
        self.claims = claims
        self.status_code = status_code
        self.retryable = retryable
        self.retry_after = retry_after


class InteractionRequiredError(OAuthError):
    """The user must interact with the authority (sign in, consent, MFA) before a token is issued."""


class ClaimsChallengeError(InteractionRequiredError):
    """The authority requires the claims in :attr:`claims` (Conditional Access, CAE)."""


class ThrottledError(OAuthError):
    """HTTP 429 from the authority; :attr:`retry_after` holds the server's wait, when it gave one."""


def translate_transport_error(exc: httpx.RequestError, request: httpx.Request) -> TransportError:
    """Turn an httpx transport exception into our :class:`TransportError`.

    The message names the kind of failure and the endpoint (scheme, host and path; never the query
    string or the body, which may hold secrets).
    """
    url = request.url.copy_with(query=None, fragment=None)
    if isinstance(exc, httpx.TimeoutException):
        kind = "timed out"
    elif isinstance(exc, httpx.ConnectError):
        kind = "could not connect"
    elif isinstance(exc, httpx.RemoteProtocolError):
        kind = "the connection was closed without a complete response"
    else:
        kind = "the request failed"
    if getattr(exc, "explains", False):  # our own transports' failures say what happened
        return TransportError(
            f"{request.method} {url}: {exc}", url=str(url), retryable=bool(getattr(exc, "retryable", True))
        )
    message = (
        f"{request.method} {url}: {kind} ({type(exc).__name__}). "
        "Check network connectivity, proxy settings (HTTPS_PROXY, NO_PROXY) and the authority host."
    )
    return TransportError(message, url=str(url))
