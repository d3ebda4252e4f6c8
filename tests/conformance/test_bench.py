"""``python -m conformance bench``: structure and deterministic figures, never timings.

One quick run of every workload for ``identity`` (module-scoped, ~15 s) backs the checks of request
counts and round trips; the report's arithmetic is checked on hand-made results; the children's
loopback guard is checked in a child process of its own.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conformance.__main__ import main
from conformance.authority import DEFAULT_CLIENT_ID, DEFAULT_SECRET, DEFAULT_TENANT
from conformance.bench import cli, workloads
from conformance.bench.mock import BenchAuthority
from conformance.bench.report import build_rows, format_report, format_table
from conformance.bench.runner import WORKLOADS, BenchOptions, BenchResult, child_environment, run_bench

ROOT = Path(__file__).resolve().parents[2]
CONCURRENCY = ("threads_64", "tasks_64", "tasks_1000")


@pytest.fixture(scope="module")
def identity_run() -> BenchResult:
    """Every workload, quick, one child each, identity only."""
    return run_bench(BenchOptions(quick=True, repeat=1, implementations=("identity",), fill_budget=60))


def _median(result: BenchResult, workload: str, metric: str) -> float | None:
    return result.median(workload, "identity", metric)


def test_every_workload_ran_without_errors(identity_run: BenchResult) -> None:
    assert identity_run.errors == {}
    assert identity_run.implementations == ["identity"]
    # The encrypted cache needs an OS keyring (scripts/test.sh provides one).
    assert set(identity_run.unavailable) <= {"persistence_encrypted/identity"}
    for workload in WORKLOADS:
        if f"{workload.name}/identity" in identity_run.unavailable:
            assert identity_run.runs(workload.name, "identity") == []
            continue
        assert len(identity_run.runs(workload.name, "identity")) == 1, workload.name
    assert len(identity_run.runs("bare", "python")) == 1
    assert "azure.identity" not in {
        implementation for runs in identity_run.samples.values() for implementation in runs
    }


def test_one_request_reaches_the_authority_under_concurrency(identity_run: BenchResult) -> None:
    for workload in CONCURRENCY:
        assert _median(identity_run, workload, "requests") == 1, workload
        assert _median(identity_run, workload, "requests.token") == 1, workload
        assert _median(identity_run, workload, "failures") == 0, workload
        for metric in ("wall_ms", "plain_ms", "wall_over_plain"):
            value = _median(identity_run, workload, metric)
            assert value is not None, (workload, metric)
            assert value > 0
    for workload in ("tasks_64", "tasks_1000"):
        assert _median(identity_run, workload, "cached_gather_ms") is not None


@pytest.mark.parametrize("workload", ["round_trips_sync", "round_trips_async"])
def test_round_trips_for_the_first_token(identity_run: BenchResult, workload: str) -> None:
    # A custom authority with instance discovery disabled: the process's first credential reads the
    # OpenID metadata once, then every credential costs one token request.
    assert _median(identity_run, workload, "per_process") == 2
    assert _median(identity_run, workload, "per_process.openid-configuration") == 1
    assert _median(identity_run, workload, "per_process.token") == 1
    assert _median(identity_run, workload, "per_instance") == 1
    assert _median(identity_run, workload, "per_instance.token") == 1


def test_one_round_trip_for_the_first_token_on_the_public_cloud(identity_run: BenchResult) -> None:
    # login.microsoftonline.com (rerouted to the mock): no discovery at all, the token request only.
    for phase in ("per_process", "per_instance"):
        assert _median(identity_run, "known_cloud_sync", phase) == 1
        assert _median(identity_run, "known_cloud_sync", f"{phase}.token") == 1


def test_fresh_process_figures(identity_run: BenchResult) -> None:
    assert _median(identity_run, "first_token", "requests") == 2
    hwm = _median(identity_run, "first_token", "vmhwm_mib")
    assert hwm is not None
    assert hwm > 0
    for workload in ("import", "import_class", "first_token"):
        assert _median(identity_run, workload, "minus_bare_ms") is not None, workload
    cached = identity_run.medians()["cached_sync"]["identity"]
    assert set(cached) == {"get_token_us", "get_token_info_us"}
    (rounds,) = identity_run.rounds["cached_sync"]["identity"]
    assert set(rounds) == {"get_token_us", "get_token_info_us"}
    assert len(rounds["get_token_us"]) == 3  # the timed rounds the median was taken over
    assert set(identity_run.medians()["cached_async"]["identity"]) == {"get_token_us", "get_token_info_us"}


def test_lookup_fills_every_size(identity_run: BenchResult) -> None:
    assert identity_run.options["lookup_sizes"] == [1, 100, 1_000]
    for size in (1, 100, 1_000):
        assert _median(identity_run, "lookup", f"tokens@{size}") == size
        for kind in ("round_robin", "oldest"):
            assert _median(identity_run, "lookup", f"{kind}_us@{size}") is not None
    assert _median(identity_run, "lookup", "filled") == 1 + 100 + 1_000


def test_table_has_both_columns(identity_run: BenchResult) -> None:
    report = format_report(identity_run)
    header = next(line for line in report.splitlines() if line.startswith("workload"))
    assert header.split() == [
        "workload",
        "unit",
        "identity",
        "azure.identity",
        "azure/identity",
        "better",
        "target",
        "met",
    ]
    rows = {row.workload: row for row in build_rows(identity_run)}
    threads = rows["64 threads: requests at authority"]
    assert (threads.identity_text, threads.azure_text, threads.met) == ("1", "n/a", True)
    assert rows["first token, another credential (sync)"].identity_text == "1"
    assert rows["bare interpreter (python -c pass)"].identity is not None
    assert rows["first token, process's first credential (async)"].identity_text == "2"
    # Targets relative to azure.identity cannot be decided without it.
    assert rows["import <module> - bare"].met is None
    assert "lookup 1,000 / lookup 1: round robin" in rows
    assert all(row.azure_text == "n/a" for row in rows.values())


def test_report_ratios_and_targets() -> None:
    result = BenchResult(
        options={"lookup_sizes": [1, 10_000], "repeat": 1, "fill_budget_s": 5},
        environment={},
        implementations=["identity", "azure.identity"],
    )
    result.add("cached_sync", "identity", {"get_token_us": 0.5, "get_token_info_us": 2.0})
    result.add("cached_sync", "azure.identity", {"get_token_us": 25.0, "get_token_info_us": 30.0})
    result.add("cached_async", "identity", {"get_token_us": 1.5})
    result.add("cached_async", "azure.identity", {"get_token_us": 10.0})
    result.add("bare", "python", {"wall_ms": 20.0})
    result.add("import", "identity", {"wall_ms": 30.0})
    result.add("import", "azure.identity", {"wall_ms": 50.0})
    lookup = {"tokens@1": 1, "round_robin_us@1": 1.0, "oldest_us@1": 1.0}
    result.add("lookup", "identity", {**lookup, "tokens@10000": 10_000, "round_robin_us@10000": 1.05})
    result.add("lookup", "azure.identity", {**lookup, "tokens@10000": 4_321, "round_robin_us@10000": 3.0})
    rows = {row.workload: row for row in build_rows(result)}
    sync = rows["cached get_token (sync)"]
    assert (sync.ratio, sync.better, sync.met) == (50.0, "identity", True)
    assert rows["cached get_token (async)"].met is False  # over 1 µs
    assert rows["import <module> - bare"].ratio == 3.0  # (50 - 20) / (30 - 20)
    assert rows["import <module> - bare"].met is True
    partial = rows["lookup 10,000: round robin"]
    assert partial.azure_text == "3.00 @4,321"
    assert partial.ratio is None
    growth = rows["lookup 10,000 / lookup 1: round robin"]
    assert growth.identity_text == "1.05"
    assert growth.met is True
    table = format_table(list(rows.values()))
    assert "50x" in table
    assert "3.00 @4,321" in table


def test_cli_writes_the_raw_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bench.json"
    argv = ["bench", "--quick", "--repeat", "1", "--implementation", "identity"]
    argv += ["--workload", "round_trips_sync", "--json", str(path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "first token, another credential (sync)" in out
    data = json.loads(path.read_text())
    assert data["samples"]["round_trips_sync"]["identity"][0]["per_instance"] == 1
    assert data["medians"]["round_trips_sync"]["identity"]["per_process"] == 2
    assert data["options"]["workloads"] == ["round_trips_sync"]
    assert any(row["workload"].startswith("first token") for row in data["table"])


def test_cli_and_runner_know_the_same_workloads() -> None:
    assert sorted(cli._WORKLOAD_NAMES) == sorted(workload.name for workload in WORKLOADS)
    module_workloads = {workload.name for workload in WORKLOADS if workload.kind == "module"}
    assert module_workloads == set(workloads.MODULE_WORKLOADS)


def test_children_get_the_ca_a_bytecode_cache_and_no_proxy_or_azure_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:8080")
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://login.example")
    monkeypatch.setenv("AZURE_REGIONAL_AUTHORITY_NAME", "westus2")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    target = workloads.BenchTarget("https://127.0.0.1:1", "/ca.pem", DEFAULT_TENANT, DEFAULT_CLIENT_ID, "s")
    env = child_environment(target, "/tmp/pycache")
    assert env["PYTHONPYCACHEPREFIX"] == "/tmp/pycache"
    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert "HTTPS_PROXY" not in env
    assert not any(name.startswith("AZURE_") for name in env)
    assert env["SSL_CERT_FILE"] == env["REQUESTS_CA_BUNDLE"] == "/ca.pem"
    assert workloads.BenchTarget.from_env(env) == target


def test_control_endpoint_counts_authority_requests_only() -> None:
    with BenchAuthority() as mock:
        target = workloads.BenchTarget(
            mock.url, mock.ca_path, DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET
        )
        assert workloads.authority_counts(target) == {"total": 0}
        context = ssl.create_default_context(cafile=mock.ca_path)
        with httpx.Client(verify=context) as client:
            response = client.post(
                f"{mock.url}/{DEFAULT_TENANT}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": DEFAULT_CLIENT_ID,
                    "client_secret": DEFAULT_SECRET,
                    "scope": workloads.SCOPE,
                },
            )
        assert response.status_code == 200
        assert workloads.authority_counts(target) == {"total": 1, "token": 1}
        mock.reset()
        assert workloads.authority_counts(target) == {"total": 0}
        with pytest.raises(ValueError, match="latency"):
            mock.latency = -1


@pytest.mark.parametrize(
    "statement",
    [
        "socket.create_connection(('192.0.2.1', 443), timeout=1)",
        "socket.getaddrinfo('login.microsoftonline.com', 443)",
    ],
)
def test_children_cannot_leave_loopback(statement: str) -> None:
    code = f"import socket\nimport conformance.bench.guard as guard\nguard.install()\n{statement}"
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
    )
    assert completed.returncode != 0
    assert "NonLoopbackError" in completed.stderr


def test_fresh_process_scripts_refuse_unknown_implementations() -> None:
    with pytest.raises(ValueError, match="unknown implementation"):
        workloads.first_token_script("os")
    with pytest.raises(ValueError, match="unknown implementation"):
        workloads.import_script("os; import sys")
