"""Azure Pipelines' OIDC token endpoint, the first hop of ``AzurePipelinesCredential``.

The credential (reference §4.6) posts to ``$SYSTEM_OIDCREQUESTURI?api-version=7.1&
serviceConnectionId=<id>`` with ``Authorization: Bearer <System.AccessToken>``,
``Content-Type: application/json`` and ``X-TFS-FedAuthRedirect: Suppress``, and uses the
``oidcToken`` of the JSON answer as the client assertion of a client-credentials request. In Azure
DevOps that URI is ``https://dev.azure.com/{org}/{projectId}/_apis/distributedtask/hubs/build/
plans/{planId}/jobs/{jobId}/oidctoken``; the mock answers any path ending in
``_apis/distributedtask/hubs/{hub}/plans/{plan}/jobs/{job}/oidctoken`` (endpoint ``pipelines-oidc``).

Checks, in order:

* method ``POST`` (else 405);
* ``Authorization: Bearer`` with a registered system access token. A bad or missing token gets
  401 ``{"message": ...}`` when ``X-TFS-FedAuthRedirect: Suppress`` was sent, else what Azure
  DevOps does for a browser: 302 to an HTML sign-in page, which the mock serves at ``/_signin``
  (endpoint ``pipelines-signin``, 200 ``text/html``) so a client that follows redirects ends up
  holding HTML, the failure mode the header exists to prevent;
* ``api-version`` present (400, Azure DevOps' ``VssVersionNotSpecifiedException``) and ``7.1``
  (or a ``7.1-preview`` form; else 400);
* ``Content-Type: application/json`` (else 415, mock's choice);
* ``serviceConnectionId`` present (400) and naming a service connection the presented access token
  may use (else 404).

Success is 200 ``{"oidcToken": "<JWT>"}`` minted by the organization's
:class:`~conformance.mock.federation.ExternalIssuer` (``iss`` ``https://vstoken.dev.azure.com/
<organization id>``, ``sub`` ``sc://<org>/<project>/<connection name>``, ``aud``
``api://AzureADTokenExchange``). The token lives :data:`OIDC_TOKEN_LIFETIME` seconds (mock's
choice). Error texts are the mock's; only statuses and body shapes are load-bearing.
"""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any
from urllib.parse import quote

import httpx

from conformance.mock.context import RequestContext
from conformance.mock.federation import ExternalIssuer
from conformance.mock.models import PipelineServiceConnection
from conformance.mock.state import AuthorityState

__all__ = [
    "API_VERSION",
    "OIDC_TOKEN_LIFETIME",
    "SIGNIN_PATH",
    "is_oidc_path",
    "oidc_token",
    "register",
    "signin_page",
]

API_VERSION = "7.1"
OIDC_TOKEN_LIFETIME = 600
SIGNIN_PATH = "/_signin"
ISSUER_PREFIX = "https://vstoken.dev.azure.com/"
_SUPPRESS_HEADER = "x-tfs-fedauthredirect"


def is_oidc_path(lower_segments: tuple[str, ...]) -> bool:
    """Whether lower-cased path segments end in ``_apis/distributedtask/hubs/{hub}/plans/{plan}/
    jobs/{job}/oidctoken``."""
    tail = lower_segments[-9:]
    return (
        len(tail) == 9
        and tail[:3] == ("_apis", "distributedtask", "hubs")
        and tail[4] == "plans"
        and tail[6] == "jobs"
        and tail[8] == "oidctoken"
    )


def register(
    state: AuthorityState,
    *,
    tenant_id: str,
    client_id: str,
    service_connection_id: str,
    system_access_token: str,
    name: str,
    organization: str,
    project: str,
) -> PipelineServiceConnection:
    """Add (or replace) a service connection; each organization gets one issuer (and key)."""
    with state.lock:
        issuer = state.pipeline_issuers.get(organization.lower())
        if issuer is None:
            issuer = ExternalIssuer(ISSUER_PREFIX + str(uuid.uuid4()))
            state.pipeline_issuers[organization.lower()] = issuer
        connection = PipelineServiceConnection(
            tenant_id=tenant_id,
            client_id=client_id,
            service_connection_id=service_connection_id,
            name=name,
            organization=organization,
            organization_id=issuer.issuer.removeprefix(ISSUER_PREFIX),
            project=project,
            project_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{organization}/{project}".lower())),
            plan_id=str(uuid.uuid4()),
            job_id=str(uuid.uuid4()),
            system_access_token=system_access_token,
            issuer=issuer,
        )
        state.pipeline_connections[service_connection_id.lower()] = connection
    return connection


def _message(status: int, message: str, type_key: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"message": message}
    if type_key is not None:
        body["typeKey"] = type_key
    return httpx.Response(
        status,
        headers={"content-type": "application/json; charset=utf-8"},
        content=json.dumps(body).encode("utf-8"),
    )


def _bearer(ctx: RequestContext) -> str | None:
    scheme, _, token = ctx.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _known_token(state: AuthorityState, token: str | None) -> bool:
    if token is None:
        return False
    return any(
        secrets.compare_digest(token.encode(), c.system_access_token.encode())
        for c in state.pipeline_connections.values()
    )


def oidc_token(state: AuthorityState, ctx: RequestContext) -> httpx.Response:
    """``POST .../oidctoken?api-version=7.1&serviceConnectionId=<id>`` (reference §4.6)."""
    if ctx.request.method != "POST":
        return _message(405, "The requested resource does not support this HTTP method.")
    token = _bearer(ctx)
    if not _known_token(state, token):
        if ctx.headers.get(_SUPPRESS_HEADER, "").lower() == "suppress":
            return _message(401, "TF400813: The user is not authorized to access this resource.")
        reply_to = quote(str(ctx.request.url), safe="")
        return httpx.Response(
            302,
            headers={
                "location": f"{ctx.origin}{SIGNIN_PATH}?realm={ctx.host}&reply_to={reply_to}",
                "content-type": "text/html; charset=utf-8",
            },
            content=b'<html><body>Object moved to <a href="' + SIGNIN_PATH.encode() + b'">here</a>.'
            b"</body></html>",
        )
    api_version = ctx.query.get("api-version")
    if not api_version:
        return _message(
            400,
            f'No api-version was supplied for the "{ctx.request.method}" request. The version must be '
            'supplied as a query parameter (e.g. "?api-version=7.1").',
            "VssVersionNotSpecifiedException",
        )
    if api_version != API_VERSION and not api_version.startswith(API_VERSION + "-preview"):
        return _message(
            400,
            f"The requested REST API version of {api_version[:40]} is not supported.",
            "VssInvalidApiVersion",
        )
    content_type = ctx.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return _message(415, "The request must have Content-Type: application/json.")
    connection_id = ctx.query.get("serviceConnectionId")
    if not connection_id:
        return _message(400, "The serviceConnectionId query parameter is required.")
    connection = state.pipeline_connections.get(connection_id.lower())
    if connection is None or token != connection.system_access_token:
        return _message(
            404,
            f"Service connection {connection_id[:64]} was not found or this job is not authorized to use it.",
        )
    oidc = connection.issuer.mint(connection.subject, lifetime=OIDC_TOKEN_LIFETIME, now=state.now())
    return httpx.Response(
        200,
        headers={"content-type": "application/json; charset=utf-8"},
        content=json.dumps({"oidcToken": oidc}).encode("utf-8"),
    )


def signin_page(state: AuthorityState, ctx: RequestContext) -> httpx.Response:
    """``GET /_signin``: the HTML page a redirected (unsuppressed) unauthenticated request lands on."""
    return httpx.Response(
        200,
        headers={"content-type": "text/html; charset=utf-8"},
        content=b"<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head>"
        b"<body><p>Sign in to your account.</p></body></html>",
    )
