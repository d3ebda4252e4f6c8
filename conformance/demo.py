"""``python -m conformance demo``: every credential against the embedded mock authority.

Starts the mock Entra ID authority over HTTPS on 127.0.0.1, acquires tokens with every credential
this package has (sync and async), and prints one table row per acquisition: the credential, the
flow, the requests the authority received, the result and the time taken. Nothing leaves loopback.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .authority import (
    DEFAULT_CLIENT_ID,
    DEFAULT_SECRET,
    DEFAULT_TENANT,
    DEFAULT_USERNAME,
    PUBLIC_CLIENT_ID,
    Fault,
    MockAuthority,
)
from .mock.keys import generate_client_certificate

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


def _credentials(
    authority: MockAuthority, url: str, ca_path: str
) -> list[tuple[str, str, Callable[[], Any]]]:
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

    return [
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
    if len(outcome) > 90:
        outcome = outcome[:87] + "..."
    elapsed = (time.perf_counter() - start) * 1000
    return DemoRow(name, flow, len(authority.requests), outcome, elapsed)


async def _demo(authority: MockAuthority, url: str, ca_path: str) -> list[DemoRow]:
    rows: list[DemoRow] = []
    for name, flow, factory in _credentials(authority, url, ca_path):
        credential = factory()

        async def first(credential: Any = credential) -> str:
            token = await _call(credential, SCOPE)
            issued = authority.describe_token(token.token)
            if issued is None:
                return "unknown token"
            who = issued.user or f"app {issued.client_id[:8]}..."
            return f"token for {who} ({','.join(issued.scopes)})"

        async def cached(credential: Any = credential) -> str:
            await _call(credential, SCOPE)
            return "served from cache"

        async def cae(credential: Any = credential) -> str:
            token = await _call(credential, SCOPE, enable_cae=True)
            issued = authority.describe_token(token.token)
            return "CAE token (cp1)" if issued and issued.cae else "token without CAE"

        rows.append(await _measure(authority, name, flow + ", first token", first))
        rows.append(await _measure(authority, name, flow + ", cached", cached))
        rows.append(await _measure(authority, name, flow + ", enable_cae", cae))
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


def run_demo() -> int:
    """Run the demo and print the table; returns a process exit code (1 if a success row failed)."""
    # Failures are shown in the table; keep the library's WARNING lines for them off the console.
    logging.getLogger("identity").setLevel(logging.ERROR)
    authority = MockAuthority.with_defaults()
    with authority.serve() as server:
        print(f"mock Entra ID authority: {server.url} (CA: {server.ca_path})")
        print(f"tenant {DEFAULT_TENANT}, application {DEFAULT_CLIENT_ID}\n")
        rows = asyncio.run(_demo(authority, server.url, str(server.ca_path)))
    print(format_table(rows))
    failed = [r for r in rows if "Error" in r.result and "wrong secret" not in r.flow]
    return 1 if failed else 0
