"""Client authentication strategies, applied to a token request built by any grant.

A grant module never knows how the client proves its identity; it asks the strategy for the form
fields to add (RFC 6749 section 2.3, RFC 7521/7523 for assertions):

* :class:`ClientSecret`: ``client_secret`` in the body (what Entra documents for confidential
  clients);
* :class:`CertificateAssertion`: a JWT signed with the client certificate;
* :class:`AssertionCallable`: a JWT from a callable (federated identity: Kubernetes, GitHub
  Actions, another cloud); called for every request because such tokens rotate;
* :class:`TokenFileAssertion`: a federated token re-read from a file for every request (workload
  identity);
* :class:`PublicClient`: nothing (public clients such as device code or browser sign-in).

No strategy's ``repr`` shows its secret.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

from .certificate import ASSERTION_LIFETIME, Algorithm, ClientCertificate, build_client_assertion
from .errors import ClientAssertionError

__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "AssertionCallable",
    "CertificateAssertion",
    "ClientAuth",
    "ClientSecret",
    "PUBLIC_CLIENT",
    "PublicClient",
    "TokenFileAssertion",
]

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class ClientAuth(Protocol):
    """Adds the client's credentials to a token request."""

    def form_fields(self, *, client_id: str, audience: str, now: float) -> dict[str, str]:
        """The fields to add to the form body.

        Args:
            client_id: the application (client) id.
            audience: the token endpoint the assertion is addressed to.
            now: epoch seconds; assertions are stamped with it.
        """
        ...  # pragma: no cover


@dataclass(frozen=True, slots=True)
class ClientSecret:
    """A client secret sent as ``client_secret``."""

    secret: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.secret:
            raise ValueError("The client secret is empty.")

    def form_fields(self, *, client_id: str, audience: str, now: float) -> dict[str, str]:
        return {"client_secret": self.secret}


@dataclass(frozen=True, slots=True)
class CertificateAssertion:
    """A client assertion signed with a certificate, freshly built for every request."""

    certificate: ClientCertificate = field(repr=False)
    algorithm: Algorithm = "PS256"
    send_chain: bool = False
    lifetime: int = ASSERTION_LIFETIME

    def form_fields(self, *, client_id: str, audience: str, now: float) -> dict[str, str]:
        assertion = build_client_assertion(
            self.certificate,
            client_id=client_id,
            audience=audience,
            now=now,
            algorithm=self.algorithm,
            send_chain=self.send_chain,
            lifetime=self.lifetime,
        )
        return {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion}


@dataclass(frozen=True, slots=True)
class AssertionCallable:
    """A client assertion returned by ``func()`` for every request."""

    func: Callable[[], str] = field(repr=False)

    def form_fields(self, *, client_id: str, audience: str, now: float) -> dict[str, str]:
        try:
            assertion = self.func()
        except Exception as exc:
            # The callable's own message is not repeated: it may describe a token file's content.
            raise ClientAssertionError(
                f"The client assertion callable raised {type(exc).__name__}; see the chained exception."
            ) from exc
        if not isinstance(assertion, str) or not assertion.strip():
            raise ClientAssertionError(
                "The client assertion callable must return the assertion (a JWT) as a non-empty "
                f"string; it returned {type(assertion).__name__}."
            )
        return {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion.strip()}


@dataclass(frozen=True, slots=True)
class PublicClient:
    """No client authentication (a public client)."""

    def form_fields(self, *, client_id: str, audience: str, now: float) -> dict[str, str]:
        return {}


#: The shared no-authentication strategy.
PUBLIC_CLIENT = PublicClient()


@dataclass(frozen=True, slots=True)
class TokenFileAssertion:
    """A federated token read from a file for every request (Kubernetes rotates projected tokens).

    The file is read fresh each time; a token whose ``exp`` claim has passed is refused before it is
    sent, with an error that says when it expired (the token itself is never quoted).
    """

    path: str
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    def form_fields(self, *, client_id: str, audience: str, now: float) -> dict[str, str]:
        try:
            with open(self.path, encoding="utf-8") as file:
                assertion = file.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise ClientAssertionError(
                f"Could not read the federated token file {self.path!r}: {reason}. Check "
                "AZURE_FEDERATED_TOKEN_FILE (or token_file_path) and the volume that projects the token."
            ) from exc
        if not assertion:
            raise ClientAssertionError(f"The federated token file {self.path!r} is empty.")
        expires = _expiry(assertion)
        current = self.clock()
        if expires is not None and expires <= current:
            moment = datetime.fromtimestamp(expires, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            raise ClientAssertionError(
                f"The federated token in {self.path!r} expired at {moment} ({int(current - expires)} s "
                "ago). The token projection should have replaced it: check the workload's service "
                "account token volume."
            )
        return {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion}


def _expiry(assertion: str) -> float | None:
    """The ``exp`` claim of a JWT, read without verifying it (Entra verifies); ``None`` if absent."""
    parts = assertion.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error, RecursionError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)) or not math.isfinite(exp):
        return None
    return float(exp)
