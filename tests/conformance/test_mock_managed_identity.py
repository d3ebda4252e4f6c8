"""The mock's managed-identity endpoints: IMDS, App Service, Service Fabric, Arc, Azure ML, Cloud Shell.

In process through ``authority.transport()``, plus the plain-HTTP mount and the HTTPS mount's
certificate thumbprint (Service Fabric's pin). Every validation branch asserts status and body.
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.authority import (
    CLOUD_SHELL_CLIENT_ID,
    DEFAULT_MI_CLIENT_ID,
    DEFAULT_MI_OBJECT_ID,
    DEFAULT_MI_RESOURCE_ID,
    DEFAULT_TENANT,
    DEFAULT_USERNAME,
    MANAGED_IDENTITY_PATHS,
    MANAGED_IDENTITY_SOURCES,
    SYSTEM_MI_CLIENT_ID,
    SYSTEM_MI_OBJECT_ID,
    SYSTEM_MI_RESOURCE_ID,
    DroppedConnection,
    Fault,
    HttpServer,
    MockAuthority,
)

NOW = 1_800_000_000
LIFETIME = 86400
RESOURCE = "https://vault.azure.net"
ORIGIN = "http://127.0.0.1:40342"
IMDS_URL = ORIGIN + MANAGED_IDENTITY_PATHS["imds"]
APP_SERVICE_URL = ORIGIN + MANAGED_IDENTITY_PATHS["app-service"]
FABRIC_URL = ORIGIN + MANAGED_IDENTITY_PATHS["service-fabric"]
ARC_URL = ORIGIN + MANAGED_IDENTITY_PATHS["arc"]
ML_URL = ORIGIN + MANAGED_IDENTITY_PATHS["azure-ml"]
CLOUD_SHELL_URL = ORIGIN + MANAGED_IDENTITY_PATHS["cloud-shell"]
UNKNOWN_ID = "00000000-0000-4000-8000-000000000bad"
UNKNOWN_RESOURCE_ID = (
    "/subscriptions/00000000-0000-4000-8000-000000000000/resourcegroups/rg/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/nobody"
)
IMDS_PARAMS = {"api-version": "2018-02-01", "resource": RESOURCE}
APP_SERVICE_PARAMS = {"api-version": "2019-08-01", "resource": RESOURCE}
FABRIC_PARAMS = {"api-version": "2019-07-01-preview", "resource": RESOURCE}
ARC_PARAMS = {"api-version": "2020-06-01", "resource": RESOURCE}
ML_PARAMS = {"api-version": "2017-09-01", "resource": RESOURCE}
METADATA = {"Metadata": "true"}
USER_ASSIGNED = {"client_id": DEFAULT_MI_CLIENT_ID, "object_id": DEFAULT_MI_OBJECT_ID}
IMDS_BODY_KEYS = {
    "access_token",
    "client_id",
    "expires_in",
    "expires_on",
    "ext_expires_in",
    "not_before",
    "resource",
    "token_type",
}


@pytest.fixture
def authority(tmp_path: Path) -> MockAuthority:
    mock = MockAuthority.with_defaults(clock=lambda: NOW)
    mock.arc_key_directory = tmp_path / "tokens"
    return mock


@pytest.fixture
def client(authority: MockAuthority) -> Iterator[httpx.Client]:
    with httpx.Client(transport=authority.transport()) as http:
        yield http


def assert_token(
    authority: MockAuthority,
    response: httpx.Response,
    *,
    source: str,
    client_id: str,
    resource: str = RESOURCE,
) -> dict[str, Any]:
    """200, a recorded request to ``source`` and a recorded token for ``client_id``."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    issued = authority.describe_token(body["access_token"])
    assert issued is not None
    assert issued.grant_type == f"managed_identity:{source}"
    assert issued.client_id == client_id
    assert issued.scopes == (resource,)
    assert issued.expires_on == NOW + authority.managed_identity_token_lifetime
    assert issued.issued_at == NOW
    assert authority.requests[-1].endpoint == source
    return body


def assert_error(response: httpx.Response, status: int, body: dict[str, Any]) -> None:
    assert response.status_code == status, response.text
    assert response.json() == body


def oauth_error(description: str, error: str = "invalid_request") -> dict[str, str]:
    return {"error": error, "error_description": description}


# -- defaults and registry -----------------------------------------------------------------------------
def test_with_defaults_registers_a_system_and_a_user_assigned_identity(authority: MockAuthority) -> None:
    system = authority.managed_identities[SYSTEM_MI_CLIENT_ID.lower()]
    assert (system.object_id, system.resource_id, system.system_assigned) == (
        SYSTEM_MI_OBJECT_ID,
        SYSTEM_MI_RESOURCE_ID,
        True,
    )
    user = authority.managed_identities[DEFAULT_MI_CLIENT_ID.lower()]
    assert (user.object_id, user.resource_id, user.system_assigned, user.tenant_id) == (
        DEFAULT_MI_OBJECT_ID,
        DEFAULT_MI_RESOURCE_ID,
        False,
        DEFAULT_TENANT,
    )
    assert re.fullmatch(
        r"/subscriptions/[0-9a-f-]{36}/resourcegroups/rg/providers/Microsoft\.ManagedIdentity/"
        r"userAssignedIdentities/[\w-]+",
        DEFAULT_MI_RESOURCE_ID,
    )
    assert authority.identity_header.startswith("mi-header-CANARY-")
    assert authority.msi_secret.startswith("mi-secret-CANARY-")
    assert authority.identity_header != MockAuthority().identity_header  # per instance
    assert authority.managed_identity_token_lifetime == LIFETIME
    assert tuple(MANAGED_IDENTITY_PATHS) == MANAGED_IDENTITY_SOURCES


def test_registry_rules(authority: MockAuthority) -> None:
    with pytest.raises(ValueError, match="system-assigned"):
        authority.add_managed_identity(client_id=str(uuid.uuid4()), system_assigned=True)
    added = authority.add_managed_identity(client_id="11111111-0000-4000-8000-000000000001")
    assert added.tenant_id == DEFAULT_TENANT
    assert added.resource_id.lower().startswith("/subscriptions/")
    uuid.UUID(added.object_id)
    authority.remove_managed_identity("11111111-0000-4000-8000-000000000001".upper())
    with pytest.raises(KeyError):
        authority.remove_managed_identity("11111111-0000-4000-8000-000000000001")
    with pytest.raises(KeyError):
        MockAuthority().add_managed_identity(client_id=str(uuid.uuid4()))


# -- IMDS --------------------------------------------------------------------------------------------------
def test_imds_system_assigned_token(authority: MockAuthority, client: httpx.Client) -> None:
    response = client.get(IMDS_URL, params=IMDS_PARAMS, headers=METADATA)
    body = assert_token(authority, response, source="imds", client_id=SYSTEM_MI_CLIENT_ID)
    assert set(body) == IMDS_BODY_KEYS
    assert all(isinstance(value, str) for value in body.values())
    assert body["client_id"] == SYSTEM_MI_CLIENT_ID
    assert body["expires_in"] == body["ext_expires_in"] == str(LIFETIME)
    assert body["expires_on"] == str(NOW + LIFETIME)
    assert body["not_before"] == str(NOW)
    assert (body["resource"], body["token_type"]) == (RESOURCE, "Bearer")
    issued = authority.describe_token(body["access_token"])
    assert issued is not None
    assert (issued.tenant, issued.user) == (DEFAULT_TENANT, None)
    recorded = authority.requests_to("imds")[0]
    assert (recorded.method, recorded.path, recorded.query) == (
        "GET",
        "/metadata/identity/oauth2/token",
        IMDS_PARAMS,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("client_id", DEFAULT_MI_CLIENT_ID.upper()),
        ("object_id", DEFAULT_MI_OBJECT_ID),
        ("msi_res_id", DEFAULT_MI_RESOURCE_ID.upper()),
    ],
)
def test_imds_user_assigned_parameters(
    authority: MockAuthority, client: httpx.Client, name: str, value: str
) -> None:
    response = client.get(IMDS_URL, params={**IMDS_PARAMS, name: value}, headers=METADATA)
    body = assert_token(authority, response, source="imds", client_id=DEFAULT_MI_CLIENT_ID)
    assert body["client_id"] == DEFAULT_MI_CLIENT_ID


def test_imds_ignores_parameter_names_it_does_not_know(
    authority: MockAuthority, client: httpx.Client
) -> None:
    # the async client sends ``resource_id`` verbatim (reference §3.2): IMDS ignores it
    response = client.get(
        IMDS_URL, params={**IMDS_PARAMS, "resource_id": DEFAULT_MI_RESOURCE_ID}, headers=METADATA
    )
    assert_token(authority, response, source="imds", client_id=SYSTEM_MI_CLIENT_ID)


def test_imds_header_less_probe_gets_400(authority: MockAuthority, client: httpx.Client) -> None:
    assert_error(client.get(IMDS_URL), 400, oauth_error("Required metadata header not specified"))
    assert_error(
        client.get(IMDS_URL, params=IMDS_PARAMS, headers={"Metadata": "false"}),
        400,
        oauth_error("Required metadata header not specified"),
    )
    assert [r.endpoint for r in authority.requests] == ["imds", "imds"]
    assert authority.access_tokens == {}


@pytest.mark.parametrize("version", ["2019-08-01", "2021-02-01", "2025-04-07"])
def test_imds_accepts_later_dated_api_versions(
    authority: MockAuthority, client: httpx.Client, version: str
) -> None:
    response = client.get(IMDS_URL, params={**IMDS_PARAMS, "api-version": version}, headers=METADATA)
    assert_token(authority, response, source="imds", client_id=SYSTEM_MI_CLIENT_ID)


@pytest.mark.parametrize("version", ["2017-09-01", "2018-01-31", "2018-02-30", "latest", "2018-2-1"])
def test_imds_refuses_other_api_versions(client: httpx.Client, version: str) -> None:
    response = client.get(IMDS_URL, params={**IMDS_PARAMS, "api-version": version}, headers=METADATA)
    assert_error(response, 400, oauth_error(f"Invalid api-version '{version}'"))


def test_imds_missing_parameters(client: httpx.Client) -> None:
    assert_error(
        client.get(IMDS_URL, params={"resource": RESOURCE}, headers=METADATA),
        400,
        oauth_error("Required query variable 'api-version' is missing"),
    )
    assert_error(
        client.get(IMDS_URL, params={"api-version": "2018-02-01"}, headers=METADATA),
        400,
        oauth_error("Required query variable 'resource' is missing"),
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("client_id", UNKNOWN_ID), ("object_id", UNKNOWN_ID), ("msi_res_id", UNKNOWN_RESOURCE_ID)],
)
def test_imds_unknown_identity(client: httpx.Client, name: str, value: str) -> None:
    response = client.get(IMDS_URL, params={**IMDS_PARAMS, name: value}, headers=METADATA)
    assert_error(response, 400, oauth_error("Identity not found"))


def test_imds_at_most_one_identity_parameter(client: httpx.Client) -> None:
    response = client.get(IMDS_URL, params={**IMDS_PARAMS, **USER_ASSIGNED}, headers=METADATA)
    assert_error(
        response, 400, oauth_error("Only one of client_id, object_id or msi_res_id may be specified")
    )


def test_imds_without_a_system_assigned_identity(authority: MockAuthority, client: httpx.Client) -> None:
    authority.remove_managed_identity(SYSTEM_MI_CLIENT_ID)
    response = client.get(IMDS_URL, params=IMDS_PARAMS, headers=METADATA)
    assert_error(response, 400, oauth_error("No managed identity is assigned to this resource"))
    response = client.get(
        IMDS_URL, params={**IMDS_PARAMS, "client_id": DEFAULT_MI_CLIENT_ID}, headers=METADATA
    )
    assert_token(authority, response, source="imds", client_id=DEFAULT_MI_CLIENT_ID)


def test_imds_only_answers_get(client: httpx.Client) -> None:
    response = client.post(IMDS_URL, params=IMDS_PARAMS, headers=METADATA)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


def test_token_lifetime_is_configurable(authority: MockAuthority, client: httpx.Client) -> None:
    authority.managed_identity_token_lifetime = 7200
    body = client.get(IMDS_URL, params=IMDS_PARAMS, headers=METADATA).json()
    assert (body["expires_in"], body["expires_on"]) == ("7200", str(NOW + 7200))


def test_imds_fault_injection(authority: MockAuthority, client: httpx.Client) -> None:
    authority.inject(Fault.status(410), endpoint="imds")
    authority.inject(Fault.status(410), endpoint="token")  # another endpoint's fault stays queued
    first = client.get(IMDS_URL, params=IMDS_PARAMS, headers=METADATA)
    assert first.status_code == 410
    assert "access_token" not in first.json()
    second = client.get(IMDS_URL, params=IMDS_PARAMS, headers=METADATA)
    assert_token(authority, second, source="imds", client_id=SYSTEM_MI_CLIENT_ID)
    recorded = authority.requests_to("imds")
    assert [r.fault.http_status if r.fault else None for r in recorded] == [410, None]


def test_imds_drop_and_malformed_faults(authority: MockAuthority, client: httpx.Client) -> None:
    authority.inject(Fault.drop_connection(), endpoint="imds")
    authority.inject(Fault.malformed(b"<html>proxy</html>", "text/html"), endpoint="imds")
    with pytest.raises(DroppedConnection):
        client.get(IMDS_URL, params=IMDS_PARAMS, headers=METADATA)
    malformed = client.get(IMDS_URL, params=IMDS_PARAMS, headers=METADATA)
    assert (malformed.status_code, malformed.text) == (200, "<html>proxy</html>")


async def test_imds_latency_fault_async(authority: MockAuthority) -> None:
    authority.inject(Fault.latency(0.05), endpoint="imds")
    async with httpx.AsyncClient(transport=authority.transport()) as http:
        response = await http.get(IMDS_URL, params=IMDS_PARAMS, headers=METADATA)
    assert_token(authority, response, source="imds", client_id=SYSTEM_MI_CLIENT_ID)
    assert authority.requests_to("imds")[0].fault == Fault.latency(0.05)


# -- App Service -------------------------------------------------------------------------------------------
def _app_service_headers(authority: MockAuthority) -> dict[str, str]:
    return {"X-IDENTITY-HEADER": authority.identity_header}


def test_app_service_token(authority: MockAuthority, client: httpx.Client) -> None:
    response = client.get(APP_SERVICE_URL, params=APP_SERVICE_PARAMS, headers=_app_service_headers(authority))
    body = assert_token(authority, response, source="app-service", client_id=SYSTEM_MI_CLIENT_ID)
    assert body == {
        "access_token": body["access_token"],
        "expires_on": str(NOW + LIFETIME),
        "resource": RESOURCE,
        "token_type": "Bearer",
        "client_id": SYSTEM_MI_CLIENT_ID,
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("client_id", DEFAULT_MI_CLIENT_ID),
        ("object_id", DEFAULT_MI_OBJECT_ID.upper()),
        ("principal_id", DEFAULT_MI_OBJECT_ID),
        ("mi_res_id", DEFAULT_MI_RESOURCE_ID.lower()),
    ],
)
def test_app_service_user_assigned_parameters(
    authority: MockAuthority, client: httpx.Client, name: str, value: str
) -> None:
    response = client.get(
        APP_SERVICE_URL, params={**APP_SERVICE_PARAMS, name: value}, headers=_app_service_headers(authority)
    )
    body = assert_token(authority, response, source="app-service", client_id=DEFAULT_MI_CLIENT_ID)
    assert body["client_id"] == DEFAULT_MI_CLIENT_ID


def test_app_service_ignores_imds_parameter_names(authority: MockAuthority, client: httpx.Client) -> None:
    response = client.get(
        APP_SERVICE_URL,
        params={**APP_SERVICE_PARAMS, "msi_res_id": DEFAULT_MI_RESOURCE_ID},
        headers=_app_service_headers(authority),
    )
    assert_token(authority, response, source="app-service", client_id=SYSTEM_MI_CLIENT_ID)


@pytest.mark.parametrize("header", [None, "", "mi-header-CANARY-wrong"])
def test_app_service_identity_header(client: httpx.Client, header: str | None) -> None:
    headers = {} if header is None else {"X-IDENTITY-HEADER": header}
    response = client.get(APP_SERVICE_URL, params=APP_SERVICE_PARAMS, headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"statusCode", "message"}
    assert body["statusCode"] == 401
    assert "X-IDENTITY-HEADER" in body["message"]


@pytest.mark.parametrize(
    "params",
    [
        {"resource": RESOURCE},
        {**APP_SERVICE_PARAMS, "api-version": "2017-09-01"},
        {"api-version": "2019-08-01"},
    ],
    ids=["no-api-version", "old-api-version", "no-resource"],
)
def test_app_service_bad_requests(
    authority: MockAuthority, client: httpx.Client, params: dict[str, str]
) -> None:
    response = client.get(APP_SERVICE_URL, params=params, headers=_app_service_headers(authority))
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"statusCode", "message"}
    assert body["statusCode"] == 400


@pytest.mark.parametrize(
    ("name", "value"),
    [("client_id", UNKNOWN_ID), ("object_id", UNKNOWN_ID), ("mi_res_id", UNKNOWN_RESOURCE_ID)],
)
def test_app_service_unknown_identity(
    authority: MockAuthority, client: httpx.Client, name: str, value: str
) -> None:
    response = client.get(
        APP_SERVICE_URL, params={**APP_SERVICE_PARAMS, name: value}, headers=_app_service_headers(authority)
    )
    assert response.status_code == 400
    body = response.json()
    assert body == {
        "statusCode": 400,
        "message": "No User Assigned or Delegated Managed Identity found for specified "
        "ClientId/ResourceId/PrincipalId.",
        "correlationId": body["correlationId"],
    }
    uuid.UUID(body["correlationId"])


def test_app_service_one_identity_and_no_system_identity(
    authority: MockAuthority, client: httpx.Client
) -> None:
    headers = _app_service_headers(authority)
    both = client.get(APP_SERVICE_URL, params={**APP_SERVICE_PARAMS, **USER_ASSIGNED}, headers=headers)
    assert (both.status_code, both.json()["statusCode"]) == (400, 400)
    authority.remove_managed_identity(SYSTEM_MI_CLIENT_ID)
    none = client.get(APP_SERVICE_URL, params=APP_SERVICE_PARAMS, headers=headers)
    assert none.status_code == 400
    assert "No managed identity" in none.json()["message"]


# -- Service Fabric -------------------------------------------------------------------------------------
def _fabric_headers(authority: MockAuthority) -> dict[str, str]:
    return {"Secret": authority.identity_header}


def test_service_fabric_token(authority: MockAuthority, client: httpx.Client) -> None:
    params = {**FABRIC_PARAMS, "token_sha256_to_refresh": "ab" * 32}  # MSAL's optional extra is ignored
    response = client.get(FABRIC_URL, params=params, headers=_fabric_headers(authority))
    body = assert_token(authority, response, source="service-fabric", client_id=SYSTEM_MI_CLIENT_ID)
    assert body == {
        "token_type": "Bearer",
        "access_token": body["access_token"],
        "expires_on": NOW + LIFETIME,
        "resource": RESOURCE,
    }
    assert isinstance(body["expires_on"], int)


def test_service_fabric_secret_header(client: httpx.Client) -> None:
    missing = client.get(FABRIC_URL, params=FABRIC_PARAMS)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "SecretHeaderNotFound"
    wrong = client.get(FABRIC_URL, params=FABRIC_PARAMS, headers={"Secret": "mi-header-CANARY-wrong"})
    assert wrong.status_code == 401
    assert set(wrong.json()["error"]) == {"code", "message"}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"resource": RESOURCE}, "ArgumentNullOrEmpty"),
        ({"api-version": "2019-07-01-preview"}, "ArgumentNullOrEmpty"),
        ({**FABRIC_PARAMS, "api-version": "2019-08-01"}, "InvalidApiVersion"),
    ],
    ids=["no-api-version", "no-resource", "wrong-api-version"],
)
def test_service_fabric_bad_requests(
    authority: MockAuthority, client: httpx.Client, params: dict[str, str], code: str
) -> None:
    response = client.get(FABRIC_URL, params=params, headers=_fabric_headers(authority))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize("name", ["client_id", "object_id", "msi_res_id", "mi_res_id", "resource_id"])
def test_service_fabric_refuses_user_assigned_ids(
    authority: MockAuthority, client: httpx.Client, name: str
) -> None:
    response = client.get(
        FABRIC_URL, params={**FABRIC_PARAMS, name: DEFAULT_MI_CLIENT_ID}, headers=_fabric_headers(authority)
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "ArgumentNullOrEmpty"
    assert name in error["message"]
    assert authority.access_tokens == {}


def test_service_fabric_without_an_identity(authority: MockAuthority, client: httpx.Client) -> None:
    authority.remove_managed_identity(SYSTEM_MI_CLIENT_ID)
    response = client.get(FABRIC_URL, params=FABRIC_PARAMS, headers=_fabric_headers(authority))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ManagedIdentityNotFound"


# -- Azure Arc -------------------------------------------------------------------------------------------
def _challenge(response: httpx.Response, directory: Path) -> Path:
    """The key file a 401 challenge names (checked to be a new file in ``directory``)."""
    assert response.status_code == 401, response.text
    scheme, _, realm = response.headers["www-authenticate"].partition(" ")
    assert scheme == "Basic"
    name, _, path = realm.partition("=")
    assert name == "realm"
    key_file = Path(path)
    assert key_file.is_absolute()
    assert key_file.parent == directory.absolute()
    assert re.fullmatch(r"[0-9a-f]{32}\.key", key_file.name)
    assert key_file.is_file()
    return key_file


def _arc_token(
    authority: MockAuthority, client: httpx.Client, params: dict[str, str], *, url: str = ARC_URL
) -> tuple[httpx.Response, Path]:
    """The two legs of an Arc token request: challenge, then the key file's contents."""
    assert authority.arc_key_directory is not None
    first = client.get(url, params=params, headers=METADATA)
    key_file = _challenge(first, authority.arc_key_directory)
    second = client.get(
        url, params=params, headers={**METADATA, "Authorization": f"Basic {key_file.read_text()}"}
    )
    return second, key_file


def test_arc_challenge_then_token(authority: MockAuthority, client: httpx.Client) -> None:
    response, key_file = _arc_token(authority, client, ARC_PARAMS)
    body = assert_token(authority, response, source="arc", client_id=SYSTEM_MI_CLIENT_ID)
    assert set(body) == IMDS_BODY_KEYS
    assert all(isinstance(value, str) for value in body.values())
    assert (body["client_id"], body["expires_in"], body["expires_on"]) == (
        SYSTEM_MI_CLIENT_ID,
        str(LIFETIME),
        str(NOW + LIFETIME),
    )
    recorded = authority.requests_to("arc")
    assert len(recorded) == 2
    assert "authorization" not in recorded[0].headers
    assert recorded[1].headers["authorization"] == f"Basic {key_file.read_text()}"
    assert len(key_file.read_text()) >= 32
    # the secret stays valid (a retried second request still works)
    again = client.get(
        ARC_URL, params=ARC_PARAMS, headers={**METADATA, "Authorization": f"Basic {key_file.read_text()}"}
    )
    assert again.status_code == 200


@pytest.mark.parametrize(
    ("name", "value", "echo"),
    [
        ("client_id", DEFAULT_MI_CLIENT_ID.upper(), None),
        ("object_id", DEFAULT_MI_OBJECT_ID, ("object_id", DEFAULT_MI_OBJECT_ID)),
        ("msi_res_id", DEFAULT_MI_RESOURCE_ID.lower(), ("msi_res_id", DEFAULT_MI_RESOURCE_ID)),
    ],
)
def test_arc_user_assigned_identity_is_echoed(
    authority: MockAuthority, client: httpx.Client, name: str, value: str, echo: tuple[str, str] | None
) -> None:
    response, _ = _arc_token(authority, client, {**ARC_PARAMS, name: value})
    body = assert_token(authority, response, source="arc", client_id=DEFAULT_MI_CLIENT_ID)
    assert body["client_id"] == DEFAULT_MI_CLIENT_ID
    extra = set(body) - IMDS_BODY_KEYS
    if echo is None:
        assert extra == set()
    else:
        assert extra == {echo[0]}
        assert body[echo[0]] == echo[1]


@pytest.mark.parametrize("name", ["client_id", "object_id", "msi_res_id"])
def test_arc_old_agent_ignores_the_user_assigned_identity(
    authority: MockAuthority, client: httpx.Client, name: str
) -> None:
    authority.arc_echo_identity = False
    value = {
        "client_id": DEFAULT_MI_CLIENT_ID,
        "object_id": DEFAULT_MI_OBJECT_ID,
        "msi_res_id": DEFAULT_MI_RESOURCE_ID,
    }
    response, _ = _arc_token(authority, client, {**ARC_PARAMS, name: value[name]})
    body = assert_token(authority, response, source="arc", client_id=SYSTEM_MI_CLIENT_ID)
    assert set(body) == IMDS_BODY_KEYS
    assert body["client_id"] == SYSTEM_MI_CLIENT_ID


@pytest.mark.parametrize(
    "authorization", ["Basic not-the-secret", "Bearer {secret}", "Basic", "{secret}", "Basic {secret}x"]
)
def test_arc_wrong_secret_gets_a_new_challenge(
    authority: MockAuthority, client: httpx.Client, authorization: str
) -> None:
    assert authority.arc_key_directory is not None
    key_file = _challenge(
        client.get(ARC_URL, params=ARC_PARAMS, headers=METADATA), authority.arc_key_directory
    )
    header = authorization.format(secret=key_file.read_text())
    retry = client.get(ARC_URL, params=ARC_PARAMS, headers={**METADATA, "Authorization": header})
    new_file = _challenge(retry, authority.arc_key_directory)
    assert new_file != key_file
    assert new_file.read_text() != key_file.read_text()
    assert authority.access_tokens == {}


def test_arc_without_a_key_directory_cannot_challenge(authority: MockAuthority, client: httpx.Client) -> None:
    authority.arc_key_directory = None
    response = client.get(ARC_URL, params=ARC_PARAMS, headers=METADATA)
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    assert "arc_key_directory" in response.json()["error_description"]
    assert "www-authenticate" not in response.headers


def test_arc_unknown_identity_after_the_challenge(authority: MockAuthority, client: httpx.Client) -> None:
    response, _ = _arc_token(authority, client, {**ARC_PARAMS, "client_id": UNKNOWN_ID})
    assert_error(response, 400, oauth_error("Identity not found"))


@pytest.mark.parametrize(
    ("params", "headers", "description"),
    [
        (ARC_PARAMS, {}, "Required metadata header not specified"),
        ({"resource": RESOURCE}, METADATA, "Required query variable 'api-version' is missing"),
        ({**ARC_PARAMS, "api-version": "2019-11-01"}, METADATA, "Invalid api-version '2019-11-01'"),
        ({"api-version": "2020-06-01"}, METADATA, "Required query variable 'resource' is missing"),
        (
            {**ARC_PARAMS, **USER_ASSIGNED},
            METADATA,
            "Only one of client_id, object_id or msi_res_id may be specified",
        ),
    ],
    ids=["no-metadata", "no-api-version", "old-api-version", "no-resource", "two-ids"],
)
def test_arc_bad_requests(
    authority: MockAuthority,
    client: httpx.Client,
    params: dict[str, str],
    headers: dict[str, str],
    description: str,
) -> None:
    assert_error(client.get(ARC_URL, params=params, headers=headers), 400, oauth_error(description))
    assert authority.arc_secrets == {}


# -- Azure ML ----------------------------------------------------------------------------------------------
def _ml_headers(authority: MockAuthority) -> dict[str, str]:
    return {"secret": authority.msi_secret}


def test_azure_ml_token(authority: MockAuthority, client: httpx.Client) -> None:
    response = client.get(ML_URL, params=ML_PARAMS, headers=_ml_headers(authority))
    body = assert_token(authority, response, source="azure-ml", client_id=SYSTEM_MI_CLIENT_ID)
    assert body == {
        "access_token": body["access_token"],
        "expires_on": str(NOW + LIFETIME),
        "resource": RESOURCE,
        "token_type": "Bearer",
    }


def test_azure_ml_date_expires_on(authority: MockAuthority, client: httpx.Client) -> None:
    authority.azure_ml_expires_on_format = "date"
    body = client.get(ML_URL, params=ML_PARAMS, headers=_ml_headers(authority)).json()
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2} \+00:00", body["expires_on"])
    parsed = datetime.strptime(body["expires_on"], "%m/%d/%Y %H:%M:%S +00:00").replace(tzinfo=timezone.utc)
    assert parsed.timestamp() == NOW + LIFETIME


def test_azure_ml_user_assigned_is_clientid(authority: MockAuthority, client: httpx.Client) -> None:
    headers = _ml_headers(authority)
    response = client.get(ML_URL, params={**ML_PARAMS, "clientid": DEFAULT_MI_CLIENT_ID}, headers=headers)
    assert_token(authority, response, source="azure-ml", client_id=DEFAULT_MI_CLIENT_ID)
    # the newer spelling is not Azure ML's: ignored, so the system-assigned identity answers
    response = client.get(ML_URL, params={**ML_PARAMS, "client_id": DEFAULT_MI_CLIENT_ID}, headers=headers)
    assert_token(authority, response, source="azure-ml", client_id=SYSTEM_MI_CLIENT_ID)
    unknown = client.get(ML_URL, params={**ML_PARAMS, "clientid": UNKNOWN_ID}, headers=headers)
    assert unknown.status_code == 400
    assert unknown.json()["statusCode"] == 400


@pytest.mark.parametrize("secret", [None, "mi-secret-CANARY-wrong"])
def test_azure_ml_secret_header(client: httpx.Client, secret: str | None) -> None:
    headers = {} if secret is None else {"secret": secret}
    response = client.get(ML_URL, params=ML_PARAMS, headers=headers)
    assert response.status_code == 401
    assert response.json()["statusCode"] == 401


@pytest.mark.parametrize(
    "params",
    [{"resource": RESOURCE}, {**ML_PARAMS, "api-version": "2019-08-01"}, {"api-version": "2017-09-01"}],
    ids=["no-api-version", "wrong-api-version", "no-resource"],
)
def test_azure_ml_bad_requests(
    authority: MockAuthority, client: httpx.Client, params: dict[str, str]
) -> None:
    response = client.get(ML_URL, params=params, headers=_ml_headers(authority))
    assert response.status_code == 400
    assert set(response.json()) == {"statusCode", "message"}


# -- Cloud Shell -------------------------------------------------------------------------------------------
def test_cloud_shell_token(authority: MockAuthority, client: httpx.Client) -> None:
    response = client.post(CLOUD_SHELL_URL, data={"resource": RESOURCE}, headers=METADATA)
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "access_token": body["access_token"],
        "expires_in": str(LIFETIME),
        "expires_on": str(NOW + LIFETIME),
        "not_before": str(NOW),
        "resource": RESOURCE,
        "token_type": "Bearer",
    }
    issued = authority.describe_token(body["access_token"])
    assert issued is not None
    assert (issued.grant_type, issued.client_id, issued.user, issued.tenant, issued.scopes) == (
        "managed_identity:cloud-shell",
        CLOUD_SHELL_CLIENT_ID,
        DEFAULT_USERNAME,
        DEFAULT_TENANT,
        (RESOURCE,),
    )
    recorded = authority.requests_to("cloud-shell")[0]
    assert (recorded.method, recorded.form) == ("POST", {"resource": RESOURCE})


@pytest.mark.parametrize("name", ["client_id", "object_id", "resource_id", "msi_res_id", "mi_res_id"])
def test_cloud_shell_refuses_user_assigned_ids(
    authority: MockAuthority, client: httpx.Client, name: str
) -> None:
    response = client.post(
        CLOUD_SHELL_URL, data={"resource": RESOURCE, name: DEFAULT_MI_CLIENT_ID}, headers=METADATA
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_request"
    assert name in body["error_description"]
    assert authority.access_tokens == {}


def test_cloud_shell_bad_requests(authority: MockAuthority, client: httpx.Client) -> None:
    assert_error(
        client.post(CLOUD_SHELL_URL, data={"resource": RESOURCE}),
        400,
        oauth_error("Required metadata header not specified"),
    )
    assert_error(
        client.post(CLOUD_SHELL_URL, data={}, headers=METADATA),
        400,
        oauth_error("The form field 'resource' is required"),
    )
    assert client.get(CLOUD_SHELL_URL, params={"resource": RESOURCE}, headers=METADATA).status_code == 405
    authority.cloud_shell_user = None
    assert_error(
        client.post(CLOUD_SHELL_URL, data={"resource": RESOURCE}, headers=METADATA),
        400,
        oauth_error("No user is signed in to Cloud Shell"),
    )


# -- environment helper ------------------------------------------------------------------------------
def test_managed_identity_environment(authority: MockAuthority) -> None:
    origin = "http://127.0.0.1:8080"
    assert authority.managed_identity_environment("imds", origin) == {
        "AZURE_POD_IDENTITY_AUTHORITY_HOST": origin
    }
    assert authority.managed_identity_environment("app-service", origin) == {
        "IDENTITY_ENDPOINT": f"{origin}/appservice/msi/token",
        "IDENTITY_HEADER": authority.identity_header,
    }
    assert authority.managed_identity_environment("arc", origin + "/") == {
        "IDENTITY_ENDPOINT": f"{origin}/arc/metadata/identity/oauth2/token",
        "IMDS_ENDPOINT": origin,
    }
    assert authority.managed_identity_environment("azure-ml", origin) == {
        "MSI_ENDPOINT": f"{origin}/azureml/msi/token",
        "MSI_SECRET": authority.msi_secret,
    }
    assert authority.managed_identity_environment("cloud-shell", origin) == {
        "MSI_ENDPOINT": f"{origin}/cloudshell/oauth2/token"
    }
    assert authority.managed_identity_environment(
        "service-fabric", "https://127.0.0.1:1", thumbprint="AB" * 20
    ) == {
        "IDENTITY_ENDPOINT": "https://127.0.0.1:1/servicefabric/metadata/identity/oauth2/token",
        "IDENTITY_HEADER": authority.identity_header,
        "IDENTITY_SERVER_THUMBPRINT": "AB" * 20,
    }
    with pytest.raises(ValueError, match="https"):
        authority.managed_identity_environment("service-fabric", origin, thumbprint="AB" * 20)
    with pytest.raises(ValueError, match="no running HTTPS server"):
        authority.managed_identity_environment("service-fabric", "https://127.0.0.1:1")
    with pytest.raises(ValueError, match="unknown managed-identity source"):
        authority.managed_identity_environment("workload", origin)


def _request_from_environment(source: str, env: dict[str, str], authority: MockAuthority) -> httpx.Request:
    """The request a client builds from ``env`` alone (reference §3.4), first leg for Arc."""
    if source == "imds":
        url = env["AZURE_POD_IDENTITY_AUTHORITY_HOST"].rstrip("/") + "/metadata/identity/oauth2/token"
        return httpx.Request("GET", url, params=IMDS_PARAMS, headers=METADATA)
    if source == "app-service":
        headers = {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]}
        return httpx.Request("GET", env["IDENTITY_ENDPOINT"], params=APP_SERVICE_PARAMS, headers=headers)
    if source == "service-fabric":
        headers = {"Secret": env["IDENTITY_HEADER"]}
        return httpx.Request("GET", env["IDENTITY_ENDPOINT"], params=FABRIC_PARAMS, headers=headers)
    if source == "arc":
        return httpx.Request("GET", env["IDENTITY_ENDPOINT"], params=ARC_PARAMS, headers=METADATA)
    if source == "azure-ml":
        headers = {"secret": env["MSI_SECRET"]}
        return httpx.Request("GET", env["MSI_ENDPOINT"], params=ML_PARAMS, headers=headers)
    return httpx.Request("POST", env["MSI_ENDPOINT"], data={"resource": RESOURCE}, headers=METADATA)


@pytest.mark.parametrize("source", MANAGED_IDENTITY_SOURCES)
def test_environment_leads_clients_to_the_endpoint(
    authority: MockAuthority, client: httpx.Client, source: str
) -> None:
    origin = "https://127.0.0.1:9443" if source == "service-fabric" else ORIGIN
    env = authority.managed_identity_environment(source, origin, thumbprint="AB" * 20)
    response = client.send(_request_from_environment(source, env, authority))
    assert response.status_code == (401 if source == "arc" else 200), response.text
    assert authority.requests[-1].endpoint == source


# -- the mounts --------------------------------------------------------------------------------------------
def test_plain_http_server(authority: MockAuthority) -> None:
    with authority.serve_http() as server:
        assert isinstance(server, HttpServer)
        assert server.url == f"http://127.0.0.1:{server.port}"
        env = authority.managed_identity_environment("imds", server.url)
        with httpx.Client() as http:
            response = http.get(
                env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] + "/metadata/identity/oauth2/token",
                params=IMDS_PARAMS,
                headers=METADATA,
            )
            assert_token(authority, response, source="imds", client_id=SYSTEM_MI_CLIENT_ID)
            assert authority.requests[-1].url.startswith(f"{server.url}/metadata/identity/oauth2/token?")
            # the Arc challenge crosses the wire with its header
            arc_env = authority.managed_identity_environment("arc", server.url)
            arc_response, _ = _arc_token(
                authority,
                http,
                {**ARC_PARAMS, "object_id": DEFAULT_MI_OBJECT_ID},
                url=arc_env["IDENTITY_ENDPOINT"],
            )
            assert arc_response.json()["object_id"] == DEFAULT_MI_OBJECT_ID
            authority.inject(Fault.drop_connection(), endpoint="imds")
            with pytest.raises(httpx.RemoteProtocolError):
                http.get(server.url + "/metadata/identity/oauth2/token", params=IMDS_PARAMS, headers=METADATA)
        assert server.stats.requests == 4
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0


def test_plain_http_server_binds_loopback_only(authority: MockAuthority) -> None:
    with pytest.raises(ValueError, match="loopback"):
        authority.serve_http(host="0.0.0.0")
    with pytest.raises(ValueError, match="loopback"):
        HttpServer(authority.handle, host="10.0.0.1")


def test_https_certificate_thumbprint_pins_service_fabric(authority: MockAuthority) -> None:
    with authority.serve() as server:
        thumbprint = server.certificate_thumbprint
        assert re.fullmatch(r"[0-9A-F]{40}", thumbprint)
        context = ssl.create_default_context(cafile=server.ca_path)
        with (
            socket.create_connection(("127.0.0.1", server.port)) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        assert hashlib.sha1(der).hexdigest().upper() == thumbprint
        env = authority.managed_identity_environment("service-fabric", server.url)
        assert env["IDENTITY_SERVER_THUMBPRINT"] == thumbprint
        with httpx.Client(verify=context) as http:
            response = http.get(
                env["IDENTITY_ENDPOINT"], params=FABRIC_PARAMS, headers={"Secret": env["IDENTITY_HEADER"]}
            )
        assert_token(authority, response, source="service-fabric", client_id=SYSTEM_MI_CLIENT_ID)
    with pytest.raises(ValueError, match="no running HTTPS server"):
        authority.managed_identity_environment("service-fabric", server.url)
