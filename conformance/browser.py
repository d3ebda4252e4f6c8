"""A stand-in for the user at a web browser, for tests of browser sign-in against the mock authority.

:class:`MockUserBrowser` signs in at the mock's authorize endpoint (its programmatic hook,
:meth:`MockAuthority.authorize_redirect`, the same checks as the HTML pages) and follows the redirect
to the credential's loopback server from a thread of its own, as a browser would. Register it with
``webbrowser.register(name, None, browser, preferred=True)``, or put it in place of
``webbrowser.open`` (it is callable with ``webbrowser.open``'s arguments).
"""

from __future__ import annotations

import threading
import webbrowser
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:  # pragma: no cover
    from .authority import MockAuthority

__all__ = ["MockUserBrowser"]


class MockUserBrowser(webbrowser.BaseBrowser):
    """The user ``username`` at a browser, signing in at once and accepting consent.

    Attributes:
        opened: the URLs the credential opened, in order.
    """

    def __init__(self, authority: MockAuthority, username: str, password: str) -> None:
        super().__init__("entra-identity-mock-user")
        self._authority = authority
        self._username = username
        self._password = password
        self.opened: list[str] = []
        self._threads: list[threading.Thread] = []

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self.opened.append(url)
        thread = threading.Thread(target=self._browse, args=(url,), daemon=True)
        thread.start()
        self._threads.append(thread)
        return True

    def __call__(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        return self.open(url, new, autoraise)

    def _browse(self, url: str) -> None:
        location = self._authority.authorize_redirect(url, self._username, self._password)
        # "localhost" as a browser reaches it here: the loopback server listens on 127.0.0.1.
        with httpx.Client(timeout=10) as client:
            client.get(location.replace("//localhost:", "//127.0.0.1:"))

    def finish(self, timeout: float = 10.0) -> None:
        """Wait for the sign-ins in progress."""
        for thread in self._threads:
            thread.join(timeout)
