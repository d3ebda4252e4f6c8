"""entra-identity: Microsoft Entra ID credentials with azure-identity's public API, without MSAL.

Names are loaded on first use, so ``import identity`` stays cheap: a credential's modules (and
httpx) load when the credential is first referenced.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "AccessToken",
    "AccessTokenInfo",
    "AuthenticationRecord",
    "AuthenticationRequiredError",
    "AuthorizationCodeCredential",
    "AzureAuthorityHosts",
    "AzureCliCredential",
    "AzureDeveloperCliCredential",
    "AzurePipelinesCredential",
    "AzurePowerShellCredential",
    "CertificateCredential",
    "ChainedTokenCredential",
    "ClientAssertionCredential",
    "ClientAuthenticationError",
    "ClientSecretCredential",
    "CredentialUnavailableError",
    "DefaultAzureCredential",
    "DeviceCodeCredential",
    "EnvironmentCredential",
    "EnvironmentVariables",
    "InteractiveBrowserCredential",
    "KnownAuthorities",
    "ManagedIdentityCredential",
    "OnBehalfOfCredential",
    "SharedTokenCacheCredential",
    "TokenCachePersistenceOptions",
    "TokenRequestOptions",
    "UsernamePasswordCredential",
    "VisualStudioCodeCredential",
    "WorkloadIdentityCredential",
    "get_bearer_token_provider",
]

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "VisualStudioCodeCredential": "identity.vscode",
    "SharedTokenCacheCredential": "identity.shared_cache",
    "AuthorizationCodeCredential": "identity.authorization_code",
    "InteractiveBrowserCredential": "identity.browser",
    "UsernamePasswordCredential": "identity.username_password",
    "DeviceCodeCredential": "identity.device_code",
    "AzurePipelinesCredential": "identity.azure_pipelines",
    "AzurePowerShellCredential": "identity.azure_powershell",
    "AzureDeveloperCliCredential": "identity.azd_cli",
    "AzureCliCredential": "identity.azure_cli",
    "DefaultAzureCredential": "identity.default",
    "ManagedIdentityCredential": "identity.managed_identity",
    "ChainedTokenCredential": "identity.chained",
    "EnvironmentCredential": "identity.environment",
    "WorkloadIdentityCredential": "identity.workload_identity",
    "AccessToken": "identity.tokens",
    "AccessTokenInfo": "identity.tokens",
    "TokenRequestOptions": "identity.tokens",
    "AuthenticationRequiredError": "identity.errors",
    "ClientAuthenticationError": "identity.errors",
    "CredentialUnavailableError": "identity.errors",
    "AzureAuthorityHosts": "identity.constants",
    "EnvironmentVariables": "identity.constants",
    "KnownAuthorities": "identity.constants",
    "ClientSecretCredential": "identity.client_secret",
    "AuthenticationRecord": "identity.auth_record",
    "TokenCachePersistenceOptions": "identity.persistence_options",
    "get_bearer_token_provider": "identity.bearer",
    "CertificateCredential": "identity.certificate",
    "ClientAssertionCredential": "identity.client_assertion",
    "OnBehalfOfCredential": "identity.on_behalf_of",
}

if TYPE_CHECKING:  # pragma: no cover
    from .auth_record import AuthenticationRecord
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
    from .constants import AzureAuthorityHosts, EnvironmentVariables, KnownAuthorities
    from .default import DefaultAzureCredential
    from .device_code import DeviceCodeCredential
    from .environment import EnvironmentCredential
    from .errors import AuthenticationRequiredError, ClientAuthenticationError, CredentialUnavailableError
    from .managed_identity import ManagedIdentityCredential
    from .on_behalf_of import OnBehalfOfCredential
    from .persistence_options import TokenCachePersistenceOptions
    from .shared_cache import SharedTokenCacheCredential
    from .tokens import AccessToken, AccessTokenInfo, TokenRequestOptions
    from .username_password import UsernamePasswordCredential
    from .vscode import VisualStudioCodeCredential
    from .workload_identity import WorkloadIdentityCredential


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'identity' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
