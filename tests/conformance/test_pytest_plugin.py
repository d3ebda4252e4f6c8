"""The ``mock_authority`` fixture the package registers through the ``pytest11`` entry point."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from conformance.authority import DEFAULT_CLIENT_ID, DEFAULT_SECRET, DEFAULT_TENANT, MockAuthority
from identity import ClientSecretCredential
from identity.aio import ClientSecretCredential as AsyncClientSecretCredential

pytest_plugins = ["pytester"]


def test_plugin_is_registered_as_entry_point() -> None:
    names = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert names.get("entra_identity_mock_authority") == "conformance.pytest_plugin"


def test_fixture_serves_a_credential_in_process(mock_authority: MockAuthority) -> None:
    credential = ClientSecretCredential(
        DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, transport=mock_authority.transport()
    )
    token = credential.get_token("https://vault.azure.net/.default")
    issued = mock_authority.describe_token(token.token)
    assert issued is not None
    assert issued.client_id == DEFAULT_CLIENT_ID
    assert [r.path for r in mock_authority.requests_to("token")] == [f"/{DEFAULT_TENANT}/oauth2/v2.0/token"]


async def test_fixture_serves_an_async_credential(mock_authority: MockAuthority) -> None:
    async with AsyncClientSecretCredential(
        DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, transport=mock_authority.transport()
    ) as credential:
        token = await credential.get_token("https://vault.azure.net/.default")
    assert mock_authority.describe_token(token.token) is not None


def test_fixture_fails_a_test_that_hits_an_unmatched_route(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        """
        import httpx

        def test_unmatched(mock_authority):
            with httpx.Client(transport=mock_authority.transport()) as client:
                client.get("https://login.microsoftonline.com/no/such/route")
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*no route matched*GET https://login.microsoftonline.com/no/such/route*"])
