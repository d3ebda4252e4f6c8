"""protocol.certificate: loading PEM / PKCS#12 and signing client assertions (RFC 7523)."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from typing import Any

import jwt
import pytest

from protocol.certificate import ASSERTION_LIFETIME, build_client_assertion, load_certificate

from .helpers import (
    CLIENT_ID,
    PUBLIC_TOKEN_URL,
    CertMaterial,
    cert_der,
    cert_pem,
    decode_jwt,
    key_pem,
    pkcs12_bytes,
)

PASSWORD = "CANARY-PASSWORD-61c0e2"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# --------------------------------------------------------------------------- loading


def loaded_summary(certs: CertMaterial, data: bytes, password: Any = None) -> dict[str, Any]:
    loaded = load_certificate(data, password)
    return {
        "public numbers": loaded.private_key.public_key().public_numbers(),
        "certificate": loaded.certificate_der,
        "chain": loaded.chain_der,
    }


def self_signed_expected(certs: CertMaterial) -> dict[str, Any]:
    return {
        "public numbers": certs.key.public_key().public_numbers(),
        "certificate": cert_der(certs.cert),
        "chain": (cert_der(certs.cert),),
    }


def test_pem_key_then_certificate(certs: CertMaterial) -> None:
    data = key_pem(certs.key) + cert_pem(certs.cert)
    assert loaded_summary(certs, data) == self_signed_expected(certs)


def test_pem_certificate_then_key(certs: CertMaterial) -> None:
    data = cert_pem(certs.cert) + key_pem(certs.key)
    assert loaded_summary(certs, data) == self_signed_expected(certs)


@pytest.mark.parametrize("password", [PASSWORD, PASSWORD.encode()])
def test_pem_with_encrypted_key(certs: CertMaterial, password: str | bytes) -> None:
    data = key_pem(certs.key, PASSWORD.encode()) + cert_pem(certs.cert)
    assert loaded_summary(certs, data, password) == self_signed_expected(certs)


def test_pem_chain_is_reordered_leaf_first(certs: CertMaterial) -> None:
    data = cert_pem(certs.ca_cert) + cert_pem(certs.leaf_cert) + key_pem(certs.leaf_key)
    assert loaded_summary(certs, data) == {
        "public numbers": certs.leaf_key.public_key().public_numbers(),
        "certificate": cert_der(certs.leaf_cert),
        "chain": (cert_der(certs.leaf_cert), cert_der(certs.ca_cert)),
    }


@pytest.mark.parametrize("password", [None, PASSWORD])
def test_pkcs12(certs: CertMaterial, password: str | None) -> None:
    data = pkcs12_bytes(certs.key, certs.cert, password=password.encode() if password else None)
    assert loaded_summary(certs, data, password) == self_signed_expected(certs)


def test_pkcs12_with_chain(certs: CertMaterial) -> None:
    data = pkcs12_bytes(certs.leaf_key, certs.leaf_cert, [certs.ca_cert], password=PASSWORD.encode())
    assert loaded_summary(certs, data, PASSWORD) == {
        "public numbers": certs.leaf_key.public_key().public_numbers(),
        "certificate": cert_der(certs.leaf_cert),
        "chain": (cert_der(certs.leaf_cert), cert_der(certs.ca_cert)),
    }


def test_thumbprints(certs: CertMaterial) -> None:
    loaded = load_certificate(key_pem(certs.key) + cert_pem(certs.cert))
    der = cert_der(certs.cert)
    assert {
        "sha1": loaded.sha1_thumbprint,
        "sha256": loaded.sha256_thumbprint,
        "x5t": loaded.x5t,
        "x5t#S256": loaded.x5t_s256,
    } == {
        "sha1": hashlib.sha1(der).hexdigest().upper(),
        "sha256": hashlib.sha256(der).hexdigest().upper(),
        "x5t": b64url(hashlib.sha1(der).digest()),
        "x5t#S256": b64url(hashlib.sha256(der).digest()),
    }
    assert "=" not in loaded.x5t + loaded.x5t_s256


def test_repr_hides_key_material(certs: CertMaterial) -> None:
    loaded = load_certificate(key_pem(certs.key) + cert_pem(certs.cert))
    assert repr(loaded) == "ClientCertificate()"


@pytest.mark.parametrize(
    ("make", "password", "message"),
    [
        (lambda c: key_pem(c.key, PASSWORD.encode()) + cert_pem(c.cert), "wrong", "password is wrong"),
        (lambda c: key_pem(c.key, PASSWORD.encode()) + cert_pem(c.cert), None, "encrypted and no password"),
        (lambda c: key_pem(c.key) + cert_pem(c.cert), PASSWORD, "password was given for an unencrypted key"),
        (lambda c: pkcs12_bytes(c.key, c.cert, password=PASSWORD.encode()), "wrong", "password is wrong"),
        (lambda c: pkcs12_bytes(c.key, c.cert, password=PASSWORD.encode()), None, "password is wrong"),
        (lambda c: key_pem(c.ec_key) + cert_pem(c.ec_cert), None, "must have an RSA private key"),
        (lambda c: key_pem(c.ec_key) + cert_pem(c.cert), None, "must have an RSA private key"),
        (lambda c: pkcs12_bytes(c.ec_key, c.ec_cert), None, "must have an RSA private key"),
        (lambda c: cert_pem(c.cert), None, "no 'PRIVATE KEY' block"),
        (lambda c: key_pem(c.key), None, "no 'CERTIFICATE' block"),
        (lambda c: key_pem(c.key) + cert_pem(c.leaf_cert), None, "None of the certificates"),
        (lambda c: key_pem(c.key) + cert_pem(c.ec_cert), None, "None of the certificates"),
        (lambda c: pkcs12_bytes(None, c.cert), None, "both a private key and its certificate"),
        (lambda c: b"this is not a certificate", None, "neither PEM nor PKCS#12"),
        (lambda c: b"\x30\x82\x01\x00garbage", None, "neither PEM nor PKCS#12"),
        (lambda c: b"-----BEGIN garbage-----", None, "no 'PRIVATE KEY' block"),
        (lambda c: b"", None, "empty"),
    ],
)
def test_load_failures_are_value_errors(certs: CertMaterial, make: Any, password: Any, message: str) -> None:
    data = make(certs)
    with pytest.raises(ValueError, match=message) as info:
        load_certificate(data, password)
    text = f"{info.value} {info.value!r}"
    assert PASSWORD not in text
    assert "BEGIN" not in text
    assert "MII" not in text  # no base64 DER/PEM body


# --------------------------------------------------------------------------- assertions


@pytest.fixture(scope="module")
def chain_certificate(certs: CertMaterial) -> Any:
    return load_certificate(cert_pem(certs.ca_cert) + cert_pem(certs.leaf_cert) + key_pem(certs.leaf_key))


@pytest.mark.parametrize(
    ("algorithm", "thumb_header", "digest"),
    [("PS256", "x5t#S256", hashlib.sha256), ("RS256", "x5t", hashlib.sha1)],
)
def test_assertion_header_claims_and_signature(
    certs: CertMaterial, chain_certificate: Any, algorithm: str, thumb_header: str, digest: Any
) -> None:
    now = time.time()
    token = build_client_assertion(
        chain_certificate,
        client_id=CLIENT_ID,
        audience=PUBLIC_TOKEN_URL,
        now=now,
        algorithm=algorithm,  # type: ignore[arg-type]
    )
    header = jwt.get_unverified_header(token)
    claims = decode_jwt(token, certs.leaf_key.public_key(), algorithm=algorithm, audience=PUBLIC_TOKEN_URL)
    issued = int(now)
    assert header == {
        "alg": algorithm,
        "typ": "JWT",
        thumb_header: b64url(digest(cert_der(certs.leaf_cert)).digest()),
    }
    jti = claims.pop("jti")
    assert claims == {
        "aud": PUBLIC_TOKEN_URL,
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "nbf": issued,
        "iat": issued,
        "exp": issued + 600,
    }
    assert uuid.UUID(jti).version == 4
    assert ASSERTION_LIFETIME == 600


@pytest.mark.parametrize("algorithm", ["PS256", "RS256"])
def test_signature_does_not_verify_with_another_key(
    certs: CertMaterial, chain_certificate: Any, algorithm: str
) -> None:
    token = build_client_assertion(
        chain_certificate,
        client_id=CLIENT_ID,
        audience=PUBLIC_TOKEN_URL,
        now=time.time(),
        algorithm=algorithm,  # type: ignore[arg-type]
    )
    with pytest.raises(jwt.InvalidSignatureError):
        decode_jwt(token, certs.other_key.public_key(), algorithm=algorithm, audience=PUBLIC_TOKEN_URL)


def test_ps256_is_not_accepted_as_rs256(certs: CertMaterial, chain_certificate: Any) -> None:
    token = build_client_assertion(
        chain_certificate, client_id=CLIENT_ID, audience=PUBLIC_TOKEN_URL, now=time.time()
    )
    with pytest.raises(jwt.InvalidAlgorithmError):
        decode_jwt(token, certs.leaf_key.public_key(), algorithm="RS256", audience=PUBLIC_TOKEN_URL)


@pytest.mark.parametrize("algorithm", ["PS256", "RS256"])
def test_x5c_only_with_send_chain_and_leaf_first(
    certs: CertMaterial, chain_certificate: Any, algorithm: str
) -> None:
    without = build_client_assertion(
        chain_certificate,
        client_id=CLIENT_ID,
        audience=PUBLIC_TOKEN_URL,
        now=time.time(),
        algorithm=algorithm,  # type: ignore[arg-type]
    )
    with_chain = build_client_assertion(
        chain_certificate,
        client_id=CLIENT_ID,
        audience=PUBLIC_TOKEN_URL,
        now=time.time(),
        algorithm=algorithm,  # type: ignore[arg-type]
        send_chain=True,
    )
    assert "x5c" not in jwt.get_unverified_header(without)
    x5c = jwt.get_unverified_header(with_chain)["x5c"]
    assert [base64.b64decode(item, validate=True) for item in x5c] == [
        cert_der(certs.leaf_cert),
        cert_der(certs.ca_cert),
    ]
    decode_jwt(with_chain, certs.leaf_key.public_key(), algorithm=algorithm, audience=PUBLIC_TOKEN_URL)


def test_self_signed_x5c_has_one_certificate(certs: CertMaterial) -> None:
    loaded = load_certificate(key_pem(certs.key) + cert_pem(certs.cert))
    token = build_client_assertion(loaded, client_id="c", audience="a", now=0, send_chain=True)
    assert jwt.get_unverified_header(token)["x5c"] == [base64.b64encode(cert_der(certs.cert)).decode()]


def test_jti_is_unique_and_overridable(chain_certificate: Any) -> None:
    def jti_of(token: str) -> str:
        return jwt.decode(token, options={"verify_signature": False})["jti"]

    first = build_client_assertion(chain_certificate, client_id="c", audience="a", now=0)
    second = build_client_assertion(chain_certificate, client_id="c", audience="a", now=0)
    fixed = build_client_assertion(chain_certificate, client_id="c", audience="a", now=0, jti="my-jti")
    assert jti_of(first) != jti_of(second)
    assert jti_of(fixed) == "my-jti"


def test_times_are_integers_and_lifetime_is_configurable(chain_certificate: Any) -> None:
    token = build_client_assertion(
        chain_certificate, client_id="c", audience="a", now=1_700_000_000.9, lifetime=120
    )
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["nbf"], claims["iat"], claims["exp"]) == (1_700_000_000, 1_700_000_000, 1_700_000_120)
    assert all(type(claims[name]) is int for name in ("nbf", "iat", "exp"))


def test_jws_segments_have_no_padding(chain_certificate: Any) -> None:
    token = build_client_assertion(chain_certificate, client_id="c", audience="a", now=0, send_chain=True)
    assert token.count(".") == 2
    assert "=" not in token
