"""AuthenticationRecord (JSON compatible with azure-identity) and TokenCachePersistenceOptions.

Records are checked against azure-identity's own class (installed for the tests) in both
directions. Persistence options are validated, accepted by every credential (sync and async), and
announced once per process as not implemented yet.
"""

from __future__ import annotations

import json
import time
from typing import Any

import azure.identity
import httpx
import pytest

import identity
import identity.aio
import identity.settings
from identity import AuthenticationRecord, TokenCachePersistenceOptions

from ..protocol.helpers import cert_material, cert_pem, key_pem
from .fakes import CLIENT_ID, SECRET, TENANT, VAULT, Api, FakeClock, FakeEntra, cred_form

HOME_ACCOUNT_ID = "3a9d7c5e-2b4f-4e61-8c0a-6f1d9e3b5a27.7f0a1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b"
USERNAME = "user@contoso.onmicrosoft.com"
AUTHORITY = "login.microsoftonline.com"
RECORD_JSON = {
    "authority": AUTHORITY,
    "clientId": CLIENT_ID,
    "homeAccountId": HOME_ACCOUNT_ID,
    "tenantId": TENANT,
    "username": USERNAME,
    "version": "1.0",
}


def record() -> AuthenticationRecord:
    return AuthenticationRecord(TENANT, CLIENT_ID, AUTHORITY, HOME_ACCOUNT_ID, USERNAME)


def attributes(value: Any) -> tuple[str, str, str, str, str]:
    return (value.tenant_id, value.client_id, value.authority, value.home_account_id, value.username)


EXPECTED_ATTRIBUTES = (TENANT, CLIENT_ID, AUTHORITY, HOME_ACCOUNT_ID, USERNAME)


# --- AuthenticationRecord -------------------------------------------------------------------------


def test_record_attributes() -> None:
    assert attributes(record()) == EXPECTED_ATTRIBUTES


def test_record_round_trip() -> None:
    original = record()

    restored = AuthenticationRecord.deserialize(original.serialize())

    assert attributes(restored) == EXPECTED_ATTRIBUTES
    assert restored == original
    assert hash(restored) == hash(original)


def test_serialize_writes_exactly_azure_identitys_keys() -> None:
    assert json.loads(record().serialize()) == RECORD_JSON


def test_record_from_azure_identity_is_read() -> None:
    theirs = azure.identity.AuthenticationRecord(TENANT, CLIENT_ID, AUTHORITY, HOME_ACCOUNT_ID, USERNAME)

    ours = AuthenticationRecord.deserialize(theirs.serialize())

    assert attributes(ours) == EXPECTED_ATTRIBUTES


def test_azure_identity_reads_our_record() -> None:
    theirs = azure.identity.AuthenticationRecord.deserialize(record().serialize())

    assert attributes(theirs) == EXPECTED_ATTRIBUTES
    assert json.loads(theirs.serialize()) == json.loads(record().serialize())


def test_unknown_keys_are_ignored() -> None:
    data = json.dumps({**RECORD_JSON, "extra": {"nested": True}})

    assert attributes(AuthenticationRecord.deserialize(data)) == EXPECTED_ATTRIBUTES


def test_records_differing_in_one_field_are_not_equal() -> None:
    other = AuthenticationRecord(TENANT, CLIENT_ID, AUTHORITY, HOME_ACCOUNT_ID, "someone@contoso.com")

    assert other != record()
    assert record() != RECORD_JSON


def test_repr_names_every_field() -> None:
    assert repr(record()) == (
        f"AuthenticationRecord(tenant_id='{TENANT}', client_id='{CLIENT_ID}', authority='{AUTHORITY}', "
        f"home_account_id='{HOME_ACCOUNT_ID}', username='{USERNAME}')"
    )


def without(key: str) -> str:
    return json.dumps({k: v for k, v in RECORD_JSON.items() if k != key})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            "{not json", "The authentication record is not valid JSON: JSONDecodeError.", id="not-json"
        ),
        pytest.param("", "The authentication record is not valid JSON: JSONDecodeError.", id="empty"),
        pytest.param("[1, 2]", "The authentication record must be a JSON object.", id="array"),
        pytest.param('"a string"', "The authentication record must be a JSON object.", id="string"),
        pytest.param("null", "The authentication record must be a JSON object.", id="null"),
        pytest.param(
            without("username"), "The authentication record's 'username' is missing.", id="no-username"
        ),
        pytest.param(
            without("clientId"), "The authentication record's 'clientId' is missing.", id="no-client"
        ),
        pytest.param(
            json.dumps({**RECORD_JSON, "tenantId": 42}),
            "The authentication record's 'tenantId' must be a string, not int.",
            id="int-tenant",
        ),
        pytest.param(
            json.dumps({**RECORD_JSON, "homeAccountId": ["a", "b"]}),
            "The authentication record's 'homeAccountId' must be a string, not list.",
            id="list-home-account",
        ),
        pytest.param(
            json.dumps({**RECORD_JSON, "version": "2.0"}),
            "Unexpected authentication record version '2.0'. Supported versions: 1.0.",
            id="version-2",
        ),
        pytest.param(
            json.dumps({**RECORD_JSON, "version": 1.0}),
            "Unexpected authentication record version 1.0. Supported versions: 1.0.",
            id="numeric-version",
        ),
        pytest.param(
            without("version"),
            "Unexpected authentication record version None. Supported versions: 1.0.",
            id="no-version",
        ),
    ],
)
def test_invalid_record_is_a_value_error_naming_the_problem(data: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        AuthenticationRecord.deserialize(data)

    assert str(caught.value) == message


def test_deeply_nested_json_is_a_value_error() -> None:
    with pytest.raises(ValueError) as caught:
        AuthenticationRecord.deserialize("[" * 100_000 + "]" * 100_000)

    assert str(caught.value) == "The authentication record is not valid JSON: RecursionError."


# --- TokenCachePersistenceOptions -----------------------------------------------------------------


def test_persistence_options_defaults_match_azure_identity() -> None:
    ours = TokenCachePersistenceOptions()
    theirs = azure.identity.TokenCachePersistenceOptions()

    assert (ours.allow_unencrypted_storage, ours.name) == (False, "msal.cache")
    assert (ours.allow_unencrypted_storage, ours.name) == (theirs.allow_unencrypted_storage, theirs.name)
    assert repr(ours) == "TokenCachePersistenceOptions(allow_unencrypted_storage=False, name='msal.cache')"


@pytest.mark.parametrize("name", ["my-app", "a", "App_1.cache", "x" * 128])
def test_valid_names_are_kept(name: str) -> None:
    options = TokenCachePersistenceOptions(allow_unencrypted_storage=True, name=name)

    assert (options.allow_unencrypted_storage, options.name) == (True, name)


@pytest.mark.parametrize(
    "name",
    ["../x", "a/b", "a\\b", "", ".hidden", ".", "..", "x" * 200, "x" * 129, "a b", "caché", "a\x00b"],
    ids=[
        "parent",
        "slash",
        "backslash",
        "empty",
        "hidden",
        "dot",
        "dotdot",
        "200",
        "129",
        "space",
        "accent",
        "nul",
    ],
)
def test_unsafe_names_are_value_errors(name: str) -> None:
    with pytest.raises(ValueError) as caught:
        TokenCachePersistenceOptions(name=name)

    assert str(caught.value) == (
        f"Invalid token cache name {name!r}: use letters, digits, '.', '_' and '-' (up to 128 characters, "
        "starting with a letter or digit); it names files in the cache directory."
    )


@pytest.mark.parametrize("value", [1, "true", None, 0.0], ids=["int", "str", "none", "float"])
def test_non_bool_allow_unencrypted_storage_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError) as caught:
        TokenCachePersistenceOptions(allow_unencrypted_storage=value)  # type: ignore[arg-type]

    assert str(caught.value) == "allow_unencrypted_storage must be True or False"


# --- credentials and cache_persistence_options ----------------------------------------------------


def build(api: Api, name: str, **kwargs: Any) -> Any:
    """A sync or async credential of class ``name`` against ``FakeEntra``."""
    module: Any = identity if api.mode == "sync" else identity.aio
    kwargs.setdefault("transport", httpx.MockTransport(api.handler))
    cls = getattr(module, name)
    if name == "ClientSecretCredential":
        credential = cls(TENANT, CLIENT_ID, SECRET, **kwargs)
    elif name == "CertificateCredential":
        material = cert_material()
        credential = cls(
            TENANT, CLIENT_ID, certificate_data=key_pem(material.key) + cert_pem(material.cert), **kwargs
        )
    elif name == "ClientAssertionCredential":
        credential = cls(TENANT, CLIENT_ID, lambda: "eyJ.assertion.sig", **kwargs)
    else:
        credential = cls(TENANT, CLIENT_ID, user_assertion="eyJ.user.sig", client_secret=SECRET, **kwargs)
    api.opened.append(credential)
    return credential


CREDENTIALS = [
    "ClientSecretCredential",
    "CertificateCredential",
    "ClientAssertionCredential",
    "OnBehalfOfCredential",
]


@pytest.mark.parametrize("name", CREDENTIALS)
async def test_credentials_with_persistence_options_use_the_persistent_cache(
    api: Api, name: str, tmp_path: Any
) -> None:
    from cache.persistent import PersistentTokenCache

    options = TokenCachePersistenceOptions(name=f"{name}-cache", allow_unencrypted_storage=True)
    credential = build(api, name, cache_persistence_options=options)
    assert isinstance(credential._core.cache, PersistentTokenCache)
    plain = build(api, name)
    assert not isinstance(plain._core.cache, PersistentTokenCache)


async def test_credential_with_persistence_options_reuses_its_token(
    api: Api, entra: FakeEntra, clock: FakeClock
) -> None:
    # The persistent cache drops tokens that expired by the wall clock (as MSAL does): the
    # credential's clock must be the real time for its token to outlive the cache writer thread.
    clock.now = time.time()
    options = TokenCachePersistenceOptions(allow_unencrypted_storage=True)
    credential = api.credential(cache_persistence_options=options)

    first = await api.get_token(credential, VAULT)
    second = await api.get_token(credential, VAULT)

    assert first == second
    assert entra.forms == [cred_form()]


@pytest.mark.parametrize("name", CREDENTIALS)
@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"name": "my-app"}, id="dict"),
        pytest.param(True, id="bool"),
    ],
)
async def test_credentials_reject_other_objects_as_persistence_options(
    api: Api, entra: FakeEntra, name: str, options: object
) -> None:
    with pytest.raises(TypeError) as caught:
        build(api, name, cache_persistence_options=options)

    assert str(caught.value) == (
        f"cache_persistence_options must be a TokenCachePersistenceOptions, not {type(options).__name__}"
    )
    assert entra.requests == []
