"""cache.files: private modes, atomic replacement, refusal of links, change detection at the cost
of one stat, and the lock's rules (stale owners, live owners, bounded waits)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cache.errors import CacheLockTimeoutError, CacheStorageError, UnsafeCachePathError
from cache.files import (
    RACY_WINDOW_NS,
    STALE_EMPTY_AGE,
    InterProcessLock,
    WatchedFile,
    ensure_private_directory,
    read_regular_file,
    remove_stale_temporaries,
    write_atomic,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture(params=[0o022, 0o000, 0o077])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    yield int(request.param)
    os.umask(previous)


# --- modes and atomic replacement ----------------------------------------------------------------


def test_directory_0700_and_files_0600_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    directory = tmp_path / "a" / ".IdentityService"
    ensure_private_directory(directory)
    assert mode(directory) == 0o700
    write_atomic(directory / "c.nocae", b"{}")
    assert mode(directory / "c.nocae") == 0o600


def test_an_existing_directory_is_made_private(tmp_path: Path) -> None:
    directory = tmp_path / "shared"
    directory.mkdir(mode=0o755)
    ensure_private_directory(directory)
    assert mode(directory) == 0o700


def test_a_file_where_the_directory_should_be_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(CacheStorageError):
        ensure_private_directory(tmp_path / "file")


def test_write_replaces_the_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "c.nocae"
    path.write_bytes(b"old")
    inode = os.lstat(path).st_ino
    st = write_atomic(path, b"new")
    assert path.read_bytes() == b"new"
    assert os.lstat(path).st_ino == st.st_ino != inode  # a new file renamed over the old one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.nocae"]


@pytest.mark.parametrize("failing", ["write", "fsync", "replace"])
def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary_file(
    failing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.nocae"
    path.write_bytes(b"old")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, broken)
    with pytest.raises(CacheStorageError, match="No space left on device"):
        write_atomic(path, b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.nocae"]


def test_fsync_covers_the_file_and_the_directory_unless_disabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[bool] = []
    real_fsync = os.fsync
    monkeypatch.setattr(
        os, "fsync", lambda fd: synced.append(stat.S_ISDIR(os.fstat(fd).st_mode)) or real_fsync(fd)
    )
    write_atomic(tmp_path / "c", b"x")
    assert synced == [False, True]
    write_atomic(tmp_path / "c", b"y", fsync=False)
    assert synced == [False, True]


def test_temporary_files_of_killed_writers_are_swept(tmp_path: Path) -> None:
    path = tmp_path / "c.nocae"
    (tmp_path / ".c.nocae.0123456789ab.tmp").write_bytes(b"partial")
    (tmp_path / ".other.0123456789ab.tmp").write_bytes(b"not ours")
    assert remove_stale_temporaries(path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.0123456789ab.tmp"]


# --- links ---------------------------------------------------------------------------------------


def test_a_link_at_the_cache_path_is_refused_and_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"precious")
    link = tmp_path / "c.nocae"
    link.symlink_to(target)
    with pytest.raises(UnsafeCachePathError, match="symbolic link"):
        read_regular_file(link)
    with pytest.raises(UnsafeCachePathError, match="symbolic link"):
        write_atomic(link, b"{}")
    with pytest.raises(UnsafeCachePathError, match="symbolic link"):
        WatchedFile(link).check()
    assert link.is_symlink()
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.nocae", "elsewhere"]


def test_a_fifo_at_the_cache_path_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "c.nocae"
    os.mkfifo(fifo)
    with pytest.raises(UnsafeCachePathError, match="not a regular file"):
        read_regular_file(fifo)


def test_a_link_at_the_lock_path_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"precious")
    (tmp_path / "c.lockfile").symlink_to(target)
    with (
        pytest.raises(UnsafeCachePathError, match="symbolic link"),
        InterProcessLock(tmp_path / "c.lockfile"),
    ):
        pass
    assert target.read_bytes() == b"precious"
    dangling = tmp_path / "d.lockfile"
    dangling.symlink_to(tmp_path / "missing")
    with pytest.raises(UnsafeCachePathError), InterProcessLock(dangling):
        pass
    assert not (tmp_path / "missing").exists()


# --- change detection ----------------------------------------------------------------------------


class Spy:
    """Counts calls of os functions."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
        self.counts = dict.fromkeys(names, 0)
        for name in names:
            monkeypatch.setattr(os, name, self._counting(name, getattr(os, name)))

    def _counting(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.counts[name] += 1
            return function(*args, **kwargs)

        return counted

    def reset(self) -> None:
        self.counts = dict.fromkeys(self.counts, 0)


def age(path: Path, seconds: float = 10) -> None:
    """Make the file look written ``seconds`` ago (past the racy window)."""
    old = time.time_ns() - int(seconds * 1e9)
    os.utime(path, ns=(old, old))


def test_an_unchanged_file_costs_one_stat_and_no_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c"
    write_atomic(path, b"one")
    age(path)
    watched = WatchedFile(path)
    assert watched.check() == b"one"
    spy = Spy(monkeypatch, "lstat", "stat", "open", "read")
    for _ in range(100):
        assert watched.check() is None
    assert spy.counts == {"lstat": 100, "stat": 0, "open": 0, "read": 0}
    write_atomic(path, b"two")
    spy.reset()
    assert watched.check() == b"two"
    assert spy.counts["open"] == 1
    assert spy.counts["read"] >= 1


def test_a_file_rewritten_with_the_same_signature_is_caught_within_the_racy_window(tmp_path: Path) -> None:
    """Same size, same inode, mtime restored: only the content differs (an in-place writer within
    one timestamp tick). A fresh file is not trusted on its signature, so the bytes are compared."""
    path = tmp_path / "c"
    path.write_bytes(b"aaaa")
    st = os.lstat(path)
    watched = WatchedFile(path)
    assert watched.check() == b"aaaa"
    with open(path, "r+b") as handle:
        handle.write(b"bbbb")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.lstat(path).st_mtime_ns == st.st_mtime_ns
    assert watched.check() == b"bbbb"
    assert watched.check() is None  # same bytes: nothing new
    assert st.st_mtime_ns > time.time_ns() - RACY_WINDOW_NS  # (the premise: still within the window)


def test_a_missing_file_reads_as_empty_once(tmp_path: Path) -> None:
    watched = WatchedFile(tmp_path / "missing")
    assert watched.check() == b""
    assert watched.check() is None
    write_atomic(tmp_path / "missing", b"now")
    assert watched.check() == b"now"
    os.unlink(tmp_path / "missing")
    assert watched.check() == b""


def test_our_own_write_is_not_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c"
    watched = WatchedFile(path)
    watched.check()
    st = write_atomic(path, b"mine")
    watched.record(b"mine", st)
    assert watched.check() is None


# --- the lock ------------------------------------------------------------------------------------


def test_the_lock_file_holds_our_pid_and_disappears_on_release(tmp_path: Path) -> None:
    path = tmp_path / "c.nocae.lockfile"
    with InterProcessLock(path):
        assert path.read_text() == f"{os.getpid()} {sys.argv[0]}"
        assert mode(path) == 0o600
    assert not path.exists()


def test_threads_take_turns(tmp_path: Path) -> None:
    path = tmp_path / "c.lockfile"
    inside = 0
    overlaps = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, overlaps
        for _ in range(50):
            with InterProcessLock(path):
                with guard:
                    inside += 1
                    overlaps += inside > 1
                time.sleep(0.0001)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == 0
    assert not path.exists()


def test_a_live_exclusive_creation_holder_is_waited_for_until_the_timeout(tmp_path: Path) -> None:
    """msal-extensions without portalocker: the file exists, nobody flocks it, its pid is alive."""
    path = tmp_path / "c.lockfile"
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as sleeper:
        try:
            path.write_text(f"{sleeper.pid} /usr/bin/az")
            started = time.monotonic()
            with pytest.raises(CacheLockTimeoutError) as raised, InterProcessLock(path, timeout=0.3):
                pass
            assert time.monotonic() - started >= 0.3
        finally:
            sleeper.kill()
    message = str(raised.value)
    assert f"process {sleeper.pid} (/usr/bin/az)" in message
    assert str(path) in message
    assert "delete the file" in message
    assert path.read_text() == f"{sleeper.pid} /usr/bin/az"  # not ours to remove


def test_a_lock_file_naming_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "c.lockfile"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path.write_text(f"{dead.pid} python")
    lock = InterProcessLock(path, timeout=1)
    with lock:
        assert lock.took_over_stale_lock
        assert path.read_text().startswith(f"{os.getpid()} ")
    assert not path.exists()


def test_an_empty_lock_file_is_stale_only_once_it_is_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Empty: an owner between creating the file and writing its pid (wait), or one killed right
    there (take over once the file is older than STALE_EMPTY_AGE, by its ctime: waiters may move
    its mtime)."""
    assert STALE_EMPTY_AGE == 2.0
    monkeypatch.setattr("cache.files.STALE_EMPTY_AGE", 0.3)
    path = tmp_path / "c.lockfile"
    path.write_text("")
    age(path, 3600)  # the mtime says nothing
    with (
        pytest.raises(CacheLockTimeoutError, match="an unknown process"),
        InterProcessLock(path, timeout=0.1),
    ):
        pass
    time.sleep(0.35)
    lock = InterProcessLock(path, timeout=1)
    with lock:
        assert lock.took_over_stale_lock
