"""Write-behind (what credentials use): ``put`` stores the token in memory and returns; the process's
cache writer thread commits it under the lock, merged, fsynced and renamed, together with whatever
else was stored meanwhile. Deterministic: the tests hold the cache's lock to keep the writer out."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import cache.persistent as persistent_module
from cache.errors import CacheStorageError
from cache.files import InterProcessLock, write_atomic
from cache.memory import AccessTokenEntry, CacheKey
from cache.persistent import _WRITER, PersistentTokenCache

NOW = int(time.time())
ROOT = Path(__file__).resolve().parents[2]


def key(scope: str, *, cae: bool = False) -> CacheKey:
    return CacheKey.for_access_token(
        environment="login.microsoftonline.com",
        tenant="tenant-a",
        client_id="client-a",
        scopes=(scope,),
        cae=cae,
    )


def entry(token: str) -> AccessTokenEntry:
    return AccessTokenEntry(token=token, token_type="Bearer", expires_on=NOW + 3600, refresh_on=None)


def secrets_in(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {e["secret"] for e in json.loads(path.read_bytes()).get("AccessToken", {}).values()}


@pytest.fixture(autouse=True)
def _no_keyring() -> Iterator[None]:
    """Plaintext documents (the tests read them), also when the session has a Secret Service."""
    import keyring
    import keyring.backends.fail

    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[PersistentTokenCache]:
    opened = PersistentTokenCache.open(
        "wb", allow_unencrypted_storage=True, directory=tmp_path, write_behind=True
    )
    yield opened
    assert _WRITER.wait_idle(30), "the cache writer thread did not finish"


def document(tmp_path: Path) -> Path:
    return tmp_path / "wb.nocae"


def test_put_returns_before_the_file_is_written_and_the_writer_commits_it(
    cache: PersistentTokenCache, tmp_path: Path
) -> None:
    lock = InterProcessLock(tmp_path / "wb.nocae.lockfile")
    with lock:  # the writer thread cannot get in
        stored = entry("token-1")
        cache.put(key("s1"), stored)
        assert cache.get(key("s1")) is stored  # this process sees it at once
        assert cache.pending == 1
        assert secrets_in(document(tmp_path)) == set()
    assert _WRITER.wait_idle(30)
    assert cache.pending == 0
    assert secrets_in(document(tmp_path)) == {"token-1"}


def test_tokens_stored_during_a_write_go_to_the_file_in_one_write(
    cache: PersistentTokenCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[int] = []

    def counting(path: Path, data: bytes, *, fsync: bool = True) -> object:
        writes.append(len(data))
        return write_atomic(path, data, fsync=fsync)

    monkeypatch.setattr(persistent_module, "write_atomic", counting)
    with InterProcessLock(tmp_path / "wb.nocae.lockfile"):
        for i in range(10):
            cache.put(key(f"s{i}"), entry(f"token-{i}"))
        assert cache.pending == 10
    assert _WRITER.wait_idle(30)
    assert len(writes) == 1
    assert secrets_in(document(tmp_path)) == {f"token-{i}" for i in range(10)}


def test_pending_tokens_survive_another_process_rewriting_the_file(
    cache: PersistentTokenCache, tmp_path: Path
) -> None:
    cache.put(key("ours-before"), entry("ours-before"))
    cache.flush()
    path = document(tmp_path)
    with InterProcessLock(tmp_path / "wb.nocae.lockfile"):  # we play the other process, holding the lock
        cache.put(key("ours"), entry("ours"))
        foreign = json.loads(path.read_bytes())
        template = dict(next(iter(foreign["AccessToken"].values())))
        template.update(target="theirs", secret="theirs")
        foreign["AccessToken"] = {"their-entry": template}  # they also dropped our older token
        write_atomic(path, json.dumps(foreign).encode())
        # A read reloads their document and re-applies our pending token to it.
        assert cache.get(key("theirs")) is not None
        assert cache.get(key("ours")) is not None
        assert cache.get(key("ours-before")) is None
    assert _WRITER.wait_idle(30)
    assert secrets_in(path) == {"theirs", "ours"}


def test_a_failed_background_write_is_a_warning_and_the_file_wins(
    cache: PersistentTokenCache,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="cache")

    def failing(path: Path, data: bytes, *, fsync: bool = True) -> object:
        raise CacheStorageError(f"could not write the token cache file {path}: No space left on device")

    monkeypatch.setattr(persistent_module, "write_atomic", failing)
    cache.put(key("s"), entry("canary-token-value"))
    assert _WRITER.wait_idle(30)
    messages = [r.getMessage() for r in caplog.records if r.name == "cache" and r.levelno == logging.WARNING]
    assert any("could not be saved" in m and "No space left on device" in m for m in messages), messages
    assert not any("canary-token-value" in m for m in messages)
    assert cache.pending == 0
    assert cache.get(key("s")) is None  # the next read reloads the file, which never held it
    assert not document(tmp_path).exists()


def test_flush_writes_now_and_close_is_idempotent(cache: PersistentTokenCache, tmp_path: Path) -> None:
    with InterProcessLock(tmp_path / "wb.cae.lockfile"):
        cache.put(key("s", cae=True), entry("cae-token"))
    cache.flush()
    assert cache.pending == 0
    assert secrets_in(tmp_path / "wb.cae") == {"cae-token"}
    cache.flush()  # nothing pending: no write
    assert secrets_in(tmp_path / "wb.cae") == {"cae-token"}


def test_write_behind_caches_of_one_name_are_one_object(tmp_path: Path) -> None:
    first = PersistentTokenCache.open(
        "a", allow_unencrypted_storage=True, directory=tmp_path, write_behind=True
    )
    again = PersistentTokenCache.open(
        "a", allow_unencrypted_storage=True, directory=tmp_path, write_behind=True
    )
    other = PersistentTokenCache.open(
        "b", allow_unencrypted_storage=True, directory=tmp_path, write_behind=True
    )
    through = PersistentTokenCache.open("a", allow_unencrypted_storage=True, directory=tmp_path)
    assert first is again
    assert other is not first
    assert through is not first
    stored = entry("shared")
    first.put(key("s"), stored)
    assert again.get(key("s")) is stored  # pending or not
    assert other.get(key("s")) is None
    assert _WRITER.wait_idle(30)


def test_a_process_that_exits_writes_what_is_pending(tmp_path: Path) -> None:
    script = (
        "import sys, time; from pathlib import Path\n"
        "from cache.files import InterProcessLock\n"
        "from cache.memory import AccessTokenEntry\n"
        "from cache.persistent import PersistentTokenCache\n"
        "from tests.cache.test_write_behind import key\n"
        "d = Path(sys.argv[1])\n"
        "c = PersistentTokenCache.open(\n"
        "    'wb', allow_unencrypted_storage=True, directory=d, write_behind=True\n"
        ")\n"
        "with InterProcessLock(d / 'wb.nocae.lockfile'):\n"
        "    for i in range(5):\n"
        "        c.put(key(f's{i}'), AccessTokenEntry(f'exit-{i}', 'Bearer', int(time.time()) + 3600))\n"
        "    assert c.pending == 5\n"
        "print('exiting', flush=True)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert secrets_in(document(tmp_path)) == {f"exit-{i}" for i in range(5)}


def test_an_async_caller_never_waits_for_the_file_lock(tmp_path: Path) -> None:
    import asyncio

    opened = PersistentTokenCache.open(
        "loop", allow_unencrypted_storage=True, directory=tmp_path, write_behind=True, lock_timeout=60
    )

    async def store_while_locked() -> int:
        # If put waited for the lock, this coroutine would block the loop until the lock is freed,
        # which only happens after it returned: the test would hang (and time out) instead of pass.
        opened.put(key("s"), entry("loop-token"))
        await asyncio.sleep(0)
        return opened.pending

    with InterProcessLock(tmp_path / "loop.nocae.lockfile"):
        assert asyncio.run(store_while_locked()) == 1
        assert opened.get(key("s")) == entry("loop-token")
    assert _WRITER.wait_idle(30)
    assert secrets_in(tmp_path / "loop.nocae") == {"loop-token"}
