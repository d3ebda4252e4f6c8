"""Settings shared by credential constructors: authority, tenant rules and region.

Environment variables are read here, on behalf of the public constructors that document them, and
nowhere deeper:

* ``AZURE_AUTHORITY_HOST``: the default authority host;
* ``AZURE_IDENTITY_DISABLE_MULTITENANTAUTH``: any non-empty value pins tokens to the configured
  tenant;
* ``AZURE_REGIONAL_AUTHORITY_NAME``: a region (``westus2``) for the client-credentials grant;
  ``tryautodetect``/``true`` uses ``REGION_NAME`` when set (region detection through IMDS is not
  done: it would make every token request off Azure wait for a metadata service).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from protocol.authority import Authority, validate_region

from .constants import AzureAuthorityHosts, EnvironmentVariables
from .http_options import HttpOptions, http_options

if TYPE_CHECKING:  # pragma: no cover
    from cache.persistent import PersistentTokenCache

    from .persistence_options import TokenCachePersistenceOptions

__all__ = [
    "AuthoritySettings",
    "authority_settings",
    "attach_persistent_cache",
    "check_persistence_options",
    "open_persistent_cache",
    "constructor_options",
    "picklable_arguments",
    "reject_unknown_arguments",
]

_LOGGER = logging.getLogger("identity")


@dataclass(frozen=True, slots=True)
class AuthoritySettings:
    """Where and how a credential asks for tokens."""

    authority: Authority
    instance_discovery: bool
    additionally_allowed_tenants: tuple[str, ...]
    multitenant_disabled: bool
    region: str | None


def _region_from_environment(authority: Authority) -> str | None:
    raw = os.environ.get(EnvironmentVariables.AZURE_REGIONAL_AUTHORITY_NAME, "").strip()
    if not raw:
        return None
    if raw.lower() in ("tryautodetect", "true"):
        detected = os.environ.get("REGION_NAME", "").strip()
        if not detected:
            _LOGGER.info(
                "AZURE_REGIONAL_AUTHORITY_NAME asks for region detection, but REGION_NAME is not set."
            )
            return None
        raw = detected.lower().replace(" ", "")
    region = validate_region(raw)
    if not authority.is_well_known:
        _LOGGER.info(
            "Ignoring AZURE_REGIONAL_AUTHORITY_NAME: %s is not a Microsoft Entra cloud.", authority.base
        )
        return None
    return region


def authority_settings(
    *,
    tenant_id: str,
    authority: str | None,
    disable_instance_discovery: bool,
    additionally_allowed_tenants: Iterable[str] | None,
    use_region: bool = False,
) -> AuthoritySettings:
    """Validate a constructor's authority arguments and read the documented environment variables.

    Raises:
        ValueError: an invalid authority, tenant id or region name.
    """
    host = (
        authority
        or os.environ.get(EnvironmentVariables.AZURE_AUTHORITY_HOST)
        or (AzureAuthorityHosts.AZURE_PUBLIC_CLOUD)
    )
    resolved = Authority.create(host, tenant_id)
    allowed = tuple(additionally_allowed_tenants or ())
    for tenant in allowed:
        if not isinstance(tenant, str):
            raise ValueError("additionally_allowed_tenants must be a list of tenant ids (strings).")
    return AuthoritySettings(
        authority=resolved,
        instance_discovery=not disable_instance_discovery,
        additionally_allowed_tenants=allowed,
        multitenant_disabled=bool(
            os.environ.get(EnvironmentVariables.AZURE_IDENTITY_DISABLE_MULTITENANTAUTH)
        ),
        region=_region_from_environment(resolved) if use_region else None,
    )


def reject_unknown_arguments(credential: str, kwargs: Mapping[str, object]) -> None:
    """Raise ``TypeError`` naming keyword arguments a constructor does not support.

    Silently ignoring them (as azure-identity does with unknown pipeline options) hides typos such
    as ``additionaly_allowed_tenants``.
    """
    if kwargs:
        names = ", ".join(sorted(kwargs))
        raise TypeError(f"{credential} got unexpected keyword argument(s): {names}")


def check_persistence_options(options: object) -> TokenCachePersistenceOptions | None:
    """Validate ``cache_persistence_options`` (ours, or azure-identity's class with the same fields).

    Raises:
        TypeError: ``options`` is not a :class:`identity.TokenCachePersistenceOptions`.
    """
    if options is None:
        return None
    from .persistence_options import TokenCachePersistenceOptions

    if not isinstance(options, TokenCachePersistenceOptions):
        # azure-identity's TokenCachePersistenceOptions has the same two fields: validate them as ours.
        name = getattr(options, "name", None)
        allow = getattr(options, "allow_unencrypted_storage", None)
        if isinstance(name, str) and isinstance(allow, bool):
            options = TokenCachePersistenceOptions(name=name, allow_unencrypted_storage=allow)
    if not isinstance(options, TokenCachePersistenceOptions):
        raise TypeError(
            f"cache_persistence_options must be a TokenCachePersistenceOptions, not {type(options).__name__}"
        )
    return options


def open_persistent_cache(options: TokenCachePersistenceOptions) -> PersistentTokenCache:
    """The persistent token store ``options`` describe (see :mod:`cache.persistent`), written
    behind: ``get_token`` never waits for the disk or another process's lock.

    Raises:
        ValueError: no usable OS keyring and ``allow_unencrypted_storage`` is False.
    """
    from cache.persistent import open_persistent_cache as open_cache

    return open_cache(
        options.name, allow_unencrypted_storage=options.allow_unencrypted_storage, write_behind=True
    )


def attach_persistent_cache(core: Any, http: HttpOptions) -> None:
    """Give ``core`` the persistent store its credential's ``cache_persistence_options`` ask for."""
    if http.persistence is not None:
        core.cache = open_persistent_cache(http.persistence)


#: Constructor arguments that hold live resources: a pickled credential gets fresh defaults.
_UNPICKLED = frozenset({"self", "kwargs", "transport", "http_client", "__class__"})


def picklable_arguments(arguments: Mapping[str, object]) -> dict[str, object]:
    """The constructor arguments a credential is rebuilt from after ``pickle`` (from ``locals()``).

    HTTP clients and transports are left out (they hold sockets and TLS contexts), as is the token
    cache: an unpickled credential starts with a new client and an empty cache, like azure-identity's.
    """
    kept = {name: value for name, value in arguments.items() if name not in _UNPICKLED}
    extra = arguments.get("kwargs")
    if isinstance(extra, Mapping):
        kept.update(extra)  # azure-core pipeline options travel too
    return kept


def constructor_options(credential: Any, arguments: dict[str, Any]) -> HttpOptions:
    """The shared first steps of every credential constructor, given its ``locals()``.

    Records the arguments for pickling, maps azure-core pipeline keywords onto httpx, rejects the
    unknown ones and validates ``cache_persistence_options``.
    """
    name = type(credential).__name__
    credential._arguments = picklable_arguments(arguments)
    kwargs = dict(arguments.get("kwargs") or {})
    http = http_options(name, kwargs, arguments.get("retry_policy"), arguments.get("transport"))
    reject_unknown_arguments(name, kwargs)
    persistence = check_persistence_options(arguments.get("cache_persistence_options"))
    return replace(http, persistence=persistence) if persistence is not None else http
