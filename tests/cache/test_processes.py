"""Real processes sharing one cache: concurrent writers lose nothing, a writer killed with SIGKILL
leaves a readable cache, a rotated refresh token is seen by another process's next read, and the
lock keeps msal-extensions (both of its locking modes) and us from writing at the same time."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cache.files import RACY_WINDOW_NS, InterProcessLock
from cache.persistent import PersistentTokenCache
from cache.schema import RefreshTokenRecord
from tests.cache import workers
from tests.cache.keyrings import FILE_VARIABLE

ROOT = Path(__file__).resolve().parents[2]
WRITERS = 8
WRITES = 200


@pytest.fixture(params=["plaintext", "encrypted"])
def storage(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``plaintext`` (no keyring in any process), or ``encrypted`` with a keyring file shared by the
    processes (the real Secret Service has its own tests in test_secret_service.py)."""
    if request.param == "plaintext":  # also when the session has a Secret Service
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    else:
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "tests.cache.keyrings.FileKeyring")
        monkeypatch.setenv(FILE_VARIABLE, str(tmp_path / "keyring.json"))
        import keyring

        from tests.cache.keyrings import FileKeyring

        keyring.set_keyring(FileKeyring())
    return str(request.param)


def worker(*arguments: str | Path, directory: Path, storage: str) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "tests.cache.workers",
        *map(str, arguments),
        "--directory",
        str(directory),
    ]
    if storage == "plaintext":
        command.append("--plaintext")
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out


def open_cache(directory: Path, storage: str, name: str = "stress") -> PersistentTokenCache:
    cache = PersistentTokenCache.open(
        name, allow_unencrypted_storage=storage == "plaintext", directory=directory
    )
    assert cache.encrypted == (storage == "encrypted")
    return cache


@pytest.mark.parametrize("behind", [False, True], ids=["write-through", "write-behind"])
def test_concurrent_writers_lose_nothing(
    storage: str, behind: bool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cache")
    extra = ["--write-behind"] if behind else []  # write-behind: what is pending is written at exit
    processes = [
        worker("write", "--first", i * WRITES, "--count", WRITES, *extra, directory=tmp_path, storage=storage)
        for i in range(WRITERS)
    ]
    for process in processes:
        assert finish(process).count("committed") == WRITES
    cache = open_cache(tmp_path, storage)
    assert len(cache) == WRITERS * WRITES
    for i in range(WRITERS * WRITES):
        entry = cache.get(workers.key(i))
        assert entry is not None
        assert entry.token == workers.token(i)
    assert sorted(p.name for p in tmp_path.iterdir() if "stress" in p.name) == [
        "stress.nocae" + ("" if storage == "plaintext" else ".encrypted")
    ]  # no temporary or lock file left behind
    assert not [r for r in caplog.records if r.name == "cache" and "UNENCRYPTED" not in r.getMessage()]


def test_a_writer_killed_mid_write_leaves_a_readable_cache(
    storage: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cache")
    chance = random.Random(6)
    for round_ in range(8):
        process = worker(
            "write",
            "--forever",
            "--no-fsync",
            "--first",
            round_ * 50,
            "--count",
            50,
            directory=tmp_path,
            storage=storage,
        )
        assert process.stdout is not None
        committed = {int(process.stdout.readline().split()[1])}  # it has written at least once
        time.sleep(chance.uniform(0.0, 0.05))
        process.send_signal(signal.SIGKILL)
        out, _ = process.communicate(timeout=30)
        committed |= {int(line.split()[1]) for line in out.splitlines() if line.startswith("committed")}
        cache = open_cache(tmp_path, storage)
        for i in committed:
            assert cache.get(workers.key(i)) is not None, (
                f"round {round_}: token {i} was committed but is lost"
            )
        cache.partition(cae=False).add_records(
            workers.refresh_token(f"after-kill-{round_}")
        )  # still writable
    assert not [r for r in caplog.records if r.name == "cache" and "UNENCRYPTED" not in r.getMessage()]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".lockfile"))]
    assert leftovers == []


def test_refresh_token_rotation_is_seen_by_the_next_read(storage: str, tmp_path: Path) -> None:
    reader = open_cache(tmp_path, storage).partition(cae=False)
    finish(worker("rotate", "--secret", "rt-1", directory=tmp_path, storage=storage))
    assert [r.secret for r in reader.find(RefreshTokenRecord, client_id=workers.CLIENT_ID)] == ["rt-1"]
    finish(worker("rotate", "--secret", "rt-2", directory=tmp_path, storage=storage))
    assert [r.secret for r in reader.find(RefreshTokenRecord, client_id=workers.CLIENT_ID)] == ["rt-2"]
    # Age the file past the racy window: the reader now trusts (size, mtime, inode) alone.
    old = time.time_ns() - 10 * RACY_WINDOW_NS
    os.utime(reader.path, ns=(old, old))
    assert [r.secret for r in reader.find(RefreshTokenRecord, client_id=workers.CLIENT_ID)] == ["rt-2"]
    finish(worker("rotate", "--secret", "rt-3", directory=tmp_path, storage=storage))
    assert [r.secret for r in reader.find(RefreshTokenRecord, client_id=workers.CLIENT_ID)] == ["rt-3"]


# --- the lock against msal-extensions -----------------------------------------------------------


@contextlib.contextmanager
def holder(command: str, path: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """A process holding the lock at ``path`` (it has printed ``held``) for ``seconds``."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.cache.workers",
            command,
            "--path",
            str(path),
            "--seconds",
            str(seconds),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "held"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


@pytest.mark.parametrize("command", ["hold-msal-lock", "hold-flock"])
def test_we_wait_while_msal_extensions_holds_the_lock(command: str, tmp_path: Path) -> None:
    path = tmp_path / "msal.cache.nocae.lockfile"
    with holder(command, path, seconds=0.6) as process, InterProcessLock(path, timeout=10):
        # msal-extensions deletes the lock file on release, after its process ended its hold
        assert process.wait(timeout=10) == 0
        assert path.read_text().split()[0] == str(os.getpid())
    assert not path.exists()


def test_msal_extensions_waits_while_we_hold_the_lock(tmp_path: Path) -> None:
    """Both of msal-extensions' primitives fail while we hold the lock: exclusive creation (its
    own lock without portalocker) and a non-blocking flock (portalocker's)."""
    import fcntl

    from msal_extensions.filelock import CrossPlatLock

    path = tmp_path / "msal.cache.nocae.lockfile"
    with holder("hold-our-lock", path, seconds=1.0) as process:
        with pytest.raises(FileExistsError):
            open(path, "x").close()
        with open(path, "a+b") as handle, pytest.raises(BlockingIOError):
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        # msal-extensions' own lock (exclusive creation, polled) gets it once we have released it
        with CrossPlatLock(str(path)):
            assert process.wait(timeout=10) == 0
    assert not path.exists()


def test_a_lock_file_left_by_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "c.lockfile"
    with holder("hold-our-lock", path, seconds=60) as process:
        process.kill()
        process.wait()
    assert path.exists()  # SIGKILL: nothing removed it
    started = time.monotonic()
    lock = InterProcessLock(path, timeout=5)
    with lock:
        assert lock.took_over_stale_lock
        assert path.read_text().split()[0] == str(os.getpid())
    assert time.monotonic() - started < 4
    assert not path.exists()
