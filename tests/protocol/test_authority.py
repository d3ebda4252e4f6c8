"""protocol.authority: normalisation, tenant and region validation, derived endpoints."""

from __future__ import annotations

import pytest

from protocol.authority import (
    KNOWN_CLOUD_HOSTS,
    WELL_KNOWN_HOSTS,
    Authority,
    Endpoints,
    normalize_authority,
    regional_token_endpoint,
    validate_region,
    validate_tenant_id,
)

from .helpers import TENANT

FIND_IDS_URL = "https://learn.microsoft.com/partner-center/find-ids-and-domain-names"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("login.microsoftonline.com", "https://login.microsoftonline.com"),
        ("login.microsoftonline.com/", "https://login.microsoftonline.com"),
        ("https://login.microsoftonline.com", "https://login.microsoftonline.com"),
        ("https://login.microsoftonline.com/", "https://login.microsoftonline.com"),
        ("https://login.microsoftonline.com///", "https://login.microsoftonline.com"),
        ("  https://login.microsoftonline.com/  ", "https://login.microsoftonline.com"),
        ("https://LOGIN.MicrosoftOnline.COM", "https://login.microsoftonline.com"),
        ("HTTPS://login.microsoftonline.us", "https://login.microsoftonline.us"),
        ("https://login.contoso.com:8443", "https://login.contoso.com:8443"),
        ("login.contoso.com:8443/", "https://login.contoso.com:8443"),
        ("https://login.contoso.com/some/Path/", "https://login.contoso.com/some/Path"),
        ("https://127.0.0.1:5001", "https://127.0.0.1:5001"),
    ],
)
def test_normalize_authority(given: str, expected: str) -> None:
    assert normalize_authority(given) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("http://login.microsoftonline.com", "TLS protected"),
        ("HTTP://login.microsoftonline.com", "TLS protected"),
        ("ftp://login.microsoftonline.com", "TLS protected"),
        ("https://login.contoso.com?x=1", "query"),
        ("https://login.contoso.com/path?tenant=x", "query"),
        ("https://login.contoso.com#frag", "fragment"),
        ("", "empty"),
        ("   ", "empty"),
        ("https://:443", "no host"),
    ],
)
def test_normalize_authority_rejects(given: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_authority(given)


def test_http_authority_message_names_the_value() -> None:
    with pytest.raises(ValueError, match="TLS protected") as info:
        normalize_authority("http://login.contoso.com")
    assert "'http://login.contoso.com' is an invalid authority" in str(info.value)


def test_scheme_only_authority_is_rejected() -> None:
    with pytest.raises(ValueError):
        normalize_authority("https://")


@pytest.mark.parametrize(
    "tenant",
    [
        TENANT,
        TENANT.upper(),
        "contoso.onmicrosoft.com",
        "contoso.com",
        "common",
        "organizations",
        "consumers",
        "adfs",
        "ADFS",
        "a",
        "tenant-with-dashes.example",
    ],
)
def test_valid_tenants(tenant: str) -> None:
    validate_tenant_id(tenant)
    assert Authority.create("login.microsoftonline.com", tenant).tenant == tenant


@pytest.mark.parametrize(
    "tenant",
    [
        "a/b",
        "contoso com",
        " common",
        "",
        "tenänt",
        "租户",
        "contoso?x=1",
        "contoso#x",
        "a_b",
        "a\tb",
        "../common",
        "%2e%2e",
    ],
)
def test_invalid_tenants(tenant: str) -> None:
    with pytest.raises(ValueError, match="Invalid tenant ID provided") as info:
        validate_tenant_id(tenant)
    assert FIND_IDS_URL in str(info.value)
    with pytest.raises(ValueError, match=FIND_IDS_URL):
        Authority.create("login.microsoftonline.com", tenant)


@pytest.mark.parametrize("tenant", [None, 5, b"common"])
def test_non_string_tenant_is_rejected(tenant: object) -> None:
    with pytest.raises(ValueError, match=FIND_IDS_URL):
        validate_tenant_id(tenant)  # type: ignore[arg-type]


def test_tenant_with_trailing_newline_is_rejected() -> None:
    with pytest.raises(ValueError, match=FIND_IDS_URL):
        validate_tenant_id("common\n")


def test_with_tenant_validates_and_keeps_base() -> None:
    authority = Authority.create("https://login.contoso.com:8443/path", "common")
    other = authority.with_tenant("contoso.com")
    assert (other.base, other.tenant) == ("https://login.contoso.com:8443/path", "contoso.com")
    with pytest.raises(ValueError, match=FIND_IDS_URL):
        authority.with_tenant("a/b")


def test_authority_properties() -> None:
    authority = Authority.create("HTTPS://Login.Contoso.com:8443/Path/", TENANT)
    assert {
        "base": authority.base,
        "host": authority.host,
        "environment": authority.environment,
        "url": authority.url,
        "is_adfs": authority.is_adfs,
        "is_well_known": authority.is_well_known,
    } == {
        "base": "https://login.contoso.com:8443/Path",
        "host": "login.contoso.com",
        "environment": "login.contoso.com:8443",
        "url": f"https://login.contoso.com:8443/Path/{TENANT}",
        "is_adfs": False,
        "is_well_known": False,
    }


@pytest.mark.parametrize("cloud", sorted(KNOWN_CLOUD_HOSTS))
def test_derived_endpoints_of_known_clouds(cloud: str) -> None:
    host = KNOWN_CLOUD_HOSTS[cloud]
    authority = Authority.create(host, TENANT)
    assert authority.is_well_known
    assert authority.derived_endpoints() == Endpoints(
        token_endpoint=f"https://{host}/{TENANT}/oauth2/v2.0/token",
        authorization_endpoint=f"https://{host}/{TENANT}/oauth2/v2.0/authorize",
        device_authorization_endpoint=f"https://{host}/{TENANT}/oauth2/v2.0/devicecode",
        issuer=f"https://{host}/{TENANT}/v2.0",
    )
    assert authority.openid_configuration_url() == (
        f"https://{host}/{TENANT}/v2.0/.well-known/openid-configuration"
    )


def test_known_cloud_hosts_are_the_azure_identity_names() -> None:
    assert KNOWN_CLOUD_HOSTS == {
        "public": "login.microsoftonline.com",
        "government": "login.microsoftonline.us",
        "china": "login.chinacloudapi.cn",
        "germany": "login.microsoftonline.de",
    }
    assert set(KNOWN_CLOUD_HOSTS.values()) <= WELL_KNOWN_HOSTS


@pytest.mark.parametrize("host", sorted(WELL_KNOWN_HOSTS))
def test_every_well_known_host_is_well_known(host: str) -> None:
    assert Authority.create(host, "common").is_well_known
    assert Authority.create(host.upper(), "common").is_well_known


@pytest.mark.parametrize(
    "base",
    [
        "https://login.contoso.com",
        "https://login.microsoftonline.com.evil.example",
        "https://evil-login.microsoftonline.com",
        "https://login.microsoftonline.com/path",
        "https://login.microsoftonline.com/tenant-prefix/",
    ],
)
def test_not_well_known(base: str) -> None:
    assert not Authority.create(base, "common").is_well_known


@pytest.mark.parametrize("tenant", ["adfs", "ADFS", "Adfs"])
def test_adfs_endpoints(tenant: str) -> None:
    authority = Authority.create("https://adfs.contoso.com/", tenant)
    assert authority.is_adfs
    assert authority.derived_endpoints() == Endpoints(
        token_endpoint="https://adfs.contoso.com/adfs/oauth2/token",
        authorization_endpoint="https://adfs.contoso.com/adfs/oauth2/authorize",
        device_authorization_endpoint="https://adfs.contoso.com/adfs/oauth2/devicecode",
        issuer=None,
    )
    assert (
        authority.openid_configuration_url()
        == "https://adfs.contoso.com/adfs/.well-known/openid-configuration"
    )


def test_custom_host_with_path_derives_under_the_path() -> None:
    authority = Authority.create("https://login.contoso.com/base", "common")
    assert authority.derived_endpoints().token_endpoint == (
        "https://login.contoso.com/base/common/oauth2/v2.0/token"
    )
    assert authority.openid_configuration_url() == (
        "https://login.contoso.com/base/common/v2.0/.well-known/openid-configuration"
    )


@pytest.mark.parametrize(
    ("central", "expected"),
    [
        (
            f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token",
            f"https://westus2.login.microsoft.com/{TENANT}/oauth2/v2.0/token",
        ),
        (
            "https://login.microsoft.com/common/oauth2/v2.0/token",
            "https://westus2.login.microsoft.com/common/oauth2/v2.0/token",
        ),
        (
            "https://login.windows.net/t/oauth2/v2.0/token",
            "https://westus2.login.microsoft.com/t/oauth2/v2.0/token",
        ),
        (
            "https://sts.windows.net/t/oauth2/v2.0/token",
            "https://westus2.login.microsoft.com/t/oauth2/v2.0/token",
        ),
        (
            "https://login.microsoftonline.us/t/oauth2/v2.0/token",
            "https://westus2.login.microsoftonline.us/t/oauth2/v2.0/token",
        ),
        (
            "https://login.chinacloudapi.cn/t/oauth2/v2.0/token",
            "https://westus2.login.chinacloudapi.cn/t/oauth2/v2.0/token",
        ),
        (
            "https://login.contoso.com:8443/t/oauth2/v2.0/token",
            "https://westus2.login.contoso.com:8443/t/oauth2/v2.0/token",
        ),
        (
            "https://login.microsoftonline.com:444/t/oauth2/v2.0/token?slice=x",
            "https://westus2.login.microsoft.com:444/t/oauth2/v2.0/token?slice=x",
        ),
    ],
)
def test_regional_token_endpoint(central: str, expected: str) -> None:
    assert regional_token_endpoint(central, "westus2") == expected


@pytest.mark.parametrize("region", ["westus2", "eastus", "a", "uk-south", "x" * 63, "centralus2euap"])
def test_valid_regions(region: str) -> None:
    assert validate_region(region) == region


@pytest.mark.parametrize(
    "region", ["West US", "WestUS2", "", "-east", "east-", "2east", "x" * 64, "west us", "west.us", "wést"]
)
def test_invalid_regions(region: str) -> None:
    with pytest.raises(ValueError, match="lowercase DNS label") as info:
        validate_region(region)
    assert "AZURE_REGIONAL_AUTHORITY_NAME" in str(info.value)


def test_region_with_trailing_newline_is_rejected() -> None:
    with pytest.raises(ValueError):
        validate_region("westus2\n")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (
            "login.windows.net",
            {"login.microsoftonline.com", "login.microsoft.com", "login.windows.net", "sts.windows.net"},
        ),
        ("login.partner.microsoftonline.cn", {"login.chinacloudapi.cn", "login.partner.microsoftonline.cn"}),
        ("login.usgovcloudapi.net", {"login.microsoftonline.us", "login.usgovcloudapi.net"}),
        ("idp.contoso.com", {"idp.contoso.com"}),
    ],
)
def test_host_aliases_name_one_cloud(host: str, expected: set[str]) -> None:
    from protocol.authority import host_aliases

    assert host_aliases(host) == expected
