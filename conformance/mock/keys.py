"""Keys and certificates: the id-token signing key, its JWKS, client certificate thumbprints.

Generating an RSA key costs tens of milliseconds, so all authorities share one process-wide signing
key unless a test passes its own; a mock gains nothing from a fresh key per instance.
"""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from conformance.mock.models import RegisteredCertificate


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@functools.cache
def default_signing_key() -> rsa.RSAPrivateKey:
    """The process-wide RSA key that signs id tokens unless an authority is given its own."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class SigningKey:
    """An RSA key that signs the mock's id tokens (RS256) and is published as a JWKS."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self.private_key = private_key
        spki = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # Entra's key ids look like thumbprints; any stable, unique string works for a client.
        self.kid = b64url(hashlib.sha1(spki).digest())  # an identifier, not a security check

    def jwk(self) -> dict[str, Any]:
        """The public key as a JWK (RFC 7517), the shape Entra's ``keys`` endpoint serves."""
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "x5t": self.kid,
            "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
        }

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set served at ``/{tenant}/discovery/v2.0/keys``."""
        return {"keys": [self.jwk()]}

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact RS256 JWS over ``claims`` with ``kid`` in the header."""
        return jwt.encode(
            claims, self.private_key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"}
        )


def registered_certificate(pem: bytes | str) -> RegisteredCertificate:
    """Parse a PEM certificate into the values client assertions are checked against."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    cert = x509.load_pem_x509_certificate(data)
    der = cert.public_bytes(serialization.Encoding.DER)
    return RegisteredCertificate(
        pem=data,
        der=der,
        sha1_thumbprint=b64url(hashlib.sha1(der).digest()),  # x5t is defined as SHA-1
        sha256_thumbprint=b64url(hashlib.sha256(der).digest()),
    )


def certificate_public_key(cert: RegisteredCertificate) -> rsa.RSAPublicKey:
    """The RSA public key of a registered certificate (assertions must be RSA-signed)."""
    key = x509.load_der_x509_certificate(cert.der).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("client certificates must carry an RSA key")
    return key


@dataclass(frozen=True)
class ClientCertificate:
    """A self-signed client certificate and its key, for registering apps in tests.

    ``thumbprint`` is the SHA-1 hex digest (what azure-identity hands MSAL); ``pem`` is the key
    followed by the certificate, the layout ``CertificateCredential`` accepts as one file.
    """

    private_key: rsa.RSAPrivateKey = field(repr=False)
    private_key_pem: bytes = field(repr=False)
    certificate_pem: bytes
    thumbprint: str

    @property
    def pem(self) -> bytes:
        """Private key and certificate in one PEM document."""
        return self.private_key_pem + self.certificate_pem


def generate_client_certificate(
    common_name: str = "mock-client", *, private_key: rsa.RSAPrivateKey | None = None
) -> ClientCertificate:
    """Create a self-signed RSA client certificate valid for a day around now."""
    key = private_key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return ClientCertificate(
        private_key=key,
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM),
        thumbprint=cert.fingerprint(hashes.SHA1()).hex(),  # x5t is defined as SHA-1
    )


def client_info(object_id: str, tenant_id: str) -> str:
    """Entra's ``client_info``: base64url (no padding) of ``{"uid": oid, "utid": tenant}``."""
    return b64url(json.dumps({"uid": object_id, "utid": tenant_id}, separators=(",", ":")).encode())
