"""The ``BROWSER`` command of the test harness: open a URL as a new tab of the running headless Chromium.

``webbrowser.open(url)`` runs ``BROWSER`` (:meth:`tests.browser.chromium.HeadlessChromium.browser_command`
builds it: this file run by the test process's Python, with ``%s`` for the URL) and waits for it; it
returns ``True`` when the command exits 0. This script therefore does its work in the foreground and
exits quickly: it connects to the browser's DevTools websocket named by
``ENTRA_IDENTITY_CHROMIUM_DEVTOOLS_URL`` (loopback only), sends ``Target.createTarget`` and exits 0 once
Chromium answers with the new tab's id. When ``ENTRA_IDENTITY_CHROMIUM_OPEN_LOG`` names a file, the
URL is appended to it (one per line), so a test can check that the tab came through ``BROWSER``.

Self-contained on purpose (standard library and ``websocket-client`` only): it runs as a script,
without the repository on ``sys.path``. Exit codes: 0 opened, 1 failed, 2 misused.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
import time
from urllib.parse import urlsplit

import websocket

DEVTOOLS_URL_VARIABLE = "ENTRA_IDENTITY_CHROMIUM_DEVTOOLS_URL"
OPEN_LOG_VARIABLE = "ENTRA_IDENTITY_CHROMIUM_OPEN_LOG"
TIMEOUT = 10.0


def _loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_tab(devtools_url: str, url: str, *, timeout: float = TIMEOUT) -> str:
    """Open ``url`` in a new tab of the browser at ``devtools_url``; the new target's id."""
    parts = urlsplit(devtools_url)
    if parts.scheme != "ws" or not _loopback(parts.hostname):
        raise ValueError(f"{DEVTOOLS_URL_VARIABLE} must be a ws:// URL on loopback, not {devtools_url!r}")
    deadline = time.monotonic() + timeout
    connection = websocket.create_connection(
        devtools_url,
        timeout=timeout,
        suppress_origin=True,  # Chromium refuses DevTools websockets with an Origin it does not allow
        http_no_proxy=["127.0.0.1", "localhost", "::1"],
    )
    try:
        connection.send(json.dumps({"id": 1, "method": "Target.createTarget", "params": {"url": url}}))
        while time.monotonic() < deadline:
            message = json.loads(connection.recv())
            if message.get("id") != 1:
                continue  # an event
            if "error" in message:
                raise RuntimeError(f"Target.createTarget failed: {message['error']}")
            return str(message["result"]["targetId"])
        raise TimeoutError(f"no answer to Target.createTarget within {timeout} s")
    finally:
        connection.close()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: open_url.py URL", file=sys.stderr)
        return 2
    devtools_url = os.environ.get(DEVTOOLS_URL_VARIABLE, "")
    if not devtools_url:
        print(f"open_url.py: {DEVTOOLS_URL_VARIABLE} is not set", file=sys.stderr)
        return 2
    (url,) = argv
    try:
        target_id = open_tab(devtools_url, url)
    except Exception as exc:
        print(f"open_url.py: could not open {url!r} in Chromium: {exc}", file=sys.stderr)
        return 1
    log = os.environ.get(OPEN_LOG_VARIABLE)
    if log:
        with open(log, "a", encoding="utf-8") as file:
            file.write(f"{target_id} {url}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
