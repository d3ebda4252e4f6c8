"""OnBehalfOfCredential (sync and ``identity.aio``): the OBO request, client credentials, per-user cache.

Every scenario runs twice through the ``api`` fixture against ``FakeEntra``. The user assertion is a
canary: it is sent in the form and nowhere else (no log record, exception or ``repr``).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from collections.abc import Iterator
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
    GRAPH,
    NOW,
    SECRET,
    TENANT,
    Api,
    FakeEntra,
    assert_exception_has_no_canary,
    decoded_form,
    error_chain,
    error_response,
    token_url,
)

USER_ASSERTION = "CANARY-USER-ASSERTION-eyJ0eXAi-a41f"
OTHER_USER_ASSERTION = "CANARY-USER-ASSERTION-eyJ0eXAi-77b0"
CERT_PASSWORD = "CANARY-OBO-CERT-PASSWORD-19d3"
CANARIES = (USER_ASSERTION, OTHER_USER_ASSERTION, CERT_PASSWORD)
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtaWRkbGUtdGllciJ9.c2ln"
ONE_CLIENT_CREDENTIAL = (
    'Exactly one of "client_secret", "client_certificate" or "client_assertion_func" must be provided '
    "for OnBehalfOfCredential."
)


def assert_no_obo_canary(*texts: str) -> None:
    leaks = [(canary, text) for text in texts for canary in CANARIES if canary in text]
    assert leaks == [], f"canaries leaked: {leaks}"


@pytest.fixture(autouse=True)
def _no_user_assertion_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    yield
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for phase in ("setup", "call"):
        for record in caplog.get_records(phase):  # type: ignore[arg-type]
            assert_no_obo_canary(formatter.format(record))


def obo_credential(api: Api, user_assertion: Any = USER_ASSERTION, **kwargs: Any) -> Any:
    """The sync or async OnBehalfOfCredential against ``FakeEntra``, on the test clock.

    Authenticates with the canary client secret unless another client credential is given.
    """
    if not {"client_certificate", "client_assertion_func"} & kwargs.keys():
        kwargs.setdefault("client_secret", SECRET)
    kwargs.setdefault("retry_policy", FAST_RETRY)
    kwargs.setdefault("transport", httpx.MockTransport(api.handler))
    module: Any = identity if api.mode == "sync" else identity.aio
    credential = module.OnBehalfOfCredential(TENANT, CLIENT_ID, user_assertion=user_assertion, **kwargs)
    credential._core.clock = api.clock  # no public clock parameter (see fakes.Api.credential)
    api.opened.append(credential)
    return credential


def obo_form(assertion: str = USER_ASSERTION, scope: str = GRAPH, **client: str) -> dict[str, str]:
    """The exact on-behalf-of form (client authentication given by ``client``)."""
    return {
        "client_id": CLIENT_ID,
        "grant_type": GRANT_TYPE,
        "assertion": assertion,
        "requested_token_use": "on_behalf_of",
        "scope": f"{scope} openid profile offline_access",
        "client_info": "1",
        **client,
    }


# --- the request ----------------------------------------------------------------------------------


async def test_client_secret_request_form(api: Api, entra: FakeEntra) -> None:
    token = await api.get_token(obo_credential(api), GRAPH)

    assert token == AccessToken("CANARY-AT-9b2c-1", int(NOW) + 3599)
    [request] = entra.requests
    assert (request.method, str(request.url)) == ("POST", token_url())
    assert decoded_form(request) == obo_form(client_secret=SECRET)


@pytest.mark.parametrize(
    "certificate",
    [
        pytest.param(
            lambda: {"client_certificate": key_pem(cert_material().key) + cert_pem(cert_material().cert)},
            id="pem",
        ),
        pytest.param(
            lambda: {
                "client_certificate": pkcs12_bytes(
                    cert_material().key, cert_material().cert, password=CERT_PASSWORD.encode()
                ),
                "password": CERT_PASSWORD,
            },
            id="pkcs12",
        ),
    ],
)
async def test_client_certificate_sends_a_signed_assertion(
    api: Api, entra: FakeEntra, certificate: Any
) -> None:
    token = await api.get_token(obo_credential(api, **certificate()), GRAPH)

    assert token.token == "CANARY-AT-9b2c-1"
    [request] = entra.requests
    fields = decoded_form(request)
    client_assertion = fields.pop("client_assertion")
    assert fields == obo_form(client_assertion_type=ASSERTION_TYPE)
    der = cert_der(cert_material().cert)
    digest = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    assert jwt.get_unverified_header(client_assertion) == {"typ": "JWT", "alg": "PS256", "x5t#S256": digest}
    claims = decode_jwt(
        client_assertion,
        cert_material().cert.public_key(),
        algorithm="PS256",
        audience=token_url(),
        check_times=False,
    )
    assert uuid.UUID(claims.pop("jti")).version == 4
    assert claims == {
        "aud": token_url(),
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "nbf": int(NOW),
        "iat": int(NOW),
        "exp": int(NOW) + 600,
    }


async def test_send_certificate_chain_adds_x5c(api: Api, entra: FakeEntra) -> None:
    material = cert_material()
    data = cert_pem(material.ca_cert) + cert_pem(material.leaf_cert) + key_pem(material.leaf_key)

    await api.get_token(obo_credential(api, client_certificate=data, send_certificate_chain=True), GRAPH)

    [fields] = entra.forms
    assert jwt.get_unverified_header(fields["client_assertion"])["x5c"] == [
        base64.b64encode(cert_der(material.leaf_cert)).decode(),
        base64.b64encode(cert_der(material.ca_cert)).decode(),
    ]


async def test_client_assertion_func_is_called_per_request(api: Api, entra: FakeEntra) -> None:
    calls: list[int] = []

    def func() -> str:
        calls.append(1)
        return CLIENT_JWT

    credential = obo_credential(api, client_assertion_func=func)

    first = await api.get_token(credential, GRAPH)
    second = await api.get_token(credential, GRAPH)

    assert first == second
    assert len(calls) == 1
    assert entra.forms == [
        obo_form(client_assertion_type=ASSERTION_TYPE, client_assertion=CLIENT_JWT),
    ]


# --- argument errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "client",
    [
        pytest.param({}, id="none"),
        pytest.param(
            {"client_secret": SECRET, "client_assertion_func": lambda: CLIENT_JWT}, id="secret+func"
        ),
        pytest.param(
            {"client_secret": SECRET, "client_certificate": key_pem(cert_material().key)},
            id="secret+certificate",
        ),
        pytest.param(
            {
                "client_secret": SECRET,
                "client_certificate": key_pem(cert_material().key),
                "client_assertion_func": lambda: CLIENT_JWT,
            },
            id="all-three",
        ),
    ],
)
async def test_not_exactly_one_client_credential_is_a_value_error(
    api: Api, entra: FakeEntra, client: dict[str, Any]
) -> None:
    module: Any = identity if api.mode == "sync" else identity.aio

    with pytest.raises(ValueError) as caught:
        module.OnBehalfOfCredential(TENANT, CLIENT_ID, user_assertion=USER_ASSERTION, **client)

    assert str(caught.value) == ONE_CLIENT_CREDENTIAL
    assert entra.requests == []


@pytest.mark.parametrize("user_assertion", ["", None], ids=["empty", "none"])
async def test_missing_user_assertion_is_a_type_error(
    api: Api, entra: FakeEntra, user_assertion: str | None
) -> None:
    with pytest.raises(TypeError) as caught:
        obo_credential(api, user_assertion=user_assertion)

    assert str(caught.value) == (
        '"user_assertion" must be the access token the middle tier received (a non-empty string)'
    )
    assert entra.requests == []


async def test_non_callable_client_assertion_func_is_a_value_error(api: Api) -> None:
    with pytest.raises(ValueError) as caught:
        obo_credential(api, client_assertion_func=CLIENT_JWT)

    assert str(caught.value) == "client_assertion_func should be a callable that returns a client assertion"


async def test_unusable_certificate_is_a_value_error(api: Api) -> None:
    data = pkcs12_bytes(cert_material().key, cert_material().cert, password=CERT_PASSWORD.encode())

    with pytest.raises(ValueError) as caught:
        obo_credential(api, client_certificate=data, password="wrong-password")

    assert str(caught.value) == (
        "Could not load the certificate: it is neither PEM nor PKCS#12, or the password is wrong."
    )
    for link in error_chain(caught.value):
        assert_no_obo_canary(str(link), repr(link))


async def test_empty_client_certificate_message_names_the_obo_argument(api: Api) -> None:
    with pytest.raises(ValueError) as caught:
        obo_credential(api, client_certificate=b"")

    assert "client_certificate" in str(caught.value)
    assert "CertificateCredential" not in str(caught.value)


# --- the cache is per user assertion --------------------------------------------------------------


async def test_same_assertion_in_one_credential_is_one_request(api: Api, entra: FakeEntra) -> None:
    credential = obo_credential(api)

    first = await api.get_token(credential, GRAPH)
    second = await api.get_token(credential, GRAPH)
    info = await api.get_token_info(credential, GRAPH)

    assert first == second == AccessToken(info.token, info.expires_on)
    assert entra.forms == [obo_form(client_secret=SECRET)]


async def test_credentials_for_different_users_never_share_a_token(api: Api, entra: FakeEntra) -> None:
    alice = obo_credential(api, USER_ASSERTION)
    bob = obo_credential(api, OTHER_USER_ASSERTION)

    alice_token = await api.get_token(alice, GRAPH)
    bob_token = await api.get_token(bob, GRAPH)
    alice_again = await api.get_token(alice, GRAPH)
    bob_again = await api.get_token(bob, GRAPH)

    assert (alice_token.token, bob_token.token) == ("CANARY-AT-9b2c-1", "CANARY-AT-9b2c-2")
    assert (alice_again, bob_again) == (alice_token, bob_token)
    assert entra.forms == [
        obo_form(USER_ASSERTION, client_secret=SECRET),
        obo_form(OTHER_USER_ASSERTION, client_secret=SECRET),
    ]


async def test_credentials_for_different_users_sharing_an_http_client_never_share_a_token(
    api: Api, entra: FakeEntra
) -> None:
    client = api.http_client(httpx.MockTransport(api.handler))
    alice = obo_credential(api, USER_ASSERTION, http_client=client)
    bob = obo_credential(api, OTHER_USER_ASSERTION, http_client=client)

    tokens = [(await api.get_token(c, GRAPH)).token for c in (alice, bob, alice, bob)]

    assert tokens == ["CANARY-AT-9b2c-1", "CANARY-AT-9b2c-2", "CANARY-AT-9b2c-1", "CANARY-AT-9b2c-2"]
    assert [f["assertion"] for f in entra.forms] == [USER_ASSERTION, OTHER_USER_ASSERTION]
    if api.mode == "sync":
        client.close()
    else:
        await client.aclose()


# --- the user assertion stays secret --------------------------------------------------------------


def echo_page(request: httpx.Request) -> httpx.Response:
    """A misbehaving proxy that reflects the request body (with the user assertion) in its page."""
    page = f"<html><body>Bad request: {request.content.decode()}</body></html>"
    return httpx.Response(400, text=page, headers={"content-type": "text/html"})


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(
            lambda: error_response(400, "invalid_grant", 50013, "Assertion failed signature validation."),
            id="invalid_grant",
        ),
        pytest.param(lambda: echo_page, id="echoing-proxy"),
    ],
)
async def test_user_assertion_never_appears_in_errors_or_repr(api: Api, entra: FakeEntra, reply: Any) -> None:
    entra.reply(reply())
    credential = obo_credential(api)

    with pytest.raises(ClientAuthenticationError) as caught:
        await api.get_token(credential, GRAPH)

    assert caught.value.message.startswith("OnBehalfOfCredential: authentication failed.")
    for link in error_chain(caught.value):
        assert_no_obo_canary(str(link), repr(link), *(str(arg) for arg in link.args))
    assert_exception_has_no_canary(caught.value)
    assert repr(credential) == (
        f"OnBehalfOfCredential(tenant_id='{TENANT}', client_id='{CLIENT_ID}', "
        "authority='https://login.microsoftonline.com')"
    )
    assert len(entra.requests) == 1
