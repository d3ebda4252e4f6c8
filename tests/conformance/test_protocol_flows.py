"""Every protocol flow against the mock Entra ID authority, through both drivers.

Where ``tests/protocol`` checks builders and parsers against canned responses, this module checks
that what they send is what an Entra-shaped authority accepts, and that its answers parse: client
credentials (secret, PS256 and RS256 assertions, chains), discovery for custom and AD FS
authorities, refresh (rotation, revocation), authorization code with PKCE, device code polling,
on-behalf-of and password.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import jwt
import pytest

from conformance.authority import (
    DEFAULT_CLIENT_ID,
    DEFAULT_PASSWORD,
    DEFAULT_SECRET,
    DEFAULT_TENANT,
    DEFAULT_USER_OBJECT_ID,
    DEFAULT_USERNAME,
    PUBLIC_CLIENT_ID,
    MockAuthority,
)
from conformance.mock.keys import generate_client_certificate
from protocol.authority import Authority
from protocol.authorization_code import authorization_code_flow
from protocol.certificate import load_certificate
from protocol.client_auth import CertificateAssertion, ClientSecret
from protocol.client_credentials import client_credentials_flow
from protocol.device_code import (
    build_device_code_request,
    device_code_poll_flow,
    parse_device_code_response,
)
from protocol.discovery import UntrustedAuthorityError
from protocol.drivers import AsyncDriver, SyncDriver
from protocol.errors import InteractionRequiredError, OAuthError
from protocol.flows import Flow
from protocol.on_behalf_of import on_behalf_of_flow
from protocol.password import password_flow
from protocol.pkce import new_nonce, new_pkce
from protocol.refresh_token import refresh_token_flow
from protocol.responses import TokenResult
from protocol.retry import RetryPolicy

SCOPE = "https://vault.azure.net/.default"
USER_SCOPE = "https://graph.microsoft.com/User.Read"
POLICY = RetryPolicy(backoff_factor=0)
REDIRECT_URI = "http://localhost:8400"


class FakeClock:
    """Shared by the mock and the flows; the drivers' sleep advances it instead of waiting."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[], None] | None = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep()

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


Run = Callable[[Flow[Any]], Awaitable[Any]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def authority(clock: FakeClock) -> Iterator[MockAuthority]:
    mock = MockAuthority.with_defaults(clock=clock)
    yield mock
    assert mock.unmatched == []


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest, authority: MockAuthority, clock: FakeClock) -> Run:
    if request.param == "sync":
        sync_driver = SyncDriver(transport=authority.transport(), sleep=clock.sleep)

        async def run_sync(flow: Flow[Any]) -> Any:
            return sync_driver.run(flow)

        return run_sync
    async_driver = AsyncDriver(transport=authority.transport(), sleep=clock.asleep)

    async def run_async(flow: Flow[Any]) -> Any:
        return await async_driver.run(flow)

    return run_async


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


# --- client credentials ----------------------------------------------------------------------


async def test_client_secret_on_public_cloud_is_one_round_trip(
    run: Run, authority: MockAuthority, clock: FakeClock
) -> None:
    result: TokenResult = await run(
        client_credentials_flow(
            Authority.create("login.microsoftonline.com", DEFAULT_TENANT),
            client_id=DEFAULT_CLIENT_ID,
            scopes=[SCOPE],
            client_auth=ClientSecret(DEFAULT_SECRET),
            policy=POLICY,
            clock=clock,
        )
    )
    assert [r.endpoint for r in authority.requests] == ["token"]
    issued = authority.describe_token(result.access_token)
    assert issued is not None
    assert (issued.client_id, issued.tenant, issued.scopes, issued.user) == (
        DEFAULT_CLIENT_ID,
        DEFAULT_TENANT,
        (SCOPE,),
        None,
    )
    assert result.expires_on == int(clock.now) + authority.token_lifetime
    assert result.refresh_token is None


@pytest.mark.parametrize(("algorithm", "send_chain"), [("PS256", False), ("RS256", False), ("PS256", True)])
async def test_certificate_assertions_are_accepted(
    run: Run, authority: MockAuthority, clock: FakeClock, algorithm: str, send_chain: bool
) -> None:
    client_id = "5d1f9c2e-0000-4000-8000-00000000c3r7"
    generated = generate_client_certificate()
    authority.add_application(DEFAULT_TENANT, client_id, certificate=generated.certificate_pem)
    auth = CertificateAssertion(load_certificate(generated.pem), algorithm=algorithm, send_chain=send_chain)  # type: ignore[arg-type]
    result: TokenResult = await run(
        client_credentials_flow(
            Authority.create("login.microsoftonline.com", DEFAULT_TENANT),
            client_id=client_id,
            scopes=[SCOPE],
            client_auth=auth,
            policy=POLICY,
            clock=clock,
        )
    )
    issued = authority.describe_token(result.access_token)
    assert issued is not None
    assert issued.client_id == client_id
    header = jwt.get_unverified_header(authority.requests_to("token")[0].form["client_assertion"])
    assert header["alg"] == algorithm
    assert ("x5c" in header) is send_chain


async def test_assertion_for_another_certificate_is_rejected(
    run: Run, authority: MockAuthority, clock: FakeClock
) -> None:
    client_id = "5d1f9c2e-0000-4000-8000-0000000bad01"
    authority.add_application(
        DEFAULT_TENANT, client_id, certificate=generate_client_certificate().certificate_pem
    )
    imposter = CertificateAssertion(load_certificate(generate_client_certificate().pem))
    with pytest.raises(OAuthError) as caught:
        await run(
            client_credentials_flow(
                Authority.create("login.microsoftonline.com", DEFAULT_TENANT),
                client_id=client_id,
                scopes=[SCOPE],
                client_auth=imposter,
                policy=POLICY,
                clock=clock,
            )
        )
    assert (caught.value.error, caught.value.error_codes, caught.value.status_code) == (
        "invalid_client",
        (700027,),
        401,
    )
    assert len(authority.requests_to("token")) == 1


# --- discovery -------------------------------------------------------------------------------


async def test_custom_authority_goes_through_instance_discovery_once(
    run: Run, authority: MockAuthority, clock: FakeClock
) -> None:
    custom = Authority.create("https://login.contoso-sovereign.test", DEFAULT_TENANT)

    def flow() -> Flow[TokenResult]:
        return client_credentials_flow(
            custom,
            client_id=DEFAULT_CLIENT_ID,
            scopes=[SCOPE],
            client_auth=ClientSecret(DEFAULT_SECRET),
            policy=POLICY,
            clock=clock,
        )

    with pytest.raises(UntrustedAuthorityError, match="disable_instance_discovery=True"):
        await run(flow())
    assert [r.endpoint for r in authority.requests] == ["instance-discovery"]
    assert authority.requests[0].url.startswith(
        "https://login.microsoftonline.com/common/discovery/instance?"
    )

    authority.trusted_hosts.add("login.contoso-sovereign.test")
    authority.reset_requests()
    first: TokenResult = await run(flow())
    assert [r.endpoint for r in authority.requests] == ["instance-discovery", "openid-configuration", "token"]
    assert (
        authority.requests[2].url
        == f"https://login.contoso-sovereign.test/{DEFAULT_TENANT}/oauth2/v2.0/token"
    )
    authority.reset_requests()
    second: TokenResult = await run(flow())
    assert [r.endpoint for r in authority.requests] == ["token"], "discovery is fetched once per process"
    assert first.access_token != second.access_token


async def test_adfs_authority_uses_its_own_layout(
    run: Run, authority: MockAuthority, clock: FakeClock
) -> None:
    authority.add_tenant("adfs")
    generated = generate_client_certificate()
    authority.add_application("adfs", DEFAULT_CLIENT_ID, certificate=generated.certificate_pem)
    result: TokenResult = await run(
        client_credentials_flow(
            Authority.create("https://adfs.contoso.test", "adfs"),
            client_id=DEFAULT_CLIENT_ID,
            scopes=[SCOPE],
            client_auth=CertificateAssertion(load_certificate(generated.pem), algorithm="RS256"),
            policy=POLICY,
            clock=clock,
        )
    )
    assert [r.url for r in authority.requests] == [
        "https://adfs.contoso.test/adfs/.well-known/openid-configuration",
        "https://adfs.contoso.test/adfs/oauth2/token",
    ]
    assert authority.describe_token(result.access_token) is not None


# --- refresh ---------------------------------------------------------------------------------


async def test_refresh_token_is_redeemed_and_rotated(
    run: Run, authority: MockAuthority, clock: FakeClock
) -> None:
    endpoint = f"https://login.microsoftonline.com/{DEFAULT_TENANT}/oauth2/v2.0/token"
    old = authority.issue_refresh_token(
        DEFAULT_TENANT, PUBLIC_CLIENT_ID, [USER_SCOPE], username=DEFAULT_USERNAME
    )
    result: TokenResult = await run(
        refresh_token_flow(
            endpoint,
            client_id=PUBLIC_CLIENT_ID,
            refresh_token=old,
            scopes=[USER_SCOPE],
            policy=POLICY,
            clock=clock,
        )
    )
    assert result.refresh_token is not None
    assert result.refresh_token != old
    assert result.home_account_id == f"{DEFAULT_USER_OBJECT_ID}.{DEFAULT_TENANT}"
    issued = authority.describe_token(result.access_token)
    assert issued is not None
    assert issued.user == DEFAULT_USERNAME
    form = authority.requests_to("token")[0].form
    assert form["grant_type"] == "refresh_token"
    assert form["scope"].split() == [USER_SCOPE, "openid", "profile", "offline_access"]

    authority.strict_rotation = True
    rotated: TokenResult = await run(
        refresh_token_flow(
            endpoint,
            client_id=PUBLIC_CLIENT_ID,
            refresh_token=result.refresh_token,
            scopes=[USER_SCOPE],
            policy=POLICY,
            clock=clock,
        )
    )
    with pytest.raises(OAuthError) as caught:
        await run(
            refresh_token_flow(
                endpoint,
                client_id=PUBLIC_CLIENT_ID,
                refresh_token=result.refresh_token,
                scopes=[USER_SCOPE],
                policy=POLICY,
                clock=clock,
            )
        )
    assert caught.value.error == "invalid_grant"
    assert rotated.refresh_token is not None

    authority.revoke_refresh_token(rotated.refresh_token)
    with pytest.raises(InteractionRequiredError) as revoked:
        await run(
            refresh_token_flow(
                endpoint,
                client_id=PUBLIC_CLIENT_ID,
                refresh_token=rotated.refresh_token,
                scopes=[USER_SCOPE],
                policy=POLICY,
                clock=clock,
            )
        )
    assert revoked.value.error_codes == (50173,)
    assert len(authority.requests_to("token")) == 4, "invalid_grant is never retried"


# --- authorization code + PKCE ---------------------------------------------------------------


async def test_authorization_code_with_pkce(run: Run, authority: MockAuthority, clock: FakeClock) -> None:
    authority.add_application(
        DEFAULT_TENANT, PUBLIC_CLIENT_ID, public_client=True, redirect_uris=[REDIRECT_URI]
    )
    pkce, nonce = new_pkce(), new_nonce()
    endpoint = f"https://login.microsoftonline.com/{DEFAULT_TENANT}/oauth2/v2.0/token"

    def redeem(code: str, verifier: str) -> Flow[TokenResult]:
        return authorization_code_flow(
            endpoint,
            client_id=PUBLIC_CLIENT_ID,
            code=code,
            redirect_uri=REDIRECT_URI,
            scopes=[USER_SCOPE],
            code_verifier=verifier,
            policy=POLICY,
            clock=clock,
        )

    def issue() -> str:
        return authority.issue_authorization_code(
            DEFAULT_TENANT,
            PUBLIC_CLIENT_ID,
            redirect_uri=REDIRECT_URI,
            scopes=[USER_SCOPE],
            username=DEFAULT_USERNAME,
            code_challenge=pkce.challenge,
            nonce=nonce,
        )

    with pytest.raises(OAuthError) as caught:
        await run(redeem(issue(), new_pkce().verifier))
    assert (caught.value.error, caught.value.error_codes) == ("invalid_grant", (501481,))

    result: TokenResult = await run(redeem(issue(), pkce.verifier))
    assert result.id_token is not None
    id_claims = _claims(result.id_token)
    assert (id_claims["nonce"], id_claims["aud"], id_claims["preferred_username"]) == (
        nonce,
        PUBLIC_CLIENT_ID,
        DEFAULT_USERNAME,
    )
    assert result.home_account_id == f"{DEFAULT_USER_OBJECT_ID}.{DEFAULT_TENANT}"
    assert authority.requests_to("token")[1].form["code_verifier"] == pkce.verifier


# --- device code -----------------------------------------------------------------------------


async def test_device_code_polls_until_the_user_approves(
    run: Run, authority: MockAuthority, clock: FakeClock
) -> None:
    base = f"https://login.microsoftonline.com/{DEFAULT_TENANT}/oauth2/v2.0"

    def start() -> Flow[Any]:
        response = yield build_device_code_request(
            f"{base}/devicecode", client_id=PUBLIC_CLIENT_ID, scopes=[USER_SCOPE]
        )
        assert response is not None
        return parse_device_code_response(response, requested_at=clock())

    device = await run(start())
    assert device.message
    polls = 0

    def approve_after_two_polls() -> None:
        nonlocal polls
        polls += 1
        if polls == 2:
            authority.approve_device_code(device.user_code, DEFAULT_USERNAME)

    clock.on_sleep = approve_after_two_polls
    result: TokenResult = await run(
        device_code_poll_flow(f"{base}/token", device, client_id=PUBLIC_CLIENT_ID, policy=POLICY, clock=clock)
    )
    issued = authority.describe_token(result.access_token)
    assert issued is not None
    assert issued.user == DEFAULT_USERNAME
    assert len(authority.requests_to("token")) == 3
    assert clock.sleeps == [device.interval, device.interval]


# --- on-behalf-of and password ---------------------------------------------------------------


async def test_on_behalf_of_exchanges_a_user_token(
    run: Run, authority: MockAuthority, clock: FakeClock
) -> None:
    incoming = authority.issue_user_access_token(
        DEFAULT_TENANT, PUBLIC_CLIENT_ID, [f"api://{DEFAULT_CLIENT_ID}/access"], DEFAULT_USERNAME
    )
    result: TokenResult = await run(
        on_behalf_of_flow(
            f"https://login.microsoftonline.com/{DEFAULT_TENANT}/oauth2/v2.0/token",
            client_id=DEFAULT_CLIENT_ID,
            user_assertion=incoming,
            scopes=[USER_SCOPE],
            client_auth=ClientSecret(DEFAULT_SECRET),
            policy=POLICY,
            clock=clock,
        )
    )
    issued = authority.describe_token(result.access_token)
    assert issued is not None
    assert (issued.user, issued.client_id) == (DEFAULT_USERNAME, DEFAULT_CLIENT_ID)
    form = authority.requests_to("token")[0].form
    assert form["requested_token_use"] == "on_behalf_of"
    assert form["assertion"] == incoming


async def test_password_grant(run: Run, authority: MockAuthority, clock: FakeClock) -> None:
    endpoint = f"https://login.microsoftonline.com/{DEFAULT_TENANT}/oauth2/v2.0/token"
    result: TokenResult = await run(
        password_flow(
            endpoint,
            client_id=PUBLIC_CLIENT_ID,
            username=DEFAULT_USERNAME,
            password=DEFAULT_PASSWORD,
            scopes=[USER_SCOPE],
            policy=POLICY,
            clock=clock,
        )
    )
    assert authority.requests_to("token")[0].form["client_info"] == "1"
    assert authority.requests_to("token")[0].headers["x-anchormailbox"] == f"upn:{DEFAULT_USERNAME}"
    issued = authority.describe_token(result.access_token)
    assert issued is not None
    assert issued.user == DEFAULT_USERNAME
    with pytest.raises(OAuthError) as caught:
        await run(
            password_flow(
                endpoint,
                client_id=PUBLIC_CLIENT_ID,
                username=DEFAULT_USERNAME,
                password="wrong-password",
                scopes=[USER_SCOPE],
                policy=POLICY,
                clock=clock,
            )
        )
    assert (caught.value.error, caught.value.error_codes) == ("invalid_grant", (50126,))
    assert "wrong-password" not in str(caught.value)
