"""DefaultAzureCredential, sync and async: members and their order, AZURE_TOKEN_CREDENTIALS,
exclusions, argument routing, the chain walk against the mock authority, sticky selection, the
IMDS probe and the selection log."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

import identity
import identity.aio
from conformance.authority import DEFAULT_CLIENT_ID, DEFAULT_SECRET, DEFAULT_TENANT, MockAuthority
from identity import ClientAuthenticationError, CredentialUnavailableError

SCOPE = "https://vault.azure.net/.default"
NO_TOOLS = {
    "exclude_shared_token_cache_credential": True,
    "exclude_visual_studio_code_credential": True,
    "exclude_cli_credential": True,
    "exclude_powershell_credential": True,
    "exclude_developer_cli_credential": True,
}


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def module(mode: str) -> Any:
    return identity if mode == "sync" else identity.aio


async def call(mode: str, method: Any, *args: Any, **kwargs: Any) -> Any:
    result = method(*args, **kwargs)
    return await result if mode == "async" else result


def names(credential: Any) -> list[str]:
    return [getattr(m, "credential_name", None) or type(m).__name__ for m in credential.credentials]


# -- members, order, exclusions ----


def test_default_members_in_order_sync() -> None:
    assert names(identity.DefaultAzureCredential()) == [
        "EnvironmentCredential",
        "WorkloadIdentityCredential",
        "ManagedIdentityCredential",
        "SharedTokenCacheCredential",
        "VisualStudioCodeCredential",
        "AzureCliCredential",
        "AzurePowerShellCredential",
        "AzureDeveloperCliCredential",
    ]


def test_default_members_in_order_async() -> None:
    credential = identity.aio.DefaultAzureCredential()
    assert names(credential) == [
        "EnvironmentCredential",
        "WorkloadIdentityCredential",
        "ManagedIdentityCredential",
        "SharedTokenCacheCredential",
        "VisualStudioCodeCredential",
        "AzureCliCredential",
        "AzurePowerShellCredential",
        "AzureDeveloperCliCredential",
    ]
    assert all(type(m).__module__.startswith("identity.aio") for m in credential.credentials[1:] if m)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("prod", ["EnvironmentCredential", "WorkloadIdentityCredential", "ManagedIdentityCredential"]),
        (" PROD ", ["EnvironmentCredential", "WorkloadIdentityCredential", "ManagedIdentityCredential"]),
        (
            "dev",
            [
                "SharedTokenCacheCredential",
                "VisualStudioCodeCredential",
                "AzureCliCredential",
                "AzurePowerShellCredential",
                "AzureDeveloperCliCredential",
            ],
        ),
        ("AzureCliCredential", ["AzureCliCredential"]),
        ("managedidentitycredential", ["ManagedIdentityCredential"]),
        ("environmentcredential", ["EnvironmentCredential"]),
    ],
)
def test_azure_token_credentials_selects_members(
    mode: str, value: str, expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", value)
    assert names(module(mode).DefaultAzureCredential()) == expected


def test_invalid_azure_token_credentials_lists_valid_values(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "Bogus")
    with pytest.raises(
        ValueError, match=r"Invalid value for AZURE_TOKEN_CREDENTIALS: bogus\. Valid values are: dev, prod, "
    ) as info:
        module(mode).DefaultAzureCredential()
    assert "azureclicredential" in str(info.value)
    assert ("interactivebrowsercredential" in str(info.value)) is (mode == "sync")


async def test_selecting_visual_studio_code_without_a_sign_in_says_so(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "VisualStudioCodeCredential")
    credential = module(mode).DefaultAzureCredential()
    assert names(credential) == ["VisualStudioCodeCredential"]
    with pytest.raises(ClientAuthenticationError) as info:
        await call(mode, credential.get_token, SCOPE)
    assert "\n\tVisualStudioCodeCredential: VisualStudioCodeCredential: no Visual Studio Code sign-in" in str(
        info.value
    )


def test_the_interactive_browser_joins_when_included(mode: str) -> None:
    if mode == "sync":
        credential = identity.DefaultAzureCredential(exclude_interactive_browser_credential=False, **NO_TOOLS)
        assert names(credential)[-1] == "InteractiveBrowserCredential"
        return
    # azure-identity's async chain has no browser member, nor its keywords: a clear TypeError.
    with pytest.raises(TypeError) as raised:
        identity.aio.DefaultAzureCredential(exclude_interactive_browser_credential=False, **NO_TOOLS)
    assert str(raised.value).startswith(
        "identity.aio.DefaultAzureCredential got exclude_interactive_browser_credential: the async chain "
        "has no interactive browser or broker member"
    )


def test_enable_azure_proxy_is_dropped_inside_the_chain(mode: str) -> None:
    # azure-identity accepts it and drops it: the proxy mode is for a credential of its own.
    credential = module(mode).DefaultAzureCredential(enable_azure_proxy=True, **NO_TOOLS)
    assert names(credential) == [
        "EnvironmentCredential",
        "WorkloadIdentityCredential",
        "ManagedIdentityCredential",
    ]


async def test_sticky_calls_are_logged_at_info(
    mode: str, authority: MockAuthority, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AZURE_TENANT_ID", DEFAULT_TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", DEFAULT_CLIENT_ID)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", DEFAULT_SECRET)
    credential = module(mode).DefaultAzureCredential(transport=authority.transport(), **NO_TOOLS)
    await call(mode, credential.get_token, SCOPE)
    caplog.clear()
    caplog.set_level(logging.INFO, logger="identity")
    await call(mode, credential.get_token, SCOPE)
    assert [r.getMessage() for r in caplog.records if r.name == "identity"] == [
        "DefaultAzureCredential acquired a token from EnvironmentCredential"
    ]


def test_require_envvar(mode: str) -> None:
    with pytest.raises(ValueError, match="AZURE_TOKEN_CREDENTIALS environment variable is required"):
        module(mode).DefaultAzureCredential(require_envvar=True)


def test_explicit_exclusions_override_the_environment(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "prod")
    credential = module(mode).DefaultAzureCredential(
        exclude_managed_identity_credential=True, exclude_cli_credential=False
    )
    assert names(credential) == ["EnvironmentCredential", "WorkloadIdentityCredential", "AzureCliCredential"]


def test_excluding_every_member_is_a_value_error(mode: str) -> None:
    with pytest.raises(ValueError, match="every credential is excluded"):
        module(mode).DefaultAzureCredential(
            exclude_environment_credential=True,
            exclude_workload_identity_credential=True,
            exclude_managed_identity_credential=True,
            **NO_TOOLS,
        )


def test_tenant_id_is_a_type_error(mode: str) -> None:
    with pytest.raises(TypeError, match=r"'tenant_id' is not supported in DefaultAzureCredential\."):
        module(mode).DefaultAzureCredential(tenant_id=DEFAULT_TENANT)


def test_unknown_keyword_is_a_type_error(mode: str) -> None:
    with pytest.raises(TypeError, match="unexpected keyword"):
        module(mode).DefaultAzureCredential(exclude_cli_credentail=True)


# -- argument routing ----


def test_managed_identity_client_id_defaults_to_azure_client_id(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555")
    credential = module(mode).DefaultAzureCredential()
    mi = credential.credentials[2]
    assert mi._setup.identity is not None
    assert mi._setup.identity.value == "11111111-2222-3333-4444-555555555555"
    explicit = module(mode).DefaultAzureCredential(managed_identity_client_id="aaaa")
    assert explicit.credentials[2]._setup.identity.value == "aaaa"
    system = module(mode).DefaultAzureCredential(managed_identity_client_id=None)
    assert system.credentials[2]._setup.identity is None


def test_managed_identity_member_never_falls_into_workload_identity(
    mode: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("x")
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com")
    monkeypatch.setenv("AZURE_TENANT_ID", DEFAULT_TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", DEFAULT_CLIENT_ID)
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    credential = module(mode).DefaultAzureCredential()
    assert names(credential)[1] == "WorkloadIdentityCredential"
    assert type(credential.credentials[1]).__name__ == "WorkloadIdentityCredential"
    assert credential.credentials[2]._setup.settings.kind == "imds"


def test_unconfigured_workload_identity_is_an_unavailable_member_named_after_it(mode: str) -> None:
    credential = module(mode).DefaultAzureCredential()
    placeholder = credential.credentials[1]
    assert placeholder.credential_name == "WorkloadIdentityCredential"
    assert "WorkloadIdentityCredential" in repr(credential)


# -- the walk ----


@pytest.fixture
def authority() -> MockAuthority:
    return MockAuthority.with_defaults()


async def test_environment_member_provides_the_token_and_is_selected(
    mode: str, authority: MockAuthority, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AZURE_TENANT_ID", DEFAULT_TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", DEFAULT_CLIENT_ID)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", DEFAULT_SECRET)
    caplog.set_level(logging.INFO, logger="identity")
    credential = module(mode).DefaultAzureCredential(transport=authority.transport(), **NO_TOOLS)
    assert credential.selected_credential_name is None
    token = await call(mode, credential.get_token, SCOPE)
    issued = authority.describe_token(token.token)
    assert issued is not None
    assert issued.client_id == DEFAULT_CLIENT_ID
    assert credential.selected_credential_name == "EnvironmentCredential"
    assert len(authority.requests_to("token")) == 1
    selection = [r.getMessage() for r in caplog.records if "selected EnvironmentCredential" in r.getMessage()]
    assert len(selection) == 1
    assert "EnvironmentCredential: succeeded in" in selection[0]
    assert DEFAULT_SECRET not in caplog.text
    assert token.token not in caplog.text


async def test_sticky_selection_goes_straight_to_the_selected_member(mode: str) -> None:
    credential = module(mode).DefaultAzureCredential(**NO_TOOLS)

    class Member:
        credential_name = "Fake"

        def __init__(self, outcomes: list[Any]) -> None:
            self.outcomes, self.calls = outcomes, 0

        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            self.calls += 1
            outcome = self.outcomes.pop(0)
            if mode == "async":

                async def run() -> Any:
                    if isinstance(outcome, Exception):
                        raise outcome
                    return outcome

                return run()
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

    token = identity.AccessToken("t", 2_000_000_000)
    first = Member([CredentialUnavailableError(message="not here"), CredentialUnavailableError(message="x")])
    second = Member([token, ClientAuthenticationError(message="expired login")])
    credential.credentials = (first, second)
    assert (await call(mode, credential.get_token, SCOPE)).token == "t"
    assert credential.selected_credential is second
    # Later calls go straight to the selected member; its failure is not masked by the others.
    with pytest.raises(ClientAuthenticationError, match="expired login"):
        await call(mode, credential.get_token, SCOPE)
    assert (first.calls, second.calls) == (1, 2)


async def test_all_unavailable_lists_every_member(mode: str) -> None:
    credential = module(mode).DefaultAzureCredential(**NO_TOOLS)
    with pytest.raises(ClientAuthenticationError) as info:
        await call(mode, credential.get_token, SCOPE)
    message = str(info.value)
    assert message.startswith(
        "DefaultAzureCredential failed to retrieve a token from the included credentials."
    )
    for name in ("EnvironmentCredential", "WorkloadIdentityCredential", "ManagedIdentityCredential"):
        assert f"\n\t{name}: " in message
    assert "no response from the IMDS endpoint" in message
    assert not isinstance(info.value, CredentialUnavailableError)
    assert credential.selected_credential is None


async def test_imds_is_probed_once_without_retries_inside_the_chain(mode: str) -> None:
    sent: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    transport = httpx.MockTransport(refuse)
    credential = module(mode).DefaultAzureCredential(
        transport=transport, exclude_environment_credential=True, **NO_TOOLS
    )
    with pytest.raises(ClientAuthenticationError, match="no response from the IMDS endpoint"):
        await call(mode, credential.get_token, SCOPE)
    assert len(sent) == 1
    assert "metadata" not in sent[0].headers  # the probe has no Metadata header
    assert sent[0].url.path == "/metadata/identity/oauth2/token"
    assert sent[0].extensions["timeout"]["connect"] == 1.0


async def test_imds_present_after_probe_gives_the_token(mode: str) -> None:
    sent: list[httpx.Request] = []

    def imds(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.headers.get("metadata") != "true":
            return httpx.Response(
                400,
                json={
                    "error": "invalid_request",
                    "error_description": "Required metadata header not specified",
                },
            )
        return httpx.Response(
            200, json={"access_token": "imds-token", "expires_in": "86399", "token_type": "Bearer"}
        )

    credential = module(mode).DefaultAzureCredential(
        transport=httpx.MockTransport(imds), exclude_environment_credential=True, **NO_TOOLS
    )
    token = await call(mode, credential.get_token, SCOPE)
    assert token.token == "imds-token"
    assert [r.headers.get("metadata") for r in sent] == [None, "true"]
    assert credential.selected_credential_name == "ManagedIdentityCredential"
    again = await call(mode, credential.get_token, SCOPE)
    assert again.token == "imds-token"
    assert len(sent) == 2


async def test_selecting_managed_identity_alone_skips_the_probe(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential")
    sent: list[httpx.Request] = []

    def imds(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"access_token": "imds-token", "expires_in": 3600})

    credential = module(mode).DefaultAzureCredential(transport=httpx.MockTransport(imds))
    assert (await call(mode, credential.get_token, SCOPE)).token == "imds-token"
    assert [r.headers.get("metadata") for r in sent] == ["true"]


# -- the specification's examples (shared/spec/advanced-features.md) ----


def test_spec_production_and_development_configurations() -> None:
    production = identity.DefaultAzureCredential(
        exclude_cli_credential=True,
        exclude_powershell_credential=True,
        exclude_developer_cli_credential=True,
        exclude_visual_studio_code_credential=True,
        exclude_interactive_browser_credential=True,
        managed_identity_client_id="production-identity-client-id",
    )
    assert names(production) == [
        "EnvironmentCredential",
        "WorkloadIdentityCredential",
        "ManagedIdentityCredential",
        "SharedTokenCacheCredential",  # not excluded by the example (as in azure-identity)
    ]
    identity_setup = production.credentials[2]._setup
    assert identity_setup.identity.kind == "client_id"
    assert identity_setup.identity.value == "production-identity-client-id"

    cache_options = identity.TokenCachePersistenceOptions(
        allow_unencrypted_storage=True, name="dev-app-cache"
    )
    development = identity.DefaultAzureCredential(
        exclude_managed_identity_credential=True, cache_persistence_options=cache_options
    )
    assert "ManagedIdentityCredential" not in names(development)
    assert names(development)[-3:] == [
        "AzureCliCredential",
        "AzurePowerShellCredential",
        "AzureDeveloperCliCredential",
    ]


def test_spec_bearer_token_provider_over_default_credential(
    authority: MockAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_TENANT_ID", DEFAULT_TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", DEFAULT_CLIENT_ID)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", DEFAULT_SECRET)
    credential = identity.DefaultAzureCredential(transport=authority.transport(), **NO_TOOLS)
    graph = identity.get_bearer_token_provider(credential, "https://graph.microsoft.com/.default")
    storage = identity.get_bearer_token_provider(credential, "https://storage.azure.com/.default")
    first, second, third = graph(), graph(), storage()
    assert first == second
    assert authority.describe_token(first).scopes == ("https://graph.microsoft.com/.default",)
    assert authority.describe_token(third).scopes == ("https://storage.azure.com/.default",)
    assert len(authority.requests_to("token")) == 2  # the second graph token came from the cache


# -- the developer tools inside the chain ----


@pytest.fixture
def tools_path(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An empty PATH of stub tools and sign-in directories of our own."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("azure", "azd", "home"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(tmp_path / "azure"))
    monkeypatch.setenv("AZD_CONFIG_DIR", str(tmp_path / "azd"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return bin_dir


@pytest.mark.skipif(__import__("os").name != "posix", reason="the stub tools are POSIX scripts")
async def test_a_failing_tool_is_unavailable_inside_the_chain_and_the_next_one_answers(
    mode: str, tools_path: Any
) -> None:
    import json

    from tests.identity.stub_tools import StubTool

    az = StubTool(tools_path, "az")
    az.reply(stderr="ERROR: AADSTS50173: The provided grant has expired.", returncode=1)
    azd = StubTool(tools_path, "azd")
    azd.reply(json.dumps({"token": "azd-token", "expiresOn": "2099-01-01T00:00:00Z"}))
    credential = module(mode).DefaultAzureCredential(
        exclude_environment_credential=True,
        exclude_workload_identity_credential=True,
        exclude_managed_identity_credential=True,
        process_timeout=5,
    )
    token = await call(mode, credential.get_token, SCOPE)
    assert token.token == "azd-token"
    assert credential.selected_credential_name == "AzureDeveloperCliCredential"
    # az ran and failed (outside a chain that would stop it); PowerShell is not installed.
    assert len(az.runs) == 1
    assert az.runs[0]["argv"][:4] == ["account", "get-access-token", "--output", "json"]
    assert azd.runs[0]["argv"][:5] == ["auth", "token", "--output", "json", "--no-prompt"]
    # Sticky: the next call goes straight to azd (served from its cache: no new run at all).
    await call(mode, credential.get_token, SCOPE)
    assert (len(az.runs), len(azd.runs)) == (1, 1)


@pytest.mark.skipif(__import__("os").name != "posix", reason="the stub tools are POSIX scripts")
async def test_the_same_failure_outside_the_chain_is_an_authentication_error(
    mode: str, tools_path: Any
) -> None:
    from tests.identity.stub_tools import StubTool

    az = StubTool(tools_path, "az")
    az.reply(stderr="ERROR: AADSTS50173: The provided grant has expired.", returncode=1)
    credential = module(mode).AzureCliCredential()
    with pytest.raises(ClientAuthenticationError, match="AADSTS50173") as info:
        await call(mode, credential.get_token, SCOPE)
    assert not isinstance(info.value, CredentialUnavailableError)
