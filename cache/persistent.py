"""The persistent token cache: MSAL-schema documents on disk, shared safely between processes.

Layout (azure-identity 1.27.0 ``_persistent_cache.py``; reference ``azure-identity-surface.md`` §7):
one document per cache ``name`` and CAE partition, ``<name>.nocae`` and ``<name>.cae``, in
``~/.IdentityService`` (Windows: ``%LOCALAPPDATA%\\.IdentityService``):

====================================  ===========================================================
``<name>.nocae`` / ``<name>.cae``      plaintext (opt-in): MSAL's JSON, the file azure-identity
                                       and msal-extensions use with ``allow_unencrypted_storage``
``<name>.nocae.encrypted`` / ``...``   encrypted (default): see :mod:`cache.encrypted`
``<file>.lockfile``                    the inter-process lock of that file (see :mod:`cache.files`)
====================================  ===========================================================

Reads: each partition keeps an in-memory index (a dict by :class:`~cache.memory.CacheKey`) built
from its document; a read costs one ``lstat`` of the file when it is unchanged, plus a dict probe:
O(1) with any number of tokens. A changed file is read again (entries equal to the previous ones
keep their objects and cost no parsing).

Writes: under the file lock the document is re-read if it changed, our change is applied to it by
entry key (so another process's entries are never lost: every write is a read-modify-write of one
entry, not a dump of our view), expired access tokens are dropped (as MSAL's searches do), and the
file is replaced atomically. Threads of one process serialise on a lock per partition.

Access tokens: :meth:`PersistentTokenCache.get` / ``put`` / ``remove`` / ``clear`` / ``len`` have
:class:`~cache.memory.MemoryTokenCache`'s signatures, so a credential core can use either; the CAE
flag of the key picks the document. A ``put`` that only changes ``refresh_deferred_until`` (a failed
proactive refresh) stays in memory: it is per-process back-off, not cache content. Refresh tokens,
ID tokens, accounts and app metadata are reached through :meth:`PersistentTokenCache.partition`.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol, TypeVar

from cache.encrypted import AesGcmCodec, UnreadableDocumentError, keyring_key, keyring_problem
from cache.errors import (
    CacheLockTimeoutError,
    PersistenceUnavailableError,
    TokenCacheError,
    UnsafeCachePathError,
)
from cache.files import (
    LOCK_SUFFIX,
    LOCK_TIMEOUT,
    InterProcessLock,
    WatchedFile,
    ensure_private_directory,
    remove_stale_temporaries,
    write_atomic,
)
from cache.memory import AccessTokenEntry, CacheKey
from cache.schema import (
    ACCESS_TOKEN,
    AccessTokenRecord,
    AccountRecord,
    AppMetadataRecord,
    CacheDocument,
    IdTokenRecord,
    Record,
    RefreshTokenRecord,
)

__all__ = [
    "CAE_SUFFIX",
    "DEFAULT_NAME",
    "NON_CAE_SUFFIX",
    "AccessTokenIndex",
    "CachePartition",
    "Codec",
    "PersistentTokenCache",
    "PlaintextCodec",
    "default_directory",
    "open_persistent_cache",
]

_LOGGER = logging.getLogger("cache")

#: azure-identity's default cache name (``TokenCachePersistenceOptions(name="msal.cache")``).
DEFAULT_NAME = "msal.cache"
#: azure-identity 1.27.0 ``_constants.py`` ``CACHE_NON_CAE_SUFFIX`` / ``CACHE_CAE_SUFFIX``.
NON_CAE_SUFFIX = ".nocae"
CAE_SUFFIX = ".cae"

R = TypeVar("R", AccessTokenRecord, RefreshTokenRecord, IdTokenRecord, AccountRecord, AppMetadataRecord)

_plaintext_warned: set[str] = set()
#: Write-behind caches open in this process, by (directory, name, storage, fsync, lock timeout):
#: credentials that open the same cache share one, so each sees the others' tokens at once, pending
#: writes included, and the document is parsed once.
_SHARED: weakref.WeakValueDictionary[tuple[str, str, str, bool, float], PersistentTokenCache] = (
    weakref.WeakValueDictionary()
)
_SHARED_GUARD = threading.Lock()
_plaintext_warned_guard = threading.Lock()


class Codec(Protocol):
    """Turns a serialized document into file content and back."""

    encrypted: bool
    #: appended to the document name to name its file
    suffix: str

    def encode(self, document: bytes, name: str) -> bytes: ...

    def decode(self, data: bytes, name: str) -> bytes:
        """Raises :class:`~cache.encrypted.UnreadableDocumentError` when ``data`` is unusable."""
        ...


class PlaintextCodec:
    """The document as it is: MSAL's JSON, readable by azure-identity and msal-extensions."""

    encrypted = False
    suffix = ""

    def encode(self, document: bytes, name: str) -> bytes:
        return document

    def decode(self, data: bytes, name: str) -> bytes:
        return data


def default_directory() -> Path:
    """azure-identity's cache directory: ``%LOCALAPPDATA%\\.IdentityService`` on Windows (when
    ``LOCALAPPDATA`` is set), else ``~/.IdentityService``."""
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / ".IdentityService"
    return Path.home() / ".IdentityService"


def _check_name(name: str) -> None:
    if (
        not isinstance(name, str)
        or not name
        or name in {".", ".."}
        or any(separator in name for separator in ("/", "\\", "\0"))
    ):
        raise ValueError(f"invalid token cache name {name!r}: it must be a file name, without any directory")


def _same_token(a: AccessTokenEntry, b: AccessTokenEntry) -> bool:
    return (a.token, a.token_type, a.expires_on, a.refresh_on) == (
        b.token,
        b.token_type,
        b.expires_on,
        b.refresh_on,
    )


#: A record we just stored and the entry object ``get`` should hand out for it.
_Hint = tuple[AccessTokenRecord, AccessTokenEntry]


@dataclasses.dataclass(frozen=True, slots=True)
class _Slot:
    """One access-token entry of the document: its record, our key for it (``None`` for tokens our
    lookups never serve) and the entry object handed out."""

    record: AccessTokenRecord
    key: CacheKey | None
    entry: AccessTokenEntry | None


class AccessTokenIndex:
    """``CacheKey -> AccessTokenEntry`` over a document's access tokens, kept in step with it by
    difference: entries whose record objects did not change keep their entry objects (and cost
    nothing), so a reload after another process added one token touches one token.

    ``entries`` may be read without a lock (it is only ever changed one key at a time, or replaced
    whole); :meth:`sync` and :meth:`defer` need the owner's lock.
    """

    __slots__ = ("_cae", "_collisions", "_slots", "_where", "earliest_expiry", "entries")

    def __init__(self, *, cae: bool) -> None:
        self._cae = cae
        self.entries: dict[CacheKey, AccessTokenEntry] = {}
        self._slots: dict[str, _Slot] = {}
        self._where: dict[CacheKey, str] = {}  # the entry key each indexed token comes from
        self._collisions = False  # two entry keys for one CacheKey (foreign entries): no increments
        #: no access token of the document expires before this (epoch seconds; may be too early)
        self.earliest_expiry: float = float("inf")

    def entry_key(self, key: CacheKey) -> str | None:
        """The document entry key the token under ``key`` comes from."""
        return self._where.get(key)

    def _slot(self, record: AccessTokenRecord, hint: _Hint | None) -> _Slot:
        key = record.cache_key(cae=self._cae)
        if key is None:
            return _Slot(record, None, None)
        entry = hint[1] if hint is not None and hint[0] is record else record.to_entry()
        return _Slot(record, key, entry)

    def sync(
        self,
        records: Mapping[str, AccessTokenRecord],
        *,
        hint: _Hint | None = None,
    ) -> None:
        """Follow the document's access tokens ``records`` (entry key -> record).

        Args:
            records: the document's access tokens.
            hint: a record we just stored and the entry object to hand out for it (so ``get``
                returns the very object ``put`` received).
        """
        slots = self._slots
        changed = [k for k, new in records.items() if (old := slots.get(k)) is None or old.record is not new]
        added = sum(1 for k in changed if k not in slots)
        removed = [k for k in slots if k not in records] if len(slots) + added != len(records) else []
        if not changed and not removed:
            return
        if self._collisions or 2 * (len(changed) + len(removed)) > len(records) + 16:
            self._rebuild(records, hint)
            return
        entries, where = self.entries, self._where
        for k in removed:
            slot = slots.pop(k)
            if slot.key is not None and where.get(slot.key) == k:
                del entries[slot.key], where[slot.key]
        for k in changed:
            record = records[k]
            old = slots.get(k)
            slot = slots[k] = self._slot(record, hint)
            if old is not None and old.key is not None and old.key != slot.key and where.get(old.key) == k:
                del entries[old.key], where[old.key]
            self.earliest_expiry = min(self.earliest_expiry, record.expires_on)
            if slot.key is None or slot.entry is None:
                continue
            holder = where.get(slot.key)
            if holder is not None and holder != k:
                self._collisions = True
                if entries[slot.key].expires_on >= slot.entry.expires_on:
                    continue
            entries[slot.key] = slot.entry
            where[slot.key] = k

    def _rebuild(self, records: Mapping[str, AccessTokenRecord], hint: _Hint | None) -> None:
        previous = self._slots
        slots: dict[str, _Slot] = {}
        entries: dict[CacheKey, AccessTokenEntry] = {}
        where: dict[CacheKey, str] = {}
        collisions = False
        earliest = float("inf")
        for k, record in records.items():
            slot = previous.get(k)
            if slot is None or slot.record is not record:
                slot = self._slot(record, hint)
            slots[k] = slot
            earliest = min(earliest, record.expires_on)
            if slot.key is None or slot.entry is None:
                continue
            current = entries.get(slot.key)
            if current is not None:
                collisions = True
                if current.expires_on >= slot.entry.expires_on:
                    continue
            entries[slot.key] = slot.entry
            where[slot.key] = k
        self._slots, self._where, self._collisions, self.earliest_expiry = slots, where, collisions, earliest
        self.entries = entries

    def defer(self, key: CacheKey, entry: AccessTokenEntry) -> bool:
        """Hand out ``entry`` for ``key`` if it is the stored token with other in-memory
        bookkeeping (``refresh_deferred_until``); ``False`` if it is another token."""
        k = self._where.get(key)
        if k is None:
            return False
        slot = self._slots[k]
        if slot.entry is None or not _same_token(slot.entry, entry):
            return False
        self._slots[k] = _Slot(slot.record, key, entry)
        self.entries[key] = entry
        return True


class CachePartition:
    """One document (the CAE or the non-CAE half of a cache) with its file, lock and index.

    Args:
        directory: where the files live.
        document: the document name (``<name>.nocae`` or ``<name>.cae``).
        codec: plaintext or encrypted.
        cae: the CAE flag of the access tokens this document holds.
        fsync: fsync the file and the directory on every write.
        lock_timeout: seconds to wait for the lock file.
        write_behind: :meth:`put` returns once the token is in memory; the process's cache writer
            thread commits it to the file (see :class:`PersistentTokenCache`).
    """

    def __init__(
        self,
        directory: Path,
        document: str,
        codec: Codec,
        *,
        cae: bool,
        fsync: bool = True,
        lock_timeout: float = LOCK_TIMEOUT,
        write_behind: bool = False,
    ) -> None:
        self.document = document
        self.cae = cae
        self.path = directory / (document + codec.suffix)
        self.lock_path = directory / (self.path.name + LOCK_SUFFIX)
        self._codec = codec
        self._fsync = fsync
        self._lock_timeout = lock_timeout
        self._watched = WatchedFile(self.path)
        self._name = os.fspath(self.path)
        self._lock = threading.RLock()
        self._document = CacheDocument()
        self._index = AccessTokenIndex(cae=cae)
        self._swept = False  # stale temporary files removed (once per partition)
        self._write_behind = write_behind
        #: changes applied to the document in memory but not yet to the file, oldest first
        self._pending: list[Callable[[CacheDocument], bool]] = []
        #: the content being written outside ``self._lock`` (a reader that finds it skips parsing)
        self._writing: bytes | None = None

    def __repr__(self) -> str:
        return f"CachePartition({str(self.path)!r}, tokens={len(self._index.entries)})"

    # --- reading ---------------------------------------------------------------------------------

    def get(self, key: CacheKey) -> AccessTokenEntry | None:
        """The access token stored under ``key`` (one ``lstat`` and a dict probe when unchanged)."""
        try:
            st = os.lstat(self._name)
            if (st.st_size, st.st_mtime_ns, st.st_ino) == self._watched.trusted:
                return self._index.entries.get(key)
        except FileNotFoundError:
            if self._watched.known_missing:  # never written yet
                return self._index.entries.get(key)
        except OSError:
            pass  # the careful path below says what is wrong
        self._load()
        return self._index.entries.get(key)

    def __len__(self) -> int:
        """How many access tokens the document holds for our lookups."""
        self._load()
        return len(self._index.entries)

    def find(self, record_type: type[R], **fields: object) -> list[R]:
        """The records of ``record_type`` whose fields equal ``fields``, e.g.
        ``find(RefreshTokenRecord, client_id=..., home_account_id=...)``.

        Raises:
            TypeError: a field name ``record_type`` does not have.
        """
        names = {f.name for f in dataclasses.fields(record_type)}
        unknown = set(fields) - names
        if unknown:
            raise TypeError(f"{record_type.__name__} has no field {', '.join(sorted(unknown))}")
        self._load()
        with self._lock:
            return [
                record
                for _, record in self._document.records(record_type)
                if all(getattr(record, name) == value for name, value in fields.items())
            ]

    def _load(self) -> None:
        """Bring the document up to date with the file.

        Lock order, everywhere: the file lock (with its per-process lock), then ``self._lock``.
        """
        with self._lock:
            if self._refresh(locked=False):
                return
        # Unreadable outside the lock: possibly a writer that rewrites in place (msal-extensions
        # truncates and writes); read again while no writer can be active, then conclude.
        try:
            with InterProcessLock(self.lock_path, timeout=self._lock_timeout), self._lock:
                self._refresh(locked=True)
        except CacheLockTimeoutError:
            with self._lock:  # a writer stays busy: conclude from what we read
                self._refresh(locked=True)

    def _refresh(self, *, locked: bool) -> bool:
        """Reload the document if the file changed (caller holds ``self._lock``); ``False`` when
        the content cannot be read and ``locked`` is False (the caller then reads under the lock)."""
        data = self._watched.check()
        if data is None:
            return True
        if data == self._writing:  # our own write, just renamed into place: nothing new
            return True
        document = self._decode(data, log=locked)
        if document is None:
            self._watched.forget()
            return False
        for change in self._pending:  # the document in memory is the file plus what is not written
            change(document)
        self._document = document
        self._index.sync(document.access_tokens())
        return True

    def _decode(self, data: bytes, *, log: bool) -> CacheDocument | None:
        try:
            plain = self._codec.decode(data, self.document)
        except UnreadableDocumentError as exc:
            if not log:
                return None
            _LOGGER.warning(
                "Token cache %s cannot be read (%s); reading it as an empty cache.", self.path, exc
            )
            return CacheDocument()
        document = CacheDocument.parse(plain, previous=self._document, source=str(self.path), log=log)
        if not document.readable and not log:
            return None
        return document

    # --- writing ---------------------------------------------------------------------------------

    def _write(
        self,
        change: Callable[[CacheDocument], bool] | None,
        hint: _Hint | None = None,
    ) -> None:
        """Under the file lock: apply every pending change and ``change`` (which returns whether it
        changed anything) to the file's current document, and replace the file atomically.

        ``self._lock`` is held while the document changes, not while the file is written, so this
        process's readers and write-behind puts never wait for the disk.
        """
        with InterProcessLock(self.lock_path, timeout=self._lock_timeout) as lock:
            with self._lock:
                try:
                    if not self._swept or lock.took_over_stale_lock:
                        remove_stale_temporaries(self.path)
                        self._swept = True
                    self._refresh(locked=True)  # the file's document plus our pending changes
                    changed = bool(self._pending)
                    self._pending = []
                    if change is not None:
                        changed = change(self._document) or changed
                    changed = self._drop_expired(int(time.time())) or changed
                    if not changed:
                        return
                    data = self._codec.encode(self._document.to_bytes(), self.document)
                    self._writing = data
                except BaseException:
                    self._watched.forget()  # the document in memory may hold a change not on disk
                    raise
                finally:
                    self._index.sync(self._document.access_tokens(), hint=hint)
            try:
                written = write_atomic(self.path, data, fsync=self._fsync)
            except BaseException:
                with self._lock:
                    self._writing = None
                    self._watched.forget()  # the next read reloads what the file holds
                raise
            with self._lock:
                self._writing = None
                self._watched.record(data, written)

    @property
    def pending(self) -> int:
        """Changes made in memory (write-behind) and not yet written to the file (one more while
        a write is on its way)."""
        with self._lock:
            return len(self._pending) + (self._writing is not None)

    def flush(self) -> None:
        """Write the pending changes now (nothing to do without any).

        Raises:
            TokenCacheError: as for a write; the changes are then dropped from memory too (the next
                read reloads the file).
        """
        with self._lock:  # pending, or taken by a write still on its way to the file
            busy = bool(self._pending) or self._writing is not None
        if busy:
            self._write(None)  # waits for the file lock, i.e. for a write on its way

    def _defer(self, change: Callable[[CacheDocument], bool], hint: _Hint | None) -> None:
        """Apply ``change`` in memory now and leave the file to the writer thread."""
        with self._lock:
            change(self._document)
            self._pending.append(change)
            self._index.sync(self._document.access_tokens(), hint=hint)
        _WRITER.schedule(self)

    def _drop_expired(self, now: int) -> bool:
        """Drop access tokens that expired (MSAL's searches do the same)."""
        if now <= self._index.earliest_expiry:
            return False
        tokens = self._document.access_tokens()
        expired = [key for key, record in tokens.items() if record.expires_on < now]
        for key in expired:
            self._document.remove(ACCESS_TOKEN, key)
        remaining = (record.expires_on for record in tokens.values())
        self._index.earliest_expiry = min(remaining, default=float("inf"))
        return bool(expired)

    def put(self, key: CacheKey, entry: AccessTokenEntry) -> None:
        """Store an access token under ``key`` (replacing the one there)."""
        with self._lock:
            if self._index.defer(key, entry):  # back-off bookkeeping only: nothing to write
                return
        record = AccessTokenRecord.from_entry(key, entry, now=int(time.time()))

        def change(document: CacheDocument) -> bool:
            entry_key = document.put(record)
            previous = self._index.entry_key(key)
            if previous is not None and previous != entry_key:
                document.remove(ACCESS_TOKEN, previous)
            return True

        if self._write_behind:
            self._defer(change, (record, entry))
        else:
            self._write(change, hint=(record, entry))

    def remove(self, key: CacheKey) -> None:
        """Remove the access token stored under ``key``, if any."""

        def change(document: CacheDocument) -> bool:
            entry_key = self._index.entry_key(key)
            return entry_key is not None and document.remove(ACCESS_TOKEN, entry_key)

        self._write(change)

    def clear(self) -> None:
        """Remove every access token of this document (other entries stay)."""

        def change(document: CacheDocument) -> bool:
            keys = document.keys(ACCESS_TOKEN)
            for key in keys:
                document.remove(ACCESS_TOKEN, key)
            return bool(keys)

        self._write(change)

    def add_records(self, *records: Record) -> None:
        """Store ``records`` (refresh tokens, ID tokens, accounts, app metadata, access tokens),
        each replacing the entry under its key, in one write."""
        if not records:
            return

        def change(document: CacheDocument) -> bool:
            for record in records:
                document.put(record)
            return True

        self._write(change)

    def remove_records(self, *records: Record) -> int:
        """Remove each of ``records`` if its entry still equals it (a refresh token rotated by
        another process meanwhile stays). Returns how many were removed."""
        removed = 0

        def change(document: CacheDocument) -> bool:
            nonlocal removed
            for record in records:
                key = record.key()
                if document.record_at(record.section, key) == record:
                    removed += document.remove(record.section, key)
            return removed > 0

        self._write(change)
        return removed


class _Writer:
    """The process's cache writer: one daemon thread that commits write-behind changes.

    A partition with pending changes is queued once however many puts it receives, so the tokens
    acquired while a write is on its way go to the file together in the next one. At exit (and on
    :meth:`flush_all`) every write-behind partition is flushed from the exiting thread.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._queue: dict[CachePartition, None] = {}  # insertion-ordered set
        self._thread: threading.Thread | None = None
        self._partitions: weakref.WeakSet[CachePartition] = weakref.WeakSet()
        self._idle = True

    def schedule(self, partition: CachePartition) -> None:
        with self._condition:
            self._partitions.add(partition)
            self._queue[partition] = None
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="entra-identity cache writer", daemon=True
                )
                self._thread.start()
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                self._idle = not self._queue
                if self._idle:
                    self._condition.notify_all()
                while not self._queue:
                    self._condition.wait()
                self._idle = False
                partition = next(iter(self._queue))
                del self._queue[partition]
            _flush_logged(partition)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until the writer has nothing queued or in hand; ``False`` on timeout."""
        with self._condition:
            return self._condition.wait_for(lambda: self._idle and not self._queue, timeout)

    def flush_all(self) -> None:
        """Commit every write-behind partition's pending changes from this thread."""
        with self._condition:
            partitions = list(self._partitions)
        for partition in partitions:
            _flush_logged(partition)

    def after_fork(self) -> None:
        """A forked child has no writer thread (it starts one when it first defers a write)."""
        self._condition = threading.Condition()
        self._thread = None
        self._idle = True


def _flush_logged(partition: CachePartition) -> None:
    try:
        partition.flush()
    except TokenCacheError as exc:
        _LOGGER.warning(
            "Token cache %s: tokens could not be saved, so they will be requested again when needed: %s",
            partition.path,
            exc,
        )
    except Exception:  # the writer thread must survive anything; say what happened
        _LOGGER.exception("Token cache %s: unexpected error while saving tokens", partition.path)


_WRITER = _Writer()
atexit.register(_WRITER.flush_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WRITER.after_fork)


class PersistentTokenCache:
    """A token cache persisted in files, encrypted by default, shared between processes.

    Create it with :meth:`open`. The access-token methods match
    :class:`~cache.memory.MemoryTokenCache`; other records live in :meth:`partition`.

    Every method may raise a :class:`~cache.errors.TokenCacheError`: reads
    :class:`~cache.errors.UnsafeCachePathError` (a link appeared at the path) or
    :class:`~cache.errors.CacheStorageError` (the file cannot be read); writes also
    :class:`~cache.errors.CacheLockTimeoutError`. A failed write leaves the file as it was and the
    next read reloads it. Unreadable content is never an error (an empty cache and a WARNING).
    """

    def __init__(self, name: str, directory: Path, non_cae: CachePartition, cae: CachePartition) -> None:
        self.name = name
        self.directory = directory
        self._non_cae = non_cae
        self._cae = cae

    @classmethod
    def open(
        cls,
        name: str = DEFAULT_NAME,
        *,
        allow_unencrypted_storage: bool = False,
        directory: str | os.PathLike[str] | None = None,
        fsync: bool = True,
        lock_timeout: float = LOCK_TIMEOUT,
        write_behind: bool = False,
    ) -> PersistentTokenCache:
        """Open (creating if needed) the cache ``name``.

        Args:
            name: the cache name (azure-identity's ``TokenCachePersistenceOptions.name``); a file
                name, to which ``.nocae`` / ``.cae`` are appended.
            allow_unencrypted_storage: without a usable keyring, store the documents as plaintext
                (0600) instead of failing; logged at WARNING once per process and name.
            directory: where the files live (default: :func:`default_directory`).
            fsync: fsync every write (durability across power loss; atomicity does not need it).
            lock_timeout: seconds a write waits for another process's lock.
            write_behind: one cache object per name (and directory) in the process, shared by
                every caller that opens it with ``write_behind=True``; :meth:`put` stores the
                access token in memory and returns; the process's
                cache writer thread writes it to the file (under the lock, merged, fsynced and
                renamed as any write) moments later, together with any other token stored
                meanwhile. A failed background write is logged at WARNING. Pending writes are
                flushed at interpreter exit and by :meth:`flush`; a process killed before that
                loses them (the file stays readable). Refresh tokens, accounts and other records
                (:meth:`CachePartition.add_records`) are always written before the call returns.

        Raises:
            PersistenceUnavailableError: no usable keyring and ``allow_unencrypted_storage`` is
                False (a ``ValueError``; the message says what is missing and how to opt in).
            UnsafeCachePathError: a cache or lock path is a link or not a regular file.
            CacheStorageError: the directory or a file cannot be created or read.
            ValueError: ``name`` is not a plain file name.
        """
        _check_name(name)
        folder = Path(directory) if directory is not None else default_directory()
        problem = keyring_problem()
        if problem is not None and not allow_unencrypted_storage:
            raise PersistenceUnavailableError(problem)  # before anything is created on disk
        ensure_private_directory(folder)
        codec: Codec = PlaintextCodec()
        if problem is None:
            key_lock = InterProcessLock(
                folder / f"{name}{NON_CAE_SUFFIX}{AesGcmCodec.suffix}{LOCK_SUFFIX}", timeout=lock_timeout
            )
            try:
                codec = AesGcmCodec(keyring_key(name, lock=key_lock))
            except PersistenceUnavailableError as exc:
                if not allow_unencrypted_storage:
                    raise
                problem = exc.reason
        if problem is not None:
            with _plaintext_warned_guard:
                first = name not in _plaintext_warned
                _plaintext_warned.add(name)
            if first:
                _LOGGER.warning(
                    "Token cache %r is stored UNENCRYPTED in %s (allow_unencrypted_storage=True) because "
                    "it cannot be encrypted here: %s.",
                    name,
                    folder,
                    problem,
                )
        shared_key = (os.path.realpath(folder), name, codec.suffix, fsync, lock_timeout)
        with _SHARED_GUARD:
            cache = _SHARED.get(shared_key) if write_behind else None
        if cache is not None:
            for partition in (cache._non_cae, cache._cae):
                _refuse_link(partition.lock_path)
                len(partition)
            return cache
        partitions = [
            CachePartition(
                folder,
                name + suffix,
                codec,
                cae=cae,
                fsync=fsync,
                lock_timeout=lock_timeout,
                write_behind=write_behind,
            )
            for suffix, cae in ((NON_CAE_SUFFIX, False), (CAE_SUFFIX, True))
        ]
        for partition in partitions:
            _refuse_link(partition.lock_path)
            len(partition)  # reads the document: a link or an unreadable file fails here, not later
        cache = cls(name, folder, partitions[0], partitions[1])
        if write_behind:
            with _SHARED_GUARD:
                cache = _SHARED.setdefault(shared_key, cache)
        return cache

    @property
    def encrypted(self) -> bool:
        return self._non_cae._codec.encrypted

    def partition(self, *, cae: bool) -> CachePartition:
        """The CAE (``cae=True``) or non-CAE document, for refresh tokens, accounts and the like."""
        return self._cae if cae else self._non_cae

    def get(self, key: CacheKey) -> AccessTokenEntry | None:
        return (self._cae if key.cae else self._non_cae).get(key)

    def put(self, key: CacheKey, entry: AccessTokenEntry) -> None:
        (self._cae if key.cae else self._non_cae).put(key, entry)

    def remove(self, key: CacheKey) -> None:
        (self._cae if key.cae else self._non_cae).remove(key)

    def clear(self) -> None:
        """Remove every access token (both partitions); refresh tokens and accounts stay."""
        self._non_cae.clear()
        self._cae.clear()

    def __len__(self) -> int:
        return len(self._non_cae) + len(self._cae)

    def flush(self) -> None:
        """Write every pending (write-behind) change to the files now.

        Raises:
            TokenCacheError: a write failed (see :meth:`CachePartition.flush`).
        """
        self._non_cae.flush()
        self._cae.flush()

    @property
    def pending(self) -> int:
        """Changes stored in memory and not yet written (write-behind)."""
        return self._non_cae.pending + self._cae.pending

    def __repr__(self) -> str:
        return (
            f"PersistentTokenCache(name={self.name!r}, directory={str(self.directory)!r}, "
            f"encrypted={self.encrypted})"
        )


def _refuse_link(path: Path) -> None:
    if os.path.islink(path):
        raise UnsafeCachePathError(
            f"token cache lock file {path} is a symbolic link; the token cache refuses to follow links. "
            "Remove the link."
        )


def open_persistent_cache(
    name: str = DEFAULT_NAME,
    allow_unencrypted_storage: bool = False,
    *,
    directory: str | os.PathLike[str] | None = None,
    write_behind: bool = False,
) -> PersistentTokenCache:
    """The cache behind ``TokenCachePersistenceOptions(name=..., allow_unencrypted_storage=...)``.

    See :meth:`PersistentTokenCache.open` for the errors.
    """
    return PersistentTokenCache.open(
        name,
        allow_unencrypted_storage=allow_unencrypted_storage,
        directory=directory,
        write_behind=write_behind,
    )
