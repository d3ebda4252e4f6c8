"""Federated identity credentials in the mock authority (workload identity federation)."""

from __future__ import annotations

import httpx
import pytest

from conformance.authority import DEFAULT_TENANT, ExternalIssuer, MockAuthority

CLIENT_ID = "9a8b7c6d-0000-4000-8000-00000000fed1"
SUBJECT = "repo:contoso/app:environment:prod"
TOKEN_URL = f"https://login.microsoftonline.com/{DEFAULT_TENANT}/oauth2/v2.0/token"
NOW = 1_800_000_000.0


@pytest.fixture
def issuer() -> ExternalIssuer:
    return ExternalIssuer("https://token.actions.example.test")


@pytest.fixture
def authority(issuer: ExternalIssuer) -> MockAuthority:
    mock = MockAuthority.with_defaults(clock=lambda: NOW)
    mock.add_application(DEFAULT_TENANT, CLIENT_ID)
    mock.add_federated_credential(DEFAULT_TENANT, CLIENT_ID, issuer, SUBJECT)
    return mock


def _post(authority: MockAuthority, assertion: str) -> httpx.Response:
    form = {
        "client_id": CLIENT_ID,
        "grant_type": "client_credentials",
        "scope": "https://vault.azure.net/.default",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    return authority.handle(httpx.Request("POST", TOKEN_URL, data=form))


def test_trusted_issuer_and_subject_get_a_token(authority: MockAuthority, issuer: ExternalIssuer) -> None:
    response = _post(authority, issuer.mint(SUBJECT, now=NOW))
    assert response.status_code == 200
    issued = authority.describe_token(response.json()["access_token"])
    assert issued is not None
    assert issued.client_id == CLIENT_ID


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda issuer: ExternalIssuer("https://elsewhere.example.test").mint(SUBJECT, now=NOW), 700211),
        (lambda issuer: issuer.mint(SUBJECT, audience="api://other", now=NOW), 700212),
        (lambda issuer: issuer.mint("repo:contoso/app:environment:dev", now=NOW), 700213),
        (lambda issuer: issuer.mint(SUBJECT, now=NOW - 7200, lifetime=600), 700024),
        (lambda issuer: ExternalIssuer(issuer.issuer).mint(SUBJECT, now=NOW), 700027),
    ],
    ids=["issuer", "audience", "subject", "expired", "signature"],
)
def test_untrusted_assertions_are_refused(
    authority: MockAuthority, issuer: ExternalIssuer, make: object, code: int
) -> None:
    assertion = make(issuer)  # type: ignore[operator]
    response = _post(authority, assertion)
    body = response.json()
    assert (response.status_code, body["error"], body["error_codes"]) == (401, "invalid_client", [code])
    assert assertion not in response.text
