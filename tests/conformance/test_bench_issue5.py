"""The benchmark's issue 5 rows: managed identity (IMDS at the mock) and the Azure CLI (stub ``az``).

One quick run of the three workloads for both implementations (module-scoped, ~10 s) backs the
checks of their deterministic facts: requests at the mock, runs of ``az``. Timings are only checked
to be there, never against thresholds.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conformance.authority import DEFAULT_CLIENT_ID, DEFAULT_SECRET, DEFAULT_TENANT
from conformance.bench import workloads
from conformance.bench.mock import BenchAuthority
from conformance.bench.report import build_rows, format_report
from conformance.bench.runner import (
    WORKLOADS,
    BenchOptions,
    BenchResult,
    _schedule,
    child_environment,
    run_bench,
)

ROOT = Path(__file__).resolve().parents[2]
ISSUE5 = ("managed_identity_sync", "managed_identity_async", "azure_cli")
MI = (("managed_identity_sync", "sync"), ("managed_identity_async", "async"))

requires_azure = pytest.mark.skipif(
    importlib.util.find_spec("azure.identity") is None or importlib.util.find_spec("aiohttp") is None,
    reason="azure-identity (with aiohttp) is not installed",
)


@pytest.fixture(scope="module")
def run() -> BenchResult:
    """The issue 5 workloads, quick, one child each, both implementations (when installed)."""
    return run_bench(BenchOptions(quick=True, repeat=1, workloads=ISSUE5))


def _target(**changes: str) -> workloads.BenchTarget:
    values = {"url": "https://127.0.0.1:1", "ca_path": "/ca.pem", "http_url": "http://127.0.0.1:2"}
    values.update(changes)
    return workloads.BenchTarget(
        values["url"], values["ca_path"], DEFAULT_TENANT, DEFAULT_CLIENT_ID, "s", http_url=values["http_url"]
    )


def test_the_workloads_ran_without_errors(run: BenchResult) -> None:
    assert run.errors == {}
    assert run.options["workloads"] == list(ISSUE5)
    for workload in ISSUE5:
        for implementation in run.implementations:
            assert len(run.runs(workload, implementation)) == 1, (workload, implementation)


@pytest.mark.parametrize(("workload", "mode"), MI)
def test_identity_managed_identity_asks_imds_once(run: BenchResult, workload: str, mode: str) -> None:
    # The first token and 1,000 cached calls: one request, to IMDS, at the plain-HTTP mount.
    medians = run.medians()[workload]["identity"]
    assert medians["requests"] == 1
    assert medians["requests.imds"] == 1
    assert set(medians) == {
        "first_token_ms",
        "fresh_first_token_ms",
        "get_token_us",
        "requests",
        "requests.imds",
    }
    (rounds,) = run.rounds[workload]["identity"]
    assert set(rounds) == {"get_token_us"}
    assert len(rounds["get_token_us"]) == 3


@requires_azure
@pytest.mark.parametrize(("workload", "mode"), MI)
def test_azure_identity_managed_identity_asks_imds_once(run: BenchResult, workload: str, mode: str) -> None:
    # azure-identity 1.27: the sync credential caches through MSAL's ManagedIdentityClient, the async
    # one through its own client's cache; either way one request for the first token and 1,000 more.
    medians = run.medians()[workload]["azure.identity"]
    assert medians["requests"] == 1
    assert medians["requests.imds"] == 1
    for metric in ("first_token_ms", "fresh_first_token_ms", "get_token_us"):
        assert medians[metric] > 0


def test_identity_runs_az_once_for_twenty_calls(run: BenchResult) -> None:
    medians = run.medians()["azure_cli"]["identity"]
    assert medians["az_runs"] == 1
    assert set(medians) == {"az_runs", "calls_ms", "first_call_ms", "stub_run_ms"}
    assert medians["calls_ms"] >= medians["first_call_ms"] > 0


@requires_azure
def test_azure_identity_runs_az_on_every_call(run: BenchResult) -> None:
    medians = run.medians()["azure_cli"]["azure.identity"]
    assert medians["az_runs"] == workloads.CLI_CALLS == 20
    assert medians["stub_run_ms"] > 0


def test_report_rows(run: BenchResult) -> None:
    rows = {row.workload: row for row in build_rows(run)}
    azure = "azure.identity" in run.implementations
    for mode in ("sync", "async"):
        requests = rows[f"managed identity (IMDS): requests, first token + 1,000 cached ({mode})"]
        assert (requests.identity_text, requests.target, requests.met) == ("1", "= 1", True)
        assert requests.azure_text == ("1" if azure else "n/a")
        for title in (
            f"managed identity (IMDS): cached get_token ({mode})",
            f"managed identity (IMDS): import + construct + first token ({mode})",
            f"managed identity (IMDS): first token, fresh credential ({mode})",
        ):
            assert rows[title].identity is not None, title
    runs = rows["Azure CLI (stub az): az runs for 20 calls"]
    assert (runs.identity_text, runs.unit, runs.met) == ("1", "runs", True)
    assert runs.azure_text == ("20" if azure else "n/a")
    if azure:
        assert runs.ratio == 20
        assert runs.better == "identity"
    assert rows["Azure CLI (stub az): 20 get_token calls"].identity is not None
    assert rows["Azure CLI (stub az): first get_token"].identity is not None
    assert rows["stub az, one run by itself (python -S -E)"].ratio is None  # a reference, not compared
    report = format_report(run)
    assert "never 169.254.169.254" in report
    assert "stand-in az" in report


def test_warm_ups_come_before_the_measured_children() -> None:
    selected = [workload for workload in WORKLOADS if workload.name in ISSUE5]
    assert all(workload.warm_up for workload in selected)
    steps = list(_schedule(selected, ["identity", "azure.identity"], 2))
    warm = [(workload.name, implementation) for workload, implementation, measured in steps if not measured]
    assert warm == [
        (name, implementation) for name in ISSUE5 for implementation in ("identity", "azure.identity")
    ]
    assert all(not measured for _, _, measured in steps[: len(warm)])
    assert sum(measured for _, _, measured in steps) == 2 * 2 * len(ISSUE5)


@pytest.mark.parametrize(
    "http_url",
    [
        "",
        "http://169.254.169.254",
        "http://169.254.169.254:80",
        "https://127.0.0.1:8080",
        "http://127.0.0.2:8080",
        "http://10.0.0.1:2579",
        "http://127.0.0.1",
        "http://127.0.0.1:8080/metadata",
    ],
)
def test_managed_identity_workloads_accept_only_the_loopback_mount(
    monkeypatch: pytest.MonkeyPatch, http_url: str
) -> None:
    monkeypatch.delenv(workloads.IMDS_HOST_VARIABLE, raising=False)
    target = _target(http_url=http_url)
    with pytest.raises(ValueError, match="plain-HTTP loopback mount"):
        workloads.use_mock_imds(target)
    assert workloads.IMDS_HOST_VARIABLE not in os.environ
    with pytest.raises(ValueError, match="plain-HTTP loopback mount"):
        workloads.check_mock_imds(target)


def test_the_imds_host_is_checked_before_every_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    target = _target(http_url="http://127.0.0.1:4321/")
    monkeypatch.delenv(workloads.IMDS_HOST_VARIABLE, raising=False)
    with pytest.raises(AssertionError, match=workloads.IMDS_HOST_VARIABLE):
        workloads.check_mock_imds(target)
    monkeypatch.setenv("MSI_ENDPOINT", "http://127.0.0.1:9/msi")
    assert workloads.use_mock_imds(target) == "http://127.0.0.1:4321"
    assert os.environ[workloads.IMDS_HOST_VARIABLE] == "http://127.0.0.1:4321"
    assert "MSI_ENDPOINT" not in os.environ  # another source would win over IMDS
    workloads.check_mock_imds(target)
    monkeypatch.setenv(workloads.IMDS_HOST_VARIABLE, "http://169.254.169.254")
    with pytest.raises(AssertionError, match=workloads.IMDS_HOST_VARIABLE):
        workloads.check_mock_imds(target)


@pytest.mark.parametrize("workload", ["managed_identity_sync", "managed_identity_async"])
def test_a_child_without_the_mount_refuses_before_any_credential(workload: str) -> None:
    env = child_environment(_target(http_url=""))
    completed = subprocess.run(
        [sys.executable, "-m", "conformance.bench.workloads", workload, "identity"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert "plain-HTTP loopback mount" in completed.stderr
    assert "in use_mock_imds" in completed.stderr
    assert "identity.managed_identity" not in completed.stderr  # refused before building one


def test_children_get_no_managed_identity_or_cli_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://169.254.169.254")
    monkeypatch.setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi")
    monkeypatch.setenv("MSI_ENDPOINT", "http://127.0.0.1:9/msi")
    monkeypatch.setenv("AZURE_CONFIG_DIR", "/home/someone/.azure")
    env = child_environment(_target())
    for name in (
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        "IDENTITY_ENDPOINT",
        "MSI_ENDPOINT",
        "AZURE_CONFIG_DIR",
    ):
        assert name not in env
    assert workloads.BenchTarget.from_env(env).http_url == "http://127.0.0.1:2"


def test_the_stub_az_prints_a_token_and_records_its_runs(tmp_path: Path) -> None:
    expires_on = int(time.time()) + 3600
    path, runs = workloads.write_stub_az(str(tmp_path / "bin"), expires_on, DEFAULT_TENANT)
    for _ in range(2):
        completed = subprocess.run(
            [path, "account", "get-access-token", "--output", "json"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        output = json.loads(completed.stdout)
        assert output["accessToken"] == workloads.STUB_AZ_TOKEN
        assert output["expires_on"] == expires_on
        assert output["tenant"] == DEFAULT_TENANT
        assert output["tokenType"] == "Bearer"
        assert {"expiresOn", "subscription"} <= set(output)
    assert Path(runs).read_text().splitlines() == ["account get-access-token --output json"] * 2


def test_the_plain_http_mount_serves_imds_and_is_counted() -> None:
    with BenchAuthority() as mock:
        assert mock.http_url.startswith("http://127.0.0.1:")
        target = workloads.BenchTarget(
            mock.url, mock.ca_path, DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, http_url=mock.http_url
        )
        response = httpx.get(
            f"{mock.http_url}/metadata/identity/oauth2/token",
            params={"api-version": "2018-02-01", "resource": "https://vault.azure.net"},
            headers={"Metadata": "true"},
        )
        assert response.status_code == 200
        assert response.json()["access_token"]
        assert workloads.authority_counts(target) == {"total": 1, "imds": 1}
    assert not mock._http_server.running
