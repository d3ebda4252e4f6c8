"""The device authorization grant (RFC 8628; reference §2.7).

``POST /{tenant}/oauth2/v2.0/devicecode`` starts a session; the token endpoint's
``urn:ietf:params:oauth:grant-type:device_code`` polls it. A session moves from pending to approved or
declined through :meth:`MockAuthority.approve_device_code` / ``decline_device_code`` (the user's
step, taken in a browser on the ``/devicelogin`` page of :mod:`conformance.mock.authorize`), and
polls answer, in this order of precedence:

* unknown code or another client's code: ``bad_verification_code``;
* the injected clock past ``expires_in``: ``expired_token`` (AADSTS70019);
* already redeemed: ``invalid_grant``; declined: ``authorization_declined``;
* polled sooner than ``interval`` (less ``device_poll_tolerance``) with ``device_slow_down_enabled``:
  ``slow_down``, and the interval grows by 5 s as RFC 8628 §3.5 says;
* still pending: ``authorization_pending`` (AADSTS70016); approved: the tokens, once.
"""

from __future__ import annotations

from typing import Any

import httpx

from conformance.mock import errors
from conformance.mock.clientauth import application, client_id_of
from conformance.mock.context import RequestContext
from conformance.mock.errors import EntraError, invalid_grant, missing_parameter
from conformance.mock.models import Application, DeviceCodeGrant, DeviceCodeStatus, Tenant
from conformance.mock.state import WELL_KNOWN_HOSTS, AuthorityState, new_secret, new_user_code
from conformance.mock.tokens import issue, parse_scopes

DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
VERIFICATION_URI = "https://microsoft.com/devicelogin"
#: Path of the mock's own device verification page (:mod:`conformance.mock.authorize`).
VERIFICATION_PATH = "/devicelogin"


def verification_uri(state: AuthorityState, ctx: RequestContext) -> str:
    """Where the user enters the code: Microsoft's page for requests to a well-known Entra host
    (the mock mounted in process at ``login.microsoftonline.com``), else the mock's own page at the
    origin the request went to; ``state.device_verification_uri`` overrides both.
    """
    if state.device_verification_uri is not None:
        return state.device_verification_uri
    if ctx.host in WELL_KNOWN_HOSTS:
        return VERIFICATION_URI
    return ctx.origin + VERIFICATION_PATH


def device_authorization(
    state: AuthorityState, ctx: RequestContext, tenant: Tenant | None, tenant_label: str
) -> httpx.Response:
    """``POST /{tenant}/oauth2/v2.0/devicecode``: start a device-code session (reference §2.7)."""
    ctx.require_method("POST", "OPTIONS")
    client_id = client_id_of(ctx)
    if not ctx.form.get("scope"):
        raise missing_parameter("scope")
    app = application(state, tenant, client_id, tenant_label)
    now = state.now()
    user_code = new_user_code()
    while user_code in state.user_codes:
        user_code = new_user_code()
    grant = DeviceCodeGrant(
        device_code=new_secret("mock-dc-"),
        user_code=user_code,
        tenant_id=tenant.tenant_id if tenant is not None else None,
        client_id=app.client_id,
        scopes=parse_scopes(ctx.form["scope"]),
        expires_at=now + state.device_code_lifetime,
        interval=state.device_code_interval,
    )
    state.device_codes[grant.device_code] = grant
    state.user_codes[user_code] = grant.device_code
    uri = verification_uri(state, ctx)
    return ctx.json_response(
        {
            "user_code": user_code,
            "device_code": grant.device_code,
            "verification_uri": uri,
            "expires_in": state.device_code_lifetime,
            "interval": state.device_code_interval,
            "message": f"To sign in, use a web browser to open the page {uri} and enter the "
            f"code {user_code} to authenticate.",
        }
    )


def _device_error(error: str, code: int, message: str) -> EntraError:
    return EntraError(400, error, code, message)


def device_code(
    state: AuthorityState, ctx: RequestContext, tenant: Tenant | None, app: Application
) -> dict[str, Any]:
    """Poll a device code: pending, slow_down, declined, expired, or the tokens (once)."""
    grant = state.device_codes.get(ctx.form["device_code"])
    # Codes for unknown, declined, redeemed and slow_down are the mock's choice (AADSTS70000 family).
    if grant is None or grant.client_id.lower() != app.client_id.lower():
        raise _device_error(
            "bad_verification_code",
            errors.INVALID_GRANT,
            "The provided value for the input parameter 'device_code' is not valid.",
        )
    now = state.now()
    if now >= grant.expires_at:
        raise _device_error("expired_token", errors.DEVICE_EXPIRED, "Verification code expired.")
    if grant.status is DeviceCodeStatus.REDEEMED:
        raise invalid_grant(errors.INVALID_GRANT, "The provided device code has already been redeemed.")
    if grant.status is DeviceCodeStatus.DECLINED:
        raise _device_error(
            "authorization_declined", errors.INVALID_GRANT, "The end user denied the authorization request."
        )
    previous, grant.last_poll = grant.last_poll, now
    too_fast = previous is not None and now - previous < grant.interval - state.device_poll_tolerance
    if state.device_slow_down_enabled and too_fast:
        grant.interval += 5  # RFC 8628 §3.5: the interval grows by 5 s for this and later polls
        raise _device_error(
            "slow_down", errors.INVALID_GRANT, "The client is polling too frequently; slow down."
        )
    if grant.status is DeviceCodeStatus.PENDING:
        raise _device_error(
            "authorization_pending",
            errors.DEVICE_PENDING,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        )
    user = state.find_user(grant.tenant_id, grant.username or "")
    if user is None or grant.tenant_id is None:
        raise invalid_grant(errors.UNKNOWN_USER, "The user account no longer exists in the directory.")
    grant.status = DeviceCodeStatus.REDEEMED
    return issue(
        state, ctx, tenant_id=grant.tenant_id, app=app, scopes=grant.scopes, grant_type=DEVICE_CODE, user=user
    )
