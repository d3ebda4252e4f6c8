"""``VisualStudioCodeCredential``: the account signed in to VS Code's Azure Resources extension.

azure-identity 1.27 reads the authentication record the extension writes
(``~/.azure/ms-azuretools.vscode-azureresourcegroups/authRecord.json``, then the ``~/.Azure/...``
variant) and asks the OS authentication broker (a native package, ``azure-identity-broker``) for
that account's tokens. entra-identity has no native broker, so the record is the only part it can
use: the account's tokens are looked up in the shared token cache (a family refresh token left
there by another Microsoft tool for the same account, as :class:`identity.SharedTokenCacheCredential`
does). Without a record, with an invalid one, or without such a token the credential is
unavailable and says why and what to use instead.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import httpx

from protocol.drivers import SyncDriver
from protocol.errors import SourceUnavailableError
from protocol.retry import RetryPolicy

from .auth_record import AuthenticationRecord
from .credential import SyncCredential
from .settings import constructor_options
from .shared_cache import shared_cache_session
from .user import UserSession

__all__ = [
    "VS_CODE_CLIENT_ID",
    "VisualStudioCodeCredential",
    "load_vscode_record",
    "record_paths",
    "unavailable_message",
    "vscode_session",
]

VS_CODE_CLIENT_ID = "aebc6443-996d-45c2-90f0-388ff96faa56"
_MAX_RECORD_BYTES = 10 * 1024
_TENANT = re.compile(r"^[0-9A-Za-z.-]+$")
_ADVICE = (
    "Sign in with the Azure Resources extension in VS Code, or use AzureCliCredential (az login) or "
    "InteractiveBrowserCredential."
)


def record_paths() -> list[Path]:
    """Where the extension writes its record (``~/.azure``, then ``~/.Azure``)."""
    home = Path(os.path.expanduser("~"))
    return [
        home / folder / "ms-azuretools.vscode-azureresourcegroups" / "authRecord.json"
        for folder in (".azure", ".Azure")
    ]


def load_vscode_record() -> AuthenticationRecord:
    """The extension's record.

    Raises:
        SourceUnavailableError: no record, or one that fails validation (the message says which field).
    """
    for path in record_paths():
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise SourceUnavailableError(
                f"Failed to load authentication record from Visual Studio Code: {path}: {exc.strerror}"
            ) from exc
        problem = _validate(data)
        if problem is not None:
            raise SourceUnavailableError(
                "Failed to load authentication record from Visual Studio Code: Authentication record "
                f"validation failed: {problem}. {_ADVICE}"
            )
        return AuthenticationRecord.deserialize(data.decode("utf-8"))
    raise SourceUnavailableError(
        "VisualStudioCodeCredential: no Visual Studio Code sign-in was found "
        f"({record_paths()[0]} does not exist). {_ADVICE}"
    )


def _validate(data: bytes) -> str | None:
    if len(data) > _MAX_RECORD_BYTES:
        return f"the file is larger than {_MAX_RECORD_BYTES} bytes"
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return "the file is not JSON"
    if not isinstance(raw, dict):
        return "the file is not a JSON object"
    for field in ("tenantId", "clientId", "username", "homeAccountId", "authority"):
        value = raw.get(field)
        if not isinstance(value, str) or not value:
            return f"'{field}' is missing or not a non-empty string"
    if not _TENANT.match(raw["tenantId"]):
        return "'tenantId' has characters a tenant id cannot have"
    if raw["clientId"] != VS_CODE_CLIENT_ID:
        return f"'clientId' is not VS Code's ({VS_CODE_CLIENT_ID})"
    return None


def vscode_session(
    credential: str,
    *,
    tenant_id: str | None,
    additionally_allowed_tenants: list[str] | None,
    retry_policy: RetryPolicy | None,
    within_dac: bool,
) -> UserSession:
    """The shared-cache session of the extension's record (read now; without a usable record the
    first request is unavailable, saying why)."""
    try:
        record: AuthenticationRecord | None = load_vscode_record()
        missing = None
    except SourceUnavailableError as exc:
        record, missing = None, exc.message
    return shared_cache_session(
        credential,
        None,
        tenant_id=tenant_id,
        authority=None,
        authentication_record=record,
        persistence=None,
        retry_policy=retry_policy,
        additionally_allowed_tenants=additionally_allowed_tenants,
        within_dac=within_dac,
        missing_record=missing,
        unavailable_message=unavailable_message,
    )


class VisualStudioCodeCredential(SyncCredential):
    """Authenticates as the user signed in to VS Code's Azure Resources extension (see the module
    docstring for what entra-identity can and cannot do here). The record is read at construction;
    without one every request is unavailable, saying why.

    Keyword Args:
        tenant_id: the tenant (default: the record's).
        additionally_allowed_tenants: tenants ``get_token(tenant_id=...)`` may name.
        transport, http_client, retry_policy: as for every credential.
    """

    def __init__(
        self,
        *,
        tenant_id: str | None = None,
        additionally_allowed_tenants: list[str] | None = None,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        retry_policy: RetryPolicy | None = None,
        _within_dac: bool = False,
        **kwargs: Any,
    ) -> None:
        http = constructor_options(self, locals())
        self._session = vscode_session(
            type(self).__name__,
            tenant_id=tenant_id,
            additionally_allowed_tenants=additionally_allowed_tenants,
            retry_policy=http.retry_policy,
            within_dac=_within_dac,
        )
        self._core = self._session.core
        self._driver = SyncDriver(client=http_client, transport=transport, client_options=http.client_options)


def unavailable_message(default: str) -> str:
    """Why the record's account has no token here (replaces the shared cache's message)."""
    return (
        "VisualStudioCodeCredential: VS Code keeps this account's tokens in the OS authentication broker, "
        "which entra-identity cannot use (azure-identity needs the native azure-identity-broker package), "
        f"and the shared token cache has none for it ({default}). {_ADVICE}"
    )
