"""CertificateCredential (sync and ``identity.aio``): loading, the signed assertion, AD FS, x5c, secrets.

Every scenario runs twice through the ``api`` fixture against ``FakeEntra``. The certificate's
password and private key are canaries: they must not appear in a log record, an exception (with
its chain) or a ``repr``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

import identity
import identity.aio
from identity import AccessToken, ClientAuthenticationError

from ..protocol.helpers import cert_der, cert_material, cert_pem, decode_jwt, key_pem, pkcs12_bytes
from .fakes import (
    CLIENT_ID,
    FAST_RETRY,
    NOW,
    TENANT,
    VAULT,
    Api,
    FakeEntra,
    decoded_form,
    error_chain,
    invalid_client,
    token_url,
)

PASSWORD = "CANARY-CERT-PASSWORD-7c41"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ADFS_AUTHORITY = "https://adfs.contoso.test"
ADFS_METADATA_URL = f"{ADFS_AUTHORITY}/adfs/.well-known/openid-configuration"
ADFS_TOKEN_URL = f"{ADFS_AUTHORITY}/adfs/oauth2/token"
ADFS_METADATA = {
    "issuer": f"{ADFS_AUTHORITY}/adfs",
    "token_endpoint": ADFS_TOKEN_URL,
    "authorization_endpoint": f"{ADFS_AUTHORITY}/adfs/oauth2/authorize",
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def key_canaries(key: Any) -> list[str]:
    """Texts that only a leak of ``key`` would produce: its PEM body lines and private exponent."""
    lines = key_pem(key).decode("ascii").splitlines()
    return [line for line in lines if not line.startswith("-----")] + [str(key.private_numbers().d)]


def secret_canaries() -> list[str]:
    material = cert_material()
    return [PASSWORD, *key_canaries(material.key), *key_canaries(material.leaf_key)]


def assert_no_secret(*texts: str) -> None:
    canaries = secret_canaries()
    leaks = [(canary[:24], text[:120]) for text in texts for canary in canaries if canary in text]
    assert leaks == [], f"certificate secrets leaked: {leaks}"


def assert_exception_clean(exc: BaseException) -> None:
    for link in error_chain(exc):
        assert_no_secret(str(link), repr(link), *(str(arg) for arg in link.args))


@pytest.fixture(autouse=True)
def _no_certificate_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    yield
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for phase in ("setup", "call"):
        for record in caplog.get_records(phase):  # type: ignore[arg-type]
            assert_no_secret(formatter.format(record))


def certificate_credential(api: Api, *args: Any, **kwargs: Any) -> Any:
    """The sync or async CertificateCredential against ``FakeEntra``, on the test clock."""
    kwargs.setdefault("retry_policy", FAST_RETRY)
    kwargs.setdefault("transport", httpx.MockTransport(api.handler))
    module: Any = identity if api.mode == "sync" else identity.aio
    credential = module.CertificateCredential(*args, **kwargs)
    credential._core.clock = api.clock  # no public clock parameter (see fakes.Api.credential)
    api.opened.append(credential)
    return credential


def pem() -> bytes:
    material = cert_material()
    return key_pem(material.key) + cert_pem(material.cert)


def encrypted_pem() -> bytes:
    material = cert_material()
    return key_pem(material.key, PASSWORD.encode()) + cert_pem(material.cert)


def pfx() -> bytes:
    material = cert_material()
    return pkcs12_bytes(material.key, material.cert, password=PASSWORD.encode())


def app_form() -> dict[str, str]:
    """The certificate credential's token request form, without the (signed, varying) assertion."""
    return {
        "client_id": CLIENT_ID,
        "grant_type": "client_credentials",
        "scope": VAULT,
        "client_assertion_type": ASSERTION_TYPE,
    }


def assertion_claims(assertion: str, public_key: Any, *, algorithm: str, audience: str) -> dict[str, Any]:
    """The verified claims with ``jti`` checked to be a UUID4 and removed."""
    claims = decode_jwt(assertion, public_key, algorithm=algorithm, audience=audience, check_times=False)
    assert uuid.UUID(claims.pop("jti")).version == 4
    return claims


def expected_claims(audience: str) -> dict[str, Any]:
    return {
        "aud": audience,
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "nbf": int(NOW),
        "iat": int(NOW),
        "exp": int(NOW) + 600,
    }


# --- loading the certificate ----------------------------------------------------------------------


def _by_path(tmp_path: Path, data: bytes, name: str) -> dict[str, Any]:
    path = tmp_path / name
    path.write_bytes(data)
    return {"certificate_path": str(path)}


SOURCES = {
    "pem-path": lambda tmp: _by_path(tmp, pem(), "client.pem"),
    "pem-bytes": lambda tmp: {"certificate_data": pem()},
    "pkcs12-path-str-password": lambda tmp: {**_by_path(tmp, pfx(), "client.pfx"), "password": PASSWORD},
    "pkcs12-bytes-str-password": lambda tmp: {"certificate_data": pfx(), "password": PASSWORD},
    "pkcs12-bytes-bytes-password": lambda tmp: {"certificate_data": pfx(), "password": PASSWORD.encode()},
    "encrypted-pem-path": lambda tmp: {**_by_path(tmp, encrypted_pem(), "enc.pem"), "password": PASSWORD},
    "encrypted-pem-bytes": lambda tmp: {"certificate_data": encrypted_pem(), "password": PASSWORD.encode()},
}


@pytest.mark.parametrize("source", list(SOURCES))
async def test_certificate_sources_sign_a_ps256_assertion(
    api: Api, entra: FakeEntra, tmp_path: Path, source: str
) -> None:
    credential = certificate_credential(api, TENANT, CLIENT_ID, **SOURCES[source](tmp_path))

    token = await api.get_token(credential, VAULT)

    assert token == AccessToken("CANARY-AT-9b2c-1", int(NOW) + 3599)
    [request] = entra.requests
    assert (request.method, str(request.url)) == ("POST", token_url())
    fields = decoded_form(request)
    assertion = fields.pop("client_assertion")
    assert fields == app_form()
    der = cert_der(cert_material().cert)
    assert jwt.get_unverified_header(assertion) == {
        "typ": "JWT",
        "alg": "PS256",
        "x5t#S256": b64url(hashlib.sha256(der).digest()),
    }
    public_key = cert_material().cert.public_key()
    assert assertion_claims(assertion, public_key, algorithm="PS256", audience=token_url()) == (
        expected_claims(token_url())
    )


async def test_positional_certificate_path(api: Api, entra: FakeEntra, tmp_path: Path) -> None:
    path = tmp_path / "client.pem"
    path.write_bytes(pem())
    credential = certificate_credential(api, TENANT, CLIENT_ID, str(path))

    token = await api.get_token(credential, VAULT)

    assert token.token == "CANARY-AT-9b2c-1"
    assert len(entra.requests) == 1


async def test_every_request_gets_a_fresh_assertion_and_cached_tokens_none(
    api: Api, entra: FakeEntra
) -> None:
    credential = certificate_credential(api, TENANT, CLIENT_ID, certificate_data=pem())

    await api.get_token(credential, VAULT)
    await api.get_token(credential, VAULT)  # cached
    await api.get_token(credential, VAULT, claims='{"access_token": {"nbf": {"essential": true}}}')

    assert len(entra.requests) == 2
    jtis = [
        jwt.decode(f["client_assertion"], options={"verify_signature": False})["jti"] for f in entra.forms
    ]
    assert len(set(jtis)) == 2


# --- argument errors ------------------------------------------------------------------------------


async def test_path_and_data_together_are_refused(api: Api, entra: FakeEntra, tmp_path: Path) -> None:
    path = tmp_path / "client.pem"
    path.write_bytes(pem())

    with pytest.raises(ValueError) as caught:
        certificate_credential(api, TENANT, CLIENT_ID, str(path), certificate_data=pem())

    assert str(caught.value) == 'Please specify either "certificate_path" or "certificate_data", not both'
    assert entra.requests == []


@pytest.mark.parametrize("data", [None, b""], ids=["none", "empty-bytes"])
async def test_neither_path_nor_data_is_refused(api: Api, entra: FakeEntra, data: bytes | None) -> None:
    with pytest.raises(ValueError) as caught:
        certificate_credential(api, TENANT, CLIENT_ID, certificate_data=data)

    assert str(caught.value) == (
        'CertificateCredential requires a value for "certificate_path" or "certificate_data"'
    )
    assert entra.requests == []


@pytest.mark.parametrize(
    ("name", "reason"),
    [("missing.pem", "No such file or directory"), (".", "Is a directory")],
    ids=["missing", "directory"],
)
async def test_unreadable_path_is_named_in_the_value_error(
    api: Api, entra: FakeEntra, tmp_path: Path, name: str, reason: str
) -> None:
    path = str(tmp_path / name) if name != "." else str(tmp_path)

    with pytest.raises(ValueError) as caught:
        certificate_credential(api, TENANT, CLIENT_ID, path)

    assert str(caught.value) == f"Could not read the certificate file {path!r}: {reason}."
    assert isinstance(caught.value.__cause__, OSError)
    assert entra.requests == []


BAD_CERTIFICATES = {
    "pkcs12-wrong-password": (
        lambda: {"certificate_data": pfx(), "password": "wrong-password"},
        "Could not load the certificate: it is neither PEM nor PKCS#12, or the password is wrong.",
    ),
    "pkcs12-no-password": (
        lambda: {"certificate_data": pfx()},
        "Could not load the certificate: it is neither PEM nor PKCS#12, or the password is wrong.",
    ),
    "pem-wrong-password": (
        lambda: {"certificate_data": encrypted_pem(), "password": b"wrong-password"},
        "Could not load a private key from the PEM certificate data: it has no 'PRIVATE KEY' block, or "
        "the password is wrong.",
    ),
    "pem-no-password": (
        lambda: {"certificate_data": encrypted_pem()},
        "The certificate's private key is encrypted and no password was given, or a password was given "
        "for an unencrypted key.",
    ),
    "pem-password-for-unencrypted-key": (
        lambda: {"certificate_data": pem(), "password": PASSWORD},
        "The certificate's private key is encrypted and no password was given, or a password was given "
        "for an unencrypted key.",
    ),
    "ec-pem": (
        lambda: {"certificate_data": key_pem(cert_material().ec_key) + cert_pem(cert_material().ec_cert)},
        "The certificate must have an RSA private key: Entra ID client assertions are signed with RS256 "
        "or PS256.",
    ),
    "ec-pkcs12": (
        lambda: {
            "certificate_data": pkcs12_bytes(
                cert_material().ec_key, cert_material().ec_cert, password=PASSWORD.encode()
            ),
            "password": PASSWORD,
        },
        "The certificate must have an RSA private key: Entra ID client assertions are signed with RS256 "
        "or PS256.",
    ),
    "garbage": (
        lambda: {"certificate_data": b"\x30\x82\x01\x00 this is not a certificate"},
        "Could not load the certificate: it is neither PEM nor PKCS#12, or the password is wrong.",
    ),
    "garbage-pem": (
        lambda: {"certificate_data": b"-----BEGIN NONSENSE-----\nnot base64\n-----END NONSENSE-----\n"},
        "Could not load a private key from the PEM certificate data: it has no 'PRIVATE KEY' block, or "
        "the password is wrong.",
    ),
    "key-without-certificate": (
        lambda: {"certificate_data": key_pem(cert_material().key)},
        "The PEM data has no 'CERTIFICATE' block next to its private key.",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CERTIFICATES))
async def test_unusable_certificate_is_a_value_error_without_secrets(
    api: Api, entra: FakeEntra, case: str
) -> None:
    make, message = BAD_CERTIFICATES[case]

    with pytest.raises(ValueError) as caught:
        certificate_credential(api, TENANT, CLIENT_ID, **make())

    assert str(caught.value) == message
    assert_exception_clean(caught.value)
    assert entra.requests == []


async def test_bad_certificate_file_is_a_value_error(api: Api, entra: FakeEntra, tmp_path: Path) -> None:
    path = tmp_path / "client.pfx"
    path.write_bytes(pfx())

    with pytest.raises(ValueError) as caught:
        certificate_credential(api, TENANT, CLIENT_ID, str(path), password="wrong-password")

    assert str(caught.value) == (
        "Could not load the certificate: it is neither PEM nor PKCS#12, or the password is wrong."
    )
    assert entra.requests == []


async def test_regional_request_keeps_the_central_endpoint_as_audience(
    api: Api, entra: FakeEntra, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_REGIONAL_AUTHORITY_NAME", "westus2")
    credential = certificate_credential(api, TENANT, CLIENT_ID, certificate_data=pem())

    await api.get_token(credential, VAULT)

    assert entra.urls == [f"https://westus2.login.microsoft.com/{TENANT}/oauth2/v2.0/token"]
    [fields] = entra.forms
    public_key = cert_material().cert.public_key()
    claims = assertion_claims(fields["client_assertion"], public_key, algorithm="PS256", audience=token_url())
    assert claims == expected_claims(token_url())


# --- AD FS and the certificate chain --------------------------------------------------------------


async def test_adfs_signs_rs256_with_x5t(api: Api, entra: FakeEntra) -> None:
    entra.reply(httpx.Response(200, json=ADFS_METADATA))
    credential = certificate_credential(
        api, "adfs", CLIENT_ID, certificate_data=pem(), authority=ADFS_AUTHORITY
    )

    token = await api.get_token(credential, VAULT)

    assert token.token == "CANARY-AT-9b2c-2"
    assert [(r.method, str(r.url)) for r in entra.requests] == [
        ("GET", ADFS_METADATA_URL),
        ("POST", ADFS_TOKEN_URL),
    ]
    fields = decoded_form(entra.requests[1])
    assertion = fields.pop("client_assertion")
    assert fields == app_form()
    der = cert_der(cert_material().cert)
    assert jwt.get_unverified_header(assertion) == {
        "typ": "JWT",
        "alg": "RS256",
        "x5t": b64url(hashlib.sha1(der).digest()),
    }
    public_key = cert_material().cert.public_key()
    assert assertion_claims(assertion, public_key, algorithm="RS256", audience=ADFS_TOKEN_URL) == (
        expected_claims(ADFS_TOKEN_URL)
    )


def chain_pem() -> bytes:
    """CA certificate first in the file: the credential must still put the leaf first in x5c."""
    material = cert_material()
    return cert_pem(material.ca_cert) + cert_pem(material.leaf_cert) + key_pem(material.leaf_key)


def chain_pfx() -> bytes:
    material = cert_material()
    return pkcs12_bytes(material.leaf_key, material.leaf_cert, [material.ca_cert], password=PASSWORD.encode())


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(lambda: {"certificate_data": chain_pem()}, id="pem"),
        pytest.param(lambda: {"certificate_data": chain_pfx(), "password": PASSWORD}, id="pkcs12"),
    ],
)
async def test_send_certificate_chain_puts_x5c_leaf_first(api: Api, entra: FakeEntra, source: Any) -> None:
    material = cert_material()
    credential = certificate_credential(api, TENANT, CLIENT_ID, send_certificate_chain=True, **source())

    await api.get_token(credential, VAULT)

    [fields] = entra.forms
    assertion = fields["client_assertion"]
    leaf, ca = cert_der(material.leaf_cert), cert_der(material.ca_cert)
    assert jwt.get_unverified_header(assertion) == {
        "typ": "JWT",
        "alg": "PS256",
        "x5t#S256": b64url(hashlib.sha256(leaf).digest()),
        "x5c": [base64.b64encode(leaf).decode("ascii"), base64.b64encode(ca).decode("ascii")],
    }
    public_key = material.leaf_cert.public_key()
    assert assertion_claims(assertion, public_key, algorithm="PS256", audience=token_url()) == (
        expected_claims(token_url())
    )


async def test_without_send_certificate_chain_there_is_no_x5c(api: Api, entra: FakeEntra) -> None:
    credential = certificate_credential(api, TENANT, CLIENT_ID, certificate_data=chain_pem())

    await api.get_token(credential, VAULT)

    [fields] = entra.forms
    assert "x5c" not in jwt.get_unverified_header(fields["client_assertion"])


# --- secrets stay secret --------------------------------------------------------------------------


async def test_repr_shows_no_password_or_key(api: Api) -> None:
    credential = certificate_credential(api, TENANT, CLIENT_ID, certificate_data=pfx(), password=PASSWORD)

    assert repr(credential) == (
        f"CertificateCredential(tenant_id='{TENANT}', client_id='{CLIENT_ID}', "
        "authority='https://login.microsoftonline.com')"
    )
    assert_no_secret(repr(credential))


async def test_authentication_failure_carries_no_password_or_key(api: Api, entra: FakeEntra) -> None:
    entra.reply(invalid_client())
    credential = certificate_credential(
        api, TENANT, CLIENT_ID, certificate_data=encrypted_pem(), password=PASSWORD
    )

    with pytest.raises(ClientAuthenticationError) as caught:
        await api.get_token(credential, VAULT)

    assert caught.value.message.startswith("CertificateCredential: authentication failed. Microsoft Entra ID")
    assert "AADSTS7000215" in caught.value.message
    assert_exception_clean(caught.value)
    assert len(entra.requests) == 1
