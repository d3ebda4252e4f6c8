"""The ``bench`` subcommand of ``python -m conformance``: arguments and entry point.

Standard library only at import time (the parser is built for every subcommand); the runner, which
starts the mock authority, is imported when the benchmark actually runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

__all__ = ["add_arguments", "run"]

_WORKLOAD_NAMES = (
    "round_trips_sync",
    "round_trips_async",
    "known_cloud_sync",
    "cached_sync",
    "cached_async",
    "threads_64",
    "tasks_64",
    "tasks_1000",
    "managed_identity_sync",
    "managed_identity_async",
    "azure_cli",
    "persistence",
    "persistence_encrypted",
    "import",
    "import_class",
    "first_token",
    "lookup",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``bench`` options."""
    parser.add_argument(
        "--repeat", type=int, default=None, help="child processes per figure (default 5, or 3 with --quick)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI-sized: shorter timed loops, lookups up to 1,000 tokens, 3 repeats, 20 s fill budget",
    )
    parser.add_argument(
        "--json", type=Path, dest="json_path", help="also write every raw number to this file"
    )
    parser.add_argument(
        "--implementation",
        action="append",
        choices=("identity", "azure.identity"),
        help="run only this implementation (repeatable; default both)",
    )
    parser.add_argument(
        "--workload", action="append", choices=_WORKLOAD_NAMES, help="run only this workload (repeatable)"
    )
    parser.add_argument(
        "--fill-budget",
        type=float,
        default=None,
        help="seconds the lookup workload may spend filling the cache (default 90, or 20 with --quick)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table (progress goes to stderr); 1 if a child failed."""
    from .report import build_rows, format_report
    from .runner import BenchOptions, run_bench

    options = BenchOptions(
        quick=args.quick,
        repeat=args.repeat,
        implementations=tuple(args.implementation or ("identity", "azure.identity")),
        workloads=tuple(args.workload) if args.workload else None,
        fill_budget=args.fill_budget,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    result = run_bench(options)
    print(format_report(result))
    if args.json_path is not None:
        data = result.to_json()
        data["table"] = [asdict(row) for row in build_rows(result)]
        args.json_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        print(f"\nraw numbers: {args.json_path}")
    return 1 if result.errors else 0
