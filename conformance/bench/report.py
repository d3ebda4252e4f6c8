"""The benchmark table: one row per figure, both implementations, their ratio and issue 4's targets.

Every figure is lower-is-better (time, requests, memory). ``azure/identity`` is azure.identity's
median divided by identity's, so a ratio above 1 means identity is ahead; ``better`` names the
implementation with the lower figure. ``target`` states issue 4's target for the row (in its own
terms) and ``met`` whether identity's medians meet it (``n/a`` when a figure it needs is missing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conformance.bench.runner import BARE, BenchResult
from conformance.bench.workloads import CLI_CALLS, MI_CACHED_CALLS, PERSISTENCE_CHANGES, PERSISTENCE_TOKENS

__all__ = ["Row", "build_rows", "format_report", "format_table"]

IDENTITY = "identity"
AZURE = "azure.identity"
NOT_AVAILABLE = "n/a"

#: A target check: (identity's figure, azure.identity's figure) -> met, or None when not decidable.
Check = Callable[[float | None, float | None], bool | None]


@dataclass(frozen=True)
class Row:
    """One line of the table; the numbers are medians (``None`` when not measured)."""

    workload: str
    unit: str
    identity: float | None
    azure: float | None
    identity_text: str
    azure_text: str
    ratio: float | None
    better: str
    target: str
    met: bool | None


# -- target checks ----


def _at_most(limit: float) -> Check:
    return lambda mine, _theirs: None if mine is None else mine <= limit


def _exactly(value: float) -> Check:
    return lambda mine, _theirs: None if mine is None else mine == value


def _fraction_of_azure(fraction: float) -> Check:
    def check(mine: float | None, theirs: float | None) -> bool | None:
        if mine is None or theirs is None:
            return None
        return mine <= fraction * theirs

    return check


def _cached_target(mine: float | None, theirs: float | None) -> bool | None:
    """At most 1 µs a call, and at least 20 times faster than azure.identity."""
    if mine is None:
        return None
    if mine > 1.0:
        return False
    if theirs is None:
        return None
    return theirs >= 20 * mine


# -- formatting ----


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return NOT_AVAILABLE
    if unit in ("requests", "runs", "tokens"):
        return f"{value:.0f}" if value == int(value) else f"{value:.1f}"
    if unit == "x":
        return f"{value:.2f}"
    if unit == "µs/call":
        return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 10 else f"{value:.1f}"
    return f"{value:.1f}"


def _ratio_text(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.0f}x"


def _better(mine: float | None, theirs: float | None) -> str:
    if mine is None or theirs is None:
        return "-"
    if mine == theirs:
        return "="
    return IDENTITY if mine < theirs else AZURE


def _met_text(met: bool | None) -> str:
    return "-" if met is None else "yes" if met else "NO"


class _Rows:
    """Collects rows from a result, reading medians and marking what was not measured."""

    def __init__(self, result: BenchResult) -> None:
        self.result = result
        self.rows: list[Row] = []

    def cell(self, workload: str, implementation: str, metric: str) -> float | None:
        if implementation not in (*self.result.implementations, BARE):
            return None
        return self.result.median(workload, implementation, metric)

    def add(
        self,
        title: str,
        unit: str,
        mine: float | None,
        theirs: float | None,
        *,
        target: str = "",
        check: Check | None = None,
        mine_note: str = "",
        theirs_note: str = "",
        comparable: bool = True,
    ) -> None:
        ratio = theirs / mine if comparable and mine and theirs is not None else None
        met = check(mine, theirs) if check is not None else None
        self.rows.append(
            Row(
                workload=title,
                unit=unit,
                identity=mine,
                azure=theirs,
                identity_text=_number(mine, unit) + mine_note,
                azure_text=_number(theirs, unit) + theirs_note,
                ratio=ratio,
                better=_better(mine, theirs) if comparable else "-",
                target=target,
                met=met,
            )
        )

    def metric(
        self,
        title: str,
        unit: str,
        workload: str,
        metric: str,
        *,
        target: str = "",
        check: Check | None = None,
    ) -> None:
        self.add(
            title,
            unit,
            self.cell(workload, IDENTITY, metric),
            self.cell(workload, AZURE, metric),
            target=target,
            check=check,
        )


def _lookup_rows(rows: _Rows, sizes: list[int]) -> None:
    """Lookup cost at each size; a size an implementation did not reach in its fill budget is
    shown at the size it reached (``@N``) and not compared."""
    reached: dict[str, dict[int, float | None]] = {IDENTITY: {}, AZURE: {}}
    for implementation in (IDENTITY, AZURE):
        for size in sizes:
            reached[implementation][size] = rows.cell("lookup", implementation, f"tokens@{size}")

    def note(implementation: str, size: int) -> str:
        tokens = reached[implementation][size]
        return f" @{tokens:,.0f}" if tokens is not None and tokens < size else ""

    for kind, label in (("round_robin", "round robin"), ("oldest", "oldest token")):
        for size in sizes:
            mine_note, theirs_note = note(IDENTITY, size), note(AZURE, size)
            rows.add(
                f"lookup {size:,}: {label}",
                "µs/call",
                rows.cell("lookup", IDENTITY, f"{kind}_us@{size}"),
                rows.cell("lookup", AZURE, f"{kind}_us@{size}"),
                mine_note=mine_note,
                theirs_note=theirs_note,
                comparable=not (mine_note or theirs_note),
            )
        largest = sizes[-1]
        growth: dict[str, float | None] = {}
        for implementation in (IDENTITY, AZURE):
            top = rows.cell("lookup", implementation, f"{kind}_us@{largest}")
            one = rows.cell("lookup", implementation, f"{kind}_us@1")
            growth[implementation] = top / one if top is not None and one else None
        rows.add(
            f"lookup {largest:,} / lookup 1: {label}",
            "x",
            growth[IDENTITY],
            growth[AZURE],
            target="<= 1.10 (flat)",
            check=_at_most(1.10),
            mine_note=note(IDENTITY, largest),
            theirs_note=note(AZURE, largest),
            comparable=False,
        )


def build_rows(result: BenchResult) -> list[Row]:
    """The table's rows, in the order of issue 4's workload list."""
    rows = _Rows(result)
    for workload, mode in (("cached_sync", "sync"), ("cached_async", "async")):
        rows.metric(
            f"cached get_token ({mode})",
            "µs/call",
            workload,
            "get_token_us",
            target="<= 1 µs and >= 20x faster",
            check=_cached_target,
        )
        rows.metric(f"cached get_token_info ({mode})", "µs/call", workload, "get_token_info_us")
    sizes = [int(size) for size in result.options.get("lookup_sizes", [])]
    if "lookup" in result.samples and sizes:
        _lookup_rows(rows, sizes)
    for workload, label in (
        ("threads_64", "64 threads"),
        ("tasks_64", "64 tasks"),
        ("tasks_1000", "1,000 tasks"),
    ):
        rows.metric(
            f"{label}: requests at authority",
            "requests",
            workload,
            "requests",
            target="= 1",
            check=_exactly(1),
        )
        rows.metric(f"{label}: wall time", "ms", workload, "wall_ms")
        rows.metric(f"{label}: one plain request", "ms", workload, "plain_ms")
        rows.metric(
            f"{label}: wall / plain request",
            "x",
            workload,
            "wall_over_plain",
            target="<= 1.2",
            check=_at_most(1.2),
        )
        if workload != "threads_64":
            rows.metric(f"{label}: same, token cached", "ms", workload, "cached_gather_ms")
    for workload, mode in (("round_trips_sync", "sync"), ("round_trips_async", "async")):
        rows.metric(
            f"first token, process's first credential ({mode})",
            "requests",
            workload,
            "per_process",
            target="<= 2 (metadata once + token)",
            check=_at_most(2),
        )
        rows.metric(
            f"first token, another credential ({mode})",
            "requests",
            workload,
            "per_instance",
            target="= 1 (discovery once per process)",
            check=_exactly(1),
        )
    rows.metric(
        "first token, public cloud, process's first credential (sync)",
        "requests",
        "known_cloud_sync",
        "per_process",
        target="= 1",
        check=_exactly(1),
    )
    rows.metric(
        "first token, public cloud, another credential (sync)",
        "requests",
        "known_cloud_sync",
        "per_instance",
        target="= 1",
        check=_exactly(1),
    )
    rows.add("bare interpreter (python -c pass)", "ms", rows.cell("bare", BARE, "wall_ms"), None)
    rows.metric(
        "import <module> - bare",
        "ms",
        "import",
        "minus_bare_ms",
        target="<= 1/3 of azure",
        check=_fraction_of_azure(1 / 3),
    )
    rows.metric("import ClientSecretCredential - bare", "ms", "import_class", "minus_bare_ms")
    rows.metric(
        "process: import + construct + token - bare",
        "ms",
        "first_token",
        "minus_bare_ms",
        target="<= 0.8x azure",
        check=_fraction_of_azure(0.8),
    )
    rows.metric(
        "peak RSS (VmHWM) after import + token",
        "MiB",
        "first_token",
        "vmhwm_mib",
        target="<= 0.75x azure",
        check=_fraction_of_azure(0.75),
    )
    _issue5_rows(rows)
    _persistence_rows(rows)
    return [row for row in rows.rows if row.identity is not None or row.azure is not None]


def _issue5_rows(rows: _Rows) -> None:
    """Managed identity (IMDS at the mock) and the Azure CLI credential (stub ``az``)."""
    for workload, mode in (("managed_identity_sync", "sync"), ("managed_identity_async", "async")):
        rows.metric(
            f"managed identity (IMDS): cached get_token ({mode})", "µs/call", workload, "get_token_us"
        )
        rows.metric(
            f"managed identity (IMDS): import + construct + first token ({mode})",
            "ms",
            workload,
            "first_token_ms",
        )
        rows.metric(
            f"managed identity (IMDS): first token, fresh credential ({mode})",
            "ms",
            workload,
            "fresh_first_token_ms",
        )
        rows.metric(
            f"managed identity (IMDS): requests, first token + {MI_CACHED_CALLS:,} cached ({mode})",
            "requests",
            workload,
            "requests",
            target="= 1",
            check=_exactly(1),
        )
    rows.metric(f"Azure CLI (stub az): {CLI_CALLS} get_token calls", "ms", "azure_cli", "calls_ms")
    rows.metric("Azure CLI (stub az): first get_token", "ms", "azure_cli", "first_call_ms")
    rows.metric(
        f"Azure CLI (stub az): az runs for {CLI_CALLS} calls",
        "runs",
        "azure_cli",
        "az_runs",
        target="= 1",
        check=_exactly(1),
    )
    rows.add(
        "stub az, one run by itself (python -S -E)",
        "ms",
        rows.cell("azure_cli", IDENTITY, "stub_run_ms"),
        rows.cell("azure_cli", AZURE, "stub_run_ms"),
        comparable=False,
    )


def _persistence_rows(rows: _Rows) -> None:
    """The persistent token cache: plaintext in both libraries, encrypted (identity) when a keyring
    was usable in the children."""
    n = PERSISTENCE_TOKENS
    for workload, mode in (("persistence", "plaintext"), ("persistence_encrypted", "encrypted")):

        def metric(
            title: str,
            unit: str,
            name: str,
            *,
            target: str = "",
            check: Check | None = None,
            comparable: bool = True,
            workload: str = workload,
            mode: str = mode,
        ) -> None:
            rows.add(
                f"persistence ({mode}): {title}",
                unit,
                rows.cell(workload, IDENTITY, name),
                rows.cell(workload, AZURE, name),
                target=target,
                check=check,
                comparable=comparable,
            )

        metric(f"ms per token, {n} distinct tokens, no persistence", "ms", "write_ms")
        metric(f"ms per token, {n} distinct tokens, persisted", "ms", "write_persistent_ms")
        metric(
            "cost per token written (persisted - not)",
            "ms",
            "write_cost_ms",
            target="<= 1 ms",
            check=_at_most(1.0),
        )
        metric(f"requests for {n} tokens", "requests", "write_requests", target=f"= {n}", check=_exactly(n))
        metric(
            f"tokens in the file after {n} written",
            "tokens",
            "tokens_in_file",
            target=f"= {n}",
            check=_exactly(n),
        )
        metric(
            "ms from the last get_token until the file held every token",
            "ms",
            "commit_wait_ms",
            comparable=False,
        )
        metric("cached get_token, in memory only", "µs/call", "read_us")
        metric("cached get_token, persisted, file unchanged", "µs/call", "read_persistent_us")
        metric(
            "cached read overhead (persisted - in memory)",
            "µs/call",
            "read_overhead_us",
            target="<= 2 µs",
            check=_at_most(2.0),
            comparable=False,
        )
        metric("requests for cached reads", "requests", "read_requests", target="= 0", check=_exactly(0))
        metric("cached get_token after another process changed the file", "µs/call", "read_changed_us")
        metric(
            f"requests for {PERSISTENCE_CHANGES} reads of tokens another process added",
            "requests",
            "changed_requests",
            target="= 0",
            check=_exactly(0),
        )


def format_table(rows: list[Row]) -> str:
    """Rows as aligned plain-text columns (the style of ``conformance.demo.format_table``)."""
    headers = ("workload", "unit", IDENTITY, AZURE, "azure/identity", "better", "target", "met")
    cells = [
        (
            row.workload,
            row.unit,
            row.identity_text,
            row.azure_text,
            _ratio_text(row.ratio),
            row.better,
            row.target or "-",
            _met_text(row.met),
        )
        for row in rows
    ]
    widths = [max([len(header), *(len(cell[i]) for cell in cells)]) for i, header in enumerate(headers)]
    line = "  ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True))
    rule = "  ".join("-" * width for width in widths)
    body = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([line, rule, *body])


def format_report(result: BenchResult) -> str:
    """The table with a header (what ran, where, how often) and notes (caveats, failures)."""
    options, environment = result.options, result.environment
    versions = environment.get("versions", {})
    header = [
        f"python {environment.get('python')} on {environment.get('platform')}, "
        f"{environment.get('cpus')} CPUs; identity {versions.get('entra-identity')}, "
        f"azure-identity {versions.get('azure-identity') or 'not installed'} "
        f"(msal {versions.get('msal') or '-'})",
        f"{'quick, ' if options.get('quick') else ''}medians of {options.get('repeat')} child processes "
        f"per figure; {result.duration_s:.0f} s in all",
        "",
    ]
    notes = [
        "",
        "All figures: lower is better. azure/identity > 1 means identity is ahead.",
        "Concurrency: a fresh credential after a warm-up credential paid the process-wide costs; the "
        "mock waits 50 ms server-side before each answer; 'one plain request' is the median of three "
        "fresh credentials' first token in the same child; 'same, token cached' repeats the gather "
        "with the token cached (the tasks' own cost).",
        "Lookups: distinct scopes https://res{i}.example/.default; 'lookup N / lookup 1' compares the "
        "largest size measured with one cached token.",
        "Timed loops (µs/call): the fastest of several ~0.2 s rounds in a child (another tenant's load "
        "only adds time), then the median over children. Round trips and lookups: one child per "
        "implementation (deterministic; filling the cache is the cost), lookups timed in 2 x repeat "
        "rounds, interleaved across sizes.",
        f"Lookups: the cache is filled for at most {options.get('fill_budget_s', 0):.0f} s; "
        "'@N' marks a figure measured with only N tokens cached (fill budget spent).",
        "Authority: the HTTPS mock on 127.0.0.1 as a custom (non-Microsoft) authority with instance "
        "discovery disabled; 'public cloud' rows: default construction for login.microsoftonline.com, "
        "each library's HTTP stack rerouted to the mock (Host header kept).",
    ]
    if "managed_identity_sync" in result.samples or "managed_identity_async" in result.samples:
        notes.append(
            "Managed identity: system-assigned, IMDS at the mock's plain-HTTP mount on 127.0.0.1 "
            "(AZURE_POD_IDENTITY_AUTHORITY_HOST, set in the child before any credential is constructed; "
            "never 169.254.169.254). 'import + construct + first token': the process's first credential, "
            "nothing of the library imported before; 'fresh credential': the median of three more after it."
        )
    if "azure_cli" in result.samples:
        notes.append(
            f"Azure CLI: a stand-in az (a Python script run as python -S -E) first on PATH, an empty "
            f"AZURE_CONFIG_DIR; library imported and credential constructed before the clock. {CLI_CALLS} "
            "calls cost about one process spawn per az run (the 'stub az' row), which dominates; the real "
            "az starts a whole CLI each run, far slower than the stub."
        )
    if "persistence" in result.samples or "persistence_encrypted" in result.samples:
        encrypted = (
            "encrypted: allow_unencrypted_storage=False with the OS keyring"
            if "persistence_encrypted" in result.samples
            else "encrypted: not measured"
        )
        notes.append(
            f"Persistence: ClientSecretCredential with cache_persistence_options in a private HOME "
            f"(~/.IdentityService), next to one without; {PERSISTENCE_TOKENS} distinct scopes each in "
            "batches of 10 alternating between the two, the cost per token written is the median over "
            "batches of the difference. Plaintext: allow_unencrypted_storage=True (azure-identity: "
            f"msal-extensions FilePersistence), no keyring reachable; {encrypted}. 'changed the file': "
            f"the document rewritten (one more token, atomic replace) before each of {PERSISTENCE_CHANGES} "
            "reads, median."
        )
    for name, reason in sorted(result.unavailable.items()):
        notes.append(f"{name}: {reason} ({NOT_AVAILABLE} in the table)")
    for workload, samples in sorted(result.samples.items()):
        for implementation, runs in sorted(samples.items()):
            failed = sum(run.get("failures", 0) > 0 for run in runs)
            if failed:
                notes.append(
                    f"{workload} / {implementation}: callers got an error in {failed} of {len(runs)} runs"
                )
    for workload, errors in sorted(result.errors.items()):
        for implementation, messages in sorted(errors.items()):
            notes.append(
                f"FAILED {workload} / {implementation} ({len(messages)}x): {messages[0].splitlines()[0]}"
            )
    return "\n".join([*header, format_table(build_rows(result)), *notes])
