"""Keyring backends for tests (never selected by keyring's auto-detection).

* :class:`MemoryKeyring`: a dict, for one process; set it with ``keyring.set_keyring``.
* :class:`FileKeyring`: a JSON file named by ``ENTRA_TEST_KEYRING_FILE``, shared by the processes of
  a stress test (``PYTHON_KEYRING_BACKEND=tests.cache.keyrings.FileKeyring``) when no real Secret
  Service is running. Writes are serialised with ``flock``.
* :class:`BrokenKeyring`: every call fails the way a Secret Service without a daemon does.
"""

from __future__ import annotations

import fcntl
import json
import os
from typing import Any

from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import InitError, PasswordDeleteError

FILE_VARIABLE = "ENTRA_TEST_KEYRING_FILE"


class _TestBackend(KeyringBackend):
    # keyring's auto-detection considers every subclass whose priority does not raise: test backends
    # are never candidates (tests select them explicitly; FileKeyring through its variable).
    @properties.classproperty
    def priority(cls) -> float:  # pragma: no cover - only keyring calls it
        if cls is FileKeyring and FILE_VARIABLE in os.environ:
            return 1
        raise RuntimeError("test keyring backend: select it explicitly")


class MemoryKeyring(_TestBackend):
    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}
        self.calls: list[str] = []

    def get_password(self, service: str, username: str) -> str | None:
        self.calls.append("get")
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.calls.append("set")
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.calls.append("delete")
        if self.store.pop((service, username), None) is None:
            raise PasswordDeleteError("not found")


class BrokenKeyring(_TestBackend):
    def get_password(self, service: str, username: str) -> str | None:
        raise InitError("Failed to create the collection: Prompt dismissed..")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise InitError("Failed to create the collection: Prompt dismissed..")

    def delete_password(self, service: str, username: str) -> None:
        raise InitError("Failed to create the collection: Prompt dismissed..")


class FileKeyring(_TestBackend):
    def _update(self, change: Any) -> Any:
        path = os.environ[FILE_VARIABLE]
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with os.fdopen(os.dup(fd), "r+") as handle:
                text = handle.read()
                store = json.loads(text) if text else {}
                result = change(store)
                handle.seek(0)
                handle.truncate()
                handle.write(json.dumps(store))
            return result
        finally:
            os.close(fd)

    def get_password(self, service: str, username: str) -> str | None:
        value: str | None = self._update(lambda store: store.get(f"{service}\0{username}"))
        return value

    def set_password(self, service: str, username: str, password: str) -> None:
        self._update(lambda store: store.__setitem__(f"{service}\0{username}", password))

    def delete_password(self, service: str, username: str) -> None:
        if self._update(lambda store: store.pop(f"{service}\0{username}", None)) is None:
            raise PasswordDeleteError("not found")
