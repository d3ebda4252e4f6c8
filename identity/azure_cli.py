"""``AzureCliCredential``: tokens of the account signed in to the Azure CLI (``az login``).

Runs ``az account get-access-token --output json --resource <resource> [--tenant <tenant>]
[--subscription <subscription>]``
(https://learn.microsoft.com/cli/azure/account#az-account-get-access-token) with
``AZURE_CORE_NO_COLOR=true``, under the rules of :mod:`identity.developer_tools`, and reads
``accessToken`` and ``expires_on`` (epoch seconds, Azure CLI 2.54.0 and later) or, from older
versions, ``expiresOn`` (local time, ``2024-05-01 10:00:00.000000``) from its JSON output.

Sign-in state: the files ``az login``, ``az logout``, ``az account set`` and ``az cloud set`` write
in ``$AZURE_CONFIG_DIR`` (default ``~/.azure``): ``azureProfile.json`` (accounts and the default
subscription), ``msal_token_cache.json`` / ``.bin`` (the CLI's token cache, plain or encrypted),
``clouds.config`` and ``config`` (the active cloud).
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from protocol.drivers import SyncDriver
from protocol.errors import ProtocolError, SourceUnavailableError
from protocol.process import ProcessResult
from protocol.responses import TokenResult

from .core import TokenCore
from .credential import SyncCredential
from .developer_tools import Tool, ToolError, ToolRequest, excerpt, tool_core, tool_token
from .resource_core import scope_to_resource
from .settings import picklable_arguments

__all__ = [
    "AzureCli",
    "AzureCliCredential",
    "azure_cli_core",
    "check_subscription",
    "cli_config_files",
    "parse_cli_failure",
    "parse_cli_output",
]

TROUBLESHOOT = "https://aka.ms/azsdk/python/identity/azclicredential/troubleshoot"
NOT_INSTALLED = (
    "Azure CLI not found on path. Install it (https://aka.ms/azure-cli), then run 'az login' to set up "
    "an account."
)
NOT_LOGGED_IN = "Please run 'az login' to set up an account"
CLAIMS_UNSUPPORTED = (
    "This credential doesn't support claims challenges. To authenticate with the required claims, please "
    "run the following command (requires Azure CLI version 2.76.0 or later): "
)
INVALID_SUBSCRIPTION = (
    "Invalid subscription provided. Only alphanumeric characters, '_', '-', '.' and spaces are allowed, "
    "and it must not start with '-'. If your subscription name contains other characters, use the "
    "subscription ID instead: "
    "https://learn.microsoft.com/azure/azure-portal/get-subscription-tenant-id"
)

_SUBSCRIPTION_RE = re.compile(r"[A-Za-z0-9_. \-]+")
_LOCAL_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")
#: Expiry times beyond this (year 5138) are not a token's.
_LATEST_EPOCH = 10**11


def check_subscription(subscription: str) -> None:
    """``ValueError`` unless ``subscription`` (an ID or name) is safe to hand to the CLI."""
    if (
        not isinstance(subscription, str)
        or not _SUBSCRIPTION_RE.fullmatch(subscription)
        or subscription.startswith("-")
    ):
        raise ValueError(INVALID_SUBSCRIPTION)


def cli_config_files() -> list[str]:
    """The files holding the Azure CLI's sign-in state (see the module docstring)."""
    directory = os.environ.get("AZURE_CONFIG_DIR") or os.path.join("~", ".azure")
    directory = os.path.expanduser(directory)
    names = ("azureProfile.json", "msal_token_cache.json", "msal_token_cache.bin", "clouds.config", "config")
    return [os.path.join(directory, name) for name in names]


def _epoch(value: Any) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < _LATEST_EPOCH:
        return value
    return None


def _local_time(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    for layout in _LOCAL_TIME_FORMATS:
        try:
            # The CLI prints a naive local time (https://github.com/Azure/azure-sdk-for-python/issues/32952).
            return _epoch(int(datetime.strptime(value, layout).timestamp()))
        except (ValueError, OverflowError, OSError):
            continue
    return None


def parse_cli_output(stdout: str) -> TokenResult:
    """The token in ``az account get-access-token --output json`` output.

    Raises:
        ToolError: the output is not such a document (the message quotes it, sanitised).
    """
    try:
        document = json.loads(stdout)
    except (ValueError, RecursionError):
        document = None
    if isinstance(document, dict):
        token = document.get("accessToken")
        expires_on = _epoch(document.get("expires_on")) or _local_time(document.get("expiresOn"))
        if isinstance(token, str) and token and expires_on is not None:
            return tool_token(token, expires_on)
    raise ToolError(
        f"Unexpected output from Azure CLI: '{excerpt(stdout)}'. To mitigate this issue, please refer to "
        f"the troubleshooting guidelines here at {TROUBLESHOOT}."
    )


def parse_cli_failure(result: ProcessResult) -> ProtocolError:
    """What a failed ``az`` run means: not installed or not signed in (unavailable), or a failure
    carrying the CLI's sanitised error output."""
    stderr = result.stderr
    if result.returncode == 127 or stderr.startswith("'az' is not recognized"):
        return SourceUnavailableError(NOT_INSTALLED)
    if ("az login" in stderr or "az account set" in stderr) and "AADSTS" not in stderr:
        return SourceUnavailableError(NOT_LOGGED_IN)
    return ToolError(excerpt(stderr) or "Failed to invoke Azure CLI")


class AzureCli(Tool):
    """The Azure CLI as a token source."""

    display = "Azure CLI"
    executables = ("az.cmd", "az") if sys.platform == "win32" else ("az",)
    environment: ClassVar[Mapping[str, str]] = {"AZURE_CORE_NO_COLOR": "true"}
    troubleshoot = TROUBLESHOOT

    def __init__(self, subscription: str | None) -> None:
        self.subscription = subscription

    def missing(self) -> str:
        return NOT_INSTALLED

    def refuse(self, request: ToolRequest) -> None:
        if request.claims is not None:
            encoded = base64.b64encode(request.claims.encode("utf-8")).decode("ascii")
            login = f"az login --claims-challenge {encoded}"
            if request.tenant:
                login += f" --tenant {request.tenant}"
            raise SourceUnavailableError(f"{CLAIMS_UNSUPPORTED}{login} --scope {request.scopes[0]}")

    def command(self, executable: str, request: ToolRequest) -> tuple[str, ...]:
        argv = [executable, "account", "get-access-token", "--output", "json"]
        argv += ["--resource", scope_to_resource(request.scopes[0])]
        if request.tenant:
            argv += ["--tenant", request.tenant]
        if self.subscription:
            argv += ["--subscription", self.subscription]
        return tuple(argv)

    def read(self, result: ProcessResult) -> TokenResult:
        if result.returncode != 0:
            raise parse_cli_failure(result)
        return parse_cli_output(result.stdout)


def azure_cli_core(
    credential: str,
    *,
    tenant_id: str,
    subscription: str | None,
    additionally_allowed_tenants: list[str] | None,
    process_timeout: int,
    within_dac: bool,
) -> TokenCore:
    """Validate the arguments and build the token core (shared by the sync and async classes).

    Raises:
        ValueError: an invalid tenant id, subscription or ``process_timeout``.
    """
    if subscription:
        check_subscription(subscription)
    return tool_core(
        credential,
        AzureCli(subscription or None),
        source="azure_cli",
        tenant_id=tenant_id,
        additionally_allowed_tenants=additionally_allowed_tenants,
        process_timeout=process_timeout,
        within_dac=within_dac,
        watch_paths=cli_config_files(),
        single_scope=True,
        description=(
            f"tenant_id={tenant_id!r}, subscription={subscription!r}, process_timeout={process_timeout!r}"
        ),
    )


class AzureCliCredential(SyncCredential):
    """Authenticates with the account signed in to the Azure CLI (``az login``).

    Each token costs one run of ``az`` (about a second); tokens are then cached in memory until
    they are due for renewal, and forgotten as soon as the CLI's sign-in state changes. Exactly one
    scope per request (it is sent as a resource: ``https://vault.azure.net/.default`` ->
    ``https://vault.azure.net``).

    Keyword Args:
        tenant_id: the tenant to request tokens from (default: the CLI's default tenant).
        subscription: the subscription (ID, or a name without special characters) whose tenant
            tokens come from; default: the CLI's current subscription.
        additionally_allowed_tenants: tenants besides ``tenant_id`` that ``get_token(tenant_id=...)``
            may name; ``"*"`` allows any.
        process_timeout: seconds to wait for ``az`` (default 10).

    Raises:
        ValueError: an invalid tenant id, subscription or ``process_timeout``.

    ``get_token`` raises ``CredentialUnavailableError`` when the CLI is not installed, not signed in,
    too slow, or when a claims challenge is given (the message has the ``az login`` command that
    satisfies it), and ``ClientAuthenticationError`` with the CLI's error output when it fails.
    """

    def __init__(
        self,
        *,
        tenant_id: str = "",
        subscription: str | None = None,
        additionally_allowed_tenants: list[str] | None = None,
        process_timeout: int = 10,
        _within_dac: bool = False,
    ) -> None:
        self._arguments = picklable_arguments(locals())
        self._core = azure_cli_core(
            type(self).__name__,
            tenant_id=tenant_id,
            subscription=subscription,
            additionally_allowed_tenants=additionally_allowed_tenants,
            process_timeout=process_timeout,
            within_dac=_within_dac,
        )
        self._driver = SyncDriver()
