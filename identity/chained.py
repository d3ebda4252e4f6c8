"""``ChainedTokenCredential``: try credentials in order until one provides a token.

The walk is written once, as a generator (:func:`chain_flow`) that yields the member to ask and
receives its token or has its exception thrown in; the sync class and its ``identity.aio`` twin
only call members (the same pattern as :mod:`protocol.flows`):

* ``CredentialUnavailableError`` (the member could not even try here) moves on to the next member;
* any other error stops the chain and propagates: a credential that tried and failed must not be
  masked by a later one;
* when every member is unavailable, one ``ClientAuthenticationError`` lists each member's reason.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Generator
from types import TracebackType
from typing import Any, TypeVar

from .errors import ClientAuthenticationError, CredentialUnavailableError
from .tokens import AccessToken, AccessTokenInfo, TokenRequestOptions

__all__ = [
    "WITHIN_CHAIN",
    "ChainedTokenCredential",
    "as_access_token",
    "as_info",
    "chain_flow",
    "check_members",
    "member_get_token",
    "member_get_token_info",
]

_LOGGER = logging.getLogger("identity")
_Self = TypeVar("_Self", bound="ChainedTokenCredential")

TROUBLESHOOT = "https://aka.ms/azsdk/python/identity/defaultazurecredential/troubleshoot"

#: True while a chain asks its members (sync and async alike: a task's context is its own). A
#: managed identity credential then probes IMDS briefly before relying on it.
WITHIN_CHAIN: contextvars.ContextVar[bool] = contextvars.ContextVar("within_credential_chain", default=False)


def chain_flow(chain: str, credentials: tuple[Any, ...]) -> Generator[Any, Any, Any]:
    """Yield each member to ask; return the first token; raise as the module docstring says."""
    attempts: list[tuple[str, str]] = []
    for credential in credentials:
        name = getattr(credential, "credential_name", None) or type(credential).__name__
        try:
            token = yield credential
        except CredentialUnavailableError as exc:
            attempts.append((name, exc.message))
            continue
        except Exception as exc:
            _LOGGER.debug(
                '%s.get_token failed: %s raised unexpected error "%s"', chain, name, exc, exc_info=True
            )
            raise
        _LOGGER.info("%s acquired a token from %s", chain, name)
        return token
    lines = "".join(f"\n\t{name}: {message}" if message else f"\n\t{name}" for name, message in attempts)
    message = (
        f"{chain} failed to retrieve a token from the included credentials.\nAttempted credentials:{lines}"
        f"\nTo mitigate this issue, please refer to the troubleshooting guidelines here at {TROUBLESHOOT}."
    )
    _LOGGER.warning("%s", message)
    raise ClientAuthenticationError(message=message)


def _options(claims: str | None, tenant_id: str | None, enable_cae: bool) -> TokenRequestOptions:
    options: TokenRequestOptions = {"enable_cae": enable_cae}
    if claims:
        options["claims"] = claims
    if tenant_id:
        options["tenant_id"] = tenant_id
    return options


def member_get_token(member: Any, scopes: tuple[str, ...], kwargs: dict[str, Any]) -> Any:
    """A member's ``get_token``, or its ``get_token_info`` when that is all it has."""
    if hasattr(member, "get_token"):
        return member.get_token(*scopes, **kwargs)
    return member.get_token_info(
        *scopes,
        options=_options(kwargs.get("claims"), kwargs.get("tenant_id"), kwargs.get("enable_cae", False)),
    )


def member_get_token_info(member: Any, scopes: tuple[str, ...], options: TokenRequestOptions | None) -> Any:
    """A member's ``get_token_info``, or its ``get_token`` when that is all it has."""
    if hasattr(member, "get_token_info"):
        return member.get_token_info(*scopes, options=options)
    return member.get_token(*scopes, **dict(options or {}))


def as_access_token(value: Any) -> AccessToken:
    return value if isinstance(value, AccessToken) else AccessToken(value.token, value.expires_on)


def as_info(value: Any) -> AccessTokenInfo:
    if isinstance(value, AccessTokenInfo):
        return value
    return AccessTokenInfo(value.token, value.expires_on)


def check_members(credentials: tuple[Any, ...]) -> tuple[Any, ...]:
    if not credentials:
        raise ValueError("at least one credential is required")
    return credentials


class ChainedTokenCredential:
    """A sequence of credentials that is itself a credential: the first member that can provide a
    token does.

    Args:
        credentials: the credentials to try, in order.
    """

    def __init__(self, *credentials: Any) -> None:
        self.credentials = check_members(credentials)

    def _walk(self, call: Any) -> Any:
        flow = chain_flow(type(self).__name__, self.credentials)
        member = next(flow)
        marker = WITHIN_CHAIN.set(True)
        try:
            while True:
                try:
                    outcome = call(member)
                except Exception as exc:
                    member = flow.throw(exc)
                    continue
                try:
                    member = flow.send(outcome)
                except StopIteration as stop:
                    return stop.value
        finally:
            WITHIN_CHAIN.reset(marker)

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """The first token a member provides (see the module docstring for failures)."""
        arguments = {"claims": claims, "tenant_id": tenant_id, "enable_cae": enable_cae, **kwargs}
        return as_access_token(self._walk(lambda member: member_get_token(member, scopes, arguments)))

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        """The first token a member provides, with its type and refresh time."""
        return as_info(self._walk(lambda member: member_get_token_info(member, scopes, options)))

    def close(self) -> None:
        """Close every member."""
        for credential in self.credentials:
            close = getattr(credential, "close", None)
            if close is not None:
                close()

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        names = (getattr(c, "credential_name", None) or type(c).__name__ for c in self.credentials)
        return f"{type(self).__name__}({', '.join(names)})"
