"""The mock Entra ID authority, driven through its handler with hand-built requests.

Every validation path asserts the exact HTTP status, OAuth ``error`` and AADSTS code, and that the
error body has Entra's shape. Time-dependent behaviour (device codes, assertion lifetimes, code
expiry) runs on an injected clock.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
import respx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding

from conformance.authority import (
    DEFAULT_CLIENT_ID,
    DEFAULT_DOMAIN,
    DEFAULT_PASSWORD,
    DEFAULT_SECRET,
    DEFAULT_TENANT,
    DEFAULT_USERNAME,
    PUBLIC_CLIENT_ID,
    ClientCertificate,
    DroppedConnection,
    Fault,
    MockAuthority,
    generate_client_certificate,
)
from conformance.transport import mock_transport, route_to

ORIGIN = "https://login.microsoftonline.com"
TOKEN_PATH = f"/{DEFAULT_TENANT}/oauth2/v2.0/token"
TOKEN_URL = ORIGIN + TOKEN_PATH
SCOPE = "https://vault.azure.net/.default"
CERT_CLIENT_ID = "5e0c9a7b-3d2f-4c1e-8b6a-0f9e8d7c6b5a"
OTHER_TENANT = "11111111-2222-4333-8444-555555555555"
CLIENT_CREDENTIALS = {
    "grant_type": "client_credentials",
    "client_id": DEFAULT_CLIENT_ID,
    "client_secret": DEFAULT_SECRET,
    "scope": SCOPE,
}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
OBO_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DESCRIPTION = re.compile(
    r"^AADSTS(\d+): (.+)\r\nTrace ID: ([0-9a-f-]{36})\r\nCorrelation ID: (\S+)\r\n"
    r"Timestamp: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ)$",
    re.DOTALL,
)


class FakeClock:
    """A settable clock for the authority."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def authority(clock: FakeClock) -> MockAuthority:
    return MockAuthority.with_defaults(clock=clock)


@pytest.fixture
def client(authority: MockAuthority) -> Iterator[httpx.Client]:
    with httpx.Client(transport=authority.transport(), base_url=ORIGIN) as http:
        yield http


@pytest.fixture(scope="module")
def certificate() -> ClientCertificate:
    return generate_client_certificate("cert-client")


@pytest.fixture(scope="module")
def other_certificate() -> ClientCertificate:
    return generate_client_certificate("someone-else")


@pytest.fixture
def cert_app(authority: MockAuthority, certificate: ClientCertificate) -> str:
    authority.add_application(DEFAULT_TENANT, CERT_CLIENT_ID, certificate=certificate.certificate_pem)
    return CERT_CLIENT_ID


# --------------------------------------------------------------------------- helpers


def post_token(
    client: httpx.Client, form: dict[str, str], *, path: str = TOKEN_PATH, **kw: Any
) -> httpx.Response:
    return client.post(path, data=form, **kw)


def assert_error(response: httpx.Response, status: int, error: str, code: int) -> dict[str, Any]:
    """Exact status, ``error`` and AADSTS code, and the whole Entra error shape."""
    body: dict[str, Any] = response.json()
    assert (response.status_code, body["error"], body["error_codes"]) == (status, error, [code]), body
    match = DESCRIPTION.match(body["error_description"])
    assert match, body["error_description"]
    assert int(match.group(1)) == code
    assert match.group(3) == body["trace_id"]
    assert match.group(4) == body["correlation_id"]
    assert match.group(5) == body["timestamp"]
    assert (
        body["error_uri"]
        == f"{response.request.url.scheme}://{response.request.url.netloc.decode()}/error?code={code}"
    )
    assert response.headers["content-type"].startswith("application/json")
    return body


def b64url(data: bytes, *, pad: bool = False) -> str:
    text = base64.urlsafe_b64encode(data).decode()
    return text if pad else text.rstrip("=")


def cert_der(cert: ClientCertificate) -> bytes:
    return x509.load_pem_x509_certificate(cert.certificate_pem).public_bytes(Encoding.DER)


def thumbprints(cert: ClientCertificate) -> tuple[str, str]:
    """``(x5t, x5t#S256)`` of a certificate, unpadded."""
    der = cert_der(cert)
    return b64url(hashlib.sha1(der).digest()), b64url(hashlib.sha256(der).digest())


def cert_der_b64(cert: ClientCertificate) -> str:
    return base64.b64encode(cert_der(cert)).decode()


def make_assertion(
    cert: ClientCertificate,
    now: float,
    *,
    alg: str = "PS256",
    client_id: str = CERT_CLIENT_ID,
    aud: Any = TOKEN_URL,
    header: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    signer: ClientCertificate | None = None,
    thumbprint: bool = True,
    **claims: Any,
) -> str:
    sha1, sha256 = thumbprints(cert)
    headers: dict[str, Any] = {"x5t#S256": sha256} if alg == "PS256" else {"x5t": sha1}
    if not thumbprint:
        headers.clear()
    headers.update(header or {})
    payload: dict[str, Any] = {
        "aud": aud,
        "iss": client_id,
        "sub": client_id,
        "jti": str(uuid.uuid4()),
        "nbf": int(now),
        "exp": int(now) + 600,
    }
    payload.update(claims)
    for name in drop:
        payload.pop(name, None)
    key = (signer or cert).private_key
    return jwt.encode(payload, key, algorithm=alg, headers=headers)


def padded_jws(cert: ClientCertificate, now: float) -> str:
    """An assertion the way azure-identity's AadClient builds it: every segment padded (§8.2)."""
    _, sha256 = thumbprints(cert)
    header = b64url(json.dumps({"typ": "JWT", "alg": "PS256", "x5t#S256": sha256 + "="}).encode(), pad=True)
    claims = {
        "jti": str(uuid.uuid4()),
        "aud": TOKEN_URL,
        "iss": CERT_CLIENT_ID,
        "sub": CERT_CLIENT_ID,
        "nbf": int(now),
        "exp": int(now) + 1800,
    }
    payload = b64url(json.dumps(claims).encode(), pad=True)
    signing_input = f"{header}.{payload}".encode()
    signature = cert.private_key.sign(
        signing_input,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )
    return f"{header}.{payload}.{b64url(signature, pad=True)}"


def assertion_form(assertion: str, client_id: str = CERT_CLIENT_ID) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "scope": SCOPE,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }


def pkce_pair() -> tuple[str, str]:
    verifier = "v" * 20 + uuid.uuid4().hex
    challenge = b64url(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge


def verify_id_token(client: httpx.Client, id_token: str, audience: str) -> dict[str, Any]:
    """Check an id token's signature against the authority's JWKS endpoint."""
    keys = client.get(f"/{DEFAULT_TENANT}/discovery/v2.0/keys").json()["keys"]
    kid = jwt.get_unverified_header(id_token)["kid"]
    jwk = next(key for key in keys if key["kid"] == kid)
    key = jwt.PyJWK(jwk).key
    return jwt.decode(id_token, key, algorithms=["RS256"], audience=audience)


# --------------------------------------------------------------------------- defaults and registry


def test_defaults_are_guids_and_a_recognisable_secret() -> None:
    for value in (DEFAULT_TENANT, DEFAULT_CLIENT_ID, PUBLIC_CLIENT_ID):
        assert str(uuid.UUID(value)) == value
    assert "CANARY" in DEFAULT_SECRET
    assert "CANARY" in DEFAULT_PASSWORD
    assert DEFAULT_USERNAME.endswith("@" + DEFAULT_DOMAIN)


def test_registry_refuses_inconsistent_seeding(authority: MockAuthority) -> None:
    with pytest.raises(KeyError):
        authority.add_application(OTHER_TENANT, "x")
    with pytest.raises(ValueError, match="public client"):
        authority.add_application(DEFAULT_TENANT, "y", public_client=True, secret="s")
    with pytest.raises(KeyError):
        authority.add_user(OTHER_TENANT, "a@b.c", "pw")
    assert authority.describe_token("mock-at-unknown") is None


def test_add_user_returns_object_id(authority: MockAuthority) -> None:
    oid = authority.add_user(DEFAULT_TENANT, "second@contoso.onmicrosoft.com", "pw")
    assert str(uuid.UUID(oid)) == oid
    assert (
        authority.add_user(DEFAULT_TENANT, "third@contoso.onmicrosoft.com", "pw", object_id="fixed")
        == "fixed"
    )


def test_signing_key_and_jwks_agree(authority: MockAuthority) -> None:
    numbers = authority.signing_key.public_key().public_numbers()
    key = authority.jwks["keys"][0]
    assert key["kty"] == "RSA"
    assert int.from_bytes(base64.urlsafe_b64decode(key["n"] + "=="), "big") == numbers.n


# --------------------------------------------------------------------------- discovery


def test_openid_configuration_for_a_tenant_guid(client: httpx.Client) -> None:
    response = client.get(f"/{DEFAULT_TENANT}/v2.0/.well-known/openid-configuration")
    assert response.status_code == 200
    meta = response.json()
    base = f"{ORIGIN}/{DEFAULT_TENANT}"
    assert meta["issuer"] == f"{base}/v2.0"
    assert meta["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert meta["authorization_endpoint"] == f"{base}/oauth2/v2.0/authorize"
    assert meta["device_authorization_endpoint"] == f"{base}/oauth2/v2.0/devicecode"
    assert meta["jwks_uri"] == f"{base}/discovery/v2.0/keys"
    assert "code" in meta["response_types_supported"]
    assert meta["subject_types_supported"] == ["pairwise"]
    assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "openid" in meta["scopes_supported"]
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]


def test_openid_configuration_names_a_domain_tenant_by_its_guid(client: httpx.Client) -> None:
    meta = client.get(f"/{DEFAULT_DOMAIN.upper()}/v2.0/.well-known/openid-configuration").json()
    assert meta["token_endpoint"] == f"{ORIGIN}/{DEFAULT_TENANT}/oauth2/v2.0/token"
    assert meta["issuer"] == f"{ORIGIN}/{DEFAULT_TENANT}/v2.0"


@pytest.mark.parametrize("alias", ["common", "organizations", "consumers"])
def test_openid_configuration_for_multi_tenant_aliases(client: httpx.Client, alias: str) -> None:
    meta = client.get(f"/{alias}/v2.0/.well-known/openid-configuration").json()
    assert meta["token_endpoint"] == f"{ORIGIN}/{alias}/oauth2/v2.0/token"
    assert meta["issuer"] == f"{ORIGIN}/{{tenantid}}/v2.0"


def test_openid_configuration_of_an_unknown_tenant(client: httpx.Client) -> None:
    response = client.get(f"/{OTHER_TENANT}/v2.0/.well-known/openid-configuration")
    body = assert_error(response, 400, "invalid_tenant", 90002)
    assert OTHER_TENANT in body["error_description"]


def test_metadata_follows_the_request_origin(authority: MockAuthority) -> None:
    with httpx.Client(transport=authority.transport(), base_url="https://127.0.0.1:8443") as http:
        meta = http.get(f"/{DEFAULT_TENANT}/v2.0/.well-known/openid-configuration").json()
    assert meta["token_endpoint"] == f"https://127.0.0.1:8443/{DEFAULT_TENANT}/oauth2/v2.0/token"
    assert meta["issuer"] == f"https://127.0.0.1:8443/{DEFAULT_TENANT}/v2.0"


def test_adfs_metadata_needs_an_adfs_tenant(authority: MockAuthority, client: httpx.Client) -> None:
    assert_error(client.get("/adfs/.well-known/openid-configuration"), 400, "invalid_tenant", 90002)
    authority.add_tenant("adfs")
    meta = client.get("/adfs/.well-known/openid-configuration").json()
    assert meta["issuer"] == f"{ORIGIN}/adfs"
    assert meta["token_endpoint"] == f"{ORIGIN}/adfs/oauth2/token"
    assert meta["authorization_endpoint"] == f"{ORIGIN}/adfs/oauth2/authorize"
    assert meta["device_authorization_endpoint"] == f"{ORIGIN}/adfs/oauth2/devicecode"
    assert client.get("/adfs/discovery/keys").json()["keys"]
    # ADFS has no v2.0 path
    assert client.get("/adfs/v2.0/.well-known/openid-configuration").status_code == 404


def test_metadata_refuses_post(client: httpx.Client) -> None:
    response = client.post(f"/{DEFAULT_TENANT}/v2.0/.well-known/openid-configuration")
    assert_error(response, 400, "invalid_request", 900561)


@pytest.mark.parametrize("api_version", ["1.1", "1.0"])
def test_instance_discovery(client: httpx.Client, api_version: str) -> None:
    response = client.get(
        "/common/discovery/instance",
        params={
            "api-version": api_version,
            "authorization_endpoint": f"{ORIGIN}/{DEFAULT_TENANT}/oauth2/v2.0/authorize",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["api-version"] == api_version
    assert body["tenant_discovery_endpoint"] == (
        f"{ORIGIN}/{DEFAULT_TENANT}/v2.0/.well-known/openid-configuration"
    )
    public = next(m for m in body["metadata"] if m["preferred_network"] == "login.microsoftonline.com")
    assert public["preferred_cache"] == "login.windows.net"
    assert set(public["aliases"]) >= {"login.microsoftonline.com", "login.windows.net", "sts.windows.net"}


def test_instance_discovery_rejects_an_untrusted_host(authority: MockAuthority, client: httpx.Client) -> None:
    params = {"api-version": "1.1", "authorization_endpoint": "https://evil.example/common/oauth2/authorize"}
    body = assert_error(
        client.get("/common/discovery/instance", params=params), 400, "invalid_instance", 50049
    )
    assert body["error_description"].startswith("AADSTS50049: Unknown or invalid instance.")
    authority.trusted_hosts.add("evil.example")
    body = client.get("/common/discovery/instance", params=params).json()
    assert (
        body["tenant_discovery_endpoint"]
        == "https://evil.example/common/v2.0/.well-known/openid-configuration"
    )
    assert {
        "preferred_network": "evil.example",
        "preferred_cache": "evil.example",
        "aliases": ["evil.example"],
    } in body["metadata"]


def test_instance_discovery_trusts_its_own_host(authority: MockAuthority) -> None:
    with httpx.Client(transport=authority.transport(), base_url="https://127.0.0.1:9443") as http:
        body = http.get(
            "/common/discovery/instance",
            params={
                "api-version": "1.0",
                "authorization_endpoint": f"https://127.0.0.1:9443/{DEFAULT_TENANT}/oauth2/v2.0/authorize",
            },
        ).json()
    assert body["tenant_discovery_endpoint"] == (
        f"https://127.0.0.1:9443/{DEFAULT_TENANT}/v2.0/.well-known/openid-configuration"
    )


def test_instance_discovery_refuses_http_and_missing_parameters(client: httpx.Client) -> None:
    params = {
        "api-version": "1.1",
        "authorization_endpoint": "http://login.microsoftonline.com/common/oauth2/authorize",
    }
    assert_error(client.get("/common/discovery/instance", params=params), 400, "invalid_instance", 50049)
    assert_error(
        client.get("/common/discovery/instance", params={"api-version": "1.1"}), 400, "invalid_request", 90014
    )
    params = {"authorization_endpoint": f"{ORIGIN}/common/oauth2/authorize"}
    assert_error(client.get("/common/discovery/instance", params=params), 400, "invalid_request", 90014)


def test_jwks_endpoint(authority: MockAuthority, client: httpx.Client) -> None:
    assert client.get(f"/{DEFAULT_TENANT}/discovery/v2.0/keys").json() == authority.jwks
    assert client.get("/common/discovery/v2.0/keys").json() == authority.jwks
    assert_error(client.get(f"/{OTHER_TENANT}/discovery/v2.0/keys"), 400, "invalid_tenant", 90002)


def test_user_realm(client: httpx.Client) -> None:
    known = client.get(f"/common/userrealm/{DEFAULT_USERNAME}", params={"api-version": "1.0"}).json()
    assert known["account_type"] == "Managed"
    assert known["domain_name"] == DEFAULT_DOMAIN
    unknown = client.get("/common/userrealm/someone@fabrikam.example", params={"api-version": "1.0"}).json()
    assert unknown["account_type"] == "Unknown"


# --------------------------------------------------------------------------- token endpoint basics


def test_missing_grant_type(client: httpx.Client) -> None:
    body = assert_error(post_token(client, {"client_id": DEFAULT_CLIENT_ID}), 400, "invalid_request", 900144)
    assert "The request body must contain the following parameter: 'grant_type'." in body["error_description"]


def test_unsupported_grant_type(client: httpx.Client) -> None:
    response = post_token(client, {"grant_type": "magic", "client_id": DEFAULT_CLIENT_ID})
    assert_error(response, 400, "unsupported_grant_type", 70003)


def test_missing_client_id(client: httpx.Client) -> None:
    body = assert_error(
        post_token(client, {"grant_type": "client_credentials"}), 400, "invalid_request", 900144
    )
    assert "'client_id'" in body["error_description"]


def test_unknown_client(client: httpx.Client) -> None:
    response = post_token(client, {**CLIENT_CREDENTIALS, "client_id": str(uuid.uuid4())})
    assert_error(response, 400, "unauthorized_client", 700016)


def test_unknown_tenant_on_the_token_endpoint(client: httpx.Client) -> None:
    response = post_token(client, CLIENT_CREDENTIALS, path=f"/{OTHER_TENANT}/oauth2/v2.0/token")
    assert_error(response, 400, "invalid_request", 90002)


def test_app_of_another_tenant_is_unknown_here(authority: MockAuthority, client: httpx.Client) -> None:
    authority.add_tenant(OTHER_TENANT)
    response = post_token(client, CLIENT_CREDENTIALS, path=f"/{OTHER_TENANT}/oauth2/v2.0/token")
    assert_error(response, 400, "unauthorized_client", 700016)


def test_token_endpoint_refuses_get(client: httpx.Client) -> None:
    assert_error(client.get(TOKEN_PATH), 400, "invalid_request", 900561)


def test_correlation_id_echoes_the_client_request_id(client: httpx.Client) -> None:
    bad = {**CLIENT_CREDENTIALS, "client_secret": "wrong"}
    body = assert_error(
        post_token(client, bad, headers={"client-request-id": "corr-1"}), 401, "invalid_client", 7000215
    )
    assert body["correlation_id"] == "corr-1"
    body = post_token(client, bad, headers={"x-ms-client-request-id": "corr-2"}).json()
    assert body["correlation_id"] == "corr-2"
    body = post_token(client, bad).json()
    assert str(uuid.UUID(body["correlation_id"])) == body["correlation_id"]


def test_error_timestamp_uses_the_injected_clock(clock: FakeClock, client: httpx.Client) -> None:
    clock.now = 1_700_000_000.0
    body = post_token(client, {"client_id": DEFAULT_CLIENT_ID}).json()
    assert body["timestamp"] == "2023-11-14 22:13:20Z"


def test_error_uri_follows_the_request_origin(authority: MockAuthority) -> None:
    with httpx.Client(transport=authority.transport(), base_url="https://127.0.0.1:4443") as http:
        body = http.post(TOKEN_PATH, data={}).json()
    assert body["error_uri"] == "https://127.0.0.1:4443/error?code=900144"


# --------------------------------------------------------------------------- client credentials


def test_client_credentials_success(authority: MockAuthority, client: httpx.Client, clock: FakeClock) -> None:
    response = post_token(client, CLIENT_CREDENTIALS)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["ext_expires_in"] == 3600
    assert body["scope"] == SCOPE
    assert body["access_token"].startswith("mock-at-")
    assert not {"refresh_token", "id_token", "client_info", "refresh_in"} & body.keys()
    issued = authority.describe_token(body["access_token"])
    assert issued is not None
    assert (issued.tenant, issued.client_id, issued.scopes, issued.user, issued.cae, issued.claims) == (
        DEFAULT_TENANT,
        DEFAULT_CLIENT_ID,
        (SCOPE,),
        None,
        False,
        None,
    )
    assert issued.expires_on == int(clock.now) + 3600
    assert issued.grant_type == "client_credentials"


def test_access_tokens_are_unique(client: httpx.Client) -> None:
    tokens = {post_token(client, CLIENT_CREDENTIALS).json()["access_token"] for _ in range(5)}
    assert len(tokens) == 5


def test_lifetime_switches(clock: FakeClock) -> None:
    authority = MockAuthority.with_defaults(clock=clock, token_lifetime=7200, refresh_in=3600)
    authority.expires_in_as_string = True
    with httpx.Client(transport=authority.transport(), base_url=ORIGIN) as http:
        body = post_token(http, CLIENT_CREDENTIALS).json()
    assert (body["expires_in"], body["ext_expires_in"], body["refresh_in"]) == ("7200", "7200", 3600)


def test_client_secret_over_http_basic(client: httpx.Client) -> None:
    form = {"grant_type": "client_credentials", "scope": SCOPE}
    response = post_token(client, form, auth=(DEFAULT_CLIENT_ID, DEFAULT_SECRET))
    assert response.status_code == 200
    response = post_token(client, form, auth=(DEFAULT_CLIENT_ID, "wrong"))
    assert_error(response, 401, "invalid_client", 7000215)


def test_wrong_secret_is_401_and_never_echoed(client: httpx.Client) -> None:
    canary = "wrong-secret-CANARY-77"
    response = post_token(client, {**CLIENT_CREDENTIALS, "client_secret": canary})
    body = assert_error(response, 401, "invalid_client", 7000215)
    assert canary not in response.text
    assert DEFAULT_SECRET not in response.text
    assert DEFAULT_CLIENT_ID in body["error_description"]


def test_confidential_client_without_credential(client: httpx.Client) -> None:
    form = {k: v for k, v in CLIENT_CREDENTIALS.items() if k != "client_secret"}
    body = assert_error(post_token(client, form), 401, "invalid_client", 7000218)
    assert "'client_assertion' or 'client_secret'" in body["error_description"]


def test_secret_and_assertion_together(client: httpx.Client) -> None:
    form = {**CLIENT_CREDENTIALS, "client_assertion_type": ASSERTION_TYPE, "client_assertion": "x.y.z"}
    assert_error(post_token(client, form), 401, "invalid_client", 7000218)


def test_public_client_cannot_use_client_credentials(client: httpx.Client) -> None:
    form = {"grant_type": "client_credentials", "client_id": PUBLIC_CLIENT_ID, "scope": SCOPE}
    assert_error(post_token(client, form), 401, "invalid_client", 7000218)


def test_public_client_must_not_send_a_secret(client: httpx.Client) -> None:
    form = {
        "grant_type": "password",
        "client_id": PUBLIC_CLIENT_ID,
        "client_secret": "s3cret-CANARY",
        "username": DEFAULT_USERNAME,
        "password": DEFAULT_PASSWORD,
        "scope": "openid",
    }
    response = post_token(client, form)
    assert_error(response, 401, "invalid_client", 700025)
    assert "s3cret-CANARY" not in response.text


def test_client_credentials_scope_rules(client: httpx.Client) -> None:
    form = {k: v for k, v in CLIENT_CREDENTIALS.items() if k != "scope"}
    body = assert_error(post_token(client, form), 400, "invalid_request", 900144)
    assert "'scope'" in body["error_description"]
    for scope in (
        "https://vault.azure.net/user_impersonation",
        f"{SCOPE} https://storage.azure.com/.default",
    ):
        response = post_token(client, {**CLIENT_CREDENTIALS, "scope": scope})
        assert_error(response, 400, "invalid_scope", 1002012)


def test_client_credentials_through_a_domain_and_an_alias(
    client: httpx.Client, authority: MockAuthority
) -> None:
    for segment in (DEFAULT_DOMAIN, "organizations"):
        body = post_token(client, CLIENT_CREDENTIALS, path=f"/{segment}/oauth2/v2.0/token").json()
        issued = authority.describe_token(body["access_token"])
        assert issued is not None
        assert issued.tenant == DEFAULT_TENANT


@pytest.mark.parametrize(
    ("claims", "cae"),
    [
        ('{"access_token": {"xms_cc": {"values": ["cp1"]}}}', True),
        ('{"access_token": {"xms_cc": {"values": ["CP1"]}}}', True),
        ('{"access_token": {"nbf": {"essential": true, "value": "1"}}}', False),
        ('{"id_token": {"xms_cc": {"values": ["cp1"]}}}', False),
    ],
)
def test_cae_capability_is_recorded(
    client: httpx.Client, authority: MockAuthority, claims: str, cae: bool
) -> None:
    body = post_token(client, {**CLIENT_CREDENTIALS, "claims": claims}).json()
    issued = authority.describe_token(body["access_token"])
    assert issued is not None
    assert (issued.cae, issued.claims) == (cae, claims)


def test_malformed_claims_are_refused(client: httpx.Client) -> None:
    assert_error(
        post_token(client, {**CLIENT_CREDENTIALS, "claims": "{not json"}), 400, "invalid_request", 9002313
    )


def test_extra_fields_and_client_headers_are_tolerated(client: httpx.Client) -> None:
    headers = {
        "x-client-sku": "MSAL.Python",
        "x-client-ver": "1.39.0",
        "x-client-os": "linux",
        "x-ms-lib-capability": "retry-after, h429",
        "client-request-id": str(uuid.uuid4()),
        "x-client-current-telemetry": "4|730,0|",
    }
    response = post_token(client, {**CLIENT_CREDENTIALS, "client_info": "1"}, headers=headers)
    assert response.status_code == 200
    assert "client_info" not in response.json()  # app tokens have no user to describe


# --------------------------------------------------------------------------- certificate assertions


@pytest.mark.usefixtures("cert_app")
@pytest.mark.parametrize("alg", ["PS256", "RS256"])
def test_certificate_assertion_accepted(
    client: httpx.Client, certificate: ClientCertificate, clock: FakeClock, alg: str
) -> None:
    response = post_token(client, assertion_form(make_assertion(certificate, clock.now, alg=alg)))
    assert response.status_code == 200, response.text


@pytest.mark.usefixtures("cert_app")
def test_padded_thumbprints_and_padded_segments_are_accepted(
    client: httpx.Client, certificate: ClientCertificate, clock: FakeClock
) -> None:
    sha1, sha256 = thumbprints(certificate)
    rs = make_assertion(certificate, clock.now, alg="RS256", header={"x5t": sha1 + "="})
    assert post_token(client, assertion_form(rs)).status_code == 200
    ps = make_assertion(certificate, clock.now, header={"x5t#S256": sha256 + "="})
    assert post_token(client, assertion_form(ps)).status_code == 200
    assert post_token(client, assertion_form(padded_jws(certificate, clock.now))).status_code == 200


@pytest.mark.usefixtures("cert_app")
def test_x5c_must_start_with_the_registered_certificate(
    client: httpx.Client,
    certificate: ClientCertificate,
    other_certificate: ClientCertificate,
    clock: FakeClock,
) -> None:
    good = make_assertion(
        certificate, clock.now, header={"x5c": [cert_der_b64(certificate), cert_der_b64(other_certificate)]}
    )
    assert post_token(client, assertion_form(good)).status_code == 200
    bad = make_assertion(
        certificate, clock.now, header={"x5c": [cert_der_b64(other_certificate), cert_der_b64(certificate)]}
    )
    assert_error(post_token(client, assertion_form(bad)), 401, "invalid_client", 700027)


@pytest.mark.usefixtures("cert_app")
@pytest.mark.parametrize(
    "header",
    [{"x5t#S256": "AAAA"}, {"x5t": "AAAA"}],
    ids=["wrong-x5t#S256", "wrong-x5t-beside-good-x5t#S256"],
)
def test_thumbprint_must_name_the_registered_certificate(
    client: httpx.Client, certificate: ClientCertificate, clock: FakeClock, header: dict[str, Any]
) -> None:
    assertion = make_assertion(certificate, clock.now, header=header)
    body = assert_error(post_token(client, assertion_form(assertion)), 401, "invalid_client", 700027)
    assert "The key was not found" in body["error_description"]


@pytest.mark.usefixtures("cert_app")
def test_an_assertion_without_thumbprint(
    client: httpx.Client, certificate: ClientCertificate, clock: FakeClock
) -> None:
    assertion = make_assertion(certificate, clock.now, thumbprint=False)
    body = assert_error(post_token(client, assertion_form(assertion)), 401, "invalid_client", 700027)
    assert "'x5t'" in body["error_description"]


@pytest.mark.usefixtures("cert_app")
def test_signature_by_another_key(
    client: httpx.Client,
    certificate: ClientCertificate,
    other_certificate: ClientCertificate,
    clock: FakeClock,
) -> None:
    forged = make_assertion(certificate, clock.now, signer=other_certificate)
    body = assert_error(post_token(client, assertion_form(forged)), 401, "invalid_client", 700027)
    assert forged not in json.dumps(body)


@pytest.mark.usefixtures("cert_app")
def test_unsupported_signing_algorithm(
    client: httpx.Client, certificate: ClientCertificate, clock: FakeClock
) -> None:
    sha1, _ = thumbprints(certificate)
    hs = jwt.encode({"iss": CERT_CLIENT_ID}, "k" * 32, algorithm="HS256", headers={"x5t": sha1})
    assert_error(post_token(client, assertion_form(hs)), 401, "invalid_client", 700027)


@pytest.mark.usefixtures("cert_app")
def test_audience_must_be_the_token_endpoint(
    client: httpx.Client, certificate: ClientCertificate, clock: FakeClock
) -> None:
    wrong = make_assertion(certificate, clock.now, aud=f"{ORIGIN}/common/oauth2/v2.0/token")
    assert_error(post_token(client, assertion_form(wrong)), 401, "invalid_client", 50027)
    listed = make_assertion(certificate, clock.now, aud=["https://elsewhere.example", TOKEN_URL])
    assert post_token(client, assertion_form(listed)).status_code == 200
    # posted to the domain path, the audience must be that path
    domain_path = f"/{DEFAULT_DOMAIN}/oauth2/v2.0/token"
    assert_error(
        post_token(client, assertion_form(make_assertion(certificate, clock.now)), path=domain_path),
        401,
        "invalid_client",
        50027,
    )
    good = make_assertion(certificate, clock.now, aud=ORIGIN + domain_path)
    assert post_token(client, assertion_form(good), path=domain_path).status_code == 200


@pytest.mark.usefixtures("cert_app")
@pytest.mark.parametrize("claim", ["iss", "sub"])
def test_issuer_and_subject_must_be_the_client(
    client: httpx.Client, certificate: ClientCertificate, clock: FakeClock, claim: str
) -> None:
    overrides: dict[str, Any] = {claim: DEFAULT_CLIENT_ID}
    assertion = make_assertion(certificate, clock.now, **overrides)
    assert_error(post_token(client, assertion_form(assertion)), 401, "invalid_client", 700021)


@pytest.mark.usefixtures("cert_app")
def test_assertion_lifetime_with_five_minutes_of_skew(
    client: httpx.Client, certificate: ClientCertificate, clock: FakeClock
) -> None:
    now = clock.now
    within = make_assertion(certificate, now, exp=now - 290, nbf=now + 290)
    assert post_token(client, assertion_form(within)).status_code == 200
    expired = make_assertion(certificate, now, exp=now - 310)
    body = assert_error(post_token(client, assertion_form(expired)), 401, "invalid_client", 700024)
    assert "valid time range" in body["error_description"]
    early = make_assertion(certificate, now, nbf=now + 310)
    assert_error(post_token(client, assertion_form(early)), 401, "invalid_client", 700024)
    msal_style = make_assertion(certificate, now, drop=("nbf",), exp=now + 600.5, iat=now + 0.25)
    assert post_token(client, assertion_form(msal_style)).status_code == 200


@pytest.mark.usefixtures("cert_app")
@pytest.mark.parametrize("claim", ["exp", "jti"])
def test_required_claims(
    client: httpx.Client, certificate: ClientCertificate, clock: FakeClock, claim: str
) -> None:
    assertion = make_assertion(certificate, clock.now, drop=(claim,))
    assert_error(post_token(client, assertion_form(assertion)), 401, "invalid_client", 50027)


@pytest.mark.usefixtures("cert_app")
def test_replayed_jti(
    authority: MockAuthority, client: httpx.Client, certificate: ClientCertificate, clock: FakeClock
) -> None:
    assertion = make_assertion(certificate, clock.now)
    assert post_token(client, assertion_form(assertion)).status_code == 200
    assert post_token(client, assertion_form(assertion)).status_code == 200  # MSAL reuses assertions
    authority.reject_replayed_jti = True
    body = assert_error(post_token(client, assertion_form(assertion)), 401, "invalid_client", 50027)
    assert "jti" in body["error_description"]


@pytest.mark.usefixtures("cert_app")
def test_malformed_assertions(client: httpx.Client, certificate: ClientCertificate, clock: FakeClock) -> None:
    garbage = post_token(client, assertion_form("not-a-jwt-CANARY-assertion"))
    assert_error(garbage, 401, "invalid_client", 50027)
    assert "CANARY-assertion" not in garbage.text
    nan_expiry = make_assertion(certificate, clock.now, exp=float("nan"))
    assert_error(post_token(client, assertion_form(nan_expiry)), 401, "invalid_client", 50027)
    form = assertion_form(make_assertion(certificate, clock.now))
    assert_error(
        post_token(client, {**form, "client_assertion_type": "urn:other"}), 401, "invalid_client", 70002
    )
    no_type = {k: v for k, v in form.items() if k != "client_assertion_type"}
    body = assert_error(post_token(client, no_type), 400, "invalid_request", 900144)
    assert "'client_assertion_type'" in body["error_description"]


def test_assertion_for_an_app_without_certificate(
    client: httpx.Client, certificate: ClientCertificate, clock: FakeClock
) -> None:
    assertion = make_assertion(certificate, clock.now, client_id=DEFAULT_CLIENT_ID)
    form = assertion_form(assertion, client_id=DEFAULT_CLIENT_ID)
    assert_error(post_token(client, form), 401, "invalid_client", 700027)


# --------------------------------------------------------------------------- refresh tokens


def refresh_form(token: str, client_id: str = PUBLIC_CLIENT_ID, **extra: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": token, **extra}


def test_refresh_rotates_and_old_token_stays_valid(authority: MockAuthority, client: httpx.Client) -> None:
    rt = authority.issue_refresh_token(DEFAULT_TENANT, PUBLIC_CLIENT_ID, [SCOPE], username=DEFAULT_USERNAME)
    body = post_token(
        client, refresh_form(rt, scope=f"{SCOPE} openid offline_access", client_info="1")
    ).json()
    assert body["refresh_token"].startswith("mock-rt-")
    assert body["refresh_token"] != rt
    assert body["scope"] == f"{SCOPE} openid offline_access"
    assert {"id_token", "client_info"} <= body.keys()
    issued = authority.describe_token(body["access_token"])
    assert issued is not None
    assert (issued.user, issued.scopes, issued.grant_type) == (DEFAULT_USERNAME, (SCOPE,), "refresh_token")
    assert post_token(client, refresh_form(rt)).status_code == 200
    assert post_token(client, refresh_form(body["refresh_token"])).status_code == 200


def test_refresh_without_scope_keeps_the_original_scopes(
    authority: MockAuthority, client: httpx.Client
) -> None:
    rt = authority.issue_refresh_token(
        DEFAULT_TENANT, PUBLIC_CLIENT_ID, [SCOPE, "openid"], username=DEFAULT_USERNAME
    )
    body = post_token(client, refresh_form(rt)).json()
    assert body["scope"] == f"{SCOPE} openid"


def test_strict_rotation_invalidates_the_old_token(authority: MockAuthority, client: httpx.Client) -> None:
    authority.strict_rotation = True
    rt = authority.issue_refresh_token(DEFAULT_TENANT, PUBLIC_CLIENT_ID, [SCOPE], username=DEFAULT_USERNAME)
    new = post_token(client, refresh_form(rt)).json()["refresh_token"]
    assert_error(post_token(client, refresh_form(rt)), 400, "invalid_grant", 70000)
    assert post_token(client, refresh_form(new)).status_code == 200


def test_without_rotation_the_same_token_comes_back(authority: MockAuthority, client: httpx.Client) -> None:
    authority.rotate_refresh_tokens = False
    rt = authority.issue_refresh_token(DEFAULT_TENANT, PUBLIC_CLIENT_ID, [SCOPE], username=DEFAULT_USERNAME)
    assert post_token(client, refresh_form(rt)).json()["refresh_token"] == rt


def test_revoked_and_unknown_refresh_tokens(authority: MockAuthority, client: httpx.Client) -> None:
    rt = authority.issue_refresh_token(DEFAULT_TENANT, PUBLIC_CLIENT_ID, [SCOPE], username=DEFAULT_USERNAME)
    authority.revoke_refresh_token(rt)
    response = post_token(client, refresh_form(rt))
    assert_error(response, 400, "invalid_grant", 50173)
    assert rt not in response.text
    assert_error(post_token(client, refresh_form("mock-rt-never-issued")), 400, "invalid_grant", 70000)
    with pytest.raises(KeyError):
        authority.revoke_refresh_token("mock-rt-never-issued")


def test_refresh_token_of_another_client(authority: MockAuthority, client: httpx.Client) -> None:
    rt = authority.issue_refresh_token(DEFAULT_TENANT, DEFAULT_CLIENT_ID, [SCOPE], username=DEFAULT_USERNAME)
    assert_error(post_token(client, refresh_form(rt, PUBLIC_CLIENT_ID)), 400, "invalid_grant", 70000)


def test_confidential_refresh_needs_the_secret(authority: MockAuthority, client: httpx.Client) -> None:
    rt = authority.issue_refresh_token(DEFAULT_TENANT, DEFAULT_CLIENT_ID, [SCOPE], username=DEFAULT_USERNAME)
    assert_error(post_token(client, refresh_form(rt, DEFAULT_CLIENT_ID)), 401, "invalid_client", 7000218)
    ok = post_token(client, refresh_form(rt, DEFAULT_CLIENT_ID, client_secret=DEFAULT_SECRET))
    assert ok.status_code == 200


def test_app_only_refresh_token(authority: MockAuthority, client: httpx.Client) -> None:
    rt = authority.issue_refresh_token(DEFAULT_TENANT, PUBLIC_CLIENT_ID, [SCOPE])
    body = post_token(client, refresh_form(rt)).json()
    assert "id_token" not in body
    assert body["refresh_token"].startswith("mock-rt-")
    issued = authority.describe_token(body["access_token"])
    assert issued is not None
    assert issued.user is None


def test_missing_refresh_token(client: httpx.Client) -> None:
    body = assert_error(
        post_token(client, {"grant_type": "refresh_token", "client_id": PUBLIC_CLIENT_ID}),
        400,
        "invalid_request",
        900144,
    )
    assert "'refresh_token'" in body["error_description"]


# --------------------------------------------------------------------------- authorization code + PKCE


REDIRECT = "http://localhost:8400"


def code_form(code: str, verifier: str | None = None, **extra: str) -> dict[str, str]:
    form = {
        "grant_type": "authorization_code",
        "client_id": PUBLIC_CLIENT_ID,
        "code": code,
        "redirect_uri": REDIRECT,
        "scope": f"{SCOPE} openid profile offline_access",
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    form.update(extra)
    return form


def test_authorization_code_with_pkce(authority: MockAuthority, client: httpx.Client) -> None:
    verifier, challenge = pkce_pair()
    code = authority.issue_authorization_code(
        DEFAULT_TENANT,
        PUBLIC_CLIENT_ID,
        redirect_uri=REDIRECT,
        scopes=[SCOPE, "openid"],
        username=DEFAULT_USERNAME,
        code_challenge=challenge,
        nonce="nonce-123",
    )
    body = post_token(client, code_form(code, verifier, client_info="1")).json()
    assert {"access_token", "refresh_token", "id_token", "client_info"} <= body.keys()
    claims = verify_id_token(client, body["id_token"], PUBLIC_CLIENT_ID)
    assert claims["nonce"] == "nonce-123"
    info = json.loads(base64.urlsafe_b64decode(body["client_info"] + "=="))
    assert info == {"uid": claims["oid"], "utid": DEFAULT_TENANT}
    assert "=" not in body["client_info"]
    issued = authority.describe_token(body["access_token"])
    assert issued is not None
    assert (issued.user, issued.grant_type, issued.scopes) == (
        DEFAULT_USERNAME,
        "authorization_code",
        (SCOPE,),
    )


def test_plain_pkce(authority: MockAuthority, client: httpx.Client) -> None:
    code = authority.issue_authorization_code(
        DEFAULT_TENANT,
        PUBLIC_CLIENT_ID,
        redirect_uri=REDIRECT,
        scopes=[SCOPE],
        username=DEFAULT_USERNAME,
        code_challenge="plain-verifier-" + "x" * 30,
        code_challenge_method="plain",
    )
    assert post_token(client, code_form(code, "plain-verifier-" + "x" * 30)).status_code == 200


def test_pkce_mismatch_and_missing_verifier(authority: MockAuthority, client: httpx.Client) -> None:
    verifier, challenge = pkce_pair()
    code = authority.issue_authorization_code(
        DEFAULT_TENANT,
        PUBLIC_CLIENT_ID,
        redirect_uri=REDIRECT,
        scopes=[SCOPE],
        username=DEFAULT_USERNAME,
        code_challenge=challenge,
    )
    body = assert_error(
        post_token(client, code_form(code, "wrong-" + verifier)), 400, "invalid_grant", 501481
    )
    assert body["error_description"].startswith(
        "AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the authorization "
        "request."
    )
    body = assert_error(post_token(client, code_form(code)), 400, "invalid_request", 900144)
    assert "'code_verifier'" in body["error_description"]
    assert post_token(client, code_form(code, verifier)).status_code == 200  # a failed try did not burn it


def test_code_without_pkce_ignores_a_verifier(authority: MockAuthority, client: httpx.Client) -> None:
    code = authority.issue_authorization_code(
        DEFAULT_TENANT, PUBLIC_CLIENT_ID, redirect_uri=REDIRECT, scopes=[SCOPE], username=DEFAULT_USERNAME
    )
    assert post_token(client, code_form(code, "whatever")).status_code == 200


def test_redirect_uri_must_match(authority: MockAuthority, client: httpx.Client) -> None:
    code = authority.issue_authorization_code(
        DEFAULT_TENANT, PUBLIC_CLIENT_ID, redirect_uri=REDIRECT, scopes=[SCOPE], username=DEFAULT_USERNAME
    )
    assert_error(
        post_token(client, code_form(code, redirect_uri="http://localhost:8401")), 400, "invalid_grant", 50011
    )
    body = assert_error(
        post_token(client, {k: v for k, v in code_form(code).items() if k != "redirect_uri"}),
        400,
        "invalid_request",
        900144,
    )
    assert "'redirect_uri'" in body["error_description"]


def test_code_is_single_use(authority: MockAuthority, client: httpx.Client) -> None:
    code = authority.issue_authorization_code(
        DEFAULT_TENANT, PUBLIC_CLIENT_ID, redirect_uri=REDIRECT, scopes=[SCOPE], username=DEFAULT_USERNAME
    )
    assert post_token(client, code_form(code)).status_code == 200
    response = post_token(client, code_form(code))
    assert_error(response, 400, "invalid_grant", 54005)
    assert code not in response.text


def test_code_expires(authority: MockAuthority, client: httpx.Client, clock: FakeClock) -> None:
    code = authority.issue_authorization_code(
        DEFAULT_TENANT, PUBLIC_CLIENT_ID, redirect_uri=REDIRECT, scopes=[SCOPE], username=DEFAULT_USERNAME
    )
    clock.advance(authority.authorization_code_lifetime)
    assert_error(post_token(client, code_form(code)), 400, "invalid_grant", 70008)


def test_unknown_code_and_code_of_another_client(authority: MockAuthority, client: httpx.Client) -> None:
    assert_error(post_token(client, code_form("mock-ac-nope")), 400, "invalid_grant", 70000)
    code = authority.issue_authorization_code(
        DEFAULT_TENANT, DEFAULT_CLIENT_ID, redirect_uri=REDIRECT, scopes=[SCOPE], username=DEFAULT_USERNAME
    )
    assert_error(post_token(client, code_form(code)), 400, "invalid_grant", 70000)


def test_confidential_code_redemption_needs_the_secret(
    authority: MockAuthority, client: httpx.Client
) -> None:
    code = authority.issue_authorization_code(
        DEFAULT_TENANT, DEFAULT_CLIENT_ID, redirect_uri=REDIRECT, scopes=[SCOPE], username=DEFAULT_USERNAME
    )
    form = code_form(code, client_id=DEFAULT_CLIENT_ID)
    assert_error(post_token(client, form), 401, "invalid_client", 7000218)
    assert post_token(client, {**form, "client_secret": DEFAULT_SECRET}).status_code == 200


def test_registered_redirect_uris(authority: MockAuthority) -> None:
    authority.add_application(
        DEFAULT_TENANT,
        "a1b2c3d4-0000-4000-8000-000000000001",
        public_client=True,
        redirect_uris=["http://localhost", "https://app.example/callback"],
    )
    for uri in ("http://localhost:8400", "http://localhost", "https://app.example/callback"):
        assert authority.issue_authorization_code(
            DEFAULT_TENANT,
            "a1b2c3d4-0000-4000-8000-000000000001",
            redirect_uri=uri,
            scopes=[SCOPE],
            username=DEFAULT_USERNAME,
        )
    with pytest.raises(ValueError, match="not registered"):
        authority.issue_authorization_code(
            DEFAULT_TENANT,
            "a1b2c3d4-0000-4000-8000-000000000001",
            redirect_uri="https://app.example/other",
            scopes=[SCOPE],
            username=DEFAULT_USERNAME,
        )
    with pytest.raises(KeyError):
        authority.issue_authorization_code(
            DEFAULT_TENANT,
            PUBLIC_CLIENT_ID,
            redirect_uri=REDIRECT,
            scopes=[SCOPE],
            username="nobody@contoso.onmicrosoft.com",
        )


# --------------------------------------------------------------------------- id tokens


def test_id_token_claims_verify_with_the_jwks(
    authority: MockAuthority, client: httpx.Client, clock: FakeClock
) -> None:
    form = {
        "grant_type": "password",
        "client_id": PUBLIC_CLIENT_ID,
        "username": DEFAULT_USERNAME.upper(),
        "password": DEFAULT_PASSWORD,
        "scope": f"{SCOPE} openid profile offline_access",
    }
    body = post_token(client, form).json()
    claims = verify_id_token(client, body["id_token"], PUBLIC_CLIENT_ID)
    now = int(clock.now)
    assert claims["iss"] == f"{ORIGIN}/{DEFAULT_TENANT}/v2.0"
    assert claims["aud"] == PUBLIC_CLIENT_ID
    assert claims["tid"] == DEFAULT_TENANT
    assert claims["oid"] == "3a9d7c5e-2b4f-4e61-8c0a-6f1d9e3b5a27"
    assert claims["preferred_username"] == DEFAULT_USERNAME
    assert claims["name"] == "User"
    assert claims["ver"] == "2.0"
    assert (claims["iat"], claims["nbf"], claims["exp"]) == (now, now, now + 3600)
    assert claims["sub"]
    assert claims["sub"] != claims["oid"]
    assert "nonce" not in claims
    assert "client_info" not in body  # only when client_info=1 was sent


def test_subject_is_pairwise(authority: MockAuthority, client: httpx.Client) -> None:
    subjects = set()
    for client_id in (PUBLIC_CLIENT_ID, DEFAULT_CLIENT_ID):
        rt = authority.issue_refresh_token(DEFAULT_TENANT, client_id, [SCOPE], username=DEFAULT_USERNAME)
        body = post_token(
            client,
            refresh_form(rt, client_id, client_secret=DEFAULT_SECRET)
            if client_id == DEFAULT_CLIENT_ID
            else refresh_form(rt, client_id),
        ).json()
        subjects.add(jwt.decode(body["id_token"], options={"verify_signature": False})["sub"])
    assert len(subjects) == 2


# --------------------------------------------------------------------------- resource owner password


def test_password_grant(authority: MockAuthority, client: httpx.Client) -> None:
    form = {
        "grant_type": "password",
        "client_id": PUBLIC_CLIENT_ID,
        "username": DEFAULT_USERNAME,
        "password": DEFAULT_PASSWORD,
        "scope": SCOPE,
        "client_info": "1",
    }
    body = post_token(client, form, path="/organizations/oauth2/v2.0/token").json()
    issued = authority.describe_token(body["access_token"])
    assert issued is not None
    assert (issued.tenant, issued.user, issued.grant_type) == (DEFAULT_TENANT, DEFAULT_USERNAME, "password")
    assert "client_info" in body


def test_password_grant_failures_never_echo_the_password(client: httpx.Client) -> None:
    form = {
        "grant_type": "password",
        "client_id": PUBLIC_CLIENT_ID,
        "username": DEFAULT_USERNAME,
        "password": "bad-password-CANARY-31",
        "scope": SCOPE,
    }
    response = post_token(client, form)
    assert_error(response, 400, "invalid_grant", 50126)
    assert "bad-password-CANARY-31" not in response.text
    assert DEFAULT_PASSWORD not in response.text
    response = post_token(client, {**form, "username": "nobody@contoso.onmicrosoft.com"})
    assert_error(response, 400, "invalid_grant", 50034)
    for missing in ("username", "password", "scope"):
        partial = {k: v for k, v in form.items() if k != missing}
        body = assert_error(post_token(client, partial), 400, "invalid_request", 900144)
        assert f"'{missing}'" in body["error_description"]


# --------------------------------------------------------------------------- device code


def start_device_flow(
    client: httpx.Client, path: str = f"/{DEFAULT_TENANT}/oauth2/v2.0/devicecode"
) -> dict[str, Any]:
    response = client.post(
        path, data={"client_id": PUBLIC_CLIENT_ID, "scope": f"{SCOPE} openid offline_access"}
    )
    assert response.status_code == 200, response.text
    flow: dict[str, Any] = response.json()
    return flow


def poll(client: httpx.Client, device_code: str) -> httpx.Response:
    # MSAL sends the device code twice (``device_code`` and ``code``) plus client_info
    return post_token(
        client,
        {
            "grant_type": DEVICE_GRANT,
            "client_id": PUBLIC_CLIENT_ID,
            "device_code": device_code,
            "code": device_code,
            "client_info": "1",
        },
    )


def test_device_authorization_response(client: httpx.Client) -> None:
    flow = start_device_flow(client)
    assert flow["device_code"].startswith("mock-dc-")
    assert re.fullmatch(r"[A-Z0-9]{9}", flow["user_code"])
    assert flow["verification_uri"] == "https://microsoft.com/devicelogin"
    assert (flow["expires_in"], flow["interval"]) == (900, 5)
    assert flow["user_code"] in flow["message"]
    assert "verification_uri_complete" not in flow


def test_device_authorization_validation(client: httpx.Client) -> None:
    path = f"/{DEFAULT_TENANT}/oauth2/v2.0/devicecode"
    body = assert_error(
        client.post(path, data={"client_id": PUBLIC_CLIENT_ID}), 400, "invalid_request", 900144
    )
    assert "'scope'" in body["error_description"]
    assert_error(client.post(path, data={"scope": SCOPE}), 400, "invalid_request", 900144)
    assert_error(
        client.post(path, data={"client_id": str(uuid.uuid4()), "scope": SCOPE}),
        400,
        "unauthorized_client",
        700016,
    )
    assert_error(client.get(path), 400, "invalid_request", 900561)


def test_device_code_state_machine(authority: MockAuthority, client: httpx.Client, clock: FakeClock) -> None:
    flow = start_device_flow(client)
    assert_error(poll(client, flow["device_code"]), 400, "authorization_pending", 70016)
    clock.advance(1)
    body = assert_error(poll(client, flow["device_code"]), 400, "slow_down", 70000)
    assert "slow down" in body["error_description"]
    clock.advance(10)  # slow_down grew the interval to 10 s (RFC 8628 §3.5)
    assert_error(poll(client, flow["device_code"]), 400, "authorization_pending", 70016)
    clock.advance(5)
    assert poll(client, flow["device_code"]).json()["error"] == "slow_down"  # now 15 s
    clock.advance(14)  # within the one-second tolerance
    assert poll(client, flow["device_code"]).json()["error"] == "authorization_pending"
    authority.approve_device_code(flow["user_code"].lower(), DEFAULT_USERNAME)
    clock.advance(15)
    response = poll(client, flow["device_code"])
    assert response.status_code == 200
    body = response.json()
    assert {"refresh_token", "id_token", "client_info"} <= body.keys()
    issued = authority.describe_token(body["access_token"])
    assert issued is not None
    assert (issued.user, issued.grant_type) == (DEFAULT_USERNAME, DEVICE_GRANT)
    clock.advance(15)
    assert_error(poll(client, flow["device_code"]), 400, "invalid_grant", 70000)


def test_slow_down_can_be_switched_off(authority: MockAuthority, client: httpx.Client) -> None:
    authority.device_slow_down_enabled = False
    flow = start_device_flow(client)
    for _ in range(3):
        assert poll(client, flow["device_code"]).json()["error"] == "authorization_pending"


def test_device_code_declined(authority: MockAuthority, client: httpx.Client) -> None:
    flow = start_device_flow(client)
    authority.decline_device_code(flow["user_code"])
    assert_error(poll(client, flow["device_code"]), 400, "authorization_declined", 70000)


def test_device_code_expires_on_the_injected_clock(
    authority: MockAuthority, client: httpx.Client, clock: FakeClock
) -> None:
    flow = start_device_flow(client)
    authority.approve_device_code(flow["user_code"], DEFAULT_USERNAME)
    clock.advance(900)
    assert_error(poll(client, flow["device_code"]), 400, "expired_token", 70019)


def test_unknown_device_code(authority: MockAuthority, client: httpx.Client) -> None:
    assert_error(poll(client, "mock-dc-unknown"), 400, "bad_verification_code", 70000)
    body = assert_error(
        post_token(client, {"grant_type": DEVICE_GRANT, "client_id": PUBLIC_CLIENT_ID}),
        400,
        "invalid_request",
        900144,
    )
    assert "'device_code'" in body["error_description"]
    with pytest.raises(KeyError):
        authority.approve_device_code("NOPE", DEFAULT_USERNAME)
    with pytest.raises(KeyError):
        authority.decline_device_code("NOPE")


def test_device_code_through_organizations(authority: MockAuthority, client: httpx.Client) -> None:
    flow = start_device_flow(client, "/organizations/oauth2/v2.0/devicecode")
    with pytest.raises(KeyError):
        authority.approve_device_code(flow["user_code"], "nobody@contoso.onmicrosoft.com")
    authority.approve_device_code(flow["user_code"], DEFAULT_USERNAME)
    body = post_token(
        client,
        {"grant_type": DEVICE_GRANT, "client_id": PUBLIC_CLIENT_ID, "device_code": flow["device_code"]},
        path="/organizations/oauth2/v2.0/token",
    ).json()
    issued = authority.describe_token(body["access_token"])
    assert issued is not None
    assert issued.tenant == DEFAULT_TENANT


# --------------------------------------------------------------------------- on-behalf-of


def obo_form(assertion: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": OBO_GRANT,
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_SECRET,
        "assertion": assertion,
        "requested_token_use": "on_behalf_of",
        "scope": "https://graph.microsoft.com/.default offline_access",
        **extra,
    }


def test_on_behalf_of(authority: MockAuthority, client: httpx.Client) -> None:
    incoming = authority.issue_user_access_token(
        DEFAULT_TENANT, PUBLIC_CLIENT_ID, [f"api://{DEFAULT_CLIENT_ID}/access"], DEFAULT_USERNAME
    )
    seeded = authority.describe_token(incoming)
    assert seeded is not None
    assert (seeded.user, seeded.client_id) == (DEFAULT_USERNAME, PUBLIC_CLIENT_ID)
    body = post_token(client, obo_form(incoming, client_info="1")).json()
    assert {"access_token", "refresh_token", "id_token", "client_info"} <= body.keys()
    issued = authority.describe_token(body["access_token"])
    assert issued is not None
    assert (issued.user, issued.client_id, issued.scopes, issued.grant_type) == (
        DEFAULT_USERNAME,
        DEFAULT_CLIENT_ID,
        ("https://graph.microsoft.com/.default",),
        OBO_GRANT,
    )


def test_on_behalf_of_refusals(authority: MockAuthority, client: httpx.Client, clock: FakeClock) -> None:
    response = post_token(client, obo_form("user-assertion-CANARY"))
    assert_error(response, 400, "invalid_grant", 50013)
    assert "user-assertion-CANARY" not in response.text
    app_token = post_token(client, CLIENT_CREDENTIALS).json()["access_token"]
    assert_error(post_token(client, obo_form(app_token)), 400, "invalid_grant", 50013)
    incoming = authority.issue_user_access_token(DEFAULT_TENANT, PUBLIC_CLIENT_ID, [SCOPE], DEFAULT_USERNAME)
    assert_error(
        post_token(client, obo_form(incoming, requested_token_use="other")), 400, "invalid_request", 9002313
    )
    no_use = {k: v for k, v in obo_form(incoming).items() if k != "requested_token_use"}
    assert_error(post_token(client, no_use), 400, "invalid_request", 900144)
    public = {**obo_form(incoming), "client_id": PUBLIC_CLIENT_ID}
    del public["client_secret"]
    assert_error(post_token(client, public), 401, "invalid_client", 7000218)
    clock.advance(3600)
    assert_error(post_token(client, obo_form(incoming)), 400, "invalid_grant", 500133)


# --------------------------------------------------------------------------- ADFS


def test_adfs_tokens(authority: MockAuthority, client: httpx.Client) -> None:
    authority.add_tenant("adfs")
    authority.add_application("adfs", PUBLIC_CLIENT_ID, public_client=True)
    authority.add_user("adfs", "alice@corp.example", "pw")
    form = {
        "grant_type": "password",
        "client_id": PUBLIC_CLIENT_ID,
        "username": "alice@corp.example",
        "password": "pw",
        "scope": "openid",
        "client_info": "1",
    }
    body = post_token(client, form, path="/adfs/oauth2/token").json()
    assert "client_info" not in body  # ADFS issues none
    claims = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert claims["iss"] == f"{ORIGIN}/adfs"
    assert claims["upn"] == "alice@corp.example"
    flow = client.post("/adfs/oauth2/devicecode", data={"client_id": PUBLIC_CLIENT_ID, "scope": "openid"})
    assert flow.status_code == 200


# --------------------------------------------------------------------------- faults


def test_status_fault_with_retry_after(authority: MockAuthority, client: httpx.Client) -> None:
    authority.inject(Fault.status(429, retry_after="7"), endpoint="token")
    response = post_token(client, CLIENT_CREDENTIALS, headers={"client-request-id": "c-429"})
    body = assert_error(response, 429, "temporarily_unavailable", 90006)
    assert response.headers["retry-after"] == "7"
    assert body["correlation_id"] == "c-429"
    assert post_token(client, CLIENT_CREDENTIALS).status_code == 200  # consumed once


def test_status_fault_bodies(authority: MockAuthority, client: httpx.Client) -> None:
    authority.inject(Fault.status(503))
    assert_error(post_token(client, CLIENT_CREDENTIALS), 503, "temporarily_unavailable", 90006)
    authority.inject(Fault.status(502, body=b"<html>bad gateway</html>", content_type="text/html"))
    response = post_token(client, CLIENT_CREDENTIALS)
    assert (response.status_code, response.text, response.headers["content-type"]) == (
        502,
        "<html>bad gateway</html>",
        "text/html",
    )
    assert "retry-after" not in response.headers
    authority.inject(Fault.status(400))
    assert post_token(client, CLIENT_CREDENTIALS).json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"not json", "text/plain"), (b"{}", "application/json"), (b"<html>proxy login</html>", "text/html")],
)
def test_malformed_fault(
    authority: MockAuthority, client: httpx.Client, body: bytes, content_type: str
) -> None:
    authority.inject(Fault.malformed(body, content_type))
    response = post_token(client, CLIENT_CREDENTIALS)
    assert (response.status_code, response.content, response.headers["content-type"]) == (
        200,
        body,
        content_type,
    )


def test_faults_are_consumed_in_order_by_matching_requests(
    authority: MockAuthority, client: httpx.Client
) -> None:
    authority.inject(Fault.status(503), endpoint="token", times=2)
    authority.inject(Fault.status(500))
    # a metadata request skips the token-only fault and takes the any-endpoint one
    assert client.get(f"/{DEFAULT_TENANT}/v2.0/.well-known/openid-configuration").status_code == 500
    statuses = [post_token(client, CLIENT_CREDENTIALS).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    recorded = authority.requests_to("token")
    assert [r.fault for r in recorded] == [Fault.status(503), Fault.status(503), None]
    with pytest.raises(ValueError, match="times"):
        authority.inject(Fault.status(500), times=0)


def test_drop_connection_in_process(authority: MockAuthority, client: httpx.Client) -> None:
    authority.inject(Fault.drop_connection(), endpoint="token")
    with pytest.raises(httpx.RemoteProtocolError) as raised:
        post_token(client, CLIENT_CREDENTIALS)
    assert isinstance(raised.value, DroppedConnection)
    assert post_token(client, CLIENT_CREDENTIALS).status_code == 200


async def test_drop_connection_async(authority: MockAuthority) -> None:
    authority.inject(Fault.drop_connection())
    async with httpx.AsyncClient(transport=authority.transport(), base_url=ORIGIN) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(TOKEN_PATH, data=CLIENT_CREDENTIALS)
        assert (await http.post(TOKEN_PATH, data=CLIENT_CREDENTIALS)).status_code == 200


def test_latency_fault_sync(authority: MockAuthority, client: httpx.Client) -> None:
    authority.inject(Fault.latency(0.2))
    started = time.perf_counter()
    response = post_token(client, CLIENT_CREDENTIALS)
    assert time.perf_counter() - started >= 0.2
    assert response.status_code == 200


async def test_latency_fault_async_does_not_block_the_loop(authority: MockAuthority) -> None:
    authority.inject(Fault.latency(0.3))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    task = asyncio.create_task(ticker())
    async with httpx.AsyncClient(transport=authority.transport(), base_url=ORIGIN) as http:
        started = time.perf_counter()
        response = await http.post(TOKEN_PATH, data=CLIENT_CREDENTIALS)
        elapsed = time.perf_counter() - started
    task.cancel()
    assert response.status_code == 200
    assert elapsed >= 0.3
    assert ticks >= 5  # the event loop kept running during the wait


def test_latency_answer_is_computed_after_the_wait(authority: MockAuthority, client: httpx.Client) -> None:
    flow = start_device_flow(client)
    authority.inject(Fault.latency(0.3), endpoint="token")
    approver = threading.Timer(0.05, authority.approve_device_code, (flow["user_code"], DEFAULT_USERNAME))
    approver.start()
    try:
        response = poll(client, flow["device_code"])  # arrives before the approval, answered after it
    finally:
        approver.join()
    assert response.status_code == 200, response.text


# --------------------------------------------------------------------------- recording


def test_every_request_is_recorded(authority: MockAuthority, client: httpx.Client) -> None:
    client.get(f"/{DEFAULT_TENANT}/v2.0/.well-known/openid-configuration")
    client.get(
        "/common/discovery/instance",
        params={"api-version": "1.1", "authorization_endpoint": f"{ORIGIN}/common/oauth2/authorize"},
    )
    client.get(f"/{DEFAULT_TENANT}/discovery/v2.0/keys")
    client.post(
        f"/{DEFAULT_TENANT}/oauth2/v2.0/devicecode", data={"client_id": PUBLIC_CLIENT_ID, "scope": SCOPE}
    )
    post_token(client, CLIENT_CREDENTIALS, headers={"X-Client-SKU": "MSAL.Python"})
    client.get(f"/common/userrealm/{DEFAULT_USERNAME}")
    missing = client.get("/nothing/here", params={"q": "1"})
    assert [r.endpoint for r in authority.requests] == [
        "openid-configuration",
        "instance-discovery",
        "jwks",
        "devicecode",
        "token",
        "userrealm",
        "unmatched",
    ]
    token = authority.requests_to("token")[0]
    assert (token.method, token.url, token.path) == ("POST", TOKEN_URL, TOKEN_PATH)
    assert token.form == CLIENT_CREDENTIALS
    assert token.headers["x-client-sku"] == "MSAL.Python"
    assert token.headers["content-type"] == "application/x-www-form-urlencoded"
    discovery = authority.requests_to("instance-discovery")[0]
    assert discovery.query["api-version"] == "1.1"
    assert discovery.form == {}
    body = assert_error(missing, 404, "not_found", 404)
    assert "/nothing/here" in body["error_description"]
    assert [(r.path, r.query) for r in authority.unmatched] == [("/nothing/here", {"q": "1"})]
    authority.reset_requests()
    assert authority.requests == []
    assert authority.unmatched == []


def test_wrong_paths_are_unmatched(authority: MockAuthority, client: httpx.Client) -> None:
    for path in (
        f"/{DEFAULT_TENANT}/oauth2/token",
        f"/{DEFAULT_TENANT}/oauth2/v2.0/authorise",
        "/organizations/discovery/instance",
        "/",
        f"/{DEFAULT_TENANT}/v2.0/.well-known/other",
    ):
        assert client.get(path).status_code == 404
    assert len(authority.unmatched) == 5


# --------------------------------------------------------------------------- mounts


async def test_async_client_through_the_transport(authority: MockAuthority) -> None:
    async with httpx.AsyncClient(transport=authority.transport(), base_url=ORIGIN) as http:
        response = await http.post(TOKEN_PATH, data=CLIENT_CREDENTIALS)
    assert response.status_code == 200


def test_mock_transport_with_a_plain_handler_sync(authority: MockAuthority) -> None:
    with httpx.Client(transport=mock_transport(authority.handle), base_url=ORIGIN) as http:
        assert http.post(TOKEN_PATH, data=CLIENT_CREDENTIALS).status_code == 200


async def test_mock_transport_with_a_plain_handler_async(authority: MockAuthority) -> None:
    transport = mock_transport(authority.handle)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        assert (await http.post(TOKEN_PATH, data=CLIENT_CREDENTIALS)).status_code == 200


def test_route_to_a_respx_router(authority: MockAuthority) -> None:
    with respx.mock(assert_all_called=False) as router:
        route_to(router, authority.handle, base_url=ORIGIN)
        with httpx.Client() as http:
            assert http.post(TOKEN_URL, data=CLIENT_CREDENTIALS).status_code == 200
            with pytest.raises(respx.models.AllMockedAssertionError):
                http.get("https://login.microsoftonline.com.evil.example/x")
            with pytest.raises(respx.models.AllMockedAssertionError):
                http.get("https://login.microsoftonline.com:8443/x")
            with pytest.raises(respx.models.AllMockedAssertionError):
                http.get("https://graph.microsoft.com/v1.0/me")
    assert [r.endpoint for r in authority.requests] == ["token"]


def test_route_to_with_a_path_prefix(authority: MockAuthority) -> None:
    with respx.mock(assert_all_called=False) as router:
        route_to(router, authority.handle, base_url=f"{ORIGIN}/{DEFAULT_TENANT}/")
        with httpx.Client() as http:
            assert http.post(TOKEN_URL, data=CLIENT_CREDENTIALS).status_code == 200
            with pytest.raises(respx.models.AllMockedAssertionError):
                http.get(f"{ORIGIN}/{DEFAULT_TENANT}x/v2.0/.well-known/openid-configuration")
            with pytest.raises(respx.models.AllMockedAssertionError):
                http.get(f"{ORIGIN}/common/v2.0/.well-known/openid-configuration")
    with pytest.raises(ValueError, match="absolute"):
        route_to(respx.Router(), authority.handle, base_url="/relative")


def test_route_to_surfaces_a_dropped_connection(authority: MockAuthority) -> None:
    authority.inject(Fault.drop_connection())
    with respx.mock() as router:
        route_to(router, authority.handle, base_url=ORIGIN)
        with httpx.Client() as http, pytest.raises(httpx.RemoteProtocolError):
            http.post(TOKEN_URL, data=CLIENT_CREDENTIALS)


def test_describe_token_is_per_authority(
    authority: MockAuthority, client: httpx.Client, clock: FakeClock
) -> None:
    token = post_token(client, CLIENT_CREDENTIALS).json()["access_token"]
    assert MockAuthority.with_defaults(clock=clock).describe_token(token) is None
