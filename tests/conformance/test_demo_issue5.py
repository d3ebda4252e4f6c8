"""``python -m conformance demo``: the managed identity, Azure Pipelines, DefaultAzureCredential and
developer-tool rows.

In process, so the test-wide socket guard proves these rows only talk to loopback (IMDS's host is
the plain-HTTP mount, never 169.254.169.254) and the environment they set is gone afterwards.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
from pathlib import Path

import pytest

from conformance import demo
from conformance.__main__ import main
from conformance.authority import SYSTEM_MI_CLIENT_ID
from conformance.scenarios import CREDENTIAL_VARIABLES

MI_SOURCES = ("IMDS", "App Service", "Azure ML", "Cloud Shell", "Azure Arc key file")
TOOLS = (
    ("AzureCliCredential", "az"),
    ("AzureDeveloperCliCredential", "azd"),
    ("AzurePowerShellCredential", "pwsh"),
)


@pytest.fixture(scope="module")
def demo_output() -> tuple[int, str, float]:
    path = os.environ.get("PATH")
    before = {name: os.environ.get(name) for name in CREDENTIAL_VARIABLES}
    buffer = io.StringIO()
    start = time.monotonic()
    with contextlib.redirect_stdout(buffer):
        code = main(["demo"])
    elapsed = time.monotonic() - start
    # The rows' environments (credential variables, the stub tools' PATH) are restored.
    assert os.environ.get("PATH") == path
    assert {name: os.environ.get(name) for name in CREDENTIAL_VARIABLES} == before
    return code, buffer.getvalue(), elapsed


def _rows(out: str, credential: str, flow: str) -> list[str]:
    return [line for line in out.splitlines() if line.split()[:1] == [credential] and flow in line]


def test_demo_succeeds_quickly(demo_output: tuple[int, str, float]) -> None:
    code, out, elapsed = demo_output
    assert code == 0, out
    assert elapsed < 10, f"the demo took {elapsed:.1f} s"
    assert "plain HTTP" in out


@pytest.mark.parametrize("source", MI_SOURCES)
@pytest.mark.parametrize("prefix", ["", "aio."])
def test_managed_identity_rows(demo_output: tuple[int, str, float], source: str, prefix: str) -> None:
    _, out, _ = demo_output
    first, cached = _rows(out, f"{prefix}ManagedIdentityCredential", f"managed identity ({source})")
    requests = 2 if source.startswith("Azure Arc") else 1  # Arc: the key-file challenge, then the token
    who = "user@contoso.onmicrosoft.com" if source == "Cloud Shell" else f"identity {SYSTEM_MI_CLIENT_ID[:8]}"
    assert re.search(rf"first token\s+{requests}\s+token for {re.escape(who)}", first), first
    assert "(https://vault.azure.net)" in first, "the resource is the scope without /.default"
    assert re.search(r"cached\s+0\s+served from cache", cached), cached


@pytest.mark.parametrize("prefix", ["", "aio."])
def test_service_fabric_rows_are_pinned(demo_output: tuple[int, str, float], prefix: str) -> None:
    _, out, _ = demo_output
    first, cached = _rows(out, f"{prefix}ManagedIdentityCredential", "Service Fabric, pinned TLS")
    assert re.search(r"first token\s+1\s+token for identity", first), first
    assert re.search(r"cached\s+0\s+served from cache", cached), cached


@pytest.mark.parametrize("prefix", ["", "aio."])
def test_azure_pipelines_rows(demo_output: tuple[int, str, float], prefix: str) -> None:
    _, out, _ = demo_output
    first, cached = _rows(out, f"{prefix}AzurePipelinesCredential", "Azure Pipelines")
    # The OIDC request, then the client-assertion token request (discovery is memoized by then).
    assert re.search(r"first token\s+2\s+token for app ", first), first
    assert re.search(r"cached\s+0\s+served from cache", cached), cached


@pytest.mark.parametrize("prefix", ["", "aio."])
def test_default_credential_rows(demo_output: tuple[int, str, float], prefix: str) -> None:
    _, out, _ = demo_output
    name = f"{prefix}DefaultAzureCredential"
    environment = _rows(out, name, "chain selects environment")
    managed = _rows(out, name, "chain selects managed identity (App Service)")
    assert len(environment) == len(managed) == 2, (environment, managed)
    assert re.search(r"first token\s+1\s+EnvironmentCredential: token for app ", environment[0])
    assert re.search(r"cached\s+0\s+served from cache", environment[1])
    assert re.search(r"first token\s+1\s+ManagedIdentityCredential: token for identity ", managed[0])
    assert re.search(r"cached\s+0\s+served from cache", managed[1])


@pytest.mark.parametrize(("credential", "tool"), TOOLS)
@pytest.mark.parametrize("prefix", ["", "aio."])
def test_developer_tool_rows(
    demo_output: tuple[int, str, float], credential: str, tool: str, prefix: str
) -> None:
    _, out, _ = demo_output
    first, cached = _rows(out, f"{prefix}{credential}", "developer tool")
    assert "stub), first token" in first
    assert re.search(rf"\s0\s+token for user@contoso\.onmicrosoft\.com .*, 1 run of {tool}\s", first), first
    assert re.search(r"cached\s+0\s+served from cache", cached), cached


def test_demo_does_not_print_managed_identity_secrets(demo_output: tuple[int, str, float]) -> None:
    _, out, _ = demo_output
    assert "CANARY" not in out  # IDENTITY_HEADER / MSI_SECRET values, client secrets


def test_stub_tools_are_executables_on_a_fresh_directory(tmp_path: Path) -> None:
    from conformance.authority import MockAuthority

    authority = MockAuthority.with_defaults()
    tools = demo._write_stub_tools(authority, tmp_path)
    assert sorted(tools) == ["az", "azd", "pwsh"]
    for tool in tools.values():
        assert os.access(tool.path, os.X_OK)
        assert tool.runs == 0
