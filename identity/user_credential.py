"""The sync shell of the user sign-in credentials: ``get_token`` (from :class:`SyncCredential`) plus
``authenticate``; the decisions live in :class:`identity.user.UserSession`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from protocol.errors import ProtocolError

from .auth_record import AuthenticationRecord
from .credential import SyncCredential
from .errors import authentication_failed
from .user import UserSession

__all__ = ["SyncUserCredential", "authenticate_scopes"]


def authenticate_scopes(positional: tuple[str, ...], scopes: Iterable[str] | None) -> tuple[str, ...]:
    """``authenticate("a", "b")`` and ``authenticate(scopes=["a", "b"])`` both work; not both.

    Raises:
        ValueError: scopes given both ways, or ``scopes`` is a bare string.
    """
    if scopes is None:
        return positional
    if positional:
        raise ValueError("authenticate() takes scopes either positionally or as scopes=[...], not both")
    if isinstance(scopes, str):
        raise ValueError("scopes must be a list of scopes, e.g. scopes=['https://vault.azure.net/.default']")
    return tuple(scopes)


class SyncUserCredential(SyncCredential):
    """``get_token``, ``get_token_info``, ``close`` and ``authenticate``."""

    _session: UserSession

    def authenticate(
        self,
        *positional: str,
        scopes: Iterable[str] | None = None,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AuthenticationRecord:
        """Sign the user in interactively and return their :class:`AuthenticationRecord`.

        Args:
            positional: scopes (``authenticate("https://vault.azure.net/.default")``).
            scopes: the same, as a list (azure-identity's form); without any, Azure Resource
                Manager's scope in the configured cloud.
            claims: a claims challenge the sign-in must satisfy.
            tenant_id: sign in to this tenant (see ``additionally_allowed_tenants``).
            enable_cae: the token ``authenticate`` caches is a CAE token.

        Raises:
            ClientAuthenticationError: the sign-in failed.
            CredentialUnavailableError: no scopes in a cloud without a default.
        """
        session = self._session
        plan = session.authenticate_plan(
            authenticate_scopes(positional, scopes), claims, tenant_id=tenant_id, enable_cae=enable_cae
        )
        try:
            result = self._driver.run(session.sign_in_flow(plan.authority, plan.scopes, plan.claims))
        except ProtocolError as exc:
            raise authentication_failed(session.credential, exc) from exc
        return session.authenticated(plan, result)
