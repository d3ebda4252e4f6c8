"""The encrypted cache with a real Secret Service (gnome-keyring in a private D-Bus session, started
by scripts/test.sh), and the fail-closed path when the session has none."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import keyring
import pytest

from cache.encrypted import KEYRING_SERVICE
from cache.persistent import PersistentTokenCache
from tests.cache import workers

ROOT = Path(__file__).resolve().parents[2]


def run(*arguments: str | Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.cache.workers", *map(str, arguments)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def output(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out


def test_the_key_lives_in_the_secret_service_and_only_the_key(
    secret_service: str, tmp_path: Path, canary: str
) -> None:
    cache = PersistentTokenCache.open(secret_service, directory=tmp_path)
    assert cache.encrypted
    cache.put(workers.key(1), workers_entry(canary))
    stored = keyring.get_password(KEYRING_SERVICE, secret_service)
    assert stored is not None
    assert canary not in stored
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{secret_service}.nocae.encrypted"]
    assert canary.encode() not in (tmp_path / f"{secret_service}.nocae.encrypted").read_bytes()
    # another process reads the key from the Secret Service and the token from the file
    found = output(run("read", "--first", 1, "--count", 1, "--directory", tmp_path, "--name", secret_service))
    assert found.strip() == "1"


def workers_entry(token: str) -> workers.AccessTokenEntry:
    return workers.AccessTokenEntry(token, "Bearer", 4_000_000_000, None)


def test_processes_starting_together_agree_on_one_key(
    secret_service: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No key exists yet: four processes create it at once (under the lock) and write 25 tokens
    each; none is lost and every file decrypts. (Eight at once sometimes made gnome-keyring drop a
    client's D-Bus session ("NoSession") and leave its collection locked for the rest of the run;
    the 8-process stress tests of the file format and lock use a file-backed keyring.)"""
    processes = [
        run("write", "--first", i * 25, "--count", 25, "--directory", tmp_path, "--name", secret_service)
        for i in range(4)
    ]
    for process in processes:
        assert output(process).count("committed") == 25
    with caplog.at_level(logging.WARNING, logger="cache"):
        cache = PersistentTokenCache.open(secret_service, directory=tmp_path)
        assert len(cache) == 100
    assert caplog.records == []


def no_session_bus() -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    environment.pop("PYTHON_KEYRING_BACKEND", None)
    return environment


def test_without_a_session_bus_the_cache_fails_closed(tmp_path: Path) -> None:
    """keyring's own backend selection, in a process whose session has no D-Bus: no keyring."""
    out = output(run("open", "--directory", tmp_path / "c", env=no_session_bus()))
    assert out.startswith(
        "refused: Cannot encrypt the token cache: no Secret Service (gnome-keyring, KWallet)"
    )
    assert "DBUS_SESSION_BUS_ADDRESS is not set" in out
    assert "allow_unencrypted_storage=True" in out
    assert not (tmp_path / "c").exists()


def test_without_a_session_bus_plaintext_needs_the_opt_in(tmp_path: Path) -> None:
    process = run("open", "--plaintext", "--directory", tmp_path, env=no_session_bus())
    out, err = process.communicate(timeout=60)
    assert out.strip() == "plaintext"
    assert "UNENCRYPTED" in err  # the WARNING (logging's last-resort handler writes to stderr)
