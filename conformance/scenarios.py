"""The conformance scenarios: what any Entra ID client must do against the mock authority.

Each scenario is an ``async`` function of a :class:`ScenarioContext` registered with
:func:`scenario`; it builds credentials through the context's :class:`Implementation`, acquires
tokens, and asserts on what the mock authority received and what the client returned. The same
scenarios run against this project's ``identity`` (sync and async) and against ``azure.identity``
(the reference client): a scenario the reference fails points at a mock that is wrong.

Managed identity, Azure Pipelines and DefaultAzureCredential read their configuration from the
environment: those scenarios set exactly the variables the mock names, with every other
credential-selecting variable cleared, for as long as their credentials live
(:func:`scenario_environment`), and restore ``os.environ`` afterwards. Managed identity endpoints
are served over a plain-HTTP loopback mount (Service Fabric over the HTTPS one), and IMDS's host is
always that mount: no scenario can reach 169.254.169.254.

Run them with pytest (``tests/conformance/test_scenarios.py``) or from your own suite with
:func:`run_scenario`.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .authority import (
    DEFAULT_CLIENT_ID,
    DEFAULT_MI_CLIENT_ID,
    DEFAULT_MI_OBJECT_ID,
    DEFAULT_SECRET,
    DEFAULT_TENANT,
    DEFAULT_USERNAME,
    SYSTEM_MI_CLIENT_ID,
    Fault,
    MockAuthority,
)
from .implementations import Implementation, Target
from .mock.keys import ClientCertificate, generate_client_certificate

__all__ = [
    "CREDENTIAL_VARIABLES",
    "SCENARIOS",
    "Scenario",
    "ScenarioContext",
    "run_scenario",
    "scenario",
    "scenario_environment",
]

SCOPE = "https://vault.azure.net/.default"
OTHER_SCOPE = "https://storage.azure.com/.default"
OTHER_TENANT = "22222222-2222-2222-2222-222222222222"
CAE_CLAIMS_VALUE = ["cp1"]
#: What a managed identity endpoint receives for SCOPE: the scope without ``/.default``.
RESOURCE = "https://vault.azure.net"

#: Environment variables that select credentials (EnvironmentCredential, workload identity, every
#: managed identity source, Azure Pipelines, DefaultAzureCredential's narrowing): cleared for the
#: scenarios that read the environment, whatever the machine running them has set.
CREDENTIAL_VARIABLES = (
    "AZURE_AUTHORITY_HOST",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_PASSWORD",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "AZURE_TENANT_ID",
    "AZURE_TOKEN_CREDENTIALS",
    "AZURE_USERNAME",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "SYSTEM_OIDCREQUESTURI",
)


@contextlib.contextmanager
def scenario_environment(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with every :data:`CREDENTIAL_VARIABLES` cleared and ``values`` set; restored
    on exit.

    Keep it for the whole life of the credentials made inside: ours read their source when built,
    azure-identity's sync managed identity (MSAL) reads the variables again at every request.
    """
    names = {*CREDENTIAL_VARIABLES, *values}
    saved = {name: os.environ.get(name) for name in names}
    for name in CREDENTIAL_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class ScenarioContext:
    """What a scenario works with."""

    authority: MockAuthority
    target: Target
    impl: Implementation

    def client_secret(self, **kwargs: Any) -> Any:
        return self.impl.credential(
            "client_secret", self.target, DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, **kwargs
        )

    def token_requests(self) -> list[Any]:
        return self.authority.requests_to("token")

    def managed_identity(self, **kwargs: Any) -> Any:
        return self.impl.credential("managed_identity", self.target, **kwargs)

    @contextlib.asynccontextmanager
    async def closing(self, credential: Any) -> AsyncIterator[Any]:
        """``credential``, closed on the way out even when an assertion failed."""
        try:
            yield credential
        finally:
            await self.impl.close(credential)

    @contextlib.contextmanager
    def managed_identity_source(self, source: str, *, thumbprint: str | None = None) -> Iterator[str]:
        """The mock serving ``source``'s endpoint and the environment selecting it; yields the origin.

        Every source but Service Fabric is served over plain HTTP (a new loopback mount, as on Azure);
        Service Fabric uses the HTTPS mount, pinned by its certificate's thumbprint (or
        ``thumbprint``). IMDS's host is always replaced by the plain-HTTP mount: nothing can reach
        169.254.169.254.
        """
        with self.authority.serve_http() as http:
            origin = self.target.authority if source == "service-fabric" else http.url
            values = {
                "AZURE_POD_IDENTITY_AUTHORITY_HOST": http.url,
                **self.authority.managed_identity_environment(source, origin, thumbprint=thumbprint),
            }
            with scenario_environment(values):
                yield origin

    async def expect_failure(self, awaitable: Awaitable[Any]) -> BaseException:
        """Await ``awaitable`` and return the ClientAuthenticationError it raised."""
        from identity.errors import ClientAuthenticationError as CoreError

        try:
            await awaitable
        except CoreError as exc:
            return exc
        except Exception as exc:
            raise AssertionError(
                f"{self.impl.name} raised {type(exc).__name__} instead of ClientAuthenticationError: {exc}"
            ) from exc
        raise AssertionError(f"{self.impl.name} returned a token where it should have failed")


ScenarioFunc = Callable[[ScenarioContext], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    name: str
    needs: str
    func: ScenarioFunc
    doc: str


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, *, needs: str = "client_secret") -> Callable[[ScenarioFunc], ScenarioFunc]:
    """Register a scenario that needs credentials of kind ``needs``."""

    def register(func: ScenarioFunc) -> ScenarioFunc:
        SCENARIOS[name] = Scenario(name, needs, func, (func.__doc__ or "").strip())
        return func

    return register


async def run_scenario(name: str, authority: MockAuthority, target: Target, impl: Implementation) -> None:
    """Run one scenario; raises ``AssertionError`` when the implementation does not conform."""
    await SCENARIOS[name].func(ScenarioContext(authority, target, impl))


def _form_without_volatile(form: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in form.items() if k not in ("client_info", "x-client-sku")}


def _capabilities(claims: str | None) -> list[str]:
    if not claims:
        return []
    values = json.loads(claims).get("access_token", {}).get("xms_cc", {}).get("values", [])
    return [str(v).lower() for v in values]


# --- client secret ---------------------------------------------------------------------------


@scenario("client_secret_first_token")
async def _first_token(ctx: ScenarioContext) -> None:
    """One client-credentials request with the secret in the body; the issued token comes back."""
    credential = ctx.client_secret()
    before = time.time()
    token = await ctx.impl.get_token(credential, SCOPE)
    requests = ctx.token_requests()
    assert len(requests) == 1, f"expected 1 token request, got {len(requests)}"
    request = requests[0]
    assert request.method == "POST"
    assert request.path == f"/{DEFAULT_TENANT}/oauth2/v2.0/token", request.path
    assert request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
    assert _form_without_volatile(request.form) == {
        "grant_type": "client_credentials",
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_SECRET,
        "scope": SCOPE,
    }, request.form
    issued = ctx.authority.describe_token(token.token)
    assert issued is not None, "the returned token is not one the authority issued"
    assert issued.client_id == DEFAULT_CLIENT_ID and issued.user is None
    assert list(issued.scopes) == [SCOPE]
    assert abs(token.expires_on - (before + ctx.authority.token_lifetime)) < 60, token.expires_on
    await ctx.impl.close(credential)


@scenario("cached_token_reused")
async def _cached(ctx: ScenarioContext) -> None:
    """A second request for the same scope is served from the cache; another scope is not."""
    credential = ctx.client_secret()
    first = await ctx.impl.get_token(credential, SCOPE)
    second = await ctx.impl.get_token(credential, SCOPE)
    assert first.token == second.token
    assert len(ctx.token_requests()) == 1
    other = await ctx.impl.get_token(credential, OTHER_SCOPE)
    assert other.token != first.token
    assert len(ctx.token_requests()) == 2
    await ctx.impl.close(credential)


@scenario("get_token_info_shape")
async def _token_info(ctx: ScenarioContext) -> None:
    """``get_token_info`` returns an AccessTokenInfo with token type and expiry."""
    credential = ctx.client_secret()
    info = await ctx.impl.get_token_info(credential, SCOPE)
    assert info.token_type.lower() == "bearer"
    assert ctx.authority.describe_token(info.token) is not None
    assert info.expires_on > time.time() + 3000
    await ctx.impl.close(credential)


# --- certificate and assertion ---------------------------------------------------------------


def _register_certificate_app(authority: MockAuthority) -> tuple[str, ClientCertificate]:
    client_id = str(uuid.uuid4())
    certificate = generate_client_certificate("conformance-client")
    authority.add_application(DEFAULT_TENANT, client_id, certificate=certificate.certificate_pem)
    return client_id, certificate


@scenario("certificate_assertion", needs="certificate")
async def _certificate(ctx: ScenarioContext) -> None:
    """A certificate credential sends a signed assertion the authority accepts, and no secret."""
    client_id, certificate = _register_certificate_app(ctx.authority)
    credential = ctx.impl.credential("certificate", ctx.target, DEFAULT_TENANT, client_id, certificate.pem)
    token = await ctx.impl.get_token(credential, SCOPE)
    requests = ctx.token_requests()
    assert len(requests) == 1
    form = requests[0].form
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert form["grant_type"] == "client_credentials" and form["client_id"] == client_id
    assert "client_secret" not in form
    issued = ctx.authority.describe_token(token.token)
    assert issued is not None and issued.client_id == client_id
    await ctx.impl.close(credential)


@scenario("assertion_callable", needs="assertion")
async def _assertion(ctx: ScenarioContext) -> None:
    """The assertion callable is called for each token request and its JWT is sent as is."""
    import jwt

    client_id, certificate = _register_certificate_app(ctx.authority)
    endpoint = f"{ctx.target.authority}/{DEFAULT_TENANT}/oauth2/v2.0/token"
    issued_assertions: list[str] = []

    def func() -> str:
        now = int(time.time())
        claims = {
            "aud": endpoint,
            "iss": client_id,
            "sub": client_id,
            "jti": str(uuid.uuid4()),
            "nbf": now,
            "iat": now,
            "exp": now + 600,
        }
        import base64
        import binascii

        x5t = base64.urlsafe_b64encode(binascii.unhexlify(certificate.thumbprint)).rstrip(b"=").decode()
        value = jwt.encode(claims, certificate.private_key, algorithm="RS256", headers={"x5t": x5t})
        issued_assertions.append(value)
        return value

    credential = ctx.impl.credential("assertion", ctx.target, DEFAULT_TENANT, client_id, func)
    await ctx.impl.get_token(credential, SCOPE)
    await ctx.impl.get_token(credential, OTHER_SCOPE)
    requests = ctx.token_requests()
    assert len(requests) == 2
    assert [r.form["client_assertion"] for r in requests] == issued_assertions
    await ctx.impl.close(credential)


# --- errors ----------------------------------------------------------------------------------


@scenario("invalid_secret_not_retried")
async def _invalid_secret(ctx: ScenarioContext) -> None:
    """A wrong secret (401 invalid_client, AADSTS7000215) fails at once, naming the Entra code."""
    credential = ctx.impl.credential(
        "client_secret", ctx.target, DEFAULT_TENANT, DEFAULT_CLIENT_ID, "not-the-secret"
    )
    error = await ctx.expect_failure(ctx.impl.get_token(credential, SCOPE))
    assert "7000215" in str(error), str(error)
    assert len(ctx.token_requests()) == 1, "an invalid_client error must not be retried"
    await ctx.impl.close(credential)


@scenario("unknown_client")
async def _unknown_client(ctx: ScenarioContext) -> None:
    """An application id the tenant does not know fails with AADSTS700016."""
    credential = ctx.impl.credential("client_secret", ctx.target, DEFAULT_TENANT, str(uuid.uuid4()), "x")
    error = await ctx.expect_failure(ctx.impl.get_token(credential, SCOPE))
    assert "700016" in str(error), str(error)
    await ctx.impl.close(credential)


@scenario("unsupported_scope")
async def _bad_scope(ctx: ScenarioContext) -> None:
    """Client credentials with a scope that is not '<resource>/.default' fail with AADSTS1002012."""
    credential = ctx.client_secret()
    error = await ctx.expect_failure(ctx.impl.get_token(credential, "https://vault.azure.net/secrets.read"))
    assert "1002012" in str(error), str(error)
    await ctx.impl.close(credential)


@scenario("retry_on_503")
async def _retry_503(ctx: ScenarioContext) -> None:
    """A 503 from the token endpoint is retried and the second attempt's token returned."""
    ctx.authority.inject(Fault.status(503), endpoint="token")
    credential = ctx.client_secret()
    token = await ctx.impl.get_token(credential, SCOPE)
    assert ctx.authority.describe_token(token.token) is not None
    assert len(ctx.token_requests()) == 2
    await ctx.impl.close(credential)


@scenario("retry_after_429")
async def _retry_429(ctx: ScenarioContext) -> None:
    """A 429 with Retry-After is retried after the wait."""
    ctx.authority.inject(Fault.status(429, retry_after="1"), endpoint="token")
    credential = ctx.client_secret()
    start = time.monotonic()
    token = await ctx.impl.get_token(credential, SCOPE)
    assert time.monotonic() - start >= 0.9, "Retry-After was not honoured"
    assert ctx.authority.describe_token(token.token) is not None
    assert len(ctx.token_requests()) == 2
    await ctx.impl.close(credential)


@scenario("dropped_connection_retried")
async def _dropped(ctx: ScenarioContext) -> None:
    """A connection closed without a response is retried."""
    ctx.authority.inject(Fault.drop_connection(), endpoint="token")
    credential = ctx.client_secret()
    token = await ctx.impl.get_token(credential, SCOPE)
    assert ctx.authority.describe_token(token.token) is not None
    assert len(ctx.token_requests()) == 2
    await ctx.impl.close(credential)


@scenario("server_errors_exhaust_retries")
async def _exhausted(ctx: ScenarioContext) -> None:
    """Persistent 500s give up after 3 retries (4 attempts) with an authentication error."""
    ctx.authority.inject(Fault.status(500), endpoint="token", times=10)
    credential = ctx.client_secret()
    await ctx.expect_failure(ctx.impl.get_token(credential, SCOPE))
    assert len(ctx.token_requests()) == 4, len(ctx.token_requests())
    await ctx.impl.close(credential)


@scenario("malformed_token_response")
async def _malformed(ctx: ScenarioContext) -> None:
    """A 200 whose body is not JSON is an authentication error, not a crash."""
    ctx.authority.inject(
        Fault.malformed(b"<html><body>proxy login</body></html>", "text/html"), endpoint="token"
    )
    credential = ctx.client_secret()
    await ctx.expect_failure(ctx.impl.get_token(credential, SCOPE))
    await ctx.impl.close(credential)


@scenario("token_response_without_access_token")
async def _no_access_token(ctx: ScenarioContext) -> None:
    """A 200 JSON body without ``access_token`` is an authentication error."""
    ctx.authority.inject(
        Fault.malformed(b'{"token_type": "Bearer", "expires_in": 3600}', "application/json"), endpoint="token"
    )
    credential = ctx.client_secret()
    await ctx.expect_failure(ctx.impl.get_token(credential, SCOPE))
    await ctx.impl.close(credential)


# --- CAE, claims and tenants -----------------------------------------------------------------


@scenario("cae_declares_cp1")
async def _cae(ctx: ScenarioContext) -> None:
    """``enable_cae=True`` declares the cp1 capability and gets a CAE token, cached apart."""
    credential = ctx.client_secret()
    plain = await ctx.impl.get_token(credential, SCOPE)
    cae = await ctx.impl.get_token(credential, SCOPE, enable_cae=True)
    requests = ctx.token_requests()
    assert len(requests) == 2, "CAE and non-CAE tokens must be cached apart"
    assert "claims" not in requests[0].form
    assert _capabilities(requests[1].form.get("claims")) == CAE_CLAIMS_VALUE
    issued = ctx.authority.describe_token(cae.token)
    assert issued is not None and issued.cae and cae.token != plain.token
    await ctx.impl.close(credential)


@scenario("claims_challenge_bypasses_cache")
async def _claims(ctx: ScenarioContext) -> None:
    """A claims challenge skips the cached token and is sent, merged with cp1."""
    credential = ctx.client_secret()
    await ctx.impl.get_token(credential, SCOPE, enable_cae=True)
    challenge = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}'
    await ctx.impl.get_token(credential, SCOPE, enable_cae=True, claims=challenge)
    requests = ctx.token_requests()
    assert len(requests) == 2, "a claims challenge must bypass the cached token"
    sent = json.loads(requests[1].form["claims"])
    assert sent["access_token"]["nbf"] == {"essential": True, "value": "1700000000"}
    assert _capabilities(requests[1].form["claims"]) == CAE_CLAIMS_VALUE
    await ctx.impl.close(credential)


@scenario("tenant_not_allowed_sends_nothing")
async def _tenant_refused(ctx: ScenarioContext) -> None:
    """A per-call tenant that is not allowed fails without any request."""
    credential = ctx.client_secret()
    error = await ctx.expect_failure(ctx.impl.get_token(credential, SCOPE, tenant_id=OTHER_TENANT))
    assert OTHER_TENANT in str(error) and "additionally_allowed_tenants" in str(error)
    assert ctx.token_requests() == []
    await ctx.impl.close(credential)


@scenario("tenant_allowed_by_wildcard")
async def _tenant_allowed(ctx: ScenarioContext) -> None:
    """With ``additionally_allowed_tenants=["*"]`` a per-call tenant is used for the request."""
    ctx.authority.add_tenant(OTHER_TENANT)
    ctx.authority.add_application(OTHER_TENANT, DEFAULT_CLIENT_ID, secret=DEFAULT_SECRET)
    credential = ctx.client_secret(additionally_allowed_tenants=["*"])
    token = await ctx.impl.get_token(credential, SCOPE, tenant_id=OTHER_TENANT)
    requests = ctx.token_requests()
    assert [r.path for r in requests] == [f"/{OTHER_TENANT}/oauth2/v2.0/token"]
    issued = ctx.authority.describe_token(token.token)
    assert issued is not None and issued.tenant == OTHER_TENANT
    await ctx.impl.close(credential)


# --- authorities and discovery ---------------------------------------------------------------


@scenario("custom_authority_reads_metadata")
async def _metadata(ctx: ScenarioContext) -> None:
    """A custom authority (instance discovery off) is resolved through its OpenID metadata."""
    credential = ctx.client_secret()
    await ctx.impl.get_token(credential, SCOPE)
    endpoints = [r.endpoint for r in ctx.authority.requests]
    assert endpoints[0] == "openid-configuration", endpoints
    assert endpoints[-1] == "token", endpoints
    assert "instance-discovery" not in endpoints
    await ctx.impl.close(credential)


@scenario("unknown_tenant")
async def _unknown_tenant(ctx: ScenarioContext) -> None:
    """A tenant the authority does not know fails with AADSTS90002, as a clear error."""
    credential = ctx.impl.credential(
        "client_secret", ctx.target, "33333333-3333-3333-3333-333333333333", DEFAULT_CLIENT_ID, DEFAULT_SECRET
    )
    if ctx.impl.library == "identity":
        error = await ctx.expect_failure(ctx.impl.get_token(credential, SCOPE))
        assert "90002" in str(error), str(error)
    else:
        # azure-identity's sync credentials raise ValueError from MSAL's discovery ("Unable to get
        # authority configuration"); the async ones an authentication error naming the code.
        try:
            await ctx.impl.get_token(credential, SCOPE)
        except Exception as exc:
            message = str(exc)
        else:
            raise AssertionError("a token was returned for a tenant that does not exist")
        assert "90002" in message or "authority configuration" in message, message
    await ctx.impl.close(credential)


# --- refresh ---------------------------------------------------------------------------------


@scenario("refresh_after_code_redemption", needs="authorization_code")
async def _refresh(ctx: ScenarioContext) -> None:
    """An authorization code is redeemed once; an expired token is renewed with the refresh token."""
    from .authority import DEFAULT_USERNAME

    redirect_uri = "http://localhost:8400"
    ctx.authority.add_application(
        DEFAULT_TENANT, DEFAULT_CLIENT_ID, secret=DEFAULT_SECRET, redirect_uris=[redirect_uri]
    )
    code = ctx.authority.issue_authorization_code(
        DEFAULT_TENANT,
        DEFAULT_CLIENT_ID,
        redirect_uri=redirect_uri,
        scopes=[SCOPE],
        username=DEFAULT_USERNAME,
    )
    # Tokens that expire as they are issued: the next request must renew rather than reuse.
    ctx.authority.token_lifetime = 0
    credential = ctx.impl.credential(
        "authorization_code",
        ctx.target,
        DEFAULT_TENANT,
        DEFAULT_CLIENT_ID,
        code,
        redirect_uri,
        DEFAULT_SECRET,
    )
    first = await ctx.impl.get_token(credential, SCOPE)
    second = await ctx.impl.get_token(credential, SCOPE)
    grants = [r.form["grant_type"] for r in ctx.token_requests()]
    assert grants == ["authorization_code", "refresh_token"], grants
    assert first.token != second.token
    for token in (first, second):
        issued = ctx.authority.describe_token(token.token)
        assert issued is not None
        assert issued.user == DEFAULT_USERNAME
    await ctx.impl.close(credential)


@scenario("device_code_sign_in_then_refresh", needs="device_code")
async def _device_code(ctx: ScenarioContext) -> None:
    """A user signs in with a device code (the prompt shows the URI and code; the user approves);
    another resource then comes silently from the refresh token."""
    from .authority import DEFAULT_USERNAME, PUBLIC_CLIENT_ID

    prompts: list[tuple[str, str]] = []

    def prompt(verification_uri: str, user_code: str, expires_on: Any) -> None:
        prompts.append((verification_uri, user_code))
        ctx.authority.approve_device_code(user_code, DEFAULT_USERNAME)

    credential = ctx.impl.credential("device_code", ctx.target, DEFAULT_TENANT, PUBLIC_CLIENT_ID, prompt)
    first = await ctx.impl.get_token(credential, SCOPE)
    second = await ctx.impl.get_token(credential, "https://storage.azure.com/.default")
    assert len(prompts) == 1, prompts
    [start] = ctx.authority.requests_to("devicecode")
    assert start.form["client_id"] == PUBLIC_CLIENT_ID
    assert {"openid", "profile", "offline_access", SCOPE} <= set(start.form["scope"].split())
    grants = [r.form["grant_type"] for r in ctx.token_requests()]
    assert grants == ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"], grants
    for token in (first, second):
        issued = ctx.authority.describe_token(token.token)
        assert issued is not None
        assert issued.user == DEFAULT_USERNAME
    await ctx.impl.close(credential)


@scenario("username_password_then_refresh", needs="username_password")
async def _username_password(ctx: ScenarioContext) -> None:
    """Resource owner password credentials (deprecated upstream), then the refresh token."""
    from .authority import DEFAULT_PASSWORD, DEFAULT_USERNAME, PUBLIC_CLIENT_ID

    credential = ctx.impl.credential(
        "username_password", ctx.target, DEFAULT_TENANT, PUBLIC_CLIENT_ID, DEFAULT_USERNAME, DEFAULT_PASSWORD
    )
    first = await ctx.impl.get_token(credential, SCOPE)
    second = await ctx.impl.get_token(credential, "https://storage.azure.com/.default")
    requests = ctx.token_requests()
    assert [r.form["grant_type"] for r in requests] == ["password", "refresh_token"]
    assert (requests[0].form["username"], requests[0].form["client_id"]) == (
        DEFAULT_USERNAME,
        PUBLIC_CLIENT_ID,
    )
    for token in (first, second):
        issued = ctx.authority.describe_token(token.token)
        assert issued is not None
        assert issued.user == DEFAULT_USERNAME
    await ctx.impl.close(credential)


@scenario("federated_assertion", needs="assertion")
async def _federated(ctx: ScenarioContext) -> None:
    """A token from a trusted external issuer (workload identity federation) is a client credential."""
    from .authority import ExternalIssuer

    issuer = ExternalIssuer("https://oidc.prod-aks.example.test/7d1c/")
    client_id = str(uuid.uuid4())
    ctx.authority.add_application(DEFAULT_TENANT, client_id)
    ctx.authority.add_federated_credential(DEFAULT_TENANT, client_id, issuer, "system:serviceaccount:ns:app")
    trusted = ctx.impl.credential(
        "assertion",
        ctx.target,
        DEFAULT_TENANT,
        client_id,
        lambda: issuer.mint("system:serviceaccount:ns:app"),
    )
    token = await ctx.impl.get_token(trusted, SCOPE)
    issued = ctx.authority.describe_token(token.token)
    assert issued is not None
    assert issued.client_id == client_id
    await ctx.impl.close(trusted)

    stranger = ctx.impl.credential(
        "assertion",
        ctx.target,
        DEFAULT_TENANT,
        client_id,
        lambda: issuer.mint("system:serviceaccount:ns:other"),
    )
    error = await ctx.expect_failure(ctx.impl.get_token(stranger, SCOPE))
    assert "700213" in str(error), str(error)
    await ctx.impl.close(stranger)


# --- on-behalf-of ----------------------------------------------------------------------------


@scenario("on_behalf_of", needs="on_behalf_of")
async def _on_behalf_of(ctx: ScenarioContext) -> None:
    """A middle tier exchanges its caller's token; tokens stay bound to that caller's assertion."""
    from .authority import DEFAULT_USERNAME, PUBLIC_CLIENT_ID

    downstream = "https://graph.microsoft.com/.default"
    alice = ctx.authority.issue_user_access_token(
        DEFAULT_TENANT, PUBLIC_CLIENT_ID, [f"api://{DEFAULT_CLIENT_ID}/access"], DEFAULT_USERNAME
    )
    bob_name = "bob@contoso.onmicrosoft.com"
    ctx.authority.add_user(DEFAULT_TENANT, bob_name, "mock-password-bob")
    bob = ctx.authority.issue_user_access_token(
        DEFAULT_TENANT, PUBLIC_CLIENT_ID, [f"api://{DEFAULT_CLIENT_ID}/access"], bob_name
    )
    for_alice = ctx.impl.credential(
        "on_behalf_of", ctx.target, DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, alice
    )
    for_bob = ctx.impl.credential(
        "on_behalf_of", ctx.target, DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, bob
    )
    alice_token = await ctx.impl.get_token(for_alice, downstream)
    again = await ctx.impl.get_token(for_alice, downstream)
    bob_token = await ctx.impl.get_token(for_bob, downstream)
    requests = ctx.token_requests()
    assert len(requests) == 2, "the second request for alice must come from the cache"
    form = requests[0].form
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert form["requested_token_use"] == "on_behalf_of"
    assert form["assertion"] == alice
    assert form["client_secret"] == DEFAULT_SECRET
    assert again.token == alice_token.token
    issued_alice = ctx.authority.describe_token(alice_token.token)
    issued_bob = ctx.authority.describe_token(bob_token.token)
    assert issued_alice is not None
    assert issued_bob is not None
    assert (issued_alice.user, issued_bob.user) == (DEFAULT_USERNAME, bob_name)
    await ctx.impl.close(for_alice)
    await ctx.impl.close(for_bob)


# --- workload identity -----------------------------------------------------------------------


@scenario("workload_identity_token_file", needs="workload_identity")
async def _workload_identity(ctx: ScenarioContext) -> None:
    """The federated token in the projected file is the client assertion of the token request."""
    import os
    import tempfile

    from .authority import ExternalIssuer

    issuer = ExternalIssuer("https://oidc.cluster.example.test/")
    client_id = str(uuid.uuid4())
    ctx.authority.add_application(DEFAULT_TENANT, client_id)
    ctx.authority.add_federated_credential(DEFAULT_TENANT, client_id, issuer, "system:serviceaccount:ns:app")
    projected = issuer.mint("system:serviceaccount:ns:app")
    handle, path = tempfile.mkstemp(prefix="federated-token-")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(projected)
        credential = ctx.impl.credential("workload_identity", ctx.target, DEFAULT_TENANT, client_id, path)
        token = await ctx.impl.get_token(credential, SCOPE)
        issued = ctx.authority.describe_token(token.token)
        assert issued is not None
        assert issued.client_id == client_id
        assert ctx.token_requests()[-1].form["client_assertion"] == projected
        await ctx.impl.close(credential)
    finally:
        os.unlink(path)


# --- managed identity ------------------------------------------------------------------------


def _only_request(ctx: ScenarioContext, endpoint: str) -> Any:
    requests = ctx.authority.requests_to(endpoint)
    assert len(requests) == 1, f"expected 1 request to {endpoint}, got {len(requests)}"
    others = [r.endpoint for r in ctx.authority.requests if r.endpoint != endpoint]
    assert not others, f"unexpected requests to {others}"
    return requests[0]


def _assert_managed_identity_token(
    ctx: ScenarioContext, token: Any, source: str, client_id: str, *, user: str | None = None
) -> None:
    issued = ctx.authority.describe_token(token.token)
    assert issued is not None, "the returned token is not one the authority issued"
    assert issued.grant_type == f"managed_identity:{source}", issued.grant_type
    assert issued.client_id.lower() == client_id.lower(), (issued.client_id, client_id)
    assert issued.scopes == (RESOURCE,), issued.scopes
    assert issued.user == user, issued.user
    assert token.expires_on > time.time() + 600, "the token's expiry was not read"


async def _managed_identity_token(ctx: ScenarioContext, source: str, **kwargs: Any) -> Any:
    """One token from a managed identity credential built (and closed) while ``source`` is selected."""
    with ctx.managed_identity_source(source):
        async with ctx.closing(ctx.managed_identity(**kwargs)) as credential:
            return await ctx.impl.get_token(credential, SCOPE)


@scenario("managed_identity_imds_system_assigned", needs="managed_identity")
async def _imds_system(ctx: ScenarioContext) -> None:
    """IMDS: GET with ``Metadata: true``, api-version 2018-02-01 and the resource (the scope without
    ``/.default``); no identity parameter, so the system-assigned identity's token."""
    token = await _managed_identity_token(ctx, "imds")
    request = _only_request(ctx, "imds")
    assert request.method == "GET"
    assert request.headers.get("metadata") == "true", request.headers
    assert request.query == {"api-version": "2018-02-01", "resource": RESOURCE}, request.query
    _assert_managed_identity_token(ctx, token, "imds", SYSTEM_MI_CLIENT_ID)


@scenario("managed_identity_imds_client_id", needs="managed_identity")
async def _imds_client_id(ctx: ScenarioContext) -> None:
    """IMDS: a user-assigned identity named by ``client_id=`` is the ``client_id`` query parameter."""
    token = await _managed_identity_token(ctx, "imds", client_id=DEFAULT_MI_CLIENT_ID)
    request = _only_request(ctx, "imds")
    assert request.headers.get("metadata") == "true", request.headers
    assert request.query == {
        "api-version": "2018-02-01",
        "resource": RESOURCE,
        "client_id": DEFAULT_MI_CLIENT_ID,
    }, request.query
    _assert_managed_identity_token(ctx, token, "imds", DEFAULT_MI_CLIENT_ID)


@scenario("managed_identity_imds_object_id", needs="managed_identity")
async def _imds_object_id(ctx: ScenarioContext) -> None:
    """IMDS: ``identity_config={"object_id": ...}`` is the ``object_id`` query parameter."""
    token = await _managed_identity_token(ctx, "imds", identity_config={"object_id": DEFAULT_MI_OBJECT_ID})
    request = _only_request(ctx, "imds")
    assert request.headers.get("metadata") == "true", request.headers
    assert request.query == {
        "api-version": "2018-02-01",
        "resource": RESOURCE,
        "object_id": DEFAULT_MI_OBJECT_ID,
    }, request.query
    _assert_managed_identity_token(ctx, token, "imds", DEFAULT_MI_CLIENT_ID)


@scenario("managed_identity_imds_retries_503", needs="managed_identity")
async def _imds_retry(ctx: ScenarioContext) -> None:
    """IMDS: a 503 is retried (IMDS's retry guidance); the second attempt's token comes back."""
    ctx.authority.inject(Fault.status(503), endpoint="imds")
    token = await _managed_identity_token(ctx, "imds")
    requests = ctx.authority.requests_to("imds")
    assert [r.fault is not None for r in requests] == [True, False], [r.fault for r in requests]
    assert requests[0].query == requests[1].query
    _assert_managed_identity_token(ctx, token, "imds", SYSTEM_MI_CLIENT_ID)


@scenario("managed_identity_token_cached", needs="managed_identity")
async def _mi_cached(ctx: ScenarioContext) -> None:
    """A second request for the same scope is served from the cache: no second request to IMDS."""
    with ctx.managed_identity_source("imds"):
        async with ctx.closing(ctx.managed_identity()) as credential:
            first = await ctx.impl.get_token(credential, SCOPE)
            second = await ctx.impl.get_token(credential, SCOPE)
            assert len(ctx.authority.requests_to("imds")) == 1, "the second token must come from the cache"
            assert second.token == first.token
            await ctx.impl.get_token(credential, OTHER_SCOPE)
            assert len(ctx.authority.requests_to("imds")) == 2, "another scope is another token"


@scenario("managed_identity_imds_unknown_identity", needs="managed_identity")
async def _imds_unknown(ctx: ScenarioContext) -> None:
    """IMDS: a user-assigned identity that is not assigned (HTTP 400) makes the credential
    unavailable (CredentialUnavailableError, so a chain moves on), after one request."""
    unknown = str(uuid.uuid4())
    with ctx.managed_identity_source("imds"):
        async with ctx.closing(ctx.managed_identity(client_id=unknown)) as credential:
            error = await ctx.expect_failure(ctx.impl.get_token(credential, SCOPE))
    unavailable = ctx.impl.unavailable_error()
    assert isinstance(error, unavailable), f"{type(error).__name__} is not a {unavailable.__name__}"
    request = _only_request(ctx, "imds")
    assert request.query.get("client_id") == unknown


@scenario("managed_identity_app_service_system_assigned", needs="managed_identity")
async def _app_service_system(ctx: ScenarioContext) -> None:
    """App Service: GET ``$IDENTITY_ENDPOINT`` with ``X-IDENTITY-HEADER: $IDENTITY_HEADER`` and
    api-version 2019-08-01."""
    token = await _managed_identity_token(ctx, "app-service")
    request = _only_request(ctx, "app-service")
    assert request.method == "GET"
    assert request.headers.get("x-identity-header") == ctx.authority.identity_header
    assert request.query == {"api-version": "2019-08-01", "resource": RESOURCE}, request.query
    _assert_managed_identity_token(ctx, token, "app-service", SYSTEM_MI_CLIENT_ID)


@scenario("managed_identity_app_service_user_assigned", needs="managed_identity")
async def _app_service_user(ctx: ScenarioContext) -> None:
    """App Service: a user-assigned identity by client id is the ``client_id`` query parameter."""
    token = await _managed_identity_token(ctx, "app-service", client_id=DEFAULT_MI_CLIENT_ID)
    request = _only_request(ctx, "app-service")
    assert request.headers.get("x-identity-header") == ctx.authority.identity_header
    assert request.query == {
        "api-version": "2019-08-01",
        "resource": RESOURCE,
        "client_id": DEFAULT_MI_CLIENT_ID,
    }, request.query
    _assert_managed_identity_token(ctx, token, "app-service", DEFAULT_MI_CLIENT_ID)


@scenario("managed_identity_azure_ml_client_id", needs="managed_identity")
async def _azure_ml(ctx: ScenarioContext) -> None:
    """Azure ML: GET ``$MSI_ENDPOINT`` with the ``secret`` header, api-version 2017-09-01 and the
    2017 API's ``clientid`` spelling of a user-assigned client id."""
    token = await _managed_identity_token(ctx, "azure-ml", client_id=DEFAULT_MI_CLIENT_ID)
    request = _only_request(ctx, "azure-ml")
    assert request.method == "GET"
    assert request.headers.get("secret") == ctx.authority.msi_secret
    assert request.query == {
        "api-version": "2017-09-01",
        "resource": RESOURCE,
        "clientid": DEFAULT_MI_CLIENT_ID,
    }, request.query
    _assert_managed_identity_token(ctx, token, "azure-ml", DEFAULT_MI_CLIENT_ID)


@scenario("managed_identity_cloud_shell", needs="managed_identity")
async def _cloud_shell(ctx: ScenarioContext) -> None:
    """Cloud Shell: POST ``$MSI_ENDPOINT`` with the resource as a form field and ``Metadata: true``;
    the token is the signed-in user's."""
    from .authority import CLOUD_SHELL_CLIENT_ID

    token = await _managed_identity_token(ctx, "cloud-shell")
    request = _only_request(ctx, "cloud-shell")
    assert request.method == "POST"
    assert request.headers.get("metadata") == "true", request.headers
    assert request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
    assert request.form == {"resource": RESOURCE}, request.form
    _assert_managed_identity_token(ctx, token, "cloud-shell", CLOUD_SHELL_CLIENT_ID, user=DEFAULT_USERNAME)


@scenario("managed_identity_service_fabric", needs="managed_identity")
async def _service_fabric(ctx: ScenarioContext) -> None:
    """Service Fabric: GET ``$IDENTITY_ENDPOINT`` over HTTPS with the ``Secret`` header and
    api-version 2019-07-01-preview; the server certificate is the one IDENTITY_SERVER_THUMBPRINT names
    (the mock's CA is not trusted by these credentials)."""
    token = await _managed_identity_token(ctx, "service-fabric")
    request = _only_request(ctx, "service-fabric")
    assert request.method == "GET"
    assert request.url.startswith("https://"), request.url
    assert request.headers.get("secret") == ctx.authority.identity_header
    assert request.query == {"api-version": "2019-07-01-preview", "resource": RESOURCE}, request.query
    _assert_managed_identity_token(ctx, token, "service-fabric", SYSTEM_MI_CLIENT_ID)


@scenario("managed_identity_service_fabric_pin_mismatch", needs="managed_identity")
async def _service_fabric_pin(ctx: ScenarioContext) -> None:
    """Service Fabric: a server certificate other than the pinned one fails the connection before the
    request (and its ``Secret`` header) is sent.

    Ours raises ClientAuthenticationError. azure-identity's sync credential (MSAL's pinning adapter)
    lets ``requests.exceptions.SSLError`` escape unwrapped: accepted here, since what matters is that
    nothing was sent.
    """
    with ctx.managed_identity_source("service-fabric", thumbprint="0F" * 20):
        async with ctx.closing(ctx.managed_identity()) as credential:
            if ctx.impl.library == "identity":
                await ctx.expect_failure(ctx.impl.get_token(credential, SCOPE))
            else:
                try:
                    await ctx.impl.get_token(credential, SCOPE)
                except Exception as exc:
                    assert "thumbprint" in str(exc).lower(), f"{type(exc).__name__}: {exc}"
                else:
                    raise AssertionError("a token was returned by a server whose certificate is not pinned")
    assert ctx.authority.requests_to("service-fabric") == [], "the request reached an unpinned server"


# --- Azure Pipelines -------------------------------------------------------------------------


def _pipeline_connection(ctx: ScenarioContext) -> tuple[Any, str]:
    """A new app with an Azure DevOps service connection; returns it and its system access token."""
    client_id = str(uuid.uuid4())
    access_token = f"system-access-token-{uuid.uuid4().hex}"
    ctx.authority.add_application(DEFAULT_TENANT, client_id)
    connection = ctx.authority.add_pipeline_service_connection(
        DEFAULT_TENANT, client_id, str(uuid.uuid4()), system_access_token=access_token
    )
    return connection, access_token


def _pipelines_credential(ctx: ScenarioContext, connection: Any, access_token: str) -> Any:
    return ctx.impl.credential(
        "azure_pipelines",
        ctx.target,
        connection.tenant_id,
        connection.client_id,
        connection.service_connection_id,
        access_token,
    )


@scenario("azure_pipelines_oidc_then_assertion", needs="azure_pipelines")
async def _pipelines(ctx: ScenarioContext) -> None:
    """Azure Pipelines: POST ``$SYSTEM_OIDCREQUESTURI?api-version=7.1&serviceConnectionId=<id>`` with
    the system access token as a bearer token and ``X-TFS-FedAuthRedirect: Suppress``; the OIDC token
    it returns is the client assertion of a client-credentials request."""
    import jwt

    connection, access_token = _pipeline_connection(ctx)
    uri = connection.oidc_request_uri(ctx.target.authority)
    with scenario_environment({"SYSTEM_OIDCREQUESTURI": uri}):
        async with ctx.closing(_pipelines_credential(ctx, connection, access_token)) as credential:
            token = await ctx.impl.get_token(credential, SCOPE)
    endpoints = [r.endpoint for r in ctx.authority.requests if r.endpoint != "openid-configuration"]
    assert endpoints == ["pipelines-oidc", "token"], endpoints
    oidc = ctx.authority.requests_to("pipelines-oidc")[0]
    assert oidc.method == "POST"
    assert oidc.path == connection.oidc_request_path, oidc.path
    assert oidc.query == {"api-version": "7.1", "serviceConnectionId": connection.service_connection_id}
    assert oidc.headers.get("authorization") == f"Bearer {access_token}"
    assert oidc.headers.get("x-tfs-fedauthredirect") == "Suppress"
    assert oidc.headers.get("content-type", "").startswith("application/json")
    form = ctx.token_requests()[0].form
    assert form["grant_type"] == "client_credentials"
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert form["client_id"] == connection.client_id
    claims = jwt.decode(form["client_assertion"], options={"verify_signature": False})
    assert claims["iss"] == connection.issuer.issuer, claims
    assert claims["sub"] == connection.subject, claims
    issued = ctx.authority.describe_token(token.token)
    assert issued is not None
    assert issued.client_id == connection.client_id


@scenario("azure_pipelines_wrong_system_access_token", needs="azure_pipelines")
async def _pipelines_refused(ctx: ScenarioContext) -> None:
    """Azure Pipelines: a system access token Azure DevOps refuses (401) is an authentication error,
    and no token request follows."""
    connection, _ = _pipeline_connection(ctx)
    uri = connection.oidc_request_uri(ctx.target.authority)
    with scenario_environment({"SYSTEM_OIDCREQUESTURI": uri}):
        refused = _pipelines_credential(ctx, connection, "not-the-system-access-token")
        async with ctx.closing(refused) as credential:
            await ctx.expect_failure(ctx.impl.get_token(credential, SCOPE))
    assert ctx.authority.requests_to("pipelines-oidc"), "the OIDC endpoint was not asked"
    assert ctx.authority.requests_to("pipelines-signin") == [], "the sign-in redirect was followed"
    assert ctx.token_requests() == []


# --- DefaultAzureCredential ------------------------------------------------------------------


def _selected_member(credential: Any) -> str | None:
    """The member DefaultAzureCredential settled on, where the implementation says (ours does)."""
    name = getattr(credential, "selected_credential_name", None)
    return name if isinstance(name, str) else None


@scenario("default_selects_environment", needs="default")
async def _default_environment(ctx: ScenarioContext) -> None:
    """DefaultAzureCredential with AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET (and
    AZURE_AUTHORITY_HOST) set: the environment member gets the token; managed identity is not asked."""
    with (
        ctx.authority.serve_http() as http,
        scenario_environment(
            {
                "AZURE_TENANT_ID": DEFAULT_TENANT,
                "AZURE_CLIENT_ID": DEFAULT_CLIENT_ID,
                "AZURE_CLIENT_SECRET": DEFAULT_SECRET,
                "AZURE_AUTHORITY_HOST": ctx.target.authority,
                "AZURE_POD_IDENTITY_AUTHORITY_HOST": http.url,
            }
        ),
    ):
        async with ctx.closing(ctx.impl.credential("default", ctx.target)) as credential:
            token = await ctx.impl.get_token(credential, SCOPE)
            selected = _selected_member(credential)
    requests = ctx.token_requests()
    assert len(requests) == 1, len(requests)
    assert _form_without_volatile(requests[0].form)["client_secret"] == DEFAULT_SECRET
    endpoints = {r.endpoint for r in ctx.authority.requests}
    assert endpoints <= {"openid-configuration", "token"}, endpoints
    issued = ctx.authority.describe_token(token.token)
    assert issued is not None
    assert (issued.client_id, issued.grant_type) == (DEFAULT_CLIENT_ID, "client_credentials"), issued
    if ctx.impl.library == "identity":
        assert selected == "EnvironmentCredential", selected


@scenario("default_selects_managed_identity", needs="default")
async def _default_managed_identity(ctx: ScenarioContext) -> None:
    """DefaultAzureCredential on App Service (no service principal in the environment): the managed
    identity member gets the token; nothing is sent to Entra."""
    with ctx.managed_identity_source("app-service"):
        async with ctx.closing(ctx.impl.credential("default", ctx.target)) as credential:
            token = await ctx.impl.get_token(credential, SCOPE)
            selected = _selected_member(credential)
    request = _only_request(ctx, "app-service")
    assert request.headers.get("x-identity-header") == ctx.authority.identity_header
    _assert_managed_identity_token(ctx, token, "app-service", SYSTEM_MI_CLIENT_ID)
    if ctx.impl.library == "identity":
        assert selected == "ManagedIdentityCredential", selected
