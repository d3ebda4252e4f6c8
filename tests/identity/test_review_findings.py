"""Review findings for the user sign-in credentials, the loopback server and the token core.

Each test demonstrated one problem found in review and now pins its fix. No test talks to anything
but the in-process mock authority and 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import identity
import identity.aio
from cache.schema import AccountRecord, RefreshTokenRecord
from conformance.authority import (
    DEFAULT_TENANT,
    DEFAULT_USERNAME,
    PUBLIC_CLIENT_ID,
    MockAuthority,
)
from conformance.mock.models import Fault
from identity.user import DEVELOPER_SIGN_ON_CLIENT_ID
from protocol.responses import TokenResult

VAULT = "https://vault.azure.net/.default"
STORAGE = "https://storage.azure.com/.default"
GRAPH = "https://graph.microsoft.com/.default"
OTHER_TENANT = "a8f3c1d2-0b5e-4c7a-9d61-2e4f8b0c3a77"


class Approver:
    """A prompt_callback that plays the user and approves the code at once."""

    def __init__(self, authority: MockAuthority) -> None:
        self.authority = authority
        self.prompts: list[str] = []

    def __call__(self, verification_uri: str, user_code: str, expires_on: datetime) -> None:
        self.prompts.append(user_code)
        with contextlib.suppress(Exception):
            self.authority.approve_device_code(user_code, DEFAULT_USERNAME)


def device_credential(authority: MockAuthority, **kwargs: Any) -> Any:
    kwargs.setdefault("tenant_id", DEFAULT_TENANT)
    return identity.DeviceCodeCredential(
        PUBLIC_CLIENT_ID, prompt_callback=Approver(authority), transport=authority.transport(), **kwargs
    )


def port_of(url: str) -> int:
    redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
    port = urlsplit(redirect).port
    assert port
    return port


# --- 1. the loopback server: an idle connection defeats the timeout -----------------------------------


def test_an_idle_connection_to_the_loopback_server_does_not_defeat_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    authority = MockAuthority.with_defaults()
    idle: list[socket.socket] = []

    def opener(url: str, *args: Any, **kwargs: Any) -> bool:
        # A speculative (pre)connection that never sends a request line.
        idle.append(socket.create_connection(("127.0.0.1", port_of(url)), timeout=5))
        return True

    monkeypatch.setattr("webbrowser.open", opener)
    credential = identity.InteractiveBrowserCredential(
        client_id=PUBLIC_CLIENT_ID, tenant_id=DEFAULT_TENANT, timeout=1, transport=authority.transport()
    )
    outcome: list[BaseException] = []

    def sign_in() -> None:
        try:
            credential.get_token(VAULT)
        except BaseException as exc:  # recorded for the assertion
            outcome.append(exc)

    worker = threading.Thread(target=sign_in, daemon=True)
    worker.start()
    worker.join(6)  # timeout=1: the sign-in must have given up long before this
    finished = not worker.is_alive()
    for sock in idle:  # release the server so the worker can end
        sock.close()
    worker.join(10)
    assert finished, "get_token(timeout=1) was still waiting after 6 s"
    assert outcome
    assert "Timed out" in str(outcome[0])


# --- 2. a cancelled async browser sign-in leaves its loopback server listening ------------------------


def test_cancelling_an_async_browser_sign_in_closes_the_loopback_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    authority = MockAuthority.with_defaults()
    urls: list[str] = []

    def opener(url: str, *args: Any, **kwargs: Any) -> bool:
        urls.append(url)  # the user never comes back
        return True

    monkeypatch.setattr("webbrowser.open", opener)

    async def scenario() -> bool:
        credential = identity.aio.InteractiveBrowserCredential(
            client_id=PUBLIC_CLIENT_ID, tenant_id=DEFAULT_TENANT, timeout=3, transport=authority.transport()
        )
        task = asyncio.create_task(credential.get_token(VAULT))
        for _ in range(200):
            if urls:
                break
            await asyncio.sleep(0.02)
        assert urls, "the browser was never opened"
        port = port_of(urls[0])
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.2)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return True  # refused: closed
        return False

    closed = asyncio.run(scenario())
    assert closed, "the loopback server still accepts connections after the sign-in was cancelled"


# --- 3. a refresh token refused for one scope is deleted for every scope ------------------------------


def test_a_refresh_token_refused_for_one_resource_still_serves_the_others() -> None:
    authority = MockAuthority.with_defaults()
    credential = device_credential(authority, disable_automatic_authentication=True)
    credential.authenticate(scopes=[VAULT])
    # Conditional Access: Graph requires MFA for this user; the refresh token stays valid elsewhere.
    body = {
        "error": "interaction_required",
        "error_description": "AADSTS50076: Due to a configuration change made by your administrator, "
        "you must use multi-factor authentication to access this resource.",
        "error_codes": [50076],
        "suberror": "basic_action",
    }
    authority.inject(Fault.status(400, body=json.dumps(body).encode()), endpoint="token")
    with pytest.raises(identity.AuthenticationRequiredError):
        credential.get_token(GRAPH)
    token = credential.get_token(STORAGE)  # no MFA needed here: silent refresh must still work
    assert authority.describe_token(token.token) is not None


# --- 4. set_account() races with serve() and settle() -------------------------------------------------


def test_serving_a_plan_of_the_previous_account_does_not_repopulate_the_fast_path() -> None:
    authority = MockAuthority.with_defaults()
    credential = device_credential(authority)
    credential.get_token(VAULT)  # bound to the user; VAULT is on the fast path
    core = credential._core
    # Thread A: get_token(VAULT) planned and found the FRESH token...
    plan = core.plan((VAULT,), claims=None, tenant_id=None, enable_cae=False)
    entry, _ = core.cached(plan)
    assert entry is not None
    # ...thread B: authenticate() signed another user in, binding the credential to them...
    core.set_account("00000000-0000-0000-0000-00000000beef." + DEFAULT_TENANT)
    assert core.fast_hit((VAULT,), None, False) is None
    # ...thread A finishes serving.
    core.serve(plan, entry)
    assert core.fast_hit((VAULT,), None, False) is None, "the previous account's token is served"


def test_a_token_acquired_for_one_account_is_not_stored_under_another() -> None:
    authority = MockAuthority.with_defaults()
    credential = device_credential(authority)
    credential.get_token(VAULT)
    core = credential._core
    first = core.account
    plan = core.plan((STORAGE,), claims=None, tenant_id=None, enable_cae=False)
    attempt = core.attempt(plan, core.ticket(plan))  # thread A: silent refresh for `first` begins
    other = "00000000-0000-0000-0000-00000000beef." + DEFAULT_TENANT
    core.set_account(other)  # thread B: authenticate() as another user
    now = int(time.time())
    result = TokenResult(
        access_token="token-of-the-first-account",
        token_type="Bearer",
        expires_on=now + 3600,
        refresh_on=None,
        ext_expires_on=None,
        scopes=(STORAGE,),
    )
    attempt.succeeded(result)  # type: ignore[union-attr]
    assert first != other
    served = core.cache.get(core.plan((STORAGE,), claims=None, tenant_id=None, enable_cae=False).key)
    assert served is None or served.token != "token-of-the-first-account"


# --- 5. SharedTokenCacheCredential ignores the authentication record's tenant -------------------------


def test_shared_cache_with_a_record_requests_tokens_from_the_records_tenant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyring
    import keyring.backends.fail

    from identity.settings import open_persistent_cache

    monkeypatch.setenv("HOME", str(tmp_path))
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        authority = MockAuthority.with_defaults()
        options = identity.TokenCachePersistenceOptions(name="shared-review", allow_unencrypted_storage=True)
        home = f"11111111-2222-3333-4444-555555555555.{OTHER_TENANT}"
        cache = open_persistent_cache(options)
        cache.partition(cae=False).add_records(
            AccountRecord(
                home_account_id=home,
                environment="login.microsoftonline.com",
                realm=OTHER_TENANT,
                local_account_id="11111111-2222-3333-4444-555555555555",
                username=DEFAULT_USERNAME,
                authority_type="MSSTS",
            ),
            RefreshTokenRecord(
                secret="a-family-refresh-token",
                home_account_id=home,
                environment="login.microsoftonline.com",
                client_id=DEVELOPER_SIGN_ON_CLIENT_ID,
                family_id="1",
            ),
        )
        # The user signed in as a guest of DEFAULT_TENANT (their home is OTHER_TENANT).
        record = identity.AuthenticationRecord(
            DEFAULT_TENANT, DEVELOPER_SIGN_ON_CLIENT_ID, "login.microsoftonline.com", home, DEFAULT_USERNAME
        )
        credential = identity.SharedTokenCacheCredential(
            authentication_record=record, cache_persistence_options=options, transport=authority.transport()
        )
        with contextlib.suppress(identity.ClientAuthenticationError):
            credential.get_token(VAULT)
        requests = authority.requests_to("token")
        assert requests, "no refresh request was sent"
        assert requests[0].path.startswith(f"/{DEFAULT_TENANT}/"), requests[0].path
    finally:
        keyring.set_keyring(previous)
