"""AzureCliCredential, AzureDeveloperCliCredential and AzurePowerShellCredential, sync and async,
against stub executables on ``PATH`` (:mod:`tests.identity.stub_tools`).

Every scenario runs for each tool and each mode; the stubs record what they were run with, so the
tests assert the exact command line, working directory and environment, count spawns (caching,
single flight, validation before any spawn) and check that no token reaches a message, a log record
or a ``repr``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import pickle
import re
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import identity.aio.azd_cli
import identity.aio.azure_cli
import identity.aio.azure_powershell
import identity.azd_cli
import identity.azure_cli
import identity.azure_powershell
from identity.azd_cli import AzureDeveloperCli, parse_azd_failure, parse_azd_output
from identity.azure_cli import AzureCli, check_subscription, parse_cli_failure, parse_cli_output
from identity.azure_powershell import AzurePowerShell, parse_powershell_failure, parse_powershell_output
from identity.developer_tools import ToolError, ToolRequest, check_scope, check_tenant
from identity.errors import ClientAuthenticationError, CredentialUnavailableError
from protocol.errors import ProtocolError, SourceUnavailableError
from protocol.process import ProcessResult
from protocol.responses import TokenResult

from .fakes import ACCESS_TOKEN, OTHER_TENANT, TENANT, assert_exception_has_no_canary
from .stub_tools import StubTool

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the stub tools are POSIX scripts")

VAULT = "https://vault.azure.net/.default"
STORAGE = "https://storage.azure.com/.default"
GRAPH = "https://graph.microsoft.com/.default"
EXPIRES = 1_900_000_000  # 2030-03-17T17:46:40Z
CLAIMS = '{"access_token": {"nbf": {"essential": true, "value": "1726077595"}}}'
CLAIMS_B64 = base64.b64encode(CLAIMS.encode()).decode()
BIN = os.path.realpath("/bin")
JWT_LIKE = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJDQU5BUlkifQ.c2lnbmF0dXJl"


@dataclass(frozen=True)
class Kind:
    """One tool: its credential classes, stub name and canned outputs."""

    name: str
    sync_class: type[Any]
    async_class: type[Any]
    login: str  # the sign-in command messages name
    success: Callable[[str, int], str]
    not_logged_in: tuple[str, str, int]  # stdout, stderr, exit code
    failure: tuple[str, str, int]  # fails with AADSTS70043 and a token in the output
    garbage: str  # exit code 0, no usable token
    unexpected: str  # start of the garbage message
    color_variable: str | None

    def __str__(self) -> str:
        return self.name


def _azd_time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


AZ = Kind(
    name="az",
    sync_class=identity.azure_cli.AzureCliCredential,
    async_class=identity.aio.azure_cli.AzureCliCredential,
    login="az login",
    success=lambda token, expires_on: json.dumps(
        {
            "accessToken": token,
            "expiresOn": "2030-03-17 17:46:40.000000",
            "expires_on": expires_on,
            "subscription": "00000000-0000-0000-0000-000000000001",
            "tenant": TENANT,
            "tokenType": "Bearer",
        }
    ),
    not_logged_in=("", "ERROR: Please run 'az login' to setup account.\n", 1),
    failure=(
        "",
        "ERROR: AADSTS70043: The refresh token has expired. Please run 'az login'. "
        f'Cached: {{"accessToken": "{ACCESS_TOKEN}-stale"}} {JWT_LIKE}\n',
        1,
    ),
    garbage=json.dumps({"accessToken": ACCESS_TOKEN, "expires": "soon"}),
    unexpected="Unexpected output from Azure CLI",
    color_variable="AZURE_CORE_NO_COLOR",
)
AZD = Kind(
    name="azd",
    sync_class=identity.azd_cli.AzureDeveloperCliCredential,
    async_class=identity.aio.azd_cli.AzureDeveloperCliCredential,
    login="azd auth login",
    success=lambda token, expires_on: json.dumps({"token": token, "expiresOn": _azd_time(expires_on)}),
    not_logged_in=("", "ERROR: not logged in, run `azd auth login` to login\n", 1),
    failure=(
        json.dumps({"error": f"failed to get token: AADSTS70043: expired. {JWT_LIKE}"}) + "\n",
        f'{{"token": "{ACCESS_TOKEN}-stale"}}\n',
        1,
    ),
    garbage=json.dumps({"token": ACCESS_TOKEN}),
    unexpected="Unexpected output from Azure Developer CLI",
    color_variable="NO_COLOR",
)
PWSH = Kind(
    name="pwsh",
    sync_class=identity.azure_powershell.AzurePowerShellCredential,
    async_class=identity.aio.azure_powershell.AzurePowerShellCredential,
    login="Connect-AzAccount",
    success=lambda token, expires_on: f"WARNING: something harmless\nazsdk%{token}%{expires_on}\n",
    not_logged_in=("", "Get-AzAccessToken: Run Connect-AzAccount to login.\n", 1),
    failure=(
        f"azsdk%{ACCESS_TOKEN}-partial",
        f"Get-AzAccessToken: AADSTS70043: The refresh token has expired. {JWT_LIKE}\n",
        1,
    ),
    garbage=f"azsdk%{ACCESS_TOKEN}%not-a-number\n",
    unexpected="Unexpected output from Get-AzAccessToken",
    color_variable=None,
)
KINDS = [AZ, AZD, PWSH]


@dataclass
class Places:
    """The directories a test runs in: stubs on PATH, and each tool's configuration directory."""

    bin: Path
    azure_config: Path
    azd_config: Path
    home: Path

    def login_file(self, kind: Kind) -> Path:
        """A file whose change means a new sign-in."""
        if kind is AZ:
            return self.azure_config / "azureProfile.json"
        if kind is AZD:
            return self.azd_config / "auth.json"
        return self.home / ".Azure" / "AzureRmContext.json"

    def token_cache_file(self, kind: Kind) -> Path:
        """A watched file the tool itself rewrites when it refreshes its tokens."""
        if kind is AZ:
            return self.azure_config / "msal_token_cache.json"
        if kind is AZD:
            return self.azd_config / "auth" / "msal" / "cache.bin"  # not watched: no fixed names
        return self.home / ".IdentityService" / "msal.cache"


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Places:
    found = Places(tmp_path / "bin", tmp_path / "azure", tmp_path / "azd", tmp_path / "home")
    for directory in (found.bin, found.azure_config, found.azd_config, found.home):
        directory.mkdir()
    (found.home / ".Azure").mkdir()
    (found.home / ".IdentityService").mkdir()
    (found.azd_config / "auth" / "msal").mkdir(parents=True)
    monkeypatch.setenv("PATH", str(found.bin))
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(found.azure_config))
    monkeypatch.setenv("AZD_CONFIG_DIR", str(found.azd_config))
    monkeypatch.setenv("HOME", str(found.home))
    monkeypatch.delenv("AZURE_CORE_NO_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return found


class Runner:
    """Builds the sync or async credential of a kind and calls it with one awaitable shape."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.opened: list[Any] = []

    def credential(self, kind: Kind, **kwargs: Any) -> Any:
        cls = kind.sync_class if self.mode == "sync" else kind.async_class
        credential = cls(**kwargs)
        self.opened.append(credential)
        return credential

    async def get_token(self, credential: Any, *scopes: str, **kwargs: Any) -> Any:
        result = credential.get_token(*scopes, **kwargs)
        return await result if self.mode == "async" else result

    async def get_token_info(self, credential: Any, *scopes: str, options: Any = None) -> Any:
        result = credential.get_token_info(*scopes, options=options)
        return await result if self.mode == "async" else result

    async def fails(self, error: type[Exception], credential: Any, *scopes: str, **kwargs: Any) -> Any:
        """The exception ``get_token`` raises (checked for type and canaries)."""
        with pytest.raises(error) as caught:
            await self.get_token(credential, *scopes, **kwargs)
        assert_exception_has_no_canary(caught.value)
        return caught.value

    async def close(self, credential: Any) -> None:
        result = credential.close()
        if self.mode == "async":
            await result


@pytest.fixture(params=["sync", "async"])
async def run(request: pytest.FixtureRequest) -> AsyncIterator[Runner]:
    runner = Runner(request.param)
    yield runner
    for credential in runner.opened:
        await runner.close(credential)


@pytest.fixture(params=KINDS, ids=str)
def kind(request: pytest.FixtureRequest) -> Kind:
    return request.param  # type: ignore[no-any-return]


def stub(places: Places, kind: Kind) -> StubTool:
    tool = StubTool(places.bin, kind.name)
    tool.reply(kind.success(ACCESS_TOKEN, EXPIRES))
    return tool


def powershell_script(argv: list[str]) -> str:
    assert argv[:3] == ["-NoProfile", "-NonInteractive", "-EncodedCommand"]
    assert len(argv) == 4
    return base64.b64decode(argv[3]).decode("utf-16-le")


def expected_argv(kind: Kind, scope: str, tenant: str | None = None) -> list[str]:
    resource = scope.removesuffix("/.default")
    if kind is AZ:
        return ["account", "get-access-token", "--output", "json", "--resource", resource] + (
            ["--tenant", tenant] if tenant else []
        )
    assert kind is AZD
    return ["auth", "token", "--output", "json", "--no-prompt", "--scope", scope] + (
        ["--tenant-id", tenant] if tenant else []
    )


def assert_command(kind: Kind, argv: list[str], scope: str, tenant: str | None = None) -> None:
    if kind is PWSH:
        script = powershell_script(argv)
        assert f"ResourceUrl = '{scope.removesuffix('/.default')}'" in script
        assert "Import-Module Az.Accounts -MinimumVersion 2.2.0" in script
        assert "NO_AZ_ACCOUNT_MODULE" in script
        assert "Get-AzAccessToken @parameters" in script
        if tenant:
            assert f"$parameters['TenantId'] = '{tenant}'" in script
        else:
            assert "TenantId" not in script
    else:
        assert argv == expected_argv(kind, scope, tenant)


# --------------------------------------------------------------------------- success


async def test_runs_the_tool_safely_and_returns_its_token(run: Runner, places: Places, kind: Kind) -> None:
    tool = stub(places, kind)
    credential = run.credential(kind)

    token = await run.get_token(credential, VAULT)

    assert (token.token, token.expires_on) == (ACCESS_TOKEN, EXPIRES)
    [seen] = tool.runs
    assert seen["executable"] == str(tool.path)  # the absolute path shutil.which found
    assert_command(kind, seen["argv"], VAULT)
    assert seen["cwd"] == BIN  # os.getcwd() in the child: /bin with symlinks resolved
    assert seen["stdin_is_devnull"] is True
    assert seen["env"]["PATH"] == str(places.bin)  # the caller's environment is passed on
    if kind.color_variable:
        assert seen["env"][kind.color_variable] == "true"
    for variable in ("AZURE_CORE_NO_COLOR", "NO_COLOR"):
        if variable != kind.color_variable:
            assert seen["env"][variable] is None


async def test_token_info_has_no_refresh_time(run: Runner, places: Places, kind: Kind) -> None:
    stub(places, kind)
    info = await run.get_token_info(run.credential(kind), VAULT)
    assert (info.token, info.expires_on, info.token_type, info.refresh_on) == (
        ACCESS_TOKEN,
        EXPIRES,
        "Bearer",
        None,
    )


async def test_azure_cli_reads_local_expires_on_from_older_versions(run: Runner, places: Places) -> None:
    tool = stub(places, AZ)
    tool.reply(json.dumps({"accessToken": ACCESS_TOKEN, "expiresOn": "2030-01-02 03:04:05.123456"}))
    token = await run.get_token(run.credential(AZ), VAULT)
    assert token.expires_on == int(datetime(2030, 1, 2, 3, 4, 5, 123456).timestamp())  # local time


async def test_azure_cli_prefers_epoch_expires_on(run: Runner, places: Places) -> None:
    tool = stub(places, AZ)
    both = {"accessToken": ACCESS_TOKEN, "expiresOn": "2030-01-02 03:04:05.000000", "expires_on": EXPIRES}
    tool.reply(json.dumps(both))
    assert (await run.get_token(run.credential(AZ), VAULT)).expires_on == EXPIRES


async def test_azd_expires_on_is_utc(run: Runner, places: Places, monkeypatch: pytest.MonkeyPatch) -> None:
    # azure-identity reads this as local time; on a machine far from UTC that is hours off.
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14
    time.tzset()
    try:
        tool = stub(places, AZD)
        tool.reply(json.dumps({"token": ACCESS_TOKEN, "expiresOn": "2030-03-17T17:46:40Z"}))
        assert (await run.get_token(run.credential(AZD), VAULT)).expires_on == EXPIRES
    finally:
        monkeypatch.undo()
        time.tzset()


async def test_azure_cli_subscription(run: Runner, places: Places) -> None:
    tool = stub(places, AZ)
    credential = run.credential(AZ, subscription="My Subscription_1.0")
    await run.get_token(credential, VAULT)
    assert tool.runs[0]["argv"][-2:] == ["--subscription", "My Subscription_1.0"]


async def test_azd_passes_every_scope(run: Runner, places: Places) -> None:
    tool = stub(places, AZD)
    await run.get_token(run.credential(AZD), VAULT, GRAPH)
    assert tool.runs[0]["argv"] == [
        *("auth", "token", "--output", "json", "--no-prompt"),
        *("--scope", VAULT, "--scope", GRAPH),
    ]


@pytest.mark.parametrize("kind", [AZ, PWSH], ids=str)
async def test_one_scope_only_for_az_and_powershell(run: Runner, places: Places, kind: Kind) -> None:
    tool = stub(places, kind)
    with pytest.raises(ValueError, match="exactly one scope"):
        await run.get_token(run.credential(kind), VAULT, GRAPH)
    assert tool.runs == []


async def test_no_scope(run: Runner, places: Places, kind: Kind) -> None:
    tool = stub(places, kind)
    with pytest.raises(ValueError, match="at least one scope"):
        await run.get_token(run.credential(kind))
    assert tool.runs == []


# --------------------------------------------------------------------------- caching


async def test_second_request_is_served_from_the_cache(run: Runner, places: Places, kind: Kind) -> None:
    tool = stub(places, kind)
    credential = run.credential(kind)
    first = await run.get_token(credential, VAULT)
    second = await run.get_token(credential, VAULT)
    info = await run.get_token_info(credential, VAULT)
    assert first == second
    assert info.token == ACCESS_TOKEN
    assert len(tool.runs) == 1
    await run.get_token(credential, GRAPH)  # another resource is another token
    assert len(tool.runs) == 2


async def test_a_new_sign_in_drops_the_cache(run: Runner, places: Places, kind: Kind) -> None:
    tool = stub(places, kind)
    credential = run.credential(kind)
    await run.get_token(credential, VAULT)
    await run.get_token(credential, GRAPH)

    places.login_file(kind).write_text('{"signed in": "someone else"}')
    tool.reply(kind.success(ACCESS_TOKEN + "-new", EXPIRES + 60))

    token = await run.get_token(credential, VAULT)
    assert (token.token, token.expires_on) == (ACCESS_TOKEN + "-new", EXPIRES + 60)
    assert len(tool.runs) == 3
    await run.get_token(credential, GRAPH)  # every cached token went, not only the one asked for
    assert len(tool.runs) == 4
    await run.get_token(credential, VAULT)
    assert len(tool.runs) == 4


async def test_signing_out_drops_the_cache(run: Runner, places: Places, kind: Kind) -> None:
    tool = stub(places, kind)
    places.login_file(kind).write_text("{}")
    credential = run.credential(kind)
    await run.get_token(credential, VAULT)

    places.login_file(kind).unlink()
    tool.reply(*kind.not_logged_in)
    await run.fails(CredentialUnavailableError, credential, VAULT)
    assert len(tool.runs) == 2


async def test_the_tools_own_cache_writes_are_not_a_new_sign_in(
    run: Runner, places: Places, kind: Kind
) -> None:
    tool = stub(places, kind)
    tool.reply(kind.success(ACCESS_TOKEN, EXPIRES), touch=(places.token_cache_file(kind),))
    credential = run.credential(kind)
    await run.get_token(credential, VAULT)
    await run.get_token(credential, VAULT)
    assert len(tool.runs) == 1


async def test_a_sign_in_during_a_run_is_not_cached(run: Runner, places: Places, kind: Kind) -> None:
    # The sign-in file changes while the tool runs (another terminal's login): the token is handed
    # out, but the next call asks the tool again instead of serving a token of uncertain account.
    tool = stub(places, kind)
    tool.reply(kind.success(ACCESS_TOKEN, EXPIRES), touch=(places.login_file(kind),))
    credential = run.credential(kind)
    first = await run.get_token(credential, VAULT)
    assert first.token == ACCESS_TOKEN
    tool.reply(kind.success(ACCESS_TOKEN + "-2", EXPIRES))
    second = await run.get_token(credential, VAULT)
    assert second.token == ACCESS_TOKEN + "-2"
    assert len(tool.runs) == 2


async def test_a_claims_request_sees_a_new_sign_in_and_drops_the_cache(
    run: Runner, places: Places, kind: Kind
) -> None:
    tool = stub(places, kind)
    credential = run.credential(kind)
    await run.get_token(credential, VAULT)
    places.login_file(kind).parent.mkdir(parents=True, exist_ok=True)
    places.login_file(kind).write_text("signed in as someone else")
    tool.reply(kind.success(ACCESS_TOKEN + "-new", EXPIRES))
    if kind is AZD:  # azd takes claims; az and PowerShell refuse them before running
        await run.get_token(credential, STORAGE, claims='{"access_token": {"nbf": {"essential": true}}}')
    else:
        with pytest.raises(CredentialUnavailableError):
            await run.get_token(credential, STORAGE, claims='{"access_token": {"nbf": {"essential": true}}}')
    # The claims request saw the new sign-in: the first account's cached token is gone.
    again = await run.get_token(credential, VAULT)
    assert again.token == ACCESS_TOKEN + "-new"


async def test_a_token_near_expiry_is_fetched_again(run: Runner, places: Places, kind: Kind) -> None:
    tool = stub(places, kind)
    tool.reply(kind.success(ACCESS_TOKEN, int(time.time()) + 120))  # inside the 5-minute margin
    credential = run.credential(kind)
    await run.get_token(credential, VAULT)
    await run.get_token(credential, VAULT)
    assert len(tool.runs) == 2


async def test_concurrent_requests_share_one_run(run: Runner, places: Places, kind: Kind) -> None:
    tool = stub(places, kind)
    tool.reply(kind.success(ACCESS_TOKEN, EXPIRES), sleep=0.3)
    credential = run.credential(kind)
    if run.mode == "async":
        tokens = await asyncio.gather(*(credential.get_token(VAULT) for _ in range(8)))
    else:
        tokens = []
        threads = [
            threading.Thread(target=lambda: tokens.append(credential.get_token(VAULT))) for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert {token.token for token in tokens} == {ACCESS_TOKEN}
    assert len(tokens) == 8
    assert len(tool.runs) == 1


# --------------------------------------------------------------------------- failures


async def test_not_signed_in_is_unavailable(run: Runner, places: Places, kind: Kind) -> None:
    tool = stub(places, kind)
    tool.reply(*kind.not_logged_in)
    error = await run.fails(CredentialUnavailableError, run.credential(kind), VAULT)
    assert kind.login in error.message


async def test_a_failing_tool_is_an_authentication_error(run: Runner, places: Places, kind: Kind) -> None:
    tool = stub(places, kind)
    tool.reply(*kind.failure)
    credential = run.credential(kind)
    error = await run.fails(ClientAuthenticationError, credential, VAULT)
    assert not isinstance(error, CredentialUnavailableError)
    assert error.message.startswith(f"{type(credential).__name__}: authentication failed. ")
    assert "AADSTS70043" in error.message  # the tool's own explanation
    assert JWT_LIKE not in error.message
    assert "****" in error.message


async def test_inside_default_azure_credential_failures_are_unavailable(
    run: Runner, places: Places, kind: Kind
) -> None:
    tool = stub(places, kind)
    tool.reply(*kind.failure)
    error = await run.fails(CredentialUnavailableError, run.credential(kind, _within_dac=True), VAULT)
    assert "AADSTS70043" in error.message
    tool.reply(kind.garbage)
    error = await run.fails(CredentialUnavailableError, run.credential(kind, _within_dac=True), VAULT)
    assert error.message.startswith(kind.unexpected)


async def test_unusable_output_is_an_authentication_error(run: Runner, places: Places, kind: Kind) -> None:
    tool = stub(places, kind)
    tool.reply(kind.garbage)
    error = await run.fails(ClientAuthenticationError, run.credential(kind), VAULT)
    assert not isinstance(error, CredentialUnavailableError)
    assert kind.unexpected in error.message


async def test_failure_without_output(run: Runner, places: Places, kind: Kind) -> None:
    tool = stub(places, kind)
    tool.reply("", "", 3)
    error = await run.fails(ClientAuthenticationError, run.credential(kind), VAULT)
    assert "Failed to invoke" in error.message


async def test_missing_tool_is_unavailable_and_nothing_runs(
    run: Runner, places: Places, kind: Kind, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = stub(places, kind)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    error = await run.fails(CredentialUnavailableError, run.credential(kind), VAULT)
    assert kind.login in error.message
    assert "install" in error.message.lower()
    assert tool.runs == []


async def test_a_hanging_tool_is_killed_after_process_timeout(
    run: Runner, places: Places, kind: Kind
) -> None:
    tool = stub(places, kind)
    tool.reply(kind.success(ACCESS_TOKEN, EXPIRES), sleep=30)
    credential = run.credential(kind, process_timeout=1)
    started = time.monotonic()
    error = await run.fails(CredentialUnavailableError, credential, VAULT)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 5
    assert error.message.startswith("Failed to invoke ")
    assert "did not finish within 1 s" in error.message
    assert "process_timeout" in error.message
    [seen] = tool.runs
    with pytest.raises(ProcessLookupError):
        os.kill(seen["pid"], 0)


async def test_failure_is_not_cached(run: Runner, places: Places, kind: Kind) -> None:
    tool = stub(places, kind)
    tool.reply(*kind.not_logged_in)
    credential = run.credential(kind)
    await run.fails(CredentialUnavailableError, credential, VAULT)
    tool.reply(kind.success(ACCESS_TOKEN, EXPIRES))  # the user signed in
    assert (await run.get_token(credential, VAULT)).token == ACCESS_TOKEN
    assert len(tool.runs) == 2


async def test_azure_cli_error_mapping(run: Runner, places: Places) -> None:
    tool = stub(places, AZ)
    credential = run.credential(AZ)
    tool.reply("", "ERROR: Please run 'az account set' to select a subscription.", 1)
    assert "az login" in (await run.fails(CredentialUnavailableError, credential, VAULT)).message
    tool.reply("", "", 127)
    assert "Azure CLI not found" in (await run.fails(CredentialUnavailableError, credential, VAULT)).message


async def test_azd_error_mapping(run: Runner, places: Places) -> None:
    tool = stub(places, AZD)
    credential = run.credential(AZD)
    legacy = json.dumps({"type": "consoleMessage", "data": {"message": "\nERROR: fetching token: boom\n"}})
    tool.reply(legacy + "\n", "", 1)
    error = await run.fails(ClientAuthenticationError, credential, VAULT)
    assert error.message.endswith("ERROR: fetching token: boom")
    tool.reply("", "Error: unknown flag: --claims", 1)
    error = await run.fails(CredentialUnavailableError, credential, VAULT, claims=CLAIMS)
    assert "1.18.1" in error.message
    tool.reply("", "plain failure text", 2)
    error = await run.fails(ClientAuthenticationError, credential, VAULT)
    assert error.message.endswith("plain failure text")


async def test_powershell_error_mapping(run: Runner, places: Places) -> None:
    tool = stub(places, PWSH)
    credential = run.credential(PWSH)
    tool.reply("NO_AZ_ACCOUNT_MODULE\n")
    error = await run.fails(CredentialUnavailableError, credential, VAULT)
    assert "Az.Account module >= 2.2.0 is not installed" in error.message
    tool.reply("", "File C:\\x.ps1 cannot be loaded. AuthorizationManager check failed.", 1)
    error = await run.fails(CredentialUnavailableError, credential, VAULT)
    assert error.message == "Execution policy prevented invoking Azure PowerShell"
    clixml = (
        '#< CLIXML\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        '<S S="Error">Get-AzAccessToken: Run Connect-AzAccount to login._x000D__x000A_</S></Objs>'
    )
    tool.reply("", clixml, 1)
    error = await run.fails(CredentialUnavailableError, credential, VAULT)
    assert "Connect-AzAccount" in error.message
    tool.reply("", clixml.replace("Run Connect-AzAccount to login.", "boom &amp; more"), 1)
    error = await run.fails(ClientAuthenticationError, credential, VAULT)
    assert error.message.endswith("Failed to invoke PowerShell: Get-AzAccessToken: boom & more")


# --------------------------------------------------------------------------- claims


@pytest.mark.parametrize(
    ("kind", "command"),
    [
        (AZ, f"az login --claims-challenge {CLAIMS_B64} --scope {VAULT}"),
        (PWSH, f"Connect-AzAccount -ClaimsChallenge {CLAIMS_B64}"),
    ],
    ids=["az", "pwsh"],
)
async def test_claims_name_the_sign_in_command(run: Runner, places: Places, kind: Kind, command: str) -> None:
    tool = stub(places, kind)
    credential = run.credential(kind)
    error = await run.fails(CredentialUnavailableError, credential, VAULT, claims=CLAIMS)
    assert error.message.startswith("This credential doesn't support claims challenges.")
    assert error.message.endswith(command)
    with pytest.raises(CredentialUnavailableError) as caught:
        await run.get_token_info(credential, VAULT, options={"claims": CLAIMS})
    assert caught.value.message == error.message
    assert tool.runs == []


@pytest.mark.parametrize(
    ("kind", "command"),
    [
        (AZ, f"az login --claims-challenge {CLAIMS_B64} --tenant {OTHER_TENANT} --scope {VAULT}"),
        (PWSH, f"Connect-AzAccount -ClaimsChallenge {CLAIMS_B64} -Tenant {OTHER_TENANT}"),
    ],
    ids=["az", "pwsh"],
)
async def test_claims_command_names_the_tenant(run: Runner, places: Places, kind: Kind, command: str) -> None:
    stub(places, kind)
    error = await run.fails(
        CredentialUnavailableError, run.credential(kind), VAULT, claims=CLAIMS, tenant_id=OTHER_TENANT
    )
    assert error.message.endswith(command)


async def test_azd_passes_claims_and_bypasses_the_cache(
    run: Runner, places: Places, caplog: pytest.LogCaptureFixture
) -> None:
    tool = stub(places, AZD)
    credential = run.credential(AZD)
    await run.get_token(credential, VAULT)
    await run.get_token(credential, VAULT, claims=CLAIMS)
    await run.get_token_info(credential, VAULT, options={"claims": CLAIMS})
    assert len(tool.runs) == 3
    assert tool.runs[1]["argv"][-2:] == ["--claims", CLAIMS_B64]
    assert tool.runs[2]["argv"][-2:] == ["--claims", CLAIMS_B64]
    assert CLAIMS_B64 not in caplog.text
    assert "--claims <claims>" in caplog.text


async def test_blank_claims_are_no_claims(run: Runner, places: Places, kind: Kind) -> None:
    stub(places, kind)
    assert (await run.get_token(run.credential(kind), VAULT, claims="  ")).token == ACCESS_TOKEN


# --------------------------------------------------------------------------- tenants


def assert_tenant(kind: Kind, argv: list[str], tenant: str | None) -> None:
    assert_command(kind, argv, VAULT, tenant)


async def test_configured_tenant(run: Runner, places: Places, kind: Kind) -> None:
    tool = stub(places, kind)
    await run.get_token(run.credential(kind, tenant_id=TENANT), VAULT)
    assert_tenant(kind, tool.runs[0]["argv"], TENANT)


async def test_per_call_tenant_without_a_configured_one(run: Runner, places: Places, kind: Kind) -> None:
    tool = stub(places, kind)
    credential = run.credential(kind)
    await run.get_token(credential, VAULT, tenant_id=OTHER_TENANT)
    await run.get_token(credential, VAULT)  # the tool's default tenant: another token
    assert_tenant(kind, tool.runs[0]["argv"], OTHER_TENANT)
    assert_tenant(kind, tool.runs[1]["argv"], None)


async def test_per_call_tenant_must_be_allowed(run: Runner, places: Places, kind: Kind) -> None:
    tool = stub(places, kind)
    credential = run.credential(kind, tenant_id=TENANT)
    error = await run.fails(ClientAuthenticationError, credential, VAULT, tenant_id=OTHER_TENANT)
    assert "additionally_allowed_tenants" in error.message
    assert tool.runs == []

    allowed = run.credential(kind, tenant_id=TENANT, additionally_allowed_tenants=[OTHER_TENANT])
    await run.get_token(allowed, VAULT, tenant_id=OTHER_TENANT)
    anyone = run.credential(kind, tenant_id=TENANT, additionally_allowed_tenants=["*"])
    await run.get_token(anyone, VAULT, tenant_id="contoso.onmicrosoft.com")
    assert_tenant(kind, tool.runs[0]["argv"], OTHER_TENANT)
    assert_tenant(kind, tool.runs[1]["argv"], "contoso.onmicrosoft.com")


async def test_multitenant_can_be_disabled(
    run: Runner, places: Places, kind: Kind, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_IDENTITY_DISABLE_MULTITENANTAUTH", "true")
    tool = stub(places, kind)
    await run.get_token(run.credential(kind, tenant_id=TENANT), VAULT, tenant_id=OTHER_TENANT)
    assert_tenant(kind, tool.runs[0]["argv"], TENANT)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "scope",
    [
        "https://vault.azure.net/.default; rm -rf /",
        "https://vault.azure.net/.default' ; Remove-Item x; '",
        "https://vault.azure.net/.default\n--debug",
        "$(whoami)",
        "--output=tsv",
        "https://vault.azure.net/.default ",
    ],
)
async def test_unsafe_scopes_are_refused_before_anything_runs(
    run: Runner, places: Places, kind: Kind, scope: str
) -> None:
    tool = stub(places, kind)
    with pytest.raises(ValueError, match="invalid scope"):
        await run.get_token(run.credential(kind), scope)
    assert tool.runs == []


@pytest.mark.parametrize("tenant", ["a b", "x;y", "'t'", "--help", "t\n", "tenant/..", "té"])
async def test_unsafe_tenants_are_refused(run: Runner, places: Places, kind: Kind, tenant: str) -> None:
    tool = stub(places, kind)
    with pytest.raises(ValueError, match="tenant"):
        run.credential(kind, tenant_id=tenant)
    with pytest.raises(ValueError, match="tenant"):
        await run.get_token(run.credential(kind), VAULT, tenant_id=tenant)
    assert tool.runs == []


@pytest.mark.parametrize("subscription", ["sub;rm", "--help", "a/b", "sub'x", "s\nx", "Ünïcode"])
def test_unsafe_subscriptions_are_refused(run: Runner, subscription: str) -> None:
    with pytest.raises(ValueError, match="subscription"):
        run.credential(AZ, subscription=subscription)


@pytest.mark.parametrize("timeout", [0, -1, "10", True, None])
def test_process_timeout_must_be_positive(run: Runner, kind: Kind, timeout: Any) -> None:
    with pytest.raises(ValueError, match="process_timeout"):
        run.credential(kind, process_timeout=timeout)


def test_unknown_arguments_are_refused(run: Runner, kind: Kind) -> None:
    with pytest.raises(TypeError):
        run.credential(kind, authority="https://login.microsoftonline.com")


# --------------------------------------------------------------------------- the credential object


async def test_repr_and_pickle(run: Runner, places: Places, kind: Kind) -> None:
    tool = stub(places, kind)
    credential = run.credential(kind, tenant_id=TENANT, process_timeout=7)
    await run.get_token(credential, VAULT)
    text = repr(credential)
    assert text.startswith(f"{type(credential).__name__}(tenant_id='{TENANT}'")
    assert "process_timeout=7" in text
    assert ACCESS_TOKEN not in text

    copy = pickle.loads(pickle.dumps(credential))
    run.opened.append(copy)
    assert type(copy) is type(credential)
    assert repr(copy) == text
    await run.get_token(copy, VAULT)  # a copy starts with an empty cache
    assert len(tool.runs) == 2


async def test_context_manager(run: Runner, places: Places, kind: Kind) -> None:
    stub(places, kind)
    credential = run.credential(kind)
    if run.mode == "sync":
        with credential as entered:
            assert entered is credential
            assert entered.get_token(VAULT).token == ACCESS_TOKEN
    else:
        async with credential as entered:
            assert entered is credential
            assert (await entered.get_token(VAULT)).token == ACCESS_TOKEN
    await run.close(credential)  # closing twice is fine


async def test_no_token_in_debug_logs(
    run: Runner, places: Places, kind: Kind, caplog: pytest.LogCaptureFixture
) -> None:
    tool = stub(places, kind)
    credential = run.credential(kind)
    await run.get_token(credential, VAULT)
    tool.reply(*kind.failure)
    await run.fails(ClientAuthenticationError, credential, GRAPH)
    assert ACCESS_TOKEN not in caplog.text
    assert JWT_LIKE not in caplog.text
    assert "executing" in caplog.text  # the command line is logged at DEBUG


# --------------------------------------------------------------------------- properties

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
SCOPE_PATTERN = r"[A-Za-z0-9_.:/\-]+"
TENANT_PATTERN = r"[A-Za-z0-9.\-]+"
SUBSCRIPTION_PATTERN = r"[A-Za-z0-9_. \-]+"

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(["1900000000", "2030-03-17 17:46:40.000000", "2030-03-17T17:46:40Z", "", "0"]),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def documents(*keys: str) -> st.SearchStrategy[str]:
    """JSON objects made mostly of the fields a parser looks for, with values of any type."""
    names = st.sampled_from(keys) | st.text(max_size=10)
    return st.dictionaries(names, json_values, max_size=5).map(json.dumps)


outputs = st.one_of(
    st.text(),
    documents("accessToken", "expires_on", "expiresOn", "token", "error"),
    st.builds(lambda a, b: f"azsdk%{a}%{b}", st.text(), st.text()),
    st.lists(documents("error", "type", "data", "token"), max_size=4).map("\n".join),
)
exit_codes = st.integers(min_value=-255, max_value=255)


def _token_ok(result: TokenResult) -> None:
    assert isinstance(result, TokenResult)
    assert result.access_token
    assert 0 < result.expires_on < 10**11
    assert (result.token_type, result.refresh_on) == ("Bearer", None)


@PROPERTY
@given(outputs)
def test_output_parsers_raise_only_their_documented_errors(text: str) -> None:
    for parse in (parse_cli_output, parse_azd_output, parse_powershell_output):
        error: ProtocolError | None = None
        try:
            result = parse(text)
        except (ToolError, SourceUnavailableError) as exc:
            error = exc
        if error is None:
            _token_ok(result)
        else:
            assert parse is parse_powershell_output or isinstance(error, ToolError)
            assert error.message


@PROPERTY
@given(exit_codes, outputs, outputs)
def test_failure_parsers_never_raise(returncode: int, stdout: str, stderr: str) -> None:
    result = ProcessResult(returncode, stdout, stderr)
    for parse in (parse_cli_failure, parse_azd_failure, parse_powershell_failure):
        error = parse(result)
        assert isinstance(error, (ToolError, SourceUnavailableError))
        assert error.message


token_values = st.text(
    alphabet=st.sampled_from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+/="\\'),
    min_size=1,
).map(lambda text: "Tk9" + text)


@PROPERTY
@given(token_values)
def test_token_values_never_reach_messages(token: str) -> None:
    cases = [
        (parse_cli_output, json.dumps({"accessToken": token, "expiresOn": "tomorrow"})),
        (parse_cli_output, json.dumps({"tokenType": "Bearer", "accessToken": token})),
        (parse_azd_output, json.dumps({"token": token})),
        (parse_azd_output, json.dumps({"expiresOn": None, "token": token})),
    ]
    if '"' not in token and "\\" not in token:
        cases += [
            (parse_powershell_output, f"azsdk%{token}"),
            (parse_powershell_output, f"noise\nazsdk%{token}%soon\n"),
        ]
    for parse, output in cases:
        with pytest.raises(ToolError) as caught:
            parse(output)
        assert token not in caught.value.message
    for parse_failure in (parse_cli_failure, parse_azd_failure, parse_powershell_failure):
        stderr = json.dumps({"accessToken": token, "token": token}) + f" azsdk%{token}%1"
        assert token not in parse_failure(ProcessResult(1, "", stderr)).message


@PROPERTY
@given(st.text())
def test_only_allow_listed_values_pass_validation(value: str) -> None:
    for check, pattern in (
        (check_scope, SCOPE_PATTERN),
        (check_tenant, TENANT_PATTERN),
        (check_subscription, SUBSCRIPTION_PATTERN),
    ):
        try:
            check(value)
        except ValueError:
            continue
        assert re.fullmatch(pattern, value)
        assert not value.startswith("-")


@PROPERTY
@given(scope=st.text(), tenant=st.text())
def test_arbitrary_scopes_and_tenants_never_reach_a_tool(places: Places, scope: str, tenant: str) -> None:
    # No tool on PATH: a request that passes validation ends with "not installed", nothing else.
    for kind in KINDS:
        credential = kind.sync_class()
        for arguments in ({"tenant_id": None}, {"tenant_id": tenant}):
            try:
                credential.get_token(scope, **arguments)
            except ValueError:
                continue
            except CredentialUnavailableError as exc:
                message = exc.message
            else:
                raise AssertionError("no tool is installed")
            assert kind.login in message
            assert re.fullmatch(SCOPE_PATTERN, scope)
            assert not scope.startswith("-")
            if arguments["tenant_id"]:
                assert re.fullmatch(TENANT_PATTERN, tenant)
                assert not tenant.startswith("-")


@PROPERTY
@given(
    scope=st.from_regex(r"\A[A-Za-z0-9_.:/][A-Za-z0-9_.:/\-]*\Z"),
    tenant=st.from_regex(r"\A[A-Za-z0-9.][A-Za-z0-9.\-]*\Z") | st.just(""),
    subscription=st.from_regex(r"\A[A-Za-z0-9_. ][A-Za-z0-9_. \-]*\Z") | st.none(),
)
def test_allowed_values_are_single_argv_items(scope: str, tenant: str, subscription: str | None) -> None:
    request = ToolRequest((scope,), tenant, None)
    resource = scope.removesuffix("/.default")

    argv = AzureCli(subscription).command("/usr/bin/az", request)
    assert argv[:6] == ("/usr/bin/az", "account", "get-access-token", "--output", "json", "--resource")
    assert argv[6] == resource
    rest = list(argv[7:])
    if tenant:
        assert rest[:2] == ["--tenant", tenant]
        rest = rest[2:]
    assert rest == (["--subscription", subscription] if subscription else [])

    argv = AzureDeveloperCli().command("/usr/bin/azd", request)
    assert list(argv[6:]) == ["--scope", scope] + (["--tenant-id", tenant] if tenant else [])

    argv = AzurePowerShell().command("/usr/bin/pwsh", request)
    script = powershell_script(list(argv[1:]))
    assert f"ResourceUrl = '{resource}';" in script
    assert (f"$parameters['TenantId'] = '{tenant}'" in script) == bool(tenant)
