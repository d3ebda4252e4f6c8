"""cache.persistent: a drop-in for MemoryTokenCache backed by two MSAL documents, encrypted by
default, plaintext only when allowed, merging writes by entry key, reading at the cost of a stat."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cache.encrypted import KEYRING_SERVICE, AesGcmCodec
from cache.errors import PersistenceUnavailableError, UnsafeCachePathError
from cache.memory import AccessTokenEntry, CacheKey, MemoryTokenCache
from cache.persistent import (
    AccessTokenIndex,
    CachePartition,
    PersistentTokenCache,
    PlaintextCodec,
    default_directory,
    open_persistent_cache,
)
from cache.schema import (
    AccessTokenRecord,
    AccountRecord,
    AppMetadataRecord,
    CacheDocument,
    IdTokenRecord,
    RefreshTokenRecord,
)
from tests.cache.keyrings import MemoryKeyring

NOW = int(time.time())
Opener = Callable[..., PersistentTokenCache]


def key(*scopes: str, cae: bool = False, tenant: str = "tenant-a", account: str | None = None) -> CacheKey:
    return CacheKey.for_access_token(
        environment="login.microsoftonline.com",
        tenant=tenant,
        client_id="client-a",
        scopes=scopes or ("https://vault.azure.net/.default",),
        cae=cae,
        account=account,
    )


def entry(token: str, *, expires_in: int = 3600) -> AccessTokenEntry:
    return AccessTokenEntry(token=token, token_type="Bearer", expires_on=NOW + expires_in, refresh_on=None)


def plaintext(directory: Path, name: str = "app") -> PersistentTokenCache:
    return PersistentTokenCache.open(name, allow_unencrypted_storage=True, directory=directory)


def encrypted(directory: Path, name: str = "app") -> PersistentTokenCache:
    cache = PersistentTokenCache.open(name, directory=directory)
    assert cache.encrypted
    return cache


def age(path: Path, seconds: float = 10) -> None:
    old = time.time_ns() - int(seconds * 1e9)
    os.utime(path, ns=(old, old))


@pytest.fixture(params=["plaintext", "encrypted"])
def opener(request: pytest.FixtureRequest, memory_keyring: MemoryKeyring) -> Opener:
    if request.param == "plaintext":
        import keyring
        import keyring.backends.fail

        keyring.set_keyring(keyring.backends.fail.Keyring())
        return plaintext
    return encrypted


# --- a drop-in for MemoryTokenCache --------------------------------------------------------------


def test_same_operations_as_the_memory_cache(opener: Opener, tmp_path: Path) -> None:
    persistent, memory = opener(tmp_path), MemoryTokenCache()
    for cache in (persistent, memory):
        assert cache.get(key()) is None
        token = entry("CANARY-1")
        cache.put(key(), token)
        assert cache.get(key()) is token  # the very object: TokenCore compares identities
        cache.put(key(cae=True), entry("CANARY-CAE"))
        cache.put(key("other/.default"), entry("CANARY-2"))
        assert len(cache) == 3
        cache.remove(key("other/.default"))
        cache.remove(key("never/.default"))
        assert len(cache) == 2
        assert cache.get(key(cae=True)) == entry("CANARY-CAE")
        cache.clear()
        assert len(cache) == 0
        assert cache.get(key()) is None


def test_tokens_are_shared_by_caches_with_the_same_name_only(opener: Opener, tmp_path: Path) -> None:
    first = opener(tmp_path)
    first.put(key(), entry("CANARY-SHARED"))
    assert opener(tmp_path).get(key()) == entry("CANARY-SHARED")
    assert opener(tmp_path, name="other").get(key()) is None


def test_cae_and_non_cae_tokens_live_in_separate_documents(tmp_path: Path) -> None:
    cache = plaintext(tmp_path)
    cache.put(key(), entry("CANARY-PLAIN"))
    cache.put(key(cae=True), entry("CANARY-CAE"))
    nocae = json.loads((tmp_path / "app.nocae").read_bytes())
    cae = json.loads((tmp_path / "app.cae").read_bytes())
    assert [e["secret"] for e in nocae["AccessToken"].values()] == ["CANARY-PLAIN"]
    assert [e["secret"] for e in cae["AccessToken"].values()] == ["CANARY-CAE"]
    assert cache.get(key()) == entry("CANARY-PLAIN")
    assert cache.get(key(cae=True)) == entry("CANARY-CAE")


def test_writers_merge_by_entry_key(opener: Opener, tmp_path: Path) -> None:
    """Each instance stands for a process: its view is stale when it writes, yet nothing is lost."""
    first, second = opener(tmp_path), opener(tmp_path)
    assert first.get(key("a")) is None
    assert second.get(key("b")) is None
    first.put(key("a"), entry("CANARY-A"))
    second.put(key("b"), entry("CANARY-B"))
    first.put(key("c"), entry("CANARY-C"))
    second.remove(key("a"))
    third = opener(tmp_path)
    assert third.get(key("a")) is None
    assert third.get(key("b")) == entry("CANARY-B")
    assert third.get(key("c")) == entry("CANARY-C")
    assert first.get(key("b")) == entry("CANARY-B")  # and the first instance sees the others' writes


def test_threads_lose_nothing(opener: Opener, tmp_path: Path) -> None:
    cache = opener(tmp_path)

    def write(first: int) -> None:
        for i in range(first, first + 25):
            cache.put(key(f"s{i}"), entry(f"CANARY-{i}"))

    threads = [threading.Thread(target=write, args=(n * 25,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(opener(tmp_path)) == 100


def test_a_deferred_refresh_stays_in_memory(opener: Opener, tmp_path: Path) -> None:
    cache = opener(tmp_path)
    cache.put(key(), entry("CANARY"))
    path = cache.partition(cae=False).path
    before = os.stat(path)
    deferred = entry("CANARY").deferred(time.time())
    cache.put(key(), deferred)
    assert cache.get(key()) is deferred
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_expired_tokens_are_dropped_on_write(opener: Opener, tmp_path: Path) -> None:
    cache = opener(tmp_path)
    cache.put(key("old"), entry("CANARY-OLD", expires_in=-10))
    cache.put(key("new"), entry("CANARY-NEW"))
    assert cache.get(key("old")) is None
    assert len(opener(tmp_path)) == 1


def test_an_unchanged_file_costs_one_stat_per_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = plaintext(tmp_path)
    cache.put(key(), entry("CANARY"))
    age(cache.partition(cae=False).path)
    assert cache.get(key()) == entry("CANARY")  # reads the file once, then trusts its signature
    counts = dict.fromkeys(["lstat", "stat", "open", "read", "fstat"], 0)
    for name in counts:
        real = getattr(os, name)

        def counted(*args: Any, _name: str = name, _real: Any = real, **kwargs: Any) -> Any:
            counts[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(os, name, counted)
    for _ in range(1000):
        assert cache.get(key()) is not None
    assert counts == {"lstat": 1000, "stat": 0, "open": 0, "read": 0, "fstat": 0}


def test_a_cache_never_written_costs_one_stat_per_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = plaintext(tmp_path)
    calls: list[str] = []
    for name in ("lstat", "open", "read"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda *a, _n=name, _r=real, **k: calls.append(_n) or _r(*a, **k))
    for _ in range(10):
        assert cache.get(key()) is None
    assert calls == ["lstat"] * 10


def test_lookups_cost_the_same_with_many_tokens(tmp_path: Path) -> None:
    index = AccessTokenIndex(cae=False)
    document = CacheDocument()
    for i in range(5000):
        document.put(AccessTokenRecord.from_entry(key(f"s{i}"), entry(f"T{i}"), now=NOW))
    index.sync(document.access_tokens())
    assert len(index.entries) == 5000
    assert index.entries[key("s4321")].token == "T4321"  # a dict probe


# --- encrypted by default, plaintext only when allowed -------------------------------------------


def test_encrypted_by_default_next_to_the_plaintext_name(
    memory_keyring: MemoryKeyring, tmp_path: Path, canary: str
) -> None:
    cache = encrypted(tmp_path)
    cache.put(key(), entry(canary))
    cache.put(key(cae=True), entry(canary))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.cae.encrypted", "app.nocae.encrypted"]
    for path in tmp_path.iterdir():
        assert canary.encode() not in path.read_bytes()
        assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert list(memory_keyring.store) == [(KEYRING_SERVICE, "app")]  # only the key is in the keyring
    assert encrypted(tmp_path).get(key()) == entry(canary)


def test_no_keyring_and_no_opt_in_fails_before_touching_the_disk(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    with pytest.raises(ValueError, match="allow_unencrypted_storage=True") as raised:
        PersistentTokenCache.open("app", directory=directory)
    assert isinstance(raised.value, PersistenceUnavailableError)
    assert "Secret Service" in str(raised.value) or "Keychain" in str(raised.value)
    assert not directory.exists()


def test_no_keyring_with_opt_in_is_plaintext_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, canary: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="cache"):
        cache = PersistentTokenCache.open("opt-in", allow_unencrypted_storage=True, directory=tmp_path)
        PersistentTokenCache.open("opt-in", allow_unencrypted_storage=True, directory=tmp_path)
        cache.put(key(), entry(canary))
    assert not cache.encrypted
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "UNENCRYPTED" in warnings[0].getMessage()
    assert canary not in caplog.text
    document = json.loads((tmp_path / "opt-in.nocae").read_bytes())
    assert [e["secret"] for e in document["AccessToken"].values()] == [canary]
    assert oct((tmp_path / "opt-in.nocae").stat().st_mode & 0o777) == "0o600"


def test_a_usable_keyring_encrypts_even_when_plaintext_is_allowed(
    memory_keyring: MemoryKeyring, tmp_path: Path
) -> None:
    assert PersistentTokenCache.open("app", allow_unencrypted_storage=True, directory=tmp_path).encrypted


def test_open_persistent_cache_is_the_identity_layers_entry(
    memory_keyring: MemoryKeyring, tmp_path: Path
) -> None:
    cache = open_persistent_cache("app", allow_unencrypted_storage=False, directory=tmp_path)
    assert (cache.name, cache.directory, cache.encrypted) == ("app", tmp_path, True)
    assert "CANARY" not in repr(cache)


def test_default_directory_is_azure_identitys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_directory() == tmp_path / ".IdentityService"


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x", "a\\b", "a\0b"])
def test_a_name_must_be_a_file_name(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid token cache name"):
        PersistentTokenCache.open(name, allow_unencrypted_storage=True, directory=tmp_path)


# --- unreadable documents: an empty cache and one warning ----------------------------------------


def write_then_mangle(
    tmp_path: Path, mangle: Callable[[bytes], bytes], canary: str, name: str = "app"
) -> PersistentTokenCache:
    cache = encrypted(tmp_path, name)
    cache.put(key(), entry(canary))
    path = cache.partition(cae=False).path
    path.write_bytes(mangle(path.read_bytes()))
    return cache


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda d: d[:40] + bytes([d[40] ^ 0x80]) + d[41:], "authentication failed"),
        (lambda d: d[: len(d) // 2], "authentication failed"),
        (lambda d: d[:15], "truncated"),
        (lambda d: d[:8] + b"\x07" + d[9:], "format version 7"),
    ],
    ids=["tampered", "truncated", "header-only", "version"],
)
def test_an_undecryptable_file_is_an_empty_cache_with_one_warning(
    mangle: Callable[[bytes], bytes],
    reason: str,
    memory_keyring: MemoryKeyring,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    canary: str,
) -> None:
    write_then_mangle(tmp_path, mangle, canary)
    with caplog.at_level(logging.WARNING, logger="cache"):
        reader = encrypted(tmp_path)
        for _ in range(3):
            assert reader.get(key()) is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert reason in warnings[0].getMessage()
    assert canary not in caplog.text
    reader.put(key("new"), entry("CANARY-AFTER"))  # the next write replaces the file
    assert encrypted(tmp_path).get(key("new")) == entry("CANARY-AFTER")


def test_a_wrong_key_is_an_empty_cache_never_plaintext(
    memory_keyring: MemoryKeyring, tmp_path: Path, caplog: pytest.LogCaptureFixture, canary: str
) -> None:
    encrypted(tmp_path).put(key(), entry(canary))
    import keyring

    other = MemoryKeyring()  # another keyring: another key for the same name
    keyring.set_keyring(other)
    with caplog.at_level(logging.WARNING, logger="cache"):
        cache = encrypted(tmp_path)
        assert cache.get(key()) is None
    assert "authentication failed" in caplog.text
    assert canary not in caplog.text
    assert not (tmp_path / "app.nocae").exists()


def test_files_swapped_between_partitions_do_not_decrypt(
    memory_keyring: MemoryKeyring, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = encrypted(tmp_path)
    cache.put(key(cae=True), entry("CANARY-CAE"))
    os.replace(tmp_path / "app.cae.encrypted", tmp_path / "app.nocae.encrypted")
    with caplog.at_level(logging.WARNING, logger="cache"):
        assert encrypted(tmp_path).get(key()) is None
    assert "authentication failed" in caplog.text


def test_a_plaintext_document_that_is_not_json_is_an_empty_cache(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "app.nocae").write_bytes(b'{"AccessToken": {"k": {"secret": "CANARY-PARTIAL')
    with caplog.at_level(logging.WARNING, logger="cache"):
        cache = plaintext(tmp_path)
        assert len(cache) == 0
    assert "not valid JSON" in caplog.text
    assert "CANARY" not in caplog.text
    cache.put(key(), entry("CANARY-NEW"))
    assert plaintext(tmp_path).get(key()) == entry("CANARY-NEW")


def test_links_at_the_cache_or_lock_path_are_refused_at_open(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("{}")
    (tmp_path / "app.nocae").symlink_to(target)
    with pytest.raises(UnsafeCachePathError, match="symbolic link"):
        plaintext(tmp_path)
    (tmp_path / "app.nocae").unlink()
    (tmp_path / "app.cae.lockfile").symlink_to(target)
    with pytest.raises(UnsafeCachePathError, match="symbolic link"):
        plaintext(tmp_path)
    assert target.read_text() == "{}"


# --- other records ---------------------------------------------------------------------------------


def refresh_token(secret: str, account: str = "uid.utid", family: str | None = None) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        secret=secret,
        home_account_id=account,
        environment="login.microsoftonline.com",
        client_id="client-a",
        target="offline_access openid profile",
        last_modification_time=NOW,
        family_id=family,
    )


def test_refresh_tokens_accounts_and_metadata(opener: Opener, tmp_path: Path) -> None:
    partition = opener(tmp_path).partition(cae=False)
    account = AccountRecord(
        home_account_id="uid.utid",
        environment="login.microsoftonline.com",
        realm="tenant-a",
        local_account_id="uid",
        username="user@contoso.com",
        account_source="urn:ietf:params:oauth:grant-type:device_code",
    )
    id_token = IdTokenRecord(
        secret="CANARY-ID",
        home_account_id="uid.utid",
        environment="login.microsoftonline.com",
        realm="tenant-a",
        client_id="client-a",
    )
    metadata = AppMetadataRecord(client_id="client-a", environment="login.microsoftonline.com", family_id="1")
    partition.add_records(refresh_token("CANARY-RT-1", family="1"), refresh_token("CANARY-OBO", "obo-hash"))
    partition.add_records(account, id_token, metadata)
    other = opener(tmp_path).partition(cae=False)
    assert [r.secret for r in other.find(RefreshTokenRecord, home_account_id="uid.utid")] == ["CANARY-RT-1"]
    assert [r.secret for r in other.find(RefreshTokenRecord, family_id="1")] == ["CANARY-RT-1"]
    assert other.find(AccountRecord) == [account]
    assert other.find(IdTokenRecord, realm="tenant-a") == [id_token]
    assert other.find(AppMetadataRecord, client_id="client-a") == [metadata]
    assert opener(tmp_path).partition(cae=True).find(RefreshTokenRecord) == []
    with pytest.raises(TypeError, match="no field nope"):
        other.find(RefreshTokenRecord, nope=1)


def test_rotation_replaces_the_entry_and_stale_removals_are_skipped(opener: Opener, tmp_path: Path) -> None:
    first = opener(tmp_path).partition(cae=False)
    second = opener(tmp_path).partition(cae=False)
    first.add_records(refresh_token("CANARY-RT-1"))
    [seen] = second.find(RefreshTokenRecord)
    first.add_records(refresh_token("CANARY-RT-2"))  # rotated by "another process": same key
    assert second.remove_records(seen) == 0  # the RT it saw is gone; the rotated one stays
    [current] = second.find(RefreshTokenRecord)
    assert current.secret == "CANARY-RT-2"
    assert second.remove_records(current) == 1
    assert first.find(RefreshTokenRecord) == []


def test_foreign_entries_survive_our_writes(tmp_path: Path) -> None:
    foreign = {
        "RefreshToken": {
            "theirs": refresh_token("CANARY-THEIRS").to_json() | {"x_ms_unknown": {"nested": [1, 2]}}
        },
        "Account": {"broken": {"username": 5}},
        "TheirSection": {"anything": True},
    }
    (tmp_path / "app.nocae").write_text(json.dumps(foreign))
    cache = plaintext(tmp_path)
    cache.put(key(), entry("CANARY-OURS"))
    cache.partition(cae=False).add_records(refresh_token("CANARY-OURS-RT", account="other"))
    document = json.loads((tmp_path / "app.nocae").read_bytes())
    assert document["RefreshToken"]["theirs"] == foreign["RefreshToken"]["theirs"]
    assert document["Account"] == foreign["Account"]
    assert document["TheirSection"] == foreign["TheirSection"]
    assert len(document["RefreshToken"]) == 2


def test_fsync_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd) or real(fd))
    cache = PersistentTokenCache.open("app", allow_unencrypted_storage=True, directory=tmp_path, fsync=False)
    cache.put(key(), entry("CANARY"))
    assert calls == []
    plaintext(tmp_path).put(key("b"), entry("CANARY-B"))
    assert len(calls) == 2  # the file and the directory


def test_a_partition_can_be_used_on_its_own(tmp_path: Path) -> None:
    partition = CachePartition(tmp_path, "solo.nocae", PlaintextCodec(), cae=False)
    partition.put(key(), entry("CANARY"))
    assert CachePartition(tmp_path, "solo.nocae", PlaintextCodec(), cae=False).get(key()) == entry("CANARY")
    assert "CANARY" not in repr(partition)
    assert AesGcmCodec.suffix == ".encrypted"


def test_both_stores_satisfy_the_store_protocol(tmp_path: Path) -> None:
    from cache.store import AccessTokenStore

    assert isinstance(MemoryTokenCache(), AccessTokenStore)
    assert isinstance(plaintext(tmp_path), AccessTokenStore)
