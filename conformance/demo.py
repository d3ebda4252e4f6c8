"""``python -m conformance demo``: every credential against the embedded mock authority.

Starts the mock Entra ID authority over HTTPS on 127.0.0.1 (and over plain HTTP, where the
managed-identity endpoints live), acquires tokens with every credential this package has (sync and
async), and prints one table row per acquisition: the credential, the flow, the requests the
authority received, the result and the time taken. Nothing leaves loopback.

Credentials that read their configuration from the environment (managed identity, Azure Pipelines,
DefaultAzureCredential) get exactly the variables the mock names, for their rows only. The developer
tool credentials run stand-ins for ``az``, ``azd`` and ``pwsh`` (tiny Python scripts printing canned
output, put first on ``PATH`` for their rows): the demo needs none of the real tools.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import logging
import os
import ssl
import stat
import sys
import tempfile
import time
import uuid
import warnings
import webbrowser
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from .authority import (
    DEFAULT_CLIENT_ID,
    DEFAULT_PASSWORD,
    DEFAULT_SECRET,
    DEFAULT_TENANT,
    DEFAULT_USERNAME,
    PUBLIC_CLIENT_ID,
    Fault,
    MockAuthority,
)
from .browser import MockUserBrowser
from .mock.keys import generate_client_certificate
from .scenarios import scenario_environment

__all__ = ["DemoRow", "run_demo"]

SCOPE = "https://vault.azure.net/.default"


@dataclass(frozen=True)
class DemoRow:
    credential: str
    flow: str
    requests: int
    result: str
    milliseconds: float


def _assertion_func(client_id: str, endpoint: str, certificate: Any) -> Callable[[], str]:
    import jwt

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
        return jwt.encode(
            claims, certificate.private_key, algorithm="PS256", headers={"x5t#S256": certificate.x5t_s256}
        )

    return func


Step = Callable[[Any], Awaitable[str]]


@dataclass(frozen=True)
class _Entry:
    """One credential of the demo: how to build it, its rows, and the environment it reads.

    ``environment`` (``None``: leave ``os.environ`` alone) replaces every credential-selecting
    variable while the credential is built, used and closed.
    """

    name: str
    flow: str
    factory: Callable[[], Any]
    steps: tuple[tuple[str, Step], ...] = ()
    environment: Mapping[str, str] | None = None


def _who(issued: Any) -> str:
    if issued.user:
        return str(issued.user)
    if issued.grant_type.startswith("managed_identity:"):
        return f"identity {issued.client_id[:8]}..."
    return f"app {issued.client_id[:8]}..."


def _standard_steps(authority: MockAuthority, *, cae: bool) -> tuple[tuple[str, Step], ...]:
    """first token / cached (/ enable_cae): the rows every Entra credential gets."""

    async def first(credential: Any) -> str:
        token = await _call(credential, SCOPE)
        issued = authority.describe_token(token.token)
        if issued is None:
            return "unknown token"
        return f"token for {_who(issued)} ({','.join(issued.scopes)})"

    async def cached(credential: Any) -> str:
        await _call(credential, SCOPE)
        return "served from cache"

    async def enable_cae(credential: Any) -> str:
        token = await _call(credential, SCOPE, enable_cae=True)
        issued = authority.describe_token(token.token)
        return "CAE token (cp1)" if issued and issued.cae else "token without CAE"

    steps: tuple[tuple[str, Step], ...] = (("first token", first), ("cached", cached))
    return (*steps, ("enable_cae", enable_cae)) if cae else steps


def _default_steps(authority: MockAuthority) -> tuple[tuple[str, Step], ...]:
    """DefaultAzureCredential's rows: which member answered, then the cached token."""
    (_, first), cached = _standard_steps(authority, cae=False)

    async def selected(credential: Any) -> str:
        result = await first(credential)
        return f"{credential.selected_credential_name}: {result}"

    return (("first token", selected), cached)


# -- developer tools -----------------------------------------------------------------------------------

_STUB = """\
#!{python} -SE
# A stand-in for {tool} written by ``python -m conformance demo``: it records its run and prints
# canned output, whatever it is asked.
import sys
with open({runs!r}, "a") as runs:
    runs.write(" ".join(sys.argv[1:]) + "\\n")
sys.stdout.write({output!r})
"""
#: Windows runs the script through a ``.cmd`` wrapper (a shebang means nothing there).
_WINDOWS_WRAPPER = '@"{python}" -SE "{script}" %*\r\n'


@dataclass(frozen=True)
class _StubTool:
    """A fake ``az``/``azd``/``pwsh`` in the demo's tools directory."""

    name: str
    path: Path
    runs_file: Path

    @property
    def runs(self) -> int:
        return len(self.runs_file.read_text().splitlines()) if self.runs_file.exists() else 0


def _tool_outputs(token: str, expires_on: int) -> dict[str, str]:
    """What each tool prints for ``get-access-token`` / ``auth token`` / ``Get-AzAccessToken``."""
    moment = datetime.fromtimestamp(expires_on, tz=timezone.utc)
    return {
        "az": json.dumps(
            {
                "accessToken": token,
                "expiresOn": moment.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f"),
                "expires_on": expires_on,
                "subscription": str(uuid.UUID(int=1)),
                "tenant": DEFAULT_TENANT,
                "tokenType": "Bearer",
            },
            indent=2,
        )
        + "\n",
        "azd": json.dumps({"token": token, "expiresOn": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}) + "\n",
        "pwsh": f"azsdk%{token}%{expires_on}\n",
    }


def _write_stub_tools(authority: MockAuthority, directory: Path) -> dict[str, _StubTool]:
    """``az``, ``azd`` and ``pwsh`` stand-ins in ``directory``, each printing a token the mock
    issued to :data:`DEFAULT_USERNAME` (as if the developer had signed in)."""
    tools: dict[str, _StubTool] = {}
    for name in ("az", "azd", "pwsh"):
        token = authority.issue_user_access_token(DEFAULT_TENANT, PUBLIC_CLIENT_ID, [SCOPE], DEFAULT_USERNAME)
        issued = authority.describe_token(token)
        assert issued is not None
        output = _tool_outputs(token, issued.expires_on)[name]
        runs = directory / f"{name}.runs"
        script = directory / (f"{name}.py" if sys.platform == "win32" else name)
        script.write_text(_STUB.format(python=sys.executable, tool=name, runs=str(runs), output=output))
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        path = script
        if sys.platform == "win32":
            path = directory / f"{name}.cmd"
            path.write_text(_WINDOWS_WRAPPER.format(python=sys.executable, script=script))
        tools[name] = _StubTool(name, path, runs)
    return tools


def _tool_steps(authority: MockAuthority, tool: _StubTool) -> tuple[tuple[str, Step], ...]:
    """first token (one run of the stub) / cached (no new run)."""
    (_, first), _ = _standard_steps(authority, cae=False)

    async def ran(credential: Any) -> str:
        before = tool.runs
        result = await first(credential)
        return f"{result}, {tool.runs - before} run of {tool.name}"

    async def cached(credential: Any) -> str:
        before = tool.runs
        await _call(credential, SCOPE)
        return "served from cache" if tool.runs == before else f"{tool.name} ran again"

    return (("first token", ran), ("cached", cached))


# -- the credentials -----------------------------------------------------------------------------------


def _credentials(authority: MockAuthority, url: str, ca_path: str) -> list[_Entry]:
    import identity
    import identity.aio
    from protocol.certificate import load_certificate
    from protocol.retry import RetryPolicy

    context = ssl.create_default_context(cafile=ca_path)
    fast = RetryPolicy(backoff_factor=0.05)
    cert_client = str(uuid.uuid4())
    certificate = generate_client_certificate("demo-client")
    authority.add_application(DEFAULT_TENANT, cert_client, certificate=certificate.certificate_pem)
    loaded = load_certificate(certificate.pem)
    endpoint = f"{url}/{DEFAULT_TENANT}/oauth2/v2.0/token"
    user_assertion = authority.issue_user_access_token(
        DEFAULT_TENANT, PUBLIC_CLIENT_ID, [f"api://{DEFAULT_CLIENT_ID}/access"], DEFAULT_USERNAME
    )

    def sync_options() -> dict[str, Any]:
        return {
            "authority": url,
            "disable_instance_discovery": True,
            "transport": httpx.HTTPTransport(verify=context),
            "retry_policy": fast,
        }

    def async_options() -> dict[str, Any]:
        return {
            "authority": url,
            "disable_instance_discovery": True,
            "transport": httpx.AsyncHTTPTransport(verify=context),
            "retry_policy": fast,
        }

    entra = [
        (
            "ClientSecretCredential",
            "client credentials (secret)",
            lambda: identity.ClientSecretCredential(
                DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, **sync_options()
            ),
        ),
        (
            "aio.ClientSecretCredential",
            "client credentials (secret)",
            lambda: identity.aio.ClientSecretCredential(
                DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, **async_options()
            ),
        ),
        (
            "CertificateCredential",
            "client credentials (PS256 assertion)",
            lambda: identity.CertificateCredential(
                DEFAULT_TENANT, cert_client, certificate_data=certificate.pem, **sync_options()
            ),
        ),
        (
            "aio.CertificateCredential",
            "client credentials (PS256 assertion)",
            lambda: identity.aio.CertificateCredential(
                DEFAULT_TENANT, cert_client, certificate_data=certificate.pem, **async_options()
            ),
        ),
        (
            "ClientAssertionCredential",
            "client credentials (callable assertion)",
            lambda: identity.ClientAssertionCredential(
                DEFAULT_TENANT, cert_client, _assertion_func(cert_client, endpoint, loaded), **sync_options()
            ),
        ),
        (
            "aio.ClientAssertionCredential",
            "client credentials (callable assertion)",
            lambda: identity.aio.ClientAssertionCredential(
                DEFAULT_TENANT, cert_client, _assertion_func(cert_client, endpoint, loaded), **async_options()
            ),
        ),
        (
            "OnBehalfOfCredential",
            "on-behalf-of (user assertion)",
            lambda: identity.OnBehalfOfCredential(
                DEFAULT_TENANT,
                DEFAULT_CLIENT_ID,
                client_secret=DEFAULT_SECRET,
                user_assertion=user_assertion,
                **sync_options(),
            ),
        ),
        (
            "aio.OnBehalfOfCredential",
            "on-behalf-of (user assertion)",
            lambda: identity.aio.OnBehalfOfCredential(
                DEFAULT_TENANT,
                DEFAULT_CLIENT_ID,
                client_secret=DEFAULT_SECRET,
                user_assertion=user_assertion,
                **async_options(),
            ),
        ),
    ]
    steps = _standard_steps(authority, cae=True)
    return [_Entry(name, flow, factory, steps) for name, flow, factory in entra]


def _user_steps(authority: MockAuthority) -> tuple[tuple[str, Step], ...]:
    """A user's rows: sign-in, the next resource silently (refresh token), cached."""
    (_, first), (_, cached) = _standard_steps(authority, cae=False)

    async def silent(credential: Any) -> str:
        before = [r.form.get("grant_type") for r in authority.requests_to("token")]
        token = await _call(credential, "https://storage.azure.com/.default")
        grants = [r.form.get("grant_type") for r in authority.requests_to("token")][len(before) :]
        issued = authority.describe_token(token.token)
        return f"token for {_who(issued)} via {', '.join(g or '?' for g in grants)}" if issued else "unknown"

    return (("sign-in", first), ("another resource, silently", silent), ("cached", cached))


def _user_credentials(authority: MockAuthority, url: str, ca_path: str) -> list[_Entry]:
    import identity
    import identity.aio
    from protocol.pkce import new_pkce
    from protocol.retry import RetryPolicy

    context = ssl.create_default_context(cafile=ca_path)
    web_app = str(uuid.uuid4())
    redirect_uri = "http://localhost:8400/"
    authority.add_application(DEFAULT_TENANT, web_app, secret=DEFAULT_SECRET, redirect_uris=[redirect_uri])
    pkce = new_pkce()

    def approve(verification_uri: str, user_code: str, expires_on: Any) -> None:
        authority.approve_device_code(user_code, DEFAULT_USERNAME)  # the user, on another device

    def options(asynchronous: bool) -> dict[str, Any]:
        transport: Any = (
            httpx.AsyncHTTPTransport(verify=context) if asynchronous else httpx.HTTPTransport(verify=context)
        )
        return {
            "authority": url,
            "tenant_id": DEFAULT_TENANT,
            "disable_instance_discovery": True,
            "transport": transport,
            "retry_policy": RetryPolicy(backoff_factor=0.05),
        }

    def password(module: Any, asynchronous: bool) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # it cannot do MFA: deprecated, as upstream
            return module.UsernamePasswordCredential(
                PUBLIC_CLIENT_ID, DEFAULT_USERNAME, DEFAULT_PASSWORD, **options(asynchronous)
            )

    def code_credential(module: Any, asynchronous: bool) -> Any:
        code = authority.issue_authorization_code(
            DEFAULT_TENANT,
            web_app,
            redirect_uri=redirect_uri,
            scopes=[SCOPE],
            username=DEFAULT_USERNAME,
            code_challenge=pkce.challenge,
        )
        arguments = options(asynchronous)
        del arguments["tenant_id"]
        return module.AuthorizationCodeCredential(
            DEFAULT_TENANT,
            web_app,
            code,
            redirect_uri,
            client_secret=DEFAULT_SECRET,
            code_verifier=pkce.verifier,
            **arguments,
        )

    users: list[tuple[str, str, Callable[[], Any]]] = [
        (
            "DeviceCodeCredential",
            "device code",
            lambda: identity.DeviceCodeCredential(
                PUBLIC_CLIENT_ID, prompt_callback=approve, **options(False)
            ),
        ),
        (
            "aio.DeviceCodeCredential",
            "device code",
            lambda: identity.aio.DeviceCodeCredential(
                PUBLIC_CLIENT_ID, prompt_callback=approve, **options(True)
            ),
        ),
        (
            "InteractiveBrowserCredential",
            "browser (auth code + PKCE)",
            lambda: identity.InteractiveBrowserCredential(client_id=PUBLIC_CLIENT_ID, **options(False)),
        ),
        (
            "aio.InteractiveBrowserCredential",
            "browser (auth code + PKCE)",
            lambda: identity.aio.InteractiveBrowserCredential(client_id=PUBLIC_CLIENT_ID, **options(True)),
        ),
        ("UsernamePasswordCredential", "password (ROPC)", lambda: password(identity, False)),
        ("aio.UsernamePasswordCredential", "password (ROPC)", lambda: password(identity.aio, True)),
        ("AuthorizationCodeCredential", "auth code (web app)", lambda: code_credential(identity, False)),
        (
            "aio.AuthorizationCodeCredential",
            "auth code (web app)",
            lambda: code_credential(identity.aio, True),
        ),
    ]
    steps = _user_steps(authority)
    return [_Entry(name, flow, factory, steps) for name, flow, factory in users]


def _fast_managed_identity_retry() -> Any:
    """IMDS's retry policy with waits of milliseconds (the demo injects no faults here)."""
    from protocol.managed_identity.imds import IMDS_RETRY

    return dataclasses.replace(IMDS_RETRY, backoff_factor=0.05, backoff_max=0.1)


def _managed_identity_credentials(authority: MockAuthority, url: str, http_url: str) -> list[_Entry]:
    """Every managed identity source the mock serves: over plain HTTP at ``http_url``, and Service
    Fabric over HTTPS at ``url``, pinned by the server certificate's thumbprint."""
    import identity
    import identity.aio

    sources = (
        ("imds", "IMDS"),
        ("app-service", "App Service"),
        ("azure-ml", "Azure ML"),
        ("cloud-shell", "Cloud Shell"),
        ("arc", "Azure Arc key file"),
        ("service-fabric", "Service Fabric, pinned TLS"),
    )
    steps = _standard_steps(authority, cae=False)
    entries: list[_Entry] = []
    for source, label in sources:
        origin = url if source == "service-fabric" else http_url
        environment = {
            # Never 169.254.169.254: IMDS's host is the plain-HTTP mount for every source.
            "AZURE_POD_IDENTITY_AUTHORITY_HOST": http_url,
            **authority.managed_identity_environment(source, origin),
        }
        flow = f"managed identity ({label})"
        for name, module in (
            ("ManagedIdentityCredential", identity),
            ("aio.ManagedIdentityCredential", identity.aio),
        ):
            cls = module.ManagedIdentityCredential
            # No transport: the endpoints are plain HTTP, and Service Fabric's credential pins the
            # server certificate with a transport of its own.
            entries.append(
                _Entry(
                    name,
                    flow,
                    lambda cls=cls: cls(retry_policy=_fast_managed_identity_retry()),
                    steps,
                    environment,
                )
            )
    return entries


def _environment_credentials(
    authority: MockAuthority, url: str, ca_path: str, http_url: str, tools: Mapping[str, _StubTool]
) -> list[_Entry]:
    """Azure Pipelines, DefaultAzureCredential and the developer tools: the credentials that read
    their configuration (or find their tool) in the environment."""
    import identity
    import identity.aio
    from protocol.retry import RetryPolicy

    context = ssl.create_default_context(cafile=ca_path)
    fast = RetryPolicy(backoff_factor=0.05)

    def options(module: Any) -> dict[str, Any]:
        transport: Any = (
            httpx.HTTPTransport(verify=context)
            if module is identity
            else httpx.AsyncHTTPTransport(verify=context)
        )
        return {"disable_instance_discovery": True, "transport": transport, "retry_policy": fast}

    modules = (("", identity), ("aio.", identity.aio))
    entries: list[_Entry] = []

    # Azure Pipelines: a service connection of a new app, trusted through its federated credential.
    pipeline_client = str(uuid.uuid4())
    authority.add_application(DEFAULT_TENANT, pipeline_client)
    access_token = f"demo-system-access-token-{uuid.uuid4().hex}"
    connection = authority.add_pipeline_service_connection(
        DEFAULT_TENANT, pipeline_client, str(uuid.uuid4()), system_access_token=access_token
    )
    for prefix, module in modules:
        entries.append(
            _Entry(
                f"{prefix}AzurePipelinesCredential",
                "Azure Pipelines (OIDC token as client assertion)",
                lambda module=module: module.AzurePipelinesCredential(
                    tenant_id=DEFAULT_TENANT,
                    client_id=pipeline_client,
                    service_connection_id=connection.service_connection_id,
                    system_access_token=access_token,
                    authority=url,
                    **options(module),
                ),
                _standard_steps(authority, cae=False),
                {"SYSTEM_OIDCREQUESTURI": connection.oidc_request_uri(url)},
            )
        )

    # DefaultAzureCredential: the member the environment selects. The developer tools are excluded
    # here (they have their own rows): a chain that fell through must not run a real az.
    no_tools = {
        "exclude_cli_credential": True,
        "exclude_powershell_credential": True,
        "exclude_developer_cli_credential": True,
    }
    selections = (
        (
            "chain selects environment (client secret)",
            {
                "AZURE_TENANT_ID": DEFAULT_TENANT,
                "AZURE_CLIENT_ID": DEFAULT_CLIENT_ID,
                "AZURE_CLIENT_SECRET": DEFAULT_SECRET,
                "AZURE_AUTHORITY_HOST": url,
                "AZURE_POD_IDENTITY_AUTHORITY_HOST": http_url,
            },
        ),
        (
            "chain selects managed identity (App Service)",
            {
                "AZURE_POD_IDENTITY_AUTHORITY_HOST": http_url,
                **authority.managed_identity_environment("app-service", http_url),
            },
        ),
    )
    for flow, environment in selections:
        for prefix, module in modules:
            entries.append(
                _Entry(
                    f"{prefix}DefaultAzureCredential",
                    flow,
                    lambda module=module: module.DefaultAzureCredential(**no_tools, **options(module)),
                    _default_steps(authority),
                    environment,
                )
            )

    # The developer tools, each finding its stand-in first on PATH.
    path = os.pathsep.join([str(next(iter(tools.values())).path.parent), os.environ.get("PATH", "")])
    commands = (
        ("AzureCliCredential", "az", "az account get-access-token"),
        ("AzureDeveloperCliCredential", "azd", "azd auth token"),
        ("AzurePowerShellCredential", "pwsh", "pwsh Get-AzAccessToken"),
    )
    for class_name, tool, command in commands:
        for prefix, module in modules:
            cls = getattr(module, class_name)
            entries.append(
                _Entry(
                    f"{prefix}{class_name}",
                    f"developer tool ({command}, stub)",
                    lambda cls=cls: cls(process_timeout=10),
                    _tool_steps(authority, tools[tool]),
                    {"PATH": path},
                )
            )
    return entries


async def _call(credential: Any, *scopes: str, **kwargs: Any) -> Any:
    result = credential.get_token(*scopes, **kwargs)
    return await result if inspect.isawaitable(result) else result


async def _close(credential: Any) -> None:
    result = credential.close()
    if inspect.isawaitable(result):
        await result


async def _measure(authority: MockAuthority, name: str, flow: str, action: Callable[[], Any]) -> DemoRow:
    authority.reset_requests()
    start = time.perf_counter()
    try:
        result = action()
        if inspect.isawaitable(result):
            result = await result
        outcome = str(result)
    except Exception as exc:  # the demo reports failures in its table
        outcome = f"{type(exc).__name__}: {exc}"
    if len(outcome) > 100:
        outcome = outcome[:97] + "..."
    elapsed = (time.perf_counter() - start) * 1000
    return DemoRow(name, flow, len(authority.requests), outcome, elapsed)


async def _demo(
    authority: MockAuthority, url: str, ca_path: str, http_url: str, tools: Mapping[str, _StubTool]
) -> list[DemoRow]:
    webbrowser.register(
        _DEMO_BROWSER, None, MockUserBrowser(authority, DEFAULT_USERNAME, DEFAULT_PASSWORD), preferred=True
    )
    try:
        return await _demo_rows(authority, url, ca_path, http_url, tools)
    finally:
        _unregister_demo_browser()


_DEMO_BROWSER = "entra-identity-demo"


def _unregister_demo_browser() -> None:
    """webbrowser has no unregister: drop the demo's entry from its registry (the user's own
    browser stays the one ``webbrowser.open`` uses after the demo)."""
    order = getattr(webbrowser, "_tryorder", None)
    if isinstance(order, list) and _DEMO_BROWSER in order:
        order.remove(_DEMO_BROWSER)
    browsers = getattr(webbrowser, "_browsers", None)
    if isinstance(browsers, dict):
        browsers.pop(_DEMO_BROWSER, None)


async def _demo_rows(
    authority: MockAuthority, url: str, ca_path: str, http_url: str, tools: Mapping[str, _StubTool]
) -> list[DemoRow]:
    rows: list[DemoRow] = []
    entries = [
        *_credentials(authority, url, ca_path),
        *_user_credentials(authority, url, ca_path),
        *_managed_identity_credentials(authority, url, http_url),
        *_environment_credentials(authority, url, ca_path, http_url, tools),
    ]
    for entry in entries:
        environment = (
            scenario_environment(entry.environment)
            if entry.environment is not None
            else contextlib.nullcontext()
        )
        with environment:
            credential = entry.factory()
            try:
                for label, step in entry.steps:
                    rows.append(
                        await _measure(
                            authority,
                            entry.name,
                            f"{entry.flow}, {label}",
                            lambda step=step, credential=credential: step(credential),
                        )
                    )
            finally:
                await _close(credential)

    # The failure paths a user sees most often.
    import identity

    context = ssl.create_default_context(cafile=ca_path)
    bad = identity.ClientSecretCredential(
        DEFAULT_TENANT,
        DEFAULT_CLIENT_ID,
        "wrong-secret",
        authority=url,
        disable_instance_discovery=True,
        transport=httpx.HTTPTransport(verify=context),
    )
    rows.append(
        await _measure(
            authority, "ClientSecretCredential", "wrong secret (AADSTS7000215)", lambda: _call(bad, SCOPE)
        )
    )
    bad.close()
    from protocol.retry import RetryPolicy

    retrying = identity.ClientSecretCredential(
        DEFAULT_TENANT,
        DEFAULT_CLIENT_ID,
        DEFAULT_SECRET,
        authority=url,
        disable_instance_discovery=True,
        transport=httpx.HTTPTransport(verify=context),
        retry_policy=RetryPolicy(backoff_factor=0.05),
    )
    authority.inject(Fault.status(503), endpoint="token")
    authority.inject(Fault.status(429, retry_after="0"), endpoint="token")

    async def retried() -> str:
        token = await _call(retrying, SCOPE)
        return "token after 503 and 429" if authority.describe_token(token.token) else "unknown token"

    rows.append(await _measure(authority, "ClientSecretCredential", "503, then 429, then success", retried))
    retrying.close()
    return rows


def format_table(rows: list[DemoRow]) -> str:
    headers = ("credential", "flow", "requests", "result", "ms")
    cells = [(r.credential, r.flow, str(r.requests), r.result, f"{r.milliseconds:.1f}") for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)) for cell in cells]
    return "\n".join([line, rule, *body])


@contextlib.contextmanager
def _arc_key_directory(authority: MockAuthority) -> Iterator[None]:
    """Arc's key-file challenge in a temporary directory, for the mock and for our client.

    The real agent writes its key files to a fixed, root-owned directory (``/var/opt/azcmagent/tokens``
    on Linux, ``%ProgramData%\\AzureConnectedMachineAgent\\Tokens`` on Windows) and the credential
    refuses any key file elsewhere; the demo cannot write there, so it moves both ends to a temporary
    directory: the mock's ``arc_key_directory``, and ``default_key_directory`` patched for the run.
    """
    from unittest import mock

    from protocol.managed_identity import azure_arc

    with tempfile.TemporaryDirectory(prefix="demo-arc-keys-") as directory:
        authority.arc_key_directory = Path(directory)
        try:
            with mock.patch.object(azure_arc, "default_key_directory", lambda: directory):
                yield
        finally:
            authority.arc_key_directory = None


def run_demo() -> int:
    """Run the demo and print the table; returns a process exit code (1 if a success row failed)."""
    # Failures are shown in the table; keep the library's WARNING lines for them off the console.
    logging.getLogger("identity").setLevel(logging.ERROR)
    authority = MockAuthority.with_defaults()
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(authority.serve())
        http = stack.enter_context(authority.serve_http())
        stack.enter_context(_arc_key_directory(authority))
        tools_directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="demo-tools-")))
        tools = _write_stub_tools(authority, tools_directory)
        print(f"mock Entra ID authority: {server.url} (CA: {server.ca_path})")
        print(f"managed identity endpoints: {http.url} (plain HTTP); Service Fabric: {server.url}")
        print(f"tenant {DEFAULT_TENANT}, application {DEFAULT_CLIENT_ID}\n")
        rows = asyncio.run(_demo(authority, server.url, str(server.ca_path), http.url, tools))
    print(format_table(rows))
    failed = [r for r in rows if "Error" in r.result and "wrong secret" not in r.flow]
    return 1 if failed else 0
