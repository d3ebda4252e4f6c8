"""What the developer-tool credentials share: run a signed-in tool, read the token it prints.

``AzureCliCredential`` (``az``), ``AzureDeveloperCliCredential`` (``azd``) and
``AzurePowerShellCredential`` (``pwsh``) each describe their tool as a :class:`Tool` strategy (how
to find it, the command line, how to read its output, what its failures mean); one flow
(:func:`tool_flow`) runs any of them, and one core (:class:`ToolCore`) caches their tokens.

Safety (azure-identity's rules, https://aka.ms/azsdk/python/identity/azclicredential/troubleshoot,
plus two of our own):

* the executable is found with :func:`shutil.which` when a token is needed (missing: unavailable,
  nothing is spawned) and run as an argv list, never through a shell; PowerShell too (azure-identity
  wraps it in ``/bin/sh -c`` or ``cmd /c``);
* the working directory is ``/bin`` (Windows: ``%SYSTEMROOT%``), so a planted ``az`` in the
  application's directory is never picked up; stdin is closed;
* every value that reaches a command line or the PowerShell script passes a character allow-list
  first (``ValueError``, nothing spawned); we also refuse values starting with ``-``, which a tool
  would read as an option;
* output is sanitised (token values masked, long output cut) before it reaches an exception or a log.

Errors: a tool that is missing, not signed in, too slow (``process_timeout``) or unable to honour a
claims challenge raises :class:`~protocol.errors.SourceUnavailableError` (the public
``CredentialUnavailableError``: a chain moves on). A tool that ran and failed raises
:class:`ToolError` (``ClientAuthenticationError``); a credential built with ``_within_dac=True``
(DefaultAzureCredential's private flag, an explicit constructor keyword rather than azure-identity's
context variable, so it is visible, picklable and immune to the caller's context) reports those as
unavailable too, so the chain continues.

Caching (beyond azure-identity, which spawns the tool for every request): tokens are cached in memory
until stale, and dropped when the files holding the tool's sign-in state change (a new ``az login``
is seen by the next call). Writes the tool makes while we run it (``az`` refreshing its own token
cache) are absorbed, so they do not cost a second spawn.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import ClassVar

from protocol.errors import ProtocolError, SourceUnavailableError
from protocol.flows import Flow
from protocol.process import ProcessError, ProcessResult, RunProcess
from protocol.responses import TokenResult

from .constants import EnvironmentVariables
from .core import Plan
from .resource_core import FileWatch, ResourceCore, ResourceFlow

__all__ = [
    "INVALID_SCOPE",
    "Tool",
    "ToolCore",
    "ToolError",
    "ToolRequest",
    "check_process_timeout",
    "check_tenant",
    "check_scope",
    "excerpt",
    "sanitize",
    "tool_core",
    "tool_flow",
    "tool_token",
]

_LOGGER = logging.getLogger("identity")

INVALID_SCOPE = (
    "An invalid scope was provided. Only alphanumeric characters, '.', '-', '_', ':', and '/' are allowed."
)
_SCOPE_RE = re.compile(r"[A-Za-z0-9_.:/\-]+")
_TENANT_RE = re.compile(r"[A-Za-z0-9.\-]+")
_TENANT_HELP = (
    "Invalid tenant ID provided. You can locate your tenant ID by following the instructions here: "
    "https://learn.microsoft.com/partner-center/find-ids-and-domain-names"
)
_LEADING_DASH = "must not start with '-' (the tool would read it as an option)"

#: Longest tool output quoted in a message.
_EXCERPT_LIMIT = 1000

# Token values a tool may print, masked wherever its output is quoted: JSON members named like a
# token (az: accessToken, azd: token), PowerShell's "azsdk%<token>%<expiry>" line, and anything
# shaped like a JWT.
_SECRETS = (
    (
        re.compile(r'("(?:accessToken|access_token|token|refresh_?[tT]oken)"\s*:\s*")(?:[^"\\]|\\.)*'),
        r"\1****",
    ),
    (re.compile(r"(azsdk%)[^%\s]*"), r"\1****"),
    (re.compile(r"eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), "****"),
)


class ToolError(ProtocolError):
    """The tool ran and failed, or printed something that is not a token; ``message`` quotes its
    sanitised output. Surfaces as ``ClientAuthenticationError`` (unavailable inside
    DefaultAzureCredential)."""


def sanitize(text: str) -> str:
    """``text`` with every token value masked."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def excerpt(text: str) -> str:
    """Sanitised, stripped ``text``, cut to a readable length."""
    text = sanitize(text).strip()
    if len(text) > _EXCERPT_LIMIT:
        text = text[:_EXCERPT_LIMIT] + " [...]"
    return text


def check_scope(scope: str) -> None:
    """``ValueError`` unless ``scope`` is safe to hand to a tool."""
    if not _SCOPE_RE.fullmatch(scope):
        raise ValueError(INVALID_SCOPE)
    if scope.startswith("-"):
        raise ValueError(f"An invalid scope was provided: a scope {_LEADING_DASH}.")


def check_tenant(tenant_id: str) -> None:
    """``ValueError`` unless ``tenant_id`` is letters, digits, ``-`` and ``.``, not starting with ``-``."""
    if not isinstance(tenant_id, str) or not _TENANT_RE.fullmatch(tenant_id):
        raise ValueError(_TENANT_HELP)
    if tenant_id.startswith("-"):
        raise ValueError(f"Invalid tenant ID provided: a tenant ID {_LEADING_DASH}.")


def check_process_timeout(process_timeout: float) -> float:
    """``process_timeout`` if it is a positive number of seconds, else ``ValueError``."""
    if (
        isinstance(process_timeout, bool)
        or not isinstance(process_timeout, (int, float))
        or process_timeout <= 0
    ):
        raise ValueError(f"process_timeout must be a positive number of seconds, not {process_timeout!r}")
    return process_timeout


def tool_token(access_token: str, expires_on: int) -> TokenResult:
    """A token as a tool gives it: no refresh time of its own (the cache refreshes it when stale)."""
    return TokenResult(
        access_token=access_token,
        token_type="Bearer",
        expires_on=expires_on,
        refresh_on=None,
        ext_expires_on=None,
        scopes=None,
    )


class ToolRequest:
    """One token request for a tool, validated: ``scopes`` as the caller wrote them, the resolved
    ``tenant`` (``""``: the tool's default) and the claims challenge (``None`` when there is none)."""

    __slots__ = ("claims", "scopes", "tenant")

    def __init__(self, scopes: Sequence[str], tenant: str, claims: str | None) -> None:
        self.scopes = tuple(scopes)
        self.tenant = tenant
        self.claims = claims if claims and claims.strip() else None


class Tool:
    """A developer tool as a token source (a strategy; subclasses fill in the tool specifics).

    Attributes:
        display: the tool's name in messages ("Azure CLI").
        executables: names looked up on ``PATH``, in order.
        environment: variables added to the tool's environment (``NO_COLOR``...).
        troubleshoot: the troubleshooting link quoted by messages.
    """

    display: ClassVar[str]
    executables: ClassVar[tuple[str, ...]]
    environment: ClassVar[Mapping[str, str]] = {}
    troubleshoot: ClassVar[str]

    def missing(self) -> str:
        """The message when no executable is found: what to install, and how to sign in."""
        raise NotImplementedError

    def refuse(self, request: ToolRequest) -> None:
        """Raise :class:`~protocol.errors.SourceUnavailableError` when the tool cannot serve
        ``request`` at all (checked first, before the tool is even looked up)."""

    def command(self, executable: str, request: ToolRequest) -> tuple[str, ...]:
        """The argv for ``request``."""
        raise NotImplementedError

    def loggable(self, argv: tuple[str, ...]) -> str:
        """``argv`` as it may appear in a DEBUG log."""
        return " ".join(argv)

    def read(self, result: ProcessResult) -> TokenResult:
        """The token in a finished process's output.

        Raises:
            SourceUnavailableError: the tool is not signed in, or cannot run here.
            ToolError: the tool failed, or printed no token.
        """
        raise NotImplementedError

    def invoke_failed(self, exc: ProcessError) -> str:
        """The message when the process could not start or ran past its timeout."""
        message = f"Failed to invoke {self.display}: {exc.message}."
        if exc.timed_out:
            message += " Increase process_timeout if the tool is slow to start."
        return f"{message} For more help: {self.troubleshoot}"

    def locate(self) -> str:
        """The absolute path of the tool.

        Raises:
            SourceUnavailableError: not on ``PATH``.
        """
        for name in self.executables:
            path = shutil.which(name)
            if path:
                return path
        raise SourceUnavailableError(self.missing())

    def working_directory(self) -> str:
        """An OS-controlled directory to run in: ``%SYSTEMROOT%`` on Windows, ``/bin`` elsewhere.

        Raises:
            SourceUnavailableError: ``SYSTEMROOT`` is not set (Windows).
        """
        if sys.platform != "win32":
            return "/bin"
        root = os.environ.get("SYSTEMROOT")
        if not root:
            raise SourceUnavailableError(
                f"Environment variable 'SYSTEMROOT' is not defined: {self.display} cannot be run safely."
            )
        return root


def tool_flow(
    tool: Tool,
    request: ToolRequest,
    *,
    timeout: float,
    within_dac: bool,
    watch: FileWatch | None,
    on_sign_in_change: Callable[[], None] = lambda: None,
) -> Flow[TokenResult]:
    """Run ``tool`` once for ``request`` and return its token (see the module docstring for errors).

    The sign-in files are checked before the run (a claims request skips the cache's own check)
    and after it: a change then means the sign-in changed while the tool ran, and the token is
    handed out but not kept. The tool's own token-cache writes (``msal*`` files) do not count.
    """
    try:
        if watch is not None and watch.changed():
            on_sign_in_change()
        tool.refuse(request)
        argv = tool.command(tool.locate(), request)
        step = RunProcess(
            argv,
            cwd=tool.working_directory(),
            timeout=timeout,
            env={**os.environ, **tool.environment},
        )
        _LOGGER.debug("%s: executing %s", tool.display, tool.loggable(argv))
        try:
            outcome = yield step
        except ProcessError as exc:
            raise SourceUnavailableError(tool.invoke_failed(exc)) from exc
        finally:
            if watch is not None and watch.changed(absorb=_tool_writes(watch.paths)):
                on_sign_in_change()
        if not isinstance(outcome, ProcessResult):  # pragma: no cover - the drivers send a ProcessResult
            raise TypeError(f"expected a ProcessResult, got {type(outcome).__name__}")
        return tool.read(outcome)
    except ToolError as exc:
        if within_dac:
            raise SourceUnavailableError(exc.message) from exc
        raise


def _tool_writes(paths: Iterable[str]) -> frozenset[str]:
    """The watched files a tool rewrites itself while it runs: its MSAL token caches."""
    return frozenset(path for path in paths if os.path.basename(path).startswith("msal"))


class ToolCore(ResourceCore):
    """A :class:`ResourceCore` that refuses scopes and tenants a tool must not see, before any spawn."""

    def new_plan(
        self, scope_list: tuple[str, ...], *, claims: str | None, tenant_id: str | None, enable_cae: bool
    ) -> Plan:
        if tenant_id:
            check_tenant(tenant_id)
        for scope in scope_list:
            check_scope(scope)
        return super().new_plan(scope_list, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae)


def tool_core(
    credential: str,
    tool: Tool,
    *,
    source: str,
    tenant_id: str | None,
    additionally_allowed_tenants: Iterable[str] | None,
    process_timeout: float,
    within_dac: bool,
    watch_paths: Iterable[str],
    single_scope: bool,
    description: str,
) -> ToolCore:
    """Validate the common constructor arguments and build the token core.

    Raises:
        ValueError: an invalid tenant id or ``process_timeout``.
    """
    tenant = tenant_id or ""
    if tenant:
        check_tenant(tenant)
    allowed = tuple(additionally_allowed_tenants or ())
    for entry in allowed:
        if not isinstance(entry, str):
            raise ValueError("additionally_allowed_tenants must be a list of tenant ids (strings).")
    timeout = check_process_timeout(process_timeout)
    watch = FileWatch(watch_paths)

    cores: list[ToolCore] = []  # the core, once built (the flow tells it about sign-in changes)

    def acquire(scopes: tuple[str, ...], resolved_tenant: str, claims: str | None) -> Flow[TokenResult]:
        request = ToolRequest(scopes, resolved_tenant, claims)
        return tool_flow(
            tool,
            request,
            timeout=timeout,
            within_dac=within_dac,
            watch=watch,
            on_sign_in_change=cores[0].forget,
        )

    flow: ResourceFlow = acquire
    core = ToolCore(
        credential=credential,
        source=source,
        identity="",
        acquire=flow,
        single_scope=single_scope,
        tenant_id=tenant,
        tenant_aware=True,
        additionally_allowed_tenants=allowed,
        multitenant_disabled=bool(
            os.environ.get(EnvironmentVariables.AZURE_IDENTITY_DISABLE_MULTITENANTAUTH)
        ),
        watch=watch,
        description=description,
    )
    cores.append(core)
    return core
