"""Azure Pipelines OIDC tokens as client assertions (workload identity federation for service
connections).

A pipeline job asks Azure DevOps for an OIDC token issued for one service connection, then sends
it to Entra as the ``client_assertion`` of a client credentials request (the app registration
trusts the Azure DevOps issuer through a federated identity credential):

1. ``POST {SYSTEM_OIDCREQUESTURI}?api-version=7.1&serviceConnectionId={id}`` with
   ``Authorization: Bearer {System.AccessToken}``, ``Content-Type: application/json`` and
   ``X-TFS-FedAuthRedirect: Suppress`` (without it a bad token is answered with a redirect to a
   sign-in page instead of an error status). Azure DevOps answers ``200 {"oidcToken": "<JWT>"}``
   (REST API 7.1, "Distributed Task - Oidctoken - Create":
   https://learn.microsoft.com/rest/api/azure/devops/distributedtask/oidctoken/create);
2. the client credentials grant with that token as the assertion (:mod:`protocol.client_credentials`,
   :class:`protocol.client_auth.AssertionCallable`).

Both steps are one flow, so the sync and async drivers run the same logic and the retry policy
covers the OIDC ``POST`` like any other request. The OIDC token is requested again for every new
access token: it is short-lived and never cached. Neither the system access token nor the OIDC
token appears in a message or ``repr``; the one excerpt of an error body quoted in a message is
scrubbed of both, and of anything shaped like a JWT or a bearer token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from .authority import Authority
from .client_auth import AssertionCallable
from .client_credentials import client_credentials_flow
from .errors import MalformedResponseError, ServiceError
from .flows import Clock, Flow, exchange
from .responses import TokenResult
from .retry import RETRYABLE_STATUS, RetryPolicy
from .wire import USER_AGENT, describe_body, read_json_object

__all__ = [
    "OIDC_API_VERSION",
    "TROUBLESHOOTING_GUIDE",
    "ServiceConnection",
    "azure_pipelines_flow",
    "build_oidc_request",
    "oidc_request_url",
    "oidc_token_flow",
    "parse_oidc_response",
]

OIDC_API_VERSION = "7.1"
TROUBLESHOOTING_GUIDE = "https://aka.ms/azsdk/python/identity/azurepipelinescredential/troubleshoot"

#: The longest excerpt of an error body quoted in a message.
_EXCERPT_LIMIT = 200
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)?")
_BEARER = re.compile(r"(?i)\bbearer\s+\S+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")

_TOKEN_ADVICE = (
    "The system access token is invalid or expired: map the job's System.AccessToken into the "
    "step's environment (env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)) and pass it as "
    "system_access_token."
)
_CONNECTION_ADVICE = (
    "Check service_connection_id (the resourceId of the service connection) and that this pipeline "
    "is allowed to use the service connection."
)
_RETRY_ADVICE = "Azure DevOps may be temporarily unavailable; try again later."


@dataclass(frozen=True, slots=True)
class ServiceConnection:
    """The Azure DevOps service connection a pipeline job requests OIDC tokens for.

    Attributes:
        service_connection_id: the service connection's id (its ``resourceId``).
        system_access_token: the job's ``System.AccessToken`` (never in ``repr``).
    """

    service_connection_id: str
    system_access_token: str = field(repr=False)


def oidc_request_url(oidc_request_uri: str, service_connection_id: str) -> httpx.URL:
    """The OIDC token URL: ``oidc_request_uri`` without trailing ``/``, any query it has, then
    ``api-version`` and ``serviceConnectionId``.

    Raises:
        ValueError: ``oidc_request_uri`` is not an absolute http(s) URL.
    """
    try:
        url = httpx.URL(oidc_request_uri.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ValueError(f"{oidc_request_uri!r} is not a URL ({exc}).") from exc
    if url.scheme not in ("https", "http") or not url.host:
        raise ValueError(f"{oidc_request_uri!r} is not an absolute http(s) URL.")
    params = url.params.merge({"api-version": OIDC_API_VERSION, "serviceConnectionId": service_connection_id})
    return url.copy_with(path=url.path.rstrip("/") or "/", params=params, fragment=None)


def build_oidc_request(oidc_request_uri: str, connection: ServiceConnection) -> httpx.Request:
    """The OIDC token request (an empty JSON object as body).

    Raises:
        ValueError: ``oidc_request_uri`` is not an absolute http(s) URL.
    """
    return httpx.Request(
        "POST",
        oidc_request_url(oidc_request_uri, connection.service_connection_id),
        content=b"{}",
        headers={
            "Accept": "application/json",
            "Content-Type": "application/json",
            "Authorization": f"Bearer {connection.system_access_token}",
            # Azure DevOps answers a bad token with a 302 to its sign-in page unless told not to.
            "X-TFS-FedAuthRedirect": "Suppress",
            "User-Agent": USER_AGENT,
        },
    )


def _endpoint(response: httpx.Response) -> str:
    return str(response.request.url.copy_with(query=None, fragment=None))


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _BEARER.sub("Bearer ***", _JWT.sub("***", text))
    text = _CONTROL.sub(" ", text).strip()
    if len(text) > _EXCERPT_LIMIT:
        text = text[:_EXCERPT_LIMIT].rstrip() + "..."
    return text


def _looks_html(response: httpx.Response) -> bool:
    head = response.content[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or "html" in response.headers.get(
        "content-type", ""
    )


def _error_excerpt(response: httpx.Response, secrets: Iterable[str]) -> str:
    """What an error body says: the ``message`` of an Azure DevOps error object, scrubbed and cut
    short, else only its size and type (other bodies are not quoted)."""
    if not response.content.strip():
        return "an empty body"
    body: Any = None
    if not _looks_html(response):
        try:
            body = json.loads(response.content)
        except (ValueError, UnicodeDecodeError, RecursionError):
            body = None
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, str) and message.strip():
        excerpt = _scrub(message, secrets)
        if excerpt:
            return f'"{excerpt}"'
    return describe_body(response)


def _advice(response: httpx.Response) -> str:
    status = response.status_code
    if 300 <= status < 400 or status in (203, 401) or _looks_html(response):
        return _TOKEN_ADVICE
    if status in RETRYABLE_STATUS:
        return _RETRY_ADVICE
    if status in (400, 403, 404):
        return _CONNECTION_ADVICE
    return ""


def parse_oidc_response(response: httpx.Response, *, secrets: Iterable[str] = ()) -> str:
    """The ``oidcToken`` of an OIDC token response.

    Args:
        response: the answer to :func:`build_oidc_request`'s request.
        secrets: values scrubbed from any quoted excerpt (the system access token).

    Raises:
        ServiceError: any status but 200 ("Unexpected response from OIDC token endpoint.").
        MalformedResponseError: a 200 whose body is not a JSON object, or lacks an ``oidcToken``
            string ("OIDC token not found in response.").
    """
    status = response.status_code
    if status != 200:
        parts = [
            "Unexpected response from OIDC token endpoint.",
            f"HTTP {status} from {_endpoint(response)}: {_error_excerpt(response, secrets)}.",
            _advice(response),
            f"See {TROUBLESHOOTING_GUIDE}.",
        ]
        raise ServiceError(
            " ".join(part for part in parts if part),
            status_code=status,
            retryable=status in RETRYABLE_STATUS,
            url=_endpoint(response),
        )
    body = read_json_object(response)
    token = body.get("oidcToken") if body is not None else None
    if not isinstance(token, str) or not token.strip():
        raise MalformedResponseError(
            f"OIDC token not found in response. {_endpoint(response)} answered HTTP 200 without an "
            f"'oidcToken' string ({describe_body(response)}). See {TROUBLESHOOTING_GUIDE}.",
            status_code=status,
            url=_endpoint(response),
        )
    return token.strip()


def oidc_token_flow(
    oidc_request_uri: str, connection: ServiceConnection, *, policy: RetryPolicy, clock: Clock
) -> Flow[str]:
    """Request an OIDC token for ``connection`` (retried by ``policy``) and return it.

    Raises:
        ValueError: ``oidc_request_uri`` is not an absolute http(s) URL (before any request; callers
            check it with :func:`oidc_request_url` when they build the flow).
    """
    result = yield from exchange(
        lambda: build_oidc_request(oidc_request_uri, connection), policy, clock=clock
    )
    return parse_oidc_response(result.response, secrets=(connection.system_access_token,))


def azure_pipelines_flow(
    authority: Authority,
    *,
    client_id: str,
    scopes: Iterable[str],
    oidc_request_uri: str,
    connection: ServiceConnection,
    policy: RetryPolicy,
    claims: str | None = None,
    instance_discovery: bool = True,
    region: str | None = None,
    clock: Clock,
) -> Flow[TokenResult]:
    """Get an OIDC token for ``connection``, then an app token with it as the client assertion."""
    oidc_token = yield from oidc_token_flow(oidc_request_uri, connection, policy=policy, clock=clock)
    return (
        yield from client_credentials_flow(
            authority,
            client_id=client_id,
            scopes=scopes,
            client_auth=AssertionCallable(lambda: oidc_token),
            policy=policy,
            claims=claims,
            instance_discovery=instance_discovery,
            region=region,
            clock=clock,
        )
    )
