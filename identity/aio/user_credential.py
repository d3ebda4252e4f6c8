"""The async shell of the user sign-in credentials (see :mod:`identity.user_credential`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from protocol.errors import ProtocolError

from ..auth_record import AuthenticationRecord
from ..errors import authentication_failed
from ..user import UserSession
from ..user_credential import authenticate_scopes
from .credential import AsyncCredential

__all__ = ["AsyncUserCredential"]


class AsyncUserCredential(AsyncCredential):
    """``get_token``, ``get_token_info``, ``close`` and ``authenticate``, async."""

    _session: UserSession

    async def authenticate(
        self,
        *positional: str,
        scopes: Iterable[str] | None = None,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AuthenticationRecord:
        """Sign the user in interactively and return their record (see the sync class)."""
        session = self._session
        plan = session.authenticate_plan(
            authenticate_scopes(positional, scopes), claims, tenant_id=tenant_id, enable_cae=enable_cae
        )
        try:
            result = await self._driver.run(session.sign_in_flow(plan.authority, plan.scopes, plan.claims))
        except ProtocolError as exc:
            raise authentication_failed(session.credential, exc) from exc
        return session.authenticated(plan, result)
