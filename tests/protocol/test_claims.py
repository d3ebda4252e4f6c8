"""protocol.claims: a claims challenge and client capabilities merged into the ``claims`` parameter."""

from __future__ import annotations

import json

import pytest

from protocol.claims import CAE_CAPABILITY, merge_claims

CHALLENGE = '{"access_token":{"nbf":{"essential":true,"value":"1604106651"}}}'


@pytest.mark.parametrize(("claims", "expected"), [(None, None), ("", None), ("   ", None)])
def test_nothing_to_send(claims: str | None, expected: None) -> None:
    assert merge_claims(claims, []) is expected
    assert merge_claims(claims) is expected


def test_challenge_only_is_sent_unchanged() -> None:
    assert merge_claims(CHALLENGE, []) == CHALLENGE
    assert merge_claims(f"  {CHALLENGE}\n") == CHALLENGE


def test_non_json_challenge_without_capabilities_is_passed_through() -> None:
    assert merge_claims("not json", ()) == "not json"


@pytest.mark.parametrize("claims", [None, "", "  "])
def test_capabilities_only(claims: str | None) -> None:
    merged = merge_claims(claims, [CAE_CAPABILITY])
    assert merged is not None
    assert json.loads(merged) == {"access_token": {"xms_cc": {"values": ["CP1"]}}}
    assert merged == '{"access_token": {"xms_cc": {"values": ["CP1"]}}}'


def test_cae_capability_constant() -> None:
    assert CAE_CAPABILITY == "CP1"


def test_capabilities_are_merged_into_the_challenge() -> None:
    challenge = json.dumps(
        {
            "access_token": {"nbf": {"essential": True, "value": "1604106651"}, "acrs": {"values": ["c1"]}},
            "id_token": {"auth_time": {"essential": True}},
        }
    )
    merged = merge_claims(challenge, ["CP1", "cp2"])
    assert merged is not None
    assert json.loads(merged) == {
        "access_token": {
            "nbf": {"essential": True, "value": "1604106651"},
            "acrs": {"values": ["c1"]},
            "xms_cc": {"values": ["CP1", "cp2"]},
        },
        "id_token": {"auth_time": {"essential": True}},
    }


def test_existing_xms_cc_is_replaced() -> None:
    challenge = '{"access_token": {"xms_cc": {"values": ["old"], "essential": true}, "x": 1}}'
    merged = merge_claims(challenge, ["CP1"])
    assert merged is not None
    assert json.loads(merged) == {"access_token": {"xms_cc": {"values": ["CP1"]}, "x": 1}}


@pytest.mark.parametrize("access_token", ['"text"', "null", "[1]", "5"])
def test_non_object_access_token_member_is_replaced(access_token: str) -> None:
    merged = merge_claims(f'{{"access_token": {access_token}, "other": true}}', ["CP1"])
    assert merged is not None
    assert json.loads(merged) == {"access_token": {"xms_cc": {"values": ["CP1"]}}, "other": True}


@pytest.mark.parametrize("challenge", ["[1, 2]", '"text"', "null", "42", "not json", "{broken"])
def test_non_object_challenge_with_capabilities_is_a_value_error(challenge: str) -> None:
    with pytest.raises(ValueError, match="not a JSON object"):
        merge_claims(challenge, ["CP1"])


def test_the_input_is_not_modified() -> None:
    before = CHALLENGE
    merge_claims(CHALLENGE, ["CP1"])
    assert before == CHALLENGE
