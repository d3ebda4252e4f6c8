"""OpenID Connect ID tokens as a public client receives them from the token endpoint.

The ID token arrives in the token response, over TLS, straight from the authority the client chose,
so its signature is not what establishes trust (OpenID Connect Core 1.0 section 3.1.3.7, item 6:
TLS server validation may stand in for the signature check); what the client must check is that
the token is meant for it and for this sign-in:

* ``aud`` names our client id (a string, or a list holding it);
* ``nonce`` equals the one we sent to the authorize endpoint, when we sent one (flows that send
  none, such as device code or a refresh, accept whatever the token carries);
* the claims a sign-in needs are there: ``iss``; ``oid`` or ``sub`` (the user's id in the tenant);
  ``tid`` (or the tenant from ``iss``).

:func:`parse_id_token` decodes the JWT payload (base64url JSON, no signature check) and checks those;
anything malformed is a :class:`~protocol.errors.MalformedResponseError` naming what is wrong, a
mismatch an :class:`IdTokenMismatchError`. Neither message ever contains the token.

Usernames follow azure-identity: ``preferred_username``, else ``upn`` (AD FS and older tokens).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import MalformedResponseError, ProtocolError

__all__ = ["IdTokenClaims", "IdTokenMismatchError", "decode_jwt_payload", "parse_id_token"]


class IdTokenMismatchError(ProtocolError):
    """The ID token is well formed but not for this client or this sign-in (``aud`` or ``nonce``)."""


@dataclass(frozen=True, slots=True)
class IdTokenClaims:
    """What a client uses from an ID token. The raw claims are kept out of ``repr``.

    Attributes:
        issuer: ``iss``.
        audience: our client id (checked).
        subject: ``sub``.
        object_id: ``oid`` (Entra), else ``sub``.
        tenant_id: ``tid``, else the tenant segment of ``iss`` (``None`` when neither says).
        username: ``preferred_username``, else ``upn``, else ``""``.
        name: ``name`` (display name), if present.
        nonce: ``nonce``, if present.
        expires_on: ``exp``, if present.
        claims: every claim, as decoded.
    """

    issuer: str
    audience: str
    subject: str
    object_id: str
    tenant_id: str | None
    username: str
    name: str | None
    nonce: str | None
    expires_on: int | None
    claims: Mapping[str, Any] = field(repr=False, compare=False)


def decode_jwt_payload(token: str) -> dict[str, Any]:
    """The payload of a compact JWS/JWT (``header.payload.signature``), as a JSON object.

    Raises:
        MalformedResponseError: not three dot-separated parts, not base64url, not a JSON object.
    """
    if not isinstance(token, str):
        raise MalformedResponseError("the id_token is not a string")
    parts = token.split(".")
    if len(parts) != 3 or not parts[1]:
        raise MalformedResponseError(
            f"the id_token is not a JWT (expected 3 dot-separated parts, got {len(parts)})"
        )
    segment = parts[1]
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeError, RecursionError) as exc:
        raise MalformedResponseError(
            f"the id_token's payload is not base64url-encoded JSON ({type(exc).__name__})"
        ) from None
    if not isinstance(payload, dict):
        raise MalformedResponseError("the id_token's payload is not a JSON object")
    return payload


def _string(claims: Mapping[str, Any], name: str, problems: list[str], *, required: bool) -> str | None:
    value = claims.get(name)
    if value is None:
        if required:
            problems.append(f"{name} (missing)")
        return None
    if not isinstance(value, str) or (required and not value):
        problems.append(f"{name} (not a non-empty string)" if required else f"{name} (not a string)")
        return None
    return value


def _tenant_from_issuer(issuer: str) -> str | None:
    # https://login.microsoftonline.com/{tid}/v2.0 or https://sts.windows.net/{tid}/
    path = issuer.split("://", 1)[-1].split("/")
    segments = [s for s in path[1:] if s]
    return segments[0] if segments and segments[0] not in ("v2.0", "adfs") else None


def parse_id_token(token: str, *, client_id: str, nonce: str | None = None) -> IdTokenClaims:
    """Decode and check an ID token received from the token endpoint.

    Args:
        token: the compact JWT.
        client_id: our client id: ``aud`` must name it.
        nonce: the nonce sent to the authorize endpoint, if any: the token must carry it.

    Raises:
        MalformedResponseError: the token or a claim it needs is malformed or missing (all named).
        IdTokenMismatchError: ``aud`` or ``nonce`` is not ours.
    """
    claims = decode_jwt_payload(token)
    problems: list[str] = []
    issuer = _string(claims, "iss", problems, required=True)
    subject = _string(claims, "sub", problems, required=False)
    object_id = _string(claims, "oid", problems, required=False) or subject
    if not object_id:
        problems.append("oid / sub (neither is present)")
    tenant = _string(claims, "tid", problems, required=False)
    preferred = _string(claims, "preferred_username", problems, required=False)
    upn = _string(claims, "upn", problems, required=False)
    name = _string(claims, "name", problems, required=False)
    token_nonce = _string(claims, "nonce", problems, required=False)
    audience = claims.get("aud")
    if isinstance(audience, str):
        audiences = [audience]
    elif isinstance(audience, list) and audience and all(isinstance(a, str) for a in audience):
        audiences = list(audience)
    else:
        problems.append("aud (missing, or not a string or list of strings)")
        audiences = []
    expires = claims.get("exp")
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int | float)):
        problems.append("exp (not a number)")
        expires = None
    if problems:
        raise MalformedResponseError(f"the id_token lacks or has malformed claims: {', '.join(problems)}")
    if audiences and client_id not in audiences:
        raise IdTokenMismatchError(
            f"the id_token was issued to another application (aud {audiences!r}, expected {client_id!r}); "
            "the sign-in is refused"
        )
    if nonce is not None and token_nonce != nonce:
        raise IdTokenMismatchError(
            "the id_token's nonce does not match the one this sign-in sent (a replayed or injected "
            "response); the sign-in is refused. Sign in again."
        )
    return IdTokenClaims(
        issuer=issuer or "",
        audience=client_id,
        subject=subject or object_id or "",
        object_id=object_id or "",
        tenant_id=tenant or _tenant_from_issuer(issuer or ""),
        username=preferred or upn or "",
        name=name,
        nonce=token_nonce,
        expires_on=int(expires) if expires is not None else None,
        claims=claims,
    )
