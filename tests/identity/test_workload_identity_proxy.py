"""WorkloadIdentityCredential's AKS identity-binding mode (``enable_azure_proxy=True``), sync and async.

The token proxy is a real HTTPS server on 127.0.0.1 (:class:`tests.protocol.test_aks_proxy.TlsProxy`)
whose certificate names only ``aks-proxy.test``; it strips its path prefix and hands the request to
the mock authority, as the AKS proxy forwards to Entra. The credential reaches it by IP, presents
the SNI name and trusts only the CA from the environment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from conformance.authority import DEFAULT_TENANT, ExternalIssuer, MockAuthority
from identity import ClientAuthenticationError
from identity.aio.workload_identity import WorkloadIdentityCredential as AsyncWorkloadIdentityCredential
from identity.workload_identity import WorkloadIdentityCredential
from protocol.retry import RetryPolicy

from ..protocol.test_aks_proxy import SNI_NAME, TlsProxy, pem, write_ca

SCOPE = "https://vault.azure.net/.default"
OTHER_SCOPE = "https://storage.azure.com/.default"
CLIENT_ID = "workload-app-0001"
SUBJECT = "system:serviceaccount:prod:api"
PREFIX = "/aks/identity-binding"
TOKEN_PATH = f"/{DEFAULT_TENANT}/oauth2/v2.0/token"
ENTRA = "https://login.microsoftonline.com"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
NO_RETRY = RetryPolicy(max_retries=0)
CLASSES = {"sync": WorkloadIdentityCredential, "async": AsyncWorkloadIdentityCredential}
ENVIRONMENT = (
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_KUBERNETES_TOKEN_PROXY",
    "AZURE_KUBERNETES_SNI_NAME",
    "AZURE_KUBERNETES_CA_FILE",
    "AZURE_KUBERNETES_CA_DATA",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
)
CUSTOM_PROXY_ENV_ERROR = (
    "AZURE_KUBERNETES_TOKEN_PROXY is not set but other custom endpoint-related environment variables "
    "are present."
)
CA_DATA_FILE_ERROR = (
    "Both AZURE_KUBERNETES_CA_FILE and AZURE_KUBERNETES_CA_DATA are set. Only one should be set."
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def other_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def issuer() -> ExternalIssuer:
    return ExternalIssuer("https://oidc.aks.example.test/cluster/")


@pytest.fixture
def authority(issuer: ExternalIssuer) -> MockAuthority:
    mock = MockAuthority.with_defaults()
    mock.add_application(DEFAULT_TENANT, CLIENT_ID)
    mock.add_federated_credential(DEFAULT_TENANT, CLIENT_ID, issuer, SUBJECT)
    return mock


def forward_to(authority: MockAuthority) -> Callable[[httpx.Request], httpx.Response]:
    """What the AKS proxy does: drop its path prefix and pass the request on to Entra."""

    def forward(request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path
        if not path.startswith(PREFIX.encode() + b"/"):
            return httpx.Response(404, json={"error": "not under the proxy prefix"})
        target = httpx.URL(ENTRA).copy_with(raw_path=path[len(PREFIX) :])
        headers = [(name, value) for name, value in request.headers.items() if name != "host"]
        return authority.handle(
            httpx.Request(request.method, target, headers=headers, content=request.content)
        )

    return forward


@pytest.fixture
def server(ca: trustme.CA, authority: MockAuthority) -> Iterator[TlsProxy]:
    with TlsProxy(ca, forward_to(authority)) as running:
        yield running


@pytest.fixture
def token_file(tmp_path: Path, issuer: ExternalIssuer) -> Path:
    path = tmp_path / "token"
    path.write_text(issuer.mint(SUBJECT))
    return path


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def proxy_environment(monkeypatch: pytest.MonkeyPatch, url: str, **variables: str) -> None:
    monkeypatch.setenv("AZURE_KUBERNETES_TOKEN_PROXY", url)
    for name, value in variables.items():
        monkeypatch.setenv(f"AZURE_KUBERNETES_{name.upper()}", value)


def credential(mode: str, token_file: Path, **kwargs: Any) -> Any:
    kwargs.setdefault("retry_policy", NO_RETRY)
    return CLASSES[mode](
        tenant_id=DEFAULT_TENANT, client_id=CLIENT_ID, token_file_path=str(token_file), **kwargs
    )


async def call(mode: str, method: Any, *args: Any, **kwargs: Any) -> Any:
    result = method(*args, **kwargs)
    return await result if mode == "async" else result


def assertion_form(token_file: Path, scope: str = SCOPE) -> dict[str, str]:
    return {
        "client_id": CLIENT_ID,
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": token_file.read_text(),
    }


# --- through the proxy ----------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["file", "data"])
async def test_tokens_come_through_the_proxy(
    mode: str,
    server: TlsProxy,
    authority: MockAuthority,
    ca: trustme.CA,
    token_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
) -> None:
    if source == "file":
        ca_file = tmp_path / "ca.pem"
        ca_file.write_text(pem(ca))
        proxy_environment(monkeypatch, server.url + PREFIX, sni_name=SNI_NAME, ca_file=str(ca_file))
    else:
        proxy_environment(monkeypatch, server.url + PREFIX + "/", sni_name=SNI_NAME, ca_data=pem(ca))
    cred = credential(mode, token_file, enable_azure_proxy=True)

    first = await call(mode, cred.get_token, SCOPE)
    cached = await call(mode, cred.get_token, SCOPE)

    assert cached == first
    issued = authority.describe_token(first.token)
    assert issued is not None
    assert (issued.client_id, issued.tenant, issued.scopes) == (CLIENT_ID, DEFAULT_TENANT, (SCOPE,))
    [seen] = server.requests
    assert (seen.method, seen.target) == ("POST", PREFIX + TOKEN_PATH)
    assert seen.headers["host"] == server.url.removeprefix("https://")
    assert seen.headers["user-agent"].startswith("entra-identity/")
    assert server.sni_names == [SNI_NAME]
    [token_request] = authority.requests_to("token")
    assert token_request.url == ENTRA + TOKEN_PATH
    assert token_request.form == assertion_form(token_file)
    # The credential still describes (and keys its cache by) the Entra authority, not the proxy.
    assert "authority='https://login.microsoftonline.com'" in repr(cred)
    await call(mode, cred.close)


async def test_environment_proxies_are_not_used(
    mode: str, server: TlsProxy, ca: trustme.CA, token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy_environment(monkeypatch, server.url + PREFIX, sni_name=SNI_NAME, ca_data=pem(ca))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    cred = credential(mode, token_file, enable_azure_proxy=True)

    await call(mode, cred.get_token, SCOPE)

    assert len(server.requests) == 1
    await call(mode, cred.close)


async def test_a_proxy_certificate_from_another_ca_fails_authentication(
    mode: str,
    server: TlsProxy,
    other_ca: trustme.CA,
    token_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy_environment(monkeypatch, server.url + PREFIX, sni_name=SNI_NAME, ca_data=pem(other_ca))
    cred = credential(mode, token_file, enable_azure_proxy=True)

    with pytest.raises(ClientAuthenticationError) as caught:
        await call(mode, cred.get_token, SCOPE)

    assert caught.value.message.startswith(
        f"WorkloadIdentityCredential: authentication failed. POST {ENTRA}{TOKEN_PATH}: could not connect"
    )
    assert server.requests == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        message.startswith(f"Token proxy {server.url}{PREFIX} (SNI {SNI_NAME}): ConnectError: [SSL:")
        for message in warnings
    )
    await call(mode, cred.close)


async def test_a_rotated_ca_file_is_used_for_the_next_request(
    mode: str,
    server: TlsProxy,
    ca: trustme.CA,
    other_ca: trustme.CA,
    token_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca_file = tmp_path / "ca.pem"
    write_ca(ca_file, ca)
    proxy_environment(monkeypatch, server.url + PREFIX, sni_name=SNI_NAME, ca_file=str(ca_file))
    cred = credential(mode, token_file, enable_azure_proxy=True)
    await call(mode, cred.get_token, SCOPE)

    write_ca(ca_file, None)  # emptied mid-rotation: the CA in use stays
    await call(mode, cred.get_token, OTHER_SCOPE)
    write_ca(ca_file, other_ca)  # a CA the proxy's certificate does not chain to
    with pytest.raises(ClientAuthenticationError, match="could not connect"):
        await call(mode, cred.get_token, "https://graph.microsoft.com/.default")

    assert len(server.requests) == 2
    await call(mode, cred.close)


# --- with the caller's transport or client --------------------------------------------------------


class Rewritten:
    """A MockTransport handler that checks requests arrive rewritten, then forwards them."""

    def __init__(self, authority: MockAuthority) -> None:
        self.forward = forward_to(authority)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.forward(request)


@pytest.mark.parametrize("kind", ["transport", "http_client"])
async def test_a_given_transport_or_client_gets_rewritten_requests(
    mode: str,
    authority: MockAuthority,
    token_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    # The CA variable names a file that does not exist: with the caller's transport it is not read.
    proxy_environment(
        monkeypatch, "https://10.1.2.3:8443" + PREFIX, sni_name=SNI_NAME, ca_file="/nonexistent/ca.pem"
    )
    handler = Rewritten(authority)
    client: Any = None
    if kind == "transport":
        cred = credential(mode, token_file, enable_azure_proxy=True, transport=httpx.MockTransport(handler))
    else:
        client = (httpx.Client if mode == "sync" else httpx.AsyncClient)(
            transport=httpx.MockTransport(handler)
        )
        cred = credential(mode, token_file, enable_azure_proxy=True, http_client=client)

    token = await call(mode, cred.get_token, SCOPE)

    assert authority.describe_token(token.token) is not None
    [request] = handler.requests
    assert (request.method, str(request.url)) == ("POST", f"https://10.1.2.3:8443{PREFIX}{TOKEN_PATH}")
    assert request.headers["host"] == "10.1.2.3:8443"
    assert request.extensions["sni_hostname"] == SNI_NAME
    assert authority.requests_to("token")[0].form == assertion_form(token_file)
    await call(mode, cred.close)
    if client is not None:
        assert not client.is_closed
        await call(mode, client.close if mode == "sync" else client.aclose)


# --- normal mode ----------------------------------------------------------------------------------


async def test_without_enable_azure_proxy_the_variables_are_ignored(
    mode: str, authority: MockAuthority, token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy_environment(monkeypatch, "http://not-https.example", ca_file="/nonexistent", ca_data="x")
    cred = credential(mode, token_file, transport=authority.transport())

    await call(mode, cred.get_token, SCOPE)

    assert [r.url for r in authority.requests] == [ENTRA + TOKEN_PATH]


async def test_enabled_without_any_variable_is_normal_mode(
    mode: str, authority: MockAuthority, token_file: Path
) -> None:
    cred = credential(mode, token_file, enable_azure_proxy=True, transport=authority.transport())

    await call(mode, cred.get_token, SCOPE)

    assert [r.url for r in authority.requests] == [ENTRA + TOKEN_PATH]


# --- configuration errors -------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["SNI_NAME", "CA_FILE", "CA_DATA"])
@pytest.mark.parametrize("cls", list(CLASSES.values()), ids=list(CLASSES))
def test_proxy_variables_without_the_proxy_url(
    cls: type, variable: str, token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"AZURE_KUBERNETES_{variable}", "value")
    with pytest.raises(ValueError) as caught:
        cls(
            tenant_id=DEFAULT_TENANT,
            client_id=CLIENT_ID,
            token_file_path=str(token_file),
            enable_azure_proxy=True,
        )
    assert str(caught.value) == CUSTOM_PROXY_ENV_ERROR


@pytest.mark.parametrize("cls", list(CLASSES.values()), ids=list(CLASSES))
def test_ca_file_and_data_together(
    cls: type, ca: trustme.CA, token_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(pem(ca))
    proxy_environment(monkeypatch, "https://10.1.2.3", ca_file=str(ca_file), ca_data=pem(ca))
    with pytest.raises(ValueError) as caught:
        cls(
            tenant_id=DEFAULT_TENANT,
            client_id=CLIENT_ID,
            token_file_path=str(token_file),
            enable_azure_proxy=True,
        )
    assert str(caught.value) == CA_DATA_FILE_ERROR


PREFIX_ERROR = "WorkloadIdentityCredential: AKS token proxy configuration: "


@pytest.mark.parametrize(
    ("url", "variables", "message"),
    [
        (
            "http://10.1.2.3",
            {},
            "The token proxy URL (http://10.1.2.3) must use the 'https' scheme, not 'http'.",
        ),
        (
            "https://u:secret@10.1.2.3",
            {},
            "The token proxy URL (https://***@10.1.2.3) must not contain a user",
        ),
        ("https://10.1.2.3/p?x=1", {}, "The token proxy URL (https://10.1.2.3/p?x=1) must not contain query"),
        (
            "https://10.1.2.3/p#f",
            {},
            "The token proxy URL (https://10.1.2.3/p#f) must not contain a fragment.",
        ),
        ("https://10.1.2.3", {"sni_name": "a b"}, "The SNI name 'a b' is not a host name."),
        (
            "https://10.1.2.3",
            {"ca_file": "/nonexistent/ca.pem"},
            "Failed to read the CA file '/nonexistent/ca.pem'",
        ),
        ("https://10.1.2.3", {"ca_data": "not pem"}, "The CA data holds no usable PEM certificate"),
    ],
    ids=["http", "userinfo", "query", "fragment", "sni", "ca-file-missing", "ca-data"],
)
@pytest.mark.parametrize("cls", list(CLASSES.values()), ids=list(CLASSES))
def test_invalid_proxy_configuration(
    cls: type,
    url: str,
    variables: dict[str, str],
    message: str,
    token_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy_environment(monkeypatch, url, **variables)
    with pytest.raises(ValueError) as caught:
        cls(
            tenant_id=DEFAULT_TENANT,
            client_id=CLIENT_ID,
            token_file_path=str(token_file),
            enable_azure_proxy=True,
        )
    assert str(caught.value).startswith(PREFIX_ERROR + message)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("cls", list(CLASSES.values()), ids=list(CLASSES))
def test_an_empty_ca_file_is_refused_at_start(
    cls: type, token_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("")
    proxy_environment(monkeypatch, "https://10.1.2.3", ca_file=str(ca_file))
    with pytest.raises(ValueError, match=r"The CA file .* is empty; cannot establish a secure connection\."):
        cls(
            tenant_id=DEFAULT_TENANT,
            client_id=CLIENT_ID,
            token_file_path=str(token_file),
            enable_azure_proxy=True,
        )


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        (
            "proxies",
            {"https": "http://127.0.0.1:3128"},
            "proxies cannot be combined with the AKS token proxy",
        ),
        ("connection_verify", False, "connection_verify cannot be combined with the AKS token proxy"),
    ],
)
@pytest.mark.parametrize("cls", list(CLASSES.values()), ids=list(CLASSES))
def test_options_that_would_bypass_the_proxy_are_refused(
    cls: type,
    option: str,
    value: Any,
    message: str,
    ca: trustme.CA,
    token_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy_environment(monkeypatch, "https://10.1.2.3", ca_data=pem(ca))
    with pytest.raises(ValueError, match=f"^WorkloadIdentityCredential: {message}"):
        cls(
            tenant_id=DEFAULT_TENANT,
            client_id=CLIENT_ID,
            token_file_path=str(token_file),
            enable_azure_proxy=True,
            **{option: value},
        )
