"""Browser sign-in: the authorize endpoint and the device verification page (reference §2.6-2.7).

A real browser (or a scripted HTTP client parsing the forms) signs in through small, self-contained
HTML pages, as a user would on ``login.microsoftonline.com``:

* ``GET /{tenant}/oauth2/v2.0/authorize?client_id=...`` (ADFS: ``/adfs/oauth2/authorize``; a
  ``POST`` of the same parameters as a form is accepted too) validates the request, then shows the
  sign-in page; its ``POST`` goes on to the consent page, whose ``POST`` ends with ``302 Found`` to
  ``{redirect_uri}?code=...&state=...`` (or ``#code=...`` with ``response_mode=fragment``), or to
  ``{redirect_uri}?error=access_denied&...`` when the user declines.
* ``GET /devicelogin`` asks for the user code of a device-code session (``?otc=`` pre-fills it),
  then the same sign-in and consent pages approve (or decline) the session, ending on a "You have
  signed in" page.

Stable element ids for browser automation: sign-in ``username``, ``password``, ``signin`` (submit)
and ``error`` (the message after a failed attempt); consent ``accept`` and ``decline``; code entry
``otc`` and ``next``; error pages ``error-code`` (``AADSTSnnnnn``) and ``error-message``. Each page's
``<body>`` names it in ``data-page``: ``signin``, ``consent``, ``error``, ``devicecode``,
``device-done``, ``device-declined``.

A sign-in in progress lives server-side (:class:`~conformance.mock.models.SignInSession`) under a
random handle, the only value the forms carry that the mock reads back (hidden field ``flowToken``).
The hidden ``client_id`` and ``redirect_uri`` fields are informational: where the answer goes is
always taken from the stored request.

Validation of an authorization request, in order:

1. tenant (AADSTS90002), ``client_id`` present (900144) and registered (700016), ``redirect_uri``
   (may be left out when the app registered exactly one) registered for the app (50011; 500113 when
   the app has none): failures are an HTML error page with status 400 and never a redirect, since
   the redirect URI cannot be trusted. A public client may use any loopback ``http`` URI on any
   port when it registered none (:func:`~conformance.mock.directory.redirect_registered`);
2. ``response_type`` present and ``code`` (``unsupported_response_type``), ``response_mode``
   ``query`` or ``fragment``, ``scope`` present, ``code_challenge_method`` ``S256`` or ``plain``,
   a known ``prompt`` (``invalid_request``): failures redirect back with ``error``,
   ``error_description`` and ``state``;
3. ``prompt=none`` redirects with ``login_required`` (AADSTS50058): the mock keeps no browser
   session, so nobody is ever silently signed in.

The consent page is skipped when ``state.skip_consent`` is set (unless ``prompt=consent``).
:func:`sign_in_redirect` (``MockAuthority.authorize_redirect``) runs the same steps without HTML.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Mapping
from html import escape
from urllib.parse import urlencode

import httpx

from conformance.mock import discovery, errors
from conformance.mock.context import RequestContext
from conformance.mock.device import VERIFICATION_PATH
from conformance.mock.directory import Directory, redirect_registered
from conformance.mock.errors import EntraError, entra_timestamp, error_body
from conformance.mock.models import (
    AuthorizationRequest,
    DeviceCodeGrant,
    DeviceCodeStatus,
    SignInSession,
    User,
)
from conformance.mock.state import AuthorityState, new_secret
from conformance.mock.tokens import ADFS_TENANT, parse_scopes

#: Name (and id) of the hidden field carrying the sign-in handle.
FLOW_FIELD = "flowToken"
RESPONSE_MODES = ("query", "fragment")
PROMPTS = frozenset({"", "login", "select_account", "consent", "none"})

# AADSTS codes of the browser steps (mock's choice where the reference has none).
UNSUPPORTED_RESPONSE_TYPE = 70005
NO_REPLY_ADDRESS = 500113
LOGIN_REQUIRED = 50058
USER_DECLINED_CONSENT = 65004
FLOW_TOKEN_EXPIRED = 50089
INVALID_PROMPT = 90023

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}"
    "label,input,button{display:block;font-size:1rem}input{width:100%;margin:.25rem 0 1rem;padding:.4rem}"
    "button{margin:.5rem .5rem 0 0;padding:.4rem 1.2rem;display:inline-block}"
    "#error,#error-code{color:#a4262c}code{word-break:break-all}"
)
_HTML_HEADERS = {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "pragma": "no-cache",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    # No form-action: browsers apply it to the redirect after a form POST, which leaves the origin.
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
}


class PageError(Exception):
    """A request the mock answers with an HTML error page (status 400), never with a redirect."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.code = code
        self.message = message


class RedirectError(Exception):
    """An error sent back to the (validated) redirect URI as ``error``/``error_description``."""

    def __init__(
        self,
        target: tuple[str, str, str | None],
        error: str,
        code: int,
        message: str,
        subcode: str | None = None,
    ) -> None:
        super().__init__(f"{error} AADSTS{code}: {message}")
        self.target = target  # (redirect_uri, response_mode, state)
        self.error = error
        self.code = code
        self.message = message
        self.subcode = subcode


# -- HTML ----
def _html(title: str, page: str, body: str, *, status: int = 200) -> httpx.Response:
    """A small self-contained page; every value in ``body`` is escaped by its builder."""
    document = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body data-page="{escape(page)}"><main>{body}</main></body></html>\n'
    )
    return httpx.Response(status, headers=_HTML_HEADERS, content=document.encode("utf-8"))


def _hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{escape(name)}" id="{escape(name)}" value="{escape(value)}">'


def _error_paragraph(message: str | None) -> str:
    return f'<p id="error" role="alert">{escape(message)}</p>' if message else ""


def _signin_page(
    action: str, session: SignInSession, username: str, *, client_id: str, error: str | None = None
) -> httpx.Response:
    request = session.request
    informational = (
        _hidden("client_id", request.client_id) + _hidden("redirect_uri", request.redirect_uri)
        if request is not None
        else ""
    )
    body = (
        "<h1>Sign in</h1>"
        f'<p id="app">to continue to application <code>{escape(client_id)}</code></p>'
        f"{_error_paragraph(error)}"
        f'<form method="post" action="{escape(action)}" id="signin-form">'
        f"{_hidden(FLOW_FIELD, session.handle)}{informational}"
        '<label for="username">Email, phone, or Skype</label>'
        f'<input type="text" name="username" id="username" value="{escape(username)}" '
        'autocomplete="username" autofocus>'
        '<label for="password">Password</label>'
        '<input type="password" name="password" id="password" autocomplete="current-password">'
        '<button type="submit" id="signin">Sign in</button>'
        "</form>"
    )
    return _html("Sign in to your account", "signin", body)


def _consent_page(
    action: str, session: SignInSession, client_id: str, scopes: tuple[str, ...]
) -> httpx.Response:
    items = "".join(f"<li>{escape(scope)}</li>" for scope in scopes)
    body = (
        "<h1>Permissions requested</h1>"
        f'<p id="account">{escape(session.username or "")}</p>'
        f'<p>Application <code id="client">{escape(client_id)}</code> would like to:</p>'
        f'<ul id="scopes">{items}</ul>'
        f'<form method="post" action="{escape(action)}" id="consent-form">'
        f"{_hidden(FLOW_FIELD, session.handle)}"
        '<button type="submit" name="consent" value="accept" id="accept">Accept</button>'
        '<button type="submit" name="consent" value="decline" id="decline">Cancel</button>'
        "</form>"
    )
    return _html("Permissions requested", "consent", body)


def _error_page(state: AuthorityState, ctx: RequestContext, err: PageError) -> httpx.Response:
    body = (
        "<h1>Sign in</h1><p>Sorry, but we're having trouble signing you in.</p>"
        f'<p id="error-code">AADSTS{err.code}</p>'
        f'<p id="error-message">{escape(err.message)}</p>'
        f'<p id="trace">Trace ID: {uuid.uuid4()}<br>Correlation ID: {escape(ctx.correlation_id)}<br>'
        f"Timestamp: {escape(entra_timestamp(state.now()))}</p>"
    )
    return _html("Sign in to your account", "error", body, status=400)


def _code_page(otc: str, error: str | None = None) -> httpx.Response:
    body = (
        "<h1>Enter code</h1><p>Enter the code displayed on your app or device.</p>"
        f"{_error_paragraph(error)}"
        f'<form method="post" action="{VERIFICATION_PATH}" id="code-form">'
        '<label for="otc">Code</label>'
        f'<input type="text" name="otc" id="otc" value="{escape(otc)}" autocomplete="off" autofocus>'
        '<button type="submit" id="next">Next</button>'
        "</form>"
    )
    return _html("Enter code", "devicecode", body)


def _device_done_page(client_id: str, *, approved: bool) -> httpx.Response:
    if approved:
        title, page = "You have signed in", "device-done"
        text = f"You have signed in to the application {client_id} on your device."
    else:
        title, page = "Sign-in canceled", "device-declined"
        text = f"You declined to sign in to the application {client_id} on your device."
    body = f'<h1>{escape(title)}</h1><p id="message">{escape(text)}</p><p>You may now close this window.</p>'
    return _html(title, page, body)


def _redirect(location: str) -> httpx.Response:
    headers = {k: v for k, v in _HTML_HEADERS.items() if k != "content-type"}
    return httpx.Response(302, headers={**headers, "location": location})


# -- the authorization response ----
def _response_location(redirect_uri: str, mode: str, params: list[tuple[str, str]]) -> str:
    encoded = urlencode(params)
    if mode == "fragment":
        return f"{redirect_uri}#{encoded}"
    if "?" not in redirect_uri:
        return f"{redirect_uri}?{encoded}"
    return f"{redirect_uri}{'' if redirect_uri.endswith(('?', '&')) else '&'}{encoded}"


def error_location(state: AuthorityState, err: RedirectError, correlation_id: str) -> str:
    """Where a browser is sent for ``err``: its redirect URI with Entra's error parameters."""
    redirect_uri, mode, request_state = err.target
    description = error_body(
        EntraError(400, err.error, err.code, err.message),
        origin="",
        correlation_id=correlation_id,
        now=state.now(),
    )["error_description"]
    params = [("error", err.error), ("error_description", description)]
    if err.subcode is not None:
        params.append(("error_subcode", err.subcode))
    if request_state is not None:
        params.append(("state", request_state))
    return _response_location(redirect_uri, mode, params)


def _target(request: AuthorizationRequest) -> tuple[str, str, str | None]:
    return request.redirect_uri, request.response_mode, request.state


def _code_location(state: Directory, request: AuthorizationRequest, user: User) -> str:
    code = state.issue_authorization_code(
        request.tenant_id,
        request.client_id,
        redirect_uri=request.redirect_uri,
        scopes=request.scopes,
        username=user.username,
        code_challenge=request.code_challenge,
        code_challenge_method=request.code_challenge_method,
        nonce=request.nonce,
    )
    params = [("code", code)]
    if request.state is not None:
        params.append(("state", request.state))
    return _response_location(request.redirect_uri, request.response_mode, params)


def _declined(request: AuthorizationRequest) -> RedirectError:
    return RedirectError(
        _target(request),
        "access_denied",
        USER_DECLINED_CONSENT,
        "The user has denied access to the scope requested by the client application.",
        subcode="cancel",
    )


# -- validation ----
def validate_request(state: AuthorityState, segment: str, params: Mapping[str, str]) -> AuthorizationRequest:
    """The authorization request ``params`` sent to ``/{segment}/oauth2/v2.0/authorize``.

    Raises :class:`PageError` before the redirect URI is trusted, :class:`RedirectError` after.
    """
    try:
        tenant = discovery.resolve_tenant(state, segment, error="invalid_request")
    except EntraError as err:
        raise PageError(err.code, err.message) from None
    client_id = params.get("client_id", "")
    if not client_id:
        raise PageError(
            errors.MISSING_PARAMETER, "The request body must contain the following parameter: 'client_id'."
        )
    app = state.find_application(tenant, client_id)
    if app is None:
        raise PageError(
            errors.UNKNOWN_APPLICATION,
            f"Application with identifier '{client_id}' was not found in the directory '{segment}'. This "
            "can happen if the application has not been installed by the administrator of the tenant or "
            "consented to by any user in the tenant. You may have sent your authentication request to the "
            "wrong tenant.",
        )
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri:
        if len(app.redirect_uris) != 1:
            raise PageError(
                errors.MISSING_PARAMETER,
                "The request body must contain the following parameter: 'redirect_uri'.",
            )
        redirect_uri = app.redirect_uris[0]
    if "#" in redirect_uri or not redirect_registered(
        redirect_uri, app.redirect_uris, public_client=app.public_client, require_registration=True
    ):
        if not app.redirect_uris and not app.public_client:
            raise PageError(NO_REPLY_ADDRESS, "No reply address is registered for the application.")
        raise PageError(
            errors.REDIRECT_MISMATCH,
            f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs "
            f"configured for the application '{app.client_id}'. Make sure the redirect URI sent in the "
            "request matches one added to your application in the Azure portal.",
        )

    mode = params.get("response_mode") or "query"
    request_state = params.get("state") or None
    target = (redirect_uri, mode if mode in RESPONSE_MODES else "query", request_state)
    response_type = params.get("response_type", "")
    if not response_type:
        raise RedirectError(
            target,
            "unsupported_response_type",
            errors.MISSING_PARAMETER,
            "The request body must contain the following parameter: 'response_type'.",
        )
    if response_type != "code":
        raise RedirectError(
            target,
            "unsupported_response_type",
            UNSUPPORTED_RESPONSE_TYPE,
            f"The app requested an unsupported response type '{response_type[:100]}'. The mock authority "
            "supports the authorization code flow ('code') only.",
        )
    if mode not in RESPONSE_MODES:
        raise RedirectError(
            target,
            "invalid_request",
            errors.MALFORMED_REQUEST,
            f"The response_mode '{mode[:100]}' is not supported; use 'query' or 'fragment'.",
        )
    scope = params.get("scope", "")
    if not scope.strip():
        raise RedirectError(
            target,
            "invalid_request",
            errors.MISSING_PARAMETER,
            "The request body must contain the following parameter: 'scope'.",
        )
    code_challenge = params.get("code_challenge") or None
    method = params.get("code_challenge_method") or "plain"  # RFC 7636 §4.3: plain when absent
    if code_challenge is not None and method not in ("S256", "plain"):
        raise RedirectError(
            target,
            "invalid_request",
            errors.MALFORMED_REQUEST,
            f"The code_challenge_method '{method[:100]}' is not supported; use 'S256' or 'plain'.",
        )
    prompt = params.get("prompt", "")
    if prompt not in PROMPTS:
        raise RedirectError(target, "invalid_request", INVALID_PROMPT, "Unsupported 'prompt' value.")
    request = AuthorizationRequest(
        tenant_id=tenant.tenant_id if tenant is not None else app.tenant_id,
        client_id=app.client_id,
        redirect_uri=redirect_uri,
        response_mode=mode,
        scopes=parse_scopes(scope),
        state=request_state,
        nonce=params.get("nonce") or None,
        code_challenge=code_challenge,
        code_challenge_method=method if code_challenge is not None else "S256",
        login_hint=params.get("login_hint", ""),
        prompt=prompt,
    )
    if prompt == "none":
        raise RedirectError(
            target,
            "login_required",
            LOGIN_REQUIRED,
            "A silent sign-in request was sent but no user is signed in.",
        )
    return request


# -- sign-in sessions ----
def _open_session(
    state: AuthorityState, *, request: AuthorizationRequest | None = None, user_code: str | None = None
) -> SignInSession:
    now = state.now()
    for handle in [h for h, s in state.sign_in_sessions.items() if now >= s.expires_at]:
        del state.sign_in_sessions[handle]
    session = SignInSession(
        handle=new_secret("mock-flow-"),
        expires_at=now + state.sign_in_session_lifetime,
        request=request,
        user_code=user_code,
    )
    state.sign_in_sessions[session.handle] = session
    return session


def _check_credentials(state: AuthorityState, tenant_id: str | None, username: str, password: str) -> User:
    """The user signing in, or :class:`ValueError` with the message the sign-in page shows."""
    if not username:
        raise ValueError("Enter your username.")
    user = state.find_user(tenant_id, username)
    if user is None:
        raise ValueError(
            f"AADSTS{errors.UNKNOWN_USER}: This username may be incorrect. Make sure you typed it correctly."
        )
    if not hmac.compare_digest(password.encode(), user.password.encode()):
        raise ValueError(
            f"AADSTS{errors.BAD_CREDENTIALS}: Your account or password is incorrect. If you don't remember "
            "your password, reset it now."
        )
    return user


def _needs_consent(state: AuthorityState, request: AuthorizationRequest | None) -> bool:
    return not state.skip_consent or (request is not None and request.prompt == "consent")


def _pending_device_grant(state: AuthorityState, user_code: str) -> DeviceCodeGrant | None:
    device_code = state.user_codes.get(user_code)
    grant = state.device_codes.get(device_code) if device_code is not None else None
    if grant is None or grant.status is not DeviceCodeStatus.PENDING or state.now() >= grant.expires_at:
        return None
    return grant


def _continue(state: Directory, ctx: RequestContext, *, device: bool) -> httpx.Response:
    """A POST of the sign-in or consent form: the stored session says which and where it goes."""
    session = state.sign_in_sessions.get(ctx.form.get(FLOW_FIELD, ""))
    if session is None or state.now() >= session.expires_at or (session.user_code is not None) != device:
        return _error_page(
            state,
            ctx,
            PageError(
                FLOW_TOKEN_EXPIRED,
                "The sign-in session is unknown or has expired. Start the sign-in again from your "
                "application or device.",
            ),
        )
    action = ctx.request.url.path
    request = session.request
    grant = _pending_device_grant(state, session.user_code) if session.user_code is not None else None
    if device and grant is None:
        del state.sign_in_sessions[session.handle]
        return _code_page("", "That code has expired or was already used. Request a new one on your device.")
    tenant_id: str | None
    if request is not None:
        client_id, scopes, tenant_id = request.client_id, request.scopes, request.tenant_id
    else:
        assert grant is not None
        client_id, scopes, tenant_id = grant.client_id, grant.scopes, grant.tenant_id

    if session.stage == "signin":
        username = ctx.form.get("username", "").strip()
        try:
            user = _check_credentials(state, tenant_id, username, ctx.form.get("password", ""))
        except ValueError as problem:
            return _signin_page(action, session, username, client_id=client_id, error=str(problem))
        session.username = user.username
        if _needs_consent(state, request):
            session.stage = "consent"
            return _consent_page(action, session, client_id, scopes)
        accepted = True
    else:
        choice = ctx.form.get("consent", "")
        if choice not in ("accept", "decline"):
            return _consent_page(action, session, client_id, scopes)
        accepted = choice == "accept"

    del state.sign_in_sessions[session.handle]
    if request is None:
        assert session.user_code is not None
        if accepted:
            state.approve_device_code(session.user_code, session.username or "")
        else:
            state.decline_device_code(session.user_code)
        return _device_done_page(client_id, approved=accepted)
    if not accepted:
        return _redirect(error_location(state, _declined(request), ctx.correlation_id))
    signed_in = state.find_user(request.tenant_id, session.username or "")
    assert signed_in is not None
    return _redirect(_code_location(state, request, signed_in))


# -- endpoints ----
def authorize_endpoint(state: Directory, ctx: RequestContext, segment: str) -> httpx.Response:
    """``GET``/``POST /{tenant}/oauth2/v2.0/authorize``: validate, then the sign-in page (or a form POST)."""
    ctx.require_method("GET", "POST")
    if ctx.request.method == "POST" and FLOW_FIELD in ctx.form:
        return _continue(state, ctx, device=False)
    params = ctx.query if ctx.request.method == "GET" else ctx.form
    try:
        request = validate_request(state, segment, params)
    except PageError as err:
        return _error_page(state, ctx, err)
    except RedirectError as err:
        return _redirect(error_location(state, err, ctx.correlation_id))
    session = _open_session(state, request=request)
    return _signin_page(ctx.request.url.path, session, request.login_hint, client_id=request.client_id)


def device_login(state: Directory, ctx: RequestContext) -> httpx.Response:
    """``GET``/``POST /devicelogin``: enter the user code, then sign in and consent on the device's behalf."""
    ctx.require_method("GET", "POST")
    if ctx.request.method == "GET":
        return _code_page(ctx.query.get("otc", ""))
    if FLOW_FIELD in ctx.form:
        return _continue(state, ctx, device=True)
    entered = ctx.form.get("otc", "")
    user_code = "".join(entered.split()).replace("-", "").upper()
    grant = _pending_device_grant(state, user_code)
    if grant is None:
        return _code_page(
            entered,
            "That code didn't work. Check the code and try again, or request a new one on your device.",
        )
    session = _open_session(state, user_code=user_code)
    return _signin_page(ctx.request.url.path, session, "", client_id=grant.client_id)


# -- the programmatic hook ----
def _authorize_segment(url: httpx.URL) -> str:
    lower = tuple(part.lower() for part in url.path.split("/") if part)
    if len(lower) == 4 and lower[1:] == ("oauth2", "v2.0", "authorize"):
        return url.path.split("/")[1]
    if lower == (ADFS_TENANT, "oauth2", "authorize"):
        return ADFS_TENANT
    raise ValueError(f"{url.path!r} is not an authorize endpoint path")


def sign_in_redirect(
    state: Directory, url: str, username: str, password: str | None = None, *, accept: bool = True
) -> str:
    """The ``Location`` a browser opening ``url`` would end up sent to after ``username`` signs in.

    Same validation as the pages: a request the endpoint answers with an error page raises
    ``ValueError``, as do an unknown user and a wrong ``password`` (``None`` skips the password
    check); errors sent to the redirect URI (``prompt=none``, a bad ``response_type``...) are returned
    as their ``Location``. ``accept=False`` declines consent (``access_denied``); it has no effect when
    ``state.skip_consent`` hides the consent page.
    """
    parsed = httpx.URL(url)
    correlation_id = str(uuid.uuid4())
    try:
        request = validate_request(state, _authorize_segment(parsed), dict(parsed.params.multi_items()))
    except PageError as err:
        raise ValueError(str(err)) from None
    except RedirectError as err:
        return error_location(state, err, correlation_id)
    user = state.find_user(request.tenant_id, username)
    if user is None:
        raise ValueError(f"no user {username!r} can sign in to tenant {request.tenant_id!r}")
    if password is not None:
        _check_credentials(state, request.tenant_id, username, password)
    if _needs_consent(state, request) and not accept:
        return error_location(state, _declined(request), correlation_id)
    return _code_location(state, request, user)
