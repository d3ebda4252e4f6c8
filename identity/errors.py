"""Public exceptions, and the one place protocol errors become them.

* :class:`ClientAuthenticationError`: authentication failed. When azure-core is installed this *is*
  ``azure.core.exceptions.ClientAuthenticationError``, so code written for azure-identity catches
  ours unchanged; otherwise a class of our own with ``message`` and ``response``.
* :class:`CredentialUnavailableError`: the credential could not even try here (missing
  configuration, no such environment); chains move on to the next credential.
* :class:`AuthenticationRequiredError`: a user must sign in interactively; carries ``scopes`` and
  ``claims``.

Messages say what failed, Entra's error code and correlation id, and what to do. They never hold
a secret, assertion or token: protocol errors are built without request or response bodies.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from protocol.errors import (
    ClaimsChallengeError,
    InteractionRequiredError,
    OAuthError,
    ProtocolError,
    SourceUnavailableError,
    ThrottledError,
)

__all__ = [
    "AuthenticationRequiredError",
    "ClientAuthenticationError",
    "CredentialUnavailableError",
    "authentication_failed",
]

try:
    from azure.core.exceptions import ClientAuthenticationError
except ImportError:  # azure-core is optional: without it, an equivalent class of our own

    class ClientAuthenticationError(Exception):  # type: ignore[no-redef]
        """Authentication failed (same shape as azure-core's class: ``message``, ``response``)."""

        def __init__(self, message: str | None = None, response: Any = None, **kwargs: Any) -> None:
            self.message: str = str(message) if message is not None else "Authentication failed"
            self.response = response
            self.status_code: int | None = getattr(response, "status_code", None)
            self.reason: str | None = getattr(response, "reason_phrase", None)
            super().__init__(self.message)


class CredentialUnavailableError(ClientAuthenticationError):
    """The credential did not attempt to authenticate because required data or state is unavailable."""


class AuthenticationRequiredError(CredentialUnavailableError):
    """Interactive authentication is required to acquire a token.

    Args:
        scopes: the scopes of the failed request.
        message: what happened; a default tells the caller to call ``authenticate``.
        claims: additional claims the next authentication must satisfy, if any.
    """

    def __init__(
        self, scopes: Iterable[str], message: str | None = None, claims: str | None = None, **kwargs: Any
    ) -> None:
        self._scopes = tuple(scopes)
        self._claims = claims
        super().__init__(
            message=message
            or "Interactive authentication is required to get a token. Call 'authenticate' to begin.",
            **kwargs,
        )

    @property
    def scopes(self) -> Iterable[str]:
        """Scopes requested during the failed authentication."""
        return self._scopes

    @property
    def claims(self) -> str | None:
        """Additional claims required in the next authentication."""
        return self._claims


# What to do, by AADSTS code (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
_CODE_HINTS: dict[int, str] = {
    7000215: "The client secret is not valid: use the secret's value (not its ID) from the app registration.",
    7000222: "The client secret has expired: create a new one in the app registration.",
    7000218: "The request has no client secret or assertion: this application is confidential.",
    700016: "The application was not found in the tenant: check client_id, tenant_id and the cloud.",
    90002: "The tenant was not found: check tenant_id and that the authority is the tenant's cloud.",
    700027: "The client assertion's signature is not valid: check that the certificate is the one "
    "registered for the application.",
    700024: "The client assertion is outside its valid time range: check this machine's clock.",
    1002012: "Client credential requests need exactly one scope of the form '<resource>/.default'.",
    70011: "The scope is not valid: check its spelling and resource.",
}
_ERROR_HINTS: dict[str, str] = {
    "invalid_client": "Check the client credential (secret or certificate) configured for the application.",
    "unauthorized_client": "Check client_id and that the application exists in this tenant.",
    "invalid_scope": "Check the requested scope.",
    "invalid_grant": "The grant is no longer valid: sign in again.",
}


def _hint(exc: OAuthError) -> str:
    for code in exc.error_codes:
        if code in _CODE_HINTS:
            return _CODE_HINTS[code]
    return _ERROR_HINTS.get(exc.error, "")


def describe(exc: ProtocolError) -> str:
    """A one-paragraph, secret-free description of a protocol failure with advice."""
    if isinstance(exc, OAuthError):
        returned = exc.message if exc.message.endswith(".") else exc.message + "."
        parts = [f"Microsoft Entra ID returned {returned}"]
        if isinstance(exc, ThrottledError):
            wait = f" after {exc.retry_after:g} seconds" if exc.retry_after is not None else " later"
            parts.append(f"The authority is throttling requests: try again{wait}.")
        elif isinstance(exc, ClaimsChallengeError):
            parts.append("The authority requires additional claims: sign in again with the claims challenge.")
        elif isinstance(exc, InteractionRequiredError):
            parts.append("A user must sign in interactively.")
        hint = _hint(exc)
        if hint:
            parts.append(hint)
        if exc.correlation_id:
            parts.append(f"Correlation ID: {exc.correlation_id}.")
        if exc.trace_id:
            parts.append(f"Trace ID: {exc.trace_id}.")
        return " ".join(parts)
    # TransportError, ServiceError, MalformedResponseError, ClientAssertionError: their messages
    # already say what failed and what to check.
    return exc.message


def authentication_failed(credential: str, exc: ProtocolError) -> ClientAuthenticationError:
    """The public error for a protocol failure of ``credential`` (a class name): a
    :class:`~protocol.errors.SourceUnavailableError` becomes :class:`CredentialUnavailableError`."""
    if isinstance(exc, SourceUnavailableError):
        return CredentialUnavailableError(message=exc.message)
    scopes = getattr(exc, "scopes", None)
    if scopes is not None and type(exc).__name__ == "UserInteractionRequired":
        return AuthenticationRequiredError(scopes, message=exc.message, claims=getattr(exc, "claims", None))
    return ClientAuthenticationError(message=f"{credential}: authentication failed. {describe(exc)}")
