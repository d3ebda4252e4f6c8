"""protocol.discovery: endpoints published in discovery documents must be plain https URLs.

A discovery document decides where client secrets and assertions are sent next, so an endpoint
with credentials in it, a control character, an invalid IDNA label, a non-https scheme or a broken
IPv6 literal is refused as malformed, and the refusal never repeats the URL's password.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from protocol.authority import Authority, Endpoints
from protocol.discovery import parse_instance_discovery_response, parse_openid_configuration_response
from protocol.errors import MalformedResponseError

from .helpers import TENANT

METADATA_URL = f"https://login.contoso.test/{TENANT}/v2.0/.well-known/openid-configuration"
INSTANCE_URL = "https://login.microsoftonline.com/common/discovery/instance"
GOOD_TOKEN_URL = f"https://login.contoso.test/{TENANT}/oauth2/v2.0/token"
AUTHORITY = Authority.create("https://login.contoso.test", TENANT)

BAD_URLS = [
    pytest.param("https://user:pw@login.contoso.test/t", id="userinfo"),
    pytest.param("https://:pw@login.contoso.test/t", id="password-only"),
    pytest.param("https://user@login.contoso.test/t", id="user-only"),
    pytest.param("https://\x00x/token", id="nul-in-host"),
    pytest.param("https://login.contoso.test\r\n/token", id="crlf-in-host"),
    pytest.param("https://xn--/token", id="bad-idna"),
    pytest.param("http://login.contoso.test/t", id="http"),
    pytest.param("https://[bad/t", id="broken-ipv6"),
    pytest.param("https:///token", id="no-host"),
    pytest.param("//login.contoso.test/t", id="scheme-relative"),
    pytest.param("/t", id="relative"),
    pytest.param("javascript:alert(1)", id="javascript"),
]


def response(url: str, body: Any) -> httpx.Response:
    return httpx.Response(200, json=body, request=httpx.Request("GET", url))


def refused(what: str, url: str) -> str:
    return (
        f"The discovery document at {url} names a {what} that is not an https URL (or is malformed, or "
        "carries credentials). Refusing to send credentials to it."
    )


@pytest.mark.parametrize("bad", BAD_URLS)
def test_openid_configuration_refuses_a_bad_token_endpoint(bad: str) -> None:
    with pytest.raises(MalformedResponseError) as caught:
        parse_openid_configuration_response(response(METADATA_URL, {"token_endpoint": bad}))

    assert str(caught.value) == refused("token endpoint", METADATA_URL)
    assert "pw" not in str(caught.value)
    assert "pw" not in repr(caught.value)
    assert (caught.value.status_code, caught.value.url) == (200, METADATA_URL)


@pytest.mark.parametrize(
    ("field", "what"),
    [
        ("authorization_endpoint", "authorization endpoint"),
        ("device_authorization_endpoint", "device authorization endpoint"),
    ],
)
@pytest.mark.parametrize("bad", BAD_URLS)
def test_openid_configuration_refuses_other_bad_endpoints(bad: str, field: str, what: str) -> None:
    body = {"token_endpoint": GOOD_TOKEN_URL, field: bad}

    with pytest.raises(MalformedResponseError) as caught:
        parse_openid_configuration_response(response(METADATA_URL, body))

    assert str(caught.value) == refused(what, METADATA_URL)
    assert "pw" not in str(caught.value)


@pytest.mark.parametrize("bad", BAD_URLS)
def test_instance_discovery_refuses_a_bad_tenant_discovery_endpoint(bad: str) -> None:
    body = {"tenant_discovery_endpoint": bad, "api-version": "1.1"}

    with pytest.raises(MalformedResponseError) as caught:
        parse_instance_discovery_response(response(INSTANCE_URL, body), authority=AUTHORITY)

    assert str(caught.value) == refused("tenant discovery endpoint", INSTANCE_URL)
    assert "pw" not in str(caught.value)
    assert "pw" not in repr(caught.value)


def test_good_https_endpoints_are_returned_as_published() -> None:
    body = {
        "token_endpoint": GOOD_TOKEN_URL,
        "authorization_endpoint": "https://login.contoso.test:8443/authorize",
        "device_authorization_endpoint": "https://[::1]:8443/device",
        "issuer": "https://login.contoso.test/v2.0",
    }

    assert parse_openid_configuration_response(response(METADATA_URL, body)) == Endpoints(
        token_endpoint=GOOD_TOKEN_URL,
        authorization_endpoint="https://login.contoso.test:8443/authorize",
        device_authorization_endpoint="https://[::1]:8443/device",
        issuer="https://login.contoso.test/v2.0",
    )
    assert (
        parse_instance_discovery_response(
            response(INSTANCE_URL, {"tenant_discovery_endpoint": METADATA_URL}), authority=AUTHORITY
        )
        == METADATA_URL
    )


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("https://login.contoso.test:99999/t", id="port-out-of-range"),
        pytest.param("https://login contoso.test/t", id="space-in-host"),
        pytest.param("https://%00/t", id="encoded-nul-host"),
    ],
)
def test_openid_configuration_refuses_unusable_hosts_and_ports(bad: str) -> None:
    with pytest.raises(MalformedResponseError) as caught:
        parse_openid_configuration_response(response(METADATA_URL, {"token_endpoint": bad}))

    assert str(caught.value) == refused("token endpoint", METADATA_URL)
