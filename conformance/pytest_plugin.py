"""pytest plugin: a ``mock_authority`` fixture for any test suite.

Installed with the package (entry point ``pytest11``), so a project that depends on
``entra-identity`` can write::

    from conformance.authority import DEFAULT_CLIENT_ID, DEFAULT_SECRET, DEFAULT_TENANT

    def test_my_service(mock_authority):
        credential = ClientSecretCredential(
            DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_SECRET, transport=mock_authority.transport()
        )
        token = credential.get_token("https://vault.azure.net/.default")
        assert mock_authority.describe_token(token.token) is not None

The mock answers for whatever host a request names, so the default public-cloud authority works
in process without any network.

The fixture yields a fresh :class:`conformance.authority.MockAuthority` with the default tenant,
applications and user, and fails the test if any request reached it that no route matched.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from conformance.authority import MockAuthority


@pytest.fixture
def mock_authority() -> Iterator[MockAuthority]:
    """A fresh mock Entra ID authority (in process); unmatched requests fail the test."""
    from conformance.authority import MockAuthority
    from protocol.memo import DISCOVERY_MEMO

    # Discovery documents are shared process-wide; a fresh authority must not see an earlier one's.
    DISCOVERY_MEMO.clear()
    authority = MockAuthority.with_defaults()
    yield authority
    DISCOVERY_MEMO.clear()
    if authority.unmatched:
        summary = ", ".join(f"{r.method} {r.url}" for r in authority.unmatched[:5])
        pytest.fail(f"requests reached the mock authority that no route matched: {summary}")
