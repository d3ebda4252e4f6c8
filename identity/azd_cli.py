"""``AzureDeveloperCliCredential``: tokens of the account signed in to the Azure Developer CLI
(``azd auth login``).

Runs ``azd auth token --output json --no-prompt --scope <scope>... [--tenant-id <tenant>]
[--claims <base64 claims>]`` (https://learn.microsoft.com/azure/developer/azure-developer-cli/reference)
with ``NO_COLOR=true``, under the rules of :mod:`identity.developer_tools`, and reads ``token`` and
``expiresOn`` from its JSON output. Several scopes per request are allowed; a claims challenge is
passed on (azd 1.18.1 and later).

``expiresOn`` is an RFC 3339 UTC instant (``2024-05-01T10:00:00Z``) and is read as one.
azure-identity 1.27.0 parses it as a naive *local* time, so its tokens look valid for hours too
long or too short on machines not running in UTC; we do not.

Sign-in state: ``$AZD_CONFIG_DIR`` (default ``~/.azd``) ``auth.json``, where ``azd auth login`` and
``azd auth logout`` record the current account, and ``config.json``, where azd versions before the
move to ``auth.json`` kept it (and where ``auth.useAzCliAuth`` switches azd to the Azure CLI's
account). azd's MSAL token cache (``auth/msal/``, one file per key) is not watched: its file names
are not fixed, and it changes on every token refresh, not only on sign-in.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar

from protocol.drivers import SyncDriver
from protocol.errors import ProtocolError, SourceUnavailableError
from protocol.process import ProcessResult
from protocol.responses import TokenResult

from .core import TokenCore
from .credential import SyncCredential
from .developer_tools import Tool, ToolError, ToolRequest, excerpt, tool_core, tool_token
from .settings import picklable_arguments

__all__ = [
    "AzureDeveloperCli",
    "AzureDeveloperCliCredential",
    "azd_config_files",
    "azd_core",
    "parse_azd_failure",
    "parse_azd_output",
]

TROUBLESHOOT = "https://aka.ms/azsdk/python/identity/azdevclicredential/troubleshoot"
NOT_INSTALLED = (
    "Azure Developer CLI could not be found. Please visit https://aka.ms/azure-dev for installation "
    "instructions and then, once installed, authenticate to your Azure account using 'azd auth login'."
)
NOT_LOGGED_IN = (
    "Please run 'azd auth login' from a command prompt to authenticate before using this credential."
)
CLAIMS_UNSUPPORTED = (
    "Claims challenges are not supported by the Azure Developer CLI version you are using. Please update "
    "to version 1.18.1 or later."
)

_NOT_LOGGED_IN_RE = re.compile(r"not logged in, run `azd (?:auth )?login` to login")
#: Expiry times beyond this (year 5138) are not a token's.
_LATEST_EPOCH = 10**11


def azd_config_files() -> list[str]:
    """The files holding the Azure Developer CLI's sign-in state (see the module docstring)."""
    directory = os.path.expanduser(os.environ.get("AZD_CONFIG_DIR") or os.path.join("~", ".azd"))
    return [os.path.join(directory, "auth.json"), os.path.join(directory, "config.json")]


def _utc_instant(value: Any) -> int | None:
    if not isinstance(value, str) or not value.isascii():
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:  # azd always writes UTC; an offset-less time is UTC too
            moment = moment.replace(tzinfo=timezone.utc)
        epoch = int(moment.timestamp())
    except (ValueError, OverflowError, OSError):
        return None
    return epoch if 0 < epoch < _LATEST_EPOCH else None


def _json_lines(*texts: str) -> list[dict[str, Any]]:
    documents = []
    for text in texts:
        for raw in text.splitlines():
            line = raw.strip()
            if not line.startswith("{"):
                continue
            try:
                document = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(document, dict):
                documents.append(document)
    return documents


def azd_message(stdout: str, stderr: str) -> str:
    """The error azd reported in its JSON output, sanitised (``""`` when there is none): a top-level
    ``"error"`` string (azd 1.23.7 and later), else the first ``consoleMessage``'s ``data.message``."""
    documents = _json_lines(stdout, stderr)
    for document in documents:
        error = document.get("error")
        if isinstance(error, str) and error.strip():
            return excerpt(error)
    for document in documents:
        data = document.get("data")
        if document.get("type") == "consoleMessage" and isinstance(data, dict):
            message = data.get("message")
            if isinstance(message, str) and message.strip():
                return excerpt(message)
    return ""


def parse_azd_output(stdout: str) -> TokenResult:
    """The token in ``azd auth token --output json`` output.

    Raises:
        ToolError: the output is not such a document (the message is azd's error, or quotes the
            output, sanitised).
    """
    try:
        document = json.loads(stdout)
    except (ValueError, RecursionError):
        document = None
    if isinstance(document, dict):
        token = document.get("token")
        expires_on = _utc_instant(document.get("expiresOn"))
        if isinstance(token, str) and token and expires_on is not None:
            return tool_token(token, expires_on)
    raise ToolError(
        azd_message(stdout, "")
        or f"Unexpected output from Azure Developer CLI: '{excerpt(stdout)}'. To mitigate this issue, "
        f"please refer to the troubleshooting guidelines here at {TROUBLESHOOT}."
    )


def parse_azd_failure(result: ProcessResult) -> ProtocolError:
    """What a failed ``azd`` run means: not installed, not signed in or too old for claims
    (unavailable), or a failure carrying azd's sanitised error."""
    output = result.stdout + "\n" + result.stderr
    if result.returncode == 127 or result.stderr.startswith("'azd' is not recognized"):
        return SourceUnavailableError(NOT_INSTALLED)
    if _NOT_LOGGED_IN_RE.search(output) and "AADSTS" not in output:
        return SourceUnavailableError(NOT_LOGGED_IN)
    if "unknown flag: --claims" in output:
        return SourceUnavailableError(CLAIMS_UNSUPPORTED)
    return ToolError(
        azd_message(result.stdout, result.stderr)
        or excerpt(result.stderr)
        or "Failed to invoke Azure Developer CLI"
    )


class AzureDeveloperCli(Tool):
    """The Azure Developer CLI as a token source."""

    display = "Azure Developer CLI"
    executables = ("azd",)
    environment: ClassVar[Mapping[str, str]] = {"NO_COLOR": "true"}
    troubleshoot = TROUBLESHOOT

    def missing(self) -> str:
        return NOT_INSTALLED

    def command(self, executable: str, request: ToolRequest) -> tuple[str, ...]:
        argv = [executable, "auth", "token", "--output", "json", "--no-prompt"]
        for scope in request.scopes:
            argv += ["--scope", scope]
        if request.tenant:
            argv += ["--tenant-id", request.tenant]
        if request.claims is not None:
            argv += ["--claims", base64.b64encode(request.claims.encode("utf-8")).decode("ascii")]
        return tuple(argv)

    def loggable(self, argv: tuple[str, ...]) -> str:
        shown = list(argv)
        for index in range(len(shown) - 1):
            if shown[index] == "--claims":
                shown[index + 1] = "<claims>"
        return " ".join(shown)

    def read(self, result: ProcessResult) -> TokenResult:
        if result.returncode != 0:
            raise parse_azd_failure(result)
        return parse_azd_output(result.stdout)


def azd_core(
    credential: str,
    *,
    tenant_id: str,
    additionally_allowed_tenants: list[str] | None,
    process_timeout: int,
    within_dac: bool,
) -> TokenCore:
    """Validate the arguments and build the token core (shared by the sync and async classes).

    Raises:
        ValueError: an invalid tenant id or ``process_timeout``.
    """
    return tool_core(
        credential,
        AzureDeveloperCli(),
        source="azure_developer_cli",
        tenant_id=tenant_id,
        additionally_allowed_tenants=additionally_allowed_tenants,
        process_timeout=process_timeout,
        within_dac=within_dac,
        watch_paths=azd_config_files(),
        single_scope=False,
        description=f"tenant_id={tenant_id!r}, process_timeout={process_timeout!r}",
    )


class AzureDeveloperCliCredential(SyncCredential):
    """Authenticates with the account signed in to the Azure Developer CLI (``azd auth login``).

    Each token costs one run of ``azd``; tokens are then cached in memory until they are due for
    renewal, and forgotten as soon as azd's sign-in state changes. Requests may name several scopes.

    Keyword Args:
        tenant_id: the tenant to request tokens from (default: azd's default tenant).
        additionally_allowed_tenants: tenants besides ``tenant_id`` that ``get_token(tenant_id=...)``
            may name; ``"*"`` allows any.
        process_timeout: seconds to wait for ``azd`` (default 10).

    Raises:
        ValueError: an invalid tenant id or ``process_timeout``.

    ``get_token`` raises ``CredentialUnavailableError`` when azd is not installed, not signed in or
    too slow, and ``ClientAuthenticationError`` with azd's error when it fails. A claims challenge
    is passed to azd (``--claims``).
    """

    def __init__(
        self,
        *,
        tenant_id: str = "",
        additionally_allowed_tenants: list[str] | None = None,
        process_timeout: int = 10,
        _within_dac: bool = False,
    ) -> None:
        self._arguments = picklable_arguments(locals())
        self._core = azd_core(
            type(self).__name__,
            tenant_id=tenant_id,
            additionally_allowed_tenants=additionally_allowed_tenants,
            process_timeout=process_timeout,
            within_dac=_within_dac,
        )
        self._driver = SyncDriver()
