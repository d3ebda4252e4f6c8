"""``ManagedIdentityCredential``: the identity Azure gives the compute a program runs on.

The source is chosen from the environment when the credential is built
(:func:`protocol.managed_identity.selection.select_source`): App Service (also Functions, Container
Apps, Automation), Service Fabric, Azure Arc, Azure ML, Cloud Shell, workload identity (delegated to
:class:`identity.WorkloadIdentityCredential`) or IMDS. Each source's requests and answers live in
:mod:`protocol.managed_identity`; this module resolves the arguments and builds one
:class:`~identity.resource_core.ResourceCore` shared by the sync class and its ``identity.aio`` twin.

A user-assigned identity is named by ``client_id=`` or by ``identity_config=`` with one of
``client_id``, ``object_id`` or ``resource_id``. A source that cannot honour it says so (Cloud
Shell: ``ValueError``; Service Fabric, and Azure ML by object or resource id: an error at
``get_token``); it never quietly returns the system-assigned identity's token instead.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from protocol.drivers import SyncDriver
from protocol.errors import ProtocolError, SourceUnavailableError
from protocol.flows import Clock, Flow
from protocol.managed_identity import azure_arc, imds, sources
from protocol.managed_identity.common import UserAssignedIdentity
from protocol.managed_identity.pinning import normalize_thumbprint
from protocol.managed_identity.selection import LABELS, SourceSettings, select_source
from protocol.responses import TokenResult
from protocol.retry import RetryPolicy

from .chained import WITHIN_CHAIN
from .constants import EnvironmentVariables
from .credential import SyncCredential
from .http_options import HttpOptions
from .resource_core import ResourceCore, scope_to_resource
from .settings import constructor_options

__all__ = ["ManagedIdentityCredential", "ManagedIdentitySetup", "managed_identity_setup"]

_LOGGER = logging.getLogger("identity")

TROUBLESHOOT = "https://aka.ms/azsdk/python/identity/managedidentitycredential/troubleshoot"
NO_SOURCE = (
    "ManagedIdentityCredential authentication unavailable. No managed identity endpoint found. The Target "
    "Azure platform could not be determined from environment variables (IDENTITY_ENDPOINT is set without "
    f"IDENTITY_HEADER or IMDS_ENDPOINT). See the troubleshooting guide: {TROUBLESHOOT}"
)
SERVICE_FABRIC_USER_ASSIGNED = (
    "Specifying a client_id or identity_config is not supported by the Service Fabric managed identity "
    "environment. The managed identity configuration is determined by the Service Fabric cluster resource "
    "configuration. See https://aka.ms/servicefabricmi for more information."
)
#: Local endpoints answer fast or not at all, and are never reached through a proxy.
_CLIENT_DEFAULTS: dict[str, Any] = {"timeout": httpx.Timeout(30.0, connect=2.0), "trust_env": False}

_IDENTITY_KEYS = ("client_id", "object_id", "resource_id")
_ALIASES = {"mi_res_id": "resource_id", "msi_res_id": "resource_id"}


def user_assigned_identity(
    client_id: str | None, identity_config: Mapping[str, str] | None
) -> UserAssignedIdentity | None:
    """The user-assigned identity the arguments name, or ``None`` for the system-assigned one.

    Raises:
        ValueError: more than one id, an empty id, or an ``identity_config`` key that names nothing.
    """
    config = dict(identity_config or {})
    named: list[UserAssignedIdentity] = []
    for key, value in config.items():
        kind = _ALIASES.get(key, key)
        if kind not in _IDENTITY_KEYS:
            raise ValueError(
                f"identity_config key {key!r} is not supported: use one of 'client_id', 'object_id', "
                "'resource_id'"
            )
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"identity_config[{key!r}] must be a non-empty string")
        named.append(UserAssignedIdentity(kind, value.strip()))  # type: ignore[arg-type]
    if client_id is not None:
        if not isinstance(client_id, str) or not client_id.strip():
            raise ValueError(
                "client_id must be a non-empty string (omit it for the system-assigned identity)"
            )
        if named:
            raise ValueError(
                "identity_config must not contain 'client_id', 'object_id' or 'resource_id' when the "
                "client_id "
                "argument is given"
            )
        return UserAssignedIdentity("client_id", client_id.strip())
    if len(named) > 1:
        raise ValueError(
            "identity_config must not contain more than one of the following keys: 'client_id', 'object_id', "
            "'resource_id'"
        )
    return named[0] if named else None


@dataclass
class _ImdsState:
    available: bool = False

    def confirm(self) -> None:
        self.available = True


@dataclass
class ManagedIdentitySetup:
    """Everything the sync and async classes share: the source, the identity and the token core."""

    settings: SourceSettings
    identity: UserAssignedIdentity | None
    core: ResourceCore
    transport_error: str = ""
    imds: _ImdsState = field(default_factory=_ImdsState)


def _failing(error: ProtocolError) -> Flow[TokenResult]:
    raise error
    yield  # pragma: no cover - makes this a generator


def managed_identity_setup(
    credential: str,
    *,
    client_id: str | None,
    identity_config: Mapping[str, str] | None,
    retry_policy: RetryPolicy | None,
    enable_imds_probe: bool | None,
    retry_overrides: Mapping[str, Any] | None = None,
    exclude_workload_identity: bool,
    within_dac: bool,
    clock: Clock,
) -> ManagedIdentitySetup:
    """Select the source and build the core.

    Raises:
        ValueError: conflicting or empty identity arguments; a user-assigned identity in Cloud
            Shell (outside DefaultAzureCredential).
    """
    identity = user_assigned_identity(client_id, identity_config)
    settings = select_source(os.environ, workload_identity=not exclude_workload_identity)
    if settings.kind == "cloud_shell" and identity is not None and not within_dac:
        raise ValueError(
            "Cloud Shell managed identity does not support user-assigned identities: it has only the "
            "signed-in "
            "user's identity. Remove client_id/identity_config."
        )
    label = LABELS[settings.kind]
    _LOGGER.info("%s will use %s%s", credential, label, f" with {identity}" if identity else "")
    state = _ImdsState()
    overrides = dict(retry_overrides or {})
    pod_host = os.environ.get(EnvironmentVariables.AZURE_POD_IDENTITY_AUTHORITY_HOST, "")
    setup_errors: list[str] = []

    def acquire(scopes: tuple[str, ...], tenant: str, claims: str | None) -> Flow[TokenResult]:
        # claims only bypass the cache: managed identity endpoints take no claims.
        resource = scope_to_resource(scopes[0])
        kind = settings.kind
        if setup_errors:
            return _failing(ProtocolError(setup_errors[0]))
        if kind == "imds":
            # A pod identity host is assumed to be there (reference §3.6), whatever asked for a probe.
            asked = enable_imds_probe if enable_imds_probe is not None else WITHIN_CHAIN.get()
            probe = asked and not pod_host
            return imds.imds_flow(
                imds.imds_endpoint(settings.endpoint),
                resource,
                identity,
                probe=probe and not state.available,
                policy=retry_policy or replace(imds.IMDS_RETRY, **overrides),
                clock=clock,
                on_available=state.confirm,
            )
        policy = retry_policy or replace(RetryPolicy(), **overrides)
        if kind == "azure_arc":
            try:
                directory = azure_arc.default_key_directory()
            except ProtocolError as exc:
                return _failing(exc)
            return azure_arc.arc_flow(
                settings.endpoint, resource, identity, key_directory=directory, policy=policy, clock=clock
            )
        if kind == "app_service":
            return sources.single_request_flow(
                lambda: sources.build_app_service_request(
                    settings.endpoint, resource, identity, settings.secret
                ),
                source=label,
                policy=policy,
                clock=clock,
            )
        if kind == "service_fabric":
            if identity is not None:
                return _failing(ProtocolError(SERVICE_FABRIC_USER_ASSIGNED))
            return sources.single_request_flow(
                lambda: sources.build_service_fabric_request(settings.endpoint, resource, settings.secret),
                source=label,
                policy=policy,
                clock=clock,
            )
        if kind == "azure_ml":
            if identity is not None and identity.kind != "client_id":
                return _failing(
                    ProtocolError(
                        f"Azure ML managed identity names a user-assigned identity by client_id only, not by "
                        f"{identity.kind}."
                    )
                )
            return sources.single_request_flow(
                lambda: sources.build_azure_ml_request(
                    settings.endpoint, resource, identity, settings.secret
                ),
                source=label,
                policy=policy,
                clock=clock,
            )
        if kind == "cloud_shell":
            if identity is not None:  # only reachable inside DefaultAzureCredential
                return _failing(
                    SourceUnavailableError(
                        "ManagedIdentityCredential authentication unavailable. Cloud Shell managed identity "
                        "does "
                        f"not support user-assigned identities ({identity} was configured)."
                    )
                )
            return sources.single_request_flow(
                lambda: sources.build_cloud_shell_request(settings.endpoint, resource),
                source=label,
                policy=policy,
                clock=clock,
            )
        return _failing(SourceUnavailableError(NO_SOURCE))

    description = f"source={label!r}" + (f", {identity.kind}={identity.value!r}" if identity else "")
    core = ResourceCore(
        credential=credential,
        source=f"managed_identity:{settings.kind}",
        identity=f"{identity.kind}:{identity.value.lower()}" if identity else "system",
        acquire=acquire,
        description=description,
        clock=clock,
    )
    setup = ManagedIdentitySetup(settings, identity, core, imds=state)
    if settings.kind == "service_fabric":
        if not settings.endpoint.lower().startswith("https://"):
            setup_errors.append(
                "Service Fabric managed identity: IDENTITY_ENDPOINT must be an https URL (the server "
                "certificate "
                "is checked against IDENTITY_SERVER_THUMBPRINT)."
            )
        else:
            try:
                normalize_thumbprint(settings.thumbprint)
            except ValueError as exc:
                setup_errors.append(f"Service Fabric managed identity: {exc}.")
    return setup


def client_options(settings: SourceSettings, http_options: Mapping[str, Any]) -> dict[str, Any]:
    """The client options of a managed identity credential: the defaults above, then the caller's.

    A plain-``http`` endpoint (IMDS, and the local endpoints of the other sources) needs no CA
    store: the client gets a TLS context that trusts nothing, which costs under a millisecond where
    loading the system store costs tens (and would fail closed, should the endpoint be ``https``).
    """
    options = dict(_CLIENT_DEFAULTS)
    endpoint = imds.imds_endpoint(settings.endpoint) if settings.kind == "imds" else settings.endpoint
    if settings.kind != "service_fabric" and endpoint.lower().startswith("http://"):
        options["verify"] = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    options.update(http_options)
    return options


def workload_identity_client_id(client_id: str | None, identity: UserAssignedIdentity | None) -> str:
    """The client id the delegated workload identity credential uses.

    Raises:
        ValueError: none given and ``AZURE_CLIENT_ID`` unset.
    """
    if identity is not None and identity.kind != "client_id":
        raise ValueError(
            f"Workload identity was selected: it names its identity by client_id, not by {identity.kind}."
        )
    chosen = identity.value if identity is not None else os.environ.get(EnvironmentVariables.AZURE_CLIENT_ID)
    if not chosen:
        raise ValueError(
            "Workload identity was selected but no client ID was provided. Configure the environment with a "
            'client ID or pass a value for "client_id" argument'
        )
    return chosen


def configure(
    credential: Any, arguments: dict[str, Any], workload_class: Callable[[], Any]
) -> tuple[HttpOptions, ManagedIdentitySetup]:
    """The constructor steps the sync class and its ``identity.aio`` twin share, given ``locals()``:
    options, source selection and core, and the workload identity credential to delegate to when
    that is the source (``workload_class()`` gives the sync or the async class).

    Returns:
        The HTTP options and the :class:`ManagedIdentitySetup`.
    """
    http = constructor_options(credential, arguments)
    setup = managed_identity_setup(
        type(credential).__name__,
        client_id=arguments["client_id"],
        identity_config=arguments["identity_config"],
        # An explicit policy (with any retry_* keywords applied); else the keywords go over the
        # source's own default policy.
        retry_policy=http.retry_policy if arguments["retry_policy"] is not None else None,
        retry_overrides=http.retry_overrides,
        enable_imds_probe=arguments["_enable_imds_probe"],
        exclude_workload_identity=arguments["_exclude_workload_identity_credential"],
        within_dac=arguments["_within_dac"],
        clock=time.time,
    )
    credential._setup = setup
    credential._core = setup.core
    credential._delegate = None
    if setup.settings.kind == "workload_identity":
        delegate = credential._delegate = workload_class()(
            client_id=workload_identity_client_id(arguments["client_id"], setup.identity),
            transport=arguments["transport"],
            http_client=arguments["http_client"],
            retry_policy=arguments["retry_policy"],
            **(arguments.get("kwargs") or {}),  # the HTTP keywords (connection_timeout, retry_*...)
        )
        # The delegate answers directly: no forwarding layer on every call of the other sources.
        credential.get_token = delegate.get_token
        credential.get_token_info = delegate.get_token_info
    return http, setup


def _workload_identity_class() -> Any:
    from .workload_identity import WorkloadIdentityCredential

    return WorkloadIdentityCredential


class ManagedIdentityCredential(SyncCredential):
    """Authenticates with an Azure managed identity.

    Keyword Args:
        client_id: a user-assigned identity's client id (default: the system-assigned identity).
        identity_config: a user-assigned identity by ``{"client_id": ...}``, ``{"object_id": ...}`` or
            ``{"resource_id": ...}`` (exactly one).
        transport: an httpx transport for the client this credential creates (Service Fabric's
            certificate pinning is then the transport's business).
        http_client: an ``httpx.Client`` to use instead (the caller closes it).
        retry_policy: a :class:`protocol.retry.RetryPolicy` (default: IMDS's documented policy for
            IMDS, 3 retries elsewhere).

    Raises:
        ValueError: conflicting identity arguments, or a user-assigned identity in Cloud Shell.
    """

    _setup: ManagedIdentitySetup
    _delegate: Any  # the workload identity credential, when that is the source

    def __init__(
        self,
        *,
        client_id: str | None = None,
        identity_config: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        retry_policy: RetryPolicy | None = None,
        _enable_imds_probe: bool | None = None,
        _exclude_workload_identity_credential: bool = False,
        _within_dac: bool = False,
        **kwargs: Any,
    ) -> None:
        http, setup = configure(self, locals(), _workload_identity_class)
        if transport is None and http_client is None and setup.settings.kind == "service_fabric":
            transport = _pinned(setup)
        self._driver = SyncDriver(
            client=http_client,
            transport=transport,
            client_options=client_options(setup.settings, http.client_options),
        )

    def close(self) -> None:
        if self._delegate is not None:
            self._delegate.close()
        super().close()


def _pinned(setup: ManagedIdentitySetup) -> httpx.HTTPTransport | None:
    from protocol.managed_identity.pinning import pinned_transport

    try:
        return pinned_transport(setup.settings.thumbprint)
    except ValueError:
        return None  # the core reports the bad thumbprint at get_token
