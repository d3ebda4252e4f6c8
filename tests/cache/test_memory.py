"""cache.memory: explicit keys, immutable entries, the freshness table and the in-memory store."""

from __future__ import annotations

import dataclasses

import pytest

from cache.memory import (
    ACCESS_TOKEN,
    EXPIRY_MARGIN,
    REFRESH_RETRY_DELAY,
    AccessTokenEntry,
    CacheKey,
    Freshness,
    MemoryTokenCache,
    freshness,
)

TOKEN = "CANARY-AT-9b2c"
EXPIRES_ON = 1_700_010_000
REFRESH_ON = 1_700_005_000


def key(*scopes: str, cae: bool = False, environment: str = "login.microsoftonline.com") -> CacheKey:
    return CacheKey.for_access_token(
        environment=environment,
        tenant="tenant-a",
        client_id="client-a",
        scopes=scopes or ("https://vault.azure.net/.default",),
        cae=cae,
    )


def entry(refresh_on: int | None = REFRESH_ON, token: str = TOKEN) -> AccessTokenEntry:
    return AccessTokenEntry(token=token, token_type="Bearer", expires_on=EXPIRES_ON, refresh_on=refresh_on)


# --- keys -------------------------------------------------------------------------------------


def test_key_sorts_and_dedupes_scopes_and_lower_cases_environment() -> None:
    built = CacheKey.for_access_token(
        environment="Login.MicrosoftOnline.COM:443",
        tenant="tenant-a",
        client_id="client-a",
        scopes=["https://b/.default", "https://a/.default", "https://b/.default"],
        cae=False,
    )

    assert built == CacheKey(
        kind=ACCESS_TOKEN,
        environment="login.microsoftonline.com:443",
        tenant="tenant-a",
        client_id="client-a",
        account=None,
        scopes=("https://a/.default", "https://b/.default"),
        cae=False,
    )


def test_keys_for_the_same_request_in_any_scope_order_are_equal_and_hash_alike() -> None:
    first = key("https://a/.default", "https://b/.default")
    second = key("https://b/.default", "https://a/.default", "https://a/.default")

    assert first == second
    assert hash(first) == hash(second)


@pytest.mark.parametrize(
    ("other"),
    [
        pytest.param(key(cae=True), id="cae"),
        pytest.param(key(environment="login.microsoftonline.us"), id="environment"),
        pytest.param(key("https://graph.microsoft.com/.default"), id="scopes"),
        pytest.param(dataclasses.replace(key(), tenant="tenant-b"), id="tenant"),
        pytest.param(dataclasses.replace(key(), client_id="client-b"), id="client"),
        pytest.param(dataclasses.replace(key(), account="uid.utid"), id="account"),
    ],
)
def test_keys_differing_in_one_field_are_different_partitions(other: CacheKey) -> None:
    cache = MemoryTokenCache()
    cache.put(key(), entry(token="plain"))

    assert other != key()
    assert cache.get(other) is None


def test_key_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        key().cae = True  # type: ignore[misc]


# --- entries and freshness ----------------------------------------------------------------------


def test_entry_repr_hides_the_token() -> None:
    text = repr(entry())

    assert TOKEN not in text
    assert text == (
        f"AccessTokenEntry(token_type='Bearer', expires_on={EXPIRES_ON}, refresh_on={REFRESH_ON}, "
        "refresh_deferred_until=0.0)"
    )


def test_entry_is_immutable_and_deferred_returns_a_copy() -> None:
    original = entry()
    deferred = original.deferred(REFRESH_ON + 10)

    assert original.refresh_deferred_until == 0.0
    assert deferred == dataclasses.replace(original, refresh_deferred_until=REFRESH_ON + 10 + 30)
    with pytest.raises(dataclasses.FrozenInstanceError):
        original.token = "other"  # type: ignore[misc]


def test_constants() -> None:
    assert (EXPIRY_MARGIN, REFRESH_RETRY_DELAY) == (300, 30)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (REFRESH_ON - 1000, Freshness.FRESH),
        (REFRESH_ON - 0.001, Freshness.FRESH),
        (REFRESH_ON, Freshness.STALE),
        (EXPIRES_ON - 300 - 0.001, Freshness.STALE),
        (EXPIRES_ON - 300, Freshness.EXPIRED),
        (EXPIRES_ON - 1, Freshness.EXPIRED),
        (EXPIRES_ON, Freshness.EXPIRED),
        (EXPIRES_ON + 86_400, Freshness.EXPIRED),
    ],
)
def test_freshness_with_refresh_on(now: float, expected: Freshness) -> None:
    assert freshness(entry(), now) is expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (REFRESH_ON, Freshness.FRESH),
        (EXPIRES_ON - 301, Freshness.FRESH),
        (EXPIRES_ON - 300, Freshness.EXPIRED),
        (EXPIRES_ON + 1, Freshness.EXPIRED),
    ],
)
def test_freshness_without_refresh_on_is_fresh_until_the_expiry_margin(
    now: float, expected: Freshness
) -> None:
    assert freshness(entry(refresh_on=None), now) is expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (REFRESH_ON + 100, Freshness.FRESH),
        (REFRESH_ON + 129.999, Freshness.FRESH),
        (REFRESH_ON + 130, Freshness.STALE),
        (EXPIRES_ON - 300, Freshness.EXPIRED),
    ],
)
def test_deferred_entry_stays_fresh_until_refresh_deferred_until(now: float, expected: Freshness) -> None:
    deferred = entry().deferred(REFRESH_ON + 100)  # a refresh failed 100 s after refresh_on

    assert deferred.refresh_deferred_until == REFRESH_ON + 130
    assert freshness(deferred, now) is expected


def test_deferral_never_hides_expiry() -> None:
    deferred = entry().deferred(EXPIRES_ON - 310)  # deferred until 280 s before expiry

    assert freshness(deferred, EXPIRES_ON - 300) is Freshness.EXPIRED


# --- the store ----------------------------------------------------------------------------------


def test_memory_cache_get_put_remove_clear_len() -> None:
    cache = MemoryTokenCache()
    plain, cae = key(), key(cae=True)

    assert len(cache) == 0
    assert cache.get(plain) is None

    cache.put(plain, entry(token="plain-1"))
    cache.put(cae, entry(token="cae-1"))
    assert len(cache) == 2
    assert cache.get(plain) == entry(token="plain-1")
    assert cache.get(key("https://vault.azure.net/.default")) == entry(token="plain-1")  # equal key
    assert cache.get(cae) == entry(token="cae-1")

    cache.put(plain, entry(token="plain-2"))  # replaced whole
    assert len(cache) == 2
    assert cache.get(plain) == entry(token="plain-2")

    cache.remove(plain)
    cache.remove(plain)  # removing a missing key is not an error
    assert cache.get(plain) is None
    assert len(cache) == 1

    cache.clear()
    assert len(cache) == 0
    assert cache.get(cae) is None


def test_memory_cache_repr_counts_entries_and_shows_no_token() -> None:
    cache = MemoryTokenCache()
    cache.put(key(), entry())

    assert repr(cache) == "MemoryTokenCache(entries=1)"
