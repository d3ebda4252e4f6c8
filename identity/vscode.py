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

from protocol.errors import SourceUnavailableError

from .auth_record import AuthenticationRecord
from .credential import SyncCredential
from .errors import CredentialUnavailableError
from .shared_cache import SharedTokenCacheCredential
from .tokens import AccessToken, AccessTokenInfo, TokenRequestOptions

__all__ = [
    "VS_CODE_CLIENT_ID",
    "VisualStudioCodeCredential",
    "load_vscode_record",
    "record_paths",
    "unavailable_message",
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


class VisualStudioCodeCredential:
    """Authenticates as the user signed in to VS Code's Azure Resources extension (see the module
    docstring for what entra-identity can and cannot do here).

    Keyword Args:
        tenant_id: the tenant (default: the record's).
        additionally_allowed_tenants: tenants ``get_token(tenant_id=...)`` may name.
        Other keywords (``transport``...) go to the shared token cache lookup.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._inner: SyncCredential | None = None

    def _credential(self) -> SyncCredential:
        if self._inner is None:
            try:
                record = load_vscode_record()
            except SourceUnavailableError as exc:
                raise CredentialUnavailableError(message=exc.message) from exc
            # tenant_id (default: the record's) and additionally_allowed_tenants go to the lookup.
            self._inner = SharedTokenCacheCredential(authentication_record=record, **self._kwargs)
        return self._inner

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """Request an access token for ``scopes`` (see the class docstring).

        Raises:
            CredentialUnavailableError: no usable VS Code sign-in here.
        """
        inner = self._credential()
        try:
            return inner.get_token(
                *scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs
            )
        except CredentialUnavailableError as exc:
            raise CredentialUnavailableError(message=unavailable_message(exc)) from exc

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        """Like :meth:`get_token`, with azure-core's ``TokenRequestOptions``."""
        inner = self._credential()
        try:
            return inner.get_token_info(*scopes, options=options)
        except CredentialUnavailableError as exc:
            raise CredentialUnavailableError(message=unavailable_message(exc)) from exc

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()

    def __enter__(self) -> VisualStudioCodeCredential:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


def unavailable_message(exc: CredentialUnavailableError) -> str:
    return (
        "VisualStudioCodeCredential: VS Code keeps this account's tokens in the OS authentication broker, "
        "which entra-identity cannot use (azure-identity needs the native azure-identity-broker package), "
        f"and the shared token cache has none for it ({exc.message}). {_ADVICE}"
    )
