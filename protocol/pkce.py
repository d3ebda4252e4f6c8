"""Proof Key for Code Exchange (RFC 7636) with the S256 method, and the other one-time values of
the authorization code flow (``state``, RFC 6749 section 10.12; ``nonce``, OpenID Connect Core
section 3.1.2.1). Every value comes from :mod:`secrets`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field

__all__ = ["Pkce", "code_challenge", "new_nonce", "new_pkce", "new_state"]


@dataclass(frozen=True, slots=True)
class Pkce:
    """A code verifier and its S256 challenge."""

    verifier: str = field(repr=False)
    challenge: str
    method: str = "S256"


def code_challenge(verifier: str) -> str:
    """``BASE64URL(SHA256(ASCII(verifier)))`` without padding (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_pkce() -> Pkce:
    """A fresh verifier of 64 unreserved characters (RFC 7636 requires 43 to 128) and its challenge."""
    verifier = secrets.token_urlsafe(48)  # 48 random bytes -> 64 characters of [A-Za-z0-9_-]
    return Pkce(verifier=verifier, challenge=code_challenge(verifier))


def new_state() -> str:
    """An unguessable ``state`` value binding the authorization response to this request."""
    return secrets.token_urlsafe(24)


def new_nonce() -> str:
    """An unguessable ``nonce`` the id token must echo."""
    return secrets.token_urlsafe(24)
