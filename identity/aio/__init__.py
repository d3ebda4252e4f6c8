"""Async credentials: the same names as :mod:`identity`, with ``async`` methods.

Names are loaded on first use, like :mod:`identity`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "AuthorizationCodeCredential",
    "AzureCliCredential",
    "AzureDeveloperCliCredential",
    "AzurePipelinesCredential",
    "AzurePowerShellCredential",
    "CertificateCredential",
    "ChainedTokenCredential",
    "ClientAssertionCredential",
    "ClientSecretCredential",
    "DefaultAzureCredential",
    "DeviceCodeCredential",
    "EnvironmentCredential",
    "InteractiveBrowserCredential",
    "ManagedIdentityCredential",
    "OnBehalfOfCredential",
    "SharedTokenCacheCredential",
    "UsernamePasswordCredential",
    "VisualStudioCodeCredential",
    "WorkloadIdentityCredential",
    "get_bearer_token_provider",
]

_LAZY: dict[str, str] = {
    "VisualStudioCodeCredential": "identity.aio.vscode",
    "SharedTokenCacheCredential": "identity.aio.shared_cache",
    "AuthorizationCodeCredential": "identity.aio.authorization_code",
    "InteractiveBrowserCredential": "identity.aio.browser",
    "UsernamePasswordCredential": "identity.aio.username_password",
    "DeviceCodeCredential": "identity.aio.device_code",
    "AzurePipelinesCredential": "identity.aio.azure_pipelines",
    "AzurePowerShellCredential": "identity.aio.azure_powershell",
    "AzureDeveloperCliCredential": "identity.aio.azd_cli",
    "AzureCliCredential": "identity.aio.azure_cli",
    "DefaultAzureCredential": "identity.aio.default",
    "ManagedIdentityCredential": "identity.aio.managed_identity",
    "ChainedTokenCredential": "identity.aio.chained",
    "EnvironmentCredential": "identity.aio.environment",
    "WorkloadIdentityCredential": "identity.aio.workload_identity",
    "CertificateCredential": "identity.aio.certificate",
    "ClientAssertionCredential": "identity.aio.client_assertion",
    "ClientSecretCredential": "identity.aio.client_secret",
    "OnBehalfOfCredential": "identity.aio.on_behalf_of",
    "get_bearer_token_provider": "identity.aio.bearer",
}

if TYPE_CHECKING:  # pragma: no cover
    from .authorization_code import AuthorizationCodeCredential
    from .azd_cli import AzureDeveloperCliCredential
    from .azure_cli import AzureCliCredential
    from .azure_pipelines import AzurePipelinesCredential
    from .azure_powershell import AzurePowerShellCredential
    from .bearer import get_bearer_token_provider
    from .browser import InteractiveBrowserCredential
    from .certificate import CertificateCredential
    from .chained import ChainedTokenCredential
    from .client_assertion import ClientAssertionCredential
    from .client_secret import ClientSecretCredential
    from .default import DefaultAzureCredential
    from .device_code import DeviceCodeCredential
    from .environment import EnvironmentCredential
    from .managed_identity import ManagedIdentityCredential
    from .on_behalf_of import OnBehalfOfCredential
    from .shared_cache import SharedTokenCacheCredential
    from .username_password import UsernamePasswordCredential
    from .vscode import VisualStudioCodeCredential
    from .workload_identity import WorkloadIdentityCredential


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'identity.aio' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
