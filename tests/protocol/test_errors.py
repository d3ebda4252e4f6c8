"""protocol.errors: the error tree and the translation of httpx transport failures."""

from __future__ import annotations

import httpx
import pytest

from protocol.errors import (
    ClaimsChallengeError,
    ClientAssertionError,
    InteractionRequiredError,
    MalformedResponseError,
    OAuthError,
    ServiceError,
    ThrottledError,
    TransportError,
    translate_transport_error,
)

from .helpers import SECRET_CANARY, assert_no_canary


def test_tree() -> None:
    assert {
        cls.__name__: [base.__name__ for base in cls.__mro__[1:] if base is not object]
        for cls in (
            TransportError,
            MalformedResponseError,
            ClientAssertionError,
            ServiceError,
            OAuthError,
            InteractionRequiredError,
            ClaimsChallengeError,
            ThrottledError,
        )
    } == {
        "TransportError": ["ProtocolError", "Exception", "BaseException"],
        "MalformedResponseError": ["ProtocolError", "Exception", "BaseException"],
        "ClientAssertionError": ["ProtocolError", "Exception", "BaseException"],
        "ServiceError": ["ProtocolError", "Exception", "BaseException"],
        "OAuthError": ["ProtocolError", "Exception", "BaseException"],
        "InteractionRequiredError": ["OAuthError", "ProtocolError", "Exception", "BaseException"],
        "ClaimsChallengeError": [
            "InteractionRequiredError",
            "OAuthError",
            "ProtocolError",
            "Exception",
            "BaseException",
        ],
        "ThrottledError": ["OAuthError", "ProtocolError", "Exception", "BaseException"],
    }


def test_oauth_error_defaults_and_fields() -> None:
    bare = OAuthError("invalid_grant", error="invalid_grant")
    assert (
        bare.message,
        str(bare),
        bare.error,
        bare.error_description,
        bare.error_codes,
        bare.correlation_id,
        bare.trace_id,
        bare.timestamp,
        bare.suberror,
        bare.claims,
        bare.status_code,
        bare.retryable,
        bare.retry_after,
    ) == (
        "invalid_grant",
        "invalid_grant",
        "invalid_grant",
        "",
        (),
        None,
        None,
        None,
        None,
        None,
        None,
        False,
        None,
    )
    full = ThrottledError(
        "slow down",
        error="temporarily_unavailable",
        error_codes=[50196],
        status_code=429,
        retryable=True,
        retry_after=3.5,
    )
    assert (full.error_codes, full.status_code, full.retryable, full.retry_after) == (
        (50196,),
        429,
        True,
        3.5,
    )


def test_other_errors_keep_their_fields() -> None:
    service = ServiceError("m", status_code=502, retryable=True, url="https://h/p")
    malformed = MalformedResponseError("m", status_code=200, url="https://h/p")
    transport = TransportError("m", url="https://h/p")
    assert (service.status_code, service.retryable, service.url) == (502, True, "https://h/p")
    assert (malformed.status_code, malformed.url, MalformedResponseError("m").status_code) == (
        200,
        "https://h/p",
        None,
    )
    assert (transport.url, transport.message) == ("https://h/p", "m")


REQUEST = httpx.Request(
    "POST",
    f"https://login.contoso.com/tenant/oauth2/v2.0/token?client_secret={SECRET_CANARY}#frag",
    data={"client_secret": SECRET_CANARY},
)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ReadTimeout("read timed out"), "timed out"),
        (httpx.ConnectTimeout("connect timed out"), "timed out"),
        (httpx.WriteTimeout("w"), "timed out"),
        (httpx.PoolTimeout("p"), "timed out"),
        (httpx.ConnectError("refused"), "could not connect"),
        (httpx.RemoteProtocolError("eof"), "the connection was closed without a complete response"),
        (httpx.ReadError("reset"), "the request failed"),
        (httpx.UnsupportedProtocol("gopher"), "the request failed"),
    ],
)
def test_translate_transport_error(exc: httpx.RequestError, kind: str) -> None:
    translated = translate_transport_error(exc, REQUEST)
    assert isinstance(translated, TransportError)
    assert str(translated).startswith(
        f"POST https://login.contoso.com/tenant/oauth2/v2.0/token: {kind} ({type(exc).__name__})."
    )
    assert "HTTPS_PROXY" in str(translated)
    assert translated.url == "https://login.contoso.com/tenant/oauth2/v2.0/token"
    assert_no_canary(str(translated), repr(translated))
    assert "frag" not in str(translated)
