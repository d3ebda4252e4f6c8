"""``python -m conformance demo``: the user sign-in rows (device code, browser, password, auth
code; sync and async): a sign-in, another resource silently with the refresh token, then cached."""

from __future__ import annotations

import contextlib
import io
import re
import webbrowser

import pytest

from conformance.__main__ import main
from conformance.authority import DEFAULT_PASSWORD, DEFAULT_USERNAME

USERS = (
    ("DeviceCodeCredential", "device code", 2),  # the device code request, then one poll
    ("InteractiveBrowserCredential", "browser (auth code + PKCE)", 1),
    ("UsernamePasswordCredential", "password (ROPC)", 1),
    ("AuthorizationCodeCredential", "auth code (web app)", 1),
)


@pytest.fixture(scope="module")
def out() -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["demo"]) == 0
    return buffer.getvalue()


def test_the_demo_browser_is_gone_afterwards(out: str) -> None:
    with pytest.raises(webbrowser.Error):
        webbrowser.get("entra-identity-demo")


@pytest.mark.parametrize(("credential", "flow", "requests"), USERS)
@pytest.mark.parametrize("prefix", ["", "aio."])
def test_user_rows(out: str, credential: str, flow: str, requests: int, prefix: str) -> None:
    rows = [line for line in out.splitlines() if line.split()[:1] == [prefix + credential]]
    assert len(rows) == 3, rows
    sign_in, silent, cached = rows
    assert re.search(
        rf"{re.escape(flow)}, sign-in\s+{requests}\s+token for {re.escape(DEFAULT_USERNAME)}", sign_in
    )
    assert re.search(r"another resource, silently\s+1\s+token for .* via refresh_token", silent), silent
    assert re.search(r"cached\s+0\s+served from cache", cached), cached


def test_no_password_in_the_output(out: str) -> None:
    assert DEFAULT_PASSWORD not in out
