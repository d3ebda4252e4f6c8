"""Credentials with ``cache_persistence_options``: tokens shared through the persistent cache by
credential instances and by processes with the same cache name, sync and async, CAE split kept,
fail-closed without a keyring unless plaintext is allowed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import identity
import identity.aio
from conformance.authority import DEFAULT_CLIENT_ID, DEFAULT_SECRET, DEFAULT_TENANT, MockAuthority
from identity import TokenCachePersistenceOptions

SCOPE = "https://vault.azure.net/.default"


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def module(mode: str) -> Any:
    return identity if mode == "sync" else identity.aio


async def call(mode: str, method: Any, *args: Any, **kwargs: Any) -> Any:
    result = method(*args, **kwargs)
    return await result if mode == "async" else result


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home directory of the test's own: the cache lives in its ``.IdentityService``."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("LOCALAPPDATA", raising=False)
    return tmp_path


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """No usable OS keyring (keyring's fail backend)."""
    import keyring
    import keyring.backends.fail

    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    yield
    keyring.set_keyring(previous)


def _keyring_usable() -> bool:
    try:
        import keyring

        keyring.set_password("entra-identity-test-probe", "probe", "x")
        keyring.delete_password("entra-identity-test-probe", "probe")
    except Exception:
        return False
    return True


@pytest.fixture
def real_keyring() -> None:
    if not _keyring_usable():
        if os.environ.get("ENTRA_IDENTITY_REQUIRE_KEYRING") == "1":
            pytest.fail(
                "ENTRA_IDENTITY_REQUIRE_KEYRING=1 but no usable OS keyring (Secret Service) is running"
            )
        pytest.skip("no usable OS keyring here; scripts/test.sh starts a real Secret Service")


def plaintext(name: str) -> TokenCachePersistenceOptions:
    return TokenCachePersistenceOptions(name=name, allow_unencrypted_storage=True)


def credential(mode: str, authority: MockAuthority, options: TokenCachePersistenceOptions) -> Any:
    return module(mode).ClientSecretCredential(
        DEFAULT_TENANT,
        DEFAULT_CLIENT_ID,
        DEFAULT_SECRET,
        transport=authority.transport(),
        cache_persistence_options=options,
    )


def cache_files(home: Path) -> list[str]:
    directory = home / ".IdentityService"
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


async def test_instances_with_the_same_name_share_tokens(mode: str, home: Path, no_keyring: None) -> None:
    authority = MockAuthority.with_defaults()
    first = credential(mode, authority, plaintext("my-app"))
    token = await call(mode, first.get_token, SCOPE)
    second = credential(mode, authority, plaintext("my-app"))
    assert (await call(mode, second.get_token, SCOPE)).token == token.token
    assert len(authority.requests_to("token")) == 1
    other = credential(mode, authority, plaintext("other-app"))
    assert (await call(mode, other.get_token, SCOPE)).token != token.token
    assert len(authority.requests_to("token")) == 2


async def test_plaintext_files_split_cae_and_hold_msal_documents(
    mode: str, home: Path, no_keyring: None
) -> None:
    authority = MockAuthority.with_defaults()
    cred = credential(mode, authority, plaintext("split"))
    plain = await call(mode, cred.get_token, SCOPE)
    cae = await call(mode, cred.get_token, SCOPE, enable_cae=True)
    await call(mode, cred.close)  # writes what the cache writer thread has not written yet
    assert {"split.nocae", "split.cae"} <= set(cache_files(home))
    nocae_doc = json.loads((home / ".IdentityService" / "split.nocae").read_text())
    cae_doc = json.loads((home / ".IdentityService" / "split.cae").read_text())
    assert [entry["secret"] for entry in nocae_doc["AccessToken"].values()] == [plain.token]
    assert [entry["secret"] for entry in cae_doc["AccessToken"].values()] == [cae.token]
    mode_bits = (home / ".IdentityService" / "split.nocae").stat().st_mode & 0o777
    assert mode_bits == 0o600
    assert (home / ".IdentityService").stat().st_mode & 0o777 == 0o700


def test_no_keyring_without_plaintext_opt_in_is_a_value_error(
    mode: str, home: Path, no_keyring: None
) -> None:
    authority = MockAuthority.with_defaults()
    with pytest.raises(ValueError, match="allow_unencrypted_storage=True"):
        credential(mode, authority, TokenCachePersistenceOptions(name="strict"))
    assert not any(name.startswith("strict") and not name.endswith("lockfile") for name in cache_files(home))


async def test_encrypted_cache_keeps_tokens_out_of_files(mode: str, home: Path, real_keyring: None) -> None:
    authority = MockAuthority.with_defaults()
    name = f"enc-{os.getpid()}-{mode}"
    first = credential(mode, authority, TokenCachePersistenceOptions(name=name))
    token = await call(mode, first.get_token, SCOPE)
    await call(mode, first.close)  # the cache writer thread's pending write, now
    files = [home / ".IdentityService" / f for f in cache_files(home)]
    assert files
    for path in files:
        if path.is_file():
            assert token.token.encode() not in path.read_bytes()
    assert not (home / ".IdentityService" / f"{name}.nocae").exists()  # never at the plaintext name
    second = credential(mode, authority, TokenCachePersistenceOptions(name=name))
    assert (await call(mode, second.get_token, SCOPE)).token == token.token
    assert len(authority.requests_to("token")) == 1


_CHILD = textwrap.dedent(
    """
    import sys, httpx, keyring, keyring.backends.fail
    keyring.set_keyring(keyring.backends.fail.Keyring())
    from identity import ClientSecretCredential, TokenCachePersistenceOptions
    def refuse(request):
        raise httpx.ConnectError("the child must not ask the authority", request=request)
    credential = ClientSecretCredential(
        sys.argv[1], sys.argv[2], "unused-secret",
        transport=httpx.MockTransport(refuse),
        cache_persistence_options=TokenCachePersistenceOptions(name="shared", allow_unencrypted_storage=True),
    )
    print(credential.get_token("https://vault.azure.net/.default").token)
    """
)


def test_another_process_with_the_same_name_reads_the_token(home: Path, no_keyring: None) -> None:
    authority = MockAuthority.with_defaults()
    parent = credential("sync", authority, plaintext("shared"))
    token = parent.get_token(SCOPE)
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, DEFAULT_TENANT, DEFAULT_CLIENT_ID],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(home)},
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.strip() == token.token


def test_transport_unused_by_cached_reads(home: Path, no_keyring: None) -> None:
    # A token in the cache file is served without any request, even by a fresh credential whose
    # transport would fail.
    authority = MockAuthority.with_defaults()
    credential("sync", authority, plaintext("offline")).get_token(SCOPE)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no network", request=request)

    offline = identity.ClientSecretCredential(
        DEFAULT_TENANT,
        DEFAULT_CLIENT_ID,
        DEFAULT_SECRET,
        transport=httpx.MockTransport(refuse),
        cache_persistence_options=plaintext("offline"),
    )
    assert offline.get_token(SCOPE).token


class _BrokenStore:
    """A persistent store whose lock is always held elsewhere, or whose path became a link."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def get(self, key: Any) -> Any:
        raise self.error

    def put(self, key: Any, entry: Any) -> None:
        raise self.error

    def remove(self, key: Any) -> None:
        raise self.error

    def clear(self) -> None:
        raise self.error

    def __len__(self) -> int:
        return 0


@pytest.mark.parametrize(
    "error",
    [
        pytest.param("lock", id="lock-timeout"),
        pytest.param("link", id="planted-link"),
    ],
)
async def test_a_cache_that_fails_is_bypassed_with_a_warning(
    mode: str, error: str, caplog: pytest.LogCaptureFixture
) -> None:
    from cache.errors import CacheLockTimeoutError, UnsafeCachePathError

    failure = (
        CacheLockTimeoutError("the lock file x.lockfile is held by process 1")
        if error == "lock"
        else UnsafeCachePathError("token cache file x.nocae is a symbolic link")
    )
    authority = MockAuthority.with_defaults()
    cred = module(mode).ClientSecretCredential(
        DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, transport=authority.transport()
    )
    cred._core.cache = _BrokenStore(failure)
    token = await call(mode, cred.get_token, SCOPE)
    assert authority.describe_token(token.token) is not None
    messages = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and r.name == "identity"]
    assert any("could not be stored in the token cache" in m for m in messages)
    assert any("cannot be read, so it is bypassed" in m for m in messages)
    assert token.token not in caplog.text
