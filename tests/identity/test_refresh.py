"""Proactive refresh: a STALE token is refreshed; a failed refresh keeps serving it for 30 s at a time.

Time is moved with the fake clock installed by ``Api.credential`` (see the comment there).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from identity import ClientAuthenticationError

from .fakes import (
    NOW,
    VAULT,
    Api,
    FakeClock,
    FakeEntra,
    Reply,
    cred_form,
    fields,
    invalid_client,
    token_response,
    unavailable_503,
)

FIRST = "CANARY-AT-9b2c-first"
REFRESH_IN = 600
LIFETIME = 3600


def first_token() -> Reply:
    return token_response(FIRST, expires_in=LIFETIME, refresh_in=REFRESH_IN)


def refresh_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and "proactive token refresh failed" in r.getMessage()
    ]


async def test_fresh_token_is_served_until_refresh_on(api: Api, entra: FakeEntra, clock: FakeClock) -> None:
    entra.reply(first_token())
    credential = api.credential()

    first = await api.get_token_info(credential, VAULT)
    clock.advance(REFRESH_IN - 1)
    still = await api.get_token_info(credential, VAULT)

    assert fields(first) == fields(still) == (FIRST, int(NOW) + LIFETIME, "Bearer", int(NOW) + REFRESH_IN)
    assert len(entra.requests) == 1


async def test_stale_token_is_refreshed(api: Api, entra: FakeEntra, clock: FakeClock) -> None:
    entra.reply(first_token())
    credential = api.credential()

    await api.get_token(credential, VAULT)
    clock.advance(REFRESH_IN)
    refreshed = await api.get_token_info(credential, VAULT)
    again = await api.get_token(credential, VAULT)

    now = int(NOW) + REFRESH_IN
    assert fields(refreshed) == ("CANARY-AT-9b2c-2", now + 3599, "Bearer", None)
    assert (again.token, again.expires_on) == (refreshed.token, refreshed.expires_on)
    assert entra.forms == [cred_form(), cred_form()]


@pytest.mark.parametrize(
    ("failure", "attempts"),
    [
        pytest.param(lambda: [unavailable_503() for _ in range(4)], 4, id="503x4"),
        pytest.param(lambda: [invalid_client()], 1, id="400-invalid_client"),
    ],
)
async def test_failed_refresh_keeps_serving_and_waits_30_seconds(
    api: Api,
    entra: FakeEntra,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    failure: Callable[[], list[Reply]],
    attempts: int,
) -> None:
    entra.reply(first_token(), *failure())
    credential = api.credential()
    await api.get_token(credential, VAULT)

    clock.advance(REFRESH_IN + 5)
    kept = await api.get_token_info(credential, VAULT)

    assert fields(kept) == (FIRST, int(NOW) + LIFETIME, "Bearer", int(NOW) + REFRESH_IN)
    assert len(entra.requests) == 1 + attempts
    [warning] = refresh_warnings(caplog)
    assert warning.name == "identity"
    assert warning.getMessage().startswith(
        "ClientSecretCredential: proactive token refresh failed; the cached token stays in use until it "
        "expires. "
    )

    clock.advance(29.9)  # within 30 s of the failure: no new attempt
    paused = await api.get_token(credential, VAULT)
    assert paused.token == FIRST
    assert len(entra.requests) == 1 + attempts

    clock.advance(0.1)  # 30 s after the failure: refresh again
    refreshed = await api.get_token(credential, VAULT)
    assert refreshed.token == f"CANARY-AT-9b2c-{2 + attempts}"
    assert len(entra.requests) == 2 + attempts
    assert entra.forms == [cred_form()] * (2 + attempts)
    assert len(refresh_warnings(caplog)) == 1


async def test_expired_token_whose_refresh_fails_raises(
    api: Api, entra: FakeEntra, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    entra.reply(first_token(), invalid_client(), invalid_client())
    credential = api.credential()
    await api.get_token(credential, VAULT)

    clock.advance(REFRESH_IN)
    assert (await api.get_token(credential, VAULT)).token == FIRST  # failed proactive refresh
    clock.advance(LIFETIME - REFRESH_IN - 300)  # within the 5-minute margin: expired

    with pytest.raises(ClientAuthenticationError) as caught:
        await api.get_token(credential, VAULT)

    assert "AADSTS7000215" in caught.value.message
    assert len(entra.requests) == 3
    assert len(refresh_warnings(caplog)) == 1


async def test_token_inside_the_expiry_margin_is_not_served(
    api: Api, entra: FakeEntra, clock: FakeClock
) -> None:
    credential = api.credential()
    first = await api.get_token(credential, VAULT)  # expires_in 3599, no refresh_on

    clock.advance(3599 - 301)
    assert (await api.get_token(credential, VAULT)) == first
    clock.advance(1)
    second = await api.get_token(credential, VAULT)

    assert second.token == "CANARY-AT-9b2c-2"
    assert len(entra.requests) == 2
