"""The benchmark's ``persistence`` workloads: deterministic facts only, never timings.

One quick run of ``persistence`` (plaintext) and ``persistence_encrypted`` for every installed
implementation backs the checks: every token written is in the file, cached reads and reads of
tokens another process added make no request. The report's rows are checked on hand-made results.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest

from conformance.bench import runner, workloads
from conformance.bench.report import build_rows, format_report
from conformance.bench.runner import BenchOptions, BenchResult, run_bench
from conformance.bench.workloads import PERSISTENCE_CHANGES, PERSISTENCE_TOKENS

IMPLEMENTATIONS = tuple(
    name for name in ("identity", "azure.identity") if importlib.util.find_spec(name) is not None
)


@pytest.fixture(scope="module")
def persistence_run() -> BenchResult:
    return run_bench(
        BenchOptions(
            quick=True,
            repeat=1,
            implementations=IMPLEMENTATIONS,
            workloads=("persistence", "persistence_encrypted"),
        )
    )


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_plaintext_every_token_written_is_in_the_file(
    persistence_run: BenchResult, implementation: str
) -> None:
    assert persistence_run.errors == {}
    (metrics,) = persistence_run.runs("persistence", implementation)
    assert metrics["write_requests"] == PERSISTENCE_TOKENS
    assert metrics["tokens_in_file"] == PERSISTENCE_TOKENS
    for name in ("write_ms", "write_persistent_ms", "read_us", "read_persistent_us", "read_changed_us"):
        assert metrics[name] > 0, name
    assert "write_cost_ms" in metrics
    assert "read_overhead_us" in metrics


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_plaintext_reads_make_no_request(persistence_run: BenchResult, implementation: str) -> None:
    (metrics,) = persistence_run.runs("persistence", implementation)
    assert metrics["read_requests"] == 0
    # Tokens another process added to the file are served from it.
    assert metrics["changed_requests"] == 0
    (rounds,) = persistence_run.rounds["persistence"][implementation]
    assert len(rounds["plaintext.read_changed_us"]) == PERSISTENCE_CHANGES
    assert len(rounds["plaintext.write_ms"]) == len(rounds["plaintext.write_persistent_ms"]) == 10


def test_encrypted_runs_with_a_keyring_or_says_why_not(persistence_run: BenchResult) -> None:
    reason = persistence_run.unavailable.get("persistence_encrypted/identity")
    if reason is not None:
        assert "keyring" in reason
        assert persistence_run.runs("persistence_encrypted", "identity") == []
        return
    (metrics,) = persistence_run.runs("persistence_encrypted", "identity")
    assert metrics["write_requests"] == PERSISTENCE_TOKENS
    assert metrics["tokens_in_file"] == PERSISTENCE_TOKENS
    assert metrics["read_requests"] == 0
    assert "read_changed_us" not in metrics


def test_azure_encrypted_needs_a_keyring_and_libsecret(persistence_run: BenchResult) -> None:
    if "azure.identity" not in IMPLEMENTATIONS:
        pytest.skip("azure.identity is not installed")
    if importlib.util.find_spec("gi") is None:
        reason = persistence_run.unavailable["persistence_encrypted/azure.identity"]
        assert "keyring" in reason or "PyGObject" in reason


def test_table_rows(persistence_run: BenchResult) -> None:
    rows = {row.workload: row for row in build_rows(persistence_run)}
    n = PERSISTENCE_TOKENS
    for title, text in (
        (f"persistence (plaintext): requests for {n} tokens", str(n)),
        (f"persistence (plaintext): tokens in the file after {n} written", str(n)),
        ("persistence (plaintext): requests for cached reads", "0"),
        (
            f"persistence (plaintext): requests for {PERSISTENCE_CHANGES} reads of tokens "
            "another process added",
            "0",
        ),
    ):
        assert rows[title].identity_text == text, title
        assert rows[title].met is True, title
    assert "Persistence:" in format_report(persistence_run)


def test_report_targets() -> None:
    result = BenchResult(
        options={"repeat": 1}, environment={}, implementations=["identity", "azure.identity"]
    )
    base = {"write_ms": 2.0, "read_us": 0.5, "read_requests": 0}
    result.add(
        "persistence",
        "identity",
        {
            **base,
            "write_persistent_ms": 2.5,
            "write_cost_ms": 0.5,
            "read_persistent_us": 0.6,
            "read_overhead_us": 0.1,
        },
    )
    result.add(
        "persistence",
        "azure.identity",
        {
            **base,
            "write_persistent_ms": 5.6,
            "write_cost_ms": 3.6,
            "read_persistent_us": 40,
            "read_overhead_us": 9,
        },
    )
    result.add("persistence_encrypted", "identity", {"write_cost_ms": 1.5, "read_overhead_us": 2.5})
    rows = {row.workload: row for row in build_rows(result)}
    cost = rows["persistence (plaintext): cost per token written (persisted - not)"]
    assert (cost.met, cost.ratio, cost.better) == (True, 7.2, "identity")
    overhead = rows["persistence (plaintext): cached read overhead (persisted - in memory)"]
    assert (overhead.met, overhead.ratio, overhead.better) == (True, None, "-")
    assert rows["persistence (encrypted): cost per token written (persisted - not)"].met is False
    assert rows["persistence (encrypted): cached read overhead (persisted - in memory)"].met is False
    assert rows["persistence (encrypted): cost per token written (persisted - not)"].azure_text == "n/a"


def test_change_document_adds_one_token_as_another_process_would(tmp_path: Path) -> None:
    path = tmp_path / "c.nocae"
    entry = {
        "credential_type": "AccessToken",
        "secret": "s",
        "home_account_id": "",
        "environment": "login.example",
        "client_id": "c",
        "realm": "t",
        "target": workloads.persistence_scope(0),
        "expires_on": str(int(time.time()) + 3600),
    }
    path.write_text(json.dumps({"AccessToken": {"k": entry}}))
    scope = workloads._change_document(str(path), 7)
    assert scope == "https://other7.example/.default"
    tokens = json.loads(path.read_text())["AccessToken"]
    assert len(tokens) == 2
    assert tokens[f"-login.example-accesstoken-c-t-{scope}"]["target"] == scope
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.nocae"]


def test_encrypted_workload_is_skipped_without_a_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    import cache.encrypted

    monkeypatch.setattr(cache.encrypted, "keyring_problem", lambda: "no Secret Service")
    problems = runner._encrypted_cache_problems(["identity", "azure.identity"])
    assert problems == {
        "identity": "no usable OS keyring: no Secret Service",
        "azure.identity": "no usable OS keyring: no Secret Service",
    }
    monkeypatch.setattr(cache.encrypted, "keyring_problem", lambda: None)
    problems = runner._encrypted_cache_problems(["identity", "azure.identity"])
    assert "identity" not in problems
    assert ("azure.identity" in problems) == (importlib.util.find_spec("gi") is None)
