"""The mock authority's browser pages: the authorize endpoint and the device verification page.

Each flow is walked as a browser would walk it, with a plain ``httpx`` client that parses the
forms (``html.parser``) and posts them back: in process through ``MockAuthority.transport()`` and,
once per page family, over real loopback sockets (``serve_http``). Codes are redeemed at the token
endpoint with PKCE and the id token is verified with the authority's key.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import jwt
import pytest

from conformance.authority import (
    DEFAULT_CLIENT_ID,
    DEFAULT_PASSWORD,
    DEFAULT_SECRET,
    DEFAULT_TENANT,
    DEFAULT_USERNAME,
    PUBLIC_CLIENT_ID,
    MockAuthority,
)
from protocol.authorization_code import (
    build_authorization_code_request,
    build_authorization_url,
    parse_authorization_response,
)
from protocol.pkce import Pkce, new_nonce, new_pkce, new_state

ORIGIN = "https://login.microsoftonline.com"
AUTHORIZE = f"{ORIGIN}/{DEFAULT_TENANT}/oauth2/v2.0/authorize"
TOKEN = f"{ORIGIN}/{DEFAULT_TENANT}/oauth2/v2.0/token"
SCOPE = "https://graph.microsoft.com/User.Read"
REDIRECT = "http://localhost:8765/callback"
WEB_REDIRECT = "https://app.example/callback"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


# --------------------------------------------------------------------------- a tiny browser


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # id -> name, value


@dataclass
class Page:
    """A parsed HTML answer: ``data-page``, forms, element ids and the text of ``<p id=...>``."""

    url: str
    status: int
    name: str = ""
    forms: list[Form] = field(default_factory=list)
    ids: dict[str, dict[str, str]] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    @property
    def form(self) -> Form:
        assert len(self.forms) == 1, self.forms
        return self.forms[0]


class _Parser(HTMLParser):
    def __init__(self, page: Page) -> None:
        super().__init__()
        self.page = page
        self.text_id: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if "id" in values:
            assert values["id"] not in self.page.ids, f"duplicate id {values['id']}"
            self.page.ids[values["id"]] = {"tag": tag, **values}
        if tag == "body":
            self.page.name = values.get("data-page", "")
        elif tag == "form":
            self.page.forms.append(Form(values.get("action", ""), values.get("method", "get").lower()))
        elif tag == "input" and self.page.forms and "name" in values:
            self.page.forms[-1].fields[values["name"]] = values.get("value", "")
        elif tag == "button" and self.page.forms:
            self.page.forms[-1].buttons[values.get("id", "")] = (values.get("name"), values.get("value"))
        elif tag == "p" and "id" in values:
            self.text_id = values["id"]
            self.page.texts[self.text_id] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self.text_id = None

    def handle_data(self, data: str) -> None:
        if self.text_id is not None:
            self.page.texts[self.text_id] += data


def parse_page(response: httpx.Response) -> Page:
    """Parse an HTML page, checking the headers every page of the mock must carry."""
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    assert "location" not in response.headers
    page = Page(str(response.request.url), response.status_code)
    parser = _Parser(page)
    parser.feed(response.text)
    parser.close()
    assert "<script" not in response.text
    assert "http" not in response.text.split("<main>")[0], "no external resources"
    return page


def submit(client: httpx.Client, page: Page, button: str, **values: str) -> httpx.Response:
    """Click ``button`` of the page's form after filling ``values`` (by field name)."""
    form = page.form
    assert form.method == "post"
    assert button in form.buttons, form.buttons
    unknown = set(values) - set(form.fields)
    assert not unknown, f"the form has no fields {unknown}"
    data = {**form.fields, **values}
    name, value = form.buttons[button]
    if name is not None:
        data[name] = value or ""
    return client.post(urljoin(page.url, form.action), data=data)


def location_params(response: httpx.Response, prefix: str = REDIRECT) -> dict[str, str]:
    assert response.status_code == 302, response.text
    assert response.headers["cache-control"] == "no-store"
    location = response.headers["location"]
    assert location.startswith(prefix + "?"), location
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def authority() -> MockAuthority:
    authority = MockAuthority.with_defaults()
    authority.device_slow_down_enabled = False
    return authority


@pytest.fixture
def client(authority: MockAuthority) -> Iterator[httpx.Client]:
    with httpx.Client(transport=authority.transport(), base_url=ORIGIN) as client:
        yield client


@dataclass
class Request:
    pkce: Pkce
    state: str
    nonce: str
    url: str


def authorization_request(
    authorize: str = AUTHORIZE,
    *,
    client_id: str = PUBLIC_CLIENT_ID,
    redirect_uri: str = REDIRECT,
    login_hint: str | None = DEFAULT_USERNAME,
    prompt: str | None = None,
    response_mode: str | None = None,
) -> Request:
    pkce, state, nonce = new_pkce(), new_state(), new_nonce()
    url = build_authorization_url(
        authorize,
        client_id=client_id,
        redirect_uri=redirect_uri,
        scopes=[SCOPE],
        state=state,
        nonce=nonce,
        code_challenge=pkce.challenge,
        login_hint=login_hint,
        prompt=prompt,
        response_mode=response_mode,
    )
    return Request(pkce, state, nonce, url)


def redeem(
    client: httpx.Client,
    code: str,
    verifier: str,
    *,
    token: str = TOKEN,
    redirect_uri: str = REDIRECT,
    client_id: str = PUBLIC_CLIENT_ID,
) -> httpx.Response:
    request = build_authorization_code_request(
        token,
        client_id=client_id,
        code=code,
        redirect_uri=redirect_uri,
        scopes=[SCOPE],
        now=time.time(),
        code_verifier=verifier,
    )
    return client.send(request)


def id_token_claims(authority: MockAuthority, body: dict[str, Any], client_id: str = PUBLIC_CLIENT_ID) -> Any:
    return jwt.decode(
        body["id_token"], authority.signing_key.public_key(), algorithms=["RS256"], audience=client_id
    )


def sign_in(client: httpx.Client, url: str, password: str = DEFAULT_PASSWORD) -> Page:
    """Open ``url`` and submit the sign-in form with the pre-filled username: the next page."""
    page = parse_page(client.get(url))
    assert (page.status, page.name) == (200, "signin"), page
    return parse_page(submit(client, page, "signin", username=DEFAULT_USERNAME, password=password))


# --------------------------------------------------------------------------- authorize: the happy path


def test_browser_flow_signs_in_consents_and_redeems_the_code(
    authority: MockAuthority, client: httpx.Client
) -> None:
    request = authorization_request()
    response = client.get(request.url)
    assert response.status_code == 200
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    signin = parse_page(response)
    assert signin.name == "signin"
    form = signin.form
    assert (form.method, form.action) == ("post", f"/{DEFAULT_TENANT}/oauth2/v2.0/authorize")
    assert signin.ids["username"]["tag"] == "input"
    assert signin.ids["username"]["value"] == DEFAULT_USERNAME
    assert signin.ids["password"]["type"] == "password"
    assert (signin.ids["signin"]["tag"], signin.ids["signin"]["type"]) == ("button", "submit")
    assert form.fields["flowToken"].startswith("mock-flow-")
    assert (form.fields["client_id"], form.fields["redirect_uri"]) == (PUBLIC_CLIENT_ID, REDIRECT)
    assert "error" not in signin.ids
    assert DEFAULT_PASSWORD not in response.text

    consent = parse_page(submit(client, signin, "signin", password=DEFAULT_PASSWORD))
    assert (consent.status, consent.name) == (200, "consent")
    assert {"accept", "decline"} <= set(consent.form.buttons)
    assert consent.texts["account"] == DEFAULT_USERNAME

    params = location_params(submit(client, consent, "accept"))
    assert set(params) == {"code", "state"}
    assert params["state"] == request.state
    code = parse_authorization_response(params, expected_state=request.state).code

    token = redeem(client, code, request.pkce.verifier)
    assert token.status_code == 200, token.text
    body = token.json()
    claims = id_token_claims(authority, body)
    assert claims["nonce"] == request.nonce
    assert claims["preferred_username"] == DEFAULT_USERNAME
    assert claims["tid"] == DEFAULT_TENANT
    assert "client_info" in body
    assert body["refresh_token"].startswith("mock-rt-")
    issued = authority.describe_token(body["access_token"])
    assert issued is not None
    assert (issued.user, issued.grant_type) == (DEFAULT_USERNAME, "authorization_code")
    assert SCOPE in issued.scopes

    assert [r.method for r in authority.requests_to("authorize")] == ["GET", "POST", "POST"]
    assert len(authority.requests_to("token")) == 1
    assert authority.unmatched == []
    # the form handle is single-use: posting the finished consent again is an error page
    replay = parse_page(submit(client, consent, "accept"))
    assert (replay.status, replay.name, replay.texts["error-code"]) == (400, "error", "AADSTS50089")


def test_the_code_is_bound_to_the_pkce_challenge(client: httpx.Client) -> None:
    request = authorization_request()
    consent = sign_in(client, request.url)
    code = location_params(submit(client, consent, "accept"))["code"]
    wrong = redeem(client, code, new_pkce().verifier)
    assert wrong.status_code == 400
    assert (wrong.json()["error"], wrong.json()["error_codes"]) == ("invalid_grant", [501481])
    assert redeem(client, code, request.pkce.verifier).status_code == 200


def test_posted_client_id_and_redirect_uri_are_ignored(
    client: httpx.Client, authority: MockAuthority
) -> None:
    authority.add_application(DEFAULT_TENANT, "9e8d7c6b-0000-4000-8000-00000000000a", public_client=True)
    request = authorization_request()
    signin = parse_page(client.get(request.url))
    tampered = submit(
        client,
        signin,
        "signin",
        password=DEFAULT_PASSWORD,
        client_id="9e8d7c6b-0000-4000-8000-00000000000a",
        redirect_uri="https://evil.example/steal",
    )
    consent = parse_page(tampered)
    assert consent.ids["client"]["tag"] == "code"
    response = submit(client, consent, "accept")
    params = location_params(response)  # still the stored redirect URI
    assert params["state"] == request.state
    grant = authority.authorization_codes[params["code"]]
    assert (grant.client_id, grant.redirect_uri) == (PUBLIC_CLIENT_ID, REDIRECT)


def test_values_on_pages_are_escaped(client: httpx.Client) -> None:
    hint = '"><script>alert(1)</script>@contoso.onmicrosoft.com'
    response = client.get(authorization_request(login_hint=hint).url)
    assert response.status_code == 200
    assert "<script>" not in response.text
    assert "&lt;script&gt;" in response.text
    assert parse_page(response).ids["username"]["value"] == hint


# --------------------------------------------------------------------------- authorize: sign-in errors


def test_wrong_password_shows_the_sign_in_page_again(client: httpx.Client) -> None:
    request = authorization_request()
    first = parse_page(client.get(request.url))
    retry = parse_page(submit(client, first, "signin", password="not-the-password"))
    assert (retry.status, retry.name) == (200, "signin")
    assert retry.texts["error"].startswith("AADSTS50126: Your account or password is incorrect")
    assert retry.ids["username"]["value"] == DEFAULT_USERNAME
    assert retry.form.fields["flowToken"] == first.form.fields["flowToken"]
    assert retry.ids["password"].get("value", "") == ""

    unknown = parse_page(submit(client, retry, "signin", username="nobody@contoso.onmicrosoft.com"))
    assert (unknown.status, unknown.name) == (200, "signin")
    assert unknown.texts["error"].startswith("AADSTS50034")
    assert unknown.ids["username"]["value"] == "nobody@contoso.onmicrosoft.com"

    consent = parse_page(
        submit(client, unknown, "signin", username=DEFAULT_USERNAME, password=DEFAULT_PASSWORD)
    )
    assert consent.name == "consent"
    assert location_params(submit(client, consent, "accept"))["state"] == request.state


def test_decline_redirects_with_access_denied(client: httpx.Client, authority: MockAuthority) -> None:
    request = authorization_request()
    consent = sign_in(client, request.url)
    params = location_params(submit(client, consent, "decline"))
    assert params["error"] == "access_denied"
    assert params["error_subcode"] == "cancel"
    assert params["error_description"].startswith("AADSTS65004: ")
    assert "Correlation ID:" in params["error_description"]
    assert params["state"] == request.state
    assert "code" not in params
    assert authority.authorization_codes == {}


def test_skip_consent_and_prompt_consent(client: httpx.Client, authority: MockAuthority) -> None:
    authority.skip_consent = True
    request = authorization_request()
    signin = parse_page(client.get(request.url))
    params = location_params(submit(client, signin, "signin", password=DEFAULT_PASSWORD))
    assert params["state"] == request.state
    assert params["code"].startswith("mock-ac-")

    forced = sign_in(client, authorization_request(prompt="consent").url)
    assert forced.name == "consent"


def test_unknown_flow_token_is_an_error_page(client: httpx.Client) -> None:
    response = client.post(
        f"/{DEFAULT_TENANT}/oauth2/v2.0/authorize",
        data={"flowToken": "mock-flow-forged", "username": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD},
    )
    page = parse_page(response)
    assert (page.status, page.name, page.texts["error-code"]) == (400, "error", "AADSTS50089")


def test_sign_in_session_expires(authority: MockAuthority, client: httpx.Client) -> None:
    now = [time.time()]
    authority.clock = lambda: now[0]
    signin = parse_page(client.get(authorization_request().url))
    now[0] += authority.sign_in_session_lifetime + 1
    page = parse_page(submit(client, signin, "signin", password=DEFAULT_PASSWORD))
    assert (page.status, page.texts["error-code"]) == (400, "AADSTS50089")


# --------------------------------------------------------------------------- authorize: request validation


def assert_error_page(response: httpx.Response, code: int) -> Page:
    page = parse_page(response)  # also asserts there is no Location
    assert (page.status, page.name) == (400, "error")
    assert page.texts["error-code"] == f"AADSTS{code}"
    assert "Correlation ID" in page.texts["trace"]
    return page


def test_unknown_client_is_an_error_page_not_a_redirect(client: httpx.Client) -> None:
    request = authorization_request(client_id="00000000-0000-4000-8000-0000000000ff")
    page = assert_error_page(client.get(request.url), 700016)
    assert "00000000-0000-4000-8000-0000000000ff" in page.texts["error-message"]
    # the app exists, but not in the tenant the path names
    other = "11111111-2222-4333-8444-555555555555"
    assert_error_page(client.get(request.url.replace(DEFAULT_TENANT, other)), 90002)
    missing = client.get(f"/{DEFAULT_TENANT}/oauth2/v2.0/authorize", params={"redirect_uri": REDIRECT})
    assert "client_id" in assert_error_page(missing, 900144).texts["error-message"]


def test_unregistered_redirect_uri_is_an_error_page(client: httpx.Client, authority: MockAuthority) -> None:
    authority.add_application(
        DEFAULT_TENANT, DEFAULT_CLIENT_ID, secret=DEFAULT_SECRET, redirect_uris=[WEB_REDIRECT]
    )
    for uri in (
        "https://evil.example/callback",
        "https://app.example/other",
        "http://localhost:8765/callback",
    ):
        request = authorization_request(client_id=DEFAULT_CLIENT_ID, redirect_uri=uri)
        page = assert_error_page(client.get(request.url), 50011)
        assert uri in page.texts["error-message"]
    # a public client that registered none still may not use a non-loopback URI
    for uri in ("https://evil.example/callback", "https://localhost:8765/callback", f"{REDIRECT}#frag"):
        assert_error_page(client.get(authorization_request(redirect_uri=uri).url), 50011)
    # a confidential app that registered nothing has no reply address at all
    authority.add_application(DEFAULT_TENANT, DEFAULT_CLIENT_ID, secret=DEFAULT_SECRET)
    assert_error_page(client.get(authorization_request(client_id=DEFAULT_CLIENT_ID).url), 500113)
    assert authority.requests_to("authorize")[-1].query["client_id"] == DEFAULT_CLIENT_ID


def test_registered_redirect_uri_and_the_single_registered_default(
    client: httpx.Client, authority: MockAuthority
) -> None:
    authority.add_application(
        DEFAULT_TENANT, DEFAULT_CLIENT_ID, secret=DEFAULT_SECRET, redirect_uris=[WEB_REDIRECT]
    )
    request = authorization_request(client_id=DEFAULT_CLIENT_ID, redirect_uri=WEB_REDIRECT)
    consent = sign_in(client, request.url)
    params = location_params(submit(client, consent, "accept"), prefix=WEB_REDIRECT)
    assert params["state"] == request.state
    without = client.get(
        f"/{DEFAULT_TENANT}/oauth2/v2.0/authorize",
        params={"client_id": DEFAULT_CLIENT_ID, "response_type": "code", "scope": SCOPE, "state": "s1"},
    )
    consent = sign_in(client, str(without.request.url))
    assert location_params(submit(client, consent, "accept"), prefix=WEB_REDIRECT)["state"] == "s1"


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://localhost:1/callback",
        "http://localhost:65535/",
        "http://localhost/any/path",
        "http://127.0.0.1:50123/auth",
        "http://[::1]:8080/",
    ],
)
def test_public_client_accepts_loopback_on_any_port(client: httpx.Client, redirect_uri: str) -> None:
    request = authorization_request(redirect_uri=redirect_uri)
    consent = sign_in(client, request.url)
    params = location_params(submit(client, consent, "accept"), prefix=redirect_uri)
    assert params["state"] == request.state
    assert redeem(client, params["code"], request.pkce.verifier, redirect_uri=redirect_uri).status_code == 200


def test_registered_loopback_ignores_only_the_port(client: httpx.Client, authority: MockAuthority) -> None:
    authority.add_application(
        DEFAULT_TENANT, PUBLIC_CLIENT_ID, public_client=True, redirect_uris=["http://127.0.0.1/callback"]
    )
    assert (
        client.get(authorization_request(redirect_uri="http://127.0.0.1:4444/callback").url).status_code
        == 200
    )
    assert_error_page(
        client.get(authorization_request(redirect_uri="http://127.0.0.1:4444/other").url), 50011
    )
    assert_error_page(
        client.get(authorization_request(redirect_uri="http://localhost:4444/callback").url), 50011
    )


def test_errors_after_the_redirect_uri_is_trusted_are_redirected(client: httpx.Client) -> None:
    base = {"client_id": PUBLIC_CLIENT_ID, "redirect_uri": REDIRECT, "scope": SCOPE, "state": "xyz"}
    path = f"/{DEFAULT_TENANT}/oauth2/v2.0/authorize"
    missing = location_params(client.get(path, params=base))
    assert (missing["error"], missing["state"]) == ("unsupported_response_type", "xyz")
    assert missing["error_description"].startswith("AADSTS900144: ")
    token = location_params(client.get(path, params={**base, "response_type": "token"}))
    assert (token["error"], token["state"]) == ("unsupported_response_type", "xyz")
    assert token["error_description"].startswith("AADSTS70005: ")
    no_scope = location_params(client.get(path, params={**base, "response_type": "code", "scope": ""}))
    assert (no_scope["error"], no_scope["state"]) == ("invalid_request", "xyz")
    method = {**base, "response_type": "code", "code_challenge": "abc", "code_challenge_method": "S512"}
    assert location_params(client.get(path, params=method))["error"] == "invalid_request"
    prompt = location_params(client.get(path, params={**base, "response_type": "code", "prompt": "bogus"}))
    assert prompt["error"] == "invalid_request"
    silent = location_params(client.get(path, params={**base, "response_type": "code", "prompt": "none"}))
    assert (silent["error"], silent["state"]) == ("login_required", "xyz")
    assert silent["error_description"].startswith("AADSTS50058: ")
    no_state = location_params(client.get(path, params={k: v for k, v in base.items() if k != "state"}))
    assert "state" not in no_state


def test_post_of_the_request_and_fragment_mode(client: httpx.Client, authority: MockAuthority) -> None:
    request = authorization_request(response_mode="fragment")
    query = dict(httpx.URL(request.url).params.multi_items())
    signin = parse_page(client.post(f"/{DEFAULT_TENANT}/oauth2/v2.0/authorize", data=query))
    assert signin.name == "signin"
    consent = parse_page(submit(client, signin, "signin", password=DEFAULT_PASSWORD))
    response = submit(client, consent, "accept")
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "#code=")
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).fragment).items()}
    assert params["state"] == request.state
    assert client.put(f"/{DEFAULT_TENANT}/oauth2/v2.0/authorize").status_code == 400


# --------------------------------------------------------------------------- the programmatic hook


def test_authorize_redirect_hook(authority: MockAuthority, client: httpx.Client) -> None:
    request = authorization_request()
    location = authority.authorize_redirect(request.url, DEFAULT_USERNAME, DEFAULT_PASSWORD)
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert location.startswith(REDIRECT + "?")
    assert params["state"] == request.state
    body = redeem(client, params["code"], request.pkce.verifier).json()
    assert id_token_claims(authority, body)["nonce"] == request.nonce
    assert authority.requests_to("authorize") == []  # not an HTTP request

    declined = authority.authorize_redirect(authorization_request().url, DEFAULT_USERNAME, accept=False)
    assert parse_qs(urlsplit(declined).query)["error"] == ["access_denied"]
    silent = authority.authorize_redirect(authorization_request(prompt="none").url, DEFAULT_USERNAME)
    assert parse_qs(urlsplit(silent).query)["error"] == ["login_required"]
    # without a password check (None), the user still has to exist
    assert "code=" in authority.authorize_redirect(authorization_request().url, DEFAULT_USERNAME)
    with pytest.raises(ValueError, match="AADSTS50126"):
        authority.authorize_redirect(request.url, DEFAULT_USERNAME, "wrong")
    with pytest.raises(ValueError, match="no user"):
        authority.authorize_redirect(request.url, "nobody@contoso.onmicrosoft.com")
    with pytest.raises(ValueError, match="AADSTS700016"):
        authority.authorize_redirect(authorization_request(client_id=DEFAULT_TENANT).url, DEFAULT_USERNAME)
    with pytest.raises(ValueError, match="AADSTS50011"):
        authority.authorize_redirect(
            authorization_request(redirect_uri="https://evil.example/").url, DEFAULT_USERNAME
        )
    with pytest.raises(ValueError, match="not an authorize endpoint"):
        authority.authorize_redirect(TOKEN, DEFAULT_USERNAME)
    authority.skip_consent = True
    skipped = authority.authorize_redirect(authorization_request().url, DEFAULT_USERNAME, accept=False)
    assert "code=" in skipped


# --------------------------------------------------------------------------- device verification page


def start_device_flow(client: httpx.Client, origin: str = ORIGIN) -> dict[str, Any]:
    response = client.post(
        f"{origin}/{DEFAULT_TENANT}/oauth2/v2.0/devicecode",
        data={"client_id": PUBLIC_CLIENT_ID, "scope": f"{SCOPE} openid offline_access"},
    )
    assert response.status_code == 200, response.text
    flow: dict[str, Any] = response.json()
    return flow


def poll(client: httpx.Client, device_code: str, origin: str = ORIGIN) -> httpx.Response:
    return client.post(
        f"{origin}/{DEFAULT_TENANT}/oauth2/v2.0/token",
        data={"grant_type": DEVICE_GRANT, "client_id": PUBLIC_CLIENT_ID, "device_code": device_code},
    )


def walk_device_page(
    client: httpx.Client, verification_uri: str, user_code: str, *, accept: bool = True
) -> Page:
    entry = parse_page(client.get(verification_uri))
    assert (entry.status, entry.name) == (200, "devicecode")
    assert (entry.ids["otc"]["tag"], entry.ids["next"]["tag"]) == ("input", "button")
    wrong = parse_page(submit(client, entry, "next", otc="NOTACODE1"))
    assert (wrong.status, wrong.name) == (200, "devicecode")
    assert wrong.texts["error"].startswith("That code didn't work")
    # users type codes in lower case, with spaces: accepted
    signin = parse_page(submit(client, wrong, "next", otc=f" {user_code[:4].lower()} {user_code[4:]} "))
    assert (signin.status, signin.name) == (200, "signin")
    assert signin.ids["username"]["value"] == ""
    bad = parse_page(submit(client, signin, "signin", username=DEFAULT_USERNAME, password="nope"))
    assert (bad.name, bad.texts["error"][:12]) == ("signin", "AADSTS50126:")
    consent = parse_page(submit(client, bad, "signin", username=DEFAULT_USERNAME, password=DEFAULT_PASSWORD))
    assert consent.name == "consent"
    return parse_page(submit(client, consent, "accept" if accept else "decline"))


def test_device_verification_page_approves_the_session(
    authority: MockAuthority, client: httpx.Client
) -> None:
    flow = start_device_flow(client)
    assert flow["verification_uri"] == "https://microsoft.com/devicelogin"  # in process at a real host
    assert poll(client, flow["device_code"]).json()["error"] == "authorization_pending"
    done = walk_device_page(client, "https://microsoft.com/devicelogin", flow["user_code"])
    assert (done.status, done.name) == (200, "device-done")
    assert PUBLIC_CLIENT_ID in done.texts["message"]
    tokens = poll(client, flow["device_code"])
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["access_token"].startswith("mock-at-")
    assert id_token_claims(authority, body)["preferred_username"] == DEFAULT_USERNAME
    recorded = authority.requests_to("devicelogin")
    assert [r.method for r in recorded] == ["GET", "POST", "POST", "POST", "POST", "POST"]
    assert authority.unmatched == []
    # the code is used up: entering it again is refused
    entry = parse_page(client.get("/devicelogin", params={"otc": flow["user_code"]}))
    assert entry.ids["otc"]["value"] == flow["user_code"]
    again = parse_page(submit(client, entry, "next"))
    assert (again.name, again.texts["error"][:22]) == ("devicecode", "That code didn't work.")


def test_device_verification_page_decline(client: httpx.Client) -> None:
    flow = start_device_flow(client)
    declined = walk_device_page(client, f"{ORIGIN}/devicelogin", flow["user_code"], accept=False)
    assert declined.name == "device-declined"
    assert poll(client, flow["device_code"]).json()["error"] == "authorization_declined"


def test_device_page_with_skip_consent_and_an_expired_code(
    authority: MockAuthority, client: httpx.Client
) -> None:
    authority.skip_consent = True
    now = [time.time()]
    authority.clock = lambda: now[0]
    authority.device_code_lifetime = 60  # shorter than the sign-in session
    flow = start_device_flow(client)
    entry = parse_page(client.get("/devicelogin"))
    signin = parse_page(submit(client, entry, "next", otc=flow["user_code"]))
    now[0] += authority.device_code_lifetime + 1
    expired = parse_page(
        submit(client, signin, "signin", username=DEFAULT_USERNAME, password=DEFAULT_PASSWORD)
    )
    assert (expired.name, expired.texts["error"][:20]) == ("devicecode", "That code has expire")

    fresh = start_device_flow(client)
    entry = parse_page(client.get("/devicelogin"))
    signin = parse_page(submit(client, entry, "next", otc=fresh["user_code"]))
    done = parse_page(submit(client, signin, "signin", username=DEFAULT_USERNAME, password=DEFAULT_PASSWORD))
    assert done.name == "device-done"
    assert poll(client, fresh["device_code"]).status_code == 200


def test_authorize_flow_token_is_not_accepted_by_the_device_page(client: httpx.Client) -> None:
    signin = parse_page(client.get(authorization_request().url))
    response = client.post(
        "/devicelogin", data={"flowToken": signin.form.fields["flowToken"], "password": DEFAULT_PASSWORD}
    )
    assert parse_page(response).texts["error-code"] == "AADSTS50089"


# --------------------------------------------------------------------------- over real loopback sockets


def test_authorize_and_device_pages_over_loopback(authority: MockAuthority) -> None:
    with authority.serve_http() as server, httpx.Client(base_url=server.url) as client:
        authorize = f"{server.url}/{DEFAULT_TENANT}/oauth2/v2.0/authorize"
        request = authorization_request(authorize, redirect_uri="http://127.0.0.1:51234/")
        consent = sign_in(client, request.url)
        assert consent.name == "consent"
        response = submit(client, consent, "accept")
        params = location_params(response, prefix="http://127.0.0.1:51234/")
        assert params["state"] == request.state
        token = redeem(
            client,
            params["code"],
            request.pkce.verifier,
            token=f"{server.url}/{DEFAULT_TENANT}/oauth2/v2.0/token",
            redirect_uri="http://127.0.0.1:51234/",
        )
        assert token.status_code == 200, token.text
        claims = id_token_claims(authority, token.json())
        assert claims["nonce"] == request.nonce
        assert claims["iss"] == f"{server.url}/{DEFAULT_TENANT}/v2.0"

        flow = start_device_flow(client, server.url)
        assert flow["verification_uri"] == f"{server.url}/devicelogin"
        assert f"{server.url}/devicelogin" in flow["message"]
        done = walk_device_page(client, flow["verification_uri"], flow["user_code"])
        assert done.name == "device-done"
        assert poll(client, flow["device_code"], server.url).status_code == 200
    assert len(authority.requests_to("authorize")) == 3
    assert len(authority.requests_to("devicelogin")) == 6
    assert authority.unmatched == []


def test_device_verification_uri_override(authority: MockAuthority, client: httpx.Client) -> None:
    authority.device_verification_uri = "https://devices.example/login"
    flow = start_device_flow(client)
    assert flow["verification_uri"] == "https://devices.example/login"
    with httpx.Client(transport=authority.transport()) as other:
        authority.device_verification_uri = None
        assert (
            start_device_flow(other, "https://mock.test")["verification_uri"]
            == "https://mock.test/devicelogin"
        )
