"""Federated identity credentials: an app trusts tokens from an external identity provider.

An app registration can hold federated identity credentials (Microsoft Learn
"workload-identity-federation"): an ``issuer``, a ``subject`` and the accepted ``audiences``
(``api://AzureADTokenExchange`` by default). A client then authenticates with a
``client_assertion`` that the external provider issued (a Kubernetes service account token, a
GitHub Actions OIDC token). Entra checks it like this, and so does the mock:

* an issuer the app does not trust: AADSTS700211;
* an audience it does not list: AADSTS700212;
* a subject it does not list: AADSTS700213;
* a signature that does not verify with the issuer's key: AADSTS700027 (mock's choice; Entra reads
  the key from the issuer's OpenID metadata, the mock has it registered);
* outside ``nbf``..``exp`` (with the configured skew): AADSTS700024.

:class:`ExternalIssuer` plays the external provider in tests: it signs tokens with its own key.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from conformance.mock.errors import EntraError, invalid_client

__all__ = ["TOKEN_EXCHANGE_AUDIENCE", "ExternalIssuer", "FederatedCredential", "validate_federated_assertion"]

TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
UNTRUSTED_ISSUER = 700211
UNTRUSTED_AUDIENCE = 700212
UNTRUSTED_SUBJECT = 700213
ASSERTION_SIGNATURE = 700027
ASSERTION_TIME_RANGE = 700024


class ExternalIssuer:
    """An external OpenID provider whose tokens apps may trust (it signs RS256 with its own key)."""

    def __init__(
        self, issuer: str = "https://oidc.issuer.example.test", *, key: rsa.RSAPrivateKey | None = None
    ) -> None:
        self.issuer = issuer
        self.key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex

    def mint(
        self,
        subject: str,
        *,
        audience: str = TOKEN_EXCHANGE_AUDIENCE,
        lifetime: int = 3600,
        now: float | None = None,
        **claims: Any,
    ) -> str:
        """A token for ``subject`` (what a Kubernetes projected token or CI OIDC token would be)."""
        issued = int(time.time() if now is None else now)
        payload = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": issued,
            "nbf": issued,
            "exp": issued + lifetime,
            "jti": str(uuid.uuid4()),
            **claims,
        }
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": self.kid})


@dataclass(frozen=True)
class FederatedCredential:
    """One federated identity credential of an app registration."""

    issuer: str
    subject: str
    public_key: rsa.RSAPublicKey = field(repr=False, compare=False)
    audiences: tuple[str, ...] = (TOKEN_EXCHANGE_AUDIENCE,)


def validate_federated_assertion(
    credentials: list[FederatedCredential], assertion: str, *, now: float, skew: float
) -> None:
    """Accept ``assertion`` if one of ``credentials`` trusts it; else raise the Entra error."""
    try:
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise invalid_client(50027, "Invalid JWT token. Token format not valid.") from None
    issuer = unverified.get("iss")
    candidates = [c for c in credentials if c.issuer == issuer]
    if not candidates:
        raise _untrusted(
            UNTRUSTED_ISSUER, "No matching federated identity record found for presented assertion issuer."
        )
    try:
        claims = jwt.decode(
            assertion,
            candidates[0].public_key,
            algorithms=["RS256", "PS256", "ES256"],
            options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        raise invalid_client(ASSERTION_SIGNATURE, "Client assertion failed signature validation.") from None
    audiences = claims.get("aud")
    audience_list = audiences if isinstance(audiences, list) else [audiences]
    candidates = [c for c in candidates if any(a in c.audiences for a in audience_list)]
    if not candidates:
        raise _untrusted(
            UNTRUSTED_AUDIENCE,
            "No matching federated identity record found for presented assertion audience.",
        )
    if not any(c.subject == claims.get("sub") for c in candidates):
        raise _untrusted(
            UNTRUSTED_SUBJECT, "No matching federated identity record found for presented assertion subject."
        )
    expires, not_before = claims.get("exp"), claims.get("nbf")
    if (
        not isinstance(expires, (int, float))
        or now > expires + skew
        or (isinstance(not_before, (int, float)) and now + skew < not_before)
    ):
        raise invalid_client(
            ASSERTION_TIME_RANGE, "The federated assertion is not within its valid time range."
        )


def _untrusted(code: int, message: str) -> EntraError:
    # A federated assertion is the client's credential: like any bad credential, 401 invalid_client.
    return invalid_client(code, message)
