"""cache.encrypted: the file format, authentication of name and version, and the keyring rules
(a real trial decides usability; the key is read once per process; failures say what is missing)."""

from __future__ import annotations

import base64
import threading
from contextlib import AbstractContextManager, nullcontext

import keyring
import keyring.backends.null
import pytest
from keyring.errors import InitError

from cache.encrypted import (
    FORMAT_VERSION,
    KEYRING_SERVICE,
    MAGIC,
    AesGcmCodec,
    UnreadableDocumentError,
    delete_keyring_key,
    keyring_key,
    keyring_problem,
)
from cache.errors import PersistenceUnavailableError
from tests.cache.keyrings import BrokenKeyring, MemoryKeyring

KEY = bytes(range(32))
DOCUMENT = b'{"AccessToken":{"k":{"secret":"CANARY-ENCRYPTED"}}}'


def no_lock() -> AbstractContextManager[object]:
    return nullcontext()


# --- the format ----------------------------------------------------------------------------------


def test_the_file_is_magic_version_nonce_and_ciphertext() -> None:
    data = AesGcmCodec(KEY).encode(DOCUMENT, "app.nocae")
    assert data[:8] == MAGIC
    assert data[8] == FORMAT_VERSION == 1
    assert len(data) == 8 + 1 + 12 + len(DOCUMENT) + 16
    assert b"CANARY" not in data
    assert AesGcmCodec(KEY).decode(data, "app.nocae") == DOCUMENT
    assert AesGcmCodec(KEY).encode(DOCUMENT, "app.nocae")[9:21] != data[9:21]  # a fresh nonce each time


def test_empty_data_is_an_empty_document() -> None:
    assert AesGcmCodec(KEY).decode(b"", "app.nocae") == b""


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda d: flip(d, 30), "authentication failed"),  # ciphertext
        (lambda d: flip(d, len(d) - 1), "authentication failed"),  # tag
        (lambda d: flip(d, 12), "authentication failed"),  # nonce
        (lambda d: d[:-1], "authentication failed"),
        (lambda d: d[:20], "truncated"),
        (lambda d: d[:5], "truncated"),
        (lambda d: d[:8], "truncated"),
        (lambda d: d[:8] + bytes([2]) + d[9:], "format version 2"),
        (lambda d: b"{" + d, "not an encrypted token cache"),
    ],
)
def test_tampered_or_truncated_files_are_unreadable(mangle: object, reason: str) -> None:
    data = AesGcmCodec(KEY).encode(DOCUMENT, "app.nocae")
    with pytest.raises(UnreadableDocumentError, match=reason) as raised:
        AesGcmCodec(KEY).decode(mangle(data), "app.nocae")  # type: ignore[operator]
    assert "CANARY" not in str(raised.value)


def test_a_wrong_key_or_another_documents_name_fails_authentication() -> None:
    data = AesGcmCodec(KEY).encode(DOCUMENT, "app.nocae")
    with pytest.raises(UnreadableDocumentError, match="authentication failed"):
        AesGcmCodec(bytes(32)).decode(data, "app.nocae")
    with pytest.raises(UnreadableDocumentError, match="authentication failed"):
        AesGcmCodec(KEY).decode(data, "app.cae")  # the CAE partition's file name
    with pytest.raises(UnreadableDocumentError, match="authentication failed"):
        AesGcmCodec(KEY).decode(data, "other.nocae")


def test_the_key_stays_out_of_repr() -> None:
    assert KEY.hex() not in repr(AesGcmCodec(KEY))
    with pytest.raises(ValueError, match="32 bytes"):
        AesGcmCodec(b"short")


# --- the keyring ---------------------------------------------------------------------------------


def test_no_backend_is_unavailable_and_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    with pytest.raises(PersistenceUnavailableError) as raised:
        keyring_key("app", lock=no_lock())
    message = str(raised.value)
    assert isinstance(raised.value, ValueError)
    assert "no Secret Service (gnome-keyring, KWallet)" in message
    assert "DBUS_SESSION_BUS_ADDRESS" in message
    assert "allow_unencrypted_storage=True" in message


def test_the_null_backend_is_unavailable() -> None:
    keyring.set_keyring(keyring.backends.null.Keyring())
    problem = keyring_problem()
    assert problem is not None
    assert "disabled" in problem


def test_a_backend_failing_its_trial_is_unavailable() -> None:
    """A Secret Service whose daemon cannot create or unlock a collection answers every call with
    an error: the trial store/read/delete finds out."""
    keyring.set_keyring(BrokenKeyring())
    with pytest.raises(PersistenceUnavailableError) as raised:
        keyring_key("app", lock=no_lock())
    message = str(raised.value)
    assert "BrokenKeyring failed a trial" in message
    assert "Prompt dismissed" in message
    assert "allow_unencrypted_storage=True" in message


def test_a_backend_that_loses_secrets_is_unavailable() -> None:
    class Forgetful(MemoryKeyring):
        def get_password(self, service: str, username: str) -> str | None:
            return None

    keyring.set_keyring(Forgetful())
    assert "did not return the secret" in (keyring_problem() or "")


def test_the_trial_leaves_nothing_behind(memory_keyring: MemoryKeyring) -> None:
    assert keyring_problem() is None
    assert memory_keyring.store == {}
    assert memory_keyring.calls == ["set", "get", "delete"]


def test_a_key_is_created_once_and_read_once_per_process(memory_keyring: MemoryKeyring) -> None:
    key = keyring_key("app", lock=no_lock())
    assert len(key) == 32
    stored = memory_keyring.store[(KEYRING_SERVICE, "app")]
    assert base64.b64decode(stored) == key
    calls = len(memory_keyring.calls)
    for _ in range(10):
        assert keyring_key("app", lock=no_lock()) == key
    assert len(memory_keyring.calls) == calls  # memoised: no keyring round trip
    assert keyring_key("other", lock=no_lock()) != key  # one key per cache name


def test_an_existing_key_is_used(memory_keyring: MemoryKeyring) -> None:
    memory_keyring.store[(KEYRING_SERVICE, "app")] = base64.b64encode(KEY).decode()
    assert keyring_key("app", lock=no_lock()) == KEY


def test_a_malformed_stored_key_is_replaced(
    memory_keyring: MemoryKeyring, caplog: pytest.LogCaptureFixture
) -> None:
    memory_keyring.store[(KEYRING_SERVICE, "app")] = "not base64!"
    key = keyring_key("app", lock=no_lock())
    assert len(key) == 32
    assert "not a cache key" in caplog.text


def test_key_creation_happens_under_the_lock(memory_keyring: MemoryKeyring) -> None:
    held = threading.Event()

    class Lock:
        def __enter__(self) -> None:
            held.set()

        def __exit__(self, *exc: object) -> None:
            held.clear()

    original = memory_keyring.set_password

    def set_password(service: str, username: str, password: str) -> None:
        if username == "app":
            assert held.is_set()
        original(service, username, password)

    memory_keyring.set_password = set_password  # type: ignore[method-assign]
    keyring_key("app", lock=Lock())  # type: ignore[arg-type]


def test_a_keyring_that_hangs_counts_as_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cache.encrypted.KEYRING_TIMEOUT", 0.2)
    release = threading.Event()

    class Hanging(MemoryKeyring):
        def set_password(self, service: str, username: str, password: str) -> None:
            release.wait(5)

    keyring.set_keyring(Hanging())
    try:
        problem = keyring_problem()
    finally:
        release.set()
    assert problem is not None
    assert "did not answer within 0.2 s" in problem


def test_deleting_a_key(memory_keyring: MemoryKeyring) -> None:
    key = keyring_key("app", lock=no_lock())
    delete_keyring_key("app")
    assert (KEYRING_SERVICE, "app") not in memory_keyring.store
    delete_keyring_key("app")  # nothing stored: fine
    assert keyring_key("app", lock=no_lock()) != key


def test_keys_are_random(memory_keyring: MemoryKeyring) -> None:
    keys = {keyring_key(f"app-{i}", lock=no_lock()) for i in range(5)}
    assert len(keys) == 5


class _Flaky(MemoryKeyring):
    """A Secret Service that drops the session for the first ``failures`` calls (as gnome-keyring
    does for a moment when many clients connect at once)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def get_password(self, service: str, username: str) -> str | None:
        if self.failures:
            self.failures -= 1
            self.calls.append("get-failed")
            raise InitError("org.freedesktop.Secret.Error.NoSession: session does not exist")
        return super().get_password(service, username)


def test_a_keyring_call_that_raises_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cache.encrypted.KEYRING_RETRY_DELAYS", (0.0, 0.0))
    flaky = _Flaky(failures=2)
    keyring.set_keyring(flaky)
    key = keyring_key("retried", lock=no_lock())
    assert len(key) == 32
    assert flaky.calls.count("get-failed") == 2
    assert keyring_key("retried", lock=no_lock()) == key  # the stored key, not a new one


def test_a_failing_keyring_is_reported_after_three_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cache.encrypted.KEYRING_RETRY_DELAYS", (0.0, 0.0))
    flaky = _Flaky(failures=1_000)
    keyring.set_keyring(flaky)
    with pytest.raises(PersistenceUnavailableError) as raised:
        keyring_key("never", lock=no_lock())
    assert "NoSession" in str(raised.value)
    assert flaky.calls.count("get-failed") == 3  # the trial's read, three times
