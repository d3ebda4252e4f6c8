"""``DefaultAzureCredential``: one credential that works in production on Azure and on a developer's
machine, by trying the usual sources in order (reference §6).

Order: EnvironmentCredential, WorkloadIdentityCredential, ManagedIdentityCredential,
SharedTokenCacheCredential, VisualStudioCodeCredential, AzureCliCredential,
AzurePowerShellCredential, AzureDeveloperCliCredential, InteractiveBrowserCredential (excluded by
default), and the OS broker (sync only). Members this release does not provide yet (shared token
cache, VS Code, interactive browser, broker) are left out; naming one in
``AZURE_TOKEN_CREDENTIALS`` is a ``ValueError`` that says so.

``AZURE_TOKEN_CREDENTIALS`` narrows the chain: ``prod`` (environment, workload identity, managed
identity), ``dev`` (the developer tools), or one credential's class name; explicit ``exclude_*``
arguments override it. After the first success the credential sticks to the member that
succeeded: later calls go straight to it, and its failures are not masked by other members.

Beyond azure-identity, the first success logs at INFO which member was selected and how long each
attempted member took, and :attr:`DefaultAzureCredential.selected_credential_name` names it.

The member table and the exclusion rules are written once here; the ``identity.aio`` twin only
builds async members and awaits them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .chained import ChainedTokenCredential
from .constants import EnvironmentVariables
from .errors import CredentialUnavailableError

__all__ = [
    "Attempts",
    "DefaultAzureCredential",
    "MemberSpec",
    "UnavailableMember",
    "build_members",
    "member_specs",
]

_LOGGER = logging.getLogger("identity")

_SENTINEL: Any = object()
_NOT_PROVIDED = "_not_provided"

#: (class name, exclude keyword, group, available in identity.aio, provided by this release)
_MEMBERS: tuple[tuple[str, str, str, bool, bool], ...] = (
    ("EnvironmentCredential", "exclude_environment_credential", "prod", True, True),
    ("WorkloadIdentityCredential", "exclude_workload_identity_credential", "prod", True, True),
    ("ManagedIdentityCredential", "exclude_managed_identity_credential", "prod", True, True),
    ("SharedTokenCacheCredential", "exclude_shared_token_cache_credential", "dev", True, True),
    ("VisualStudioCodeCredential", "exclude_visual_studio_code_credential", "dev", True, True),
    ("AzureCliCredential", "exclude_cli_credential", "dev", True, True),
    ("AzurePowerShellCredential", "exclude_powershell_credential", "dev", True, True),
    ("AzureDeveloperCliCredential", "exclude_developer_cli_credential", "dev", True, True),
    ("InteractiveBrowserCredential", "exclude_interactive_browser_credential", "none", False, True),
    ("BrokerCredential", "exclude_broker_credential", "dev", False, False),
)
#: Keywords of the sync chain's browser and broker members, which the async chain does not have.
_SYNC_ONLY_ARGUMENTS = frozenset(
    {
        "exclude_interactive_browser_credential",
        "interactive_browser_tenant_id",
        "interactive_browser_client_id",
        "exclude_broker_credential",
        "broker_tenant_id",
        "broker_client_id",
    }
)
#: Names AZURE_TOKEN_CREDENTIALS may select one by one (the shared cache and broker cannot be).
_SELECTABLE = frozenset(
    name for name, *_ in _MEMBERS if name not in ("SharedTokenCacheCredential", "BrokerCredential")
)


@dataclass(frozen=True, slots=True)
class MemberSpec:
    """A chain member to build: its class name and keyword arguments."""

    name: str
    arguments: dict[str, Any]


def _token_credentials_setting(require_envvar: bool, is_async: bool) -> str:
    value = os.environ.get(EnvironmentVariables.AZURE_TOKEN_CREDENTIALS, "").strip().lower()
    if not value and require_envvar:
        raise ValueError(
            "AZURE_TOKEN_CREDENTIALS environment variable is required but is not set or is empty. Set it to "
            "'dev', 'prod', or a specific credential name."
        )
    if value and value not in ("dev", "prod"):
        valid = sorted(
            name.lower()
            for name in _SELECTABLE
            if is_async is False or name != "InteractiveBrowserCredential"
        )
        if value not in valid:
            raise ValueError(
                f"Invalid value for AZURE_TOKEN_CREDENTIALS: {value}. Valid values are: dev, prod, "
                f"{', '.join(valid)}."
            )
    return value


def _excluded(setting: str, explicit: Mapping[str, bool | None], is_async: bool) -> dict[str, bool]:
    """Which members are excluded: the environment's choice, then the explicit arguments."""
    excluded: dict[str, bool] = {}
    for name, keyword, group, in_async, _ in _MEMBERS:
        if is_async and not in_async:
            continue
        if setting in ("dev", "prod"):
            value = group != setting
        elif setting:
            value = name.lower() != setting
        else:
            value = name == "InteractiveBrowserCredential"
        chosen = explicit.get(keyword)
        excluded[name] = value if chosen is None else bool(chosen)
    return excluded


def member_specs(
    arguments: Mapping[str, Any], kwargs: Mapping[str, Any], *, is_async: bool
) -> tuple[list[MemberSpec], str]:
    """The members to build, in order, with their arguments; and the AZURE_TOKEN_CREDENTIALS value.

    Raises:
        TypeError: ``tenant_id`` was given.
        ValueError: an invalid AZURE_TOKEN_CREDENTIALS, or one naming a member this release lacks.
    """
    if "tenant_id" in kwargs:
        raise TypeError("'tenant_id' is not supported in DefaultAzureCredential.")
    sync_only = sorted(name for name in _SYNC_ONLY_ARGUMENTS if name in kwargs)
    if is_async and sync_only:
        raise TypeError(
            f"identity.aio.DefaultAzureCredential got {', '.join(sync_only)}: the async chain has no "
            "interactive browser or broker member (as in azure-identity); use "
            "identity.DefaultAzureCredential or an identity.aio.InteractiveBrowserCredential of its own."
        )
    setting = _token_credentials_setting(bool(arguments.get("require_envvar")), is_async)
    explicit = {keyword: arguments.get(keyword) for _, keyword, *_ in _MEMBERS}
    excluded = _excluded(setting, explicit, is_async)
    env_tenant = os.environ.get(EnvironmentVariables.AZURE_TENANT_ID)
    env_client = os.environ.get(EnvironmentVariables.AZURE_CLIENT_ID)
    mi_client_id = arguments.get("managed_identity_client_id", _SENTINEL)
    if mi_client_id is _SENTINEL:
        mi_client_id = env_client
    wi_client_id = arguments.get("workload_identity_client_id") or mi_client_id
    wi_tenant_id = arguments.get("workload_identity_tenant_id") or env_tenant
    authority = arguments.get("authority")
    process_timeout = arguments.get("process_timeout", 10)
    forwarded = dict(kwargs)
    identity_config = forwarded.pop("identity_config", None)
    # The AKS proxy mode is for a WorkloadIdentityCredential of its own: inside the chain
    # azure-identity drops the flag, and so do we.
    forwarded.pop("enable_azure_proxy", None)
    # Options of Entra credentials only; the managed identity credential takes HTTP options only.
    entra_only: dict[str, Any] = {
        name: forwarded.pop(name)
        for name in (
            "additionally_allowed_tenants",
            "disable_instance_discovery",
            "cache_persistence_options",
        )
        if name in forwarded
    }
    allowed_tenants = entra_only.get("additionally_allowed_tenants")
    entra: dict[str, Any] = {**forwarded, **entra_only}
    if authority:
        entra["authority"] = authority
    specs: list[MemberSpec] = []
    for name, _keyword, _, in_async, ok in _MEMBERS:
        if (is_async and not in_async) or excluded.get(name, True):
            continue
        if not ok:
            if setting == name.lower():  # asked for by name: say why it cannot answer
                specs.append(MemberSpec(name, {_NOT_PROVIDED: True}))
            else:
                _LOGGER.debug("DefaultAzureCredential: %s is not provided by this release; skipped.", name)
            continue
        if name == "EnvironmentCredential":
            specs.append(MemberSpec(name, {**entra, "_within_dac": True}))
        elif name == "WorkloadIdentityCredential":
            specs.append(
                MemberSpec(
                    name,
                    {
                        **entra,
                        "tenant_id": wi_tenant_id,
                        "client_id": wi_client_id,
                        "token_file_path": os.environ.get(EnvironmentVariables.AZURE_FEDERATED_TOKEN_FILE),
                    },
                )
            )
        elif name == "ManagedIdentityCredential":
            mi: dict[str, Any] = {
                **forwarded,
                "_enable_imds_probe": setting != "managedidentitycredential",
                "_exclude_workload_identity_credential": True,
                "_within_dac": True,
            }
            if identity_config is not None:
                mi["identity_config"] = identity_config
            elif mi_client_id:
                mi["client_id"] = mi_client_id
            specs.append(MemberSpec(name, mi))
        elif name == "SharedTokenCacheCredential":
            from .shared_cache import SharedTokenCacheCredential

            if not SharedTokenCacheCredential.supported():
                continue
            shared: dict[str, Any] = {
                **entra,
                "username": arguments.get("shared_cache_username")
                or os.environ.get(EnvironmentVariables.AZURE_USERNAME),
                "tenant_id": arguments.get("shared_cache_tenant_id") or env_tenant,
                "_within_dac": True,
            }
            for unused in ("additionally_allowed_tenants", "disable_instance_discovery"):
                shared.pop(unused, None)
            specs.append(MemberSpec(name, shared))
        elif name == "VisualStudioCodeCredential":
            vscode: dict[str, Any] = {"_within_dac": True}
            if arguments.get("visual_studio_code_tenant_id"):
                vscode["tenant_id"] = arguments["visual_studio_code_tenant_id"]
            specs.append(MemberSpec(name, vscode))
        elif name == "InteractiveBrowserCredential":
            browser: dict[str, Any] = {
                **entra,
                "tenant_id": arguments.get("interactive_browser_tenant_id") or env_tenant,
                "_within_dac": True,
            }
            if arguments.get("interactive_browser_client_id"):
                browser["client_id"] = arguments["interactive_browser_client_id"]
            specs.append(MemberSpec(name, browser))
        else:  # the developer tools
            tool: dict[str, Any] = {"process_timeout": process_timeout, "_within_dac": True}
            if allowed_tenants is not None:
                tool["additionally_allowed_tenants"] = allowed_tenants
            specs.append(MemberSpec(name, tool))
    return specs, setting


class UnavailableMember:
    """Stands in for a member whose construction failed: it is unavailable, with the reason."""

    def __init__(self, name: str, message: str) -> None:
        self.credential_name = name
        self._message = message

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise CredentialUnavailableError(message=self._message)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        raise CredentialUnavailableError(message=self._message)

    def close(self) -> None:
        """Nothing to close."""


def build_members(
    specs: list[MemberSpec], resolve: Callable[[str], Any], placeholder: Callable[[str, str], Any]
) -> tuple[Any, ...]:
    """Construct the members; a workload identity credential that cannot be configured becomes an
    unavailable placeholder (its configuration is optional for a chain)."""
    members: list[Any] = []
    for spec in specs:
        if spec.arguments.get(_NOT_PROVIDED):
            members.append(
                placeholder(
                    spec.name,
                    f"{spec.name} is not available in entra-identity: it needs the native "
                    "azure-identity-broker package (the Windows or WSL authentication broker). Select 'dev', "
                    "'prod' or another credential instead.",
                )
            )
            continue
        cls = resolve(spec.name)
        if spec.name == "WorkloadIdentityCredential":
            try:
                members.append(cls(**spec.arguments))
            except ValueError as exc:
                members.append(placeholder(spec.name, str(exc)))
            continue
        members.append(cls(**spec.arguments))
    return tuple(members)


def log_sticky(selected: Any) -> None:
    """INFO, as azure-identity logs every token the selected member provides."""
    _LOGGER.info("DefaultAzureCredential acquired a token from %s", _name(selected))


class Attempts:
    """Times each member a ``DefaultAzureCredential`` asks, for the selection log (INFO: which member
    was selected and how long each attempt took)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, str]] = []
        self.winner: Any = None

    def failed(self, member: Any, start: float, exc: BaseException) -> None:
        outcome = "unavailable" if isinstance(exc, CredentialUnavailableError) else "failed"
        self.rows.append((_name(member), time.perf_counter() - start, outcome))

    def succeeded(self, member: Any, start: float) -> None:
        self.rows.append((_name(member), time.perf_counter() - start, "succeeded"))
        self.winner = member

    def selected(self) -> Any:
        """Log the selection and return the member that succeeded."""
        detail = "; ".join(
            f"{name}: {outcome} in {seconds * 1000:.1f} ms" for name, seconds, outcome in self.rows
        )
        _LOGGER.info("DefaultAzureCredential selected %s (attempted: %s)", _name(self.winner), detail)
        return self.winner


class DefaultAzureCredential(ChainedTokenCredential):
    """A credential for most applications: environment, workload identity, managed identity, then
    the developer sign-ins (the shared token cache, VS Code, Azure CLI, Azure PowerShell, Azure
    Developer CLI) and, when included, the interactive browser.

    Keyword Args:
        authority: authority host for the Entra members (default ``AZURE_AUTHORITY_HOST`` or the
            public cloud).
        exclude_environment_credential, exclude_workload_identity_credential,
        exclude_managed_identity_credential, exclude_shared_token_cache_credential,
        exclude_visual_studio_code_credential, exclude_cli_credential, exclude_powershell_credential,
        exclude_developer_cli_credential, exclude_interactive_browser_credential (default True),
        exclude_broker_credential: leave a member out (``None``: as ``AZURE_TOKEN_CREDENTIALS`` says).
        managed_identity_client_id: a user-assigned identity (default ``AZURE_CLIENT_ID``; ``None``
            forces the system-assigned identity).
        workload_identity_client_id, workload_identity_tenant_id: for workload identity (defaults
            ``managed_identity_client_id`` and ``AZURE_TENANT_ID``).
        interactive_browser_tenant_id, interactive_browser_client_id: the browser member's tenant
            (default ``AZURE_TENANT_ID``) and client.
        shared_cache_username, shared_cache_tenant_id: choose the shared cache's account (defaults
            ``AZURE_USERNAME``, ``AZURE_TENANT_ID``).
        visual_studio_code_tenant_id: the VS Code member's tenant (default: its record's).
        broker_tenant_id, broker_client_id: accepted; the broker member needs a native package
            entra-identity does not use, so it is skipped.
        process_timeout: seconds the developer tools may take (default 10).
        require_envvar: ``AZURE_TOKEN_CREDENTIALS`` must be set.
        **kwargs: ``additionally_allowed_tenants``, ``transport``, ``http_client``, ``retry_policy``
            and HTTP options for the members that talk to Entra or managed identity endpoints.

    Raises:
        TypeError: ``tenant_id`` was given (pick the tenant with the members' own settings).
        ValueError: an invalid ``AZURE_TOKEN_CREDENTIALS``.
    """

    def __init__(
        self,
        *,
        authority: str | None = None,
        exclude_environment_credential: bool | None = None,
        exclude_workload_identity_credential: bool | None = None,
        exclude_managed_identity_credential: bool | None = None,
        exclude_shared_token_cache_credential: bool | None = None,
        exclude_visual_studio_code_credential: bool | None = None,
        exclude_cli_credential: bool | None = None,
        exclude_powershell_credential: bool | None = None,
        exclude_developer_cli_credential: bool | None = None,
        exclude_interactive_browser_credential: bool | None = None,
        exclude_broker_credential: bool | None = None,
        managed_identity_client_id: str | None = _SENTINEL,
        workload_identity_client_id: str | None = None,
        workload_identity_tenant_id: str | None = None,
        interactive_browser_tenant_id: str | None = None,
        interactive_browser_client_id: str | None = None,
        broker_tenant_id: str | None = None,
        broker_client_id: str | None = None,
        shared_cache_username: str | None = None,
        shared_cache_tenant_id: str | None = None,
        visual_studio_code_tenant_id: str | None = None,
        process_timeout: int = 10,
        require_envvar: bool = False,
        **kwargs: Any,
    ) -> None:
        arguments = {
            name: value for name, value in locals().items() if name not in ("self", "kwargs", "__class__")
        }
        specs, _ = member_specs(arguments, kwargs, is_async=False)
        import identity

        members = build_members(specs, lambda name: getattr(identity, name), UnavailableMember)
        if not members:
            raise ValueError("DefaultAzureCredential: every credential is excluded; include at least one.")
        super().__init__(*members)
        self._selected: Any = None

    @property
    def selected_credential(self) -> Any:
        """The member that provided the first token (``None`` before that)."""
        return self._selected

    @property
    def selected_credential_name(self) -> str | None:
        """The selected member's class name (``None`` before the first token)."""
        return _name(self._selected) if self._selected is not None else None

    def _walk(self, call: Any) -> Any:
        selected = self._selected
        if selected is not None:
            result = call(selected)
            log_sticky(selected)
            return result
        attempts = Attempts()

        def timed(member: Any) -> Any:
            start = time.perf_counter()
            try:
                result = call(member)
            except Exception as exc:
                attempts.failed(member, start, exc)
                raise
            attempts.succeeded(member, start)
            return result

        result = super()._walk(timed)
        self._selected = attempts.selected()
        return result


def _name(member: Any) -> str:
    return str(getattr(member, "credential_name", None) or type(member).__name__)
