"""Client certificates: loading PEM or PKCS#12 data and signing client assertions (RFC 7523).

The assertion is a JWT signed with the certificate's RSA key
(https://learn.microsoft.com/entra/identity-platform/certificate-credentials):

* header ``alg`` ``PS256`` with ``x5t#S256`` (base64url SHA-256 of the DER certificate), Entra's
  current guidance, or ``RS256`` with ``x5t`` (base64url SHA-1), which AD FS requires;
* ``x5c`` (the chain, leaf first, base64 DER) when subject-name/issuer authentication is used;
* claims ``aud`` = the token endpoint, ``iss`` = ``sub`` = the client id, a unique ``jti``, and
  ``nbf`` = ``iat`` = now, ``exp`` = now + a short lifetime (10 minutes by default).

``cryptography`` and ``jwt`` are imported when a certificate is first used, not at import time.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from .wire import new_request_id

if TYPE_CHECKING:  # pragma: no cover
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

__all__ = ["Algorithm", "ClientCertificate", "build_client_assertion", "load_certificate"]

Algorithm = Literal["PS256", "RS256"]

#: Lifetime of a client assertion. Entra imposes no limit; short limits replay value.
ASSERTION_LIFETIME = 600


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """An RSA private key with its certificate (and the chain that came with it)."""

    private_key: RSAPrivateKey = field(repr=False)
    certificate_der: bytes = field(repr=False)
    chain_der: tuple[bytes, ...] = field(repr=False)

    @property
    def sha1_thumbprint(self) -> str:
        """Hex SHA-1 of the DER certificate (what the Azure portal shows)."""
        return hashlib.sha1(self.certificate_der, usedforsecurity=False).hexdigest().upper()

    @property
    def sha256_thumbprint(self) -> str:
        return hashlib.sha256(self.certificate_der).hexdigest().upper()

    @property
    def x5t(self) -> str:
        return _b64url(hashlib.sha1(self.certificate_der, usedforsecurity=False).digest())

    @property
    def x5t_s256(self) -> str:
        return _b64url(hashlib.sha256(self.certificate_der).digest())


def load_certificate(data: bytes, password: bytes | str | None = None) -> ClientCertificate:
    """Load a PEM (key and certificates in one file) or PKCS#12 certificate.

    Raises:
        ValueError: the data holds no private key or certificate, the password is wrong, the key is
            not RSA, or no certificate matches the key. The message never includes the data.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs12

    secret = password.encode("utf-8") if isinstance(password, str) else password
    if not data:
        raise ValueError("The certificate data is empty.")
    certificates: list[x509.Certificate]
    if b"-----BEGIN" in data:
        try:
            # An empty password means "none" for PEM (configuration often has "" for unset).
            key = serialization.load_pem_private_key(data, password=secret or None)
        except TypeError as exc:
            raise ValueError(
                "The certificate's private key is encrypted and no password was given, or a password "
                "was given for an unencrypted key."
            ) from exc
        except ValueError as exc:
            raise ValueError(
                "Could not load a private key from the PEM certificate data: it has no "
                "'PRIVATE KEY' block, or the password is wrong."
            ) from exc
        try:
            certificates = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise ValueError("The PEM data has no 'CERTIFICATE' block next to its private key.") from exc
    else:
        try:
            loaded_key, leaf, extra = pkcs12.load_key_and_certificates(data, secret)
        except ValueError as exc:
            raise ValueError(
                "Could not load the certificate: it is neither PEM nor PKCS#12, or the password is wrong."
            ) from exc
        if loaded_key is None or leaf is None:
            raise ValueError("The PKCS#12 data must hold both a private key and its certificate.")
        key = loaded_key
        certificates = [leaf, *extra]
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(
            "The certificate must have an RSA private key: Entra ID client assertions are signed "
            "with RS256 or PS256."
        )
    public_numbers = key.public_key().public_numbers()
    leaf_index = next(
        (
            index
            for index, cert in enumerate(certificates)
            if isinstance(cert.public_key(), rsa.RSAPublicKey)
            and cert.public_key().public_numbers() == public_numbers  # type: ignore[union-attr]
        ),
        None,
    )
    if leaf_index is None:
        raise ValueError("None of the certificates in the data matches its private key.")
    der = [cert.public_bytes(serialization.Encoding.DER) for cert in certificates]
    chain = (der[leaf_index], *(d for i, d in enumerate(der) if i != leaf_index))
    return ClientCertificate(private_key=key, certificate_der=der[leaf_index], chain_der=chain)


def build_client_assertion(
    certificate: ClientCertificate,
    *,
    client_id: str,
    audience: str,
    now: float,
    algorithm: Algorithm = "PS256",
    send_chain: bool = False,
    lifetime: int = ASSERTION_LIFETIME,
    jti: str | None = None,
) -> str:
    """Sign a client assertion JWT for ``client_id`` addressed to ``audience`` (the token endpoint)."""
    import jwt

    issued = int(now)
    headers: dict[str, object] = {"typ": "JWT", "alg": algorithm}
    if algorithm == "PS256":
        headers["x5t#S256"] = certificate.x5t_s256
    else:
        headers["x5t"] = certificate.x5t
    if send_chain:
        headers["x5c"] = [base64.b64encode(der).decode("ascii") for der in certificate.chain_der]
    claims = {
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": jti or new_request_id(),
        "nbf": issued,
        "iat": issued,
        "exp": issued + lifetime,
    }
    return jwt.encode(claims, certificate.private_key, algorithm=algorithm, headers=headers)
