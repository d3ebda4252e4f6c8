"""Which managed identity source this host offers, from its environment (reference §3.1).

Evaluated in this order, as azure-identity does:

1. ``IDENTITY_ENDPOINT`` with ``IDENTITY_HEADER``: Service Fabric when ``IDENTITY_SERVER_THUMBPRINT``
   is also set, else App Service (and Functions, Container Apps, Automation);
   ``IDENTITY_ENDPOINT`` with ``IMDS_ENDPOINT``: Azure Arc; ``IDENTITY_ENDPOINT`` alone: none.
2. ``MSI_ENDPOINT``: Azure ML with ``MSI_SECRET``, else Cloud Shell.
3. ``AZURE_AUTHORITY_HOST``, ``AZURE_TENANT_ID`` and ``AZURE_FEDERATED_TOKEN_FILE`` all set (and
   workload identity allowed): workload identity.
4. Otherwise IMDS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["LABELS", "SourceKind", "SourceSettings", "select_source"]

SourceKind = Literal[
    "service_fabric",
    "app_service",
    "azure_arc",
    "azure_ml",
    "cloud_shell",
    "workload_identity",
    "imds",
    "none",
]

#: How logs and messages name each source (azure-identity's wording).
LABELS: dict[str, str] = {
    "service_fabric": "Service Fabric managed identity",
    "app_service": "App Service managed identity",
    "azure_arc": "Azure Arc managed identity",
    "azure_ml": "Azure ML managed identity",
    "cloud_shell": "Cloud Shell managed identity",
    "workload_identity": "workload identity",
    "imds": "IMDS",
    "none": "no managed identity source",
}


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """The selected source and the values it needs from the environment."""

    kind: SourceKind
    endpoint: str = ""
    secret: str = field(default="", repr=False)
    thumbprint: str = ""


def select_source(environ: Mapping[str, str], *, workload_identity: bool = True) -> SourceSettings:
    """Pick the source ``environ`` describes (empty values count as unset)."""
    endpoint = environ.get("IDENTITY_ENDPOINT", "")
    if endpoint:
        header = environ.get("IDENTITY_HEADER", "")
        if header:
            thumbprint = environ.get("IDENTITY_SERVER_THUMBPRINT", "")
            if thumbprint:
                return SourceSettings("service_fabric", endpoint, header, thumbprint)
            return SourceSettings("app_service", endpoint, header)
        if environ.get("IMDS_ENDPOINT"):
            return SourceSettings("azure_arc", endpoint)
        return SourceSettings("none", endpoint)
    msi_endpoint = environ.get("MSI_ENDPOINT", "")
    if msi_endpoint:
        secret = environ.get("MSI_SECRET", "")
        if secret:
            return SourceSettings("azure_ml", msi_endpoint, secret)
        return SourceSettings("cloud_shell", msi_endpoint)
    if workload_identity and all(
        environ.get(name)
        for name in ("AZURE_AUTHORITY_HOST", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE")
    ):
        return SourceSettings("workload_identity")
    return SourceSettings("imds", environ.get("AZURE_POD_IDENTITY_AUTHORITY_HOST", ""))
