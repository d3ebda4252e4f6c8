"""Managed identity, protocol layer: source selection, each source's request shape, token parsing,
the IMDS probe and retry policy, Azure Arc's key file, Service Fabric's certificate pin, and property
tests for every parser of network input (reference §3.1-3.8)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import ssl
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.server import HttpsServer
from protocol.errors import (
    MalformedResponseError,
    ProtocolError,
    ServiceError,
    SourceUnavailableError,
    TransportError,
)
from protocol.flows import Sleep, run_sync_flow
from protocol.managed_identity import azure_arc, imds, pinning, sources
from protocol.managed_identity.azure_arc import ArcKeyFileError, arc_flow, build_arc_request, read_key_file
from protocol.managed_identity.common import (
    UserAssignedIdentity,
    parse_expires_on,
    parse_token,
    server_error,
    server_message,
)
from protocol.managed_identity.imds import IMDS_RETRY, build_imds_request, imds_endpoint, imds_flow
from protocol.managed_identity.pinning import (
    CertificatePinError,
    normalize_thumbprint,
    pinned_async_transport,
    pinned_transport,
)
from protocol.managed_identity.selection import LABELS, SourceSettings, select_source
from protocol.responses import TokenResult
from protocol.retry import NO_RETRY, next_retry_delay

RESOURCE = "https://vault.azure.net"
NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
SECRET = "CANARY-SECRET-1f3a"
TOKEN = "CANARY-AT-9b2c-mi"
ENDPOINT = "http://127.0.0.1:41234/msi/token"

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

CLIENT = UserAssignedIdentity("client_id", "11111111-aaaa-bbbb-cccc-000000000001")
OBJECT = UserAssignedIdentity("object_id", "22222222-aaaa-bbbb-cccc-000000000002")
RESOURCE_ID = UserAssignedIdentity(
    "resource_id",
    "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u",
)


def query(request: httpx.Request) -> dict[str, str]:
    """The query string as a dict; fails when a parameter repeats."""
    parsed = parse_qs(request.url.query.decode(), keep_blank_values=True)
    assert all(len(values) == 1 for values in parsed.values()), parsed
    return {name: values[0] for name, values in parsed.items()}


def reply(
    status: int = 200, *, body: Any = None, headers: dict[str, str] | None = None, **fields: Any
) -> Any:
    """A response factory (bound to the request when sent)."""

    def make(request: httpx.Request) -> httpx.Response:
        if body is not None:
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            return httpx.Response(status, content=content, headers=headers, request=request)
        return httpx.Response(status, json=fields or None, headers=headers, request=request)

    return make


def token_reply(**extra: Any) -> Any:
    return reply(200, access_token=TOKEN, token_type="Bearer", **extra)


class Script:
    """A ``send`` function for :func:`run_sync_flow`: records requests, answers from a script."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if answer == "refuse":
            raise TransportError("GET http://127.0.0.1: could not connect (ConnectError).")
        response: httpx.Response = answer(request)
        return response


def drive(flow: Any, script: Script) -> tuple[Any, list[float]]:
    """Run a flow like a driver, recording the sleeps it asks for instead of sleeping."""
    sleeps: list[float] = []
    try:
        step = next(flow)
        while True:
            if isinstance(step, Sleep):
                sleeps.append(step.seconds)
                step = flow.send(None)
                continue
            try:
                response = script(step)
            except TransportError as exc:
                step = flow.throw(exc)
            else:
                step = flow.send(response)
    except StopIteration as stop:
        return stop.value, sleeps


def response_for(
    status: int, body: Any = None, *, content_type: str | None = None, raw: bytes | None = None
) -> Any:
    request = httpx.Request("GET", ENDPOINT + "?api-version=x&resource=r")
    headers = {"content-type": content_type} if content_type else None
    if raw is not None:
        return httpx.Response(status, content=raw, headers=headers, request=request)
    content = b"" if body is None else json.dumps(body).encode()
    return httpx.Response(
        status, content=content, headers=headers or {"content-type": "application/json"}, request=request
    )


# -- source selection (§3.1) ----

IE, IH, IST, IMDS_E = "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT"
WI = {
    "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com",
    "AZURE_TENANT_ID": "tenant",
    "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/token",
}


@pytest.mark.parametrize(
    ("environ", "kind", "endpoint", "secret", "thumbprint"),
    [
        ({}, "imds", "", "", ""),
        (
            {"AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://10.0.0.1:2579"},
            "imds",
            "http://10.0.0.1:2579",
            "",
            "",
        ),
        ({IE: "http://ep", IH: "h"}, "app_service", "http://ep", "h", ""),
        ({IE: "https://ep", IH: "h", IST: "AB"}, "service_fabric", "https://ep", "h", "AB"),
        ({IE: "http://ep", IH: "h", IMDS_E: "http://imds"}, "app_service", "http://ep", "h", ""),
        ({IE: "http://ep", IMDS_E: "http://imds"}, "azure_arc", "http://ep", "", ""),
        ({IE: "http://ep", IST: "AB", IMDS_E: "http://imds"}, "azure_arc", "http://ep", "", ""),
        ({IE: "http://ep"}, "none", "http://ep", "", ""),
        ({IE: "http://ep", IST: "AB"}, "none", "http://ep", "", ""),
        ({IE: "http://ep", "MSI_ENDPOINT": "http://msi", "MSI_SECRET": "s"}, "none", "http://ep", "", ""),
        ({IE: "", IH: "h", "MSI_ENDPOINT": "http://msi"}, "cloud_shell", "http://msi", "", ""),
        ({IE: "http://ep", IH: ""}, "none", "http://ep", "", ""),
        ({"MSI_ENDPOINT": "http://msi", "MSI_SECRET": "s"}, "azure_ml", "http://msi", "s", ""),
        ({"MSI_ENDPOINT": "http://msi"}, "cloud_shell", "http://msi", "", ""),
        ({"MSI_ENDPOINT": "http://msi", "MSI_SECRET": ""}, "cloud_shell", "http://msi", "", ""),
        ({"MSI_ENDPOINT": "http://msi", **WI}, "cloud_shell", "http://msi", "", ""),
        (WI, "workload_identity", "", "", ""),
        ({**WI, "AZURE_TENANT_ID": ""}, "imds", "", "", ""),
        ({k: v for k, v in WI.items() if k != "AZURE_AUTHORITY_HOST"}, "imds", "", "", ""),
        ({k: v for k, v in WI.items() if k != "AZURE_FEDERATED_TOKEN_FILE"}, "imds", "", "", ""),
    ],
)
def test_select_source_follows_the_documented_order(
    environ: dict[str, str], kind: str, endpoint: str, secret: str, thumbprint: str
) -> None:
    assert select_source(environ) == SourceSettings(kind, endpoint, secret, thumbprint)  # type: ignore[arg-type]


def test_workload_identity_can_be_excluded_from_selection() -> None:
    assert select_source(WI, workload_identity=False).kind == "imds"
    assert select_source(WI, workload_identity=True).kind == "workload_identity"


def test_selected_secret_is_not_in_repr() -> None:
    settings_ = select_source({IE: "http://ep", IH: SECRET})
    assert settings_.secret == SECRET
    assert SECRET not in repr(settings_)


def test_every_source_has_azure_identitys_label() -> None:
    assert LABELS == {
        "service_fabric": "Service Fabric managed identity",
        "app_service": "App Service managed identity",
        "azure_arc": "Azure Arc managed identity",
        "azure_ml": "Azure ML managed identity",
        "cloud_shell": "Cloud Shell managed identity",
        "workload_identity": "workload identity",
        "imds": "IMDS",
        "none": "no managed identity source",
    }


# -- request shapes (§3.4) ----


def test_imds_endpoint_defaults_to_the_imds_address() -> None:
    # conftest replaces IMDS's address with a closed loopback port for every test.
    assert imds_endpoint(None) == imds.DEFAULT_HOST + "/metadata/identity/oauth2/token"
    assert imds_endpoint("") == imds.DEFAULT_HOST + "/metadata/identity/oauth2/token"


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("http://169.254.169.254", "http://169.254.169.254/metadata/identity/oauth2/token"),
        ("http://10.0.0.1:2579", "http://10.0.0.1:2579/metadata/identity/oauth2/token"),
        ("http://10.0.0.1:2579/", "http://10.0.0.1:2579/metadata/identity/oauth2/token"),
        ("10.0.0.1:2579", "http://10.0.0.1:2579/metadata/identity/oauth2/token"),
        ("10.0.0.1:2579//", "http://10.0.0.1:2579/metadata/identity/oauth2/token"),
        (" https://pod-identity.example/ ", "https://pod-identity.example/metadata/identity/oauth2/token"),
    ],
)
def test_imds_endpoint_on_the_pod_identity_host(host: str, url: str) -> None:
    assert imds_endpoint(host) == url


@pytest.mark.parametrize(
    ("identity", "extra"),
    [
        (None, {}),
        (CLIENT, {"client_id": CLIENT.value}),
        (OBJECT, {"object_id": OBJECT.value}),
        (RESOURCE_ID, {"msi_res_id": RESOURCE_ID.value}),
    ],
)
def test_imds_request(identity: UserAssignedIdentity | None, extra: dict[str, str]) -> None:
    url = imds_endpoint("http://169.254.169.254")
    request = build_imds_request(url, RESOURCE, identity)
    assert request.method == "GET"
    assert request.url.copy_with(query=None) == "http://169.254.169.254/metadata/identity/oauth2/token"
    assert query(request) == {"api-version": "2018-02-01", "resource": RESOURCE, **extra}
    assert request.headers["Metadata"] == "true"
    assert "timeout" not in request.extensions  # the client's timeouts apply
    probe = build_imds_request(url, RESOURCE, identity, probe=True)
    assert "metadata" not in probe.headers
    assert query(probe) == query(request)
    assert probe.extensions["timeout"] == {"connect": 1.0, "read": 1.0, "write": 1.0, "pool": 1.0}


@pytest.mark.parametrize(
    ("identity", "extra"),
    [
        (None, {}),
        (CLIENT, {"client_id": CLIENT.value}),
        (OBJECT, {"object_id": OBJECT.value}),
        (RESOURCE_ID, {"mi_res_id": RESOURCE_ID.value}),
    ],
)
def test_app_service_request(identity: UserAssignedIdentity | None, extra: dict[str, str]) -> None:
    request = sources.build_app_service_request(ENDPOINT, RESOURCE, identity, SECRET)
    assert request.method == "GET"
    assert request.url.copy_with(query=None) == ENDPOINT
    assert query(request) == {"api-version": "2019-08-01", "resource": RESOURCE, **extra}
    assert request.headers["X-IDENTITY-HEADER"] == SECRET


def test_service_fabric_request() -> None:
    request = sources.build_service_fabric_request(
        "https://127.0.0.1:2377/metadata/identity", RESOURCE, SECRET
    )
    assert request.method == "GET"
    assert request.url.copy_with(query=None) == "https://127.0.0.1:2377/metadata/identity"
    assert query(request) == {"api-version": "2019-07-01-preview", "resource": RESOURCE}
    assert request.headers["Secret"] == SECRET
    assert "metadata" not in request.headers


def test_azure_ml_request_names_a_client_id_clientid() -> None:
    system = sources.build_azure_ml_request(ENDPOINT, RESOURCE, None, SECRET)
    assert system.method == "GET"
    assert query(system) == {"api-version": "2017-09-01", "resource": RESOURCE}
    assert system.headers["secret"] == SECRET
    user = sources.build_azure_ml_request(ENDPOINT, RESOURCE, CLIENT, SECRET)
    assert query(user) == {"api-version": "2017-09-01", "resource": RESOURCE, "clientid": CLIENT.value}
    for identity in (OBJECT, RESOURCE_ID):
        with pytest.raises(ValueError, match="client_id only"):
            sources.build_azure_ml_request(ENDPOINT, RESOURCE, identity, SECRET)


def test_cloud_shell_request_is_a_form_post() -> None:
    request = sources.build_cloud_shell_request(ENDPOINT, RESOURCE)
    assert request.method == "POST"
    assert request.url == ENDPOINT
    assert request.headers["Metadata"] == "true"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.read().decode()) == {"resource": [RESOURCE]}


@pytest.mark.parametrize(
    ("identity", "extra"),
    [
        (None, {}),
        (CLIENT, {"client_id": CLIENT.value}),
        (OBJECT, {"object_id": OBJECT.value}),
        (RESOURCE_ID, {"msi_res_id": RESOURCE_ID.value}),
    ],
)
def test_arc_request(identity: UserAssignedIdentity | None, extra: dict[str, str]) -> None:
    first = build_arc_request(ENDPOINT, RESOURCE, identity)
    assert first.method == "GET"
    assert query(first) == {"api-version": "2020-06-01", "resource": RESOURCE, **extra}
    assert first.headers["Metadata"] == "true"
    assert "authorization" not in first.headers
    second = build_arc_request(ENDPOINT, RESOURCE, identity, key=SECRET)
    assert query(second) == query(first)
    assert second.headers["Authorization"] == f"Basic {SECRET}"


# -- token parsing (§3.5) ----


def parse(body: Any, **kwargs: Any) -> TokenResult:
    return parse_token(response_for(200, body), requested_at=NOW, source="IMDS", **kwargs)


@pytest.mark.parametrize(
    ("expires_on", "expected"),
    [
        (1_700_003_600, 1_700_003_600),
        ("1700003600", 1_700_003_600),
        (" 1700003600 ", 1_700_003_600),
        ("1700003600.9", 1_700_003_600),
        (1_700_003_600.5, 1_700_003_600),
        ("11/14/2023 23:13:20 +00:00", 1_700_003_600),  # App Service 2017, Linux
        ("11/14/2023 11:13:20 PM +00:00", 1_700_003_600),  # App Service 2017, Windows
        (
            "1/16/2020 5:24:12 AM +00:00",
            int(datetime(2020, 1, 16, 5, 24, 12, tzinfo=timezone.utc).timestamp()),
        ),
        (
            "06/20/2019 02:57:58 +00:00",
            int(datetime(2019, 6, 20, 2, 57, 58, tzinfo=timezone.utc).timestamp()),
        ),
    ],
)
def test_expires_on_forms(expires_on: Any, expected: int) -> None:
    assert parse_expires_on(expires_on) == expected
    result = parse({"access_token": TOKEN, "expires_on": expires_on})
    assert result.expires_on == expected
    assert result.access_token == TOKEN
    assert result.token_type == "Bearer"


@pytest.mark.parametrize(
    "value",
    [
        "11/14/2023 23:13:20",  # no " +00:00"
        "11/14/2023 23:13:20 +01:00",
        "2023-11-14T23:13:20Z",
        "13/14/2023 23:13:20 +00:00",
        "soon",
        "",
        "-5",
        -5,
        True,
        None,
        [1700003600],
        {"at": 1},
        float("nan"),
        float("inf"),
        "1e12",
        10.0**13,
    ],
)
def test_unusable_expires_on(value: Any) -> None:
    assert parse_expires_on(value) is None


def test_unusable_expires_on_in_a_response_is_malformed() -> None:
    with pytest.raises(MalformedResponseError, match=r"missing or invalid field.*expires_on") as caught:
        parse({"access_token": TOKEN, "expires_on": "11/14/2023 23:13:20"})
    assert TOKEN not in str(caught.value)


def test_expires_in_counts_from_the_request_time() -> None:
    result = parse({"access_token": TOKEN, "expires_in": "3599"})
    assert result.expires_on == int(NOW) + 3599
    assert result.refresh_on is None


def test_expires_on_wins_over_expires_in() -> None:
    result = parse({"access_token": TOKEN, "expires_in": 60, "expires_on": 1_700_003_600})
    assert result.expires_on == 1_700_003_600


@pytest.mark.parametrize(
    ("lifetime", "refresh_on"),
    [(7200, int(NOW) + 3600), (86_400, int(NOW) + 43_200), (7199, None), (3600, None), (0, None)],
)
def test_tokens_living_two_hours_refresh_at_half_life(lifetime: int, refresh_on: int | None) -> None:
    assert parse({"access_token": TOKEN, "expires_in": lifetime}).refresh_on == refresh_on
    absolute = parse({"access_token": TOKEN, "expires_on": str(int(NOW) + lifetime)})
    assert absolute.refresh_on == refresh_on


def test_refresh_in_from_the_server_wins() -> None:
    result = parse({"access_token": TOKEN, "expires_in": 86_400, "refresh_in": 600})
    assert result.refresh_on == int(NOW) + 600


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expires_in": 3600}, "access_token"),
        ({"access_token": "", "expires_in": 3600}, "access_token"),
        ({"access_token": 5, "expires_in": 3600}, "access_token"),
        ({"access_token": TOKEN}, "expires_on or expires_in"),
        ({"access_token": TOKEN, "expires_in": "soon"}, "expires_in"),
        ({"access_token": TOKEN, "expires_in": -1}, "expires_in"),
    ],
)
def test_incomplete_token_responses_are_malformed(body: dict[str, Any], field: str) -> None:
    with pytest.raises(MalformedResponseError) as caught:
        parse(body)
    assert field in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert caught.value.status_code == 200


def test_non_json_bodies() -> None:
    html = response_for(200, raw=b"<html>proxy login</html>", content_type="text/html")
    with pytest.raises(SourceUnavailableError, match='unexpected content type "text/html"'):
        parse_token(html, requested_at=NOW, source="IMDS", non_json_unavailable=True)
    # Without the flag (every source but IMDS), or when it says it is JSON, it is malformed.
    with pytest.raises(MalformedResponseError, match="not a JSON object"):
        parse_token(html, requested_at=NOW, source="IMDS")
    garbage = response_for(200, raw=b"{not json", content_type="application/json; charset=utf-8")
    with pytest.raises(MalformedResponseError, match="not a JSON object"):
        parse_token(garbage, requested_at=NOW, source="IMDS", non_json_unavailable=True)
    empty = response_for(200, raw=b"", content_type="application/json")
    with pytest.raises(MalformedResponseError, match="no token"):
        parse_token(empty, requested_at=NOW, source="IMDS", non_json_unavailable=True)
    array = response_for(200, [TOKEN])
    with pytest.raises(MalformedResponseError, match="not a JSON object") as caught:
        parse_token(array, requested_at=NOW, source="IMDS", non_json_unavailable=True)
    assert TOKEN not in str(caught.value)


# -- error bodies ----


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"error": "invalid_request", "error_description": "Identity not found"},
            "invalid_request: Identity not found",
        ),
        (
            {"statusCode": 400, "message": "Unable to load the proper Managed Identity."},
            "Unable to load the proper Managed Identity.",
        ),
        (
            {
                "error": {
                    "code": "SecretHeaderNotFound",
                    "message": "Secret is not found in the request headers.",
                }
            },
            "SecretHeaderNotFound: Secret is not found in the request headers.",
        ),
        ({"Message": "An error has occurred."}, "An error has occurred."),
        ({"error": "x", "error_description": "a\n\n  b"}, "x: a b"),
        ({"other": 1}, ""),
        ([1, 2], ""),
        ("text", ""),
        (None, ""),
    ],
)
def test_server_message_reads_every_shape(body: Any, message: str) -> None:
    assert server_message(body) == message


def test_server_message_is_clipped() -> None:
    message = server_message({"error_description": "x" * 5000})
    assert len(message) == 300
    assert message.endswith("...")


def test_server_error() -> None:
    response = response_for(503, {"error": "unavailable", "error_description": "try later"})
    error = server_error("App Service managed identity", response)
    assert isinstance(error, ServiceError)
    assert error.status_code == 503
    assert error.retryable
    assert error.url == ENDPOINT
    assert str(error) == (
        f"The App Service managed identity endpoint {ENDPOINT} answered HTTP 503: unavailable: try later"
    )
    bare = server_error("IMDS", response_for(403, raw=b"<html/>", content_type="text/html"))
    assert not bare.retryable
    assert str(bare).endswith("answered HTTP 403 (no error message in the body)")
    assert "api-version" not in str(bare)


# -- IMDS probe and retry (§3.6, §3.7) ----


def run_imds(script: Script, *, probe: bool, identity: UserAssignedIdentity | None = None) -> tuple[Any, int]:
    confirmed: list[bool] = []
    flow = imds_flow(
        imds_endpoint("http://169.254.169.254"),
        RESOURCE,
        identity,
        probe=probe,
        policy=IMDS_RETRY,
        clock=lambda: NOW,
        on_available=lambda: confirmed.append(True),
    )
    return run_sync_flow(flow, script), len(confirmed)


def test_imds_without_probe_sends_one_request() -> None:
    script = Script(token_reply(expires_in=3600))
    result, confirmed = run_imds(script, probe=False)
    assert result.access_token == TOKEN
    assert result.expires_on == int(NOW) + 3600
    assert len(script.requests) == 1
    assert script.requests[0].headers["Metadata"] == "true"
    assert confirmed == 1


def test_imds_probe_rejected_with_400_means_present() -> None:
    script = Script(
        reply(400, error="invalid_request", error_description="Required metadata header not specified"),
        token_reply(expires_in=3600),
    )
    result, confirmed = run_imds(script, probe=True, identity=CLIENT)
    assert result.access_token == TOKEN
    probe, real = script.requests
    assert "metadata" not in probe.headers
    assert probe.extensions["timeout"]["connect"] == 1.0
    assert (
        query(probe)
        == query(real)
        == {"api-version": "2018-02-01", "resource": RESOURCE, "client_id": CLIENT.value}
    )
    assert real.headers["Metadata"] == "true"
    assert confirmed == 2


def test_imds_probe_without_answer_is_unavailable_at_once() -> None:
    script = Script("refuse")
    with pytest.raises(SourceUnavailableError) as caught:
        run_imds(script, probe=True)
    assert str(caught.value) == imds.NO_RESPONSE
    assert len(script.requests) == 1  # no retry


@pytest.mark.parametrize("status", [500, 404, 410, 503])
def test_imds_probe_is_never_retried(status: int) -> None:
    script = Script(reply(status), token_reply(expires_in=3600))
    result, _ = run_imds(script, probe=True)
    assert result.access_token == TOKEN
    assert len(script.requests) == 2


def test_imds_probe_403_unreachable_is_unavailable() -> None:
    message = (
        "connecting to 169.254.169.254:80: connecting to 169.254.169.254:80: dial tcp 169.254.169.254:80: "
        "connectex: A socket operation was attempted to an unreachable network."
    )
    script = Script(reply(403, body=message.encode(), headers={"content-type": "text/plain"}))
    with pytest.raises(SourceUnavailableError) as caught:
        run_imds(script, probe=True)
    assert str(caught.value).startswith(
        "ManagedIdentityCredential authentication unavailable. Error: connecting"
    )
    assert "unreachable network" in str(caught.value)
    assert len(script.requests) == 1


@pytest.mark.parametrize(
    ("identity", "wording"),
    [
        (None, "No identity has been assigned to this resource."),
        (CLIENT, "The requested identity has not been assigned to this resource."),
    ],
)
def test_imds_400_means_no_such_identity(identity: UserAssignedIdentity | None, wording: str) -> None:
    script = Script(reply(400, error="invalid_request", error_description="Identity not found"))
    with pytest.raises(SourceUnavailableError) as caught:
        run_imds(script, probe=False, identity=identity)
    assert str(caught.value) == (
        f"ManagedIdentityCredential authentication unavailable. {wording} "
        "Error: invalid_request: Identity not found"
    )
    assert len(script.requests) == 1


def test_imds_real_request_without_answer_is_unavailable() -> None:
    script = Script(*["refuse"] * 6)
    with pytest.raises(SourceUnavailableError, match="no response from the IMDS endpoint"):
        run_imds(script, probe=False)
    assert len(script.requests) == 6  # transport failures are retried like 5xx


def test_imds_gone_twice_then_a_token() -> None:
    script = Script(reply(410), reply(410), token_reply(expires_in=3600))
    result, _ = run_imds(script, probe=False)
    assert result.access_token == TOKEN
    assert len(script.requests) == 3


def test_imds_waits_are_those_of_the_policy() -> None:
    flow = imds_flow(
        imds_endpoint(None),
        RESOURCE,
        None,
        probe=False,
        policy=IMDS_RETRY,
        clock=lambda: NOW,
        on_available=lambda: None,
    )
    script = Script(
        reply(410),
        reply(410),
        reply(500),
        reply(429, headers={"Retry-After": "7"}),
        token_reply(expires_in=60),
    )
    result, sleeps = drive(flow, script)
    assert result.access_token == TOKEN
    assert len(sleeps) == 4
    assert 2.4 <= sleeps[0] <= 3.6  # 410: 3 s +/- 20 %
    assert 4.8 <= sleeps[1] <= 7.2
    assert 0.8 * 3.2 <= sleeps[2] <= 1.2 * 3.2  # 500: 0.8 s base, third retry
    assert sleeps[3] == 7.0  # Retry-After


def test_imds_error_after_retries() -> None:
    script = Script(*[reply(500, error="server_error", error_description="boom")] * 6)
    with pytest.raises(ServiceError) as caught:
        run_imds(script, probe=False)
    assert caught.value.status_code == 500
    assert "boom" in str(caught.value)
    assert len(script.requests) == 6


@pytest.mark.parametrize("status", [404, 408, 410, 429, 500, 502, 503, 504, 599])
def test_imds_policy_retries(status: int) -> None:
    assert status in IMDS_RETRY.retry_statuses
    delay = next_retry_delay(
        IMDS_RETRY, retries_done=0, status=status, retry_after=None, elapsed=0, jitter_sample=0.5
    )
    assert delay is not None
    assert delay > 0


@pytest.mark.parametrize("status", [400, 401, 403, 200])
def test_imds_policy_does_not_retry(status: int) -> None:
    delay = next_retry_delay(
        IMDS_RETRY, retries_done=0, status=status, retry_after=None, elapsed=0, jitter_sample=0.5
    )
    assert delay is None


def test_imds_policy_retries_five_times() -> None:
    assert IMDS_RETRY.max_retries == 5
    for retries_done in range(5):
        assert next_retry_delay(
            IMDS_RETRY, retries_done=retries_done, status=503, retry_after=None, elapsed=0, jitter_sample=0.5
        ) == pytest.approx(0.8 * 2**retries_done)
    assert (
        next_retry_delay(
            IMDS_RETRY, retries_done=5, status=503, retry_after=None, elapsed=0, jitter_sample=0.5
        )
        is None
    )


@pytest.mark.parametrize("jitter", [0.0, 0.999])
def test_imds_410_waits_cover_seventy_seconds_within_the_deadline(jitter: float) -> None:
    elapsed = 0.0
    waits: list[float] = []
    for retries_done in range(IMDS_RETRY.max_retries):
        delay = next_retry_delay(
            IMDS_RETRY,
            retries_done=retries_done,
            status=410,
            retry_after=None,
            elapsed=elapsed,
            jitter_sample=jitter,
        )
        assert delay is not None, f"retry {retries_done + 1} was refused after {elapsed} s"
        waits.append(delay)
        elapsed += delay + 0.05  # each attempt takes a little time
    assert sum(waits) >= 70
    assert elapsed < IMDS_RETRY.deadline
    assert waits == sorted(waits)


def test_imds_policy_honours_retry_after() -> None:
    assert (
        next_retry_delay(
            IMDS_RETRY, retries_done=0, status=429, retry_after=12.0, elapsed=0, jitter_sample=0.0
        )
        == 12.0
    )
    assert (
        next_retry_delay(
            IMDS_RETRY, retries_done=0, status=410, retry_after=0.0, elapsed=0, jitter_sample=0.9
        )
        == 0.0
    )
    # Longer than the policy honours: give up now rather than hang.
    assert (
        next_retry_delay(
            IMDS_RETRY, retries_done=0, status=503, retry_after=600.0, elapsed=0, jitter_sample=0.0
        )
        is None
    )


# -- Azure Arc (§3.4 key-file rules) ----


@pytest.fixture
def key_directory(tmp_path: Path) -> Path:
    directory = tmp_path / "tokens"
    directory.mkdir()
    return directory


def write_key(directory: Path, name: str = "abc.key", content: str = SECRET) -> Path:
    path = directory / name
    path.write_text(content)
    return path


def test_read_key_file(key_directory: Path) -> None:
    path = write_key(key_directory)
    assert read_key_file(f"Basic realm={path}", str(key_directory)) == SECRET
    assert read_key_file(f'Basic realm="{path}"', str(key_directory)) == SECRET
    assert read_key_file(f"basic   REALM={path}", str(key_directory)) == SECRET
    exactly = write_key(key_directory, "max.key", "k" * azure_arc.MAX_KEY_FILE_SIZE)
    assert read_key_file(f"Basic realm={exactly}", str(key_directory)) == "k" * 4096


@pytest.mark.parametrize("challenge", [None, ""])
def test_arc_challenge_missing(key_directory: Path, challenge: str | None) -> None:
    with pytest.raises(ArcKeyFileError, match="has no WWW-Authenticate header"):
        read_key_file(challenge, str(key_directory))


@pytest.mark.parametrize(
    "challenge",
    [
        "Basic",
        "Basic realm=",
        "Basic realm=  ",
        "Bearer realm=/x.key",
        "Digest realm=/x.key",
        "realm=/x.key",
        "Basic /x.key",
    ],
)
def test_arc_challenge_garbled(key_directory: Path, challenge: str) -> None:
    with pytest.raises(ArcKeyFileError, match="unrecognizable WWW-Authenticate header"):
        read_key_file(challenge, str(key_directory))


def test_arc_key_file_rules(key_directory: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    nested = key_directory / "nested"
    nested.mkdir()
    cases = {
        str(write_key(elsewhere)): "it is not in",
        str(write_key(nested)): "it is not in",
        f"{key_directory}/../elsewhere/abc.key": "it is not in",
        "abc.key": "it is not in",
        str(write_key(key_directory, "abc.txt")): "it does not have the .key extension",
        str(write_key(key_directory, "abc")): "it does not have the .key extension",
        str(write_key(key_directory, "big.key", "k" * 4097)): "it is larger than 4096 bytes",
        str(key_directory / "missing.key"): "it cannot be read",
    }
    for path, problem in cases.items():
        with pytest.raises(ArcKeyFileError) as caught:
            read_key_file(f"Basic realm={path}", str(key_directory))
        assert str(caught.value).startswith(
            f"Azure Arc managed identity: the key file path is invalid: {path}: "
        )
        assert problem in str(caught.value)
        assert SECRET not in str(caught.value)


def test_arc_key_file_directory_symlink_is_resolved(key_directory: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(key_directory)
    path = write_key(key_directory)
    assert read_key_file(f"Basic realm={link / path.name}", str(key_directory)) == SECRET


def test_arc_default_key_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(azure_arc.sys, "platform", "linux")
    assert azure_arc.default_key_directory() == "/var/opt/azcmagent/tokens"
    monkeypatch.setattr(azure_arc.sys, "platform", "win32")
    monkeypatch.setenv("PROGRAMDATA", "C:\\ProgramData")
    assert azure_arc.default_key_directory() == os.path.join(
        "C:\\ProgramData", "AzureConnectedMachineAgent", "Tokens"
    )
    monkeypatch.delenv("PROGRAMDATA")
    with pytest.raises(ArcKeyFileError, match="PROGRAMDATA"):
        azure_arc.default_key_directory()
    monkeypatch.setattr(azure_arc.sys, "platform", "darwin")
    with pytest.raises(ArcKeyFileError, match=r"not supported on this platform \(darwin\)"):
        azure_arc.default_key_directory()


def challenge(path: Path | str) -> Any:
    return reply(401, headers={"WWW-Authenticate": f"Basic realm={path}"}, error="unauthorized")


def run_arc(script: Script, directory: Path, identity: UserAssignedIdentity | None = None) -> Any:
    flow = arc_flow(
        ENDPOINT, RESOURCE, identity, key_directory=str(directory), policy=NO_RETRY, clock=lambda: NOW
    )
    return run_sync_flow(flow, script)


def test_arc_flow(key_directory: Path) -> None:
    path = write_key(key_directory)
    script = Script(challenge(path), token_reply(expires_in="3600", resource=RESOURCE))
    result = run_arc(script, key_directory)
    assert result.access_token == TOKEN
    assert result.expires_on == int(NOW) + 3600
    first, second = script.requests
    assert "authorization" not in first.headers
    assert first.headers["Metadata"] == second.headers["Metadata"] == "true"
    assert second.headers["Authorization"] == f"Basic {SECRET}"
    assert query(first) == query(second) == {"api-version": "2020-06-01", "resource": RESOURCE}


@pytest.mark.parametrize(
    ("identity", "echo"),
    [
        (CLIENT, {"client_id": CLIENT.value.upper()}),
        (OBJECT, {"object_id": OBJECT.value}),
        (RESOURCE_ID, {"msi_res_id": RESOURCE_ID.value.lower()}),
        (RESOURCE_ID, {"mi_res_id": RESOURCE_ID.value}),
    ],
)
def test_arc_user_assigned_identity_must_be_echoed(
    key_directory: Path, identity: UserAssignedIdentity, echo: dict[str, str]
) -> None:
    path = write_key(key_directory)
    script = Script(challenge(path), token_reply(expires_in=3600, **echo))
    assert run_arc(script, key_directory, identity).access_token == TOKEN
    param = {"client_id": "client_id", "object_id": "object_id", "resource_id": "msi_res_id"}[identity.kind]
    assert query(script.requests[1])[param] == identity.value


@pytest.mark.parametrize(
    "echo",
    [
        {},
        {"client_id": "33333333-aaaa-bbbb-cccc-000000000003"},
        {"object_id": CLIENT.value},
        {"client_id": 5},
    ],
)
def test_arc_token_for_another_identity_is_refused(key_directory: Path, echo: dict[str, Any]) -> None:
    path = write_key(key_directory)
    script = Script(challenge(path), token_reply(expires_in=3600, **echo))
    with pytest.raises(MalformedResponseError) as caught:
        run_arc(script, key_directory, CLIENT)
    assert str(caught.value).startswith(
        "Azure Arc did not confirm the requested user-assigned managed identity in the token response. "
        "The agent likely does not support user-assigned managed identities and returned the "
        "system-assigned identity"
    )
    assert TOKEN not in str(caught.value)


def test_arc_first_answer_must_be_a_challenge(key_directory: Path) -> None:
    script = Script(token_reply(expires_in=3600))
    with pytest.raises(
        MalformedResponseError, match="answered HTTP 200 instead of the expected 401 challenge"
    ):
        run_arc(script, key_directory)
    assert len(script.requests) == 1
    failing = Script(reply(404, error="not_found", error_description="no such resource"))
    with pytest.raises(ServiceError, match="answered HTTP 404: not_found: no such resource"):
        run_arc(failing, key_directory)


def test_arc_bad_challenge_sends_nothing_more(key_directory: Path, tmp_path: Path) -> None:
    for first in (
        reply(401, error="unauthorized"),
        reply(401, headers={"WWW-Authenticate": "Bearer authorization_uri=x"}),
        challenge(write_key(tmp_path)),
    ):
        script = Script(first)
        with pytest.raises(ArcKeyFileError):
            run_arc(script, key_directory)
        assert len(script.requests) == 1


def test_arc_error_with_the_key(key_directory: Path) -> None:
    path = write_key(key_directory)
    script = Script(challenge(path), reply(400, error="invalid_request", error_description="bad resource"))
    with pytest.raises(
        ServiceError, match=r"Azure Arc managed identity endpoint .* answered HTTP 400"
    ) as caught:
        run_arc(script, key_directory)
    assert SECRET not in str(caught.value)


# -- Service Fabric pinning ----


@pytest.mark.parametrize(
    "written",
    [
        "0123456789ABCDEF0123456789ABCDEF01234567",
        "0123456789abcdef0123456789abcdef01234567",
        "01 23 45 67 89 ab cd ef 01 23 45 67 89 ab cd ef 01 23 45 67",
        "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67",
        "\t0123456789ABCDEF0123456789ABCDEF01234567\n",
    ],
)
def test_normalize_thumbprint(written: str) -> None:
    assert normalize_thumbprint(written) == "0123456789ABCDEF0123456789ABCDEF01234567"


@pytest.mark.parametrize(
    "written",
    [
        "",
        "0123456789ABCDEF0123456789ABCDEF0123456",  # 39
        "0123456789ABCDEF0123456789ABCDEF012345678",  # 41
        "0123456789ABCDEF0123456789ABCDEF0123456G",
        "0123456789ABCDEF0123456789ABCDEF01234567" * 2,  # SHA-256 length
        "01-23-45-67-89-AB-CD-EF-01-23-45-67-89-AB-CD-EF-01-23-45-67",
    ],
)
def test_normalize_thumbprint_rejects(written: str) -> None:
    with pytest.raises(ValueError, match="40 hexadecimal digits of a SHA-1"):
        normalize_thumbprint(written)
    with pytest.raises(ValueError):
        pinned_transport(written)


@PROPERTY
@given(
    digest=st.binary(min_size=20, max_size=20),
    lower=st.booleans(),
    separator=st.sampled_from(["", ":", " ", "\t", "\n", " : "]),
)
def test_normalize_thumbprint_property(digest: bytes, lower: bool, separator: str) -> None:
    hex_ = digest.hex() if lower else digest.hex().upper()
    written = separator.join(hex_[i : i + 2] for i in range(0, 40, 2))
    assert normalize_thumbprint(written) == digest.hex().upper()


@PROPERTY
@given(st.text())
def test_normalize_thumbprint_accepts_only_sha1_hex(text: str) -> None:
    try:
        result = normalize_thumbprint(text)
    except ValueError:
        return
    assert len(result) == 40
    assert set(result) <= set("0123456789ABCDEF")
    assert bytes.fromhex(result)


def tls_token(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "access_token": TOKEN,
            "expires_on": str(int(NOW) + 3600),
            "secret": request.headers.get("secret"),
        },
    )


@pytest.fixture
def https_server() -> Iterator[HttpsServer]:
    with HttpsServer(tls_token) as server:
        yield server


def peer_thumbprint(server: HttpsServer) -> str:
    """SHA-1 of the DER certificate the server presents, read over a real TLS connection."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    import socket

    with socket.create_connection(("127.0.0.1", server.port)) as raw, context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der
    return hashlib.sha1(der).hexdigest().upper()


def test_pinned_transport_talks_to_the_pinned_certificate_only(https_server: HttpsServer) -> None:
    thumbprint = peer_thumbprint(https_server)
    assert thumbprint == https_server.certificate_thumbprint
    colons = ":".join(thumbprint[i : i + 2].lower() for i in range(0, 40, 2))
    with httpx.Client(transport=pinned_transport(colons)) as client:
        response = client.get(https_server.url + "/token", headers={"Secret": SECRET})
    assert response.json()["access_token"] == TOKEN
    assert response.json()["secret"] == SECRET
    assert https_server.stats.requests == 1
    wrong = "00" * 20
    with (
        httpx.Client(transport=pinned_transport(wrong)) as client,
        pytest.raises(CertificatePinError) as caught,
    ):
        client.get(https_server.url + "/token", headers={"Secret": SECRET})
    assert f"thumbprint {thumbprint}, not the one in IDENTITY_SERVER_THUMBPRINT" in str(caught.value)
    assert https_server.stats.requests == 1  # the request never left


async def test_pinned_async_transport(https_server: HttpsServer) -> None:
    thumbprint = peer_thumbprint(https_server)
    async with httpx.AsyncClient(transport=pinned_async_transport(thumbprint)) as client:
        response = await client.get(https_server.url + "/token", headers={"Secret": SECRET})
    assert response.json()["secret"] == SECRET
    async with httpx.AsyncClient(transport=pinned_async_transport("AB" * 20)) as client:
        with pytest.raises(CertificatePinError, match="not the one in IDENTITY_SERVER_THUMBPRINT"):
            await client.get(https_server.url + "/token", headers={"Secret": SECRET})
    assert https_server.stats.requests == 1


def test_pinned_transport_ignores_proxy_variables(
    https_server: HttpsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    with httpx.Client(
        transport=pinned_transport(https_server.certificate_thumbprint), trust_env=False
    ) as client:
        assert client.get(https_server.url + "/token").status_code == 200


def test_pinning_module_exports() -> None:
    assert pinning.__all__ == [
        "CertificatePinError",
        "normalize_thumbprint",
        "pinned_async_transport",
        "pinned_transport",
    ]
    assert issubclass(CertificatePinError, httpx.ConnectError)


# -- property tests: every parser of network input ----

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
TOKEN_KEYS = [
    "access_token",
    "expires_on",
    "expires_in",
    "refresh_in",
    "token_type",
    "error",
    "error_description",
    "message",
]
TOKENISH = st.dictionaries(st.sampled_from(TOKEN_KEYS), JSON, max_size=6)
CONTENT_TYPES = st.sampled_from(
    [None, "application/json", "text/html", "text/plain", "application/json; charset=utf-8", ""]
)


@PROPERTY
@given(JSON)
def test_parse_expires_on_never_raises(value: Any) -> None:
    result = parse_expires_on(value)
    assert result is None or (isinstance(result, int) and not isinstance(result, bool))


@PROPERTY
@given(st.integers(min_value=0, max_value=10**12 - 1), st.sampled_from(["", " ", "\t"]))
def test_numeric_expires_on_round_trips(value: int, pad: str) -> None:
    assert parse_expires_on(value) == value
    assert parse_expires_on(f"{pad}{value}{pad}") == value


@PROPERTY
@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 31)), st.booleans())
def test_date_expires_on_round_trips(moment: datetime, twelve_hour: bool) -> None:
    moment = moment.replace(microsecond=0)
    if twelve_hour:
        hour = moment.hour % 12 or 12
        meridiem = "AM" if moment.hour < 12 else "PM"
        text = f"{moment.month}/{moment.day}/{moment.year:04d} {hour}:{moment:%M:%S} {meridiem} +00:00"
    else:
        text = f"{moment:%m/%d}/{moment.year:04d} {moment:%H:%M:%S} +00:00"
    assert parse_expires_on(text) == int(moment.replace(tzinfo=timezone.utc).timestamp())


def check_parse_token(raw: bytes, content_type: str | None, status: int = 200) -> None:
    response = response_for(status, raw=raw, content_type=content_type)
    for flag in (False, True):
        try:
            result = parse_token(response, requested_at=NOW, source="IMDS", non_json_unavailable=flag)
        except SourceUnavailableError:
            assert flag
            continue
        except MalformedResponseError as exc:
            failure: MalformedResponseError = exc
            assert failure.status_code == status
            continue
        assert isinstance(result, TokenResult)
        assert isinstance(result.access_token, str)
        assert result.access_token
        assert isinstance(result.token_type, str)
        assert isinstance(result.expires_on, int)
        assert result.refresh_on is None or isinstance(result.refresh_on, int)


@PROPERTY
@given(st.binary(max_size=300), CONTENT_TYPES)
def test_parse_token_arbitrary_bytes(raw: bytes, content_type: str | None) -> None:
    check_parse_token(raw, content_type)


@PROPERTY
@given(JSON | TOKENISH, CONTENT_TYPES)
def test_parse_token_arbitrary_json(body: Any, content_type: str | None) -> None:
    check_parse_token(json.dumps(body).encode(), content_type)


@PROPERTY
@given(TOKENISH.map(lambda body: {**body, "access_token": TOKEN}), st.sampled_from([200, 201, 203]))
def test_parse_token_tokenish_bodies(body: dict[str, Any], status: int) -> None:
    response = response_for(status, body)
    try:
        result = parse_token(response, requested_at=NOW, source="IMDS")
    except MalformedResponseError as exc:
        message = str(exc)
        assert TOKEN not in message
        return
    assert result.access_token == TOKEN


def test_parse_token_survives_deep_nesting() -> None:
    check_parse_token(b"[" * 100_000 + b"]" * 100_000, "application/json")
    check_parse_token(b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "application/json")


@PROPERTY
@given(
    JSON
    | st.dictionaries(
        st.sampled_from(["error", "error_description", "message", "Message"]), JSON | st.text(), max_size=4
    )
)
def test_server_message_never_raises(body: Any) -> None:
    message = server_message(body)
    assert isinstance(message, str)
    assert len(message) <= 300


@PROPERTY
@given(
    st.dictionaries(
        st.sampled_from(["error", "error_description", "message", "Message"]),
        st.text(min_size=200),
        min_size=1,
    )
)
def test_server_message_of_long_fields_is_clipped(body: dict[str, str]) -> None:
    assert len(server_message(body)) <= 300


@pytest.fixture(scope="module")
def property_key_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("arc-tokens")
    (directory / "good.key").write_text("key")
    return directory


PATH_TEXT = st.lists(
    st.characters(codec="utf-8") | st.sampled_from(["\x00", "/", "..", ".key", '"', "good"]), max_size=12
).map("".join)


@PROPERTY
@given(challenge=st.text() | st.from_regex(r"\A\s*[Bb]asic\s+realm\s*=.*", fullmatch=True))
def test_read_key_file_arbitrary_challenges(property_key_directory: Path, challenge: str) -> None:
    with contextlib.suppress(ArcKeyFileError):
        read_key_file(challenge, str(property_key_directory))


@PROPERTY
@given(name=PATH_TEXT, quote=st.booleans(), suffix=st.sampled_from(["", ".key", "\x00.key", "/.key"]))
def test_read_key_file_arbitrary_paths_in_the_directory(
    property_key_directory: Path, name: str, quote: bool, suffix: str
) -> None:
    path = f"{property_key_directory}/{name}{suffix}"
    header = f'Basic realm="{path}"' if quote else f"Basic realm={path}"
    try:
        content = read_key_file(header, str(property_key_directory))
    except ArcKeyFileError:
        return
    assert content == "key"


def test_read_key_file_nul_byte(property_key_directory: Path) -> None:
    for header in (
        f"Basic realm={property_key_directory}/a\x00b.key",
        f"Basic realm={property_key_directory}\x00/good.key",
        "Basic realm=\x00",
    ):
        with pytest.raises(ArcKeyFileError):
            read_key_file(header, str(property_key_directory))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_read_key_file_refuses_a_named_pipe(tmp_path: Path) -> None:
    # Opening a FIFO would block until someone writes to it: it is refused before any open().
    fifo = tmp_path / "agent.key"
    os.mkfifo(fifo)
    with pytest.raises(ArcKeyFileError, match="it is not a regular file"):
        read_key_file(f"Basic realm={fifo}", str(tmp_path))


def test_a_transport_error_that_cannot_improve_is_not_retried() -> None:
    from protocol.flows import exchange
    from protocol.retry import RetryPolicy

    sent: list[httpx.Request] = []

    def send(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        raise TransportError("pinned certificate mismatch", retryable=False)

    flow = exchange(lambda: httpx.Request("GET", "https://127.0.0.1/x"), RetryPolicy(max_retries=3))
    with pytest.raises(TransportError, match="pinned certificate mismatch"):
        run_sync_flow(flow, send)
    assert len(sent) == 1


def test_pin_errors_translate_to_unretryable_transport_errors() -> None:
    from protocol.errors import translate_transport_error

    request = httpx.Request("GET", "https://127.0.0.1:1/token?secret=x")
    error = translate_transport_error(pinning.CertificatePinError("thumbprint mismatch"), request)
    assert error.retryable is False
    assert "thumbprint mismatch" in error.message
    assert "secret" not in error.message
    plain = translate_transport_error(httpx.ConnectError("refused"), request)
    assert plain.retryable is True


def test_every_managed_identity_error_is_a_protocol_error() -> None:
    for cls in (ArcKeyFileError, SourceUnavailableError, MalformedResponseError, ServiceError):
        assert issubclass(cls, ProtocolError)
