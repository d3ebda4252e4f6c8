"""The Azure Instance Metadata Service (IMDS) token endpoint: VMs, scale sets, AKS nodes, ACI.

``GET http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=R``
with ``Metadata: true`` (https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token).
A user-assigned identity is named by ``client_id``, ``object_id`` or ``msi_res_id``. The host is
replaced by ``AZURE_POD_IDENTITY_AUTHORITY_HOST`` when set (the credential reads it).

Retries follow Microsoft's IMDS guidance: 404, 408, 410, 429 and 5xx are retried with exponential
backoff (0.8 s base, 5 retries); 410 ("IMDS is updating") backs off from 3 s so the retries span at
least 70 s even with jitter; ``Retry-After`` is honoured.

Probe: inside a credential chain, one header-less request with a 1 s timeout and no retry first
decides whether IMDS is there at all. IMDS rejects a request without the header at once (HTTP
400), so any HTTP answer means "present"; no answer means "no IMDS here" and the chain moves on
without waiting through the retries. A 403 whose message says "unreachable" is Docker Desktop's
proxy answering for a network it cannot reach: not present either.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from ..errors import SourceUnavailableError, TransportError
from ..flows import Clock, Flow, exchange
from ..responses import TokenResult
from ..retry import NO_RETRY, RetryPolicy
from ..wire import build_get_request
from .common import UserAssignedIdentity, parse_token, read_body, server_error, server_message

__all__ = [
    "API_VERSION",
    "DEFAULT_HOST",
    "IMDS_RETRY",
    "NO_RESPONSE",
    "PATH",
    "build_imds_request",
    "imds_endpoint",
    "imds_flow",
]

DEFAULT_HOST = "http://169.254.169.254"
PATH = "/metadata/identity/oauth2/token"
API_VERSION = "2018-02-01"
PROBE_TIMEOUT = 1.0
NO_RESPONSE = "ManagedIdentityCredential authentication unavailable, no response from the IMDS endpoint."

IMDS_RETRY = RetryPolicy(
    max_retries=5,
    backoff_factor=0.8,
    backoff_max=60.0,
    retry_after_max=60.0,
    deadline=120.0,
    retry_statuses=frozenset({404, 408, 410, 429, *range(500, 600)}),
    status_backoff=((410, 3.0),),
)

_PARAMS = {"client_id": "client_id", "object_id": "object_id", "resource_id": "msi_res_id"}


def imds_endpoint(host: str | None) -> str:
    """The token URL on ``host`` (``AZURE_POD_IDENTITY_AUTHORITY_HOST``) or on IMDS's address."""
    base = (host or DEFAULT_HOST).strip().strip("/")
    if "://" not in base:
        base = "http://" + base
    return base + PATH


def build_imds_request(
    endpoint: str, resource: str, identity: UserAssignedIdentity | None, *, probe: bool = False
) -> httpx.Request:
    params = {"api-version": API_VERSION, "resource": resource}
    if identity is not None:
        params[_PARAMS[identity.kind]] = identity.value
    request = build_get_request(endpoint, params, headers=None if probe else {"Metadata": "true"})
    if probe:
        request.extensions["timeout"] = dict.fromkeys(("connect", "read", "write", "pool"), PROBE_TIMEOUT)
    return request


def _unreachable(response: httpx.Response) -> str | None:
    """The message of Docker Desktop's "network unreachable" 403, or ``None``."""
    if response.status_code != 403:
        return None
    message = server_message(read_body(response)) or response.text[:300]
    return message if "unreachable" in message.lower() else None


def imds_flow(
    endpoint: str,
    resource: str,
    identity: UserAssignedIdentity | None,
    *,
    probe: bool,
    policy: RetryPolicy,
    clock: Clock,
    on_available: Callable[[], None],
) -> Flow[TokenResult]:
    """Acquire a token from IMDS (after the probe when ``probe``); ``on_available`` is called once
    IMDS has answered, so later requests skip the probe.

    Raises:
        SourceUnavailableError: no IMDS here, or the identity is not assigned to this resource.
        ServiceError: IMDS answered with another error.
        MalformedResponseError: IMDS answered 200 with something that is not a token.
    """
    if probe:
        try:
            probed = yield from exchange(
                lambda: build_imds_request(endpoint, resource, identity, probe=True), NO_RETRY
            )
        except TransportError as exc:
            raise SourceUnavailableError(NO_RESPONSE) from exc
        message = _unreachable(probed.response)
        if message is not None:
            raise SourceUnavailableError(
                f"ManagedIdentityCredential authentication unavailable. Error: {message}"
            )
        on_available()
    try:
        result = yield from exchange(
            lambda: build_imds_request(endpoint, resource, identity), policy, clock=clock
        )
    except TransportError as exc:
        raise SourceUnavailableError(f"{NO_RESPONSE} {exc.message}") from exc
    response = result.response
    if response.status_code == 400:
        what = (
            "The requested identity has not been assigned to this resource."
            if identity is not None
            else "No identity has been assigned to this resource."
        )
        detail = server_message(read_body(response))
        raise SourceUnavailableError(
            f"ManagedIdentityCredential authentication unavailable. {what}"
            + (f" Error: {detail}" if detail else "")
        )
    message = _unreachable(response)
    if message is not None:
        raise SourceUnavailableError(
            f"ManagedIdentityCredential authentication unavailable. Error: {message}"
        )
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", "")
        if read_body(response) is None and not content_type.lower().startswith("application/json"):
            # Not IMDS's JSON: a proxy or another service answers at this address.
            raise SourceUnavailableError(
                f"ManagedIdentityCredential authentication unavailable. The IMDS endpoint answered HTTP "
                f'{response.status_code} with content type "{content_type or "none"}", not a managed '
                "identity response: something else answers at this address."
            )
        raise server_error("IMDS", response)
    on_available()
    return parse_token(response, requested_at=result.sent_at, source="IMDS", non_json_unavailable=True)
