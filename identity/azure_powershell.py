"""``AzurePowerShellCredential``: tokens of the account signed in to Azure PowerShell
(``Connect-AzAccount``).

Runs ``pwsh -NoProfile -NonInteractive -EncodedCommand <script>`` (Windows without PowerShell 7:
``powershell``) directly, as an argv list: azure-identity runs the same command line through
``/bin/sh -c`` or ``cmd /c``, which we never do. The script (UTF-16LE, base64, as ``-EncodedCommand``
wants it, https://learn.microsoft.com/powershell/module/microsoft.powershell.core/about/about_pwsh)
imports Az.Accounts 2.2.0 or later (printing ``NO_AZ_ACCOUNT_MODULE`` when it cannot), calls
``Get-AzAccessToken -ResourceUrl '<resource>' [-TenantId '<tenant>']``, turns a ``SecureString``
token (Az.Accounts 2.17 with ``-AsSecureString``, and 5.0 onwards) into text, and prints one line
``azsdk%<token>%<expiry, epoch seconds>``. Resource and tenant passed the allow-lists of
:mod:`identity.developer_tools` and are quoted as PowerShell literals besides.

Sign-in state: ``~/.Azure/AzureRmContext.json`` (the saved Az contexts: ``Connect-AzAccount``,
``Disconnect-AzAccount``, ``Set-AzContext`` rewrite it) and Az.Accounts' token cache
``msal.cache`` (and its ``.cae`` / ``.nocae`` variants) in ``~/.IdentityService`` (Windows:
``%LOCALAPPDATA%\\.IdentityService``).
"""

from __future__ import annotations

import base64
import html
import os
import re
import sys

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
    "AzurePowerShell",
    "AzurePowerShellCredential",
    "NO_AZ_ACCOUNT_MODULE",
    "azure_powershell_core",
    "parse_powershell_failure",
    "parse_powershell_output",
    "powershell_config_files",
    "powershell_script",
]

TROUBLESHOOT = "https://aka.ms/azsdk/python/identity/powershellcredential/troubleshoot"
NO_AZ_ACCOUNT_MODULE = "NO_AZ_ACCOUNT_MODULE"
NOT_INSTALLED = (
    "PowerShell is not installed. Install PowerShell (https://aka.ms/install-powershell) and the "
    "Az.Accounts module, then run 'Connect-AzAccount'."
)
NO_MODULE = (
    "Az.Account module >= 2.2.0 is not installed. Install it with 'Install-Module -Name Az.Accounts', "
    "then run 'Connect-AzAccount'."
)
NOT_LOGGED_IN = 'Please run "Connect-AzAccount" to set up account'
EXECUTION_POLICY = "Execution policy prevented invoking Azure PowerShell"
CLAIMS_UNSUPPORTED = (
    "This credential doesn't support claims challenges. To authenticate with the required claims, please "
    "run the following command (requires Az.Accounts module version 5.2.0 or later): "
)

#: Expiry times beyond this (year 5138) are not a token's.
_LATEST_EPOCH = 10**11
_CLIXML_ERROR = re.compile(r'<S S="Error">(.*?)</S>', re.DOTALL)

_SCRIPT = """\
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
try {
    $module = Import-Module Az.Accounts -MinimumVersion 2.2.0 -PassThru -WarningAction SilentlyContinue
} catch {
    Write-Output 'NO_AZ_ACCOUNT_MODULE'
    exit
}
$version = ($module | Select-Object -First 1).Version
$parameters = @{ ResourceUrl = RESOURCE; WarningAction = 'Ignore' }
TENANT
if ($version -ge [version]'2.17.0' -and $version -lt [version]'5.0.0') {
    $parameters['AsSecureString'] = $true
}
$result = Get-AzAccessToken @parameters
$token = $result.Token
if ($token -is [System.Security.SecureString]) {
    if ($PSVersionTable.PSVersion.Major -ge 7) {
        $token = ConvertFrom-SecureString -SecureString $token -AsPlainText
    } else {
        $pointer = [System.Runtime.InteropServices.Marshal]::SecureStringToBSTR($token)
        try {
            $token = [System.Runtime.InteropServices.Marshal]::PtrToStringBSTR($pointer)
        } finally {
            [System.Runtime.InteropServices.Marshal]::ZeroFreeBSTR($pointer)
        }
    }
}
Write-Output ('azsdk%' + $token + '%' + $result.ExpiresOn.ToUnixTimeSeconds())
"""


def _literal(value: str) -> str:
    """``value`` as a PowerShell single-quoted string (no expansion; a quote is doubled)."""
    return "'" + value.replace("'", "''") + "'"


def powershell_script(resource: str, tenant: str) -> str:
    """The script that prints the token for ``resource`` (from ``tenant``, unless ``""``)."""
    tenant_line = f"$parameters['TenantId'] = {_literal(tenant)}" if tenant else ""
    return _SCRIPT.replace("RESOURCE", _literal(resource)).replace("TENANT", tenant_line)


def powershell_config_files() -> list[str]:
    """The files holding Azure PowerShell's sign-in state (see the module docstring)."""
    home = os.path.expanduser("~")
    identity_root = (os.environ.get("LOCALAPPDATA") or home) if sys.platform == "win32" else home
    cache = os.path.join(identity_root, ".IdentityService", "msal.cache")
    return [
        os.path.join(home, ".Azure", "AzureRmContext.json"),
        cache,
        cache + ".cae",
        cache + ".nocae",
    ]


def _epoch(text: str) -> int | None:
    if text.isascii() and text.isdigit() and len(text) <= 12 and 0 < int(text) < _LATEST_EPOCH:
        return int(text)
    return None


def parse_powershell_output(stdout: str) -> TokenResult:
    """The token in the script's ``azsdk%<token>%<expiry>`` line.

    Raises:
        SourceUnavailableError: Az.Accounts is not installed.
        ToolError: no such line (the message quotes the output, sanitised; azure-identity quotes it
            as it is).
    """
    if NO_AZ_ACCOUNT_MODULE in stdout:
        raise SourceUnavailableError(NO_MODULE)
    for line in stdout.splitlines():
        parts = line.strip().split("%")
        if len(parts) == 3 and parts[0] == "azsdk" and parts[1]:
            expires_on = _epoch(parts[2])
            if expires_on is not None:
                return tool_token(parts[1], expires_on)
    raise ToolError(f'Unexpected output from Get-AzAccessToken: "{excerpt(stdout)}"')


def _readable(stderr: str) -> str:
    """PowerShell's error text; errors serialised as CLIXML (``#< CLIXML``) are unwrapped."""
    if "#< CLIXML" not in stderr:
        return stderr
    errors = [html.unescape(text.replace("_x000D__x000A_", "\n")) for text in _CLIXML_ERROR.findall(stderr)]
    return "".join(errors) or stderr


def parse_powershell_failure(result: ProcessResult) -> ProtocolError:
    """What a failed PowerShell run means: PowerShell or Az.Accounts missing, not signed in, or an
    execution policy in the way (unavailable), or a failure carrying PowerShell's sanitised error."""
    stderr = _readable(result.stderr)
    if NO_AZ_ACCOUNT_MODULE in result.stdout:
        return SourceUnavailableError(NO_MODULE)
    if result.returncode in (127, 9009) or "' is not recognized" in stderr:
        return SourceUnavailableError(NOT_INSTALLED)
    if "Run Connect-AzAccount to login" in stderr:
        return SourceUnavailableError(NOT_LOGGED_IN)
    if "AuthorizationManager check failed" in stderr:
        return SourceUnavailableError(EXECUTION_POLICY)
    detail = excerpt(stderr)
    return ToolError(
        f"Failed to invoke PowerShell: {detail}"
        if detail
        else f"Failed to invoke PowerShell (exit code {result.returncode})."
    )


class AzurePowerShell(Tool):
    """Azure PowerShell as a token source."""

    display = "PowerShell"
    executables = ("pwsh", "powershell") if sys.platform == "win32" else ("pwsh",)
    troubleshoot = TROUBLESHOOT

    def missing(self) -> str:
        return NOT_INSTALLED

    def refuse(self, request: ToolRequest) -> None:
        if request.claims is not None:
            encoded = base64.b64encode(request.claims.encode("utf-8")).decode("ascii")
            login = f"Connect-AzAccount -ClaimsChallenge {encoded}"
            if request.tenant:
                login += f" -Tenant {request.tenant}"
            raise SourceUnavailableError(CLAIMS_UNSUPPORTED + login)

    def command(self, executable: str, request: ToolRequest) -> tuple[str, ...]:
        script = powershell_script(scope_to_resource(request.scopes[0]), request.tenant)
        encoded = base64.b64encode(script.encode("utf-16-le")).decode("ascii")
        return (executable, "-NoProfile", "-NonInteractive", "-EncodedCommand", encoded)

    def loggable(self, argv: tuple[str, ...]) -> str:
        return " ".join((*argv[:-1], "<script>"))

    def read(self, result: ProcessResult) -> TokenResult:
        if result.returncode != 0:
            raise parse_powershell_failure(result)
        return parse_powershell_output(result.stdout)


def azure_powershell_core(
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
        AzurePowerShell(),
        source="azure_powershell",
        tenant_id=tenant_id,
        additionally_allowed_tenants=additionally_allowed_tenants,
        process_timeout=process_timeout,
        within_dac=within_dac,
        watch_paths=powershell_config_files(),
        single_scope=True,
        description=f"tenant_id={tenant_id!r}, process_timeout={process_timeout!r}",
    )


class AzurePowerShellCredential(SyncCredential):
    """Authenticates with the account signed in to Azure PowerShell (``Connect-AzAccount``).

    Each token costs one run of PowerShell (a second or more); tokens are then cached in memory
    until they are due for renewal, and forgotten as soon as Azure PowerShell's sign-in state
    changes. Exactly one scope per request (sent as a resource).

    Keyword Args:
        tenant_id: the tenant to request tokens from (default: the context's tenant).
        additionally_allowed_tenants: tenants besides ``tenant_id`` that ``get_token(tenant_id=...)``
            may name; ``"*"`` allows any.
        process_timeout: seconds to wait for PowerShell (default 10).

    Raises:
        ValueError: an invalid tenant id or ``process_timeout``.

    ``get_token`` raises ``CredentialUnavailableError`` when PowerShell or Az.Accounts is missing,
    no account is signed in, PowerShell is too slow, or a claims challenge is given (the message
    has the ``Connect-AzAccount`` command that satisfies it), and ``ClientAuthenticationError`` with
    PowerShell's error output when the script fails (azure-identity reports that as unavailable,
    with a generic message).
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
        self._core = azure_powershell_core(
            type(self).__name__,
            tenant_id=tenant_id,
            additionally_allowed_tenants=additionally_allowed_tenants,
            process_timeout=process_timeout,
            within_dac=_within_dac,
        )
        self._driver = SyncDriver()
