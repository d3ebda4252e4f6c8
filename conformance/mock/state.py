"""The mock's state: configuration switches, the directory, and everything it has issued.

:class:`AuthorityState` is the base of :class:`conformance.authority.MockAuthority`, so every switch
below is a plain attribute of the authority (``authority.strict_rotation = True``). The endpoint
modules take an ``AuthorityState`` and never see the HTTP mounts, recording or fault queue.
"""

from __future__ import annotations

import secrets
import string
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cryptography.hazmat.primitives.asymmetric import rsa

from conformance.mock.keys import SigningKey, default_signing_key
from conformance.mock.models import (
    Application,
    AuthorizationCodeGrant,
    DeviceCodeGrant,
    IssuedToken,
    ManagedIdentity,
    PipelineServiceConnection,
    RefreshGrant,
    SignInSession,
    Tenant,
    User,
)

if TYPE_CHECKING:  # pragma: no cover
    from conformance.mock.federation import ExternalIssuer

#: Path segments that name no single tenant (reference §1.2); the user or app decides the tenant.
MULTI_TENANT_ALIASES = frozenset({"common", "organizations", "consumers"})

#: MSAL's well-known authority hosts (reference §1.1): trusted by instance discovery by default.
WELL_KNOWN_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "sts.windows.net",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
        "login.microsoftonline.de",
        "login-us.microsoftonline.com",
        "login.microsoftonline.us",
        "login.usgovcloudapi.net",
        "login.sovcloud-identity.fr",
        "login.sovcloud-identity.de",
        "login.sovcloud-identity.sg",
    }
)


class AuthorityState:
    """Switches, directory and grant stores of one mock authority.

    All mutation happens under ``lock`` (the HTTPS mount serves requests on several threads).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        token_lifetime: int = 3600,
        refresh_in: int | None = None,
        signing_key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        self.lock = threading.RLock()
        #: Source of "now" for expiry, device-code polling and assertion lifetimes.
        self.clock = clock
        #: ``expires_in`` of issued access tokens, in seconds.
        self.token_lifetime = token_lifetime
        #: When set, token responses carry ``refresh_in`` (a proactive-refresh hint, reference §3.1).
        self.refresh_in = refresh_in
        #: Send ``expires_in``/``ext_expires_in`` as numeric strings, as some v1 endpoints do.
        self.expires_in_as_string = False
        #: Issue a new refresh token on every refresh grant.
        self.rotate_refresh_tokens = True
        #: With rotation, a refresh token stops working once it has been exchanged.
        self.strict_rotation = False
        #: Answer ``slow_down`` when a device code is polled sooner than its interval.
        self.device_slow_down_enabled = True
        #: How much earlier than ``interval`` a poll may come before it counts as too fast; MSAL
        #: itself only warns when polling sooner than ``interval - 1`` (reference §2.7).
        self.device_poll_tolerance = 1.0
        self.device_code_lifetime = 900
        self.device_code_interval = 5
        self.authorization_code_lifetime = 600
        #: Browser sign-in (``authorize`` and ``devicelogin`` pages): go straight from a correct
        #: password to the redirect (or the device's "signed in" page) without the consent page.
        #: ``prompt=consent`` shows it anyway.
        self.skip_consent = False
        #: Seconds a sign-in started by the authorize or devicelogin page stays usable.
        self.sign_in_session_lifetime = 600
        #: ``verification_uri`` of device-code sessions; ``None``: Microsoft's
        #: ``https://microsoft.com/devicelogin`` when the request went to a well-known Entra host,
        #: else the mock's own ``{origin}/devicelogin`` page.
        self.device_verification_uri: str | None = None
        #: Tolerated clock skew for client assertion ``exp``/``nbf``.
        self.assertion_clock_skew = 300
        #: Reject a client assertion whose ``jti`` was seen before. Off by default: MSAL reuses one
        #: assertion for 540 s (reference §2.4), so Entra evidently accepts a byte-identical replay.
        self.reject_replayed_jti = False
        #: Hosts instance discovery accepts in ``authorization_endpoint`` (plus the request's host).
        self.trusted_hosts: set[str] = set(WELL_KNOWN_HOSTS)

        # -- managed identity (reference §3) and Azure Pipelines (reference §4.6) ----
        #: ``IDENTITY_HEADER``: App Service's ``X-IDENTITY-HEADER`` and Service Fabric's ``Secret``.
        self.identity_header = f"mi-header-CANARY-{secrets.token_hex(8)}"
        #: ``MSI_SECRET``: Azure ML's ``secret`` header.
        self.msi_secret = f"mi-secret-CANARY-{secrets.token_hex(8)}"
        #: Lifetime of managed-identity tokens in seconds (IMDS tokens live about 24 hours).
        self.managed_identity_token_lifetime = 86400
        #: Where the Arc endpoint writes the key files its 401 challenge names; ``None`` makes the
        #: challenge impossible (the endpoint answers 500).
        self.arc_key_directory: Path | None = None
        #: Arc echoes the requested user-assigned identity; ``False`` plays an old agent that ignores
        #: it and returns the system-assigned identity's token (reference §3.2).
        self.arc_echo_identity = True
        #: Azure ML ``expires_on``: an epoch string, or App Service 2017's ``"MM/DD/YYYY HH:MM:SS +00:00"``.
        self.azure_ml_expires_on_format: Literal["epoch", "date"] = "epoch"
        #: The user signed in to Cloud Shell (a registered username); ``None``: nobody is.
        self.cloud_shell_user: str | None = None

        self.managed_identities: dict[str, ManagedIdentity] = {}  # keyed by lower-cased client id
        self.arc_secrets: dict[str, Path] = {}  # Arc key-file contents -> the file
        self.pipeline_connections: dict[str, PipelineServiceConnection] = {}  # lower-cased id
        self.pipeline_issuers: dict[str, ExternalIssuer] = {}  # lower-cased organization

        self.tenants: dict[str, Tenant] = {}  # keyed by lower-cased tenant id
        self.domains: dict[str, str] = {}  # lower-cased domain -> tenant key
        self.access_tokens: dict[str, IssuedToken] = {}
        self.refresh_tokens: dict[str, RefreshGrant] = {}
        self.authorization_codes: dict[str, AuthorizationCodeGrant] = {}
        self.device_codes: dict[str, DeviceCodeGrant] = {}
        self.user_codes: dict[str, str] = {}  # user code -> device code
        self.sign_in_sessions: dict[str, SignInSession] = {}  # opaque handle -> pending browser sign-in
        self.seen_jtis: set[str] = set()
        self._signing_key = SigningKey(signing_key or default_signing_key())

    # -- keys ----------------------------------------------------------------------------------------
    @property
    def signing_key(self) -> rsa.RSAPrivateKey:
        """The RSA key that signs id tokens; its public half is served at the JWKS endpoint."""
        return self._signing_key.private_key

    @property
    def jwks(self) -> dict[str, Any]:
        """The JWKS document the ``keys`` endpoint serves."""
        return self._signing_key.jwks()

    @property
    def key(self) -> SigningKey:
        """The signing key with its ``kid`` and signing helper."""
        return self._signing_key

    # -- directory lookups -----------------------------------------------------------------------------
    def now(self) -> float:
        """The injected clock's reading."""
        return self.clock()

    def find_tenant(self, segment: str) -> Tenant | None:
        """The tenant a path segment names (GUID or verified domain, case-insensitive), if any."""
        key = segment.lower()
        key = self.domains.get(key, key)
        return self.tenants.get(key)

    def find_application(self, tenant: Tenant | None, client_id: str) -> Application | None:
        """The app ``client_id`` in ``tenant``, or in any tenant when the path named an alias."""
        key = client_id.lower()
        if tenant is not None:
            return tenant.applications.get(key)
        for candidate in self.tenants.values():
            if key in candidate.applications:
                return candidate.applications[key]
        return None

    def find_user(self, tenant_id: str | None, username: str) -> User | None:
        """The user ``username`` in ``tenant_id``, or in any tenant when ``tenant_id`` is ``None``."""
        key = username.lower()
        if tenant_id is not None:
            tenant = self.tenants.get(tenant_id.lower())
            return tenant.users.get(key) if tenant else None
        for candidate in self.tenants.values():
            if key in candidate.users:
                return candidate.users[key]
        return None


def new_secret(prefix: str) -> str:
    """An unguessable, recognisable token value such as ``mock-at-...``."""
    return f"{prefix}{secrets.token_urlsafe(32)}"


def new_user_code() -> str:
    """A 9-character user code like Entra's (upper-case letters and digits)."""
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(9))
