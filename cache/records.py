"""Refresh tokens, ID tokens and accounts of signed-in users, in memory or in a persistent cache.

:class:`RecordStore` is what the user sign-in credentials need from a store: add records, find them
by field, remove them if unchanged. :class:`~cache.persistent.CachePartition` is one (the records
live in the MSAL document next to the access tokens, shared with other processes);
:class:`MemoryRecords` is the in-memory one a credential without ``cache_persistence_options`` uses
(the same MSAL-shaped records, in a :class:`~cache.schema.CacheDocument` nobody serialises).
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Protocol, TypeVar

from cache.schema import (
    AccessTokenRecord,
    AccountRecord,
    AppMetadataRecord,
    CacheDocument,
    IdTokenRecord,
    Record,
    RefreshTokenRecord,
)

__all__ = ["MemoryRecords", "RecordStore"]

R = TypeVar("R", AccessTokenRecord, RefreshTokenRecord, IdTokenRecord, AccountRecord, AppMetadataRecord)


class RecordStore(Protocol):
    """Where a user credential keeps refresh tokens, ID tokens and accounts."""

    def add_records(self, *records: Record) -> None:
        """Store ``records``, each replacing the entry under its key."""
        ...

    def find(self, record_type: type[R], **fields: object) -> list[R]:
        """The records of ``record_type`` whose fields equal ``fields``."""
        ...

    def remove_records(self, *records: Record) -> int:
        """Remove each record whose entry still equals it; how many were removed."""
        ...


class MemoryRecords:
    """A :class:`RecordStore` in memory (thread-safe)."""

    def __init__(self) -> None:
        self._document = CacheDocument()
        self._lock = threading.Lock()

    def add_records(self, *records: Record) -> None:
        with self._lock:
            for record in records:
                self._document.put(record)

    def find(self, record_type: type[R], **fields: object) -> list[R]:
        names = {f.name for f in dataclasses.fields(record_type)}
        unknown = set(fields) - names
        if unknown:
            raise TypeError(f"{record_type.__name__} has no field {', '.join(sorted(unknown))}")
        with self._lock:
            return [
                record
                for _, record in self._document.records(record_type)
                if all(getattr(record, name) == value for name, value in fields.items())
            ]

    def remove_records(self, *records: Record) -> int:
        removed = 0
        with self._lock:
            for record in records:
                key = record.key()
                if self._document.record_at(record.section, key) == record:
                    removed += self._document.remove(record.section, key)
        return removed

    def __repr__(self) -> str:
        return "MemoryRecords()"
