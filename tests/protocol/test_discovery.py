"""protocol.discovery: instance discovery, OpenID metadata, and which requests an authority needs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from protocol.authority import Authority, Endpoints
from protocol.client_auth import CertificateAssertion, ClientSecret
from protocol.client_credentials import client_credentials_flow
from protocol.discovery import (
    INSTANCE_DISCOVERY_HOST,
    UntrustedAuthorityError,
    build_instance_discovery_request,
    build_openid_configuration_request,
    parse_instance_discovery_response,
    parse_openid_configuration_response,
    resolve_endpoints,
)
from protocol.errors import MalformedResponseError, OAuthError, ServiceError
from protocol.flows import run_sync_flow
from protocol.retry import NO_RETRY, RetryPolicy

from .conftest import Wire
from .helpers import (
    CLIENT_ID,
    NOW,
    SCOPE,
    SECRET_CANARY,
    TENANT,
    Reply,
    assert_no_canary,
    check_form_post,
    check_get,
    client_certificate,
    decode_jwt,
    error_body,
    make_response,
    ok,
    single_form,
    token_body,
)

CUSTOM = "https://login.contoso.com"
INSTANCE_URL = f"https://{INSTANCE_DISCOVERY_HOST}/common/discovery/instance"
INSTANCE_PARAMS = {"api-version": "1.1", "authorization_endpoint": f"{CUSTOM}/{TENANT}/oauth2/v2.0/authorize"}
# Deliberately not Entra's layout: proves the library follows what discovery says.
METADATA_URL = f"https://meta.contoso.com/discovery/{TENANT}/openid-configuration"
TOKEN_URL = f"https://sts.contoso.com/issue/{TENANT}/token-v2"
METADATA = {
    "token_endpoint": TOKEN_URL,
    "authorization_endpoint": f"https://sts.contoso.com/issue/{TENANT}/authorize",
    "device_authorization_endpoint": f"https://sts.contoso.com/issue/{TENANT}/device",
    "issuer": f"https://sts.contoso.com/{TENANT}/v2.0",
    "jwks_uri": "https://sts.contoso.com/keys",
}
INSTANCE_ANSWER = {
    "tenant_discovery_endpoint": METADATA_URL,
    "api-version": "1.1",
    "metadata": [
        {"preferred_network": "login.contoso.com", "preferred_cache": "login.contoso.com", "aliases": []}
    ],
}
ENTRA_LAYOUT_URL = f"{CUSTOM}/{TENANT}/v2.0/.well-known/openid-configuration"
GENERIC_URL = f"{CUSTOM}/{TENANT}/.well-known/openid-configuration"
SECRET_FORM = {
    "client_id": CLIENT_ID,
    "grant_type": "client_credentials",
    "scope": SCOPE,
    "client_secret": SECRET_CANARY,
}
INVALID_INSTANCE = error_body(
    "invalid_instance", 50049, description="AADSTS50049: Unknown or invalid instance."
)
UNKNOWN_TENANT = error_body("invalid_tenant", 90002, description=f"AADSTS90002: Tenant '{TENANT}' not found.")
POLICY = RetryPolicy(jitter=0.0)


def cc_flow(
    base: str = CUSTOM,
    tenant: str = TENANT,
    *,
    instance_discovery: bool = True,
    region: str | None = None,
    client_auth: Any = None,
    policy: RetryPolicy = POLICY,
):  # type: ignore[no-untyped-def]
    return client_credentials_flow(
        Authority.create(base, tenant),
        client_id=CLIENT_ID,
        scopes=[SCOPE],
        client_auth=client_auth or ClientSecret(SECRET_CANARY),
        policy=policy,
        instance_discovery=instance_discovery,
        region=region,
        clock=lambda: NOW,
    )


# --------------------------------------------------------------------------- request builders


def test_instance_discovery_request() -> None:
    request = build_instance_discovery_request(Authority.create(CUSTOM, TENANT))
    check_get(request, url=INSTANCE_URL, params=INSTANCE_PARAMS, memoize=True)
    assert str(request.url).startswith(f"{INSTANCE_URL}?api-version=1.1&authorization_endpoint=")


def test_openid_configuration_request() -> None:
    check_get(build_openid_configuration_request(METADATA_URL), url=METADATA_URL, memoize=True)


# --------------------------------------------------------------------------- instance discovery parser

AUTHORITY = Authority.create(CUSTOM, TENANT)


def test_parse_instance_discovery() -> None:
    response = make_response(200, json=INSTANCE_ANSWER, url=INSTANCE_URL, method="GET")
    assert parse_instance_discovery_response(response, authority=AUTHORITY) == METADATA_URL


@pytest.mark.parametrize("status", [400, 200])
def test_invalid_instance_is_untrusted_authority(status: int) -> None:
    response = make_response(status, json=INVALID_INSTANCE, url=INSTANCE_URL, method="GET")
    with pytest.raises(UntrustedAuthorityError) as info:
        parse_instance_discovery_response(response, authority=AUTHORITY)
    assert isinstance(info.value, ValueError)
    assert str(info.value) == (
        f"The authority provided, {CUSTOM}, is not well-known. If this authority is valid and "
        "trustworthy, you can disable this check by passing in 'disable_instance_discovery=True' "
        "when constructing the credential."
    )


@pytest.mark.parametrize(
    ("status", "body", "cls", "text"),
    [
        (
            200,
            {"tenant_discovery_endpoint": "http://meta.contoso.com/x"},
            MalformedResponseError,
            "not an https URL",
        ),
        (
            200,
            {"tenant_discovery_endpoint": "meta.contoso.com/x"},
            MalformedResponseError,
            "not an https URL",
        ),
        (200, {"tenant_discovery_endpoint": "https:///x"}, MalformedResponseError, "not an https URL"),
        (200, {"tenant_discovery_endpoint": ""}, MalformedResponseError, "tenant_discovery_endpoint"),
        (200, {"tenant_discovery_endpoint": 5}, MalformedResponseError, "tenant_discovery_endpoint"),
        (200, {}, MalformedResponseError, "tenant_discovery_endpoint"),
        (200, None, MalformedResponseError, "tenant_discovery_endpoint"),
        (400, error_body("invalid_request", 90002), OAuthError, "invalid_request"),
        (503, None, ServiceError, "HTTP 503"),
    ],
)
def test_instance_discovery_failures(status: int, body: Any, cls: type, text: str) -> None:
    response = make_response(status, json=body, url=INSTANCE_URL, method="GET")
    with pytest.raises(cls, match=text) as info:
        parse_instance_discovery_response(response, authority=AUTHORITY)
    assert type(info.value) is cls


# --------------------------------------------------------------------------- metadata parser


def test_parse_openid_configuration() -> None:
    response = make_response(200, json=METADATA, url=METADATA_URL, method="GET")
    assert parse_openid_configuration_response(response) == Endpoints(
        token_endpoint=TOKEN_URL,
        authorization_endpoint=METADATA["authorization_endpoint"],
        device_authorization_endpoint=METADATA["device_authorization_endpoint"],
        issuer=METADATA["issuer"],
    )


def test_parse_minimal_openid_configuration() -> None:
    response = make_response(200, json={"token_endpoint": TOKEN_URL}, url=METADATA_URL, method="GET")
    assert parse_openid_configuration_response(response) == Endpoints(
        token_endpoint=TOKEN_URL, authorization_endpoint="", device_authorization_endpoint=None, issuer=None
    )


@pytest.mark.parametrize(
    ("status", "body", "cls", "text"),
    [
        (
            200,
            {**METADATA, "token_endpoint": "http://sts.contoso.com/token"},
            MalformedResponseError,
            "token endpoint",
        ),
        (
            200,
            {**METADATA, "token_endpoint": "ftp://sts.contoso.com/t"},
            MalformedResponseError,
            "token endpoint",
        ),
        (
            200,
            {**METADATA, "authorization_endpoint": "http://x/a"},
            MalformedResponseError,
            "authorization endpoint",
        ),
        (200, {**METADATA, "device_authorization_endpoint": "http://x/d"}, MalformedResponseError, "device"),
        (200, {"issuer": "https://x"}, MalformedResponseError, "token_endpoint"),
        (200, {"token_endpoint": ["https://x"]}, MalformedResponseError, "token_endpoint"),
        (200, {**METADATA, "issuer": 5}, MalformedResponseError, "issuer"),
        (200, None, MalformedResponseError, "token_endpoint"),
        (400, UNKNOWN_TENANT, OAuthError, "invalid_tenant"),
        (404, None, ServiceError, "HTTP 404"),
        (500, None, ServiceError, "HTTP 500"),
    ],
)
def test_openid_configuration_failures(status: int, body: Any, cls: type, text: str) -> None:
    response = make_response(status, json=body, url=METADATA_URL, method="GET")
    with pytest.raises(cls, match=text) as info:
        parse_openid_configuration_response(response)
    assert type(info.value) is cls


def test_html_metadata_is_malformed() -> None:
    response = make_response(200, content=b"<html>sign in</html>", url=METADATA_URL, method="GET")
    with pytest.raises(MalformedResponseError, match="not JSON"):
        parse_openid_configuration_response(response)


def test_unknown_tenant_keeps_the_aadsts_code() -> None:
    response = make_response(400, json=UNKNOWN_TENANT, url=METADATA_URL, method="GET")
    with pytest.raises(OAuthError) as info:
        parse_openid_configuration_response(response)
    assert (info.value.error, info.value.error_codes, info.value.status_code) == (
        "invalid_tenant",
        (90002,),
        400,
    )


@pytest.mark.parametrize("endpoint", ["https://[sts.contoso.com/token", "https://a\u2100b/token"])
def test_unparseable_endpoint_is_malformed(endpoint: str) -> None:
    response = make_response(200, json={"token_endpoint": endpoint}, url=METADATA_URL, method="GET")
    with pytest.raises(MalformedResponseError):
        parse_openid_configuration_response(response)


# --------------------------------------------------------------------------- which requests are made

WELL_KNOWN = [
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.microsoftonline.de",
    "login.microsoft.com",
    "login.windows.net",
    "sts.windows.net",
    "login.partner.microsoftonline.cn",
    "login-us.microsoftonline.com",
    "login.usgovcloudapi.net",
]


@pytest.mark.parametrize("host", WELL_KNOWN)
@pytest.mark.parametrize("instance_discovery", [True, False])
async def test_known_hosts_need_exactly_one_request(wire: Wire, host: str, instance_discovery: bool) -> None:
    token_url = f"https://{host}/{TENANT}/oauth2/v2.0/token"
    wire.router.add("POST", token_url, ok(token_body(expires_in=100)))
    result = await wire.run(cc_flow(f"https://{host}/", instance_discovery=instance_discovery))
    assert result.expires_on == int(NOW) + 100
    assert len(wire.router.requests) == 1
    check_form_post(wire.router.requests[0], url=token_url, fields=SECRET_FORM)


def test_resolve_endpoints_for_a_known_host_makes_no_request() -> None:
    flow = resolve_endpoints(
        Authority.create("login.microsoftonline.com", TENANT), instance_discovery=True, policy=POLICY
    )
    with pytest.raises(StopIteration) as stop:
        next(flow)
    assert stop.value.value == Authority.create("login.microsoftonline.com", TENANT).derived_endpoints()


async def test_custom_host_with_instance_discovery(wire: Wire) -> None:
    wire.router.add("GET", INSTANCE_URL, ok(INSTANCE_ANSWER))
    wire.router.add("GET", METADATA_URL, ok(METADATA))
    wire.router.add("POST", TOKEN_URL, ok(token_body()))
    await wire.run(cc_flow())
    wire.router.assert_all_called()
    discovery, metadata, token = wire.router.requests
    check_get(discovery, url=INSTANCE_URL, params=INSTANCE_PARAMS)
    check_get(metadata, url=METADATA_URL)
    check_form_post(token, url=TOKEN_URL, fields=SECRET_FORM)


async def test_custom_host_with_path(wire: Wire) -> None:
    wire.router.add("GET", INSTANCE_URL, ok(INSTANCE_ANSWER))
    wire.router.add("GET", METADATA_URL, ok(METADATA))
    wire.router.add("POST", TOKEN_URL, ok(token_body()))
    await wire.run(cc_flow(f"{CUSTOM}/some/path"))
    check_get(
        wire.router.requests[0],
        url=INSTANCE_URL,
        params={
            "api-version": "1.1",
            "authorization_endpoint": f"{CUSTOM}/some/path/{TENANT}/oauth2/v2.0/authorize",
        },
    )


async def test_invalid_instance_stops_before_any_credential_is_sent(wire: Wire) -> None:
    wire.router.add("GET", INSTANCE_URL, Reply(400, json=INVALID_INSTANCE))
    with pytest.raises(UntrustedAuthorityError, match="disable_instance_discovery=True") as info:
        await wire.run(cc_flow())
    assert isinstance(info.value, ValueError)
    assert [r.method for r in wire.router.requests] == ["GET"]
    assert_no_canary(str(info.value), repr(info.value))


async def test_instance_discovery_disabled_uses_entra_layout_metadata(wire: Wire) -> None:
    wire.router.add("GET", ENTRA_LAYOUT_URL, ok(METADATA))
    wire.router.add("POST", TOKEN_URL, ok(token_body()))
    await wire.run(cc_flow(instance_discovery=False))
    metadata, token = wire.router.requests
    check_get(metadata, url=ENTRA_LAYOUT_URL)
    check_form_post(token, url=TOKEN_URL, fields=SECRET_FORM)


async def test_metadata_404_falls_back_to_generic_openid_layout(wire: Wire) -> None:
    wire.router.add("GET", ENTRA_LAYOUT_URL, Reply(404, content=b"Not Found"))
    wire.router.add("GET", GENERIC_URL, ok(METADATA))
    wire.router.add("POST", TOKEN_URL, ok(token_body()))
    await wire.run(cc_flow(instance_discovery=False))
    wire.router.assert_all_called()
    primary, generic, token = wire.router.requests
    check_get(primary, url=ENTRA_LAYOUT_URL)
    check_get(generic, url=GENERIC_URL)
    check_form_post(token, url=TOKEN_URL, fields=SECRET_FORM)


async def test_both_metadata_locations_missing_reports_the_primary(wire: Wire) -> None:
    wire.router.add("GET", ENTRA_LAYOUT_URL, Reply(404, content=b"Not Found"))
    wire.router.add("GET", GENERIC_URL, Reply(404, content=b"Not Found"))
    with pytest.raises(ServiceError) as info:
        await wire.run(cc_flow(instance_discovery=False))
    assert (info.value.status_code, info.value.url) == (404, ENTRA_LAYOUT_URL)
    assert [r.method for r in wire.router.requests] == ["GET", "GET"]


async def test_generic_metadata_malformed_reports_the_primary(wire: Wire) -> None:
    wire.router.add("GET", ENTRA_LAYOUT_URL, Reply(404, json=error_body("not_found")))
    wire.router.add("GET", GENERIC_URL, ok({"token_endpoint": "http://insecure.contoso.com/token"}))
    with pytest.raises(OAuthError) as info:
        await wire.run(cc_flow(instance_discovery=False))
    assert (info.value.error, info.value.status_code) == ("not_found", 404)


@pytest.mark.parametrize("instance_discovery", [True, False])
async def test_adfs_uses_its_own_metadata_and_no_instance_discovery(
    wire: Wire, instance_discovery: bool
) -> None:
    adfs_metadata = "https://adfs.contoso.com/adfs/.well-known/openid-configuration"
    adfs_token = "https://adfs.contoso.com/adfs/oauth2/token"
    wire.router.add(
        "GET", adfs_metadata, ok({"token_endpoint": adfs_token, "issuer": "https://adfs.contoso.com/adfs"})
    )
    wire.router.add("POST", adfs_token, ok(token_body()))
    await wire.run(cc_flow("https://adfs.contoso.com", "adfs", instance_discovery=instance_discovery))
    metadata, token = wire.router.requests
    check_get(metadata, url=adfs_metadata)
    check_form_post(token, url=adfs_token, fields=SECRET_FORM)


async def test_adfs_metadata_404_has_no_generic_fallback(wire: Wire) -> None:
    adfs_metadata = "https://adfs.contoso.com/adfs/.well-known/openid-configuration"
    wire.router.add("GET", adfs_metadata, Reply(404, content=b"Not Found"))
    with pytest.raises(ServiceError):
        await wire.run(cc_flow("https://adfs.contoso.com", "adfs"))
    assert len(wire.router.requests) == 1


@pytest.mark.parametrize("instance_discovery", [True, False])
async def test_insecure_token_endpoint_in_metadata_is_refused(wire: Wire, instance_discovery: bool) -> None:
    insecure = {**METADATA, "token_endpoint": "http://sts.contoso.com/token"}
    if instance_discovery:
        wire.router.add("GET", INSTANCE_URL, ok(INSTANCE_ANSWER))
        wire.router.add("GET", METADATA_URL, ok(insecure))
    else:
        wire.router.add("GET", ENTRA_LAYOUT_URL, ok(insecure))
    with pytest.raises(MalformedResponseError, match="not an https URL"):
        await wire.run(cc_flow(instance_discovery=instance_discovery))
    assert all(r.method == "GET" for r in wire.router.requests)


async def test_insecure_tenant_discovery_endpoint_is_refused(wire: Wire) -> None:
    wire.router.add("GET", INSTANCE_URL, ok({"tenant_discovery_endpoint": "http://meta.contoso.com/x"}))
    with pytest.raises(MalformedResponseError, match="not an https URL"):
        await wire.run(cc_flow())
    assert len(wire.router.requests) == 1


@pytest.mark.parametrize("instance_discovery", [True, False])
async def test_unknown_tenant_is_an_oauth_error(wire: Wire, instance_discovery: bool) -> None:
    if instance_discovery:
        wire.router.add("GET", INSTANCE_URL, ok(INSTANCE_ANSWER))
        wire.router.add("GET", METADATA_URL, Reply(400, json=UNKNOWN_TENANT))
    else:
        wire.router.add("GET", ENTRA_LAYOUT_URL, Reply(400, json=UNKNOWN_TENANT))
    with pytest.raises(OAuthError) as info:
        await wire.run(cc_flow(instance_discovery=instance_discovery))
    assert (type(info.value), info.value.error_codes, info.value.status_code) == (OAuthError, (90002,), 400)
    assert all(r.method == "GET" for r in wire.router.requests)


async def test_metadata_is_retried_on_503(driven: Wire) -> None:
    wire = driven
    wire.router.add("GET", INSTANCE_URL, ok(INSTANCE_ANSWER))
    wire.router.add("GET", METADATA_URL, Reply(503, content=b"busy"), ok(METADATA))
    wire.router.add("POST", TOKEN_URL, ok(token_body()))
    await wire.run(cc_flow())
    assert (len(wire.router.calls("GET", METADATA_URL)), wire.sleeps) == (2, [pytest.approx(0.8)])


async def test_instance_discovery_retry_is_a_fresh_request(driven: Wire) -> None:
    driven.router.add("GET", INSTANCE_URL, Reply(503, content=b"busy"), ok(INSTANCE_ANSWER))
    driven.router.add("GET", METADATA_URL, ok(METADATA))
    driven.router.add("POST", TOKEN_URL, ok(token_body()))
    await driven.run(cc_flow())
    first, second = driven.router.calls("GET", INSTANCE_URL)
    assert first.headers["client-request-id"] != second.headers["client-request-id"]


# --------------------------------------------------------------------------- regional


async def test_regional_request_with_certificate_assertion_audience_is_central(wire: Wire) -> None:
    certificate = client_certificate()
    regional = f"https://westus2.login.microsoft.com/{TENANT}/oauth2/v2.0/token"
    central = f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
    wire.router.add("POST", regional, ok(token_body()))
    await wire.run(
        cc_flow("login.microsoftonline.com", region="westus2", client_auth=CertificateAssertion(certificate))
    )
    (request,) = wire.router.requests
    form = single_form(request)
    assertion = form.pop("client_assertion")
    assert (str(request.url), form) == (
        regional,
        {
            "client_id": CLIENT_ID,
            "grant_type": "client_credentials",
            "scope": SCOPE,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        },
    )
    claims = decode_jwt(
        assertion,
        certificate.private_key.public_key(),
        algorithm="PS256",
        audience=central,
        check_times=False,
    )
    assert claims["aud"] == central


@pytest.mark.parametrize(
    ("host", "regional_host"),
    [
        ("login.microsoftonline.us", "westus2.login.microsoftonline.us"),
        ("login.windows.net", "westus2.login.microsoft.com"),
    ],
)
async def test_regional_sovereign_and_alias_hosts(wire: Wire, host: str, regional_host: str) -> None:
    url = f"https://{regional_host}/{TENANT}/oauth2/v2.0/token"
    wire.router.add("POST", url, ok(token_body()))
    await wire.run(cc_flow(host, region="westus2"))
    check_form_post(wire.router.requests[0], url=url, fields=SECRET_FORM)


async def test_regional_applies_to_the_discovered_token_endpoint(wire: Wire) -> None:
    wire.router.add("GET", INSTANCE_URL, ok(INSTANCE_ANSWER))
    wire.router.add("GET", METADATA_URL, ok(METADATA))
    regional = f"https://westus2.sts.contoso.com/issue/{TENANT}/token-v2"
    wire.router.add("POST", regional, ok(token_body()))
    certificate = client_certificate()
    await wire.run(
        cc_flow(region="westus2", client_auth=CertificateAssertion(certificate, algorithm="RS256"))
    )
    token = wire.router.requests[-1]
    assert str(token.url) == regional
    decode_jwt(
        single_form(token)["client_assertion"],
        certificate.private_key.public_key(),
        algorithm="RS256",
        audience=TOKEN_URL,
        check_times=False,
    )


def test_resolve_endpoints_by_hand_yields_discovery_then_metadata() -> None:
    router_calls: list[str] = []

    def send(request: httpx.Request) -> httpx.Response:
        router_calls.append(f"{request.method} {request.url.copy_with(query=None)}")
        body = INSTANCE_ANSWER if request.url.host == INSTANCE_DISCOVERY_HOST else METADATA
        return httpx.Response(200, json=body, request=request)

    endpoints = run_sync_flow(resolve_endpoints(AUTHORITY, instance_discovery=True, policy=NO_RETRY), send)
    assert endpoints.token_endpoint == TOKEN_URL
    assert router_calls == [f"GET {INSTANCE_URL}", f"GET {METADATA_URL}"]
