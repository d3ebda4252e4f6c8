"""cache.schema: MSAL's token-cache document, its keys and fields, preservation of foreign data,
and a parser that never raises."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cache.memory import AccessTokenEntry, CacheKey
from cache.schema import (
    ACCESS_TOKEN,
    MSSTS,
    AccessTokenRecord,
    AccountRecord,
    AppMetadataRecord,
    CacheDocument,
    IdTokenRecord,
    RefreshTokenRecord,
)

NOW = 1_700_000_000
TOKEN = "CANARY-AT-schema-1f2e"
REFRESH = "CANARY-RT-schema-3c4d"


def cache_key(
    *scopes: str, account: str | None = None, tenant: str = "Tenant-A", cae: bool = False
) -> CacheKey:
    return CacheKey.for_access_token(
        environment="Login.MicrosoftOnline.com",
        tenant=tenant,
        client_id="Client-A",
        scopes=scopes or ("https://vault.azure.net/.default",),
        cae=cae,
        account=account,
    )


def entry(token: str = TOKEN, refresh_on: int | None = NOW + 1800) -> AccessTokenEntry:
    return AccessTokenEntry(token=token, token_type="Bearer", expires_on=NOW + 3600, refresh_on=refresh_on)


# --- keys and fields as MSAL writes them ---------------------------------------------------------


def test_an_app_access_token_is_msals_entry() -> None:
    record = AccessTokenRecord.from_entry(cache_key("b/.default", "a/.default"), entry(), now=NOW)
    assert record.key() == "-login.microsoftonline.com-accesstoken-client-a-tenant-a-a/.default b/.default"
    assert record.to_json() == {
        "credential_type": "AccessToken",
        "secret": TOKEN,
        "home_account_id": None,
        "environment": "login.microsoftonline.com",
        "client_id": "Client-A",
        "target": "a/.default b/.default",
        "realm": "Tenant-A",
        "token_type": "Bearer",
        "cached_at": str(NOW),
        "expires_on": str(NOW + 3600),
        "extended_expires_on": str(NOW + 3600),
        "refresh_on": str(NOW + 1800),
    }


def test_a_user_access_token_key_starts_with_the_account_and_omits_absent_refresh_on() -> None:
    record = AccessTokenRecord.from_entry(cache_key(account="UID.UTID"), entry(refresh_on=None), now=NOW)
    assert record.key().startswith("uid.utid-login.microsoftonline.com-accesstoken-")
    assert "refresh_on" not in record.to_json()
    assert record.to_json()["home_account_id"] == "UID.UTID"


def test_an_access_token_maps_back_to_our_key_and_entry() -> None:
    key = cache_key("b/.default", "a/.default", account="uid.utid")
    record = AccessTokenRecord.from_json(AccessTokenRecord.from_entry(key, entry(), now=NOW).to_json())
    assert record.cache_key(cae=False) == key
    assert record.cache_key(cae=True) == cache_key("b/.default", "a/.default", account="uid.utid", cae=True)
    assert record.to_entry() == entry()


@pytest.mark.parametrize("field", ["key_id", "ext_cache_key"])
def test_tokens_bound_to_a_key_id_or_extended_key_are_never_served(field: str) -> None:
    raw = AccessTokenRecord.from_entry(cache_key(), entry(), now=NOW).to_json() | {field: "abc"}
    record = AccessTokenRecord.from_json(raw)
    assert record.cache_key(cae=False) is None
    if field == "ext_cache_key":  # msal 1.39.0: type "atext" and the hash appended
        assert (
            record.key()
            == "-login.microsoftonline.com-atext-client-a-tenant-a-https://vault.azure.net/.default-abc"
        )


def test_numbers_written_by_other_sdks_are_read() -> None:
    raw = AccessTokenRecord.from_entry(cache_key(), entry(), now=NOW).to_json()
    raw.update(expires_on=NOW + 3600, cached_at=NOW, extended_expires_on=None)
    record = AccessTokenRecord.from_json(raw)
    assert (record.expires_on, record.cached_at, record.extended_expires_on) == (NOW + 3600, NOW, NOW + 3600)


def test_refresh_token_key_has_an_empty_realm_and_rotation_keeps_the_key() -> None:
    record = RefreshTokenRecord(
        secret=REFRESH,
        home_account_id="uid.utid",
        environment="login.microsoftonline.com",
        client_id="Client-A",
        target="offline_access openid",
        last_modification_time=NOW,
        family_id="1",
    )
    assert record.key() == "uid.utid-login.microsoftonline.com-refreshtoken-client-a--offline_access openid"
    assert record.to_json() == {
        "credential_type": "RefreshToken",
        "secret": REFRESH,
        "home_account_id": "uid.utid",
        "environment": "login.microsoftonline.com",
        "client_id": "Client-A",
        "target": "offline_access openid",
        "last_modification_time": str(NOW),
        "family_id": "1",
    }
    assert RefreshTokenRecord.from_json(record.to_json()) == record


def test_id_token_account_and_app_metadata_keys() -> None:
    id_token = IdTokenRecord(
        secret="CANARY-ID",
        home_account_id="uid.utid",
        environment="login.microsoftonline.com",
        realm="T",
        client_id="C",
    )
    assert id_token.key() == "uid.utid-login.microsoftonline.com-idtoken-c-t-"
    account = AccountRecord(
        home_account_id="UID.utid",
        environment="login.microsoftonline.com",
        realm="T",
        local_account_id="oid",
        username="user@contoso.com",
        account_source="authorization_code",
    )
    assert account.key() == "uid.utid-login.microsoftonline.com-t"
    assert account.to_json()["authority_type"] == MSSTS
    metadata = AppMetadataRecord(client_id="Client-A", environment="login.microsoftonline.com", family_id="1")
    assert metadata.key() == "appmetadata-login.microsoftonline.com-Client-A"  # not lower-cased
    for record in (id_token, account, metadata):
        assert type(record).from_json(record.to_json()) == record


def test_secrets_stay_out_of_repr() -> None:
    records = [
        AccessTokenRecord.from_entry(cache_key(), entry(), now=NOW),
        RefreshTokenRecord(secret=REFRESH, home_account_id=None, environment="e", client_id="c"),
        IdTokenRecord(secret="CANARY-ID", home_account_id=None, environment="e", realm="r", client_id="c"),
    ]
    for record in records:
        assert "CANARY" not in repr(record)


# --- documents -----------------------------------------------------------------------------------


def test_a_document_round_trips_through_bytes_that_are_plain_json() -> None:
    document = CacheDocument()
    key = document.put(AccessTokenRecord.from_entry(cache_key(), entry(), now=NOW))
    document.put(RefreshTokenRecord(secret=REFRESH, home_account_id="u", environment="e", client_id="c"))
    data = document.to_bytes()
    assert data == json.dumps(json.loads(data), separators=(",", ":")).encode()
    parsed = CacheDocument.parse(data)
    assert parsed.get(AccessTokenRecord, key) == document.get(AccessTokenRecord, key)
    assert parsed.raw() == document.raw()
    assert CacheDocument.parse(b"").raw() == {}


def test_foreign_sections_fields_and_entries_survive_our_writes(caplog: pytest.LogCaptureFixture) -> None:
    foreign: dict[str, Any] = {
        "AccessToken": {
            "theirs": AccessTokenRecord.from_entry(
                cache_key("x/.default"), entry("THEIRS"), now=NOW
            ).to_json()
            | {"requested_claims": "cp1", "x_ms_field": [1, {"a": None}]},
            "broken": {"credential_type": "AccessToken", "secret": 7},
        },
        "Account": {"odd": {"home_account_id": "h"}},
        "SomeoneElsesSection": {"k": [1, 2, 3]},
        "Version": 2,
    }
    with caplog.at_level(logging.WARNING, logger="cache"):
        document = CacheDocument.parse(json.dumps(foreign).encode(), source="test.nocae")
    assert "1 malformed AccessToken entries" in caplog.text
    assert "1 malformed Account entries" in caplog.text
    document.put(AccessTokenRecord.from_entry(cache_key(), entry(), now=NOW))
    rewritten = json.loads(document.to_bytes())
    assert rewritten["AccessToken"]["theirs"] == foreign["AccessToken"]["theirs"]
    assert rewritten["AccessToken"]["broken"] == foreign["AccessToken"]["broken"]
    for section in ("Account", "SomeoneElsesSection", "Version"):
        assert rewritten[section] == foreign[section]
    theirs = document.get(AccessTokenRecord, "theirs")
    assert theirs is not None
    assert theirs.extra == {"requested_claims": "cp1", "x_ms_field": [1, {"a": None}]}


def test_entries_that_are_not_objects_are_dropped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    data = json.dumps({"AccessToken": {"a": "CANARY-NOT-AN-OBJECT", "b": 1}, "RefreshToken": [1]}).encode()
    with caplog.at_level(logging.WARNING, logger="cache"):
        document = CacheDocument.parse(data)
    assert document.raw() == {"AccessToken": {}}
    assert "2 AccessToken entries that are not objects" in caplog.text
    assert "section RefreshToken is not an object" in caplog.text
    assert "CANARY" not in caplog.text


@pytest.mark.parametrize(
    "data",
    [b"{", b"[]", b'"x"', b"null", b"\xff\xfe\x00", b"[" * 100_000 + b"]" * 100_000, b"{" + b"1" * 5000],
)
def test_a_document_that_is_not_a_json_object_reads_as_empty(
    data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="cache"):
        document = CacheDocument.parse(data, source="bad.nocae")
    assert document.raw() == {}
    assert not document.readable
    assert "bad.nocae" in caplog.text
    assert caplog.records[0].levelno == logging.WARNING


def test_unchanged_entries_keep_their_records_when_a_document_is_read_again() -> None:
    first = CacheDocument()
    key = first.put(AccessTokenRecord.from_entry(cache_key(), entry(), now=NOW))
    other = first.put(AccessTokenRecord.from_entry(cache_key("o/.default"), entry("OTHER"), now=NOW))
    reread = CacheDocument.parse(first.to_bytes(), previous=first)
    assert reread.get(AccessTokenRecord, key) is first.get(AccessTokenRecord, key)
    changed = json.loads(first.to_bytes())
    changed[ACCESS_TOKEN][other]["secret"] = "ROTATED"
    third = CacheDocument.parse(json.dumps(changed).encode(), previous=reread)
    assert third.get(AccessTokenRecord, key) is first.get(AccessTokenRecord, key)
    rotated = third.get(AccessTokenRecord, other)
    assert rotated is not None
    assert rotated.secret == "ROTATED"


def test_remove_takes_out_parsed_and_unparsed_entries() -> None:
    document = CacheDocument.parse(json.dumps({"AccessToken": {"broken": {"secret": 1}}}).encode())
    assert document.remove(ACCESS_TOKEN, "broken")
    assert not document.remove(ACCESS_TOKEN, "broken")
    assert json.loads(document.to_bytes()) == {"AccessToken": {}}


# --- properties ----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)
section_names = st.sampled_from(["AccessToken", "RefreshToken", "IdToken", "Account", "AppMetadata", "Other"])
field_names = st.sampled_from(
    [
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
        "family_id",
        "username",
        "local_account_id",
        "authority_type",
        "last_modification_time",
    ]
)
entry_like = st.dictionaries(
    field_names, json_values | st.text(alphabet="0123456789", min_size=1), max_size=12
)
document_like = st.dictionaries(
    section_names, st.dictionaries(st.text(), entry_like | json_values, max_size=4) | json_values, max_size=6
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary())
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    CacheDocument.parse(data, log=False).to_bytes()


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(document_like)
def test_arbitrary_json_never_raises_and_objects_survive_a_rewrite(raw: dict[str, Any]) -> None:
    document = CacheDocument.parse(json.dumps(raw).encode(), log=False)
    rewritten = json.loads(document.to_bytes())
    for section, value in raw.items():
        if section == "Other" or not isinstance(value, dict):
            if section == "Other":
                assert rewritten[section] == value
            continue
        assert rewritten[section] == {k: v for k, v in value.items() if isinstance(v, dict)}
    reread = CacheDocument.parse(document.to_bytes(), log=False)
    for record_type in (
        AccessTokenRecord,
        RefreshTokenRecord,
        IdTokenRecord,
        AccountRecord,
        AppMetadataRecord,
    ):
        for key, record in document.records(record_type):
            assert reread.get(record_type, key) == record


texts = st.text(min_size=1, max_size=20)
times = st.integers(min_value=0, max_value=2**40)
access_tokens = st.builds(
    AccessTokenRecord,
    secret=texts,
    home_account_id=st.none() | texts,
    environment=texts,
    client_id=texts,
    realm=texts,
    target=st.lists(st.text(alphabet="abcdef/.:", min_size=1), max_size=3).map(lambda s: " ".join(sorted(s))),
    token_type=st.sampled_from(["Bearer", "pop"]),
    cached_at=times,
    expires_on=times,
    extended_expires_on=times,
    refresh_on=st.none() | times,
)
refresh_tokens = st.builds(
    RefreshTokenRecord,
    secret=texts,
    home_account_id=st.none() | texts,
    environment=texts,
    client_id=texts,
    target=st.just("") | texts,
    last_modification_time=st.none() | times,
    family_id=st.none() | st.just("1"),
)
accounts = st.builds(
    AccountRecord,
    home_account_id=texts,
    environment=texts,
    realm=st.just("") | texts,
    local_account_id=st.just("") | texts,
    username=st.just("") | texts,
    authority_type=st.sampled_from([MSSTS, "ADFS"]),
    account_source=st.none() | texts,
)
id_tokens = st.builds(
    IdTokenRecord,
    secret=texts,
    home_account_id=st.none() | texts,
    environment=texts,
    realm=texts,
    client_id=texts,
)
app_metadata = st.builds(
    AppMetadataRecord, client_id=texts, environment=texts, family_id=st.none() | st.just("1")
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(access_tokens | refresh_tokens | accounts | id_tokens | app_metadata, max_size=8))
def test_valid_documents_round_trip(records: list[Any]) -> None:
    document = CacheDocument()
    stored = {}
    for record in records:
        stored[(record.section, document.put(record))] = record
    parsed = CacheDocument.parse(document.to_bytes(), log=False)
    assert parsed.problems == []
    for (section, key), record in stored.items():
        assert parsed.record_at(section, key) == record
    assert parsed.to_bytes() == document.to_bytes()
