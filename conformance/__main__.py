"""``python -m conformance``: ``demo`` (every credential against the embedded mock authority),
``serve`` (the mock authority in the foreground, with the environment that points clients at it) and
``bench`` (identity and azure.identity side by side against the mock, one table of medians).
"""

from __future__ import annotations

import argparse
import sys
import threading

from .bench.cli import add_arguments as add_bench_arguments


def _serve(port: int) -> int:
    from .authority import DEFAULT_CLIENT_ID, DEFAULT_SECRET, DEFAULT_TENANT, MockAuthority

    authority = MockAuthority.with_defaults()
    with authority.serve(port=port) as server:
        print(f"Mock Entra ID authority listening on {server.url} (Ctrl+C to stop)\n")
        print("# Point a client at it:")
        for name, value in server.client_env().items():
            print(f"export {name}={value}")
        print(f"export AZURE_AUTHORITY_HOST={server.url}")
        print(f"export AZURE_TENANT_ID={DEFAULT_TENANT}")
        print(f"export AZURE_CLIENT_ID={DEFAULT_CLIENT_ID}")
        print(f"export AZURE_CLIENT_SECRET={DEFAULT_SECRET}")
        print(
            "\n# and pass disable_instance_discovery=True to credentials (the host is not a Microsoft cloud)."
        )
        sys.stdout.flush()
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("\nstopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "demo", help="acquire tokens with every credential against the embedded mock authority"
    )
    serve = commands.add_parser("serve", help="run the mock authority over HTTPS on 127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    add_bench_arguments(
        commands.add_parser(
            "bench", help="benchmark identity against azure.identity on the mock authority (loopback only)"
        )
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo()
    if args.command == "bench":
        from .bench.cli import run as run_bench

        return run_bench(args)
    return _serve(args.port)


if __name__ == "__main__":
    sys.exit(main())
