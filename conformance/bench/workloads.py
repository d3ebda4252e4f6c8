"""What a benchmark child process runs: one workload against one implementation, one JSON line out.

Run as ``python -m conformance.bench.workloads WORKLOAD IMPLEMENTATION``; the target (mock URL, CA
file, tenant, client, secret, sizes and budgets) comes from the ``CONFORMANCE_BENCH_TARGET``
environment variable as JSON, written by :mod:`conformance.bench.runner`. The child installs the
loopback-only guard (:mod:`conformance.bench.guard`) before it imports a client library, runs the
workload and prints ``{"workload": ..., "implementation": ..., "metrics": {name: number},
"rounds": {name: [number, ...]}}`` as its last stdout line (``rounds``: the timed rounds whose
fastest some metrics are). A failure is a traceback on stderr and a non-zero exit.

Every workload gets a fresh process, so nothing one workload warmed (imports, discovery memos, HTTP
connections, caches) helps another, and each implementation pays its own process-wide costs.

Implementations are ``identity`` and ``azure.identity``; both build a ``ClientSecretCredential``
the same way: ``authority=<mock url>``, ``disable_instance_discovery=True`` (the mock is not a
Microsoft cloud) and ``connection_verify=<CA file>`` (except :func:`known_cloud_sync`, which
constructs them for the public cloud and reroutes their HTTP stacks to the mock). Issue 5's
workloads build ``ManagedIdentityCredential`` (IMDS at the mock's plain-HTTP mount, see
:func:`use_mock_imds`) and ``AzureCliCredential`` (a stand-in ``az``, see :func:`write_stub_az`).

This module imports only the standard library at import time. The fresh-process measurements
(import time, import + first token, peak RSS) do not run it at all: they run the minimal scripts
built by :func:`import_script` and :func:`first_token_script` with ``python -c``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from itertools import repeat
from typing import Any

__all__ = [
    "CLI_CALLS",
    "CONTROL_PATH",
    "ENV_VAR",
    "IMDS_HOST_VARIABLE",
    "IMPLEMENTATIONS",
    "MI_CACHED_CALLS",
    "MODULE_WORKLOADS",
    "PERSISTENCE_CHANGES",
    "PERSISTENCE_TOKENS",
    "SCOPE",
    "STUB_AZ_TOKEN",
    "BenchTarget",
    "check_mock_imds",
    "first_token_script",
    "import_script",
    "main",
    "persistence_scope",
    "use_mock_imds",
    "write_stub_az",
]

#: Environment variable carrying the :class:`BenchTarget` as JSON.
ENV_VAR = "CONFORMANCE_BENCH_TARGET"
#: Path of the mock's request-count control endpoint (served by :mod:`conformance.bench.mock`).
CONTROL_PATH = "/_bench/requests"
#: Implementations a child can load, by the module that holds their credentials.
IMPLEMENTATIONS = ("identity", "azure.identity")
#: The scope of every single-token workload.
SCOPE = "https://vault.azure.net/.default"

Metrics = dict[str, float]

#: Upper bound of calls in one timed loop, whatever the calibration says.
_MAX_CALLS = 5_000_000
#: Lower bound of calls in one timed loop (a timed loop shorter than this is mostly timer noise).
_MIN_CALLS = 1_000
#: How long the calibration may take to find a loop length that lasts 10 ms.
_CALIBRATION_NS = 10_000_000
#: Concurrent callers wait at most this long for their token.
_CALLER_TIMEOUT_S = 60.0

#: Every timed round of this child's workload (µs per call), by metric name: printed next to the
#: metrics (which are their fastest, see :func:`_microseconds_per_call`) so that the raw numbers
#: reach the JSON report.
ROUNDS: dict[str, list[float]] = {}


@dataclass(frozen=True)
class BenchTarget:
    """Where the mock authority is and how big the measurements are (the child's configuration).

    Attributes:
        url: the mock authority's origin (``https://127.0.0.1:PORT``).
        ca_path: PEM of the CA that signed the mock's certificate.
        tenant_id, client_id, secret: the mock's default confidential application.
        time_per_round: seconds one timed loop of cached calls should last.
        rounds: timed loops per measurement in one process; the child reports the fastest.
        lookup_sizes: cache sizes (distinct tokens) at which lookups are timed.
        fill_budget: seconds the lookup workload may spend filling the cache, in all.
        http_url: the mock's plain-HTTP mount (``http://127.0.0.1:PORT``), the IMDS host of the
            managed identity workloads (``AZURE_POD_IDENTITY_AUTHORITY_HOST``); empty when the
            parent serves none, and those workloads then refuse to run.
    """

    url: str
    ca_path: str
    tenant_id: str
    client_id: str
    secret: str
    time_per_round: float = 0.2
    rounds: int = 3
    lookup_sizes: tuple[int, ...] = (1, 100, 1_000, 10_000)
    fill_budget: float = 90.0
    http_url: str = ""

    def to_env(self) -> str:
        """The JSON form passed to children in :data:`ENV_VAR`."""
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> BenchTarget:
        """The target the parent put in :data:`ENV_VAR` (of ``environ``, default ``os.environ``)."""
        data = json.loads((os.environ if environ is None else environ)[ENV_VAR])
        data["lookup_sizes"] = tuple(data["lookup_sizes"])
        return cls(**data)


# -- credentials ----


def _credential_class(implementation: str, mode: str) -> Any:
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"unknown implementation {implementation!r}")
    module = implementation if mode == "sync" else f"{implementation}.aio"
    return importlib.import_module(module).ClientSecretCredential


def _factory(implementation: str, mode: str, target: BenchTarget) -> Callable[[], Any]:
    """A function that builds a fresh ``ClientSecretCredential`` pointed at the mock."""
    cls = _credential_class(implementation, mode)

    def new() -> Any:
        return cls(
            target.tenant_id,
            target.client_id,
            target.secret,
            authority=target.url,
            disable_instance_discovery=True,
            connection_verify=target.ca_path,
        )

    return new


def authority_counts(target: BenchTarget) -> dict[str, int]:
    """Requests the mock authority has recorded, by endpoint and ``total`` (its control endpoint)."""
    import http.client
    import ssl
    from urllib.parse import urlsplit

    origin = urlsplit(target.url)
    context = ssl.create_default_context(cafile=target.ca_path)
    connection = http.client.HTTPSConnection(
        origin.hostname or "127.0.0.1", origin.port, context=context, timeout=10
    )
    try:
        connection.request("GET", CONTROL_PATH)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"control endpoint answered {response.status}")
    finally:
        connection.close()
    counts: dict[str, int] = json.loads(body)
    return counts


def _diff(before: dict[str, int], after: dict[str, int], prefix: str) -> Metrics:
    """``prefix`` -> total new requests, ``prefix.<endpoint>`` -> new requests to each endpoint."""
    metrics: Metrics = {prefix: after.get("total", 0) - before.get("total", 0)}
    for endpoint, count in after.items():
        if endpoint != "total" and count - before.get(endpoint, 0):
            metrics[f"{prefix}.{endpoint}"] = count - before.get(endpoint, 0)
    return metrics


# -- timing ----


def _loop(call: Callable[[str], Any], scope: str, n: int) -> int:
    """Nanoseconds for ``n`` calls of ``call(scope)`` (loop overhead, ~10 ns a call, included)."""
    start = time.perf_counter_ns()
    for _ in repeat(None, n):
        call(scope)
    return time.perf_counter_ns() - start


def _loop_over(call: Callable[[str], Any], scopes: Sequence[str]) -> int:
    """Nanoseconds for one call of ``call(scope)`` per element of ``scopes``."""
    start = time.perf_counter_ns()
    for scope in scopes:
        call(scope)
    return time.perf_counter_ns() - start


async def _aloop(call: Callable[[str], Awaitable[Any]], scope: str, n: int) -> int:
    """:func:`_loop` awaiting each call, inside one coroutine."""
    start = time.perf_counter_ns()
    for _ in repeat(None, n):
        await call(scope)
    return time.perf_counter_ns() - start


def _calls_per_round(per_call_ns: float, target: BenchTarget, floor: int = _MIN_CALLS) -> int:
    wanted = int(target.time_per_round * 1e9 / max(per_call_ns, 1.0))
    return max(floor, min(_MAX_CALLS, wanted))


def _calibrate(timed: Callable[[int], int], target: BenchTarget, floor: int = _MIN_CALLS) -> int:
    """Calls per timed round so that a round lasts about ``time_per_round``.

    ``timed(n)`` makes ``n`` calls and returns the nanoseconds they took. The loop grows tenfold
    until it lasts 10 ms (bounded by the call ceiling), which also warms the path being measured.
    """
    n = 10
    elapsed = timed(n)
    while elapsed < _CALIBRATION_NS and n < _MAX_CALLS:
        n *= 10
        elapsed = timed(n)
    return _calls_per_round(elapsed / n, target, floor)


def _microseconds_per_call(name: str, timed: Callable[[int], int], target: BenchTarget) -> float:
    """µs per call of the fastest of ``target.rounds`` timed rounds (see :func:`_calibrate`).

    The fastest, as ``timeit`` reports it: on a shared machine another tenant's load only ever adds
    time to a round (here often doubling it for a while), so the fastest round is the best estimate
    of the code's own cost; the runner then takes the median over child processes. Every round is
    kept in :data:`ROUNDS` under ``name``.
    """
    n = _calibrate(timed, target)
    ROUNDS[name] = [timed(n) / n / 1000 for _ in range(target.rounds)]
    return min(ROUNDS[name])


async def _amicroseconds_per_call(
    name: str, timed: Callable[[int], Awaitable[int]], target: BenchTarget
) -> float:
    """:func:`_microseconds_per_call` for a coroutine ``timed``."""
    n = 10
    elapsed = await timed(n)
    while elapsed < _CALIBRATION_NS and n < _MAX_CALLS:
        n *= 10
        elapsed = await timed(n)
    n = _calls_per_round(elapsed / n, target)
    ROUNDS[name] = [await timed(n) / n / 1000 for _ in range(target.rounds)]
    return min(ROUNDS[name])


# -- workloads ----


def cached_sync(implementation: str, target: BenchTarget) -> Metrics:
    """µs per cached ``get_token`` and ``get_token_info`` call (sync), after one token request."""
    credential = _factory(implementation, "sync", target)()
    try:
        credential.get_token(SCOPE)
        credential.get_token_info(SCOPE)
        get_token, get_token_info = credential.get_token, credential.get_token_info
        return {
            "get_token_us": _microseconds_per_call(
                "get_token_us", lambda n: _loop(get_token, SCOPE, n), target
            ),
            "get_token_info_us": _microseconds_per_call(
                "get_token_info_us", lambda n: _loop(get_token_info, SCOPE, n), target
            ),
        }
    finally:
        credential.close()


def cached_async(implementation: str, target: BenchTarget) -> Metrics:
    """µs per cached ``await get_token(...)`` and ``get_token_info`` call, in one coroutine."""
    import asyncio

    async def run() -> Metrics:
        credential = _factory(implementation, "async", target)()
        try:
            await credential.get_token(SCOPE)
            await credential.get_token_info(SCOPE)
            get_token, get_token_info = credential.get_token, credential.get_token_info
            return {
                "get_token_us": await _amicroseconds_per_call(
                    "get_token_us", lambda n: _aloop(get_token, SCOPE, n), target
                ),
                "get_token_info_us": await _amicroseconds_per_call(
                    "get_token_info_us", lambda n: _aloop(get_token_info, SCOPE, n), target
                ),
            }
        finally:
            await credential.close()

    return asyncio.run(run())


def lookup(implementation: str, target: BenchTarget) -> Metrics:
    """Cached-lookup cost with each of ``target.lookup_sizes`` distinct tokens cached.

    One credential per size, filled with ``https://res{i}.example/.default`` tokens (one token
    request each, smallest size first). Each is then timed two ways: round robin over every scope
    it cached, and the same call repeatedly for its oldest (first cached) scope. The timed rounds of
    all sizes are interleaved, so that the growth ratio between sizes is not skewed by the machine
    getting busier or quieter over the run; each figure is the fastest of its rounds. Filling stops
    when ``fill_budget`` is spent: the size being filled is timed with the tokens it got
    (``tokens@<size>`` says how many), larger sizes are skipped.
    """
    new = _factory(implementation, "sync", target)
    sizes = sorted(target.lookup_sizes)
    scopes = [f"https://res{i}.example/.default" for i in range(sizes[-1])]
    metrics: Metrics = {}
    credentials: list[Any] = []
    # (size, kind) -> (timed, calls per round); timed(n) returns nanoseconds for n calls.
    loops: dict[tuple[int, str], tuple[Callable[[int], int], int]] = {}
    fill_ns = filled_total = 0
    deadline = time.monotonic() + target.fill_budget
    try:
        for size in sizes:
            credential = new()
            credentials.append(credential)
            get_token = credential.get_token
            filled = 0
            start = time.perf_counter_ns()
            while filled < size and time.monotonic() < deadline:
                get_token(scopes[filled])
                filled += 1
            fill_ns += time.perf_counter_ns() - start
            filled_total += filled
            metrics[f"tokens@{size}"] = filled
            if filled == 0:
                break
            cached = scopes[:filled]

            def round_robin(n: int, cached: list[str] = cached, get_token: Any = get_token) -> int:
                return _loop_over(get_token, (cached * (n // len(cached) + 1))[:n])

            def oldest(n: int, get_token: Any = get_token) -> int:
                return _loop(get_token, scopes[0], n)

            # Round robin touches every cached token at least once per timed round.
            loops[size, "round_robin"] = (
                round_robin,
                _calibrate(round_robin, target, max(_MIN_CALLS, filled)),
            )
            loops[size, "oldest"] = (oldest, _calibrate(oldest, target))
            if filled < size:
                break  # out of fill budget: larger sizes are not measured
        samples: dict[tuple[int, str], list[float]] = {key: [] for key in loops}
        for _ in range(target.rounds):
            for key, (timed, n) in loops.items():
                samples[key].append(timed(n) / n / 1000)
    finally:
        for credential in credentials:
            credential.close()
    for (size, kind), values in samples.items():
        ROUNDS[f"{kind}_us@{size}"] = values
        metrics[f"{kind}_us@{size}"] = min(values)
    metrics["filled"] = filled_total
    metrics["fill_ms_per_token"] = fill_ns / 1e6 / max(filled_total, 1)
    return metrics


def _plain_ms(new: Callable[[], Any], samples: int = 3) -> float:
    """Median wall time, in ms, of the first token on each of ``samples`` fresh credentials."""
    times = []
    for _ in range(samples):
        credential = new()
        try:
            start = time.perf_counter()
            credential.get_token(SCOPE)
            times.append((time.perf_counter() - start) * 1000)
        finally:
            credential.close()
    return statistics.median(times)


def threads_64(implementation: str, target: BenchTarget, callers: int = 64) -> Metrics:
    """64 threads ask one fresh credential for the same token at once (run with latency).

    A throw-away credential first pays the process-wide costs (imports, discovery memo), then the
    plain request is timed on fresh credentials, then the concurrent callers are released together
    by a barrier. ``requests`` counts what reached the authority during the concurrent phase.
    """
    new = _factory(implementation, "sync", target)
    warm = new()
    warm.get_token(SCOPE)
    warm.close()
    plain_ms = _plain_ms(new)
    before = authority_counts(target)
    credential = new()
    barrier = threading.Barrier(callers + 1, timeout=_CALLER_TIMEOUT_S)
    failures: list[str] = []

    def caller() -> None:
        barrier.wait()
        try:
            credential.get_token(SCOPE)
        except Exception as exc:  # reported as a metric, not raised from a thread
            failures.append(repr(exc))

    threads = [threading.Thread(target=caller, daemon=True) for _ in range(callers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    deadline = time.monotonic() + _CALLER_TIMEOUT_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    wall_ms = (time.perf_counter() - start) * 1000
    unfinished = sum(thread.is_alive() for thread in threads)
    after = authority_counts(target)
    credential.close()
    return {
        **_diff(before, after, "requests"),
        "wall_ms": wall_ms,
        "plain_ms": plain_ms,
        "wall_over_plain": wall_ms / plain_ms,
        "failures": len(failures) + unfinished,
    }


def _tasks(implementation: str, target: BenchTarget, callers: int) -> Metrics:
    """``callers`` asyncio tasks ask one fresh async credential for the same token at once.

    Phases as in :func:`threads_64`; the tasks are created and gathered inside the timed span, so
    ``cached_gather_ms`` times the same gather once more with the token cached (the tasks' own
    cost, to read ``wall_ms`` against).
    """
    import asyncio

    new = _factory(implementation, "async", target)

    async def plain_ms(samples: int = 3) -> float:
        times = []
        for _ in range(samples):
            credential = new()
            try:
                start = time.perf_counter()
                await credential.get_token(SCOPE)
                times.append((time.perf_counter() - start) * 1000)
            finally:
                await credential.close()
        return statistics.median(times)

    async def gather(credential: Any) -> tuple[float, list[Any]]:
        """Wall time (ms) of ``callers`` concurrent ``get_token`` tasks, and their results."""
        start = time.perf_counter()
        results = await asyncio.wait_for(
            asyncio.gather(*(credential.get_token(SCOPE) for _ in range(callers)), return_exceptions=True),
            _CALLER_TIMEOUT_S,
        )
        return (time.perf_counter() - start) * 1000, results

    async def run() -> Metrics:
        warm = new()
        try:
            await warm.get_token(SCOPE)
        finally:
            await warm.close()
        plain = await plain_ms()
        before = authority_counts(target)
        credential = new()
        try:
            wall_ms, results = await gather(credential)
            after = authority_counts(target)
            # The same gather again, the token now cached: what the tasks themselves cost.
            cached_ms, _ = await gather(credential)
        finally:
            await credential.close()
        return {
            **_diff(before, after, "requests"),
            "wall_ms": wall_ms,
            "plain_ms": plain,
            "wall_over_plain": wall_ms / plain,
            "cached_gather_ms": cached_ms,
            "failures": sum(isinstance(result, BaseException) for result in results),
        }

    return asyncio.run(run())


def tasks_64(implementation: str, target: BenchTarget) -> Metrics:
    """64 asyncio tasks on one fresh async credential (run with latency)."""
    return _tasks(implementation, target, 64)


def tasks_1000(implementation: str, target: BenchTarget) -> Metrics:
    """1,000 asyncio tasks on one fresh async credential (run with latency)."""
    return _tasks(implementation, target, 1000)


def _first_tokens(new: Callable[[], Any], target: BenchTarget) -> Metrics:
    """Requests at the authority for the first token of two fresh credentials in turn."""
    counts = [authority_counts(target)]
    for _ in range(2):
        credential = new()
        try:
            credential.get_token(SCOPE)
        finally:
            credential.close()
        counts.append(authority_counts(target))
    return {**_diff(counts[0], counts[1], "per_process"), **_diff(counts[1], counts[2], "per_instance")}


def round_trips_sync(implementation: str, target: BenchTarget) -> Metrics:
    """Requests the first token costs: for the process's first credential (``per_process``), then
    for a second one (``per_instance``)."""
    return _first_tokens(_factory(implementation, "sync", target), target)


#: The public cloud's authority host: the known-cloud workload sends its requests (rerouted to the
#: mock) as if to this host.
KNOWN_CLOUD = "login.microsoftonline.com"


def _rerouted_factory(implementation: str, target: BenchTarget) -> Callable[[], Any]:
    """Fresh sync credentials for the public cloud whose requests all go to the mock instead.

    Each credential gets its library's own HTTP stack with one change: the connection goes to the
    mock (``127.0.0.1:PORT``, whose certificate the child trusts) while the ``Host`` header keeps
    ``login.microsoftonline.com``, so the mock answers as that host. No request can reach the real
    host (and the loopback guard would stop one that tried).
    """
    from urllib.parse import urlsplit, urlunsplit

    mock = urlsplit(target.url)
    cls = _credential_class(implementation, "sync")
    if implementation == "identity":
        import ssl

        import httpx

        context = ssl.create_default_context(cafile=target.ca_path)

        class Reroute(httpx.BaseTransport):
            def __init__(self) -> None:
                self._inner = httpx.HTTPTransport(verify=context)

            def handle_request(self, request: httpx.Request) -> httpx.Response:
                # httpx set the Host header from the original URL when it built the request.
                request.url = request.url.copy_with(host=mock.hostname, port=mock.port)
                return self._inner.handle_request(request)

            def close(self) -> None:
                self._inner.close()

        return lambda: cls(target.tenant_id, target.client_id, target.secret, transport=Reroute())

    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from requests.adapters import HTTPAdapter

    class RerouteAdapter(HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            original = urlsplit(request.url)
            request.headers["Host"] = original.netloc
            request.url = urlunsplit(original._replace(netloc=mock.netloc))
            return super().send(request, *args, **kwargs)

    def new() -> Any:
        session = requests.Session()
        session.mount("https://", RerouteAdapter())
        session.mount("http://", RerouteAdapter())
        transport = RequestsTransport(session=session, connection_verify=target.ca_path)
        return cls(target.tenant_id, target.client_id, target.secret, transport=transport)

    return new


def known_cloud_sync(implementation: str, target: BenchTarget) -> Metrics:
    """:func:`round_trips_sync` for the public cloud (``login.microsoftonline.com``, rerouted to
    the mock), constructed with the libraries' defaults: no ``authority``, instance discovery on."""
    return _first_tokens(_rerouted_factory(implementation, target), target)


def round_trips_async(implementation: str, target: BenchTarget) -> Metrics:
    """:func:`round_trips_sync` with the async credentials."""
    import asyncio

    new = _factory(implementation, "async", target)

    async def run() -> Metrics:
        counts = [authority_counts(target)]
        for _ in range(2):
            credential = new()
            try:
                await credential.get_token(SCOPE)
            finally:
                await credential.close()
            counts.append(authority_counts(target))
        return {
            **_diff(counts[0], counts[1], "per_process"),
            **_diff(counts[1], counts[2], "per_instance"),
        }

    return asyncio.run(run())


# -- issue 5: managed identity (IMDS) and the Azure CLI ----

#: The variable that moves IMDS off ``169.254.169.254`` (both libraries honour it).
IMDS_HOST_VARIABLE = "AZURE_POD_IDENTITY_AUTHORITY_HOST"
#: Cached calls a managed identity workload makes after its first token before it counts requests.
MI_CACHED_CALLS = 1_000
#: Consecutive ``get_token`` calls of the Azure CLI workload.
CLI_CALLS = 20
#: What the stand-in ``az`` prints as ``accessToken``.
STUB_AZ_TOKEN = "bench-stub-az-access-token"
#: Fresh credentials whose first token is timed after the process's first one.
_FRESH_CREDENTIALS = 3
#: Settings that would make ``ManagedIdentityCredential`` pick another source than IMDS (the runner
#: drops them from children's environments; the managed identity workloads remove them again).
_OTHER_MI_SOURCES = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
)
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def _mock_imds_host(target: BenchTarget) -> str:
    """``target.http_url`` if it is a plain-HTTP loopback origin; ``ValueError`` otherwise."""
    from urllib.parse import urlsplit

    parts = urlsplit(target.http_url)
    if (
        parts.scheme != "http"
        or parts.hostname not in _LOOPBACK_HOSTS
        or parts.port is None
        or parts.path not in ("", "/")
        or parts.query
    ):
        raise ValueError(
            "the managed identity workloads need the mock's plain-HTTP loopback mount "
            f"(http://127.0.0.1:PORT), not {target.http_url!r}"
        )
    return target.http_url.rstrip("/")


def use_mock_imds(target: BenchTarget) -> str:
    """Point IMDS at the mock's plain-HTTP mount, in this process's environment, and return it.

    Called before a managed identity credential is constructed (each one is checked again by
    :func:`check_mock_imds`): with ``AZURE_POD_IDENTITY_AUTHORITY_HOST`` set, both libraries send
    IMDS's request to that host instead of ``169.254.169.254`` (which the loopback guard would
    refuse anyway) and skip their probe. Variables that select other sources are removed.
    """
    host = _mock_imds_host(target)
    for name in _OTHER_MI_SOURCES:
        os.environ.pop(name, None)
    os.environ[IMDS_HOST_VARIABLE] = host
    return host


def check_mock_imds(target: BenchTarget) -> None:
    """Raise ``AssertionError`` unless IMDS is the mock's loopback mount in this process (checked
    before every managed identity credential is built: never ``169.254.169.254``)."""
    host = _mock_imds_host(target)
    if os.environ.get(IMDS_HOST_VARIABLE) != host:
        raise AssertionError(f"{IMDS_HOST_VARIABLE} must be {host!r} before a credential is constructed")
    if any(name in os.environ for name in _OTHER_MI_SOURCES):
        raise AssertionError("another managed identity source is configured in the environment")


def _managed_identity_factory(implementation: str, mode: str, target: BenchTarget) -> Callable[[], Any]:
    """Fresh ``ManagedIdentityCredential`` (system-assigned, IMDS at the mock), checked each time."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"unknown implementation {implementation!r}")
    check_mock_imds(target)
    module = implementation if mode == "sync" else f"{implementation}.aio"
    cls = importlib.import_module(module).ManagedIdentityCredential

    def new() -> Any:
        check_mock_imds(target)
        return cls()

    return new


def managed_identity_sync(implementation: str, target: BenchTarget) -> Metrics:
    """IMDS through ``ManagedIdentityCredential`` at the mock's plain-HTTP mount (sync).

    ``first_token_ms``: import + construct + first token, the process's first credential (nothing
    of the library was imported before; ``identity`` imports lazily, at construction).
    ``requests`` (``requests.<endpoint>``): what reached the mock for that first token and
    :data:`MI_CACHED_CALLS` cached calls (the runner resets the mock's counts before each child).
    ``get_token_us``: µs per cached call (see :func:`_microseconds_per_call`).
    ``fresh_first_token_ms``: median construct + first token of three fresh credentials afterwards
    (the process's costs paid; one request each).
    """
    use_mock_imds(target)
    start = time.perf_counter()
    new = _managed_identity_factory(implementation, "sync", target)
    credential = new()
    try:
        credential.get_token(SCOPE)
        first_ms = (time.perf_counter() - start) * 1000
        get_token = credential.get_token
        _loop(get_token, SCOPE, MI_CACHED_CALLS)
        counts = authority_counts(target)
        cached_us = _microseconds_per_call("get_token_us", lambda n: _loop(get_token, SCOPE, n), target)
    finally:
        credential.close()
    fresh_ms = _plain_ms(new, _FRESH_CREDENTIALS)
    return {
        "first_token_ms": first_ms,
        **_diff({}, counts, "requests"),
        "get_token_us": cached_us,
        "fresh_first_token_ms": fresh_ms,
    }


def managed_identity_async(implementation: str, target: BenchTarget) -> Metrics:
    """:func:`managed_identity_sync` with the ``.aio`` credential, in one event loop (the clock
    starts inside it, before ``<implementation>.aio`` is imported)."""
    import asyncio

    use_mock_imds(target)

    async def run() -> Metrics:
        start = time.perf_counter()
        new = _managed_identity_factory(implementation, "async", target)
        credential = new()
        try:
            await credential.get_token(SCOPE)
            first_ms = (time.perf_counter() - start) * 1000
            get_token = credential.get_token
            await _aloop(get_token, SCOPE, MI_CACHED_CALLS)
            counts = authority_counts(target)
            cached_us = await _amicroseconds_per_call(
                "get_token_us", lambda n: _aloop(get_token, SCOPE, n), target
            )
        finally:
            await credential.close()
        times = []
        for _ in range(_FRESH_CREDENTIALS):
            fresh = new()
            try:
                begin = time.perf_counter()
                await fresh.get_token(SCOPE)
                times.append((time.perf_counter() - begin) * 1000)
            finally:
                await fresh.close()
        return {
            "first_token_ms": first_ms,
            **_diff({}, counts, "requests"),
            "get_token_us": cached_us,
            "fresh_first_token_ms": statistics.median(times),
        }

    return asyncio.run(run())


_STUB_AZ = """\
#!{python} -SE
import sys
with open({runs!r}, "a") as runs:
    runs.write(" ".join(sys.argv[1:]) + "\\n")
sys.stdout.write({output!r})
"""


def write_stub_az(directory: str, expires_on: int, tenant_id: str) -> tuple[str, str]:
    """A stand-in ``az`` in ``directory`` (created): ``(its path, its runs file)``.

    A Python script run as ``python -S -E`` (no ``site``, no ``PYTHON*`` variables: about as cheap
    as a Python process gets) that appends its arguments to the runs file, one line a run, and
    prints what ``az account get-access-token --output json`` prints: ``accessToken``
    (:data:`STUB_AZ_TOKEN`), ``expiresOn`` (local time), ``expires_on`` (the argument, epoch
    seconds), ``tokenType``, ``subscription`` and ``tenant`` (``tenant_id``). POSIX only (a shebang).
    """
    import stat
    from datetime import datetime

    if any(character.isspace() for character in sys.executable):
        raise RuntimeError(f"the stub's shebang cannot hold {sys.executable!r}")
    os.makedirs(directory, exist_ok=True)
    output = json.dumps(
        {
            "accessToken": STUB_AZ_TOKEN,
            "expiresOn": datetime.fromtimestamp(expires_on).strftime("%Y-%m-%d %H:%M:%S.%f"),
            "expires_on": expires_on,
            "tokenType": "Bearer",
            "subscription": "00000000-0000-0000-0000-00000000be11",
            "tenant": tenant_id,
        },
        indent=2,
    )
    runs = os.path.join(directory, "az.runs")
    path = os.path.join(directory, "az")
    with open(path, "w") as script:
        script.write(_STUB_AZ.format(python=sys.executable, runs=runs, output=output + "\n"))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path, runs


def _runs_of(runs_file: str) -> list[str]:
    if not os.path.exists(runs_file):
        return []
    with open(runs_file) as runs:
        return runs.read().splitlines()


def azure_cli(implementation: str, target: BenchTarget) -> Metrics:
    """:data:`CLI_CALLS` consecutive ``get_token`` calls on one ``AzureCliCredential``, stub ``az``.

    The stub (:func:`write_stub_az`) goes first on ``PATH`` and ``AZURE_CONFIG_DIR`` is an empty
    temporary directory. The library is imported and the credential constructed before the clock
    starts. ``calls_ms``: the calls together; ``first_call_ms``: the first of them; ``az_runs``: how
    often the stub ran for them; ``stub_run_ms``: the fastest of five runs of the stub by itself
    (``subprocess.run`` with piped output and a timeout, as the credentials run it), what one run of
    ``az`` costs here at least.
    """
    import subprocess
    import tempfile

    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"unknown implementation {implementation!r}")
    cls = importlib.import_module(implementation).AzureCliCredential
    with tempfile.TemporaryDirectory(prefix="bench-az-") as directory:
        tools, config = os.path.join(directory, "bin"), os.path.join(directory, "config")
        os.makedirs(config)
        stub, runs_file = write_stub_az(tools, int(time.time()) + 3600, target.tenant_id)
        os.environ["PATH"] = tools + os.pathsep + os.environ.get("PATH", "")
        os.environ["AZURE_CONFIG_DIR"] = config
        credential = cls()
        times = []
        try:
            for _ in range(CLI_CALLS):
                begin = time.perf_counter()
                token = credential.get_token(SCOPE)
                times.append((time.perf_counter() - begin) * 1000)
                if token.token != STUB_AZ_TOKEN:
                    raise AssertionError("the token is not the stub's")
        finally:
            credential.close()
        runs = _runs_of(runs_file)
        if not all(run.startswith("account get-access-token") for run in runs):
            raise AssertionError(f"unexpected az invocations: {runs!r}")
        spawns = []
        for _ in range(5):
            begin = time.perf_counter()
            # As the credentials run it: output piped, stdin /dev/null, a timeout.
            subprocess.run([stub], capture_output=True, stdin=subprocess.DEVNULL, check=True, timeout=30)
            spawns.append((time.perf_counter() - begin) * 1000)
    return {
        "calls_ms": sum(times),
        "first_call_ms": times[0],
        "az_runs": len(runs),
        "stub_run_ms": min(spawns),
    }


# -- the persistent token cache ----

#: Distinct tokens the persistence workload acquires per credential (written to the file one by one).
PERSISTENCE_TOKENS = 100
#: Tokens per timed batch of the write phase (batches alternate between the two credentials).
_PERSISTENCE_BATCH = 10
#: Times the persistence workload changes the file behind a credential's back and times a read.
PERSISTENCE_CHANGES = 20


def persistence_scope(index: int) -> str:
    """The ``index``-th distinct scope the persistence workload acquires."""
    return f"https://res{index}.example/.default"


def _persistent_factory(
    implementation: str, target: BenchTarget, name: str, allow: bool
) -> Callable[[], Any]:
    """:func:`_factory`'s credential with ``cache_persistence_options`` (``name``, ``allow``)."""
    module = importlib.import_module(implementation)
    options = module.TokenCachePersistenceOptions(name=name, allow_unencrypted_storage=allow)

    def new() -> Any:
        return module.ClientSecretCredential(
            target.tenant_id,
            target.client_id,
            target.secret,
            authority=target.url,
            disable_instance_discovery=True,
            connection_verify=target.ca_path,
            cache_persistence_options=options,
        )

    return new


def _batch_ms(get_token: Callable[[str], Any], scopes: Sequence[str]) -> float:
    """ms per token of acquiring each of ``scopes`` (each a new token: one request each)."""
    return _loop_over(get_token, scopes) / len(scopes) / 1e6


def _bench_tokens_in_file(path: str) -> int:
    """Access tokens of the plaintext document ``path`` whose target is a persistence scope."""
    with open(path, "rb") as document:
        entries = json.loads(document.read()).get("AccessToken", {})
    wanted = {persistence_scope(i) for i in range(PERSISTENCE_TOKENS)}
    return sum(1 for entry in entries.values() if entry.get("target") in wanted)


def _change_document(path: str, number: int) -> str:
    """Rewrite the plaintext document ``path`` as another process would: one more access token (a
    copy of an existing one for scope ``https://other<number>.example/.default``), replaced
    atomically. Returns that scope."""
    with open(path, "rb") as document:
        data = json.loads(document.read())
    tokens = data["AccessToken"]
    entry = dict(next(iter(tokens.values())))
    scope = f"https://other{number}.example/.default"
    entry["target"] = scope
    key = "-".join(
        [
            entry.get("home_account_id") or "",
            entry["environment"],
            "accesstoken",
            entry["client_id"],
            entry["realm"],
            scope,
        ]
    ).lower()
    tokens[key] = entry
    temporary = f"{path}.bench-{os.getpid()}"
    with open(temporary, "wb") as out:
        out.write(json.dumps(data).encode())
    os.replace(temporary, path)
    return scope


def _persistence_mode(implementation: str, target: BenchTarget, home: str, mode: str, allow: bool) -> Metrics:
    """The persistence figures of one storage mode (``plaintext`` or ``encrypted``), unprefixed."""
    name = f"bench-{mode}"
    plain = _factory(implementation, "sync", target)()
    persistent = _persistent_factory(implementation, target, name, allow)()
    scopes = [persistence_scope(i) for i in range(PERSISTENCE_TOKENS)]
    metrics: Metrics = {}
    try:
        # Each pays discovery and, with persistence, creates its file, before the clock.
        plain.get_token(SCOPE)
        persistent.get_token(SCOPE)
        without: list[float] = []
        with_persistence: list[float] = []
        cost: list[float] = []
        requests = 0
        for start in range(0, PERSISTENCE_TOKENS, _PERSISTENCE_BATCH):
            batch = scopes[start : start + _PERSISTENCE_BATCH]
            first, second = (
                (plain, persistent) if start % (2 * _PERSISTENCE_BATCH) == 0 else (persistent, plain)
            )
            figures = {}
            for credential in (first, second):
                before = authority_counts(target)
                figures[credential is persistent] = _batch_ms(credential.get_token, batch)
                if credential is persistent:
                    requests += authority_counts(target).get("total", 0) - before.get("total", 0)
            without.append(figures[False])
            with_persistence.append(figures[True])
            cost.append(figures[True] - figures[False])
        ROUNDS[f"{mode}.write_ms"] = without
        ROUNDS[f"{mode}.write_persistent_ms"] = with_persistence
        metrics["write_ms"] = statistics.median(without)
        metrics["write_persistent_ms"] = statistics.median(with_persistence)
        metrics["write_cost_ms"] = statistics.median(cost)
        metrics["write_requests"] = requests
        written_at = time.perf_counter()
        if mode == "plaintext":
            path = os.path.join(home, ".IdentityService", f"{name}.nocae")

            def in_file() -> int:
                return _bench_tokens_in_file(path)
        elif implementation == "identity":
            from cache.persistent import PersistentTokenCache
            from cache.schema import AccessTokenRecord

            cache = PersistentTokenCache.open(name, directory=os.path.join(home, ".IdentityService"))
            if not cache.encrypted:
                raise AssertionError("the cache is not encrypted")
            wanted = set(scopes)

            def in_file() -> int:
                records = cache.partition(cae=False).find(AccessTokenRecord)
                return sum(1 for record in records if record.target in wanted)
        else:
            in_file = None
        if in_file is not None:
            # identity writes behind (a writer thread commits moments after get_token returned):
            # wait for the file to hold every token, and report how long that took.
            deadline = written_at + 10.0
            count = in_file()
            while count < PERSISTENCE_TOKENS and time.perf_counter() < deadline:
                time.sleep(0.001)
                count = in_file()
            metrics["tokens_in_file"] = count
            metrics["commit_wait_ms"] = (time.perf_counter() - written_at) * 1000
        # Cached reads, file unchanged: the same scope, in memory and with persistence.
        before = authority_counts(target)
        plain_get, persistent_get = plain.get_token, persistent.get_token
        scope = scopes[0]
        metrics["read_us"] = _microseconds_per_call(
            f"{mode}.read_us", lambda n: _loop(plain_get, scope, n), target
        )
        metrics["read_persistent_us"] = _microseconds_per_call(
            f"{mode}.read_persistent_us", lambda n: _loop(persistent_get, scope, n), target
        )
        metrics["read_overhead_us"] = metrics["read_persistent_us"] - metrics["read_us"]
        metrics["read_requests"] = authority_counts(target).get("total", 0) - before.get("total", 0)
        if mode == "plaintext":
            # Another process rewrote the file (one more token): the next cached read reloads it.
            path = os.path.join(home, ".IdentityService", f"{name}.nocae")
            changed: list[float] = []
            before = authority_counts(target)
            for number in range(PERSISTENCE_CHANGES):
                time.sleep(0.02)  # file times tick coarsely: the change must look newer than our last sync
                foreign = _change_document(path, number)
                begin = time.perf_counter_ns()
                persistent_get(scope)
                changed.append((time.perf_counter_ns() - begin) / 1000)
                if persistent_get(foreign).token is None:  # served from the reloaded file
                    raise AssertionError("no token")
            ROUNDS[f"{mode}.read_changed_us"] = changed
            metrics["read_changed_us"] = statistics.median(changed)
            metrics["changed_requests"] = authority_counts(target).get("total", 0) - before.get("total", 0)
    finally:
        plain.close()
        persistent.close()
    return metrics


def persistence(implementation: str, target: BenchTarget) -> Metrics:
    """The persistent token cache (``cache_persistence_options``), sync, in a private ``HOME``.

    Two ``ClientSecretCredential`` side by side, one without and one with persistence, each after a
    first token (discovery, the file created); then :data:`PERSISTENCE_TOKENS` distinct scopes
    each, in batches of ten that alternate between the two. ``write_ms`` / ``write_persistent_ms``:
    median ms per token of a batch; ``write_cost_ms``: median over batches of the difference, what
    writing a token to the file costs. ``write_requests``: token requests of the persistent one
    (one per token); ``tokens_in_file``: those tokens found in its file afterwards (waiting up to
    10 s for a write-behind writer); ``commit_wait_ms``: how long after the last ``get_token``
    returned the file held them all (0 for a library that writes before returning). ``read_us`` /
    ``read_persistent_us``: µs per cached ``get_token`` of one scope, file unchanged (see
    :func:`_microseconds_per_call`), and ``read_overhead_us`` their difference; ``read_requests``:
    requests during those reads. ``read_changed_us``: median of :data:`PERSISTENCE_CHANGES` reads,
    each right after the file was rewritten behind the credential's back with one more token
    (:func:`_change_document`, as another process would), whose scope is then served from the file
    (``changed_requests`` counts what that cost).

    Storage: plaintext, ``allow_unencrypted_storage=True`` with no OS keyring reachable (the child
    drops ``DBUS_SESSION_BUS_ADDRESS`` first, so a Secret Service in the parent's session does not
    make identity encrypt); azure-identity then uses msal-extensions' ``FilePersistence``. See
    :func:`persistence_encrypted` for the encrypted cache.
    """
    os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
    return _in_private_home(implementation, target, "plaintext")


def persistence_encrypted(implementation: str, target: BenchTarget) -> Metrics:
    """:func:`persistence` with the encrypted cache (``allow_unencrypted_storage=False``: the OS
    keyring must be usable; the runner checks before it schedules this workload), without the
    changed-file reads (an encrypted file cannot be rewritten behind the credential's back)."""
    return _in_private_home(implementation, target, "encrypted")


def _in_private_home(implementation: str, target: BenchTarget, mode: str) -> Metrics:
    import tempfile

    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"unknown implementation {implementation!r}")
    with tempfile.TemporaryDirectory(prefix="bench-home-") as home:
        os.environ["HOME"] = home
        os.environ.pop("LOCALAPPDATA", None)
        metrics = _persistence_mode(implementation, target, home, mode, mode == "plaintext")
    return metrics


#: Workloads run by this module, by name.
MODULE_WORKLOADS: dict[str, Callable[[str, BenchTarget], Metrics]] = {
    "cached_sync": cached_sync,
    "cached_async": cached_async,
    "lookup": lookup,
    "threads_64": threads_64,
    "tasks_64": tasks_64,
    "tasks_1000": tasks_1000,
    "round_trips_sync": round_trips_sync,
    "round_trips_async": round_trips_async,
    "known_cloud_sync": known_cloud_sync,
    "managed_identity_sync": managed_identity_sync,
    "managed_identity_async": managed_identity_async,
    "azure_cli": azure_cli,
    "persistence": persistence,
    "persistence_encrypted": persistence_encrypted,
}


# -- fresh-process scripts (run with ``python -c``, not through this module) ----


def import_script(implementation: str, *, credential_class: bool = False) -> str:
    """Source that only imports ``implementation`` (or its ``ClientSecretCredential``)."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"unknown implementation {implementation!r}")
    if credential_class:
        return f"from {implementation} import ClientSecretCredential"
    return f"import {implementation}"


def first_token_script(implementation: str) -> str:
    """Source of a process that imports, constructs one credential, gets one token and exits.

    It prints ``{"vmhwm_kib": N}``: the process's peak resident set (``VmHWM`` of
    ``/proc/self/status``; ``ru_maxrss`` would start at the parent's size) after that token.
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"unknown implementation {implementation!r}")
    return "\n".join(
        [
            "import json, os",
            "import conformance.bench.guard",
            "conformance.bench.guard.install()",
            f"from {implementation} import ClientSecretCredential",
            f"t = json.loads(os.environ[{ENV_VAR!r}])",
            "credential = ClientSecretCredential(t['tenant_id'], t['client_id'], t['secret'],"
            " authority=t['url'], disable_instance_discovery=True, connection_verify=t['ca_path'])",
            f"credential.get_token({SCOPE!r})",
            "status = open('/proc/self/status').read()",
            "hwm = [line.split()[1] for line in status.splitlines() if line.startswith('VmHWM:')]",
            "print(json.dumps({'vmhwm_kib': int(hwm[0]) if hwm else -1}))",
        ]
    )


# -- entry point ----


def main(argv: list[str] | None = None) -> int:
    """Run one workload and print its metrics as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m conformance.bench.workloads", description=__doc__)
    parser.add_argument("workload", choices=sorted(MODULE_WORKLOADS))
    parser.add_argument("implementation", choices=IMPLEMENTATIONS)
    args = parser.parse_args(argv)
    from conformance.bench import guard

    guard.install()
    target = BenchTarget.from_env()
    try:
        metrics = MODULE_WORKLOADS[args.workload](args.implementation, target)
    except Exception:
        traceback.print_exc()
        return 1
    line = {"workload": args.workload, "implementation": args.implementation, "metrics": metrics}
    print(json.dumps({**line, "rounds": ROUNDS}))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
