"""The benchmark's parent: serve the mock, run every workload in fresh child processes, keep medians.

:func:`run_bench` starts :class:`~conformance.bench.mock.BenchAuthority` over HTTPS on 127.0.0.1
(and over plain HTTP, the IMDS host of the managed identity workloads) and runs, for each
implementation (``identity``, and ``azure.identity`` when importable):

* the workloads of :mod:`conformance.bench.workloads` (``python -m conformance.bench.workloads``),
  one fresh child each, ``repeat`` times, interleaving implementations (their order alternates
  between repeats) so that both columns of a ratio come from the same minutes of the same machine;
* the fresh-process measurements with ``python -c``: a bare interpreter, ``import <impl>``,
  ``from <impl> import ClientSecretCredential`` and import + construct + first token (whose child
  also reports its peak RSS); each command runs once unmeasured first (bytecode, page cache);
* the round-trip counts once (they are deterministic), and the lookup workload once per
  implementation (filling 10,000 tokens is the expensive part; its child times more rounds
  instead, ``2 * repeat``, at least 5).

Timed loops of cached calls report the fastest of their rounds inside a child (see
:func:`conformance.bench.workloads._microseconds_per_call`); every figure in the table is then the
median over child processes.

Children get the mock's URL and CA through the environment (``SSL_CERT_FILE``,
``REQUESTS_CA_BUNDLE`` and :data:`~conformance.bench.workloads.ENV_VAR`), no proxy and no
``AZURE_*``/``MSAL_*`` variables, a bytecode cache of the run's own (see
:func:`child_environment`), and they install the loopback-only socket guard. The managed identity
children set ``AZURE_POD_IDENTITY_AUTHORITY_HOST`` to the plain-HTTP mount themselves, before they
construct a credential (never ``169.254.169.254``); the Azure CLI child puts a stand-in ``az`` of
its own first on ``PATH``. Every child has a timeout; every loop in a child is bounded in count and
time.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from conformance.authority import DEFAULT_CLIENT_ID, DEFAULT_SECRET, DEFAULT_TENANT
from conformance.bench.mock import BenchAuthority
from conformance.bench.workloads import (
    ENV_VAR,
    IMPLEMENTATIONS,
    BenchTarget,
    Metrics,
    first_token_script,
    import_script,
)

__all__ = [
    "BARE",
    "WORKLOADS",
    "BenchOptions",
    "BenchResult",
    "Workload",
    "run_bench",
]

#: The pseudo-implementation of the bare-interpreter baseline (``python -c pass``).
BARE = "python"
#: Concurrency workloads run with this much server-side latency per authority request.
CONCURRENCY_LATENCY = 0.05

Kind = Literal["module", "import", "import_class", "first_token"]


@dataclass(frozen=True)
class Workload:
    """One measurement as the runner schedules it.

    Attributes:
        name: the key in results (for ``module`` workloads, a name in ``MODULE_WORKLOADS``).
        kind: ``module`` (``python -m conformance.bench.workloads``) or one of the ``python -c``
            fresh-process measurements.
        latency: server-side latency of the mock while the child runs, in seconds.
        once: run one child per implementation instead of ``repeat``.
        asyncio: uses the ``.aio`` credentials (azure.identity's need aiohttp).
        timeout: seconds before the child is killed and the sample recorded as an error.
        warm_up: run one unmeasured child per implementation before the repeats (the
            fresh-process commands always do): a figure that includes importing the library, such
            as a first token, is then not measured while the run's bytecode cache is still empty.
    """

    name: str
    kind: Kind = "module"
    latency: float = 0.0
    once: bool = False
    asyncio: bool = False
    timeout: float = 120.0
    warm_up: bool = False


#: Every workload, in the order they are scheduled within a repeat.
WORKLOADS: tuple[Workload, ...] = (
    Workload("round_trips_sync", once=True),
    Workload("round_trips_async", once=True, asyncio=True),
    Workload("known_cloud_sync", once=True),
    Workload("cached_sync"),
    Workload("cached_async", asyncio=True),
    Workload("threads_64", latency=CONCURRENCY_LATENCY),
    Workload("tasks_64", latency=CONCURRENCY_LATENCY, asyncio=True),
    Workload("tasks_1000", latency=CONCURRENCY_LATENCY, asyncio=True),
    Workload("managed_identity_sync", timeout=60.0, warm_up=True),
    Workload("managed_identity_async", asyncio=True, timeout=60.0, warm_up=True),
    Workload("azure_cli", timeout=60.0, warm_up=True),
    Workload("persistence", timeout=120.0),
    Workload("persistence_encrypted", timeout=120.0),
    Workload("import", kind="import", timeout=60.0),
    Workload("import_class", kind="import_class", timeout=60.0),
    Workload("first_token", kind="first_token", timeout=60.0),
    Workload("lookup", once=True),
)
_FRESH_PROCESS_KINDS = ("import", "import_class", "first_token")


@dataclass(frozen=True)
class BenchOptions:
    """What to run and how big.

    Attributes:
        quick: CI-sized: shorter timed loops (0.05 s), lookups up to 1,000 tokens, 3 repeats by
            default, a 20 s fill budget.
        repeat: child processes per workload and implementation (default 5, or 3 with ``quick``).
        implementations: which of ``identity`` and ``azure.identity`` to run (the missing ones are
            reported as unavailable).
        workloads: names from :data:`WORKLOADS` to run (default all).
        fill_budget: seconds the lookup workload may spend filling its cache (default 90, or 20
            with ``quick``); an implementation that runs out is measured at the size it reached.
        progress: called with one line per finished child (the CLI prints them to stderr).
    """

    quick: bool = False
    repeat: int | None = None
    implementations: tuple[str, ...] = IMPLEMENTATIONS
    workloads: tuple[str, ...] | None = None
    fill_budget: float | None = None
    progress: Callable[[str], None] | None = None

    @property
    def repeats(self) -> int:
        value = self.repeat if self.repeat is not None else (3 if self.quick else 5)
        if not 1 <= value <= 100:
            raise ValueError("repeat must be between 1 and 100")
        return value

    @property
    def lookup_sizes(self) -> tuple[int, ...]:
        return (1, 100, 1_000) if self.quick else (1, 100, 1_000, 10_000)

    @property
    def fill_seconds(self) -> float:
        value = self.fill_budget if self.fill_budget is not None else (20.0 if self.quick else 90.0)
        if not 0 < value <= 3600:
            raise ValueError("fill budget must be between 0 and 3600 seconds")
        return value

    def selected(self) -> list[Workload]:
        if self.workloads is None:
            return list(WORKLOADS)
        known = {workload.name for workload in WORKLOADS}
        unknown = set(self.workloads) - known
        if unknown:
            raise ValueError(f"unknown workloads: {', '.join(sorted(unknown))}")
        return [workload for workload in WORKLOADS if workload.name in self.workloads]

    def describe(self) -> dict[str, Any]:
        """The options as plain data (for the JSON report)."""
        return {
            "quick": self.quick,
            "repeat": self.repeats,
            "implementations": list(self.implementations),
            "workloads": [workload.name for workload in self.selected()],
            "fill_budget_s": self.fill_seconds,
            "lookup_sizes": list(self.lookup_sizes),
        }


@dataclass
class BenchResult:
    """Raw samples of a run and the medians computed from them.

    ``samples[workload][implementation]`` lists one metrics dict per child that succeeded;
    ``rounds[workload][implementation]`` the timed rounds inside each of those children (µs per call,
    by metric; the metric is their fastest); ``errors[workload][implementation]`` the failures
    (stderr tail); ``unavailable`` says why an
    implementation or a workload of it could not run (``"azure.identity"`` or
    ``"tasks_64/azure.identity"``). The bare-interpreter baseline is ``samples["bare"]["python"]``.
    """

    options: dict[str, Any]
    environment: dict[str, Any]
    implementations: list[str]
    samples: dict[str, dict[str, list[Metrics]]] = field(default_factory=dict)
    rounds: dict[str, dict[str, list[dict[str, list[float]]]]] = field(default_factory=dict)
    errors: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    duration_s: float = 0.0

    def add(
        self,
        workload: str,
        implementation: str,
        metrics: Metrics,
        rounds: dict[str, list[float]] | None = None,
    ) -> None:
        self.samples.setdefault(workload, {}).setdefault(implementation, []).append(metrics)
        if rounds:
            self.rounds.setdefault(workload, {}).setdefault(implementation, []).append(rounds)

    def add_error(self, workload: str, implementation: str, message: str) -> None:
        self.errors.setdefault(workload, {}).setdefault(implementation, []).append(message)

    def runs(self, workload: str, implementation: str) -> list[Metrics]:
        return self.samples.get(workload, {}).get(implementation, [])

    def median(self, workload: str, implementation: str, metric: str) -> float | None:
        """Median of ``metric`` over the samples, or ``None`` when it was not measured.

        Derived metrics: ``minus_bare_ms`` (median wall time of a fresh-process workload minus the
        median wall time of a bare interpreter) and ``vmhwm_mib``.
        """
        if metric == "minus_bare_ms":
            wall = self.median(workload, implementation, "wall_ms")
            bare = self.median("bare", BARE, "wall_ms")
            return None if wall is None or bare is None else wall - bare
        if metric == "vmhwm_mib":
            kib = self.median(workload, implementation, "vmhwm_kib")
            return None if kib is None else kib / 1024
        values = [run[metric] for run in self.runs(workload, implementation) if metric in run]
        return statistics.median(values) if values else None

    def medians(self) -> dict[str, dict[str, dict[str, float]]]:
        """Every metric's median, by workload and implementation (derived metrics included)."""
        table: dict[str, dict[str, dict[str, float]]] = {}
        for workload, by_implementation in self.samples.items():
            for implementation, runs in by_implementation.items():
                names = sorted({name for run in runs for name in run})
                if workload in _FRESH_PROCESS_KINDS:
                    names.append("minus_bare_ms")
                if "vmhwm_kib" in names:
                    names.append("vmhwm_mib")
                values = {name: self.median(workload, implementation, name) for name in names}
                table.setdefault(workload, {})[implementation] = {
                    name: value for name, value in values.items() if value is not None
                }
        return table

    def to_json(self) -> dict[str, Any]:
        """Options, environment, raw samples, errors and medians as JSON-compatible data."""
        return {
            "options": self.options,
            "environment": self.environment,
            "implementations": self.implementations,
            "duration_s": self.duration_s,
            "unavailable": self.unavailable,
            "errors": self.errors,
            "samples": self.samples,
            "rounds": self.rounds,
            "medians": self.medians(),
        }


# -- children ----


@dataclass(frozen=True)
class _Child:
    """One child process to run: its command line, environment, and the mock's setup for it."""

    argv: list[str]
    kind: Kind
    env: dict[str, str]
    latency: float
    timeout: float


@dataclass(frozen=True)
class _Outcome:
    metrics: Metrics | None
    error: str | None
    seconds: float
    rounds: dict[str, list[float]] = field(default_factory=dict)


def _project_root() -> Path:
    """The directory holding the ``conformance`` package (children run there to import it)."""
    return Path(__file__).resolve().parents[2]


#: Interpreter settings that would distort a child's figures (or fail it on a library's warning).
_DROPPED_PYTHON_VARIABLES = frozenset(
    {
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONPYCACHEPREFIX",
        "PYTHONDEVMODE",
        "PYTHONTRACEMALLOC",
        "PYTHONPROFILEIMPORTTIME",
        "PYTHONASYNCIODEBUG",
        "PYTHONMALLOC",
        "PYTHONMALLOCSTATS",
        "PYTHONVERBOSE",
        "PYTHONINSPECT",
        "PYTHONWARNINGS",
    }
)


def child_environment(target: BenchTarget, pycache_prefix: str | None = None) -> dict[str, str]:
    """The environment of a child process.

    The parent's, minus proxies, ``AZURE_*``/``MSAL_*``/managed-identity settings and interpreter
    switches that distort measurements, plus the mock's CA (``SSL_CERT_FILE``,
    ``REQUESTS_CA_BUNDLE``), the target (:data:`~conformance.bench.workloads.ENV_VAR`) and, when
    given, ``PYTHONPYCACHEPREFIX``: children then keep bytecode there (every library alike, as after
    ``pip install``) instead of compiling modules that have no ``__pycache__`` at every import,
    which ``PYTHONDONTWRITEBYTECODE`` in the parent's environment would otherwise cause.
    """
    dropped_prefixes = ("AZURE_", "MSAL_", "IDENTITY_", "MSI_", "IMDS_")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().endswith("_PROXY")
        and not name.upper().startswith(dropped_prefixes)
        and name not in _DROPPED_PYTHON_VARIABLES
    }
    env.update(
        {
            "SSL_CERT_FILE": target.ca_path,
            "REQUESTS_CA_BUNDLE": target.ca_path,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            ENV_VAR: target.to_env(),
        }
    )
    if pycache_prefix is not None:
        env["PYTHONPYCACHEPREFIX"] = pycache_prefix
    return env


def _argv(workload: Workload, implementation: str) -> list[str]:
    if workload.kind == "module":
        return [sys.executable, "-m", "conformance.bench.workloads", workload.name, implementation]
    if workload.kind == "import":
        return [sys.executable, "-c", import_script(implementation)]
    if workload.kind == "import_class":
        return [sys.executable, "-c", import_script(implementation, credential_class=True)]
    return [sys.executable, "-c", first_token_script(implementation)]


_BARE_WORKLOAD = Workload("bare", kind="import", timeout=60.0)
_BARE_ARGV = [sys.executable, "-c", "pass"]


def _last_json_line(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                return None
            return value if isinstance(value, dict) else None
    return None


def _run_child(child: _Child, mock: BenchAuthority) -> _Outcome:
    """Run one child with the mock set up for it; its metrics, or why it failed."""
    mock.reset()
    mock.latency = child.latency
    start = time.perf_counter()
    try:
        completed = subprocess.run(
            child.argv,
            env=child.env,
            cwd=_project_root(),
            capture_output=True,
            text=True,
            timeout=child.timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return _Outcome(None, f"timed out after {child.timeout:.0f} s", time.perf_counter() - start)
    finally:
        mock.latency = 0.0
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        tail = "\n".join(completed.stderr.strip().splitlines()[-8:])
        return _Outcome(None, f"exit status {completed.returncode}: {tail}", seconds)
    if child.kind == "module":
        line = _last_json_line(completed.stdout)
        if line is None or not isinstance(line.get("metrics"), dict):
            return _Outcome(None, f"no metrics on stdout: {completed.stdout[-300:]!r}", seconds)
        metrics = {name: float(value) for name, value in line["metrics"].items()}
        rounds = {
            name: [float(value) for value in values] for name, values in (line.get("rounds") or {}).items()
        }
        return _Outcome(metrics, None, seconds, rounds)
    # A fresh-process measurement: the child's whole wall time, as seen from here.
    metrics = {"wall_ms": seconds * 1000}
    if child.kind == "first_token":
        line = _last_json_line(completed.stdout)
        if line is None or "vmhwm_kib" not in line:
            return _Outcome(None, f"no VmHWM on stdout: {completed.stdout[-300:]!r}", seconds)
        metrics["vmhwm_kib"] = float(line["vmhwm_kib"])
        metrics["requests"] = float(mock.request_count())
    return _Outcome(metrics, None, seconds)


def _schedule(
    workloads: list[Workload], implementations: list[str], repeats: int
) -> Iterator[tuple[Workload, str, bool]]:
    """(workload, implementation, measured) in run order: once-workloads except lookup, unmeasured
    warm-ups (of the fresh-process commands and of workloads that ask for one), the repeats
    (implementation order alternating), lookup.
    """
    fresh = [workload for workload in workloads if workload.kind in _FRESH_PROCESS_KINDS]
    warm = [workload for workload in workloads if workload.warm_up and workload.kind == "module"]
    repeated = [workload for workload in workloads if not workload.once]
    for workload in workloads:
        if workload.once and workload.name != "lookup":
            for implementation in implementations:
                yield workload, implementation, True
    if fresh:
        yield _BARE_WORKLOAD, BARE, False
    for workload in [*fresh, *warm]:
        for implementation in implementations:
            yield workload, implementation, False
    for index in range(repeats):
        order = implementations if index % 2 == 0 else implementations[::-1]
        if fresh:
            yield _BARE_WORKLOAD, BARE, True
        for workload in repeated:
            for implementation in order:
                yield workload, implementation, True
    for workload in workloads:
        if workload.name == "lookup":
            for implementation in implementations:
                yield workload, implementation, True


def _environment() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for distribution in (
        "entra-identity",
        "azure-identity",
        "azure-core",
        "msal",
        "httpx",
        "requests",
        "aiohttp",
    ):
        try:
            versions[distribution] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            versions[distribution] = None
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": versions,
        "concurrency_latency_s": CONCURRENCY_LATENCY,
    }


def _availability(implementations: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    available: list[str] = []
    unavailable: dict[str, str] = {}
    for implementation in implementations:
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"unknown implementation {implementation!r}")
        try:
            found = importlib.util.find_spec(implementation) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            available.append(implementation)
        else:
            unavailable[implementation] = f"{implementation} is not installed"
    return available, unavailable


def _encrypted_cache_problems(implementations: list[str]) -> dict[str, str]:
    """Why an implementation's encrypted persistent cache cannot run in the children (they inherit
    this process's D-Bus session), by implementation."""
    problems: dict[str, str] = {}
    try:
        from cache.encrypted import keyring_problem

        keyring = keyring_problem()
    except Exception as exc:  # any failure means no keyring for the children
        keyring = f"the keyring check failed: {exc!r}"
    for implementation in implementations:
        if keyring is not None:
            problems[implementation] = f"no usable OS keyring: {keyring}"
        elif implementation == "azure.identity" and importlib.util.find_spec("gi") is None:
            problems[implementation] = "its encrypted cache on Linux needs libsecret through PyGObject (gi)"
    return problems


def run_bench(options: BenchOptions | None = None) -> BenchResult:
    """Run the selected workloads for the available implementations and collect their samples."""
    options = options or BenchOptions()
    started = time.perf_counter()
    workloads = options.selected()
    implementations, unavailable = _availability(options.implementations)
    result = BenchResult(
        options=options.describe(),
        environment=_environment(),
        implementations=implementations,
        unavailable=unavailable,
    )
    aiohttp_missing = importlib.util.find_spec("aiohttp") is None
    steps = [
        (workload, implementation, measured)
        for workload, implementation, measured in _schedule(workloads, implementations, options.repeats)
        if not (workload.asyncio and implementation == "azure.identity" and aiohttp_missing)
    ]
    if any(workload.name == "persistence_encrypted" for workload in workloads):
        for implementation, reason in _encrypted_cache_problems(implementations).items():
            result.unavailable[f"persistence_encrypted/{implementation}"] = reason
    steps = [
        step
        for step in steps
        if not (
            step[0].name == "persistence_encrypted"
            and f"persistence_encrypted/{step[1]}" in result.unavailable
        )
    ]
    if aiohttp_missing and "azure.identity" in implementations:
        for workload in workloads:
            if workload.asyncio:
                result.unavailable[f"{workload.name}/azure.identity"] = "aiohttp is not installed"
    with BenchAuthority() as mock, tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache:
        target = BenchTarget(
            url=mock.url,
            ca_path=mock.ca_path,
            tenant_id=DEFAULT_TENANT,
            client_id=DEFAULT_CLIENT_ID,
            secret=DEFAULT_SECRET,
            time_per_round=0.05 if options.quick else 0.2,
            rounds=3,
            lookup_sizes=options.lookup_sizes,
            fill_budget=options.fill_seconds,
            http_url=mock.http_url,
        )
        env = child_environment(target, pycache)
        # The lookup child runs once, so it times more rounds instead.
        lookup_env = child_environment(replace(target, rounds=max(5, 2 * options.repeats)), pycache)
        for number, (workload, implementation, measured) in enumerate(steps, start=1):
            lookup = workload.name == "lookup"
            child = _Child(
                argv=_BARE_ARGV if workload is _BARE_WORKLOAD else _argv(workload, implementation),
                kind=workload.kind,
                env=lookup_env if lookup else env,
                latency=workload.latency,
                # Filling the cache dominates the lookup child: the whole budget plus the timed loops.
                timeout=options.fill_seconds + 300 if lookup else workload.timeout,
            )
            outcome = _run_child(child, mock)
            if measured:
                if outcome.metrics is not None:
                    result.add(workload.name, implementation, outcome.metrics, outcome.rounds)
                else:
                    result.add_error(workload.name, implementation, outcome.error or "failed")
            if options.progress is not None:
                status = "ok" if outcome.error is None else f"FAILED ({outcome.error.splitlines()[0]})"
                label = workload.name if measured else f"{workload.name} (warm-up)"
                options.progress(
                    f"[{number}/{len(steps)}] {label} {implementation}: {status}, {outcome.seconds:.2f} s"
                )
    result.duration_s = time.perf_counter() - started
    return result
