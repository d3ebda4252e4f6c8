"""Encryption of cache documents: AES-256-GCM with a random key kept in the OS keyring.

Only the 256-bit key lives in the keyring (service :data:`KEYRING_SERVICE`, user name = the cache
name, value = the key in base64); documents are encrypted into their own files (``<name>.nocae`` +
:data:`ENCRYPTED_SUFFIX`), never at the plaintext file name. The key is created on first use (under
the cache's lock, so two processes starting together agree on one key) and read from the keyring
once per process: afterwards a write costs one AES-GCM pass, no keyring round trip.

File format, version 1::

    offset  size  field
    0       8     magic b"ENTRATC\\x00"
    8       1     format version (1)
    9       12    nonce (random, fresh for every write)
    21      n+16  AES-256-GCM ciphertext of the document, with its 16-byte tag

The associated data is the 9-byte header followed by the document name (``msal.cache.nocae``, ...),
so a file moved to another cache, or between the CAE and non-CAE partitions, or relabelled with
another version, fails authentication. Any failure (wrong key, tampering, truncation, unknown
version) raises :class:`UnreadableDocumentError`, which the cache turns into an empty cache and a
WARNING: never a crash, never plaintext.

A usable keyring is established by a real trial (store, read back and delete a random secret under
a random user name): keyring's ``fail`` and ``null`` backends and an empty chain mean none, and a
Secret Service whose daemon is absent, locked or unable to prompt fails the trial. Calls into the
keyring run on a daemon thread with a bound (:data:`KEYRING_TIMEOUT`), because some backends wait
for an unlock prompt nobody can answer. Without a usable keyring,
:class:`~cache.errors.PersistenceUnavailableError` says what is missing and how to opt in to
plaintext storage.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cache.errors import PersistenceUnavailableError

__all__ = [
    "ENCRYPTED_SUFFIX",
    "FORMAT_VERSION",
    "KEYRING_SERVICE",
    "KEYRING_TIMEOUT",
    "MAGIC",
    "AesGcmCodec",
    "UnreadableDocumentError",
    "delete_keyring_key",
    "keyring_key",
    "keyring_problem",
]

_LOGGER = logging.getLogger("cache")

#: The keyring service under which cache keys are stored (the user name is the cache name).
KEYRING_SERVICE = "entra-identity token cache"
#: Appended to the document name to name its encrypted file.
ENCRYPTED_SUFFIX = ".encrypted"
MAGIC = b"ENTRATC\x00"
FORMAT_VERSION = 1
#: Seconds a keyring call may take before the keyring counts as unusable.
KEYRING_TIMEOUT = 10.0
#: Pauses before the second and third attempt of a keyring call that raised.
KEYRING_RETRY_DELAYS = (0.05, 0.25)

_HEADER = MAGIC + bytes([FORMAT_VERSION])
_NONCE_SIZE = 12
_TAG_SIZE = 16
_KEY_SIZE = 32

T = TypeVar("T")


class UnreadableDocumentError(ValueError):
    """An encrypted file that cannot be decrypted; ``str()`` says why (never any content)."""


class AesGcmCodec:
    """Encrypts and decrypts the documents of one cache with one key.

    Args:
        key: 32 random bytes.
    """

    encrypted = True
    suffix = ENCRYPTED_SUFFIX

    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_SIZE:
            raise ValueError("an AES-256 key is 32 bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "AesGcmCodec(key=<hidden>)"

    def encode(self, document: bytes, name: str) -> bytes:
        """The file content for ``document`` of the document ``name``."""
        nonce = os.urandom(_NONCE_SIZE)
        return _HEADER + nonce + self._aead.encrypt(nonce, document, _HEADER + name.encode())

    def decode(self, data: bytes, name: str) -> bytes:
        """The document in ``data``; an empty ``data`` (no file) is an empty document.

        Raises:
            UnreadableDocumentError: not our format, another version, truncated, or failing
                authentication (wrong key, modified, or another document's file).
        """
        if not data:
            return b""
        if not data.startswith(MAGIC):
            if len(data) < len(MAGIC) and MAGIC.startswith(data):
                raise UnreadableDocumentError("the file is truncated")
            raise UnreadableDocumentError("the file is not an encrypted token cache")
        if len(data) <= len(MAGIC):
            raise UnreadableDocumentError("the file is truncated")
        version = data[len(MAGIC)]
        if version != FORMAT_VERSION:
            raise UnreadableDocumentError(
                f"the file has format version {version}; this version of entra-identity reads version "
                f"{FORMAT_VERSION} (the next write replaces it)"
            )
        if len(data) < len(_HEADER) + _NONCE_SIZE + _TAG_SIZE:
            raise UnreadableDocumentError("the file is truncated")
        nonce = data[len(_HEADER) : len(_HEADER) + _NONCE_SIZE]
        try:
            return self._aead.decrypt(nonce, data[len(_HEADER) + _NONCE_SIZE :], _HEADER + name.encode())
        except InvalidTag:
            raise UnreadableDocumentError(
                "authentication failed: the key in the keyring is not the one it was written with, "
                "or the file was modified, truncated or belongs to another cache"
            ) from None


# --- the keyring ---------------------------------------------------------------------------------

_MEMO_GUARD = threading.Lock()
#: id(backend) -> (backend, problem or None): each backend is tried once per process.
_PROBES: dict[int, tuple[Any, str | None]] = {}
#: (id(backend), cache name) -> (backend, key): each key is read from the keyring once per process.
_KEYS: dict[tuple[int, str], tuple[Any, bytes]] = {}


def _call_once(function: Callable[[], T], what: str) -> tuple[bool, Any]:
    """``(True, result)`` or ``(False, exception)`` of one call on a daemon thread.

    Raises:
        PersistenceUnavailableError: no answer within :data:`KEYRING_TIMEOUT`.
    """
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, function()))
        except BaseException as exc:  # handed to the caller, translated there
            outcome.append((False, exc))

    worker = threading.Thread(target=run, name="entra-identity keyring", daemon=True)
    worker.start()
    worker.join(KEYRING_TIMEOUT)
    if not outcome:
        raise PersistenceUnavailableError(
            f"the keyring did not answer within {KEYRING_TIMEOUT:g} s ({what}); it may be waiting "
            "for an unlock prompt nobody can see"
        )
    return outcome[0]


def _call(function: Callable[[], T], what: str) -> T:
    """Run a keyring call, bounded by :data:`KEYRING_TIMEOUT`; a call that raised is tried again
    after each of :data:`KEYRING_RETRY_DELAYS` (a Secret Service busy with many clients at once
    drops sessions for a moment), one that did not answer is not.

    Raises:
        PersistenceUnavailableError: every attempt raised, or one did not return in time.
    """
    delays = list(KEYRING_RETRY_DELAYS)
    attempts = 1
    while True:
        succeeded, value = _call_once(function, what)
        if succeeded:
            result: T = value
            return result
        if not delays:
            raise PersistenceUnavailableError(
                f"the keyring failed to {what} ({type(value).__name__}: {value}; {attempts} attempts)"
            ) from value
        delay = delays.pop(0)
        _LOGGER.debug("The keyring failed to %s (%s); again in %g s", what, type(value).__name__, delay)
        time.sleep(delay)
        attempts += 1


def _missing_backend() -> str:
    """What is missing when keyring found no backend, per platform."""
    if sys.platform == "darwin":
        return "keyring cannot use the macOS Keychain"
    if sys.platform == "win32":
        return "keyring cannot use the Windows Credential Locker"
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return (
            "no Secret Service (gnome-keyring, KWallet) is reachable: there is no D-Bus session bus "
            "(DBUS_SESSION_BUS_ADDRESS is not set, as in SSH sessions and containers)"
        )
    try:
        from keyring.backends import SecretService

        SecretService.Keyring.priority  # noqa: B018 - raises, saying why the backend is unusable
    except Exception as exc:  # the reason only; the backend stays unusable either way
        return f"no Secret Service (gnome-keyring, KWallet) is usable on the D-Bus session bus: {exc}"
    return (
        "keyring is set to use no backend (keyring.backends.fail.Keyring), although a Secret Service "
        "is running; see PYTHON_KEYRING_BACKEND and keyring's keyringrc.cfg"
    )


def _problem(backend: Any) -> str | None:
    from keyring.backends import chainer, fail, null

    if isinstance(backend, fail.Keyring):
        return _missing_backend()
    if isinstance(backend, null.Keyring):
        return "keyring is disabled (its null backend is selected, e.g. by PYTHON_KEYRING_BACKEND)"
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return _missing_backend()
    user = f"probe-{os.getpid()}-{secrets.token_hex(4)}"
    value = secrets.token_urlsafe(16)

    def trial() -> str | None:
        backend.set_password(KEYRING_SERVICE, user, value)
        try:
            if backend.get_password(KEYRING_SERVICE, user) != value:
                return "the keyring did not return the secret it had just stored"
        finally:
            backend.delete_password(KEYRING_SERVICE, user)
        return None

    try:
        outcome = _call(trial, "store, read and delete a test secret")
    except PersistenceUnavailableError as exc:
        cause = exc.__cause__
        if cause is None:
            return f"the keyring ({type(backend).__name__}) did not answer within {KEYRING_TIMEOUT:g} s"
        return (
            f"the keyring backend {type(backend).__module__}.{type(backend).__name__} failed a trial "
            f"(store, read, delete a test secret): {type(cause).__name__}: {cause}"
        )
    return outcome


def _backend() -> Any:
    import keyring

    return keyring.get_keyring()


def keyring_problem() -> str | None:
    """Why the current keyring backend cannot hold a cache key, or ``None`` if it passed the trial.

    The trial runs once per backend per process.
    """
    backend = _backend()
    with _MEMO_GUARD:
        known = _PROBES.get(id(backend))
    if known is not None and known[0] is backend:
        return known[1]
    problem = _problem(backend)
    with _MEMO_GUARD:
        _PROBES[id(backend)] = (backend, problem)
    return problem


def _decode_key(stored: object) -> bytes | None:
    if not isinstance(stored, str):
        return None
    try:
        key = base64.b64decode(stored, validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == _KEY_SIZE else None


def keyring_key(name: str, *, lock: AbstractContextManager[object]) -> bytes:
    """The cache key of ``name``, created in the keyring on first use.

    Args:
        name: the cache name (the keyring user name).
        lock: held while creating a key, so concurrent first uses agree on one key.

    Raises:
        PersistenceUnavailableError: no usable keyring (the message says what is missing and how
            to opt in to plaintext), or it failed to store the key.
    """
    problem = keyring_problem()
    if problem is not None:
        raise PersistenceUnavailableError(problem)
    backend = _backend()
    with _MEMO_GUARD:
        known = _KEYS.get((id(backend), name))
    if known is not None and known[0] is backend:
        return known[1]
    key = _decode_key(_call(lambda: backend.get_password(KEYRING_SERVICE, name), "read the cache key"))
    if key is None:
        with lock:
            stored = _call(lambda: backend.get_password(KEYRING_SERVICE, name), "read the cache key")
            key = _decode_key(stored)
            if key is None:
                if stored is not None:
                    _LOGGER.warning(
                        "The keyring entry %r / %r is not a cache key; replacing it (cache now empty).",
                        KEYRING_SERVICE,
                        name,
                    )
                fresh = base64.b64encode(os.urandom(_KEY_SIZE)).decode()
                _call(lambda: backend.set_password(KEYRING_SERVICE, name, fresh), "store the cache key")
                key = _decode_key(
                    _call(lambda: backend.get_password(KEYRING_SERVICE, name), "read the cache key")
                )
                if key is None:
                    raise PersistenceUnavailableError("the keyring did not keep the cache key")
    with _MEMO_GUARD:
        _KEYS[(id(backend), name)] = (backend, key)
    return key


def delete_keyring_key(name: str) -> None:
    """Delete the key of cache ``name`` from the keyring (its encrypted files become unreadable,
    i.e. empty caches). Missing keys are ignored.

    Raises:
        PersistenceUnavailableError: the keyring failed.
    """
    import contextlib

    from keyring.errors import PasswordDeleteError

    backend = _backend()
    with _MEMO_GUARD:
        _KEYS.pop((id(backend), name), None)

    def delete() -> None:
        with contextlib.suppress(PasswordDeleteError):  # nothing stored
            backend.delete_password(KEYRING_SERVICE, name)

    _call(delete, "delete the cache key")
