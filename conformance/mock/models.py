"""Value types of the mock authority: what it records, what it can break, what it issued.

Public (re-exported by :mod:`conformance.authority`): :class:`RecordedRequest`, :class:`Fault`,
:class:`IssuedToken`, :class:`DroppedConnection`, :class:`ManagedIdentity`,
:class:`PipelineServiceConnection`. The directory and grant records are internal bookkeeping, kept
as plain dataclasses so a failing test can print them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import httpx

FaultKind = Literal["status", "malformed", "latency", "drop"]


if TYPE_CHECKING:  # pragma: no cover
    from conformance.mock.federation import ExternalIssuer, FederatedCredential


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the mock saw it, matched or not.

    ``headers`` has lower-case names; ``form`` is the url-encoded body (empty for other bodies);
    ``endpoint`` names the route that matched (``"token"``, ``"openid-configuration"``,
    ``"instance-discovery"``, ``"devicecode"``, ``"jwks"``, ``"userrealm"``; the managed-identity
    sources ``"imds"``, ``"app-service"``, ``"service-fabric"``, ``"arc"``, ``"azure-ml"``,
    ``"cloud-shell"``; Azure Pipelines' ``"pipelines-oidc"`` and ``"pipelines-signin"``; the browser
    pages ``"authorize"`` and ``"devicelogin"``) or ``"unmatched"``;
    ``fault`` is the injected fault this request consumed, if any.
    """

    method: str
    url: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    endpoint: str
    fault: Fault | None = None


@dataclass(frozen=True)
class Fault:
    """A failure to inject instead of (or before) the normal answer; build with the classmethods.

    Faults are queued by :meth:`MockAuthority.inject` and consumed in order by matching requests.
    """

    kind: FaultKind
    http_status: int = 200
    retry_after: str | None = None
    body: bytes | None = None
    content_type: str = "application/json"
    delay: float = 0.0

    @classmethod
    def status(
        cls,
        code: int,
        *,
        retry_after: str | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> Fault:
        """Answer with HTTP ``code`` (e.g. 429 with ``Retry-After``, 503).

        Without ``body`` the mock sends an Entra-shaped error body (``temporarily_unavailable`` for
        429 and 5xx), so clients exercise their error parsing as well as their retry policy.
        """
        return cls("status", http_status=code, retry_after=retry_after, body=body, content_type=content_type)

    @classmethod
    def malformed(cls, body: bytes, content_type: str) -> Fault:
        """Answer 200 with ``body`` as is: ``b"not json"``, ``b"{}"``, an HTML proxy page..."""
        return cls("malformed", http_status=200, body=body, content_type=content_type)

    @classmethod
    def latency(cls, seconds: float) -> Fault:
        """Wait ``seconds`` (server-side when served over HTTPS), then answer normally."""
        return cls("latency", delay=seconds)

    @classmethod
    def drop_connection(cls) -> Fault:
        """Close the connection without any response.

        In process this raises :class:`DroppedConnection` (an ``httpx.RemoteProtocolError``); over
        HTTPS the server closes the socket, so the client sees its own transport error.
        """
        return cls("drop")


class DroppedConnection(httpx.RemoteProtocolError):
    """Raised by the handler for :meth:`Fault.drop_connection`; the HTTPS server closes the socket."""


@dataclass(frozen=True)
class IssuedToken:
    """What an access token issued by the mock grants, so tests can assert on it.

    ``scopes`` are the resource scopes (the OIDC scopes ``openid``, ``profile``, ``email`` and
    ``offline_access`` are left out: they shape the response, not the access token); ``user`` is the
    username for user tokens and ``None`` for app tokens; ``cae`` says whether the request declared
    the ``cp1`` client capability; ``claims`` is the ``claims`` form field as received.
    """

    access_token: str
    tenant: str
    client_id: str
    scopes: tuple[str, ...]
    user: str | None
    cae: bool
    claims: str | None
    expires_on: int
    grant_type: str
    issued_at: int


@dataclass(frozen=True)
class ManagedIdentity:
    """A managed identity the mock's managed-identity endpoints can issue tokens for.

    ``resource_id`` is the ARM id (``/subscriptions/<guid>/resourcegroups/<rg>/providers/
    Microsoft.ManagedIdentity/userAssignedIdentities/<name>`` for a user-assigned identity); ids are
    compared case-insensitively. At most one identity is ``system_assigned``: the one a request
    without a user-assigned id gets. ``tenant_id`` is the tenant its tokens are recorded under.
    """

    client_id: str
    object_id: str
    resource_id: str
    tenant_id: str
    system_assigned: bool = False


@dataclass(frozen=True)
class PipelineServiceConnection:
    """An Azure DevOps service connection whose OIDC tokens an app registration trusts.

    The mock's ``pipelines-oidc`` endpoint mints, for a request naming ``service_connection_id``
    and carrying ``system_access_token``, a token from ``issuer`` (``https://vstoken.dev.azure.com/
    <organization id>``) for ``subject`` (``sc://<organization>/<project>/<name>``); the app
    ``client_id`` in ``tenant_id`` holds the matching federated credential.
    """

    tenant_id: str
    client_id: str
    service_connection_id: str
    name: str
    organization: str
    organization_id: str
    project: str
    project_id: str
    plan_id: str
    job_id: str
    system_access_token: str = field(repr=False)
    issuer: ExternalIssuer = field(repr=False, compare=False)

    @property
    def subject(self) -> str:
        """``sub`` of the minted OIDC tokens: ``sc://<organization>/<project>/<name>``."""
        return f"sc://{self.organization}/{self.project}/{self.name}"

    @property
    def oidc_request_path(self) -> str:
        """The path of ``SYSTEM_OIDCREQUESTURI`` (Azure DevOps: ``https://dev.azure.com`` + this)."""
        return (
            f"/{self.organization}/{self.project_id}/_apis/distributedtask/hubs/build"
            f"/plans/{self.plan_id}/jobs/{self.job_id}/oidctoken"
        )

    def oidc_request_uri(self, origin: str) -> str:
        """``SYSTEM_OIDCREQUESTURI`` for a mock served at ``origin`` (``scheme://host[:port]``)."""
        return origin.rstrip("/") + self.oidc_request_path


@dataclass(frozen=True)
class RegisteredCertificate:
    """A client certificate registered on an application, with the values assertions refer to."""

    pem: bytes
    der: bytes
    sha1_thumbprint: str  # base64url, no padding (the ``x5t`` header)
    sha256_thumbprint: str  # base64url, no padding (the ``x5t#S256`` header)


@dataclass
class User:
    """A directory user; ``username`` is compared case-insensitively, like a UPN."""

    tenant_id: str
    username: str
    password: str = field(repr=False)
    object_id: str
    display_name: str


@dataclass
class Application:
    """An app registration in one tenant.

    A confidential app (``public_client=False``) must authenticate on every token request with its
    secret or a certificate assertion; a public client must not send any credential.
    """

    tenant_id: str
    client_id: str
    secret: str | None = field(default=None, repr=False)
    certificate: RegisteredCertificate | None = None
    public_client: bool = False
    redirect_uris: tuple[str, ...] = ()
    federated_credentials: list[FederatedCredential] = field(default_factory=list)


@dataclass
class Tenant:
    """A tenant: its GUID, verified domains, app registrations and users."""

    tenant_id: str
    domains: tuple[str, ...] = ()
    applications: dict[str, Application] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)  # keyed by lower-cased username


@dataclass
class RefreshGrant:
    """A refresh token and what it may be redeemed for."""

    token: str = field(repr=False)
    tenant_id: str
    client_id: str
    scopes: tuple[str, ...]
    username: str | None
    revoked: bool = False
    superseded: bool = False


@dataclass
class AuthorizationCodeGrant:
    """An authorization code as the authorize step would have issued it."""

    code: str = field(repr=False)
    tenant_id: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    username: str
    code_challenge: str | None
    code_challenge_method: str
    nonce: str | None
    expires_at: float
    redeemed: bool = False


class DeviceCodeStatus(enum.Enum):
    """Where a device code is in its life: waiting for the user, answered, or already redeemed."""

    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"
    REDEEMED = "redeemed"


@dataclass
class DeviceCodeGrant:
    """A device code session; ``tenant_id`` is ``None`` until a user of a multi-tenant alias approves."""

    device_code: str = field(repr=False)
    user_code: str
    tenant_id: str | None
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float
    interval: float
    status: DeviceCodeStatus = DeviceCodeStatus.PENDING
    username: str | None = None
    last_poll: float | None = None


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated request to the authorize endpoint: what the response must go back to and carry.

    ``tenant_id`` is the tenant whose user signs in (the path's tenant, or the app's for ``common``
    and co.); ``response_mode`` is ``query`` or ``fragment``; ``prompt`` is ``""`` when absent.
    """

    tenant_id: str
    client_id: str
    redirect_uri: str
    response_mode: str
    scopes: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str
    login_hint: str
    prompt: str


@dataclass
class SignInSession:
    """A browser sign-in in progress, kept server-side under an opaque ``handle``.

    The pages carry only the handle; what the answer goes back to comes from here. Exactly one of
    ``request`` (an authorize sign-in) and ``user_code`` (a device-code sign-in) is set. ``stage``
    is the form the next POST answers: ``"signin"`` (username and password) or ``"consent"``.
    """

    handle: str = field(repr=False)
    expires_at: float
    request: AuthorizationRequest | None = None
    user_code: str | None = None
    stage: Literal["signin", "consent"] = "signin"
    username: str | None = None
