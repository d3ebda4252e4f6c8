"""``python -m conformance bench``: identity and azure.identity side by side, on loopback only.

The benchmark runs the same workloads against this project's ``identity`` and (when installed)
``azure.identity``, each measurement in a fresh child process, against the mock Entra ID authority
served over HTTPS on 127.0.0.1 by the parent, and prints one table of medians with the ratio and the
performance targets of issue 4.

Modules: :mod:`~conformance.bench.workloads` (what a child process runs, stdlib-only at import),
:mod:`~conformance.bench.guard` (the loopback-only socket guard every child installs),
:mod:`~conformance.bench.mock` (the parent's mock mount: server-side latency and a request-count
control endpoint), :mod:`~conformance.bench.runner` (spawning children, medians, raw JSON) and
:mod:`~conformance.bench.report` (the table and the targets).

This package imports nothing at import time, so a child's own measurements are not inflated by it.
"""
