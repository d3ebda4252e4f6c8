"""The directory of a mock authority and the seeding helpers tests call directly.

:class:`Directory` adds to :class:`~conformance.mock.state.AuthorityState` the registry (tenants,
applications, users) and the artefacts whose first step is not an HTTP request in this mock:
refresh tokens, authorization codes (the browser step), device-code approval (the user's step) and
incoming user tokens for on-behalf-of. Seeding errors are programming errors in a test, so they
raise ``KeyError``/``ValueError`` rather than answering like Entra.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import httpx

from conformance.mock.federation import TOKEN_EXCHANGE_AUDIENCE, ExternalIssuer, FederatedCredential
from conformance.mock.keys import registered_certificate
from conformance.mock.models import (
    Application,
    AuthorizationCodeGrant,
    DeviceCodeGrant,
    DeviceCodeStatus,
    IssuedToken,
    Tenant,
    User,
)
from conformance.mock.state import AuthorityState, new_secret
from conformance.mock.tokens import new_refresh_token, resource_scopes

_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def _is_loopback(url: httpx.URL) -> bool:
    return url.scheme == "http" and url.host in _LOOPBACK_HOSTS


def redirect_registered(
    redirect_uri: str,
    registered: Sequence[str],
    *,
    public_client: bool = False,
    require_registration: bool = False,
) -> bool:
    """Whether ``redirect_uri`` may receive an authorization response for an app with ``registered``.

    An exact match passes, and so does a loopback URI (``http://localhost``, ``http://127.0.0.1``,
    ``http://[::1]``) whose scheme, host and path match a registered one on any port: Entra ignores
    the port of loopback redirect URIs (RFC 8252 §7.3). With nothing registered, the seeding API
    (:meth:`Directory.issue_authorization_code`) accepts any URI; the authorize endpoint passes
    ``require_registration``, and then only a public client's loopback URIs pass, on any port and
    path (the ``http://localhost`` of native apps).
    """
    if redirect_uri in registered:
        return True
    try:
        wanted = httpx.URL(redirect_uri)
        candidates = [httpx.URL(candidate) for candidate in registered]
    except httpx.InvalidURL:
        return False
    if not registered:
        return not require_registration or (public_client and _is_loopback(wanted))
    if wanted.host not in _LOOPBACK_HOSTS:
        return False
    key = (wanted.scheme, wanted.host, wanted.path.rstrip("/"))
    return any((c.scheme, c.host, c.path.rstrip("/")) == key for c in candidates)


class Directory(AuthorityState):
    """Registry and seeding API of :class:`conformance.authority.MockAuthority`."""

    # -- registry ----
    def add_tenant(self, tenant_id: str, *, domains: Sequence[str] = ()) -> None:
        """Register a tenant (a GUID, or ``"adfs"`` for the ADFS endpoints); ``domains`` resolve to it."""
        with self.lock:
            key = tenant_id.lower()
            tenant = self.tenants.setdefault(key, Tenant(tenant_id))
            tenant.domains = tuple(dict.fromkeys((*tenant.domains, *(d.lower() for d in domains))))
            for domain in tenant.domains:
                self.domains[domain] = key

    def _tenant(self, tenant_id: str) -> Tenant:
        tenant = self.find_tenant(tenant_id)
        if tenant is None:
            raise KeyError(f"no tenant {tenant_id!r} is registered; call add_tenant first")
        return tenant

    def add_application(
        self,
        tenant_id: str,
        client_id: str,
        *,
        secret: str | None = None,
        certificate: bytes | None = None,
        public_client: bool = False,
        redirect_uris: Sequence[str] = (),
    ) -> None:
        """Register (or replace) an app; ``certificate`` is the PEM of its public certificate."""
        if public_client and (secret or certificate):
            raise ValueError("a public client has no secret or certificate")
        with self.lock:
            tenant = self._tenant(tenant_id)
            tenant.applications[client_id.lower()] = Application(
                tenant_id=tenant.tenant_id,
                client_id=client_id,
                secret=secret,
                certificate=registered_certificate(certificate) if certificate is not None else None,
                public_client=public_client,
                redirect_uris=tuple(redirect_uris),
            )

    def add_federated_credential(
        self,
        tenant_id: str,
        client_id: str,
        issuer: ExternalIssuer,
        subject: str,
        *,
        audiences: Sequence[str] = (TOKEN_EXCHANGE_AUDIENCE,),
    ) -> None:
        """Let ``client_id`` authenticate with tokens ``issuer`` mints for ``subject`` (workload identity)."""
        with self.lock:
            app = self._app(tenant_id, client_id)
            app.federated_credentials.append(
                FederatedCredential(issuer.issuer, subject, issuer.key.public_key(), tuple(audiences))
            )

    def add_user(
        self,
        tenant_id: str,
        username: str,
        password: str,
        *,
        object_id: str | None = None,
        display_name: str | None = None,
    ) -> str:
        """Register (or replace) a user; returns the user's object id (``oid``)."""
        with self.lock:
            tenant = self._tenant(tenant_id)
            oid = object_id or str(uuid.uuid4())
            name = display_name or username.partition("@")[0].replace(".", " ").title()
            tenant.users[username.lower()] = User(tenant.tenant_id, username, password, oid, name)
            return oid

    # -- issued tokens and seeding ----
    def describe_token(self, access_token: str) -> IssuedToken | None:
        """What ``access_token`` grants, or ``None`` if this authority did not issue it."""
        with self.lock:
            return self.access_tokens.get(access_token)

    def _app(self, tenant_id: str, client_id: str) -> Application:
        app = self._tenant(tenant_id).applications.get(client_id.lower())
        if app is None:
            raise KeyError(f"no application {client_id!r} in tenant {tenant_id!r}")
        return app

    def _user(self, tenant_id: str, username: str) -> User:
        user = self.find_user(self._tenant(tenant_id).tenant_id, username)
        if user is None:
            raise KeyError(f"no user {username!r} in tenant {tenant_id!r}")
        return user

    def issue_refresh_token(
        self, tenant_id: str, client_id: str, scopes: Sequence[str], *, username: str | None = None
    ) -> str:
        """A refresh token as if ``username`` had signed in to ``client_id`` earlier."""
        with self.lock:
            app = self._app(tenant_id, client_id)
            user = self._user(tenant_id, username) if username is not None else None
            return new_refresh_token(
                self, app.tenant_id, app.client_id, tuple(scopes), user.username if user else None
            )

    def revoke_refresh_token(self, refresh_token: str) -> None:
        """Make ``refresh_token`` fail with ``invalid_grant`` (AADSTS50173) from now on."""
        with self.lock:
            grant = self.refresh_tokens.get(refresh_token)
            if grant is None:
                raise KeyError("unknown refresh token")
            grant.revoked = True

    def issue_authorization_code(
        self,
        tenant_id: str,
        client_id: str,
        *,
        redirect_uri: str,
        scopes: Sequence[str],
        username: str,
        code_challenge: str | None = None,
        code_challenge_method: str = "S256",
        nonce: str | None = None,
    ) -> str:
        """An authorization code as the authorize step would return it to ``redirect_uri``."""
        if code_challenge_method not in ("S256", "plain"):
            raise ValueError("code_challenge_method must be 'S256' or 'plain'")
        with self.lock:
            app = self._app(tenant_id, client_id)
            user = self._user(tenant_id, username)
            if not redirect_registered(redirect_uri, app.redirect_uris):
                raise ValueError(f"redirect URI {redirect_uri!r} is not registered for {client_id!r}")
            code = new_secret("mock-ac-")
            self.authorization_codes[code] = AuthorizationCodeGrant(
                code=code,
                tenant_id=app.tenant_id,
                client_id=app.client_id,
                redirect_uri=redirect_uri,
                scopes=tuple(scopes),
                username=user.username,
                code_challenge=code_challenge,
                code_challenge_method=code_challenge_method,
                nonce=nonce,
                expires_at=self.now() + self.authorization_code_lifetime,
            )
            return code

    def _device_grant(self, user_code: str) -> DeviceCodeGrant:
        device_code = self.user_codes.get(user_code.upper())
        if device_code is None:
            raise KeyError(f"no device code session with user code {user_code!r}")
        return self.device_codes[device_code]

    def approve_device_code(self, user_code: str, username: str) -> None:
        """The user ``username`` enters ``user_code`` and consents: the next poll gets tokens."""
        with self.lock:
            grant = self._device_grant(user_code)
            user = self.find_user(grant.tenant_id, username)
            if user is None:
                raise KeyError(f"no user {username!r} can approve this device code")
            grant.tenant_id = user.tenant_id
            grant.username = user.username
            grant.status = DeviceCodeStatus.APPROVED

    def decline_device_code(self, user_code: str) -> None:
        """The user declines: the next poll gets ``authorization_declined``."""
        with self.lock:
            self._device_grant(user_code).status = DeviceCodeStatus.DECLINED

    def issue_user_access_token(
        self, tenant_id: str, client_id: str, scopes: Sequence[str], username: str
    ) -> str:
        """An access token ``username`` obtained through ``client_id``: the assertion of an OBO request."""
        with self.lock:
            app = self._app(tenant_id, client_id)
            user = self._user(tenant_id, username)
            now = int(self.now())
            token = new_secret("mock-at-")
            self.access_tokens[token] = IssuedToken(
                access_token=token,
                tenant=app.tenant_id,
                client_id=app.client_id,
                scopes=resource_scopes(tuple(scopes)),
                user=user.username,
                cae=False,
                claims=None,
                expires_on=now + self.token_lifetime,
                grant_type="seeded",
                issued_at=now,
            )
            return token
