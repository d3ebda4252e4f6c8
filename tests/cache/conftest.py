"""Keyring fixtures for the cache tests.

Every test starts with *no* usable keyring (keyring's fail backend), so nothing here depends on, or
writes to, the keyring of the machine running the tests. Tests opt in to :func:`memory_keyring` (a
dict), or to :func:`secret_service`: the real Secret Service of the session (scripts/test.sh starts
gnome-keyring in a private D-Bus session). Without one, tests needing it are skipped, unless
``ENTRA_IDENTITY_REQUIRE_KEYRING=1`` (CI), which makes them fail.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import keyring
import keyring.backends.fail
import pytest

from cache.encrypted import delete_keyring_key, keyring_problem
from tests.cache.keyrings import MemoryKeyring

REQUIRE_VARIABLE = "ENTRA_IDENTITY_REQUIRE_KEYRING"


@pytest.fixture(autouse=True)
def _no_keyring_by_default() -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def memory_keyring() -> MemoryKeyring:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    return backend


def secret_service_problem() -> str | None:
    """Why the session has no usable Secret Service, or ``None``."""
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return "no D-Bus session bus (run the tests through scripts/test.sh)"
    try:
        from keyring.backends import SecretService

        backend = SecretService.Keyring()
    except Exception as exc:  # keyring without SecretStorage
        return f"keyring's Secret Service backend cannot load: {exc}"
    keyring.set_keyring(backend)
    return keyring_problem()


@pytest.fixture
def secret_service() -> Iterator[str]:
    """The real Secret Service as the keyring; yields a fresh cache name whose key is deleted after."""
    problem = secret_service_problem()
    if problem is not None:
        if os.environ.get(REQUIRE_VARIABLE) == "1":
            pytest.fail(f"{REQUIRE_VARIABLE}=1 but no usable Secret Service: {problem}")
        pytest.skip(f"no usable Secret Service: {problem} (scripts/test.sh starts one)")
    name = f"entra-identity-test-{secrets.token_hex(4)}"
    yield name
    delete_keyring_key(name)


@pytest.fixture
def canary() -> str:
    """A recognisable token value that must never appear in logs, errors or ciphertext."""
    return f"CANARY-TOKEN-{secrets.token_hex(8)}"
