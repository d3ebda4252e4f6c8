"""A real headless Chromium, driven over the Chrome DevTools Protocol (CDP), for browser sign-in tests.

:class:`HeadlessChromium` starts the Debian ``chromium`` binary headless, in a process group and a
``--user-data-dir`` of its own, with ``--remote-debugging-port=0``; the port and the browser's
websocket path are read from the ``DevToolsActivePort`` file Chromium writes there. One websocket to
the browser target carries everything: ``Target.*`` lists, opens and closes tabs, and each tab is
attached once (``flatten``) so ``Runtime.evaluate`` runs in it. Waits poll (every 50 ms) and each has
a timeout whose :class:`ChromiumTimeoutError` names the tab's URL and text.

Network: Chromium only talks to loopback. Host names other than ``localhost`` resolve to nothing
(``--host-resolver-rules``) and every non-loopback request, IP literals included, goes to a proxy
that is a closed loopback port (``--proxy-server``; Chromium never proxies loopback), so it fails
with ``ERR_PROXY_CONNECTION_FAILED`` on this machine. The mock authority's certificate comes from a
throw-away CA, hence ``--ignore-certificate-errors``.

System browser: :meth:`HeadlessChromium.as_system_browser` sets ``BROWSER`` to
:meth:`~HeadlessChromium.browser_command` (``tests/browser/open_url.py`` run by this Python, ``%s``
for the URL) and ``ENTRA_IDENTITY_CHROMIUM_DEVTOOLS_URL``, so ``webbrowser.open(url)`` in the test
process opens ``url`` as a new tab of this browser and returns ``True``.

The pytest fixture :func:`chromium` yields a started browser; it skips when ``chromium`` is not
installed, unless ``ENTRA_IDENTITY_REQUIRE_CHROMIUM`` is set, which turns that into a failure.
:func:`sign_in` walks the mock authority's sign-in and consent pages.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import webbrowser
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
import websocket

from tests.browser.open_url import DEVTOOLS_URL_VARIABLE, OPEN_LOG_VARIABLE

__all__ = [
    "BINARY_VARIABLE",
    "DEVTOOLS_URL_VARIABLE",
    "OPEN_LOG_VARIABLE",
    "REQUIRE_VARIABLE",
    "CdpError",
    "ChromiumError",
    "ChromiumTimeoutError",
    "HeadlessChromium",
    "SignInError",
    "Tab",
    "chromium",
    "find_chromium",
    "require_chromium",
    "sign_in",
]

#: Set (to anything but empty) to make a missing Chromium fail the browser tests instead of skipping them.
REQUIRE_VARIABLE = "ENTRA_IDENTITY_REQUIRE_CHROMIUM"
#: The Chromium binary to use instead of ``chromium`` on ``PATH``.
BINARY_VARIABLE = "ENTRA_IDENTITY_CHROMIUM_BINARY"

OPEN_URL_SCRIPT = Path(__file__).with_name("open_url.py")
DEFAULT_TIMEOUT = 10.0
POLL_INTERVAL = 0.05
_TEXT_LIMIT = 2000

T = TypeVar("T")


class ChromiumError(RuntimeError):
    """Chromium could not be started, or did not do what it was asked."""


class CdpError(ChromiumError):
    """A DevTools command answered with an error."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        super().__init__(f"{method} failed: {error.get('message', error)} ({error.get('code')})")
        self.method = method
        self.error = error


class ChromiumTimeoutError(ChromiumError, TimeoutError):
    """A wait ran out; the message names what was awaited and the tab's URL and text."""


class SignInError(ChromiumError):
    """The sign-in page answered with an error (``#error``) or an error page."""


@dataclass(frozen=True)
class Tab:
    """A page target (a tab) of the browser, as last listed."""

    target_id: str
    url: str
    title: str = ""


def find_chromium() -> str | None:
    """The Chromium binary: ``ENTRA_IDENTITY_CHROMIUM_BINARY``, else ``chromium`` on ``PATH``."""
    configured = os.environ.get(BINARY_VARIABLE)
    if configured:
        return shutil.which(configured)
    return shutil.which("chromium")


def _closed_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _clip(text: str, limit: int = _TEXT_LIMIT) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"


def _process_group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``, read from ``/proc``."""
    members: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'.
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) >= 3 and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


class _Cdp:
    """One DevTools websocket: numbered commands, answers matched by id, the last events kept."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self._socket = websocket.create_connection(
            url,
            timeout=timeout,
            suppress_origin=True,  # Chromium rejects an Origin it was not told to allow
            http_no_proxy=["127.0.0.1", "localhost", "::1"],
            enable_multithread=True,
        )
        self._next_id = 0
        #: The most recent events (``method``, ``params``, ``sessionId``), as read while awaiting answers.
        self.events: deque[dict[str, Any]] = deque(maxlen=2000)

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> dict[str, Any]:
        self._next_id += 1
        command_id = self._next_id
        message: dict[str, Any] = {"id": command_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        self._socket.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChromiumTimeoutError(f"no answer to {method} within {timeout} s")
            self._socket.settimeout(remaining)
            try:
                raw = self._socket.recv()
            except websocket.WebSocketTimeoutException:
                continue
            answer = json.loads(raw)
            if "method" in answer:
                self.events.append(answer)
                continue
            if answer.get("id") != command_id:
                continue  # the late answer to a command that timed out
            if "error" in answer:
                raise CdpError(method, answer["error"])
            result: dict[str, Any] = answer.get("result", {})
            return result

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._socket.close()


class HeadlessChromium:
    """A headless Chromium of its own (process group, profile, DevTools port); a context manager.

    Attributes, once started: :attr:`port` (DevTools), :attr:`devtools_url` (the browser target's
    ``ws://127.0.0.1:<port>/devtools/browser/<id>``), :attr:`user_data_dir`, :attr:`pid`.
    """

    def __init__(
        self,
        binary: str | None = None,
        *,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 20.0,
    ) -> None:
        found = binary or find_chromium()
        if found is None:
            raise ChromiumError(
                "Chromium is not installed: no 'chromium' on PATH (Debian: apt-get install chromium, "
                f"or set {BINARY_VARIABLE})"
            )
        self.binary = found
        self.extra_args = tuple(extra_args)
        self.startup_timeout = startup_timeout
        self.port = 0
        self.devtools_url = ""
        self.pid = 0
        self._workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._cdp: _Cdp | None = None
        self._sessions: dict[str, str] = {}

    # -- paths ----
    @property
    def user_data_dir(self) -> Path:
        return self._require_workdir() / "profile"

    @property
    def log_path(self) -> Path:
        """Chromium's stdout and stderr."""
        return self._require_workdir() / "chromium.log"

    @property
    def open_log_path(self) -> Path:
        """Where the ``BROWSER`` opener records each URL it opened."""
        return self._require_workdir() / "opened.log"

    def _require_workdir(self) -> Path:
        if self._workdir is None:
            raise ChromiumError("Chromium has not been started")
        return self._workdir

    def arguments(self) -> list[str]:
        """The command line (without the binary) :meth:`start` runs."""
        return [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-domain-reliability",
            "--disable-client-side-phishing-detection",
            "--disable-breakpad",
            "--no-pings",
            "--password-store=basic",
            "--ignore-certificate-errors",
            # Nothing leaves the machine: names other than localhost resolve to nothing, and every
            # request that is not to loopback (IP literals too) goes to a proxy that is a closed
            # loopback port. Loopback is never proxied.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
            f"--proxy-server=http://127.0.0.1:{_closed_loopback_port()}",
            "--proxy-bypass-list=localhost;127.0.0.1;[::1]",
            f"--user-data-dir={self.user_data_dir}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            *self.extra_args,
            "about:blank",
        ]

    # -- life cycle ----
    def start(self) -> HeadlessChromium:
        """Start Chromium and connect to its DevTools websocket."""
        if self._process is not None:
            raise ChromiumError("Chromium is already running")
        self._workdir = Path(tempfile.mkdtemp(prefix="entra-identity-chromium-"))
        self.user_data_dir.mkdir()
        try:
            self._log_file = self.log_path.open("wb")
            self._process = subprocess.Popen(
                [self.binary, *self.arguments()],
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a process group of its own, killed as a whole on close()
                env=self._environment(),
            )
            self.pid = self._process.pid
            self.port, path = self._read_devtools_port()
            self.devtools_url = f"ws://127.0.0.1:{self.port}{path}"
            self._cdp = _Cdp(self.devtools_url, timeout=self.startup_timeout)
        except BaseException:
            self.close()
            raise
        return self

    def _environment(self) -> dict[str, str]:
        """The test process's environment, with a home of the browser's own and no D-Bus session (a
        test's keyring bus would otherwise start an accessibility bus for Chromium, outside its
        process group)."""
        environment = {**os.environ, "HOME": str(self._require_workdir())}
        environment.pop("DBUS_SESSION_BUS_ADDRESS", None)
        return environment

    def _read_devtools_port(self) -> tuple[int, str]:
        active = self.user_data_dir / "DevToolsActivePort"
        deadline = time.monotonic() + self.startup_timeout
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ChromiumError(
                    f"Chromium exited with status {self._process.returncode} before listening; "
                    f"its output:\n{self._log_tail()}"
                )
            with contextlib.suppress(OSError):
                lines = active.read_text().splitlines()
                if len(lines) >= 2 and lines[0].strip().isdigit():
                    return int(lines[0]), lines[1].strip()
            time.sleep(POLL_INTERVAL)
        raise ChromiumTimeoutError(
            f"Chromium wrote no {active} within {self.startup_timeout} s; its output:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, ChromiumError):
            return "(no output)"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def close(self) -> None:
        """Close the browser, kill what is left of its process group, remove its files. Idempotent."""
        cdp, self._cdp = self._cdp, None
        process, self._process = self._process, None
        self._sessions.clear()
        if cdp is not None:
            with contextlib.suppress(Exception):
                cdp.call("Browser.close", timeout=2.0)
            cdp.close()
        if process is not None:
            pgid = process.pid  # start_new_session: the group is the leader's pid
            try:
                process.wait(timeout=3.0)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGTERM)
                try:
                    process.wait(timeout=3.0)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5.0)
            # Renderers, zygotes and utilities outlive a browser killed hard: end the whole group.
            deadline = time.monotonic() + 5.0
            while _process_group_members(pgid) and time.monotonic() < deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                time.sleep(POLL_INTERVAL)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def leftover_processes(self) -> list[int]:
        """Processes still alive in the browser's process group (empty after :meth:`close`)."""
        return _process_group_members(self.pid) if self.pid else []

    def __enter__(self) -> HeadlessChromium:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- DevTools ----
    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        tab: Tab | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> dict[str, Any]:
        """Send a DevTools command to the browser, or to ``tab`` (attached on first use)."""
        if self._cdp is None:
            raise ChromiumError("Chromium is not running")
        session_id = self._session(tab) if tab is not None else None
        return self._cdp.call(method, params, session_id=session_id, timeout=timeout)

    def events(self, tab: Tab, method: str) -> list[dict[str, Any]]:
        """The ``params`` of the recent events ``method`` of ``tab`` (its domain must be enabled)."""
        if self._cdp is None:
            return []
        session_id = self._sessions.get(tab.target_id)
        return [
            event.get("params", {})
            for event in list(self._cdp.events)
            if event.get("method") == method and event.get("sessionId") == session_id
        ]

    def _session(self, tab: Tab) -> str:
        session_id = self._sessions.get(tab.target_id)
        if session_id is None:
            result = self.call("Target.attachToTarget", {"targetId": tab.target_id, "flatten": True})
            session_id = str(result["sessionId"])
            self._sessions[tab.target_id] = session_id
        return session_id

    # -- tabs ----
    def tabs(self) -> list[Tab]:
        """Every open tab (page target)."""
        infos = self.call("Target.getTargets")["targetInfos"]
        return [
            Tab(info["targetId"], info.get("url", ""), info.get("title", ""))
            for info in infos
            if info.get("type") == "page"
        ]

    def open_tab(self, url: str = "about:blank") -> Tab:
        """Open ``url`` in a new tab."""
        target_id = str(self.call("Target.createTarget", {"url": url})["targetId"])
        return Tab(target_id, url)

    def close_tab(self, tab: Tab) -> None:
        self.call("Target.closeTarget", {"targetId": tab.target_id})
        self._sessions.pop(tab.target_id, None)

    def url(self, tab: Tab) -> str:
        """The tab's current URL (what the address bar shows)."""
        return str(self.call("Target.getTargetInfo", {"targetId": tab.target_id})["targetInfo"]["url"])

    def navigate(self, tab: Tab, url: str) -> str | None:
        """Load ``url`` in ``tab``; Chromium's error text (``net::ERR_...``) when it could not."""
        result = self.call("Page.navigate", {"url": url}, tab=tab)
        error = result.get("errorText")
        return str(error) if error else None

    def evaluate(self, tab: Tab, expression: str, *, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """The JSON value of JavaScript ``expression`` in the tab (promises are awaited)."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            tab=tab,
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            description = details.get("exception", {}).get("description") or details.get("text")
            raise ChromiumError(f"JavaScript failed in {self.url(tab)}: {description}")
        return result.get("result", {}).get("value")

    def text(self, tab: Tab) -> str:
        """The tab's visible text (``document.body.innerText``)."""
        value = self.evaluate(tab, "document.body ? document.body.innerText : ''")
        return str(value or "")

    def describe(self, tab: Tab) -> str:
        """The tab's URL and text, for error messages (never raises)."""
        try:
            url = self.url(tab)
        except Exception as exc:
            url = f"(URL unknown: {exc})"
        try:
            text = _clip(self.text(tab))
        except Exception as exc:
            text = f"(text unknown: {exc})"
        return f"tab URL: {url}\npage text:\n{text}"

    # -- waits ----
    def poll(self, probe: Callable[[], T | None], timeout: float, what: Callable[[], str]) -> T:
        """Call ``probe`` until it returns something other than ``None``; errors count as not yet."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            try:
                value = probe()
            except (ChromiumError, websocket.WebSocketException) as exc:
                # A page between documents has no execution context for a moment.
                if isinstance(exc, websocket.WebSocketException) or not self.running:
                    raise
                last_error, value = exc, None
            if value is not None:
                return value
            if time.monotonic() >= deadline:
                suffix = f"\nlast error: {last_error}" if last_error is not None else ""
                raise ChromiumTimeoutError(f"timed out after {timeout} s waiting for {what()}{suffix}")
            time.sleep(POLL_INTERVAL)

    def wait_for_tab(self, url_prefix: str, *, timeout: float = DEFAULT_TIMEOUT) -> Tab:
        """The first tab whose URL starts with ``url_prefix``, once there is one."""

        def probe() -> Tab | None:
            return next((tab for tab in self.tabs() if tab.url.startswith(url_prefix)), None)

        def what() -> str:
            described = "\n\n".join(self.describe(tab) for tab in self.tabs()) or "(no tabs)"
            return f"a tab whose URL starts with {url_prefix!r}; the tabs:\n{described}"

        return self.poll(probe, timeout, what)

    def wait_for(
        self, tab: Tab, expression: str, *, timeout: float = DEFAULT_TIMEOUT, description: str = ""
    ) -> Any:
        """The value of ``expression`` once it is truthy (evaluated in the tab's current document)."""

        def probe() -> Any:
            return self.evaluate(tab, expression) or None

        def what() -> str:
            return f"{description or expression}\n{self.describe(tab)}"

        return self.poll(probe, timeout, what)

    def wait_for_url(self, tab: Tab, url_prefix: str, *, timeout: float = DEFAULT_TIMEOUT) -> str:
        """The tab's URL once it starts with ``url_prefix`` and the document there has loaded."""

        def probe() -> str | None:
            url = self.url(tab)
            if not url.startswith(url_prefix):
                return None
            loaded = self.evaluate(tab, "[location.href, document.readyState]")
            if loaded is None or not str(loaded[0]).startswith(url_prefix) or loaded[1] != "complete":
                return None
            return url

        def what() -> str:
            return f"the URL to start with {url_prefix!r}\n{self.describe(tab)}"

        return self.poll(probe, timeout, what)

    def wait_for_page(self, tab: Tab, *names: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """The mock authority page shown (``<body data-page>``) once it is one of ``names``."""
        expression = (
            "document.readyState === 'complete' && document.body "
            f"&& {json.dumps(list(names))}.includes(document.body.dataset.page) && document.body.dataset.page"
        )
        return str(self.wait_for(tab, expression, timeout=timeout, description=f"a page {names}"))

    # -- BROWSER ----
    def browser_command(self) -> str:
        """The ``BROWSER`` command that opens a URL as a new tab of this browser.

        ``webbrowser`` splits ``BROWSER`` at ``os.pathsep`` and, since it holds ``%s``, runs it as a
        ``GenericBrowser`` (``shlex``-split, ``%s`` replaced by the URL, waited for, ``True`` on
        exit 0). It needs :data:`DEVTOOLS_URL_VARIABLE` in the environment: see :meth:`browser_env`.
        """
        command = f"{shlex.quote(sys.executable)} {shlex.quote(str(OPEN_URL_SCRIPT))} %s"
        if os.pathsep in command:
            raise ChromiumError(f"webbrowser would split BROWSER at {os.pathsep!r}: {command!r}")
        return command

    def browser_env(self) -> dict[str, str]:
        """``BROWSER`` and the variables the opener reads."""
        if not self.devtools_url:
            raise ChromiumError("Chromium has not been started")
        return {
            "BROWSER": self.browser_command(),
            DEVTOOLS_URL_VARIABLE: self.devtools_url,
            OPEN_LOG_VARIABLE: str(self.open_log_path),
        }

    @contextlib.contextmanager
    def as_system_browser(self) -> Iterator[HeadlessChromium]:
        """Within the block, ``webbrowser.open(url)`` opens ``url`` in this browser.

        Sets :meth:`browser_env` in ``os.environ`` and makes ``webbrowser`` read ``BROWSER`` again
        (it reads it once per process, on first use); both are undone on exit.
        """
        saved = {name: os.environ.get(name) for name in self.browser_env()}
        os.environ.update(self.browser_env())
        webbrowser._tryorder = None  # type: ignore[attr-defined]  # read BROWSER afresh
        try:
            yield self
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            webbrowser._tryorder = None  # type: ignore[attr-defined]

    def opened_urls(self) -> list[str]:
        """The URLs the ``BROWSER`` opener opened in this browser, in order."""
        try:
            lines = self.open_log_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [line.split(" ", 1)[1] for line in lines if " " in line]


# --------------------------------------------------------------------------- for tests


def sign_in(
    chromium: HeadlessChromium,
    username: str,
    password: str,
    *,
    accept: bool = True,
    url_prefix: str = "https://127.0.0.1:",
    timeout: float = DEFAULT_TIMEOUT,
) -> str:
    """Sign in on the mock authority's pages in the tab that opens at ``url_prefix``; the final URL.

    Waits for the tab, fills ``#username`` and ``#password``, clicks ``#signin``, then (when the
    consent page shows) ``#accept`` or, with ``accept=False``, ``#decline``, and waits until the tab
    has left the authority's origin (the redirect to the app) and that page has loaded.

    Raises:
        SignInError: the sign-in page showed ``#error`` (wrong password, unknown user) or the
            authority answered with an error page.
        ChromiumTimeoutError: a page did not show up in time (the message has the tab's URL and text).
    """
    tab = chromium.wait_for_tab(url_prefix, timeout=timeout)
    page = chromium.wait_for_page(tab, "signin", "error", timeout=timeout)
    if page == "error":
        raise SignInError(f"the authority answered with an error page\n{chromium.describe(tab)}")
    parts = urlsplit(chromium.url(tab))
    origin = f"{parts.scheme}://{parts.netloc}"
    chromium.evaluate(tab, "document.body.dataset.page = 'submitted'")  # so the next wait sees a new page
    chromium.evaluate(
        tab,
        f"document.getElementById('username').value = {json.dumps(username)};"
        f"document.getElementById('password').value = {json.dumps(password)};"
        "document.getElementById('signin').click(); true",
    )

    def left_authority() -> str | None:
        url = chromium.url(tab)
        # While a form POST is under way the target's URL is empty for a moment: not left yet.
        return url if url and not url.startswith(origin + "/") else None

    def next_step() -> str | None:
        if left_authority() is not None:
            return "left"
        shown = chromium.evaluate(
            tab,
            "document.readyState === 'complete' && document.body && document.body.dataset.page",
        )
        return str(shown) if shown in ("signin", "consent", "error") else None

    step = chromium.poll(next_step, timeout, lambda: f"the page after sign-in\n{chromium.describe(tab)}")
    if step in ("signin", "error"):
        raise SignInError(f"signing in as {username!r} failed\n{chromium.describe(tab)}")
    if step == "consent":
        button = "accept" if accept else "decline"
        chromium.evaluate(tab, f"document.getElementById({json.dumps(button)}).click(); true")
        chromium.poll(
            left_authority, timeout, lambda: f"the redirect after {button}\n{chromium.describe(tab)}"
        )
    chromium.poll(left_authority, timeout, lambda: f"the redirect to the app\n{chromium.describe(tab)}")
    chromium.wait_for(
        tab, "document.readyState === 'complete'", timeout=timeout, description="the app's page"
    )
    return chromium.url(tab)


def require_chromium() -> str:
    """The Chromium binary, or skip the test (fail it when ``ENTRA_IDENTITY_REQUIRE_CHROMIUM`` is set)."""
    binary = find_chromium()
    if binary is not None:
        return binary
    message = (
        "Chromium is not installed (no 'chromium' on PATH; Debian: apt-get install chromium, "
        "as scripts/test.sh does)"
    )
    if os.environ.get(REQUIRE_VARIABLE):
        pytest.fail(f"{message}, and {REQUIRE_VARIABLE} is set", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def chromium() -> Iterator[HeadlessChromium]:
    """A started headless Chromium, closed (no processes left) after the test.

    Skips when Chromium is not installed, unless ``ENTRA_IDENTITY_REQUIRE_CHROMIUM`` is set: then the
    test fails, so a CI that installed Chromium cannot silently skip every browser test.
    """
    with HeadlessChromium(require_chromium()) as browser:
        yield browser
    leftovers = browser.leftover_processes()
    assert not leftovers, f"Chromium processes left after close(): {leftovers}"
