"""MSAL's unified token-cache document: typed records over raw JSON that another library's data
survives.

The document is the JSON object MSAL serializes (msal 1.39.0 ``msal/token_cache.py``
``SerializableTokenCache.serialize``; reference ``entra-protocol.md`` §7.1), so a plaintext cache we
write is read by azure-identity / msal-extensions and the reverse:

* top-level sections ``AccessToken``, ``RefreshToken``, ``IdToken``, ``Account``, ``AppMetadata``,
  each an object mapping an entry key to an entry object; an empty document is ``{}`` (MSAL's
  ``deserialize`` takes an empty string as an empty cache, too);
* entry keys are the entry's fields joined by ``-`` and lower-cased, except AppMetadata's
  (:meth:`AccessTokenRecord.key` and the other ``key`` methods give the exact formats);
* times (``cached_at``, ``expires_on``, ``extended_expires_on``, ``refresh_on``,
  ``last_modification_time``) are decimal strings of epoch seconds ("Schema defines it as a
  string"); we read integers too;
* ``home_account_id`` is ``null`` for app-only tokens (the key then starts with ``-``);
  ``target`` is the space-joined, sorted scope list; ``token_type`` is always written
  (``"Bearer"`` by default); a refresh token of a token family carries ``family_id`` (the
  response's ``foci``, e.g. ``"1"``), and so does the application's AppMetadata entry;
* access tokens with ``ext_cache_key`` (msal 1.39.0: key type ``atext`` and the hash appended) or
  ``key_id`` (PoP / SSH certificates) answer only queries that name them, so they are kept but never
  served by :class:`~cache.memory.CacheKey` lookups.

Preservation rules (our write must not destroy anyone else's data): sections we do not know, fields
we do not know, and entries we cannot parse are kept exactly as they were (parsed records carry
their unknown fields in ``extra``); only entries that are not JSON objects, and known sections that
are not objects, are dropped. Parsing never raises: a document that is not a JSON object reads as an
empty one; both are logged at WARNING without any entry content (entries hold tokens).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from cache.memory import AccessTokenEntry, CacheKey

__all__ = [
    "ACCESS_TOKEN",
    "ACCOUNT",
    "APP_METADATA",
    "ID_TOKEN",
    "MSSTS",
    "REFRESH_TOKEN",
    "SECTIONS",
    "AccessTokenRecord",
    "AccountRecord",
    "AppMetadataRecord",
    "CacheDocument",
    "IdTokenRecord",
    "Record",
    "RefreshTokenRecord",
]

_LOGGER = logging.getLogger("cache")

ACCESS_TOKEN = "AccessToken"
REFRESH_TOKEN = "RefreshToken"
ID_TOKEN = "IdToken"
ACCOUNT = "Account"
APP_METADATA = "AppMetadata"
#: The sections MSAL writes, in its order.
SECTIONS = (ACCESS_TOKEN, REFRESH_TOKEN, ID_TOKEN, ACCOUNT, APP_METADATA)
#: ``authority_type`` of Entra ID (v2) accounts, work/school and personal alike (MSAL: "MSSTS means
#: AAD v2 for both AAD & MSA").
MSSTS = "MSSTS"
#: MSAL's key type segment for access tokens with an extended cache key.
_ACCESS_TOKEN_EXTENDED = "atext"

JsonObject = dict[str, Any]


class _MalformedEntry(ValueError):
    """An entry of a known section lacks a field or has one of the wrong type (internal)."""


def _join_key(*parts: str | None) -> str:
    """MSAL's key: the parts joined by ``-`` (``None`` as empty), lower-cased."""
    return "-".join(part or "" for part in parts).lower()


def _string(raw: Mapping[str, object], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str):
        raise _MalformedEntry(name)
    return value


def _optional_string(raw: Mapping[str, object], name: str, default: str | None = None) -> str | None:
    value = raw.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _MalformedEntry(name)
    return value


def _optional_time(raw: Mapping[str, object], name: str) -> int | None:
    """A time field: MSAL writes decimal strings; integers are accepted as well."""
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        raise _MalformedEntry(name)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:  # not decimal digits (or more of them than int() accepts)
            raise _MalformedEntry(name) from None
    raise _MalformedEntry(name)


def _time(raw: Mapping[str, object], name: str) -> int:
    value = _optional_time(raw, name)
    if value is None:
        raise _MalformedEntry(name)
    return value


def _credential_type(raw: Mapping[str, object], expected: str) -> None:
    value = raw.get("credential_type", expected)
    if value != expected:
        raise _MalformedEntry("credential_type")


def _extra(raw: Mapping[str, object], known: frozenset[str]) -> dict[str, Any]:
    return {name: value for name, value in raw.items() if name not in known}


def _with_extra(fields: JsonObject, extra: Mapping[str, Any]) -> JsonObject:
    for name, value in extra.items():
        fields.setdefault(name, value)
    return fields


@dataclass(frozen=True, slots=True)
class AccessTokenRecord:
    """An ``AccessToken`` entry (the secret is kept out of ``repr``).

    Attributes:
        secret: the access token.
        home_account_id: ``"{uid}.{utid}"`` of the user, ``None`` for app-only tokens.
        environment: the authority host, lower-case.
        client_id: the application (the cache client id).
        realm: the tenant the token was issued by.
        target: the scopes, sorted and space-joined.
        token_type: ``"Bearer"`` unless a PoP / SSH-certificate token.
        cached_at, expires_on, extended_expires_on, refresh_on: epoch seconds.
        key_id: PoP / SSH-certificate key id (such entries are never served to plain queries).
        ext_cache_key: msal's extended cache key (ditto).
        extra: fields we do not know, written back unchanged.
    """

    section: ClassVar[str] = ACCESS_TOKEN
    _KNOWN: ClassVar[frozenset[str]] = frozenset(
        {
            "credential_type",
            "secret",
            "home_account_id",
            "environment",
            "client_id",
            "realm",
            "target",
            "token_type",
            "cached_at",
            "expires_on",
            "extended_expires_on",
            "refresh_on",
            "key_id",
            "ext_cache_key",
        }
    )

    secret: str = field(repr=False)
    home_account_id: str | None
    environment: str
    client_id: str
    realm: str
    target: str
    token_type: str
    cached_at: int
    expires_on: int
    extended_expires_on: int
    refresh_on: int | None = None
    key_id: str | None = None
    ext_cache_key: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def key(self) -> str:
        """``{home_account_id}-{environment}-accesstoken-{client_id}-{realm}-{target}``, lower-case;
        with an extended cache key the type is ``atext`` and ``-{ext_cache_key}`` is appended."""
        if self.ext_cache_key:
            return _join_key(
                self.home_account_id,
                self.environment,
                _ACCESS_TOKEN_EXTENDED,
                self.client_id,
                self.realm,
                self.target,
                self.ext_cache_key,
            )
        return _join_key(
            self.home_account_id, self.environment, ACCESS_TOKEN, self.client_id, self.realm, self.target
        )

    def to_json(self) -> JsonObject:
        fields: JsonObject = {
            "credential_type": ACCESS_TOKEN,
            "secret": self.secret,
            "home_account_id": self.home_account_id,
            "environment": self.environment,
            "client_id": self.client_id,
            "target": self.target,
            "realm": self.realm,
            "token_type": self.token_type,
            "cached_at": str(self.cached_at),
            "expires_on": str(self.expires_on),
            "extended_expires_on": str(self.extended_expires_on),
        }
        if self.refresh_on is not None:
            fields["refresh_on"] = str(self.refresh_on)
        if self.key_id is not None:
            fields["key_id"] = self.key_id
        if self.ext_cache_key is not None:
            fields["ext_cache_key"] = self.ext_cache_key
        return _with_extra(fields, self.extra)

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> AccessTokenRecord:
        _credential_type(raw, ACCESS_TOKEN)
        expires_on = _time(raw, "expires_on")
        extended = _optional_time(raw, "extended_expires_on")
        return cls(
            secret=_string(raw, "secret"),
            home_account_id=_optional_string(raw, "home_account_id") or None,
            environment=_string(raw, "environment"),
            client_id=_string(raw, "client_id"),
            realm=_optional_string(raw, "realm", "") or "",
            target=_optional_string(raw, "target", "") or "",
            token_type=_optional_string(raw, "token_type", "Bearer") or "Bearer",
            cached_at=_optional_time(raw, "cached_at") or 0,
            expires_on=expires_on,
            extended_expires_on=expires_on if extended is None else extended,
            refresh_on=_optional_time(raw, "refresh_on"),
            key_id=_optional_string(raw, "key_id"),
            ext_cache_key=_optional_string(raw, "ext_cache_key"),
            extra=_extra(raw, cls._KNOWN),
        )

    @classmethod
    def from_entry(cls, key: CacheKey, entry: AccessTokenEntry, *, now: int) -> AccessTokenRecord:
        """The record of one of our cache entries: ``account`` -> ``home_account_id``, ``tenant`` ->
        ``realm``, sorted scopes -> ``target``; ``cached_at`` is ``now``. The CAE flag is not a field:
        it selects the document (``.cae`` / ``.nocae``)."""
        return cls(
            secret=entry.token,
            home_account_id=key.account,
            environment=key.environment,
            client_id=key.client_id,
            realm=key.tenant,
            target=" ".join(key.scopes),
            token_type=entry.token_type,
            cached_at=now,
            expires_on=entry.expires_on,
            extended_expires_on=entry.expires_on,
            refresh_on=entry.refresh_on,
        )

    def cache_key(self, *, cae: bool) -> CacheKey | None:
        """Our key for this token in the ``cae`` document; ``None`` for tokens that only answer
        queries naming their ``key_id`` or ``ext_cache_key`` (MSAL keeps those apart, too)."""
        if self.key_id is not None or self.ext_cache_key is not None:
            return None
        return CacheKey.for_access_token(
            environment=self.environment,
            tenant=self.realm,
            client_id=self.client_id,
            scopes=self.target.split(),
            cae=cae,
            account=self.home_account_id,
        )

    def to_entry(self) -> AccessTokenEntry:
        return AccessTokenEntry(
            token=self.secret,
            token_type=self.token_type,
            expires_on=self.expires_on,
            refresh_on=self.refresh_on,
        )


@dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    """A ``RefreshToken`` entry (the secret is kept out of ``repr``).

    Refresh tokens are tenant-independent in Entra ID, so the key has an empty realm. Rotation
    rewrites the secret of the same entry (the key has no secret), as MSAL's ``update_rt`` does.

    Attributes:
        secret: the refresh token.
        home_account_id: the user (``None`` is possible for foreign entries).
        environment: the authority host.
        client_id: the application.
        target: the scopes it was issued with (optional in the schema: ``""`` when absent).
        last_modification_time: epoch seconds of the last write, if known.
        family_id: the token family (FOCI), e.g. ``"1"``.
        extra: fields we do not know, written back unchanged.
    """

    section: ClassVar[str] = REFRESH_TOKEN
    _KNOWN: ClassVar[frozenset[str]] = frozenset(
        {
            "credential_type",
            "secret",
            "home_account_id",
            "environment",
            "client_id",
            "target",
            "last_modification_time",
            "family_id",
        }
    )

    secret: str = field(repr=False)
    home_account_id: str | None
    environment: str
    client_id: str
    target: str = ""
    last_modification_time: int | None = None
    family_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def key(self) -> str:
        """``{home_account_id}-{environment}-refreshtoken-{client_id}--{target}``, lower-case."""
        return _join_key(
            self.home_account_id, self.environment, REFRESH_TOKEN, self.client_id, "", self.target
        )

    def to_json(self) -> JsonObject:
        fields: JsonObject = {
            "credential_type": REFRESH_TOKEN,
            "secret": self.secret,
            "home_account_id": self.home_account_id,
            "environment": self.environment,
            "client_id": self.client_id,
            "target": self.target,
        }
        if self.last_modification_time is not None:
            fields["last_modification_time"] = str(self.last_modification_time)
        if self.family_id is not None:
            fields["family_id"] = self.family_id
        return _with_extra(fields, self.extra)

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> RefreshTokenRecord:
        _credential_type(raw, REFRESH_TOKEN)
        return cls(
            secret=_string(raw, "secret"),
            home_account_id=_optional_string(raw, "home_account_id") or None,
            environment=_string(raw, "environment"),
            client_id=_string(raw, "client_id"),
            target=_optional_string(raw, "target", "") or "",
            last_modification_time=_optional_time(raw, "last_modification_time"),
            family_id=_optional_string(raw, "family_id"),
            extra=_extra(raw, cls._KNOWN),
        )


@dataclass(frozen=True, slots=True)
class IdTokenRecord:
    """An ``IdToken`` entry (the token is kept out of ``repr``)."""

    section: ClassVar[str] = ID_TOKEN
    _KNOWN: ClassVar[frozenset[str]] = frozenset(
        {"credential_type", "secret", "home_account_id", "environment", "realm", "client_id"}
    )

    secret: str = field(repr=False)
    home_account_id: str | None
    environment: str
    realm: str
    client_id: str
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def key(self) -> str:
        """``{home_account_id}-{environment}-idtoken-{client_id}-{realm}-`` (the schema's empty
        scope at the end), lower-case."""
        return _join_key(self.home_account_id, self.environment, ID_TOKEN, self.client_id, self.realm, "")

    def to_json(self) -> JsonObject:
        fields: JsonObject = {
            "credential_type": ID_TOKEN,
            "secret": self.secret,
            "home_account_id": self.home_account_id,
            "environment": self.environment,
            "realm": self.realm,
            "client_id": self.client_id,
        }
        return _with_extra(fields, self.extra)

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> IdTokenRecord:
        _credential_type(raw, ID_TOKEN)
        return cls(
            secret=_string(raw, "secret"),
            home_account_id=_optional_string(raw, "home_account_id") or None,
            environment=_string(raw, "environment"),
            realm=_optional_string(raw, "realm", "") or "",
            client_id=_string(raw, "client_id"),
            extra=_extra(raw, cls._KNOWN),
        )


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """An ``Account`` entry: who signed in, in which tenant.

    Attributes:
        home_account_id: ``"{uid}.{utid}"`` from ``client_info``.
        environment: the authority host.
        realm: the tenant.
        local_account_id: the object id in that tenant (``oid``, else ``sub``).
        username: ``preferred_username`` (never null in the schema: ``""`` when unknown).
        authority_type: :data:`MSSTS` for Entra ID, ``"ADFS"`` for AD FS.
        account_source: the grant that created it (``authorization_code``, ``password``,
            ``urn:ietf:params:oauth:grant-type:device_code``, ...), if recorded.
        extra: fields we do not know, written back unchanged.
    """

    section: ClassVar[str] = ACCOUNT
    _KNOWN: ClassVar[frozenset[str]] = frozenset(
        {
            "home_account_id",
            "environment",
            "realm",
            "local_account_id",
            "username",
            "authority_type",
            "account_source",
        }
    )

    home_account_id: str
    environment: str
    realm: str
    local_account_id: str
    username: str = ""
    authority_type: str = MSSTS
    account_source: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def key(self) -> str:
        """``{home_account_id}-{environment}-{realm}``, lower-case."""
        return _join_key(self.home_account_id, self.environment, self.realm)

    def to_json(self) -> JsonObject:
        fields: JsonObject = {
            "home_account_id": self.home_account_id,
            "environment": self.environment,
            "realm": self.realm,
            "local_account_id": self.local_account_id,
            "username": self.username,
            "authority_type": self.authority_type,
        }
        if self.account_source is not None:
            fields["account_source"] = self.account_source
        return _with_extra(fields, self.extra)

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> AccountRecord:
        return cls(
            home_account_id=_string(raw, "home_account_id"),
            environment=_string(raw, "environment"),
            realm=_optional_string(raw, "realm", "") or "",
            local_account_id=_optional_string(raw, "local_account_id", "") or "",
            username=_optional_string(raw, "username", "") or "",
            authority_type=_string(raw, "authority_type"),
            account_source=_optional_string(raw, "account_source"),
            extra=_extra(raw, cls._KNOWN),
        )


@dataclass(frozen=True, slots=True)
class AppMetadataRecord:
    """An ``AppMetadata`` entry: whether the application belongs to a token family."""

    section: ClassVar[str] = APP_METADATA
    _KNOWN: ClassVar[frozenset[str]] = frozenset({"client_id", "environment", "family_id"})

    client_id: str
    environment: str
    family_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def key(self) -> str:
        """``appmetadata-{environment}-{client_id}`` (the one key MSAL does not lower-case)."""
        return f"appmetadata-{self.environment}-{self.client_id}"

    def to_json(self) -> JsonObject:
        fields: JsonObject = {"client_id": self.client_id, "environment": self.environment}
        if self.family_id is not None:
            fields["family_id"] = self.family_id
        return _with_extra(fields, self.extra)

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> AppMetadataRecord:
        return cls(
            client_id=_string(raw, "client_id"),
            environment=_string(raw, "environment"),
            family_id=_optional_string(raw, "family_id"),
            extra=_extra(raw, cls._KNOWN),
        )


Record = AccessTokenRecord | RefreshTokenRecord | IdTokenRecord | AccountRecord | AppMetadataRecord
R = TypeVar("R", AccessTokenRecord, RefreshTokenRecord, IdTokenRecord, AccountRecord, AppMetadataRecord)

_RECORD_TYPES: dict[str, Any] = {
    ACCESS_TOKEN: AccessTokenRecord,
    REFRESH_TOKEN: RefreshTokenRecord,
    ID_TOKEN: IdTokenRecord,
    ACCOUNT: AccountRecord,
    APP_METADATA: AppMetadataRecord,
}


class CacheDocument:
    """One token-cache document: the raw JSON object plus typed records of the entries we understand.

    Everything is kept in the raw object, so serializing writes back other libraries' sections,
    fields and entries untouched; :meth:`put` and :meth:`remove` change one entry at a time (by its
    key), which is how concurrent writers merge. Each entry's JSON text is kept once computed, so
    writing a document of *n* entries after changing one encodes one entry and joins *n* strings.
    Not thread-safe: the owner serialises access.
    """

    __slots__ = ("_fragments", "_raw", "_records", "problems", "readable")

    def __init__(self) -> None:
        #: what was wrong with the serialized document (no content), empty if nothing
        self.problems: list[str] = []
        #: False when the serialized document was not a JSON object (and reads as empty)
        self.readable = True
        self._raw: JsonObject = {}
        #: section -> entry key -> record, for the entries that parsed.
        self._records: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
        #: section -> entry key -> the entry's ``"key":{...}`` JSON text, once computed.
        self._fragments: dict[str, dict[str, bytes]] = {section: {} for section in SECTIONS}

    @classmethod
    def parse(
        cls, data: bytes, *, previous: CacheDocument | None = None, source: str = "", log: bool = True
    ) -> CacheDocument:
        """Parse a serialized document; never raises.

        Args:
            data: the document (UTF-8 JSON); empty means an empty cache.
            previous: the document this one replaces: entries equal to one of its entries reuse its
                record objects (so unchanged entries keep their identity and cost no parsing).
            source: names the document in log messages (a file name; never content).
            log: log :attr:`problems` at WARNING (one message per document).

        Returns:
            The document; an empty one, not :attr:`readable`, if ``data`` is not a JSON object.
            Entries of known sections that do not parse are kept as they are and not indexed;
            entries that are not objects, and known sections that are not objects, are dropped.
            :attr:`problems` lists what was skipped, by section, without any content.
        """
        document = cls()
        if not data.strip():
            return document
        problems = document.problems
        try:
            raw = json.loads(data)
        except (ValueError, RecursionError):  # invalid JSON or UTF-8; absurd nesting
            raw = None
            problems.append("it is not valid JSON; reading it as an empty cache")
        if raw is not None and not isinstance(raw, dict):
            problems.append("it is not a JSON object; reading it as an empty cache")
        if not isinstance(raw, dict):
            document.readable = False
            if log:
                _LOGGER.warning("Token cache %s: %s.", source or "document", "; ".join(problems))
            return document
        for section in SECTIONS:
            entries = raw.get(section)
            if entries is None:
                continue
            if not isinstance(entries, dict):
                problems.append(f"section {section} is not an object (dropped)")
                del raw[section]
                continue
            previous_entries: Mapping[str, object] = {}
            previous_records: Mapping[str, Any] = {}
            previous_fragments: Mapping[str, bytes] = {}
            if previous is not None:
                previous_entries = previous._raw.get(section) or {}
                previous_records = previous._records[section]
                previous_fragments = previous._fragments[section]
            records = document._records[section]
            fragments = document._fragments[section]
            record_type = _RECORD_TYPES[section]
            dropped = malformed = 0
            for key in list(entries):
                entry = entries[key]
                if not isinstance(entry, dict):
                    del entries[key]
                    dropped += 1
                    continue
                if key in previous_entries and previous_entries[key] == entry:
                    fragment = previous_fragments.get(key)
                    if fragment is not None:
                        fragments[key] = fragment
                    known = previous_records.get(key)
                    if known is not None:
                        records[key] = known
                        continue
                try:
                    records[key] = record_type.from_json(entry)
                except _MalformedEntry:
                    malformed += 1
            if dropped:
                problems.append(f"{dropped} {section} entries that are not objects (dropped)")
            if malformed:
                problems.append(f"{malformed} malformed {section} entries (kept, not used)")
        if problems and log:
            _LOGGER.warning("Token cache %s: %s.", source or "document", "; ".join(problems))
        document._raw = raw
        return document

    def to_bytes(self) -> bytes:
        """The document as compact UTF-8 JSON (MSAL reads any JSON layout); equal to
        ``json.dumps(raw, separators=(",", ":")).encode()``."""
        pieces: list[bytes] = []
        for name, value in self._raw.items():
            pieces.append(b"," if pieces else b"{")
            pieces.append(_dumps(name))
            if name in self._fragments and isinstance(value, dict):
                fragments = self._fragments[name]
                separator = b":{"
                for key, entry in value.items():
                    text = fragments.get(key)
                    if text is None:
                        text = fragments[key] = _dumps(key) + b":" + _dumps(entry)
                    pieces.append(separator)
                    pieces.append(text)
                    separator = b","
                pieces.append(b"}" if separator == b"," else b":{}")
            else:
                pieces.append(b":")
                pieces.append(_dumps(value))
        pieces.append(b"}" if pieces else b"{}")
        return b"".join(pieces)

    def records(self, record_type: type[R]) -> Iterator[tuple[str, R]]:
        """``(entry key, record)`` for every entry of ``record_type``'s section that parsed."""
        yield from self._records[record_type.section].items()

    def access_tokens(self) -> Mapping[str, AccessTokenRecord]:
        """Entry key -> record of the access tokens that parsed (a live view: do not modify)."""
        return self._records[ACCESS_TOKEN]

    def get(self, record_type: type[R], key: str) -> R | None:
        """The record stored under ``key``, if it parsed."""
        record: R | None = self._records[record_type.section].get(key)
        return record

    def record_at(self, section: str, key: str) -> Record | None:
        """The record stored under ``key`` in ``section``, if it parsed."""
        record: Record | None = self._records[section].get(key)
        return record

    def put(self, record: Record) -> str:
        """Store ``record`` under its key (replacing that entry whole, as MSAL does); returns the key."""
        key = record.key()
        self._raw.setdefault(record.section, {})[key] = record.to_json()
        self._records[record.section][key] = record
        self._fragments[record.section].pop(key, None)
        return key

    def remove(self, section: str, key: str) -> bool:
        """Remove the entry ``key`` of ``section``, parsed or not; ``True`` if there was one."""
        entries = self._raw.get(section)
        self._records[section].pop(key, None)
        self._fragments[section].pop(key, None)
        if isinstance(entries, dict) and key in entries:
            del entries[key]
            return True
        return False

    def keys(self, section: str) -> list[str]:
        """The keys of every entry of ``section``, parsed or not."""
        entries = self._raw.get(section)
        return list(entries) if isinstance(entries, dict) else []

    def section_size(self, section: str) -> int:
        """How many entries ``section`` holds, parsed or not."""
        entries = self._raw.get(section)
        return len(entries) if isinstance(entries, dict) else 0

    def raw(self) -> JsonObject:
        """The raw JSON object (for inspection; do not modify)."""
        return self._raw


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
