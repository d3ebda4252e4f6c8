"""Interoperability with MSAL (msal 1.39.0), msal-extensions (1.3.1) and azure-identity (1.27.0),
all installed by the dev extra: a plaintext cache we write is theirs to read, and the reverse."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest

from cache.memory import AccessTokenEntry, CacheKey
from cache.persistent import PersistentTokenCache
from cache.schema import (
    AccessTokenRecord,
    AccountRecord,
    AppMetadataRecord,
    CacheDocument,
    IdTokenRecord,
    RefreshTokenRecord,
)

msal = pytest.importorskip("msal")

NOW = int(time.time())
ENVIRONMENT = "login.microsoftonline.com"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
SCOPES = ["https://vault.azure.net/user_impersonation", "https://vault.azure.net/.default"]
#: azure-identity's AadClient lookup: scopes as target; client id and realm as the query.
AADCLIENT_QUERY = {"client_id": CLIENT_ID, "realm": TENANT}
UID, UTID = "00000000-0000-0000-0000-0000000000aa", TENANT


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def msal_response(access_token: str = "CANARY-MSAL-AT") -> dict[str, Any]:
    """A token response as Entra ID sends it for a user sign-in (unsigned ID token: MSAL only decodes
    its claims)."""
    claims = {"oid": UID, "sub": "sub", "tid": TENANT, "preferred_username": "user@contoso.com"}
    return {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_in": 1800,
        "refresh_token": "CANARY-MSAL-RT",
        "id_token": f"{b64({'alg': 'none'})}.{b64(claims)}.",
        "client_info": b64({"uid": UID, "utid": UTID}),
        "scope": " ".join(SCOPES),
        "foci": "1",
    }


def msal_cache_with_a_sign_in() -> Any:
    cache = msal.SerializableTokenCache()
    cache.add(
        {
            "client_id": CLIENT_ID,
            "scope": SCOPES,
            "token_endpoint": f"https://{ENVIRONMENT}/{TENANT}/oauth2/v2.0/token",
            "response": msal_response(),
            "grant_type": "authorization_code",
        },
        now=NOW,
    )
    return cache


def our_key(*, account: str | None) -> CacheKey:
    return CacheKey.for_access_token(
        environment=ENVIRONMENT, tenant=TENANT, client_id=CLIENT_ID, scopes=SCOPES, cae=False, account=account
    )


def test_our_keys_are_msals_keys() -> None:
    makers = msal.TokenCache().key_makers
    kinds = msal.TokenCache.CredentialType
    records: list[tuple[str, Any]] = [
        (
            kinds.ACCESS_TOKEN,
            AccessTokenRecord.from_entry(
                our_key(account=f"{UID}.{UTID}"), AccessTokenEntry("AT", "Bearer", NOW + 60), now=NOW
            ),
        ),
        (
            kinds.REFRESH_TOKEN,
            RefreshTokenRecord(
                secret="RT", home_account_id="A.B", environment=ENVIRONMENT, client_id="C", target="x y"
            ),
        ),
        (
            kinds.ID_TOKEN,
            IdTokenRecord(
                secret="ID", home_account_id="A.B", environment=ENVIRONMENT, realm="R", client_id="C"
            ),
        ),
        (
            kinds.ACCOUNT,
            AccountRecord(home_account_id="A.B", environment=ENVIRONMENT, realm="R", local_account_id="A"),
        ),
        (kinds.APP_METADATA, AppMetadataRecord(client_id="Client", environment=ENVIRONMENT, family_id="1")),
    ]
    for kind, record in records:
        assert record.key() == makers[kind](**record.to_json())


def test_msal_reads_what_we_write(tmp_path: Path) -> None:
    cache = PersistentTokenCache.open("interop", allow_unencrypted_storage=True, directory=tmp_path)
    cache.put(our_key(account=None), AccessTokenEntry("CANARY-OURS", "Bearer", NOW + 3600, NOW + 1800))
    cache.partition(cae=False).add_records(
        RefreshTokenRecord(
            secret="CANARY-OUR-RT",
            home_account_id=f"{UID}.{UTID}",
            environment=ENVIRONMENT,
            client_id=CLIENT_ID,
            target=" ".join(sorted(SCOPES)),
            last_modification_time=NOW,
        ),
        AccountRecord(
            home_account_id=f"{UID}.{UTID}",
            environment=ENVIRONMENT,
            realm=TENANT,
            local_account_id=UID,
            username="user@contoso.com",
        ),
    )
    theirs = msal.SerializableTokenCache()
    theirs.deserialize((tmp_path / "interop.nocae").read_text())
    [found] = theirs.search(
        msal.TokenCache.CredentialType.ACCESS_TOKEN, target=[SCOPES[0]], query=AADCLIENT_QUERY
    )
    assert found["secret"] == "CANARY-OURS"
    assert int(found["expires_on"]) == NOW + 3600
    # MSAL's O(1) exact-key lookup finds it too
    [exact] = theirs.search(
        msal.TokenCache.CredentialType.ACCESS_TOKEN,
        target=SCOPES,
        query={"home_account_id": None, "environment": ENVIRONMENT, "client_id": CLIENT_ID, "realm": TENANT},
    )
    assert exact == found
    [refresh] = theirs.search(
        msal.TokenCache.CredentialType.REFRESH_TOKEN, query={"home_account_id": f"{UID}.{UTID}"}
    )
    assert refresh["secret"] == "CANARY-OUR-RT"
    [account] = theirs.search(msal.TokenCache.CredentialType.ACCOUNT)
    assert account["username"] == "user@contoso.com"
    assert account["authority_type"] == "MSSTS"


def test_we_read_what_msal_writes(tmp_path: Path) -> None:
    (tmp_path / "interop.nocae").write_text(msal_cache_with_a_sign_in().serialize())
    cache = PersistentTokenCache.open("interop", allow_unencrypted_storage=True, directory=tmp_path)
    entry = cache.get(our_key(account=f"{UID}.{UTID}"))
    assert entry == AccessTokenEntry("CANARY-MSAL-AT", "Bearer", NOW + 3600, NOW + 1800)
    partition = cache.partition(cae=False)
    [refresh] = partition.find(RefreshTokenRecord, home_account_id=f"{UID}.{UTID}")
    assert (refresh.secret, refresh.family_id, refresh.client_id) == ("CANARY-MSAL-RT", "1", CLIENT_ID)
    [account] = partition.find(AccountRecord)
    assert (account.username, account.local_account_id, account.account_source) == (
        "user@contoso.com",
        UID,
        "authorization_code",
    )
    [id_token] = partition.find(IdTokenRecord, realm=TENANT)
    assert id_token.secret.count(".") == 2
    assert partition.find(AppMetadataRecord) == [
        AppMetadataRecord(client_id=CLIENT_ID, environment=ENVIRONMENT, family_id="1")
    ]
    # and a write of ours keeps MSAL's entries exactly as MSAL wrote them
    cache.put(our_key(account=None), AccessTokenEntry("CANARY-OURS", "Bearer", NOW + 3600))
    ours = json.loads((tmp_path / "interop.nocae").read_text())
    msals = json.loads(msal_cache_with_a_sign_in().serialize())
    for section, entries in msals.items():
        for key, value in entries.items():
            assert ours[section][key] == value


def test_msal_extensions_and_we_share_one_file_and_one_lock(tmp_path: Path) -> None:
    msal_extensions = pytest.importorskip("msal_extensions")
    path = tmp_path / "shared.nocae"
    theirs = msal_extensions.PersistedTokenCache(msal_extensions.FilePersistence(str(path)))
    assert theirs._lock_location == str(path) + ".lockfile"  # the same lock file as ours
    ours = PersistentTokenCache.open("shared", allow_unencrypted_storage=True, directory=tmp_path)
    assert ours.partition(cae=False).lock_path == Path(theirs._lock_location)
    theirs.add(
        {
            "client_id": CLIENT_ID,
            "scope": SCOPES,
            "token_endpoint": f"https://{ENVIRONMENT}/{TENANT}/oauth2/v2.0/token",
            "response": msal_response("CANARY-EXT-1"),
        },
        now=NOW,
    )
    assert ours.get(our_key(account=f"{UID}.{UTID}")) is not None
    ours.put(our_key(account=None), AccessTokenEntry("CANARY-OURS", "Bearer", NOW + 3600))
    found = theirs.search(
        msal.TokenCache.CredentialType.ACCESS_TOKEN,
        target=SCOPES,
        query={"client_id": CLIENT_ID, "realm": TENANT},
    )
    assert sorted(f["secret"] for f in found) == ["CANARY-EXT-1", "CANARY-OURS"]


def test_azure_identity_reads_our_plaintext_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """azure-identity's own loader, with ``allow_unencrypted_storage=True`` and no libsecret, uses
    the file we write at ``~/.IdentityService/<name>.nocae``."""
    persistent_cache = pytest.importorskip("azure.identity._persistent_cache")
    monkeypatch.setenv("HOME", str(tmp_path))
    ours = PersistentTokenCache.open("azid", allow_unencrypted_storage=True)
    ours.put(our_key(account=None), AccessTokenEntry("CANARY-FOR-AZID", "Bearer", NOW + 3600))
    options = persistent_cache.TokenCachePersistenceOptions(name="azid", allow_unencrypted_storage=True)
    theirs = persistent_cache._load_persistent_cache(options, is_cae=False)
    if getattr(theirs, "is_encrypted", False):
        pytest.skip("azure-identity found libsecret here: it would not read a plaintext file")
    [found] = theirs.search(
        msal.TokenCache.CredentialType.ACCESS_TOKEN,
        target=SCOPES,
        query={"client_id": CLIENT_ID, "realm": TENANT},
    )
    assert found["secret"] == "CANARY-FOR-AZID"


def test_msal_serialization_is_a_document_we_parse_without_complaint() -> None:
    document = CacheDocument.parse(msal_cache_with_a_sign_in().serialize().encode(), log=False)
    assert document.problems == []
    assert len(document.access_tokens()) == 1
