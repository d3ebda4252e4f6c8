"""Who is asking at the token endpoint: client id, app registration, secret or certificate assertion.

Rules (reference §2.3-2.5, §3.5): a confidential app authenticates on every request with exactly one
of ``client_secret`` (form field or HTTP Basic) or ``client_assertion`` + ``client_assertion_type``;
a public client sends neither. A certificate assertion is a JWT that must

* be signed RS256 or PS256 by the registered certificate's key (else AADSTS700027),
* name that certificate in ``x5t`` (SHA-1) or ``x5t#S256`` (SHA-256), padded or not (else 700027),
* start its ``x5c`` chain, when present, with that certificate (else 700027),
* carry ``iss`` = ``sub`` = client id (else 700021) and ``aud`` = the URL it was posted to (else 50027),
* be within ``nbf``..``exp`` allowing the configured skew (else 700024),
* carry a ``jti``; a replayed ``jti`` is refused only when ``reject_replayed_jti`` is on.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
from typing import Any
from urllib.parse import unquote_plus

import jwt
from jwt.api_jws import PyJWS

from conformance.mock import errors
from conformance.mock.context import RequestContext
from conformance.mock.errors import EntraError, entra_timestamp, invalid_client, missing_parameter
from conformance.mock.federation import validate_federated_assertion
from conformance.mock.keys import certificate_public_key
from conformance.mock.models import Application, RegisteredCertificate, Tenant
from conformance.mock.state import AuthorityState

JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SIGNING_ALGORITHMS = ("RS256", "PS256")


def basic_credentials(ctx: RequestContext) -> tuple[str, str] | None:
    """``(client_id, secret)`` from an HTTP Basic ``Authorization`` header (RFC 6749 §2.3.1)."""
    scheme, _, value = ctx.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    return unquote_plus(client_id), unquote_plus(secret)


def client_id_of(ctx: RequestContext) -> str:
    """The client id of a token request: the ``client_id`` field, else the HTTP Basic user."""
    basic = basic_credentials(ctx)
    client_id = ctx.form.get("client_id") or (basic[0] if basic else "")
    if not client_id:
        raise missing_parameter("client_id")
    return client_id


def application(
    state: AuthorityState, tenant: Tenant | None, client_id: str, tenant_label: str
) -> Application:
    """The registered app ``client_id`` (AADSTS700016 ``unauthorized_client`` when there is none)."""
    app = state.find_application(tenant, client_id)
    if app is None:
        raise EntraError(
            400,
            "unauthorized_client",
            errors.UNKNOWN_APPLICATION,
            f"Application with identifier '{client_id}' was not found in the directory '{tenant_label}'. "
            "This can happen if the application has not been installed by the administrator of the tenant "
            "or consented to by any user in the tenant. You may have sent your authentication request to "
            "the wrong tenant.",
        )
    return app


def authenticate_client(
    state: AuthorityState, ctx: RequestContext, app: Application, *, confidential_only: bool
) -> None:
    """Check the client credential of ``app`` on this request; raise :class:`EntraError` if wrong.

    ``confidential_only`` marks grants only a confidential client may use (client credentials, OBO).
    """
    basic = basic_credentials(ctx)
    secret = ctx.form.get("client_secret") or (basic[1] if basic else "")
    assertion = ctx.form.get("client_assertion", "")
    assertion_type = ctx.form.get("client_assertion_type", "")
    if app.public_client:
        if secret or assertion or assertion_type:
            raise invalid_client(
                errors.PUBLIC_CLIENT_CREDENTIAL,
                "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
            )
        if not confidential_only:
            return
        raise _no_credential()
    if secret and (assertion or assertion_type):
        # Mock's choice: Entra's exact answer to both credentials at once is not in the reference.
        raise invalid_client(
            errors.MISSING_CLIENT_CREDENTIAL,
            "The request body must contain only one of the following parameters: "
            "'client_assertion' or 'client_secret'.",
        )
    if secret:
        if app.secret is None or not hmac.compare_digest(secret.encode(), app.secret.encode()):
            raise invalid_client(
                errors.INVALID_SECRET,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                f"secret value, not the client secret ID, for a secret added to app '{app.client_id}'.",
            )
        return
    if assertion or assertion_type:
        if not assertion:
            raise missing_parameter("client_assertion")
        if not assertion_type:
            raise missing_parameter("client_assertion_type")
        if assertion_type != JWT_BEARER_ASSERTION:
            # Mock's choice of code; the type value is not secret, so it may be quoted.
            raise invalid_client(
                errors.CREDENTIAL_VALIDATION,
                "Error validating credentials. "
                f"The client_assertion_type '{assertion_type[:100]}' is not supported.",
            )
        validate_assertion(state, ctx, app, assertion)
        return
    raise _no_credential()


def _no_credential() -> EntraError:
    return invalid_client(
        errors.MISSING_CLIENT_CREDENTIAL,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    )


def _signature_error(reason: str) -> EntraError:
    return invalid_client(
        errors.ASSERTION_SIGNATURE, f"Client assertion contains an invalid signature. {reason}"
    )


def _malformed(reason: str) -> EntraError:
    return invalid_client(errors.ASSERTION_MALFORMED, f"Invalid JWT token. {reason}")


def _check_key_reference(header: dict[str, Any], cert: RegisteredCertificate) -> None:
    """``x5t``/``x5t#S256`` must name the registered certificate; ``x5c`` must start with it."""
    references = [
        (header.get("x5t"), cert.sha1_thumbprint),
        (header.get("x5t#S256"), cert.sha256_thumbprint),
    ]
    given = [(value, expected) for value, expected in references if value is not None]
    if not given:
        raise _signature_error("[Reason - The key was not found: the header has no 'x5t' or 'x5t#S256'.]")
    for value, expected in given:
        if not isinstance(value, str) or value.strip().rstrip("=") != expected:
            raise _signature_error("[Reason - The key was not found.]")
    chain = header.get("x5c")
    if chain is None:
        return
    try:
        leaf = base64.b64decode("".join(chain[0].split()), validate=True) if isinstance(chain, list) else b""
    except (binascii.Error, AttributeError, IndexError):
        leaf = b""
    if leaf != cert.der:
        raise _signature_error("[Reason - The 'x5c' chain does not start with the registered certificate.]")


def validate_assertion(state: AuthorityState, ctx: RequestContext, app: Application, assertion: str) -> None:
    """Validate a client assertion for ``app``: a certificate assertion (module docstring lists the
    rules), or a token from an issuer the app trusts (:mod:`conformance.mock.federation`)."""
    try:
        header = jwt.get_unverified_header(assertion)
        issuer = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        raise _malformed("Token format not valid.") from None
    if app.federated_credentials and (not isinstance(issuer, str) or issuer.lower() != app.client_id.lower()):
        validate_federated_assertion(
            app.federated_credentials, assertion, now=state.now(), skew=state.assertion_clock_skew
        )
        return
    algorithm = header.get("alg")
    if algorithm not in SIGNING_ALGORITHMS:
        raise _signature_error("[Reason - The signing algorithm must be RS256 or PS256.]")
    cert = app.certificate
    if cert is None:
        raise _signature_error("[Reason - The application has no certificate registered.]")
    _check_key_reference(header, cert)
    try:
        decoded = PyJWS().decode_complete(assertion, certificate_public_key(cert), algorithms=[algorithm])
    except jwt.InvalidSignatureError:
        raise invalid_client(
            errors.ASSERTION_SIGNATURE, "Client assertion failed signature validation."
        ) from None
    except jwt.PyJWTError:
        raise _malformed("Token format not valid.") from None
    try:
        claims = json.loads(decoded["payload"])
    except ValueError:
        claims = None
    if not isinstance(claims, dict):
        raise _malformed("The payload is not a JSON object.")
    _check_claims(state, ctx, app, claims)


def _numeric(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _malformed(f"The '{name}' claim must be a number.")
    return float(value)


def _check_claims(
    state: AuthorityState, ctx: RequestContext, app: Application, claims: dict[str, Any]
) -> None:
    client_id = app.client_id.lower()
    for name in ("iss", "sub"):
        value = claims.get(name)
        if not isinstance(value, str) or value.lower() != client_id:
            raise invalid_client(
                errors.ASSERTION_CLIENT_MISMATCH,
                f"Client assertion application identifier doesn't match 'client_id' parameter ('{name}').",
            )
    expected_aud = ctx.endpoint_url.rstrip("/").lower()
    audiences = claims.get("aud")
    audience_list = audiences if isinstance(audiences, list) else [audiences]
    if not any(isinstance(aud, str) and aud.rstrip("/").lower() == expected_aud for aud in audience_list):
        # Entra's code for a wrong audience is unconfirmed; AADSTS50027 lists "unexpected audience".
        raise _malformed(f"The audience claim ('aud') must be the token endpoint '{ctx.endpoint_url}'.")
    expires = _numeric(claims, "exp")
    if expires is None:
        raise _malformed("The 'exp' claim is required.")
    not_before = _numeric(claims, "nbf")
    now = state.now()
    skew = state.assertion_clock_skew
    if now > expires + skew or (not_before is not None and now + skew < not_before):
        raise invalid_client(
            errors.ASSERTION_TIME_RANGE,
            f"Client assertion is not within its valid time range. Current time: {entra_timestamp(now)}, "
            f"assertion valid from {entra_timestamp(not_before) if not_before is not None else 'unset'}, "
            f"expiry time of assertion {entra_timestamp(expires)}.",
        )
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise _malformed("The 'jti' claim is required.")
    if state.reject_replayed_jti and jti in state.seen_jtis:
        # Entra's exact code for a replayed jti is unconfirmed; AADSTS50027 is the mock's choice.
        raise _malformed("The 'jti' claim of this client assertion has been used before.")
    state.seen_jtis.add(jti)
