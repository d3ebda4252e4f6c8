"""Device authorization grant (RFC 8628; Microsoft Learn "v2-oauth2-device-code").

1. :func:`build_device_code_request`: ``POST {device_authorization_endpoint}`` with ``client_id``
   and ``scope``; the answer (:func:`parse_device_code_response`) has ``device_code``,
   ``user_code``, ``verification_uri``, ``expires_in``, ``interval`` and, on Entra, ``message``.
2. Polling (:func:`build_device_code_token_request`):
   ``grant_type=urn:ietf:params:oauth:grant-type:device_code`` with ``device_code``. Outcomes
   (RFC 8628 section 3.5): ``authorization_pending`` (wait ``interval``), ``slow_down`` (add 5 s
   to the interval), ``authorization_declined``, ``expired_token``, ``bad_verification_code``, or
   a token.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx

from .client_auth import PUBLIC_CLIENT, ClientAuth
from .errors import MalformedResponseError, OAuthError
from .fields import Fields
from .flows import Clock, Flow, Sleep, exchange
from .responses import TokenResult, oauth_error_from_body, parse_token_response, raise_for_error_response
from .retry import RetryPolicy
from .token_endpoint import build_token_request, join_scopes, user_scopes
from .wire import build_form_request, read_json_object

__all__ = [
    "GRANT_TYPE",
    "DeviceCode",
    "DeviceCodeExpiredError",
    "Pending",
    "build_device_code_request",
    "build_device_code_token_request",
    "device_code_poll_flow",
    "parse_device_code_response",
    "parse_device_code_token_response",
]

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL = 5
DEFAULT_EXPIRES_IN = 900
SLOW_DOWN_INCREMENT = 5


class DeviceCodeExpiredError(OAuthError):
    """The device code expired (``expired_token``) or the caller's timeout passed before sign-in."""


@dataclass(frozen=True, slots=True)
class DeviceCode:
    """The device authorization response, with its expiry as epoch seconds."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    expires_on: int
    interval: int
    message: str
    verification_uri_complete: str | None = None


@dataclass(frozen=True, slots=True)
class Pending:
    """Keep polling; ``slow_down`` means the authority asked for a longer interval."""

    slow_down: bool = False


def build_device_code_request(
    device_authorization_endpoint: str, *, client_id: str, scopes: Iterable[str], claims: str | None = None
) -> httpx.Request:
    """Start a device code sign-in."""
    return build_form_request(
        device_authorization_endpoint,
        {"client_id": client_id, "scope": join_scopes(user_scopes(scopes)), "claims": claims},
    )


def parse_device_code_response(response: httpx.Response, *, requested_at: float) -> DeviceCode:
    """Parse the device authorization response.

    A missing ``message`` (RFC 8628 does not define one) is composed from the URI and code.
    """
    body = read_json_object(response)
    raise_for_error_response(response, body)
    url = str(response.request.url.copy_with(query=None))
    fields = Fields(body or {})
    device_code = fields.required_str("device_code")
    user_code = fields.required_str("user_code")
    # "verification_url" is the older (Google-style) name some providers still send.
    uri = fields.optional_str("verification_uri") or fields.optional_str("verification_url")
    complete = fields.optional_str("verification_uri_complete")
    # RFC 8628 sets no bounds; a day and an hour keep arithmetic and waits sane.
    expires_in = fields.seconds("expires_in", default=DEFAULT_EXPIRES_IN, minimum=1, maximum=86_400)
    interval = fields.seconds("interval", default=DEFAULT_INTERVAL, minimum=0, maximum=3_600)
    server_message = fields.optional_str("message")
    if fields.invalid:
        raise MalformedResponseError(
            f"The device authorization response from {url} is missing or has invalid field(s) "
            f"{fields.names()}.",
            status_code=response.status_code,
            url=url,
        )
    if not uri:
        raise MalformedResponseError(
            f"The device authorization response from {url} has no 'verification_uri'.",
            status_code=response.status_code,
            url=url,
        )
    message = server_message or (
        f"To sign in, use a web browser to open the page {uri} and enter the code {user_code} "
        "to authenticate."
    )
    return DeviceCode(
        device_code=device_code,
        user_code=user_code,
        verification_uri=uri,
        expires_on=int(requested_at) + (expires_in or DEFAULT_EXPIRES_IN),
        interval=DEFAULT_INTERVAL if interval is None else interval,
        message=message,
        verification_uri_complete=complete,
    )


def build_device_code_token_request(
    token_endpoint: str,
    *,
    client_id: str,
    device_code: str,
    now: float,
    client_auth: ClientAuth = PUBLIC_CLIENT,
    claims: str | None = None,
) -> httpx.Request:
    """One poll of the token endpoint."""
    return build_token_request(
        token_endpoint,
        grant_type=GRANT_TYPE,
        client_id=client_id,
        client_auth=client_auth,
        now=now,
        fields={"device_code": device_code, "client_info": "1"},
        claims=claims,
    )


def parse_device_code_token_response(
    response: httpx.Response, *, requested_at: float
) -> TokenResult | Pending:
    """A token, or :class:`Pending` while the user has not finished.

    Raises:
        DeviceCodeExpiredError: ``expired_token``.
        OAuthError: ``authorization_declined``, ``bad_verification_code`` and any other error.
    """
    body = read_json_object(response)
    if body is not None and isinstance(body.get("error"), str):
        error = body["error"]
        if error == "authorization_pending":
            return Pending()
        if error == "slow_down":
            return Pending(slow_down=True)
        exc = oauth_error_from_body(body, response)
        if error == "expired_token" and isinstance(exc, OAuthError):
            raise DeviceCodeExpiredError(
                exc.message,
                error=exc.error,
                error_description=exc.error_description,
                error_codes=exc.error_codes,
                correlation_id=exc.correlation_id,
                trace_id=exc.trace_id,
                timestamp=exc.timestamp,
                suberror=exc.suberror,
                claims=exc.claims,
                status_code=exc.status_code,
            )
        raise exc
    return parse_token_response(response, requested_at=requested_at)


def device_code_poll_flow(
    token_endpoint: str,
    device: DeviceCode,
    *,
    client_id: str,
    policy: RetryPolicy,
    clock: Clock,
    deadline: float | None = None,
    client_auth: ClientAuth = PUBLIC_CLIENT,
    claims: str | None = None,
) -> Flow[TokenResult]:
    """Poll until the user finishes, the code expires, or ``deadline`` (epoch seconds) passes."""
    interval = float(max(device.interval, 1))
    give_up = device.expires_on if deadline is None else min(device.expires_on, deadline)
    while True:
        result = yield from exchange(
            lambda: build_device_code_token_request(
                token_endpoint,
                client_id=client_id,
                device_code=device.device_code,
                now=clock(),
                client_auth=client_auth,
                claims=claims,
            ),
            policy,
            clock=clock,
        )
        outcome = parse_device_code_token_response(result.response, requested_at=result.sent_at)
        if isinstance(outcome, TokenResult):
            return outcome
        if outcome.slow_down:
            interval += SLOW_DOWN_INCREMENT
        now = clock()
        if now + interval >= give_up:
            raise DeviceCodeExpiredError(
                "Timed out waiting for the user to authenticate: the device code expired or the "
                "timeout passed. Start the sign-in again.",
                error="expired_token",
            )
        yield Sleep(interval)
