"""Managed-identity endpoints: IMDS, App Service, Service Fabric, Azure Arc, Azure ML, Cloud Shell.

Request shapes follow reference §3.4, user-assigned parameter names §3.2 and response bodies §3.5.
Clients take every endpoint but IMDS verbatim from environment variables, so each source gets its
own path here; IMDS keeps its real path because clients replace only its host
(``AZURE_POD_IDENTITY_AUTHORITY_HOST``).

===============  ======  ==================================================  ==========================
endpoint name    method  path                                                 authentication
===============  ======  ==================================================  ==========================
imds             GET     ``/metadata/identity/oauth2/token``                  ``Metadata: true``
app-service      GET     ``/appservice/msi/token``                            ``X-IDENTITY-HEADER``
service-fabric   GET     ``/servicefabric/metadata/identity/oauth2/token``    ``Secret``
arc              GET     ``/arc/metadata/identity/oauth2/token``              ``Metadata`` + key file
azure-ml         GET     ``/azureml/msi/token``                               ``secret``
cloud-shell      POST    ``/cloudshell/oauth2/token``                         ``Metadata: true``
===============  ======  ==================================================  ==========================

Each service has its own error body shape and the mock keeps it: IMDS, Arc and Cloud Shell answer
``{"error", "error_description"}``, App Service and Azure ML ``{"statusCode", "message"}``,
Service Fabric ``{"error": {"code", "message"}}``. The codes Service Fabric uses
(``SecretHeaderNotFound``, ``ManagedIdentityNotFound``, ``ArgumentNullOrEmpty``) are the ones the
reference names; message texts, and codes marked "mock's choice", are not confirmed. Unknown query
parameters are ignored, as the services do: a user-assigned id under a name the source does not
know (the async client's literal ``resource_id`` at IMDS, ``client_id`` at Azure ML) selects the
system-assigned identity, which :meth:`describe_token` then reveals.

Every issued token is recorded as an :class:`IssuedToken` with ``grant_type``
``"managed_identity:<source>"``, the identity's client id and ``scopes == (resource,)``.
"""

from __future__ import annotations

import enum
import json
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime, timezone
from typing import Any

import httpx

from conformance.mock.context import RequestContext
from conformance.mock.models import IssuedToken, ManagedIdentity
from conformance.mock.state import AuthorityState, new_secret

__all__ = [
    "ANSWERS",
    "CLOUD_SHELL_CLIENT_ID",
    "PATHS",
    "SOURCES",
    "environment",
    "find_identity",
    "register",
]

#: The sources, which are also the endpoint names requests are recorded under.
SOURCES = ("imds", "app-service", "service-fabric", "arc", "azure-ml", "cloud-shell")
#: Mock path of each source.
PATHS: dict[str, str] = {
    "imds": "/metadata/identity/oauth2/token",
    "app-service": "/appservice/msi/token",
    "service-fabric": "/servicefabric/metadata/identity/oauth2/token",
    "arc": "/arc/metadata/identity/oauth2/token",
    "azure-ml": "/azureml/msi/token",
    "cloud-shell": "/cloudshell/oauth2/token",
}
#: ``client_id`` recorded for Cloud Shell tokens, which belong to the signed-in user (mock's choice).
CLOUD_SHELL_CLIENT_ID = "ce11a5be-11c0-4d5e-9a8f-c0de5be11000"

APP_SERVICE_API_VERSION = "2019-08-01"
SERVICE_FABRIC_API_VERSION = "2019-07-01-preview"
AZURE_ML_API_VERSION = "2017-09-01"
#: IMDS accepts its dated versions from 2018-02-01 on (reference §3.4 sends that one).
IMDS_MIN_API_VERSION = "2018-02-01"
#: Arc's version (reference §3.4); later dated versions are accepted too.
ARC_MIN_API_VERSION = "2020-06-01"
#: App Service 2017 ``expires_on`` (reference §3.5), always UTC here.
APP_SERVICE_2017_DATE = "%m/%d/%Y %H:%M:%S +00:00"

#: Wire name -> identity field, per source (reference §3.2, msal 1.39.0 names).
_IMDS_IDS = {"client_id": "client_id", "object_id": "object_id", "msi_res_id": "resource_id"}
_APP_SERVICE_IDS = {
    "client_id": "client_id",
    "object_id": "object_id",
    "principal_id": "object_id",  # App Service's alias of object_id
    "mi_res_id": "resource_id",
}
_AZURE_ML_IDS = {"clientid": "client_id"}
#: Any of these asks for a user-assigned identity, which Service Fabric and Cloud Shell do not have.
_ANY_ID_NAMES = (
    "client_id",
    "clientid",
    "object_id",
    "principal_id",
    "resource_id",
    "msi_res_id",
    "mi_res_id",
)
_DATED_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}")

Requested = list[tuple[str, str, str]]  # (wire name, identity field, value)
Answer = Callable[[AuthorityState, RequestContext], httpx.Response]


class _Miss(enum.Enum):
    """Why no identity was chosen."""

    MANY = "more than one user-assigned id"
    UNKNOWN = "no such identity"
    NO_SYSTEM = "no system-assigned identity"


# -- registry ----------------------------------------------------------------------------------------
def register(
    state: AuthorityState,
    *,
    client_id: str,
    object_id: str,
    resource_id: str,
    tenant_id: str,
    system_assigned: bool,
) -> ManagedIdentity:
    """Add (or replace, by client id) an identity; a second system-assigned one is a ``ValueError``."""
    identity = ManagedIdentity(client_id, object_id, resource_id, tenant_id, system_assigned)
    with state.lock:
        key = client_id.lower()
        if system_assigned:
            for other in state.managed_identities.values():
                if other.system_assigned and other.client_id.lower() != key:
                    raise ValueError(
                        f"system-assigned identity {other.client_id!r} exists already; a resource has "
                        "at most one (remove it first)"
                    )
        state.managed_identities[key] = identity
    return identity


def find_identity(state: AuthorityState, field: str, value: str) -> ManagedIdentity | None:
    """The identity whose ``field`` (``client_id``/``object_id``/``resource_id``) is ``value``.

    Ids are compared case-insensitively (GUIDs, and ARM resource ids, are case-insensitive).
    """
    wanted = value.lower()
    for identity in state.managed_identities.values():
        if str(getattr(identity, field)).lower() == wanted:
            return identity
    return None


def _system(state: AuthorityState) -> ManagedIdentity | None:
    return next((i for i in state.managed_identities.values() if i.system_assigned), None)


def _requested(values: Mapping[str, str], names: Mapping[str, str]) -> Requested:
    """The user-assigned ids present (non-empty) in ``values`` under this source's ``names``."""
    return [(wire, field, values[wire]) for wire, field in names.items() if values.get(wire)]


def _choose(state: AuthorityState, requested: Requested) -> ManagedIdentity | _Miss:
    if len(requested) > 1:
        return _Miss.MANY
    if requested:
        _, field, value = requested[0]
        return find_identity(state, field, value) or _Miss.UNKNOWN
    return _system(state) or _Miss.NO_SYSTEM


def environment(
    state: AuthorityState, source: str, origin: str, *, thumbprint: str | None = None
) -> dict[str, str]:
    """Exactly the environment variables that select ``source`` at a mock served at ``origin``.

    The variable sets are reference §3.1's selection rules; ``thumbprint`` is required for
    ``service-fabric`` (whose origin must be ``https``).
    """
    base = origin.rstrip("/")
    if source not in PATHS:
        raise ValueError(f"unknown managed-identity source {source!r}; expected one of {SOURCES}")
    endpoint = base + PATHS[source]
    if source == "imds":
        return {"AZURE_POD_IDENTITY_AUTHORITY_HOST": base}
    if source == "app-service":
        return {"IDENTITY_ENDPOINT": endpoint, "IDENTITY_HEADER": state.identity_header}
    if source == "service-fabric":
        if not base.lower().startswith("https://"):
            raise ValueError(f"Service Fabric's endpoint is HTTPS; {origin!r} is not an https origin")
        if not thumbprint:
            raise ValueError("Service Fabric needs the server certificate thumbprint")
        return {
            "IDENTITY_ENDPOINT": endpoint,
            "IDENTITY_HEADER": state.identity_header,
            "IDENTITY_SERVER_THUMBPRINT": thumbprint,
        }
    if source == "arc":
        return {"IDENTITY_ENDPOINT": endpoint, "IMDS_ENDPOINT": base}
    if source == "azure-ml":
        return {"MSI_ENDPOINT": endpoint, "MSI_SECRET": state.msi_secret}
    return {"MSI_ENDPOINT": endpoint}  # cloud-shell


# -- shared helpers ----------------------------------------------------------------------------------
def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        headers={"content-type": "application/json; charset=utf-8", **(headers or {})},
        content=json.dumps(body).encode("utf-8"),
    )


def _oauth_error(status: int, error: str, description: str, **headers: str) -> httpx.Response:
    """IMDS / Arc / Cloud Shell error body."""
    return _json(status, {"error": error, "error_description": description}, headers)


def _status_message(status: int, message: str, *, correlation: bool = False) -> httpx.Response:
    """App Service / Azure ML error body."""
    body: dict[str, Any] = {"statusCode": status, "message": message}
    if correlation:
        body["correlationId"] = str(uuid.uuid4())
    return _json(status, body)


def _fabric_error(status: int, code: str, message: str) -> httpx.Response:
    """Service Fabric error body (reference §3.4)."""
    return _json(status, {"error": {"code": code, "message": message}})


def _secret_matches(presented: str | None, expected: str) -> bool:
    return presented is not None and secrets.compare_digest(presented.encode(), expected.encode())


def _dated_version_ok(value: str, minimum: str) -> bool:
    """``YYYY-MM-DD``, a real date, not before ``minimum``."""
    if not _DATED_VERSION.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return value >= minimum


def _metadata(ctx: RequestContext) -> bool:
    return ctx.headers.get("metadata", "").lower() == "true"


def _issue(
    state: AuthorityState,
    source: str,
    *,
    client_id: str,
    tenant_id: str,
    resource: str,
    user: str | None = None,
) -> tuple[str, int, int]:
    """Record a token; returns ``(access_token, issued_at, expires_on)``."""
    now = int(state.now())
    expires_on = now + state.managed_identity_token_lifetime
    token = new_secret("mock-mi-at-")
    state.access_tokens[token] = IssuedToken(
        access_token=token,
        tenant=tenant_id,
        client_id=client_id,
        scopes=(resource,),
        user=user,
        cae=False,
        claims=None,
        expires_on=expires_on,
        grant_type=f"managed_identity:{source}",
        issued_at=now,
    )
    return token, now, expires_on


def _imds_style_body(
    state: AuthorityState, source: str, identity: ManagedIdentity, resource: str
) -> dict[str, Any]:
    """IMDS and Arc token body: every number a string (reference §3.5 parses them with ``int``)."""
    token, now, expires_on = _issue(
        state, source, client_id=identity.client_id, tenant_id=identity.tenant_id, resource=resource
    )
    lifetime = str(state.managed_identity_token_lifetime)
    return {
        "access_token": token,
        "client_id": identity.client_id,
        "expires_in": lifetime,
        "expires_on": str(expires_on),
        "ext_expires_in": lifetime,
        "not_before": str(now),
        "resource": resource,
        "token_type": "Bearer",
    }


def _wrong_method(ctx: RequestContext, method: str) -> httpx.Response | None:
    if ctx.request.method == method:
        return None
    return _json(
        405,
        {"error": "invalid_request", "error_description": f"The endpoint only accepts {method} requests."},
        {"allow": method},
    )


# -- IMDS ----------------------------------------------------------------------------------------------
def imds(state: AuthorityState, ctx: RequestContext) -> httpx.Response:
    """``GET /metadata/identity/oauth2/token`` (reference §3.4, §3.6).

    The ``Metadata: true`` check comes first, so a header-less probe gets the quick 400 that tells
    clients IMDS is there.
    """
    if (refused := _wrong_method(ctx, "GET")) is not None:
        return refused
    if not _metadata(ctx):
        return _oauth_error(400, "invalid_request", "Required metadata header not specified")
    api_version = ctx.query.get("api-version")
    if not api_version:
        return _oauth_error(400, "invalid_request", "Required query variable 'api-version' is missing")
    if not _dated_version_ok(api_version, IMDS_MIN_API_VERSION):
        return _oauth_error(400, "invalid_request", f"Invalid api-version '{api_version[:40]}'")
    resource = ctx.query.get("resource")
    if not resource:
        return _oauth_error(400, "invalid_request", "Required query variable 'resource' is missing")
    chosen = _choose(state, _requested(ctx.query, _IMDS_IDS))
    if chosen is _Miss.MANY:
        return _oauth_error(
            400, "invalid_request", "Only one of client_id, object_id or msi_res_id may be specified"
        )
    if chosen is _Miss.UNKNOWN:
        return _oauth_error(400, "invalid_request", "Identity not found")
    if chosen is _Miss.NO_SYSTEM:
        return _oauth_error(400, "invalid_request", "No managed identity is assigned to this resource")
    assert isinstance(chosen, ManagedIdentity)
    return _json(200, _imds_style_body(state, "imds", chosen, resource))


# -- App Service -----------------------------------------------------------------------------------------
def app_service(state: AuthorityState, ctx: RequestContext) -> httpx.Response:
    """``GET $IDENTITY_ENDPOINT`` of App Service / Functions / Container Apps (api 2019-08-01)."""
    if (refused := _wrong_method(ctx, "GET")) is not None:
        return refused
    if not _secret_matches(ctx.headers.get("x-identity-header"), state.identity_header):
        return _status_message(401, "Unauthorized: the X-IDENTITY-HEADER header is missing or wrong.")
    api_version = ctx.query.get("api-version")
    if api_version != APP_SERVICE_API_VERSION:
        return _status_message(
            400,
            f"The api-version '{(api_version or '')[:40]}' is not supported; use {APP_SERVICE_API_VERSION}.",
        )
    resource = ctx.query.get("resource")
    if not resource:
        return _status_message(400, "The 'resource' query parameter is required.")
    chosen = _choose(state, _requested(ctx.query, _APP_SERVICE_IDS))
    if chosen is _Miss.MANY:
        return _status_message(
            400, "Only one of client_id, object_id/principal_id or mi_res_id may be given."
        )
    if chosen is _Miss.UNKNOWN:
        return _status_message(
            400,
            "No User Assigned or Delegated Managed Identity found for specified "
            "ClientId/ResourceId/PrincipalId.",
            correlation=True,
        )
    if chosen is _Miss.NO_SYSTEM:
        return _status_message(400, "No managed identity is assigned to this app.", correlation=True)
    assert isinstance(chosen, ManagedIdentity)
    token, _, expires_on = _issue(
        state, "app-service", client_id=chosen.client_id, tenant_id=chosen.tenant_id, resource=resource
    )
    return _json(
        200,
        {
            "access_token": token,
            "expires_on": str(expires_on),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": chosen.client_id,
        },
    )


# -- Service Fabric -------------------------------------------------------------------------------------
def service_fabric(state: AuthorityState, ctx: RequestContext) -> httpx.Response:
    """``GET $IDENTITY_ENDPOINT`` of Service Fabric (api 2019-07-01-preview, header ``Secret``).

    The application's identity is fixed by the cluster configuration: any user-assigned id is
    refused. MSAL's optional ``token_sha256_to_refresh`` and ``xms_cc`` are accepted and ignored.
    """
    if (refused := _wrong_method(ctx, "GET")) is not None:
        return refused
    presented = ctx.headers.get("secret")
    if presented is None:
        return _fabric_error(401, "SecretHeaderNotFound", "Secret is not found in the request headers.")
    if not _secret_matches(presented, state.identity_header):
        # mock's choice of code: the reference names no code for a wrong secret
        return _fabric_error(401, "SecretHeaderInvalid", "The secret in the request headers is not valid.")
    api_version = ctx.query.get("api-version")
    if not api_version:
        return _fabric_error(
            400, "ArgumentNullOrEmpty", "Value cannot be null or empty. Parameter: api-version"
        )
    if api_version != SERVICE_FABRIC_API_VERSION:
        return _fabric_error(  # mock's choice of code
            400, "InvalidApiVersion", f"The api-version '{api_version[:40]}' is not supported."
        )
    resource = ctx.query.get("resource")
    if not resource:
        return _fabric_error(400, "ArgumentNullOrEmpty", "Value cannot be null or empty. Parameter: resource")
    named = [name for name in _ANY_ID_NAMES if name in ctx.query]
    if named:
        return _fabric_error(
            400,
            "ArgumentNullOrEmpty",
            f"Parameter '{named[0]}' is not supported: the application's identity is fixed by the "
            "cluster configuration.",
        )
    identity = _system(state)
    if identity is None:
        return _fabric_error(
            400, "ManagedIdentityNotFound", "No managed identity is assigned to this application."
        )
    token, _, expires_on = _issue(
        state, "service-fabric", client_id=identity.client_id, tenant_id=identity.tenant_id, resource=resource
    )
    return _json(
        200, {"token_type": "Bearer", "access_token": token, "expires_on": expires_on, "resource": resource}
    )


# -- Azure Arc -------------------------------------------------------------------------------------------
def arc(state: AuthorityState, ctx: RequestContext) -> httpx.Response:
    """``GET $IDENTITY_ENDPOINT`` of the Azure Arc agent: a 401 key-file challenge, then the token.

    Without a valid ``Authorization: Basic <secret>`` the agent answers 401 with
    ``WWW-Authenticate: Basic realm=<path>``; the mock writes a new random key file at that path
    (under :attr:`arc_key_directory`) holding the secret (reference §3.4 "Arc key-file rules"). The
    token echoes the identity (``client_id``; ``object_id``/``msi_res_id`` when asked by those,
    reference §3.2) unless :attr:`arc_echo_identity` is off.
    """
    if (refused := _wrong_method(ctx, "GET")) is not None:
        return refused
    if not _metadata(ctx):
        return _oauth_error(400, "invalid_request", "Required metadata header not specified")
    api_version = ctx.query.get("api-version")
    if not api_version:
        return _oauth_error(400, "invalid_request", "Required query variable 'api-version' is missing")
    if not _dated_version_ok(api_version, ARC_MIN_API_VERSION):
        return _oauth_error(400, "invalid_request", f"Invalid api-version '{api_version[:40]}'")
    resource = ctx.query.get("resource")
    if not resource:
        return _oauth_error(400, "invalid_request", "Required query variable 'resource' is missing")
    requested = _requested(ctx.query, _IMDS_IDS)
    if len(requested) > 1:
        return _oauth_error(
            400, "invalid_request", "Only one of client_id, object_id or msi_res_id may be specified"
        )
    if not _arc_authorized(state, ctx.headers.get("authorization")):
        return _arc_challenge(state)
    if not state.arc_echo_identity:
        requested = []  # an agent without user-assigned support: system-assigned token, no echo
    chosen = _choose(state, requested)
    if chosen is _Miss.UNKNOWN:
        return _oauth_error(400, "invalid_request", "Identity not found")
    if not isinstance(chosen, ManagedIdentity):
        return _oauth_error(400, "invalid_request", "No managed identity is assigned to this machine")
    body = _imds_style_body(state, "arc", chosen, resource)
    if requested and requested[0][1] == "object_id":
        body["object_id"] = chosen.object_id
    if requested and requested[0][1] == "resource_id":
        body["msi_res_id"] = chosen.resource_id
    return _json(200, body)


def _arc_authorized(state: AuthorityState, header: str | None) -> bool:
    if header is None:
        return False
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "basic" or not secret:
        return False
    return any(_secret_matches(secret, known) for known in state.arc_secrets)


def _arc_challenge(state: AuthorityState) -> httpx.Response:
    directory = state.arc_key_directory
    if directory is None:
        return _oauth_error(
            500,
            "server_error",
            "The mock's Arc endpoint cannot issue its key-file challenge: set "
            "authority.arc_key_directory to the directory the client reads key files from.",
        )
    secret = secrets.token_urlsafe(32)
    path = directory.absolute() / f"{secrets.token_hex(16)}.key"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(secret, encoding="ascii")
    except OSError as exc:
        return _oauth_error(
            500, "server_error", f"The mock could not write the Arc key file in {directory}: {exc.strerror}"
        )
    state.arc_secrets[secret] = path
    return _oauth_error(
        401,
        "unauthorized_client",  # mock's choice: the reference fixes the status and header only
        "Authorization required: present the contents of the key file named in WWW-Authenticate.",
        **{"www-authenticate": f"Basic realm={path}"},
    )


# -- Azure ML ----------------------------------------------------------------------------------------------
def azure_ml(state: AuthorityState, ctx: RequestContext) -> httpx.Response:
    """``GET $MSI_ENDPOINT`` of Azure Machine Learning (api 2017-09-01, header ``secret``).

    The user-assigned id is ``clientid`` (the 2017 spelling, reference §3.2); ``expires_on`` is an
    epoch string or, with :attr:`azure_ml_expires_on_format` ``"date"``, App Service 2017's date form.
    """
    if (refused := _wrong_method(ctx, "GET")) is not None:
        return refused
    if not _secret_matches(ctx.headers.get("secret"), state.msi_secret):
        return _status_message(401, "Unauthorized: the secret header is missing or wrong.")
    api_version = ctx.query.get("api-version")
    if api_version != AZURE_ML_API_VERSION:
        return _status_message(
            400, f"The api-version '{(api_version or '')[:40]}' is not supported; use {AZURE_ML_API_VERSION}."
        )
    resource = ctx.query.get("resource")
    if not resource:
        return _status_message(400, "The 'resource' query parameter is required.")
    chosen = _choose(state, _requested(ctx.query, _AZURE_ML_IDS))
    if chosen is _Miss.UNKNOWN:
        return _status_message(400, "No managed identity found for the specified clientid.", correlation=True)
    if not isinstance(chosen, ManagedIdentity):
        return _status_message(400, "No managed identity is assigned to this compute.", correlation=True)
    token, _, expires_on = _issue(
        state, "azure-ml", client_id=chosen.client_id, tenant_id=chosen.tenant_id, resource=resource
    )
    if state.azure_ml_expires_on_format == "date":
        expires = datetime.fromtimestamp(expires_on, tz=timezone.utc).strftime(APP_SERVICE_2017_DATE)
    else:
        expires = str(expires_on)
    return _json(
        200, {"access_token": token, "expires_on": expires, "resource": resource, "token_type": "Bearer"}
    )


# -- Cloud Shell --------------------------------------------------------------------------------------------
def cloud_shell(state: AuthorityState, ctx: RequestContext) -> httpx.Response:
    """``POST $MSI_ENDPOINT`` in Cloud Shell: form ``resource=...``, header ``Metadata: true``.

    Cloud Shell has only the signed-in user's identity (:attr:`cloud_shell_user`): a user-assigned
    id in the form (which azure-identity posts only inside DefaultAzureCredential, reference §3.2)
    is refused. The token is recorded as the user's, with client id :data:`CLOUD_SHELL_CLIENT_ID`.
    """
    if (refused := _wrong_method(ctx, "POST")) is not None:
        return refused
    if not _metadata(ctx):
        return _oauth_error(400, "invalid_request", "Required metadata header not specified")
    resource = ctx.form.get("resource")
    if not resource:
        return _oauth_error(400, "invalid_request", "The form field 'resource' is required")
    named = [name for name in _ANY_ID_NAMES if name in ctx.form or name in ctx.query]
    if named:
        return _oauth_error(
            400,
            "invalid_request",
            f"'{named[0]}' is not supported: Cloud Shell has only the signed-in user's identity",
        )
    user = state.find_user(None, state.cloud_shell_user) if state.cloud_shell_user else None
    if user is None:
        return _oauth_error(400, "invalid_request", "No user is signed in to Cloud Shell")
    token, now, expires_on = _issue(
        state,
        "cloud-shell",
        client_id=CLOUD_SHELL_CLIENT_ID,
        tenant_id=user.tenant_id,
        resource=resource,
        user=user.username,
    )
    return _json(
        200,
        {
            "access_token": token,
            "expires_in": str(state.managed_identity_token_lifetime),
            "expires_on": str(expires_on),
            "not_before": str(now),
            "resource": resource,
            "token_type": "Bearer",
        },
    )


#: Endpoint name -> handler; the authority routes ``PATHS[name]`` here.
ANSWERS: dict[str, Answer] = {
    "imds": imds,
    "app-service": app_service,
    "service-fabric": service_fabric,
    "arc": arc,
    "azure-ml": azure_ml,
    "cloud-shell": cloud_shell,
}
