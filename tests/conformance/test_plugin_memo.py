"""The ``mock_authority`` fixture clears the process-wide discovery memo for every test.

Discovery documents are memoised per process (``protocol.memo.DISCOVERY_MEMO``), so without the
clearing a second test using the same custom authority would never ask its fresh mock authority
for metadata. The inner runs (pytester, in process, so they share the memo) show both sides: with
the fixture each test fetches the metadata; with bare ``MockAuthority`` objects only the first does.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"

PREAMBLE = """
from conformance.authority import DEFAULT_CLIENT_ID, DEFAULT_SECRET, DEFAULT_TENANT, MockAuthority
from identity import ClientSecretCredential

AUTHORITY = "https://login.contoso.test"
METADATA = f"{AUTHORITY}/{DEFAULT_TENANT}/v2.0/.well-known/openid-configuration"
TOKEN = f"{AUTHORITY}/{DEFAULT_TENANT}/oauth2/v2.0/token"


def metadata_requests(authority):
    credential = ClientSecretCredential(
        DEFAULT_TENANT,
        DEFAULT_CLIENT_ID,
        DEFAULT_SECRET,
        authority=AUTHORITY,
        disable_instance_discovery=True,
        transport=authority.transport(),
    )
    with credential:
        token = credential.get_token("https://vault.azure.net/.default")
    assert authority.describe_token(token.token) is not None
    assert {r.url for r in authority.requests_to("token")} == {TOKEN}
    return [r.url for r in authority.requests_to("openid-configuration")]
"""


def test_each_test_using_the_fixture_fetches_discovery_again(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        PREAMBLE
        + """

def test_first(mock_authority):
    assert metadata_requests(mock_authority) == [METADATA]


def test_second(mock_authority):
    assert metadata_requests(mock_authority) == [METADATA]


def test_one_test_fetches_once(mock_authority):
    assert metadata_requests(mock_authority) == [METADATA]
    assert metadata_requests(mock_authority) == [METADATA]  # the memo serves the second credential
"""
    )

    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:randomly")

    result.assert_outcomes(passed=3)


def test_without_the_fixture_the_memo_outlives_a_test(pytester: pytest.Pytester) -> None:
    """The control: the memo really is process-wide, so the fixture's clearing is what matters."""
    pytester.makeini(INI)
    pytester.makepyfile(
        PREAMBLE
        + """

def test_first():
    assert metadata_requests(MockAuthority.with_defaults()) == [METADATA]


def test_second():
    assert metadata_requests(MockAuthority.with_defaults()) == []
"""
    )

    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:randomly")

    result.assert_outcomes(passed=2)
