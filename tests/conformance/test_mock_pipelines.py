"""The mock's Azure Pipelines OIDC endpoint and its hand-off to the token endpoint (reference §4.6)."""

from __future__ import annotations

import re
import ssl
import uuid
from collections.abc import Iterator

import httpx
import jwt
import pytest

from conformance.authority import (
    DEFAULT_TENANT,
    Fault,
    MockAuthority,
    PipelineServiceConnection,
)

NOW = 1_800_000_000.0
PIPELINE_CLIENT_ID = "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
OTHER_CLIENT_ID = "7d2e3f4a-5b6c-4d7e-9f8a-0b1c2d3e4f5a"
CONNECTION_ID = "2f3e4d5c-6b7a-4988-a7b6-c5d4e3f2a1b0"
OTHER_CONNECTION_ID = "3a4b5c6d-7e8f-4a0b-9c1d-2e3f4a5b6c7d"
SYSTEM_ACCESS_TOKEN = "system-access-token-CANARY-1b2c"
ORIGIN = "https://dev.azure.com"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCOPE = "https://management.azure.com/.default"
PARAMS = {"api-version": "7.1", "serviceConnectionId": CONNECTION_ID}
HEADERS = {
    "Authorization": f"Bearer {SYSTEM_ACCESS_TOKEN}",
    "Content-Type": "application/json",
    "X-TFS-FedAuthRedirect": "Suppress",
}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def authority(clock: Clock) -> MockAuthority:
    mock = MockAuthority.with_defaults(clock=clock)
    mock.add_application(DEFAULT_TENANT, PIPELINE_CLIENT_ID)
    return mock


@pytest.fixture
def connection(authority: MockAuthority) -> PipelineServiceConnection:
    return authority.add_pipeline_service_connection(
        DEFAULT_TENANT,
        PIPELINE_CLIENT_ID,
        CONNECTION_ID,
        system_access_token=SYSTEM_ACCESS_TOKEN,
        name="prod-arm",
        organization="contoso",
        project="web",
    )


@pytest.fixture
def client(authority: MockAuthority) -> Iterator[httpx.Client]:
    with httpx.Client(transport=authority.transport()) as http:
        yield http


def _oidc(
    client: httpx.Client,
    connection: PipelineServiceConnection,
    *,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return client.post(
        connection.oidc_request_uri(ORIGIN),
        params=PARAMS if params is None else params,
        headers=HEADERS if headers is None else headers,
    )


def _client_assertion_grant(client: httpx.Client, client_id: str, assertion: str) -> httpx.Response:
    form = {
        "client_id": client_id,
        "grant_type": "client_credentials",
        "scope": SCOPE,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    return client.post(f"https://login.microsoftonline.com/{DEFAULT_TENANT}/oauth2/v2.0/token", data=form)


def test_connection_record(connection: PipelineServiceConnection) -> None:
    assert connection.subject == "sc://contoso/web/prod-arm"
    assert re.fullmatch(
        r"/contoso/[0-9a-f-]{36}/_apis/distributedtask/hubs/build/plans/[0-9a-f-]{36}/jobs/[0-9a-f-]{36}/oidctoken",
        connection.oidc_request_path,
    )
    assert connection.oidc_request_uri(ORIGIN + "/") == ORIGIN + connection.oidc_request_path
    assert connection.issuer.issuer == f"https://vstoken.dev.azure.com/{connection.organization_id}"
    uuid.UUID(connection.organization_id)
    assert SYSTEM_ACCESS_TOKEN not in repr(connection)


def test_oidc_token_then_client_assertion(
    authority: MockAuthority, client: httpx.Client, connection: PipelineServiceConnection
) -> None:
    response = _oidc(client, connection)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["oidcToken"]
    token = body["oidcToken"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    claims = jwt.decode(
        token,
        connection.issuer.key.public_key(),
        algorithms=["RS256"],
        audience="api://AzureADTokenExchange",
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["iss"] == f"https://vstoken.dev.azure.com/{connection.organization_id}"
    assert claims["sub"] == "sc://contoso/web/prod-arm"
    assert claims["aud"] == "api://AzureADTokenExchange"
    assert claims["iat"] == int(NOW)
    assert claims["exp"] == int(NOW) + 600
    recorded = authority.requests_to("pipelines-oidc")
    assert len(recorded) == 1
    assert recorded[0].query == PARAMS
    assert recorded[0].path == connection.oidc_request_path
    assert recorded[0].headers["x-tfs-fedauthredirect"] == "Suppress"

    granted = _client_assertion_grant(client, PIPELINE_CLIENT_ID, token)
    assert granted.status_code == 200, granted.text
    issued = authority.describe_token(granted.json()["access_token"])
    assert issued is not None
    assert (issued.client_id, issued.tenant, issued.user) == (PIPELINE_CLIENT_ID, DEFAULT_TENANT, None)
    assert issued.scopes == (SCOPE,)


def test_another_apps_connection_token_is_refused(
    authority: MockAuthority, client: httpx.Client, connection: PipelineServiceConnection
) -> None:
    authority.add_application(DEFAULT_TENANT, OTHER_CLIENT_ID)
    other = authority.add_pipeline_service_connection(
        DEFAULT_TENANT,
        OTHER_CLIENT_ID,
        OTHER_CONNECTION_ID,
        system_access_token=SYSTEM_ACCESS_TOKEN,
        name="staging-arm",
        organization="contoso",
        project="web",
    )
    assert other.issuer is connection.issuer  # one issuer per organization
    token = _oidc(client, connection).json()["oidcToken"]
    refused = _client_assertion_grant(client, OTHER_CLIENT_ID, token)
    assert (refused.status_code, refused.json()["error_codes"]) == (401, [700213])


def test_expired_oidc_token_is_refused(
    authority: MockAuthority, client: httpx.Client, connection: PipelineServiceConnection, clock: Clock
) -> None:
    token = _oidc(client, connection).json()["oidcToken"]
    clock.now += 600 + authority.assertion_clock_skew + 1
    refused = _client_assertion_grant(client, PIPELINE_CLIENT_ID, token)
    assert (refused.status_code, refused.json()["error_codes"]) == (401, [700024])


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {SYSTEM_ACCESS_TOKEN}", "Bearer "],
    ids=["missing", "wrong", "not-bearer", "empty"],
)
def test_bad_access_token_with_suppress_is_401(
    client: httpx.Client, connection: PipelineServiceConnection, authorization: str | None
) -> None:
    headers = {k: v for k, v in HEADERS.items() if k != "Authorization"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = _oidc(client, connection, headers=headers)
    assert response.status_code == 401
    assert list(response.json()) == ["message"]


def test_bad_access_token_without_suppress_redirects_to_sign_in(
    authority: MockAuthority, client: httpx.Client, connection: PipelineServiceConnection
) -> None:
    headers = {"Authorization": "Bearer wrong-token", "Content-Type": "application/json"}
    response = _oidc(client, connection, headers=headers)
    assert response.status_code == 302
    location = httpx.URL(response.headers["location"])
    assert (location.scheme, location.host, location.path) == ("https", "dev.azure.com", "/_signin")
    assert location.params["reply_to"].startswith(connection.oidc_request_uri(ORIGIN))
    # a client that follows redirects ends up holding an HTML page
    with httpx.Client(transport=authority.transport(), follow_redirects=True) as following:
        landed = following.post(connection.oidc_request_uri(ORIGIN), params=PARAMS, headers=headers)
    assert landed.status_code == 200
    assert landed.headers["content-type"].startswith("text/html")
    assert "Sign In" in landed.text
    assert [r.endpoint for r in authority.requests] == [
        "pipelines-oidc",
        "pipelines-oidc",
        "pipelines-signin",
    ]
    assert authority.unmatched == []


def test_api_version_is_required(client: httpx.Client, connection: PipelineServiceConnection) -> None:
    missing = _oidc(client, connection, params={"serviceConnectionId": CONNECTION_ID})
    assert missing.status_code == 400
    assert missing.json()["typeKey"] == "VssVersionNotSpecifiedException"
    wrong = _oidc(client, connection, params={**PARAMS, "api-version": "6.0"})
    assert wrong.status_code == 400
    assert wrong.json()["typeKey"] == "VssInvalidApiVersion"
    preview = _oidc(client, connection, params={**PARAMS, "api-version": "7.1-preview.1"})
    assert preview.status_code == 200


def test_service_connection_checks(
    authority: MockAuthority, client: httpx.Client, connection: PipelineServiceConnection
) -> None:
    missing = _oidc(client, connection, params={"api-version": "7.1"})
    assert missing.status_code == 400
    unknown = _oidc(client, connection, params={**PARAMS, "serviceConnectionId": str(uuid.uuid4())})
    assert unknown.status_code == 404
    assert list(unknown.json()) == ["message"]
    upper = _oidc(client, connection, params={**PARAMS, "serviceConnectionId": CONNECTION_ID.upper()})
    assert upper.status_code == 200
    # a valid access token of another job does not open this job's service connection
    authority.add_application(DEFAULT_TENANT, OTHER_CLIENT_ID)
    authority.add_pipeline_service_connection(
        DEFAULT_TENANT, OTHER_CLIENT_ID, OTHER_CONNECTION_ID, system_access_token="other-job-token"
    )
    foreign = _oidc(client, connection, headers={**HEADERS, "Authorization": "Bearer other-job-token"})
    assert foreign.status_code == 404


def test_content_type_and_method(client: httpx.Client, connection: PipelineServiceConnection) -> None:
    headers = {k: v for k, v in HEADERS.items() if k != "Content-Type"}
    assert _oidc(client, connection, headers=headers).status_code == 415
    assert (
        _oidc(
            client, connection, headers={**HEADERS, "Content-Type": "application/json; charset=utf-8"}
        ).status_code
        == 200
    )
    get = client.get(connection.oidc_request_uri(ORIGIN), params=PARAMS, headers=HEADERS)
    assert get.status_code == 405


def test_any_origin_and_hub_prefix_is_routed(
    authority: MockAuthority, client: httpx.Client, connection: PipelineServiceConnection
) -> None:
    url = "http://127.0.0.1:8080/other-org/p/_apis/distributedtask/hubs/release/plans/1/jobs/2/oidctoken"
    assert client.post(url, params=PARAMS, headers=HEADERS).status_code == 200
    assert authority.requests[-1].endpoint == "pipelines-oidc"


def test_fault_injection(
    authority: MockAuthority, client: httpx.Client, connection: PipelineServiceConnection
) -> None:
    authority.inject(Fault.status(503), endpoint="pipelines-oidc")
    assert _oidc(client, connection).status_code == 503
    assert _oidc(client, connection).status_code == 200


def test_registration_requires_the_app(authority: MockAuthority) -> None:
    with pytest.raises(KeyError):
        authority.add_pipeline_service_connection(
            DEFAULT_TENANT, str(uuid.uuid4()), CONNECTION_ID, system_access_token=SYSTEM_ACCESS_TOKEN
        )


def test_over_https(authority: MockAuthority, connection: PipelineServiceConnection) -> None:
    with (
        authority.serve() as server,
        httpx.Client(verify=ssl.create_default_context(cafile=server.ca_path)) as http,
    ):
        uri = connection.oidc_request_uri(server.url)
        response = http.post(uri, params=PARAMS, headers=HEADERS)
        assert response.status_code == 200
        token = response.json()["oidcToken"]
        redirected = http.post(uri, params=PARAMS, headers={"Content-Type": "application/json"})
        assert redirected.status_code == 302
        assert redirected.headers["location"].startswith(f"{server.url}/_signin?")
        granted = http.post(
            f"{server.url}/{DEFAULT_TENANT}/oauth2/v2.0/token",
            data={
                "client_id": PIPELINE_CLIENT_ID,
                "grant_type": "client_credentials",
                "scope": SCOPE,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": token,
            },
        )
    assert granted.status_code == 200, granted.text
