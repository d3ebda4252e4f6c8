"""ClientSecretCredential (sync and ``identity.aio``): arguments, request shape, cache, CAE, tenants.

Every test runs twice through the ``api`` fixture (sync, async) against ``FakeEntra``.
"""

from __future__ import annotations

import json
import logging
import re

import httpx
import pytest

from identity import AccessToken, AccessTokenInfo, AzureAuthorityHosts, ClientAuthenticationError

from .fakes import (
    CLIENT_ID,
    GRAPH,
    NOW,
    OTHER_TENANT,
    SECRET,
    STORAGE,
    TENANT,
    VAULT,
    Api,
    ClosingTransport,
    FakeEntra,
    cae_form,
    cred_form,
    decoded_form,
    fields,
    new_request_id_is_uuid,
    token_response,
    token_url,
)

CHALLENGE = {"access_token": {"nbf": {"essential": True, "value": "1700000000"}}}
FIND_IDS = "https://learn.microsoft.com/partner-center/find-ids-and-domain-names"
USER_AGENT = re.compile(r"^entra-identity/\S+ Python/\d+\.\d+\.\d+ \(\w+\)$")


# --- constructor ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tenant_id", "client_id", "client_secret", "message"),
    [
        pytest.param(
            TENANT, "", SECRET, "client_id should be the id of a Microsoft Entra application", id="client"
        ),
        pytest.param(
            TENANT,
            CLIENT_ID,
            "",
            "secret should be a Microsoft Entra application's client secret",
            id="secret",
        ),
        pytest.param(
            "",
            CLIENT_ID,
            SECRET,
            "tenant_id should be a Microsoft Entra tenant's id (also called its 'directory id')",
            id="tenant",
        ),
    ],
)
async def test_empty_argument_is_rejected_with_azure_identity_message(
    api: Api, entra: FakeEntra, tenant_id: str, client_id: str, client_secret: str, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        api.credential(tenant_id, client_id, client_secret)
    assert entra.requests == []


_EMPTY_COMBINATIONS = [
    pytest.param(("", CLIENT_ID, SECRET), id="tenant"),
    pytest.param((TENANT, "", SECRET), id="client"),
    pytest.param((TENANT, CLIENT_ID, ""), id="secret"),
    pytest.param(("", "", SECRET), id="tenant+client"),
    pytest.param(("", CLIENT_ID, ""), id="tenant+secret"),
    pytest.param((TENANT, "", ""), id="client+secret"),
    pytest.param(("", "", ""), id="all"),
]


@pytest.mark.parametrize("arguments", _EMPTY_COMBINATIONS)
async def test_empty_arguments_fail_like_azure_identity(api: Api, arguments: tuple[str, str, str]) -> None:
    import azure.identity
    import azure.identity.aio

    reference = azure.identity if api.mode == "sync" else azure.identity.aio
    with pytest.raises(ValueError) as expected:
        reference.ClientSecretCredential(*arguments)
    with pytest.raises(ValueError) as actual:
        api.credential(*arguments)
    assert str(actual.value) == str(expected.value)


@pytest.mark.parametrize("tenant_id", ["bad/tenant", "bad tenant", "tenant?x=1", "ténant"])
async def test_invalid_tenant_is_rejected_pointing_to_find_ids(api: Api, tenant_id: str) -> None:
    with pytest.raises(ValueError, match="Invalid tenant ID") as caught:
        api.credential(tenant_id)
    assert FIND_IDS in str(caught.value)


async def test_http_authority_is_rejected(api: Api) -> None:
    with pytest.raises(ValueError) as caught:
        api.credential(authority="http://login.microsoftonline.com")
    assert str(caught.value) == (
        "'http://login.microsoftonline.com' is an invalid authority. The value must be a TLS protected "
        "(https) URL."
    )


async def test_unknown_keyword_argument_is_a_type_error_naming_it(api: Api) -> None:
    with pytest.raises(TypeError) as caught:
        api.credential(additionaly_allowed_tenants=["*"])
    assert str(caught.value) == (
        "ClientSecretCredential got unexpected keyword argument(s): additionaly_allowed_tenants"
    )


async def test_repr_names_tenant_client_and_authority_only(api: Api) -> None:
    credential = api.credential()

    assert repr(credential) == (
        f"ClientSecretCredential(tenant_id='{TENANT}', client_id='{CLIENT_ID}', "
        "authority='https://login.microsoftonline.com')"
    )


@pytest.mark.parametrize(
    ("authority", "host"),
    [
        pytest.param("login.chinacloudapi.cn", "login.chinacloudapi.cn", id="bare-host-gets-https"),
        pytest.param("https://login.microsoftonline.us/ ", "login.microsoftonline.us", id="trailing-slash"),
        pytest.param(AzureAuthorityHosts.AZURE_GOVERNMENT, "login.microsoftonline.us", id="constant"),
    ],
)
async def test_authority_argument(api: Api, entra: FakeEntra, authority: str, host: str) -> None:
    await api.get_token(api.credential(authority=authority), VAULT)

    assert entra.urls == [token_url(host=host)]


async def test_azure_authority_host_is_honoured(
    api: Api, entra: FakeEntra, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "login.microsoftonline.us")

    await api.get_token(api.credential(), VAULT)

    assert entra.urls == [token_url(host="login.microsoftonline.us")]


async def test_explicit_authority_wins_over_azure_authority_host(
    api: Api, entra: FakeEntra, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "login.microsoftonline.us")

    await api.get_token(api.credential(authority=AzureAuthorityHosts.AZURE_CHINA), VAULT)

    assert entra.urls == [token_url(host="login.chinacloudapi.cn")]


# --- the token request and the cache --------------------------------------------------------------


async def test_first_token_is_one_client_credentials_post(api: Api, entra: FakeEntra) -> None:
    token = await api.get_token(api.credential(), VAULT)

    assert token == AccessToken("CANARY-AT-9b2c-1", int(NOW) + 3599)
    assert type(token.expires_on) is int
    [request] = entra.requests
    assert (request.method, str(request.url)) == ("POST", token_url())
    assert decoded_form(request) == cred_form()
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["accept"] == "application/json"
    assert USER_AGENT.match(request.headers["user-agent"]), request.headers["user-agent"]
    assert new_request_id_is_uuid(request)
    assert "authorization" not in request.headers


async def test_second_call_is_served_from_the_cache(api: Api, entra: FakeEntra) -> None:
    credential = api.credential()

    first = await api.get_token(credential, VAULT)
    second = await api.get_token(credential, VAULT)

    assert first == second == AccessToken("CANARY-AT-9b2c-1", int(NOW) + 3599)
    assert len(entra.requests) == 1


async def test_different_scopes_are_separate_requests(api: Api, entra: FakeEntra) -> None:
    credential = api.credential()

    vault = await api.get_token(credential, VAULT)
    graph = await api.get_token(credential, GRAPH)

    assert (vault.token, graph.token) == ("CANARY-AT-9b2c-1", "CANARY-AT-9b2c-2")
    assert entra.forms == [cred_form(VAULT), cred_form(GRAPH)]
    assert entra.requests[0].headers["client-request-id"] != entra.requests[1].headers["client-request-id"]


async def test_scope_order_does_not_matter_for_the_cache(api: Api, entra: FakeEntra) -> None:
    credential = api.credential()

    first = await api.get_token(credential, VAULT, GRAPH)
    second = await api.get_token(credential, GRAPH, VAULT)
    third = await api.get_token(credential, GRAPH, VAULT, GRAPH)

    assert first == second == third
    assert entra.forms == [cred_form(f"{VAULT} {GRAPH}")]


async def test_get_token_without_scope_is_a_value_error(api: Api, entra: FakeEntra) -> None:
    credential = api.credential()

    with pytest.raises(ValueError, match=r'^"get_token" requires at least one scope$'):
        await api.get_token(credential)
    with pytest.raises(ValueError, match=r'^"get_token_info" requires at least one scope$'):
        await api.get_token_info(credential)
    assert entra.requests == []


@pytest.mark.parametrize(
    ("body", "refresh_in"),
    [
        pytest.param({"expires_in": 3599}, None, id="short-lived-no-refresh_on"),
        pytest.param({"expires_in": 7199}, None, id="just-under-two-hours"),
        pytest.param({"expires_in": 7200}, 3600, id="two-hours-half-life"),
        pytest.param({"expires_in": 86399}, 43199, id="one-day-half-life"),
        pytest.param({"expires_in": 3599, "refresh_in": 1800}, 1800, id="refresh_in-sent"),
        pytest.param({"expires_in": 86399, "refresh_in": 600}, 600, id="refresh_in-wins"),
        pytest.param({"expires_in": "7200"}, 3600, id="numeric-string"),
    ],
)
async def test_get_token_info_returns_type_and_refresh_on(
    api: Api, entra: FakeEntra, body: dict[str, object], refresh_in: int | None
) -> None:
    entra.reply(token_response(**body))  # type: ignore[arg-type]

    info = await api.get_token_info(api.credential(), VAULT)

    lifetime = int(str(body["expires_in"]))
    expected_refresh = None if refresh_in is None else int(NOW) + refresh_in
    assert isinstance(info, AccessTokenInfo)
    assert fields(info) == ("CANARY-AT-9b2c", int(NOW) + lifetime, "Bearer", expected_refresh)


async def test_get_token_info_token_type_comes_from_the_response(api: Api, entra: FakeEntra) -> None:
    entra.reply(token_response(token_type="PoP"))

    info = await api.get_token_info(api.credential(), VAULT)

    assert info.token_type == "PoP"


async def test_get_token_info_and_get_token_share_the_cache(api: Api, entra: FakeEntra) -> None:
    credential = api.credential()

    info = await api.get_token_info(credential, VAULT, options={"unknown_option": True})  # type: ignore[typeddict-unknown-key]
    token = await api.get_token(credential, VAULT)

    assert token == AccessToken(info.token, info.expires_on)
    assert len(entra.requests) == 1


# --- CAE and claims -------------------------------------------------------------------------------


async def test_enable_cae_declares_cp1_and_is_cached_apart(api: Api, entra: FakeEntra) -> None:
    credential = api.credential()

    cae = await api.get_token(credential, VAULT, enable_cae=True)
    plain = await api.get_token(credential, VAULT)
    cae_again = await api.get_token(credential, VAULT, enable_cae=True)
    plain_again = await api.get_token_info(credential, VAULT, options={"enable_cae": False})

    assert (cae.token, plain.token) == ("CANARY-AT-9b2c-1", "CANARY-AT-9b2c-2")
    assert cae_again == cae
    assert plain_again.token == plain.token
    assert [decoded_form(r) for r in entra.requests] == [cae_form(), cred_form()]


async def test_claims_challenge_bypasses_cache_and_is_sent(api: Api, entra: FakeEntra) -> None:
    credential = api.credential()

    before = await api.get_token(credential, VAULT)
    challenged = await api.get_token(credential, VAULT, claims=json.dumps(CHALLENGE))
    after = await api.get_token(credential, VAULT)

    assert (before.token, challenged.token) == ("CANARY-AT-9b2c-1", "CANARY-AT-9b2c-2")
    assert after == challenged  # the new token is used from then on
    assert [decoded_form(r) for r in entra.requests] == [cred_form(), {**cred_form(), "claims": CHALLENGE}]


async def test_claims_challenge_with_cae_merges_cp1(api: Api, entra: FakeEntra) -> None:
    credential = api.credential()

    await api.get_token(credential, VAULT, enable_cae=True)
    challenged = await api.get_token_info(
        credential, VAULT, options={"claims": json.dumps(CHALLENGE), "enable_cae": True, "tenant_id": TENANT}
    )
    after = await api.get_token_info(credential, VAULT, options={"enable_cae": True, "tenant_id": TENANT})

    merged = {"access_token": {**CHALLENGE["access_token"], "xms_cc": {"values": ["CP1"]}}}
    assert [decoded_form(r) for r in entra.requests] == [cae_form(), cae_form(claims=merged)]
    assert fields(after) == fields(challenged)


async def test_claims_that_are_not_json_cannot_carry_cp1(api: Api, entra: FakeEntra) -> None:
    with pytest.raises(ValueError, match="not a JSON object"):
        await api.get_token(api.credential(), VAULT, claims="not json", enable_cae=True)
    assert entra.requests == []


@pytest.mark.parametrize("claims", [None, ""])
@pytest.mark.parametrize("enable_cae", [False, True])
async def test_empty_claims_neither_bypass_the_cache_nor_are_sent(
    api: Api, entra: FakeEntra, claims: str | None, enable_cae: bool
) -> None:
    credential = api.credential()

    first = await api.get_token(credential, VAULT, claims=claims, enable_cae=enable_cae)
    second = await api.get_token(credential, VAULT, claims=claims, enable_cae=enable_cae)
    third = await api.get_token_info(credential, VAULT, options={"claims": claims, "enable_cae": enable_cae})  # type: ignore[typeddict-item]

    assert first == second == AccessToken(third.token, third.expires_on)
    assert [decoded_form(r) for r in entra.requests] == [cae_form() if enable_cae else cred_form()]


@pytest.mark.parametrize("tenant", [TENANT, OTHER_TENANT], ids=["home", "challenge-tenant"])
async def test_key_vault_style_options(api: Api, entra: FakeEntra, tenant: str) -> None:
    """Key Vault's challenge policy: claims None, CAE on, the challenge's tenant."""
    credential = api.credential(additionally_allowed_tenants=["*"])
    options = {"claims": None, "enable_cae": True, "tenant_id": tenant}

    first = await api.get_token_info(credential, VAULT, options=options)
    second = await api.get_token_info(credential, VAULT, options=options)
    reused = await api.get_token_info(credential, VAULT, options={"enable_cae": True, "tenant_id": tenant})

    assert fields(first) == fields(second) == fields(reused)
    assert first.token == "CANARY-AT-9b2c-1"
    assert entra.urls == [token_url(tenant)]
    assert [decoded_form(r) for r in entra.requests] == [cae_form()]


# --- multi-tenant ---------------------------------------------------------------------------------


async def test_other_tenant_is_refused_without_a_request(api: Api, entra: FakeEntra) -> None:
    credential = api.credential()

    with pytest.raises(ClientAuthenticationError) as by_keyword:
        await api.get_token(credential, VAULT, tenant_id=OTHER_TENANT)
    with pytest.raises(ClientAuthenticationError) as by_options:
        await api.get_token_info(credential, VAULT, options={"tenant_id": OTHER_TENANT, "enable_cae": True})

    expected = (
        f"ClientSecretCredential: the current credential is not configured to acquire tokens for tenant "
        f"{OTHER_TENANT}. To enable acquiring tokens for this tenant add it to the "
        'additionally_allowed_tenants when creating the credential, or add "*" to '
        "additionally_allowed_tenants to allow acquiring tokens for any tenant."
    )
    assert by_keyword.value.message == expected
    assert str(by_options.value) == expected
    assert entra.requests == []


async def test_tenant_not_in_the_list_is_refused(api: Api, entra: FakeEntra) -> None:
    credential = api.credential(additionally_allowed_tenants=["some-other-tenant"])

    with pytest.raises(ClientAuthenticationError, match=f"for tenant {OTHER_TENANT}\\."):
        await api.get_token(credential, VAULT, tenant_id=OTHER_TENANT)
    assert entra.requests == []


@pytest.mark.parametrize("allowed", [[OTHER_TENANT], ["*"]], ids=["listed", "wildcard"])
async def test_allowed_tenant_is_requested_and_cached_apart(
    api: Api, entra: FakeEntra, allowed: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    credential = api.credential(additionally_allowed_tenants=allowed)

    other = await api.get_token(credential, VAULT, tenant_id=OTHER_TENANT)
    home = await api.get_token(credential, VAULT)
    home_by_name = await api.get_token(credential, VAULT, tenant_id=TENANT)
    other_again = await api.get_token_info(credential, VAULT, options={"tenant_id": OTHER_TENANT})

    assert (other.token, home.token) == ("CANARY-AT-9b2c-1", "CANARY-AT-9b2c-2")
    assert home_by_name == home
    assert other_again.token == other.token
    assert entra.urls == [token_url(OTHER_TENANT), token_url(TENANT)]
    assert entra.forms == [cred_form(), cred_form()]
    assert any(
        r.levelno == logging.INFO and f"additionally allowed tenant {OTHER_TENANT}" in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.parametrize("value", ["1", "true", "false"])
async def test_disable_multitenant_auth_pins_the_configured_tenant(
    api: Api, entra: FakeEntra, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("AZURE_IDENTITY_DISABLE_MULTITENANTAUTH", value)  # any non-empty value
    credential = api.credential()

    pinned = await api.get_token(credential, VAULT, tenant_id=OTHER_TENANT)
    home = await api.get_token(credential, VAULT)

    assert pinned == home
    assert entra.urls == [token_url(TENANT)]


async def test_adfs_tenant_is_pinned(api: Api, entra: FakeEntra) -> None:
    metadata = {
        "issuer": "https://adfs.contoso.com/adfs",
        "token_endpoint": "https://adfs.contoso.com/adfs/oauth2/token",
        "authorization_endpoint": "https://adfs.contoso.com/adfs/oauth2/authorize",
    }
    entra.reply(httpx.Response(200, json=metadata))
    credential = api.credential("adfs", authority="https://adfs.contoso.com")

    pinned = await api.get_token(credential, VAULT, tenant_id=OTHER_TENANT)
    home = await api.get_token(credential, VAULT)

    assert pinned == home
    assert [(r.method, str(r.url)) for r in entra.requests] == [
        ("GET", "https://adfs.contoso.com/adfs/.well-known/openid-configuration"),
        ("POST", "https://adfs.contoso.com/adfs/oauth2/token"),
    ]
    assert decoded_form(entra.requests[1]) == cred_form()


async def test_organizations_accepts_a_per_call_tenant(api: Api, entra: FakeEntra) -> None:
    credential = api.credential("organizations")

    await api.get_token(credential, VAULT, tenant_id=OTHER_TENANT)

    assert entra.urls == [token_url(OTHER_TENANT)]


@pytest.mark.parametrize("tenant_id", ["bad/tenant", "tenant with spaces"])
async def test_invalid_per_call_tenant_is_a_value_error(api: Api, entra: FakeEntra, tenant_id: str) -> None:
    credential = api.credential(additionally_allowed_tenants=["*"])

    with pytest.raises(ValueError, match="Invalid tenant ID") as caught:
        await api.get_token(credential, VAULT, tenant_id=tenant_id)
    assert FIND_IDS in str(caught.value)
    assert entra.requests == []


# --- regional authority ---------------------------------------------------------------------------


async def test_regional_authority_name_sends_to_the_regional_host(
    api: Api, entra: FakeEntra, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_REGIONAL_AUTHORITY_NAME", "westus2")

    await api.get_token(api.credential(), STORAGE)

    assert entra.urls == [f"https://westus2.login.microsoft.com/{TENANT}/oauth2/v2.0/token"]
    assert entra.forms == [cred_form(STORAGE)]


async def test_region_autodetection_uses_region_name(
    api: Api, entra: FakeEntra, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_REGIONAL_AUTHORITY_NAME", "tryautodetect")
    monkeypatch.setenv("REGION_NAME", "West US 2")

    await api.get_token(api.credential(), STORAGE)

    assert entra.urls == [f"https://westus2.login.microsoft.com/{TENANT}/oauth2/v2.0/token"]


@pytest.mark.parametrize("region", ["West US 2", "westus2.evil.com/x", "-westus"])
async def test_invalid_region_is_rejected_at_construction(
    api: Api, entra: FakeEntra, monkeypatch: pytest.MonkeyPatch, region: str
) -> None:
    monkeypatch.setenv("AZURE_REGIONAL_AUTHORITY_NAME", region)

    with pytest.raises(ValueError, match="Invalid regional authority name"):
        api.credential()
    assert entra.requests == []


# --- context managers and client ownership --------------------------------------------------------


async def test_context_manager_closes_the_client_it_created(api: Api, entra: FakeEntra) -> None:
    transport = ClosingTransport(api.handler)
    credential = api.credential(transport=transport)

    token = await api.token_inside_context(credential, VAULT)

    assert token.token == "CANARY-AT-9b2c-1"
    assert transport.closed


async def test_context_manager_leaves_an_injected_client_open(api: Api, entra: FakeEntra) -> None:
    transport = ClosingTransport(api.handler)
    client = api.http_client(transport)
    credential = api.credential(http_client=client)

    await api.token_inside_context(credential, VAULT)

    assert not client.is_closed
    assert not transport.closed
    assert len(entra.requests) == 1
    if api.mode == "sync":
        client.close()
    else:
        await client.aclose()
    assert transport.closed
