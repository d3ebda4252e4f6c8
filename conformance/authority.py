"""``MockAuthority``: a stateful Microsoft Entra ID double behind one ``httpx`` handler.

It validates requests the way Entra does (the wire facts in the reference's §1-3), records every
request it sees, injects faults on demand and remembers what it issued. Its whole logic is
:meth:`MockAuthority.handle` (``httpx.Request -> httpx.Response``), mounted in process
(:meth:`~MockAuthority.transport`, or respx through :func:`conformance.transport.route_to`), over
real HTTPS (:meth:`~MockAuthority.serve`) or plain HTTP (:meth:`~MockAuthority.serve_http`, for the
managed-identity endpoints). It is host-agnostic: it answers for whatever origin a request was sent
to and builds the URLs in its metadata from that origin.

Besides Entra it plays the managed-identity endpoints (:mod:`conformance.mock.managed_identity`,
reference §3) and Azure Pipelines' OIDC endpoint (:mod:`conformance.mock.pipelines`, reference §4.6).
Clients take those endpoints from environment variables: :meth:`~MockAuthority.managed_identity_environment`
and :meth:`~MockAuthority.add_pipeline_service_connection` give the values.

Routes (``{tenant}`` is a tenant GUID, one of its domains, ``common``, ``organizations`` or
``consumers``; ADFS uses the literal ``adfs`` and no ``v2.0``):

======================  ==============================================================
endpoint name           path
======================  ==============================================================
openid-configuration    ``GET /{tenant}/v2.0/.well-known/openid-configuration``,
                        ``GET /adfs/.well-known/openid-configuration``
instance-discovery      ``GET /common/discovery/instance``
jwks                    ``GET /{tenant}/discovery/v2.0/keys``, ``GET /adfs/discovery/keys``
token                   ``POST /{tenant}/oauth2/v2.0/token``, ``POST /adfs/oauth2/token``
devicecode              ``POST /{tenant}/oauth2/v2.0/devicecode``, ``POST /adfs/oauth2/devicecode``
authorize               ``GET``/``POST /{tenant}/oauth2/v2.0/authorize``, ``/adfs/oauth2/authorize``:
                        HTML sign-in and consent, then a redirect (:mod:`conformance.mock.authorize`)
devicelogin             ``GET``/``POST /devicelogin``: the device-code verification page
userrealm               ``GET /common/userrealm/{username}``
imds                    ``GET /metadata/identity/oauth2/token``
app-service             ``GET /appservice/msi/token``
service-fabric          ``GET /servicefabric/metadata/identity/oauth2/token``
arc                     ``GET /arc/metadata/identity/oauth2/token``
azure-ml                ``GET /azureml/msi/token``
cloud-shell             ``POST /cloudshell/oauth2/token``
pipelines-oidc          ``POST .../_apis/distributedtask/hubs/{hub}/plans/{plan}/jobs/{job}/oidctoken``
pipelines-signin        ``GET /_signin`` (where the OIDC endpoint redirects without
                        ``X-TFS-FedAuthRedirect: Suppress``)
unmatched               anything else: 404 with an Entra-shaped body
======================  ==============================================================
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from conformance.mock import authorize, device, discovery, errors, grants, managed_identity, pipelines
from conformance.mock.context import RequestContext
from conformance.mock.directory import Directory
from conformance.mock.errors import EntraError
from conformance.mock.federation import ExternalIssuer
from conformance.mock.keys import ClientCertificate, generate_client_certificate
from conformance.mock.models import (
    DroppedConnection,
    Fault,
    IssuedToken,
    ManagedIdentity,
    PipelineServiceConnection,
    RecordedRequest,
)
from conformance.mock.state import WELL_KNOWN_HOSTS, AuthorityState
from conformance.mock.tokens import ADFS_TENANT
from conformance.server import HttpServer, HttpsServer
from conformance.transport import mock_transport

__all__ = [
    "CLOUD_SHELL_CLIENT_ID",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_DOMAIN",
    "DEFAULT_MI_CLIENT_ID",
    "DEFAULT_MI_OBJECT_ID",
    "DEFAULT_MI_RESOURCE_ID",
    "DEFAULT_PASSWORD",
    "DEFAULT_SECRET",
    "DEFAULT_TENANT",
    "DEFAULT_USERNAME",
    "MANAGED_IDENTITY_PATHS",
    "MANAGED_IDENTITY_SOURCES",
    "MI_SUBSCRIPTION_ID",
    "PUBLIC_CLIENT_ID",
    "SYSTEM_MI_CLIENT_ID",
    "SYSTEM_MI_OBJECT_ID",
    "SYSTEM_MI_RESOURCE_ID",
    "WELL_KNOWN_HOSTS",
    "ClientCertificate",
    "DroppedConnection",
    "ExternalIssuer",
    "Fault",
    "HttpServer",
    "HttpsServer",
    "IssuedToken",
    "ManagedIdentity",
    "MockAuthority",
    "PipelineServiceConnection",
    "RecordedRequest",
    "generate_client_certificate",
]

DEFAULT_TENANT = "7f3c1a52-9d4e-4b8a-a1c6-2e5f0b9d8c31"
DEFAULT_DOMAIN = "contoso.onmicrosoft.com"
DEFAULT_CLIENT_ID = "0b6e4f2a-5c1d-4e7b-9a3f-8d2c6b1e4a70"
DEFAULT_SECRET = "mock-secret-CANARY-0d9f"
PUBLIC_CLIENT_ID = "d4a8e2c6-1f3b-4d5a-8e7c-9b0a2f4c6e18"
DEFAULT_USERNAME = "user@contoso.onmicrosoft.com"
DEFAULT_PASSWORD = "mock-password-CANARY-5e2a"
DEFAULT_USER_OBJECT_ID = "3a9d7c5e-2b4f-4e61-8c0a-6f1d9e3b5a27"

#: Subscription of the default managed identities' resource ids.
MI_SUBSCRIPTION_ID = "5d2f8a1c-3e7b-4c9d-8f6a-0b1e2d3c4a59"
#: The system-assigned identity of :meth:`MockAuthority.with_defaults` (a VM's identity).
SYSTEM_MI_CLIENT_ID = "c1a0e5f3-7b2d-4e8a-9f61-3d5b7a9c0e24"
SYSTEM_MI_OBJECT_ID = "e4b2c8d6-0a1f-4c3e-b5d7-9f8e1a2b3c4d"
SYSTEM_MI_RESOURCE_ID = (
    f"/subscriptions/{MI_SUBSCRIPTION_ID}/resourcegroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
)
#: The user-assigned identity of :meth:`MockAuthority.with_defaults`.
DEFAULT_MI_CLIENT_ID = "a7f3d9e1-4c6b-4b8a-8e2f-1d0c9b8a7f65"
DEFAULT_MI_OBJECT_ID = "b5e1c7a3-9d2f-4f6e-a8b4-2c0d1e9f8a73"
DEFAULT_MI_RESOURCE_ID = (
    f"/subscriptions/{MI_SUBSCRIPTION_ID}/resourcegroups/rg/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/mock-identity"
)
#: Managed-identity sources (also their endpoint names) and their mock paths.
MANAGED_IDENTITY_SOURCES = managed_identity.SOURCES
MANAGED_IDENTITY_PATHS = managed_identity.PATHS
CLOUD_SHELL_CLIENT_ID = managed_identity.CLOUD_SHELL_CLIENT_ID

#: ``error`` of the Entra-shaped body a bodiless 4xx status fault gets (429 and 5xx get
#: ``temporarily_unavailable``).
_FAULT_ERRORS = {401: "invalid_client", 403: "access_denied", 404: "not_found"}


@dataclass
class _QueuedFault:
    fault: Fault
    endpoint: str | None
    remaining: int


@dataclass(frozen=True)
class _Plan:
    """What :meth:`MockAuthority.handle` decided before any waiting: route, recording, fault."""

    ctx: RequestContext
    endpoint: str
    action: Callable[[], httpx.Response]
    fault: Fault | None


def _token(state: AuthorityState, ctx: RequestContext, segment: str) -> httpx.Response:
    tenant = discovery.resolve_tenant(state, segment, error="invalid_request")
    return grants.token_endpoint(state, ctx, tenant, segment)


def _devicecode(state: AuthorityState, ctx: RequestContext, segment: str) -> httpx.Response:
    tenant = discovery.resolve_tenant(state, segment, error="invalid_request")
    return device.device_authorization(state, ctx, tenant, segment)


#: An endpoint: the authority (most only need its :class:`AuthorityState` part), request, tenant segment.
Answer = Callable[[Directory, RequestContext, str], httpx.Response]

#: Routes under ``/{tenant}/``: path after the tenant segment -> (endpoint name, answer).
_ROUTES: dict[tuple[str, ...], tuple[str, Answer]] = {
    ("v2.0", ".well-known", "openid-configuration"): ("openid-configuration", discovery.openid_configuration),
    ("discovery", "v2.0", "keys"): ("jwks", discovery.jwks),
    ("oauth2", "v2.0", "token"): ("token", _token),
    ("oauth2", "v2.0", "devicecode"): ("devicecode", _devicecode),
    ("oauth2", "v2.0", "authorize"): ("authorize", authorize.authorize_endpoint),
}
#: Routes under ``/adfs/`` (no ``v2.0`` anywhere, reference §1.4).
_ADFS_ROUTES: dict[tuple[str, ...], tuple[str, Answer]] = {
    (".well-known", "openid-configuration"): ("openid-configuration", discovery.openid_configuration),
    ("discovery", "keys"): ("jwks", discovery.jwks),
    ("oauth2", "token"): ("token", _token),
    ("oauth2", "devicecode"): ("devicecode", _devicecode),
    ("oauth2", "authorize"): ("authorize", authorize.authorize_endpoint),
}
#: Managed-identity routes: exact lower-cased path segments -> (endpoint name, answer).
_MI_ROUTES: dict[tuple[str, ...], tuple[str, managed_identity.Answer]] = {
    tuple(part for part in path.lower().split("/") if part): (name, managed_identity.ANSWERS[name])
    for name, path in managed_identity.PATHS.items()
}


class MockAuthority(Directory):
    """A stateful Entra ID double whose logic is one handler, :meth:`handle`.

    Configuration switches (``rotate_refresh_tokens``, ``strict_rotation``, ``expires_in_as_string``,
    ``device_slow_down_enabled``, ``reject_replayed_jti``, ``trusted_hosts``; for the browser pages
    ``skip_consent``, ``sign_in_session_lifetime``, ``device_verification_uri``; for managed identity
    ``identity_header``, ``msi_secret``, ``managed_identity_token_lifetime``, ``arc_key_directory``,
    ``arc_echo_identity``, ``azure_ml_expires_on_format``, ``cloud_shell_user``...) are attributes,
    documented on :class:`~conformance.mock.state.AuthorityState`.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        token_lifetime: int = 3600,
        refresh_in: int | None = None,
        signing_key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        super().__init__(
            clock=clock, token_lifetime=token_lifetime, refresh_in=refresh_in, signing_key=signing_key
        )
        #: Every request, matched or not, in arrival order.
        self.requests: list[RecordedRequest] = []
        self._faults: list[_QueuedFault] = []
        self._https_servers: weakref.WeakSet[HttpsServer] = weakref.WeakSet()

    @classmethod
    def with_defaults(cls, **kwargs: Any) -> MockAuthority:
        """An authority with one tenant, a confidential and a public app, and one user.

        Tenant :data:`DEFAULT_TENANT` (domain :data:`DEFAULT_DOMAIN`), confidential app
        :data:`DEFAULT_CLIENT_ID` with secret :data:`DEFAULT_SECRET`, public client
        :data:`PUBLIC_CLIENT_ID`, user :data:`DEFAULT_USERNAME` / :data:`DEFAULT_PASSWORD` (also the
        user signed in to Cloud Shell), a system-assigned managed identity
        (:data:`SYSTEM_MI_CLIENT_ID`...) and a user-assigned one (:data:`DEFAULT_MI_CLIENT_ID`,
        :data:`DEFAULT_MI_OBJECT_ID`, :data:`DEFAULT_MI_RESOURCE_ID`).
        """
        authority = cls(**kwargs)
        authority.add_tenant(DEFAULT_TENANT, domains=[DEFAULT_DOMAIN])
        authority.add_application(DEFAULT_TENANT, DEFAULT_CLIENT_ID, secret=DEFAULT_SECRET)
        authority.add_application(DEFAULT_TENANT, PUBLIC_CLIENT_ID, public_client=True)
        authority.add_user(
            DEFAULT_TENANT, DEFAULT_USERNAME, DEFAULT_PASSWORD, object_id=DEFAULT_USER_OBJECT_ID
        )
        authority.add_managed_identity(
            client_id=SYSTEM_MI_CLIENT_ID,
            object_id=SYSTEM_MI_OBJECT_ID,
            resource_id=SYSTEM_MI_RESOURCE_ID,
            system_assigned=True,
        )
        authority.add_managed_identity(
            client_id=DEFAULT_MI_CLIENT_ID, object_id=DEFAULT_MI_OBJECT_ID, resource_id=DEFAULT_MI_RESOURCE_ID
        )
        authority.cloud_shell_user = DEFAULT_USERNAME
        return authority

    # -- the handler ----
    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` like Entra would (or with the next matching injected fault)."""
        plan = self._begin(request)
        if plan.fault is not None and plan.fault.kind == "latency":
            time.sleep(plan.fault.delay)
        return self._complete(plan)

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        """:meth:`handle` for async clients: a latency fault awaits instead of blocking the loop."""
        plan = self._begin(request)
        if plan.fault is not None and plan.fault.kind == "latency":
            await asyncio.sleep(plan.fault.delay)
        return self._complete(plan)

    def _begin(self, request: httpx.Request) -> _Plan:
        ctx = RequestContext.parse(request)
        endpoint, action = self._route(ctx)
        with self.lock:
            fault = self._take_fault(endpoint)
            self.requests.append(
                RecordedRequest(
                    method=request.method,
                    url=str(request.url),
                    path=request.url.path,
                    query=ctx.query,
                    form=ctx.form,
                    headers=ctx.headers,
                    endpoint=endpoint,
                    fault=fault,
                )
            )
        return _Plan(ctx, endpoint, action, fault)

    def _complete(self, plan: _Plan) -> httpx.Response:
        fault = plan.fault
        if fault is not None and fault.kind == "drop":
            raise DroppedConnection(
                "Server disconnected without sending a response.", request=plan.ctx.request
            )
        if fault is not None and fault.kind in ("status", "malformed"):
            return self._fault_response(plan.ctx, fault)
        with self.lock:
            try:
                return plan.action()
            except EntraError as err:
                return plan.ctx.error_response(err, now=self.now())

    def _fault_response(self, ctx: RequestContext, fault: Fault) -> httpx.Response:
        headers = {"retry-after": fault.retry_after} if fault.retry_after is not None else {}
        if fault.body is not None:
            return httpx.Response(
                fault.http_status, headers={"content-type": fault.content_type, **headers}, content=fault.body
            )
        if fault.http_status == 429 or fault.http_status >= 500:
            err = EntraError(
                fault.http_status,
                "temporarily_unavailable",
                errors.SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable. Please try again later.",
                headers,
            )
        else:
            error = _FAULT_ERRORS.get(fault.http_status, "invalid_request")
            err = EntraError(
                fault.http_status,
                error,
                errors.MALFORMED_REQUEST,
                f"Injected fault: HTTP {fault.http_status}.",
                headers,
            )
        return ctx.error_response(err, now=self.now())

    def _route(self, ctx: RequestContext) -> tuple[str, Callable[[], httpx.Response]]:
        """Name the endpoint a request is for and bind the function that answers it."""
        segments = ctx.segments
        lower = tuple(part.lower() for part in segments)
        if segments:
            table = _ADFS_ROUTES if lower[0] == ADFS_TENANT else _ROUTES
            if lower[1:] in table:
                name, answer = table[lower[1:]]
                return name, functools.partial(answer, self, ctx, segments[0])
            if lower == ("devicelogin",):
                return "devicelogin", functools.partial(authorize.device_login, self, ctx)
            if lower == ("common", "discovery", "instance"):
                return "instance-discovery", functools.partial(discovery.instance_discovery, self, ctx)
            if lower[:2] == ("common", "userrealm") and len(lower) == 3:
                return "userrealm", functools.partial(discovery.user_realm, self, ctx, segments[2])
            if lower in _MI_ROUTES:
                name, mi_answer = _MI_ROUTES[lower]
                return name, functools.partial(mi_answer, self, ctx)
            if pipelines.is_oidc_path(lower):
                return "pipelines-oidc", functools.partial(pipelines.oidc_token, self, ctx)
            if "/" + "/".join(lower) == pipelines.SIGNIN_PATH:
                return "pipelines-signin", functools.partial(pipelines.signin_page, self, ctx)
        return "unmatched", functools.partial(self._unmatched, ctx)

    def _unmatched(self, ctx: RequestContext) -> httpx.Response:
        raise EntraError(
            404,
            "not_found",
            errors.NO_ROUTE,
            f"The mock authority has no endpoint for {ctx.request.method} {ctx.request.url.path}.",
        )

    # -- managed identity and Azure Pipelines ----
    def add_managed_identity(
        self,
        *,
        client_id: str,
        object_id: str | None = None,
        resource_id: str | None = None,
        system_assigned: bool = False,
        tenant_id: str | None = None,
    ) -> ManagedIdentity:
        """Register (or replace, by client id) a managed identity the MI endpoints can issue for.

        ``object_id`` defaults to a new GUID, ``resource_id`` to a user-assigned identity's ARM id
        under :data:`MI_SUBSCRIPTION_ID`, ``tenant_id`` to the first registered tenant. At most one
        identity is ``system_assigned`` (the one requests without a user-assigned id get).
        """
        with self.lock:
            if tenant_id is None:
                if not self.tenants:
                    raise KeyError("no tenant is registered; call add_tenant first or pass tenant_id")
                tenant_id = next(iter(self.tenants.values())).tenant_id
            else:
                tenant_id = self._tenant(tenant_id).tenant_id
            return managed_identity.register(
                self,
                client_id=client_id,
                object_id=object_id or str(uuid.uuid4()),
                resource_id=resource_id
                or (
                    f"/subscriptions/{MI_SUBSCRIPTION_ID}/resourcegroups/rg/providers/"
                    f"Microsoft.ManagedIdentity/userAssignedIdentities/mi-{client_id.lower()[:8]}"
                ),
                tenant_id=tenant_id,
                system_assigned=system_assigned,
            )

    def remove_managed_identity(self, client_id: str) -> None:
        """Unassign the identity ``client_id`` (e.g. the system-assigned one, to test its absence)."""
        with self.lock:
            if self.managed_identities.pop(client_id.lower(), None) is None:
                raise KeyError(f"no managed identity {client_id!r}")

    def managed_identity_environment(
        self, source: str, origin: str, *, thumbprint: str | None = None
    ) -> dict[str, str]:
        """Exactly the environment variables a client needs to use ``source`` at ``origin``.

        ``source`` is one of :data:`MANAGED_IDENTITY_SOURCES`; ``origin`` is ``scheme://host:port``
        of a mount of this authority (``server.url``). ``service-fabric`` needs an ``https`` origin;
        its ``IDENTITY_SERVER_THUMBPRINT`` is ``thumbprint`` or, by default, that of the running
        :meth:`serve` server at ``origin``.
        """
        if source == "service-fabric" and thumbprint is None:
            wanted = origin.rstrip("/").lower()
            for server in list(self._https_servers):
                if server.running and server.url.lower() == wanted:
                    thumbprint = server.certificate_thumbprint
                    break
            else:
                raise ValueError(
                    f"no running HTTPS server of this authority at {origin!r}: start one with serve() "
                    "or pass thumbprint="
                )
        return managed_identity.environment(self, source, origin, thumbprint=thumbprint)

    def add_pipeline_service_connection(
        self,
        tenant_id: str,
        client_id: str,
        service_connection_id: str,
        *,
        system_access_token: str,
        name: str | None = None,
        organization: str = "contoso",
        project: str = "app",
    ) -> PipelineServiceConnection:
        """An Azure DevOps service connection for app ``client_id``, usable with ``system_access_token``.

        The app gets the matching federated credential, so the OIDC token the ``pipelines-oidc``
        endpoint mints is accepted as its client assertion. The result's
        :meth:`~PipelineServiceConnection.oidc_request_uri` (or ``oidc_request_path``) is
        ``SYSTEM_OIDCREQUESTURI``.
        """
        with self.lock:
            app = self._app(tenant_id, client_id)
            connection = pipelines.register(
                self,
                tenant_id=app.tenant_id,
                client_id=app.client_id,
                service_connection_id=service_connection_id,
                system_access_token=system_access_token,
                name=name or f"arm-{service_connection_id.lower()[:8]}",
                organization=organization,
                project=project,
            )
            self.add_federated_credential(tenant_id, client_id, connection.issuer, connection.subject)
            return connection

    # -- browser sign-in ----
    def authorize_redirect(
        self, url: str, username: str, password: str | None = None, *, accept: bool = True
    ) -> str:
        """Where a browser opening the authorize ``url`` is redirected once ``username`` signs in.

        The authorize endpoint's validation and outcome without its HTML pages (and without recording
        a request): returns ``{redirect_uri}?code=...&state=...``, or the redirect of an error the
        endpoint sends back (``access_denied`` when ``accept`` is false, ``login_required`` for
        ``prompt=none``, ``unsupported_response_type``...). Raises ``ValueError`` where the endpoint
        shows an error page (unknown client, unregistered redirect URI), for an unknown user and for
        a wrong ``password`` (``None`` skips the password check).
        """
        with self.lock:
            return authorize.sign_in_redirect(self, url, username, password, accept=accept)

    # -- recording ----
    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        """Recorded requests to ``endpoint`` (``"token"``, ``"jwks"``, ``"unmatched"``...)."""
        with self.lock:
            return [recorded for recorded in self.requests if recorded.endpoint == endpoint]

    @property
    def unmatched(self) -> list[RecordedRequest]:
        """Requests no route matched (each was answered 404): a non-empty list is a test failure."""
        return self.requests_to("unmatched")

    def reset_requests(self) -> None:
        """Forget recorded requests (not issued tokens or queued faults)."""
        with self.lock:
            self.requests.clear()

    # -- faults ----
    def inject(self, fault: Fault, *, endpoint: str | None = None, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` requests to ``endpoint`` (any endpoint if ``None``).

        Queued faults are consumed in the order they were injected, one per matching request.
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        with self.lock:
            self._faults.append(_QueuedFault(fault, endpoint, times))

    def _take_fault(self, endpoint: str) -> Fault | None:
        for index, queued in enumerate(self._faults):
            if queued.endpoint is None or queued.endpoint == endpoint:
                queued.remaining -= 1
                if queued.remaining == 0:
                    del self._faults[index]
                return queued.fault
        return None

    # -- mounts ----
    def transport(self) -> httpx.MockTransport:
        """An in-process transport for ``httpx.Client`` and ``httpx.AsyncClient``."""
        return mock_transport(self.handle, async_handler=self.handle_async)

    def serve(self, *, host: str = "127.0.0.1", port: int = 0) -> HttpsServer:
        """An HTTPS server on loopback serving this authority; use it as a context manager.

        ``port=443`` is for clients that drop the port from URLs (azure-identity's user-realm
        request, see the test-environment notes); the default is an ephemeral port. Its
        ``certificate_thumbprint`` feeds Service Fabric's ``IDENTITY_SERVER_THUMBPRINT``.
        """
        server = HttpsServer(self.handle, host=host, port=port)
        self._https_servers.add(server)
        return server

    def serve_http(self, *, host: str = "127.0.0.1", port: int = 0) -> HttpServer:
        """A plain-HTTP server on loopback serving this authority; use it as a context manager.

        Managed-identity endpoints are plain HTTP on a local address in real life; ``url`` is
        ``http://127.0.0.1:<port>``.
        """
        return HttpServer(self.handle, host=host, port=port)
