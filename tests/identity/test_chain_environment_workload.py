"""ChainedTokenCredential, EnvironmentCredential and WorkloadIdentityCredential, sync and async,
against the mock authority in process."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import identity
import identity.aio
from conformance.authority import (
    DEFAULT_CLIENT_ID,
    DEFAULT_SECRET,
    DEFAULT_TENANT,
    ExternalIssuer,
    MockAuthority,
    generate_client_certificate,
)
from identity import ClientAuthenticationError, CredentialUnavailableError

SCOPE = "https://vault.azure.net/.default"
ENV_VARS = (
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_KUBERNETES_TOKEN_PROXY",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def authority() -> MockAuthority:
    return MockAuthority.with_defaults()


def module(mode: str) -> Any:
    return identity if mode == "sync" else identity.aio


async def call(mode: str, method: Any, *args: Any, **kwargs: Any) -> Any:
    result = method(*args, **kwargs)
    return await result if mode == "async" else result


class Unavailable:
    """A member that cannot try here."""

    def __init__(self, mode: str, reason: str) -> None:
        self.mode, self.reason, self.calls = mode, reason, 0

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        self.calls += 1
        if self.mode == "async":

            async def fail() -> Any:
                raise CredentialUnavailableError(message=self.reason)

            return fail()
        raise CredentialUnavailableError(message=self.reason)

    def close(self) -> Any:
        if self.mode == "async":

            async def done() -> None:
                return None

            return done()
        return None


# --- ChainedTokenCredential -------------------------------------------------------------------


async def test_chain_moves_past_unavailable_members(mode: str, authority: MockAuthority) -> None:
    first = Unavailable(mode, "not configured here")
    working = module(mode).ClientSecretCredential(
        DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, transport=authority.transport()
    )
    chain = module(mode).ChainedTokenCredential(first, working)
    token = await call(mode, chain.get_token, SCOPE)
    info = await call(mode, chain.get_token_info, SCOPE)
    assert authority.describe_token(token.token) is not None
    assert info.token == token.token
    # The chain walks its members on every call (only DefaultAzureCredential is sticky), and
    # get_token_info falls back to a member's get_token when it has no get_token_info.
    assert first.calls == 2
    assert len(authority.requests_to("token")) == 1
    await call(mode, chain.close)


async def test_chain_stops_at_a_real_failure(mode: str, authority: MockAuthority) -> None:
    wrong = module(mode).ClientSecretCredential(
        DEFAULT_TENANT, DEFAULT_CLIENT_ID, "wrong-secret", transport=authority.transport()
    )
    never = Unavailable(mode, "must not be asked")
    chain = module(mode).ChainedTokenCredential(wrong, never)
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215") as caught:
        await call(mode, chain.get_token, SCOPE)
    assert not isinstance(caught.value, CredentialUnavailableError)
    assert never.calls == 0


async def test_chain_of_unavailable_members_lists_every_reason(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    chain = module(mode).ChainedTokenCredential(
        Unavailable(mode, "reason one"), Unavailable(mode, "reason two")
    )
    with pytest.raises(ClientAuthenticationError) as caught:
        await call(mode, chain.get_token, SCOPE)
    assert caught.value.message == (
        "ChainedTokenCredential failed to retrieve a token from the included credentials.\n"
        "Attempted credentials:\n\tUnavailable: reason one\n\tUnavailable: reason two\n"
        "To mitigate this issue, please refer to the troubleshooting guidelines here at "
        "https://aka.ms/azsdk/python/identity/defaultazurecredential/troubleshoot."
    )
    assert any(
        r.levelno == logging.WARNING and "failed to retrieve" in r.getMessage() for r in caplog.records
    )


def test_chain_needs_a_member() -> None:
    for chain in (identity.ChainedTokenCredential, identity.aio.ChainedTokenCredential):
        with pytest.raises(ValueError, match="at least one credential is required"):
            chain()


# --- EnvironmentCredential --------------------------------------------------------------------


async def test_environment_secret(
    mode: str, authority: MockAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_TENANT_ID", DEFAULT_TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", DEFAULT_CLIENT_ID)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", DEFAULT_SECRET)
    credential = module(mode).EnvironmentCredential(transport=authority.transport())
    token = await call(mode, credential.get_token, SCOPE)
    issued = authority.describe_token(token.token)
    assert issued is not None
    assert issued.client_id == DEFAULT_CLIENT_ID
    assert authority.requests_to("token")[0].form["client_secret"] == DEFAULT_SECRET
    assert DEFAULT_SECRET not in repr(credential)


async def test_environment_certificate_with_chain(
    mode: str, authority: MockAuthority, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import jwt

    certificate = generate_client_certificate()
    authority.add_application(DEFAULT_TENANT, "cert-app-0001", certificate=certificate.certificate_pem)
    path = tmp_path / "cert.pem"
    path.write_bytes(certificate.pem)
    monkeypatch.setenv("AZURE_TENANT_ID", DEFAULT_TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", "cert-app-0001")
    monkeypatch.setenv("AZURE_CLIENT_CERTIFICATE_PATH", str(path))
    monkeypatch.setenv("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "false")  # any non-empty value sends it
    credential = module(mode).EnvironmentCredential(transport=authority.transport())
    token = await call(mode, credential.get_token, SCOPE)
    assert authority.describe_token(token.token) is not None
    header = jwt.get_unverified_header(authority.requests_to("token")[0].form["client_assertion"])
    assert "x5c" in header


async def test_environment_without_configuration_is_unavailable(mode: str, authority: MockAuthority) -> None:
    credential = module(mode).EnvironmentCredential(transport=authority.transport())
    with pytest.raises(CredentialUnavailableError, match="Environment variables are not fully configured"):
        await call(mode, credential.get_token, SCOPE)
    assert authority.requests == []


async def test_incomplete_environment_names_what_is_missing(
    mode: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AZURE_TENANT_ID", DEFAULT_TENANT)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "CANARY-SECRET-env")
    credential = module(mode).EnvironmentCredential()
    with pytest.raises(CredentialUnavailableError, match="For ClientSecretCredential, set: AZURE_CLIENT_ID"):
        await call(mode, credential.get_token, SCOPE)
    assert all("CANARY-SECRET-env" not in r.getMessage() for r in caplog.records)
    assert any(
        "These variables are set: AZURE_CLIENT_SECRET, AZURE_TENANT_ID" in r.getMessage()
        for r in caplog.records
    )


async def test_username_password_environment_signs_the_user_in(
    mode: str, monkeypatch: pytest.MonkeyPatch, authority: MockAuthority
) -> None:
    from conformance.authority import DEFAULT_PASSWORD, DEFAULT_USERNAME, PUBLIC_CLIENT_ID

    monkeypatch.setenv("AZURE_CLIENT_ID", PUBLIC_CLIENT_ID)
    monkeypatch.setenv("AZURE_TENANT_ID", DEFAULT_TENANT)
    monkeypatch.setenv("AZURE_USERNAME", DEFAULT_USERNAME)
    monkeypatch.setenv("AZURE_PASSWORD", DEFAULT_PASSWORD)
    with pytest.warns(DeprecationWarning, match="username and password authentication") as warned:
        credential = module(mode).EnvironmentCredential(transport=authority.transport())
    assert [str(w.message) for w in warned] == [
        "Environment is configured to use username and password authentication. This authentication method "
        "is deprecated, as it doesn't support multifactor authentication (MFA). For more details, see "
        "https://aka.ms/azsdk/identity/mfa."
    ]  # once: the inner credential's own warning is not repeated
    token = await call(mode, credential.get_token, SCOPE)
    assert authority.describe_token(token.token) is not None
    [request] = authority.requests_to("token")
    assert request.path == f"/{DEFAULT_TENANT}/oauth2/v2.0/token"
    assert (request.form["grant_type"], request.form["username"]) == ("password", DEFAULT_USERNAME)
    assert DEFAULT_PASSWORD not in repr(credential)


async def test_environment_credential_in_a_chain_gives_way(mode: str, authority: MockAuthority) -> None:
    working = module(mode).ClientSecretCredential(
        DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, transport=authority.transport()
    )
    chain = module(mode).ChainedTokenCredential(module(mode).EnvironmentCredential(), working)
    token = await call(mode, chain.get_token, SCOPE)
    assert authority.describe_token(token.token) is not None


# --- WorkloadIdentityCredential ---------------------------------------------------------------


@pytest.fixture
def federated(authority: MockAuthority) -> tuple[ExternalIssuer, str]:
    issuer = ExternalIssuer("https://oidc.aks.example.test/cluster/")
    client_id = "workload-app-0001"
    authority.add_application(DEFAULT_TENANT, client_id)
    authority.add_federated_credential(DEFAULT_TENANT, client_id, issuer, "system:serviceaccount:prod:api")
    return issuer, client_id


async def test_workload_identity_reads_the_token_file_for_every_request(
    mode: str,
    authority: MockAuthority,
    federated: tuple[ExternalIssuer, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issuer, client_id = federated
    token_file = tmp_path / "token"
    token_file.write_text(issuer.mint("system:serviceaccount:prod:api"))
    monkeypatch.setenv("AZURE_TENANT_ID", DEFAULT_TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", client_id)
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    credential = module(mode).WorkloadIdentityCredential(transport=authority.transport())
    first = await call(mode, credential.get_token, SCOPE)
    rotated = issuer.mint("system:serviceaccount:prod:api")
    token_file.write_text(rotated + "\n")
    await call(mode, credential.get_token, "https://storage.azure.com/.default")
    requests = authority.requests_to("token")
    assert authority.describe_token(first.token) is not None
    assert requests[1].form["client_assertion"] == rotated
    assert requests[0].form["client_assertion"] != rotated


async def test_an_expired_federated_token_says_when_it_expired(
    mode: str, authority: MockAuthority, federated: tuple[ExternalIssuer, str], tmp_path: Path
) -> None:
    issuer, client_id = federated
    token_file = tmp_path / "token"
    token_file.write_text(issuer.mint("system:serviceaccount:prod:api", now=1_700_000_000, lifetime=3600))
    credential = module(mode).WorkloadIdentityCredential(
        tenant_id=DEFAULT_TENANT,
        client_id=client_id,
        token_file_path=str(token_file),
        transport=authority.transport(),
    )
    with pytest.raises(ClientAuthenticationError, match=r"expired at 2023-11-14 23:13:20 UTC") as caught:
        await call(mode, credential.get_token, SCOPE)
    assert str(token_file) in caught.value.message
    assert authority.requests == []


async def test_a_missing_token_file_is_a_clear_error(
    mode: str, authority: MockAuthority, tmp_path: Path
) -> None:
    credential = module(mode).WorkloadIdentityCredential(
        tenant_id=DEFAULT_TENANT,
        client_id="workload-app-0001",
        token_file_path=str(tmp_path / "absent"),
        transport=authority.transport(),
    )
    with pytest.raises(ClientAuthenticationError, match=r"Could not read the federated token file .*absent"):
        await call(mode, credential.get_token, SCOPE)


def test_workload_identity_names_every_missing_setting() -> None:
    for cls in (identity.WorkloadIdentityCredential, identity.aio.WorkloadIdentityCredential):
        with pytest.raises(
            ValueError, match=r"Missing required arguments: 'tenant_id', 'client_id', 'token_file_path'\.$"
        ):
            cls()
        with pytest.raises(ValueError, match=r"Missing required arguments: 'token_file_path'\.$"):
            cls(tenant_id=DEFAULT_TENANT, client_id=DEFAULT_CLIENT_ID)
