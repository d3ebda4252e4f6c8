"""Storage primitives of the persistent token cache: private files, atomic replacement, change
detection and an inter-process lock that msal-extensions respects.

Files (the issue's rules):

* the directory is created 0700, every file we write is 0600 (created so, then ``fchmod``: the
  umask cannot widen or narrow it);
* a write goes to a temporary file in the same directory (``.<name>.<random>.tmp``), is fsynced,
  renamed over the old file, and the directory is fsynced: a reader (or a process killed mid-write)
  sees the old document or the new one, never a mix. Temporary files are removed when a write
  fails; one left by a killed writer is removed by the next writer (under the lock, every
  temporary file of the cache is garbage). ``fsync=False`` skips both fsyncs: still atomic
  against a killed process, no longer against a power cut;
* links are refused: files are opened with ``O_NOFOLLOW`` (and ``O_NONBLOCK``, so a FIFO planted at
  the path cannot block us) and must be regular files; a link at the cache path or the lock path
  raises :class:`~cache.errors.UnsafeCachePathError`.

Change detection (:class:`WatchedFile`): a file is re-read only when its ``(size, mtime_ns,
inode)`` changed, so an unchanged file costs one ``lstat``. Timestamps are coarse (the kernel's
tick, two seconds on FAT), so a file rewritten within the same tick with the same size and a reused
inode would look unchanged; as git does for its index ("racy git"), a signature is trusted only once
the file's mtime is :data:`RACY_WINDOW_NS` older than the moment we read it, and until then every
check reads the file and compares the bytes.

The lock (:class:`InterProcessLock`) follows msal-extensions 1.3.1 (reference
``azure-identity-surface.md`` §7, ``msal_extensions/cache_lock.py`` and ``filelock.py``): the lock
file is ``<cache file>.lockfile``, holds ``"<pid> <argv[0]>"`` and is deleted on release. That
library takes it in one of two ways:

* without portalocker: by exclusively creating the file (``open(path, "x")``), polled every
  0.25 s for 5 s;
* with portalocker: by trying exclusive creation for 5 s, then (created or not) opening it and
  taking a non-blocking exclusive ``flock`` (portalocker's POSIX locker is ``fcntl.flock``),
  retried for another 5 s.

We therefore hold the lock by *both*: we create the file exclusively (so an exclusive-creation
locker waits while it exists) and keep an exclusive ``flock`` on it until we have unlinked it (so a
portalocker locker, which ends up flocking an existing file, waits too). When the file exists we
open it and try the ``flock``: failing means a flock holder (us or portalocker) has it; succeeding
means either an exclusive-creation holder (the pid in the file is alive: wait) or a stale file whose
owner died (flocks die with their process; the pid is gone, or the file is empty and its ctime older
than :data:`STALE_EMPTY_AGE`), which we take over. After a ``flock`` succeeds we check that the path
still names the file we locked (a releaser may have unlinked it meanwhile). A file we have just
created is ours even if a poller holds its flock for a moment to look at it: we retry the flock
instead of leaving an orphan behind. Release unlinks the file while the flock is still held.

Waits are bounded (:class:`~cache.errors.CacheLockTimeoutError` names the holder and the file to
delete) and polled with a backoff (0.5 ms doubling to 50 ms). Polling favours a process that writes
in a loop (it re-takes the lock microseconds after releasing it); so a poller that has waited
half a second marks the holder's lock file (its mtime is set to a sentinel), polls every
millisecond, and the holder, seeing the mark when it releases, waits 5 ms before taking the lock
again. One race is msal-extensions' own and out of our reach: a portalocker process that opened
the file before its holder unlinked it may flock the unlinked file afterwards and believe it holds
the lock.

Windows (not exercised by the tests): exclusive creation plus ``msvcrt.locking`` on the first
byte, no stale-lock takeover (a stale file must be deleted, as with msal-extensions).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import random
import secrets
import stat
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from cache.errors import CacheLockTimeoutError, CacheStorageError, UnsafeCachePathError

__all__ = [
    "LOCK_SUFFIX",
    "LOCK_TIMEOUT",
    "RACY_WINDOW_NS",
    "STALE_EMPTY_AGE",
    "InterProcessLock",
    "WatchedFile",
    "ensure_private_directory",
    "read_regular_file",
    "remove_stale_temporaries",
    "write_atomic",
]

_LOGGER = logging.getLogger("cache")

#: msal-extensions' lock file name: ``<cache file>`` + this.
LOCK_SUFFIX = ".lockfile"
#: Default bound on waiting for the lock (msal-extensions waits 5 s, or 5 + 5 s with portalocker).
LOCK_TIMEOUT = 10.0
#: An empty lock file whose flock is free is stale once it is this old (an exclusive-creation
#: owner writes its pid right after creating the file; a portalocker owner flocks it right after).
STALE_EMPTY_AGE = 2.0
#: A file signature is trusted once its mtime is this much older than our read (coarse timestamps).
RACY_WINDOW_NS = 2_000_000_000

_WINDOWS = sys.platform == "win32"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)
_LINK_ERRNOS = {errno.ELOOP, errno.EMLINK}  # O_NOFOLLOW on a link: ELOOP (Linux, macOS), EMLINK (BSD)
_TEMP_SUFFIX = ".tmp"

Signature = tuple[int, int, int]


def _signature(st: os.stat_result) -> Signature:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _link_error(path: Path, what: str) -> UnsafeCachePathError:
    return UnsafeCachePathError(
        f"{what} {path} is a symbolic link; the token cache refuses to follow links. "
        "Remove the link (the cache recreates the file)."
    )


def _storage_error(action: str, path: Path, exc: OSError) -> CacheStorageError:
    return CacheStorageError(f"cannot {action} {path}: {exc.strerror or exc}")


def ensure_private_directory(path: Path) -> None:
    """Create ``path`` (mode 0700) if missing; tighten an existing directory of ours to 0700.

    Raises:
        UnsafeCachePathError: ``path`` is not a directory, or others may write to it and it is
            not ours to fix.
        CacheStorageError: the directory cannot be created.
    """
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.stat(path)
    except OSError as exc:
        raise _storage_error("create the token cache directory", path, exc) from exc
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeCachePathError(f"token cache directory {path} is not a directory")
    if _WINDOWS or stat.S_IMODE(st.st_mode) == 0o700:
        return
    try:
        os.chmod(path, 0o700)
    except OSError as exc:
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise UnsafeCachePathError(
                f"token cache directory {path} is writable by other users and cannot be made "
                f"private ({exc.strerror}); use a directory only you can write to"
            ) from exc
        _LOGGER.debug("Token cache directory %s keeps mode %o: %s", path, stat.S_IMODE(st.st_mode), exc)


def _open_existing(path: Path, flags: int, what: str) -> int | None:
    """Open an existing regular file without following a link; ``None`` if it does not exist."""
    if _WINDOWS:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISLNK(os.lstat(path).st_mode):
                raise _link_error(path, what)
    try:
        return os.open(path, flags | _NOFOLLOW | _NONBLOCK | _CLOEXEC | _BINARY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in _LINK_ERRNOS:
            raise _link_error(path, what) from exc
        raise _storage_error("open", path, exc) from exc


def _require_regular(fd: int, path: Path, what: str) -> os.stat_result:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UnsafeCachePathError(f"{what} {path} is not a regular file")
    return st


def read_regular_file(path: Path) -> tuple[bytes, os.stat_result] | None:
    """The content of ``path`` and the ``fstat`` of the very file read; ``None`` if it is missing.

    Raises:
        UnsafeCachePathError: ``path`` is a link or not a regular file.
        CacheStorageError: the file cannot be read.
    """
    fd = _open_existing(path, os.O_RDONLY, "token cache file")
    if fd is None:
        return None
    st = _require_regular(fd, path, "token cache file")
    try:
        chunks = []
        while True:
            chunk = os.read(fd, max(st.st_size, 65536))
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks), st
    except OSError as exc:
        raise _storage_error("read", path, exc) from exc
    finally:
        os.close(fd)


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}{_TEMP_SUFFIX}")


def _fsync_directory(directory: Path) -> None:
    if _WINDOWS:  # directories cannot be opened (nor need to be synced) there
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, fsync: bool = True) -> os.stat_result:
    """Replace ``path`` with ``data``: temporary file (0600) in the same directory, fsync, rename,
    fsync of the directory. Returns the ``fstat`` of the new file (same inode, size and mtime as the
    renamed file).

    Raises:
        UnsafeCachePathError: ``path`` is a link (it is left alone).
        CacheStorageError: the write failed (no temporary file is left behind).
    """
    temporary = _temporary_name(path)
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC | _BINARY, 0o600)
    except OSError as exc:
        raise _storage_error("create a temporary file for", path, exc) from exc
    try:
        try:
            if not _WINDOWS:
                os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if fsync:
                os.fsync(fd)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISLNK(os.lstat(path).st_mode):
                raise _link_error(path, "token cache file")
        _replace(temporary, path)
        if fsync:
            _fsync_directory(path.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise _storage_error("write", path, exc) from exc
        raise
    return st


def _replace(source: Path, target: Path) -> None:
    if not _WINDOWS:
        os.replace(source, target)
        return
    # Windows refuses to replace a file another process has open (a reader, for a moment).
    for attempt in range(10):  # pragma: no cover - Windows only
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if attempt == 9:
                raise
            time.sleep(0.01 * (attempt + 1))


def remove_stale_temporaries(path: Path) -> int:
    """Delete temporary files of ``path`` left by killed writers; call only under the lock (every
    writer holds it while its temporary file exists). Returns how many were removed."""
    prefix = f".{path.name}."
    removed = 0
    try:
        with os.scandir(path.parent) as entries:
            for entry in entries:
                if entry.name.startswith(prefix) and entry.name.endswith(_TEMP_SUFFIX):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        removed += 1
    except OSError as exc:
        _LOGGER.debug("Could not clean temporary files of %s: %s", path, exc)
    return removed


class WatchedFile:
    """A file whose content is read again only when it changed (see the module docstring).

    :meth:`check` returns ``None`` while the file holds the content last returned (or recorded),
    else the new content (``b""`` for a missing file). Not thread-safe: the owner serialises calls.
    """

    __slots__ = ("_content", "_name", "_signature", "_trusted", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._name = os.fspath(path)
        self._signature: Signature | None = None
        self._content: bytes | None = None  # None: not read yet
        self._trusted = False

    @property
    def known_missing(self) -> bool:
        """The last check found no file (so a missing file now is no change)."""
        return self._content == b"" and self._signature is None and self._trusted

    @property
    def trusted(self) -> Signature | None:
        """The signature that proves the file unchanged, or ``None`` while it cannot (not read yet,
        missing, or within the racy window). An owner's hot path may compare an ``lstat`` with it
        without locking: reading it does not modify the object."""
        return self._signature if self._trusted else None

    def check(self) -> bytes | None:
        """``None`` if unchanged, else the new content.

        Raises:
            UnsafeCachePathError: the path became a link or something other than a regular file.
            CacheStorageError: the file cannot be read.
        """
        try:
            st = os.lstat(self._name)
        except FileNotFoundError:
            return self._missing()
        except OSError as exc:
            raise _storage_error("inspect", self.path, exc) from exc
        if self._trusted and (st.st_size, st.st_mtime_ns, st.st_ino) == self._signature:
            return None
        return self._read()

    def _missing(self) -> bytes | None:
        self._signature = None
        self._trusted = True
        if self._content == b"":
            return None
        self._content = b""
        return b""

    def _read(self) -> bytes | None:
        result = read_regular_file(self.path)
        if result is None:
            return self._missing()
        data, st = result
        self._note(st)
        if data == self._content:
            return None
        self._content = data
        return data

    def _note(self, st: os.stat_result) -> None:
        self._signature = _signature(st)
        self._trusted = st.st_mtime_ns < time.time_ns() - RACY_WINDOW_NS

    def record(self, data: bytes, st: os.stat_result) -> None:
        """We just wrote ``data`` (``st``: the new file's stat): it is the current content."""
        self._content = data
        self._note(st)

    def forget(self) -> None:
        """The next :meth:`check` reads the file and returns its content."""
        self._content = None
        self._signature = None
        self._trusted = False


# --- the lock ----------------------------------------------------------------------------------

_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _reset_process_locks() -> None:  # a forked child starts with no lock held
    global _PROCESS_LOCKS_GUARD
    _PROCESS_LOCKS_GUARD = threading.Lock()
    _PROCESS_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_process_locks)


#: A waiter that has waited :data:`_STARVING_AFTER` s marks the holder's lock file with this mtime.
_WAITER_MARK_NS = 2**62
_STARVING_AFTER = 0.5
#: A holder that finds the mark steps aside this long before taking the lock again.
_YIELD = 0.005
#: lock path -> monotonic time before which this process does not take the lock again.
_YIELD_UNTIL: dict[str, float] = {}


def _process_lock(path: Path) -> threading.Lock:
    """The lock that serialises this process's threads on ``path`` before they touch the file."""
    name = os.path.normcase(os.path.abspath(path))
    with _PROCESS_LOCKS_GUARD:
        lock = _PROCESS_LOCKS.get(name)
        if lock is None:
            lock = _PROCESS_LOCKS[name] = threading.Lock()
        return lock


def _process_alive(pid: int) -> bool:
    """Whether ``pid`` names a live process (zombies count as dead: they hold no locks)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return False  # our threads queue on the process lock; a file naming us is a leftover
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as status:  # Linux: state follows the ")" of the name
            state = status.read().rpartition(b")")[2].split()[:1]
    except OSError:
        return True
    return state not in ([b"Z"], [b"X"])


def _holder_description(content: bytes) -> str:
    pid, _, program = content.decode("utf-8", "replace").strip().partition(" ")
    if not pid.isdigit():
        return "an unknown process"
    return f"process {pid} ({program})" if program else f"process {pid}"


class InterProcessLock:
    """The cache's lock file, compatible with msal-extensions 1.3.1 (see the module docstring).

    Use as a context manager. Threads of this process queue on a per-path lock first, so the file
    is contended only between processes.

    Args:
        path: the lock file (``<cache file>.lockfile``).
        timeout: seconds to wait for it before :class:`~cache.errors.CacheLockTimeoutError`.
    """

    def __init__(self, path: Path, *, timeout: float = LOCK_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None
        self._process_lock = _process_lock(path)
        self._name = os.path.normcase(os.path.abspath(path))
        self._taken_over = False
        self._starving = False

    def __enter__(self) -> InterProcessLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    @property
    def took_over_stale_lock(self) -> bool:
        """Whether the last acquisition replaced a lock file whose owner had died."""
        return self._taken_over

    def acquire(self) -> None:
        """Take the lock, waiting at most ``timeout`` seconds.

        Raises:
            CacheLockTimeoutError: another process held it all along.
            UnsafeCachePathError: the lock path is a link or not a regular file.
            CacheStorageError: the lock file cannot be created.
        """
        deadline = time.monotonic() + self.timeout
        if not self._process_lock.acquire(timeout=self.timeout):
            raise CacheLockTimeoutError(
                f"Could not lock the token cache: threads of this process held {self.path} "
                f"for {self.timeout:g} s."
            )
        try:
            pause = _YIELD_UNTIL.pop(self._name, 0.0) - time.monotonic()
            if pause > 0:  # we found a waiter's mark when we last released: let it in first
                time.sleep(pause)
            self._fd = self._acquire_file(deadline)
        except BaseException:
            self._process_lock.release()
            raise

    def release(self) -> None:
        """Unlink the lock file (while still holding its flock), then close it."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if _WINDOWS:  # pragma: no cover - Windows only: an open file cannot be deleted
                _windows_unlock(fd)
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
                return
            try:
                if os.fstat(fd).st_mtime_ns == _WAITER_MARK_NS:  # a process has waited long: yield
                    _YIELD_UNTIL[self._name] = time.monotonic() + _YIELD
                if self._same_file(fd):  # unlink while the flock still keeps others out
                    os.unlink(self.path)
            except OSError as exc:
                _LOGGER.debug("Could not remove the lock file %s: %s", self.path, exc)
            os.close(fd)
        finally:
            self._process_lock.release()

    def _same_file(self, fd: int) -> bool:
        try:
            mine, named = os.fstat(fd), os.lstat(self.path)
        except FileNotFoundError:
            return False
        return (mine.st_ino, mine.st_dev) == (named.st_ino, named.st_dev)

    def _acquire_file(self, deadline: float) -> int:
        started = time.monotonic()
        delay = 0.0005
        holder = b""
        self._starving = False
        while True:
            attempt = _windows_try_lock(self.path) if _WINDOWS else self._try_lock(deadline)
            if isinstance(attempt, int):
                return attempt
            holder = attempt.content or holder
            now = time.monotonic()
            if now >= deadline:
                raise CacheLockTimeoutError(
                    f"Could not lock the token cache within {self.timeout:g} s: {self.path} is held by "
                    f"{_holder_description(holder)}. If that process is not running, delete the file."
                )
            # Fairness: a holder that keeps re-taking the lock (a writer in a loop) would starve
            # pollers; a poller that has waited a while marks the lock file (see _try_lock), the
            # holder then steps aside once, and the poller polls often enough to get in.
            self._starving = now - started > _STARVING_AFTER
            cap = 0.001 if self._starving else 0.05
            time.sleep(min(deadline - now, delay * random.uniform(0.5, 1.0)))  # noqa: S311 - jitter only
            delay = min(delay * 2, cap)

    def _try_lock(self, deadline: float) -> int | _Busy:
        """One attempt: the locked descriptor, or who holds the lock."""
        self._taken_over = False
        created = True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
        except FileExistsError:
            created = False
            opened = _open_existing(self.path, os.O_RDWR, "token cache lock file")
            if opened is None:
                return _Busy(b"")  # released just now: try again
            fd = opened
        except OSError as exc:
            raise _storage_error("create the lock file", self.path, exc) from exc
        st = _require_regular(fd, self.path, "token cache lock file")
        if not (self._flock_created(fd, deadline) if created else _try_flock(fd)):
            content = _read_prefix(fd)
            if self._starving and not created:
                with contextlib.suppress(OSError):  # tell the holder someone has waited long
                    os.utime(fd, ns=(_WAITER_MARK_NS, _WAITER_MARK_NS))
            os.close(fd)
            return _Busy(content)
        if not self._same_file(fd):  # unlinked (released) between our open and our flock
            os.close(fd)
            return _Busy(b"")
        if not created:
            content = _read_prefix(fd)
            if not self._stale(content, st):
                os.close(fd)
                return _Busy(content)
            _LOGGER.info(
                "Taking over the token cache lock %s: its owner (%s) is gone.",
                self.path,
                _holder_description(content),
            )
            self._taken_over = True
            os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {sys.argv[0]}".encode(), 0)
        return fd

    def _flock_created(self, fd: int, deadline: float) -> bool:
        """Flock the file we have just created. Exclusive creation made it ours, but a poller may
        be holding its flock for a moment to look at it (it lets go at once); a portalocker
        process may also have flocked it, and then deletes it when done: our claim is void."""
        pause = 0.00005
        while True:
            try:
                if _try_flock(fd, raise_unsupported=True):
                    return True
            except OSError as exc:  # flock unsupported here (some network file systems)
                _LOGGER.debug(
                    "flock is unavailable on %s (%s); relying on exclusive creation", self.path, exc
                )
                return True
            if time.monotonic() >= deadline or not self._same_file(fd):
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.005)

    @staticmethod
    def _stale(content: bytes, st: os.stat_result) -> bool:
        """Whether a lock file nobody flocks belongs to a dead owner (else: an exclusive-creation
        holder that is alive, or one that has just created the file)."""
        pid, _, _ = content.decode("utf-8", "replace").strip().partition(" ")
        if pid.isdigit() and pid.isascii():
            return not _process_alive(int(pid))
        return time.time() - st.st_ctime > STALE_EMPTY_AGE  # ctime: a waiter's mark moves mtime


@dataclass(frozen=True, slots=True)
class _Busy:
    """A failed attempt: the holder's lock-file content (``b""`` when unknown)."""

    content: bytes


def _try_flock(fd: int, *, raise_unsupported: bool = False) -> bool:
    """A non-blocking exclusive flock: True if taken, False if someone holds it."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN) or not raise_unsupported:
            return False
        raise
    return True


def _read_prefix(fd: int) -> bytes:
    try:
        return os.pread(fd, 4096, 0)
    except OSError:
        return b""


def _windows_try_lock(path: Path) -> int | _Busy:  # pragma: no cover - Windows only
    import msvcrt

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _BINARY, 0o600)
    except (FileExistsError, PermissionError):  # PermissionError: being deleted
        try:
            with open(path, "rb") as holder:
                return _Busy(holder.read(4096))
        except OSError:
            return _Busy(b"")
    except OSError as exc:
        raise _storage_error("create the lock file", path, exc) from exc
    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
    except OSError:
        os.close(fd)
        return _Busy(b"")
    os.write(fd, f"{os.getpid()} {sys.argv[0]}".encode())
    return fd


def _windows_unlock(fd: int) -> None:  # pragma: no cover - Windows only
    import msvcrt

    with contextlib.suppress(OSError):
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
