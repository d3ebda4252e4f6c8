"""protocol.pkce: RFC 7636 S256 and the flow's other one-time values."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from protocol.pkce import Pkce, code_challenge, new_nonce, new_pkce, new_state

UNRESERVED = re.compile(r"^[A-Za-z0-9\-._~]+$")


def independent_s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).decode().rstrip("=")


def test_rfc7636_appendix_b_vector() -> None:
    # Appendix B: the verifier is the base64url encoding of these 32 octets.
    octets = bytes(
        [116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186,
         22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121]
    )  # fmt: skip
    verifier = base64.urlsafe_b64encode(octets).decode().rstrip("=")
    assert verifier == "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge(verifier) == independent_s256(verifier)
    assert code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@pytest.mark.parametrize("verifier", ["a" * 43, "~._-" * 20, "Z" * 128])
def test_challenge_is_unpadded_s256(verifier: str) -> None:
    challenge = code_challenge(verifier)
    assert (challenge, len(challenge), "=" in challenge) == (independent_s256(verifier), 43, False)


def test_new_pkce() -> None:
    pairs = [new_pkce() for _ in range(50)]
    for pkce in pairs:
        assert 43 <= len(pkce.verifier) <= 128
        assert UNRESERVED.match(pkce.verifier)
        assert (pkce.challenge, pkce.method) == (independent_s256(pkce.verifier), "S256")
    assert len({pkce.verifier for pkce in pairs}) == 50


def test_pkce_repr_hides_the_verifier() -> None:
    pkce = new_pkce()
    assert pkce.verifier not in repr(pkce)
    assert repr(Pkce(verifier="CANARY-VERIFIER-x", challenge="c")) == "Pkce(challenge='c', method='S256')"


@pytest.mark.parametrize("make", [new_state, new_nonce])
def test_state_and_nonce_are_unique_and_url_safe(make: object) -> None:
    values = [make() for _ in range(100)]  # type: ignore[operator]
    assert len(set(values)) == 100
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32,}", value) for value in values)
    assert set(values).isdisjoint({new_state(), new_nonce()})
