"""Request shapes of the managed identity endpoints that answer in one round trip (reference §3.4).

=================  ======  =====================  =================================================
source             method  api-version            identity, secret
=================  ======  =====================  =================================================
App Service        GET     2019-08-01             ``client_id``/``object_id``/``mi_res_id``;
                                                  ``X-IDENTITY-HEADER: $IDENTITY_HEADER``
Service Fabric     GET     2019-07-01-preview     fixed by the cluster; ``Secret: $IDENTITY_HEADER``;
                                                  TLS pinned to ``IDENTITY_SERVER_THUMBPRINT``
Azure ML           GET     2017-09-01             ``clientid`` only; ``secret: $MSI_SECRET``
Cloud Shell        POST    (none)                 none (the signed-in user); ``Metadata: true``
=================  ======  =====================  =================================================

IMDS (:mod:`.imds`) and Azure Arc (:mod:`.azure_arc`) have flows of their own.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from ..flows import Clock, Flow, exchange
from ..responses import TokenResult
from ..retry import RetryPolicy
from ..wire import build_form_request, build_get_request
from .common import UserAssignedIdentity, parse_token, server_error

__all__ = [
    "APP_SERVICE_API_VERSION",
    "AZURE_ML_API_VERSION",
    "SERVICE_FABRIC_API_VERSION",
    "build_app_service_request",
    "build_azure_ml_request",
    "build_cloud_shell_request",
    "build_service_fabric_request",
    "single_request_flow",
]

APP_SERVICE_API_VERSION = "2019-08-01"
SERVICE_FABRIC_API_VERSION = "2019-07-01-preview"
AZURE_ML_API_VERSION = "2017-09-01"

_APP_SERVICE_PARAMS = {"client_id": "client_id", "object_id": "object_id", "resource_id": "mi_res_id"}


def build_app_service_request(
    endpoint: str, resource: str, identity: UserAssignedIdentity | None, secret: str
) -> httpx.Request:
    params = {"api-version": APP_SERVICE_API_VERSION, "resource": resource}
    if identity is not None:
        params[_APP_SERVICE_PARAMS[identity.kind]] = identity.value
    return build_get_request(endpoint, params, headers={"X-IDENTITY-HEADER": secret})


def build_service_fabric_request(endpoint: str, resource: str, secret: str) -> httpx.Request:
    params = {"api-version": SERVICE_FABRIC_API_VERSION, "resource": resource}
    return build_get_request(endpoint, params, headers={"Secret": secret})


def build_azure_ml_request(
    endpoint: str, resource: str, identity: UserAssignedIdentity | None, secret: str
) -> httpx.Request:
    """Azure ML's 2017 API names a user-assigned identity only by client id, as ``clientid``."""
    params = {"api-version": AZURE_ML_API_VERSION, "resource": resource}
    if identity is not None:
        if identity.kind != "client_id":
            raise ValueError("Azure ML managed identity accepts a user-assigned identity by client_id only")
        params["clientid"] = identity.value
    return build_get_request(endpoint, params, headers={"secret": secret})


def build_cloud_shell_request(endpoint: str, resource: str) -> httpx.Request:
    return build_form_request(endpoint, {"resource": resource}, headers={"Metadata": "true"})


def single_request_flow(
    build: Callable[[], httpx.Request], *, source: str, policy: RetryPolicy, clock: Clock
) -> Flow[TokenResult]:
    """Send the request (retried by ``policy``) and parse the token, or raise the endpoint's error."""
    result = yield from exchange(build, policy, clock=clock)
    response = result.response
    if response.status_code >= 400:
        raise server_error(source, response)
    return parse_token(response, requested_at=result.sent_at, source=source)
