"""The examples of ``shared/spec/advanced-features.md`` that use only what exists now, run as written.

Each example is transcribed with ``azure.identity`` mapped to ``identity`` and its placeholder
values (``"your-tenant-id"``...) replaced by the mock authority's registrations. The examples pass
no transport: respx routes every authority host they use to the mock authority's handler (and
fails anything else), so the code runs exactly as a user would write it.

Examples not run here need credentials that arrive with later issues: the AuthenticationRecord
example (``InteractiveBrowserCredential``), the exception-handling and performance examples
(``DefaultAzureCredential``), the interactive half of the persistence example, and the bearer-token
provider example (``DefaultAzureCredential`` and a real Microsoft Graph call).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import respx

from conformance.authority import DEFAULT_CLIENT_ID, DEFAULT_SECRET, DEFAULT_TENANT, MockAuthority
from conformance.transport import route_to

TENANT_2 = "22222222-2222-2222-2222-222222222222"
TENANT_3 = "33333333-3333-3333-3333-333333333333"
B2C_TENANT = "b2c-tenant.onmicrosoft.com"
HOSTS = [
    "https://login.microsoftonline.com",
    "https://login.microsoftonline.us",
    "https://login.chinacloudapi.cn",
    "https://custom.authority.com",
    "https://your-custom-authority.com",
    "https://your-b2c-tenant.b2clogin.com",
]


@pytest.fixture
def authority() -> Iterator[MockAuthority]:
    mock = MockAuthority.with_defaults()
    for tenant in (TENANT_2, TENANT_3):
        mock.add_tenant(tenant)
        mock.add_application(tenant, DEFAULT_CLIENT_ID, secret=DEFAULT_SECRET)
    mock.add_tenant("b2c-guid-0000-4000-8000-000000000b2c", domains=[B2C_TENANT])
    mock.add_application("b2c-guid-0000-4000-8000-000000000b2c", DEFAULT_CLIENT_ID, secret=DEFAULT_SECRET)
    # Entra's instance discovery vouches for this custom host in the example world.
    mock.trusted_hosts.add("your-custom-authority.com")
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        for host in HOSTS:
            route_to(router, mock.handle, base_url=host)
        yield mock
    assert mock.unmatched == []


def test_authority_hosts_example(authority: MockAuthority) -> None:
    from identity import AzureAuthorityHosts, ClientSecretCredential

    # Azure Public Cloud (default)
    public_credential = ClientSecretCredential(
        tenant_id=DEFAULT_TENANT,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_SECRET,
        # authority defaults to AzureAuthorityHosts.AZURE_PUBLIC_CLOUD
    )
    # Azure Government Cloud
    gov_credential = ClientSecretCredential(
        tenant_id=DEFAULT_TENANT,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_SECRET,
        authority=AzureAuthorityHosts.AZURE_GOVERNMENT,
    )
    # Azure China Cloud
    china_credential = ClientSecretCredential(
        tenant_id=DEFAULT_TENANT,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_SECRET,
        authority=AzureAuthorityHosts.AZURE_CHINA,
    )
    # Custom authority (for Azure AD B2C or custom domains)
    custom_credential = ClientSecretCredential(
        tenant_id=DEFAULT_TENANT,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_SECRET,
        authority="https://your-custom-authority.com",
    )

    for credential in (public_credential, gov_credential, china_credential, custom_credential):
        assert authority.describe_token(credential.get_token("https://vault.azure.net/.default").token)
    hosts = [request.url.split("/")[2] for request in authority.requests_to("token")]
    assert hosts == [
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "your-custom-authority.com",
    ]
    discovery = authority.requests_to("instance-discovery")
    assert len(discovery) == 1, "only the custom host needs instance discovery"


def test_germany_constant_still_resolves_with_a_warning() -> None:
    from identity import AzureAuthorityHosts, KnownAuthorities

    with pytest.warns(DeprecationWarning, match="closed"):
        assert AzureAuthorityHosts.AZURE_GERMANY == "login.microsoftonline.de"
    assert KnownAuthorities.AZURE_PUBLIC_CLOUD == AzureAuthorityHosts.AZURE_PUBLIC_CLOUD
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert AzureAuthorityHosts.AZURE_CHINA == "login.chinacloudapi.cn"


def test_multi_tenant_example(authority: MockAuthority) -> None:
    from identity import ClientSecretCredential

    # Multi-tenant application configuration
    multi_tenant_credential = ClientSecretCredential(
        tenant_id=DEFAULT_TENANT,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_SECRET,
        additionally_allowed_tenants=[TENANT_2, TENANT_3, "*"],  # "*" allows all tenants
    )
    # Request token for specific tenant
    primary_token = multi_tenant_credential.get_token("https://graph.microsoft.com/.default")
    secondary_token = multi_tenant_credential.get_token(
        "https://graph.microsoft.com/.default",
        tenant_id=TENANT_2,  # Override to specific tenant
    )

    primary = authority.describe_token(primary_token.token)
    secondary = authority.describe_token(secondary_token.token)
    assert primary is not None
    assert secondary is not None
    assert (primary.tenant, secondary.tenant) == (DEFAULT_TENANT, TENANT_2)


def test_custom_authority_and_instance_discovery_example(authority: MockAuthority) -> None:
    from identity import ClientSecretCredential

    # Custom authority with instance discovery disabled
    custom_credential = ClientSecretCredential(
        tenant_id=DEFAULT_TENANT,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_SECRET,
        authority="https://custom.authority.com",
        disable_instance_discovery=True,  # Skip authority validation
    )
    # Azure AD B2C configuration
    b2c_credential = ClientSecretCredential(
        tenant_id=B2C_TENANT,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_SECRET,
        authority="https://your-b2c-tenant.b2clogin.com",
        disable_instance_discovery=True,
    )

    assert authority.describe_token(custom_credential.get_token("https://vault.azure.net/.default").token)
    assert authority.describe_token(b2c_credential.get_token("https://vault.azure.net/.default").token)
    assert authority.requests_to("instance-discovery") == []
    assert [r.url for r in authority.requests_to("openid-configuration")] == [
        f"https://custom.authority.com/{DEFAULT_TENANT}/v2.0/.well-known/openid-configuration",
        f"https://your-b2c-tenant.b2clogin.com/{B2C_TENANT}/v2.0/.well-known/openid-configuration",
    ]


def test_persistence_options_example_with_a_service_principal(
    authority: MockAuthority, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import keyring
    import keyring.backends.fail

    from identity import ClientSecretCredential, TokenCachePersistenceOptions

    monkeypatch.setenv("HOME", str(tmp_path))
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())  # a machine without an OS keyring
    try:
        # Configure encrypted token caching
        cache_options = TokenCachePersistenceOptions(
            allow_unencrypted_storage=False,  # Require encryption (secure default)
            name="myapp.cache",  # Isolate cache from other applications
        )
        # Encryption is required and impossible here: refused at construction, with the way out.
        with pytest.raises(ValueError, match=r"allow_unencrypted_storage=True"):
            ClientSecretCredential(
                tenant_id=DEFAULT_TENANT,
                client_id=DEFAULT_CLIENT_ID,
                client_secret=DEFAULT_SECRET,
                cache_persistence_options=cache_options,
            )
        # Development environment with unencrypted fallback (less secure)
        dev_cache_options = TokenCachePersistenceOptions(
            allow_unencrypted_storage=True,  # Allow unencrypted storage if needed
            name="dev.cache",
        )
        dev_credential = ClientSecretCredential(
            tenant_id=DEFAULT_TENANT,
            client_id=DEFAULT_CLIENT_ID,
            client_secret=DEFAULT_SECRET,
            cache_persistence_options=dev_cache_options,
        )
        token = dev_credential.get_token("https://vault.azure.net/.default").token
    finally:
        keyring.set_keyring(previous)
    assert (cache_options.allow_unencrypted_storage, cache_options.name) == (False, "myapp.cache")
    assert authority.describe_token(token)
    # The cache writer thread commits the token moments after get_token returned (write-behind).
    document = tmp_path / ".IdentityService" / "dev.cache.nocae"
    deadline = time.monotonic() + 10
    while not (document.exists() and token in document.read_text()) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert token in document.read_text()


def test_environment_variables_reference() -> None:
    from identity import EnvironmentVariables

    for name in (
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        "AZURE_USERNAME",
        "AZURE_PASSWORD",
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "MSI_ENDPOINT",
        "MSI_SECRET",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_AUTHORITY_HOST",
        "AZURE_REGIONAL_AUTHORITY_NAME",
    ):
        assert getattr(EnvironmentVariables, name) == name


def test_service_principal_from_environment_setup_example(
    authority: MockAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spec's "service principal with client secret" environment, read by hand (the
    EnvironmentCredential that reads it arrives with a later issue)."""
    import os

    from identity import ClientSecretCredential, EnvironmentVariables

    monkeypatch.setenv("AZURE_TENANT_ID", DEFAULT_TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", DEFAULT_CLIENT_ID)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", DEFAULT_SECRET)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us")
    client, secret, tenant = (os.environ[v] for v in EnvironmentVariables.CLIENT_SECRET_VARS)
    credential = ClientSecretCredential(tenant, client, secret)
    assert authority.describe_token(credential.get_token("https://vault.azure.net/.default").token)
    assert authority.requests_to("token")[0].url.startswith("https://login.microsoftonline.us/")
