"""protocol.client_auth: the client authentication strategies and what they add to a request."""

from __future__ import annotations

import jwt
import pytest

from protocol.client_auth import (
    CLIENT_ASSERTION_TYPE,
    PUBLIC_CLIENT,
    AssertionCallable,
    CertificateAssertion,
    ClientSecret,
    PublicClient,
)
from protocol.errors import ClientAssertionError, ProtocolError

from .helpers import (
    ASSERTION_CANARY,
    CLIENT_ID,
    NOW,
    PUBLIC_TOKEN_URL,
    SECRET_CANARY,
    CertMaterial,
    assert_no_canary,
    client_certificate,
    decode_jwt,
)


def test_client_assertion_type() -> None:
    assert CLIENT_ASSERTION_TYPE == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def test_client_secret_fields_and_repr() -> None:
    secret = ClientSecret(SECRET_CANARY)
    assert secret.form_fields(client_id=CLIENT_ID, audience=PUBLIC_TOKEN_URL, now=NOW) == {
        "client_secret": SECRET_CANARY
    }
    assert repr(secret) == "ClientSecret()"
    assert_no_canary(repr(secret), str(secret))


def test_empty_client_secret_is_rejected() -> None:
    with pytest.raises(ValueError, match="client secret is empty"):
        ClientSecret("")


@pytest.mark.parametrize(("algorithm", "thumb"), [("PS256", "x5t#S256"), ("RS256", "x5t")])
def test_certificate_assertion_fields(certs: CertMaterial, algorithm: str, thumb: str) -> None:
    certificate = client_certificate()
    strategy = CertificateAssertion(certificate, algorithm=algorithm)  # type: ignore[arg-type]
    fields = strategy.form_fields(client_id=CLIENT_ID, audience="https://aud.example/token", now=NOW)
    assertion = fields.pop("client_assertion")
    assert fields == {"client_assertion_type": CLIENT_ASSERTION_TYPE}
    claims = decode_jwt(
        assertion,
        certs.key.public_key(),
        algorithm=algorithm,
        audience="https://aud.example/token",
        check_times=False,
    )
    header = jwt.get_unverified_header(assertion)
    assert (claims["iss"], claims["sub"], claims["iat"], claims["exp"], header["alg"], thumb in header) == (
        CLIENT_ID,
        CLIENT_ID,
        int(NOW),
        int(NOW) + 600,
        algorithm,
        True,
    )
    assert "x5c" not in header


def test_certificate_assertion_options(certs: CertMaterial) -> None:
    strategy = CertificateAssertion(client_certificate(), send_chain=True, lifetime=60)
    assertion = strategy.form_fields(client_id=CLIENT_ID, audience="a", now=NOW)["client_assertion"]
    claims = jwt.decode(assertion, options={"verify_signature": False})
    assert (claims["exp"] - claims["iat"], len(jwt.get_unverified_header(assertion)["x5c"])) == (60, 1)


def test_certificate_assertion_is_fresh_every_time() -> None:
    strategy = CertificateAssertion(client_certificate())
    first = strategy.form_fields(client_id=CLIENT_ID, audience="a", now=NOW)["client_assertion"]
    second = strategy.form_fields(client_id=CLIENT_ID, audience="a", now=NOW)["client_assertion"]
    assert first != second


def test_certificate_assertion_repr_hides_the_key() -> None:
    text = repr(CertificateAssertion(client_certificate()))
    assert text == "CertificateAssertion(algorithm='PS256', send_chain=False, lifetime=600)"


def test_assertion_callable_is_called_for_every_request() -> None:
    calls: list[int] = []

    def provide() -> str:
        calls.append(1)
        return f"  {ASSERTION_CANARY}-{len(calls)}\n"

    strategy = AssertionCallable(provide)
    first = strategy.form_fields(client_id=CLIENT_ID, audience="a", now=NOW)
    second = strategy.form_fields(client_id=CLIENT_ID, audience="a", now=NOW)
    assert (first, second, len(calls)) == (
        {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": f"{ASSERTION_CANARY}-1"},
        {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": f"{ASSERTION_CANARY}-2"},
        2,
    )
    assert repr(strategy) == "AssertionCallable()"


@pytest.mark.parametrize(
    ("value", "type_name"), [("", "str"), ("   ", "str"), (None, "NoneType"), (b"jwt", "bytes")]
)
def test_assertion_callable_must_return_a_string(value: object, type_name: str) -> None:
    strategy = AssertionCallable(lambda: value)  # type: ignore[arg-type, return-value]
    with pytest.raises(ClientAssertionError, match="non-empty") as info:
        strategy.form_fields(client_id=CLIENT_ID, audience="a", now=NOW)
    assert isinstance(info.value, ProtocolError)
    assert f"it returned {type_name}." in str(info.value)


def test_assertion_callable_failure_is_wrapped_without_its_message() -> None:
    failure = OSError(f"cannot read token file containing {ASSERTION_CANARY}")

    def provide() -> str:
        raise failure

    with pytest.raises(ClientAssertionError, match="raised OSError") as info:
        AssertionCallable(provide).form_fields(client_id=CLIENT_ID, audience="a", now=NOW)
    assert info.value.__cause__ is failure
    assert_no_canary(str(info.value), repr(info.value))


def test_public_client_adds_nothing() -> None:
    assert PublicClient().form_fields(client_id=CLIENT_ID, audience="a", now=NOW) == {}
    assert isinstance(PUBLIC_CLIENT, PublicClient)
