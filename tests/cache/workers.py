"""Processes for the cross-process tests: ``python -m tests.cache.workers <command> ...``.

Every command opens the cache in ``--directory`` under ``--name``; ``--plaintext`` allows
unencrypted storage (the keyring is whatever ``PYTHON_KEYRING_BACKEND`` / the session provides).

* ``write --first N --count M``: access tokens ``N .. N+M-1`` (scope ``https://r<i>/.default``),
  one write each; prints ``committed <i>`` after each (for the kill test); with ``--forever`` it
  keeps writing (numbers wrap) until killed.
* ``open``: open the cache; print ``encrypted`` or ``plaintext``, or ``refused: <message>``.
* ``read --first N --count M``: print how many of those access tokens the cache holds.
* ``rotate --secret S``: store the refresh token of the test account with secret ``S``.
* ``hold-msal-lock --seconds T``: hold msal-extensions' own lock on a cache file (prints ``held``).
* ``hold-flock --seconds T``: take a lock file the way portalocker-backed msal-extensions does
  (try exclusive creation, then ``flock``), hold it, release it as it does (prints ``held``).
* ``hold-our-lock --seconds T``: hold our lock (prints ``held``).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
import time
from pathlib import Path

from cache.memory import AccessTokenEntry, CacheKey
from cache.persistent import PersistentTokenCache
from cache.schema import RefreshTokenRecord

ENVIRONMENT = "login.microsoftonline.com"
TENANT = "tenant-stress"
CLIENT_ID = "client-stress"
ACCOUNT = "uid.utid"


def key(i: int, *, cae: bool = False) -> CacheKey:
    return CacheKey.for_access_token(
        environment=ENVIRONMENT,
        tenant=TENANT,
        client_id=CLIENT_ID,
        scopes=[f"https://r{i}/.default"],
        cae=cae,
    )


def token(i: int) -> str:
    return f"CANARY-STRESS-{i}"


def refresh_token(secret: str) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        secret=secret,
        home_account_id=ACCOUNT,
        environment=ENVIRONMENT,
        client_id=CLIENT_ID,
        target="https://r0/.default offline_access",
        last_modification_time=int(time.time()),
    )


def _open(arguments: argparse.Namespace) -> PersistentTokenCache:
    return PersistentTokenCache.open(
        arguments.name,
        allow_unencrypted_storage=arguments.plaintext,
        directory=arguments.directory,
        fsync=not arguments.no_fsync,
        write_behind=arguments.write_behind,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command")
    parser.add_argument("--directory", type=Path)
    parser.add_argument("--name", default="stress")
    parser.add_argument("--plaintext", action="store_true")
    parser.add_argument("--no-fsync", action="store_true")
    parser.add_argument("--write-behind", action="store_true", help="put returns at once; exit flushes")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--forever", action="store_true")
    parser.add_argument("--secret", default="")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--path", type=Path)
    arguments = parser.parse_args()
    expires = int(time.time()) + 3600

    if arguments.command == "write":
        cache = _open(arguments)
        i = 0
        while arguments.forever or i < arguments.count:
            n = arguments.first + i % arguments.count
            value = f"{token(n)}-{i}" if arguments.forever else token(n)  # forever: every put writes
            cache.put(key(n), AccessTokenEntry(value, "Bearer", expires, None))
            print(f"committed {n}", flush=True)
            i += 1
    elif arguments.command == "open":
        try:
            print("encrypted" if _open(arguments).encrypted else "plaintext")
        except ValueError as exc:
            print(f"refused: {exc}")
    elif arguments.command == "read":
        cache = _open(arguments)
        found = sum(
            cache.get(key(n)) is not None for n in range(arguments.first, arguments.first + arguments.count)
        )
        print(found)
    elif arguments.command == "rotate":
        _open(arguments).partition(cae=False).add_records(refresh_token(arguments.secret))
    elif arguments.command == "hold-msal-lock":
        from msal_extensions.filelock import CrossPlatLock

        with CrossPlatLock(str(arguments.path)):
            print("held", flush=True)
            time.sleep(arguments.seconds)
    elif arguments.command == "hold-flock":
        _hold_like_portalocker(arguments.path, arguments.seconds)
    elif arguments.command == "hold-our-lock":
        from cache.files import InterProcessLock

        with InterProcessLock(arguments.path):
            print("held", flush=True)
            time.sleep(arguments.seconds)
    else:
        sys.exit(f"unknown command {arguments.command}")


def _hold_like_portalocker(path: Path, seconds: float) -> None:
    """msal-extensions 1.3.1 ``cache_lock.CrossPlatLock`` with portalocker on POSIX: create the file
    exclusively (polled 5 s; failure tolerated), open it ``a+b``, ``flock(LOCK_EX | LOCK_NB)``
    polled, write ``"<pid> <argv0>"``; on release unlock, close, then remove the file."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(path, "x"):
                break
        except FileExistsError:
            time.sleep(0.25)
    with open(path, "a+b", buffering=0) as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.05)
        handle.truncate(0)
        handle.write(f"{os.getpid()} {sys.argv[0]}".encode())
        print("held", flush=True)
        time.sleep(seconds)
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    os.remove(path)


if __name__ == "__main__":
    main()
