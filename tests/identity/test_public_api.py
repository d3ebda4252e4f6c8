"""The public surface of ``identity`` and ``identity.aio``, pinned; constants; protocol conformance."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
from azure.core.credentials import SupportsTokenInfo, TokenCredential
from azure.core.credentials_async import AsyncSupportsTokenInfo, AsyncTokenCredential

import identity
import identity.aio

from .fakes import Api

ROOT = Path(__file__).resolve().parents[2]

IDENTITY_ALL = [
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
IDENTITY_AIO_ALL = [
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


def test_identity_all_is_pinned() -> None:
    assert identity.__all__ == IDENTITY_ALL


def test_identity_aio_all_is_pinned() -> None:
    assert identity.aio.__all__ == IDENTITY_AIO_ALL


@pytest.mark.parametrize(("module", "names"), [(identity, IDENTITY_ALL), (identity.aio, IDENTITY_AIO_ALL)])
def test_every_exported_name_resolves_and_is_listed_by_dir(module: object, names: list[str]) -> None:
    for name in names:
        assert getattr(module, name) is not None
    assert set(names) <= set(dir(module))


def test_every_async_credential_has_a_sync_twin_of_the_same_name() -> None:
    assert set(IDENTITY_AIO_ALL) <= set(IDENTITY_ALL)


@pytest.mark.parametrize("module", [identity, identity.aio])
def test_unknown_attribute_is_an_attribute_error(module: object) -> None:
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchCredential'"):
        _ = module.NoSuchCredential  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", [name for name in IDENTITY_AIO_ALL if name.endswith("Credential")])
def test_sync_and_async_twins(name: str) -> None:
    sync, aio = getattr(identity, name), getattr(identity.aio, name)
    assert aio is not sync
    assert aio.__name__ == sync.__name__ == name
    for method in ("get_token", "get_token_info", "close"):
        assert not inspect.iscoroutinefunction(getattr(sync, method))
        assert inspect.iscoroutinefunction(getattr(aio, method))


def test_authority_hosts() -> None:
    hosts = identity.AzureAuthorityHosts
    assert (hosts.AZURE_PUBLIC_CLOUD, hosts.AZURE_GOVERNMENT, hosts.AZURE_CHINA) == (
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
    )


@pytest.mark.parametrize("cls", [identity.AzureAuthorityHosts, identity.KnownAuthorities])
def test_azure_germany_is_deprecated(cls: type) -> None:
    with pytest.warns(DeprecationWarning, match=r"^AZURE_GERMANY is deprecated\. Microsoft Cloud Germany"):
        assert cls.AZURE_GERMANY == "login.microsoftonline.de"  # type: ignore[attr-defined]


@pytest.mark.parametrize("cls", [identity.AzureAuthorityHosts, identity.KnownAuthorities])
def test_unknown_authority_host_is_an_attribute_error(cls: type) -> None:
    with pytest.raises(AttributeError):
        _ = cls.AZURE_MOON  # type: ignore[attr-defined]


def test_known_authorities_is_an_alias() -> None:
    assert issubclass(identity.KnownAuthorities, identity.AzureAuthorityHosts)
    for name in ("AZURE_PUBLIC_CLOUD", "AZURE_GOVERNMENT", "AZURE_CHINA"):
        assert getattr(identity.KnownAuthorities, name) == getattr(identity.AzureAuthorityHosts, name)


def test_environment_variable_names() -> None:
    env = identity.EnvironmentVariables
    for name in (
        "AZURE_AUTHORITY_HOST",
        "AZURE_IDENTITY_DISABLE_MULTITENANTAUTH",
        "AZURE_REGIONAL_AUTHORITY_NAME",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_TENANT_ID",
    ):
        assert getattr(env, name) == name
    assert env.CLIENT_SECRET_VARS == ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID")


def test_token_types_are_azure_cores() -> None:
    from azure.core import credentials

    assert identity.AccessToken is credentials.AccessToken
    assert identity.AccessTokenInfo is credentials.AccessTokenInfo
    assert identity.TokenRequestOptions is credentials.TokenRequestOptions


async def test_credentials_satisfy_azure_core_protocols(api: Api) -> None:
    credential = api.credential()
    if api.mode == "sync":
        assert isinstance(credential, TokenCredential)
        assert isinstance(credential, SupportsTokenInfo)
    else:
        assert isinstance(credential, AsyncTokenCredential)
        assert isinstance(credential, AsyncSupportsTokenInfo)


def test_import_identity_is_cheap() -> None:
    code = (
        "import json, sys\n"
        "import identity, identity.aio\n"
        "heavy = ['httpx', 'pydantic', 'cryptography', 'jwt', 'keyring', 'azure']\n"
        "print(json.dumps(sorted(name for name in heavy if name in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
