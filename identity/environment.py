"""``EnvironmentCredential``: a service principal configured by environment variables.

Selection, once, at construction (first match wins, as azure-identity):

1. ``AZURE_CLIENT_ID`` + ``AZURE_CLIENT_SECRET`` + ``AZURE_TENANT_ID``: a client secret;
2. ``AZURE_CLIENT_ID`` + ``AZURE_CLIENT_CERTIFICATE_PATH`` + ``AZURE_TENANT_ID``: a certificate, with
   ``AZURE_CLIENT_CERTIFICATE_PASSWORD`` and ``AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`` (any non-empty
   value sends the chain);
3. ``AZURE_CLIENT_ID`` + ``AZURE_USERNAME`` + ``AZURE_PASSWORD``: username and password
   (``UsernamePasswordCredential``, tenant ``AZURE_TENANT_ID`` or ``organizations``), with
   azure-identity's ``DeprecationWarning``: it cannot do multifactor authentication. The async
   class supports it too (azure-identity's async one does not).

Without a complete configuration every token request raises ``CredentialUnavailableError`` naming
the variables that are missing, so chains move on. Variable names are logged, never values.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from .constants import EnvironmentVariables as Env
from .errors import CredentialUnavailableError
from .tokens import AccessToken, AccessTokenInfo, TokenRequestOptions

__all__ = [
    "EnvironmentCredential",
    "EnvironmentSelection",
    "credential_from_environment",
    "select_from_environment",
]

_LOGGER = logging.getLogger("identity")
_Self = TypeVar("_Self", bound="EnvironmentCredential")
TROUBLESHOOT = "https://aka.ms/azsdk/python/identity/environmentcredential/troubleshoot"
USERNAME_PASSWORD_DEPRECATION = (
    "Environment is configured to use username and password authentication. This authentication method is "
    "deprecated, as it doesn't support multifactor authentication (MFA). For more details, see "
    "https://aka.ms/azsdk/identity/mfa."
)

_CONFIGURATIONS = (
    ("ClientSecretCredential", Env.CLIENT_SECRET_VARS),
    ("CertificateCredential", Env.CERT_VARS),
    ("UsernamePasswordCredential", Env.USERNAME_PASSWORD_VARS),
)


@dataclass(frozen=True)
class EnvironmentSelection:
    """Which credential the environment configures, and with what arguments (or why none)."""

    credential: str | None
    arguments: dict[str, Any]
    unavailable: str


def select_from_environment(environ: Mapping[str, str], *, quiet: bool = False) -> EnvironmentSelection:
    """Decide from ``environ`` (the module docstring gives the order). ``quiet``: an incomplete
    configuration is logged at INFO, not WARNING (inside DefaultAzureCredential, where the
    variables may be meant for another member)."""
    if all(environ.get(name) is not None for name in Env.CLIENT_SECRET_VARS):
        return EnvironmentSelection(
            "ClientSecretCredential",
            {
                "tenant_id": environ[Env.AZURE_TENANT_ID],
                "client_id": environ[Env.AZURE_CLIENT_ID],
                "client_secret": environ[Env.AZURE_CLIENT_SECRET],
            },
            "",
        )
    if all(environ.get(name) is not None for name in Env.CERT_VARS):
        return EnvironmentSelection(
            "CertificateCredential",
            {
                "tenant_id": environ[Env.AZURE_TENANT_ID],
                "client_id": environ[Env.AZURE_CLIENT_ID],
                "certificate_path": environ[Env.AZURE_CLIENT_CERTIFICATE_PATH],
                "password": environ.get(Env.AZURE_CLIENT_CERTIFICATE_PASSWORD),
                "send_certificate_chain": bool(environ.get(Env.AZURE_CLIENT_SEND_CERTIFICATE_CHAIN)),
            },
            "",
        )
    if all(environ.get(name) is not None for name in Env.USERNAME_PASSWORD_VARS):
        return EnvironmentSelection(
            "UsernamePasswordCredential",
            {
                "client_id": environ[Env.AZURE_CLIENT_ID],
                "username": environ[Env.AZURE_USERNAME],
                "password": environ[Env.AZURE_PASSWORD],
                "tenant_id": environ.get(Env.AZURE_TENANT_ID) or None,
            },
            "",
        )
    present = sorted(
        {name for _, names in _CONFIGURATIONS for name in names if environ.get(name) is not None}
    )
    if present:
        closest = min(_CONFIGURATIONS, key=lambda c: sum(environ.get(n) is None for n in c[1]))
        missing = [name for name in closest[1] if environ.get(name) is None]
        _LOGGER.log(
            logging.INFO if quiet else logging.WARNING,
            "Incomplete environment configuration for EnvironmentCredential. These variables are set: %s",
            ", ".join(present),
        )
        detail = f" For {closest[0]}, set: {', '.join(missing)}."
    else:
        _LOGGER.info("No environment configuration found.")
        detail = ""
    return EnvironmentSelection(
        None,
        {},
        "EnvironmentCredential authentication unavailable. Environment variables are not fully "
        f"configured.{detail}\nVisit {TROUBLESHOOT} to troubleshoot this issue.",
    )


def credential_from_environment(classes: Mapping[str, Any], kwargs: Mapping[str, Any]) -> tuple[Any, str]:
    """The credential the environment configures, built from ``classes`` (the sync or the async
    ones) with ``kwargs``; or ``None`` and the reason there is none."""
    kwargs = dict(kwargs)
    selection = select_from_environment(os.environ, quiet=bool(kwargs.pop("_within_dac", False)))
    if selection.credential is None:
        return None, selection.unavailable
    _LOGGER.info("Environment is configured for %s", selection.credential)
    if selection.credential == "UsernamePasswordCredential":
        warnings.warn(USERNAME_PASSWORD_DEPRECATION, DeprecationWarning, stacklevel=4)
        with warnings.catch_warnings():  # the inner credential's own warning would say it twice
            warnings.simplefilter("ignore", DeprecationWarning)
            return classes[selection.credential](**selection.arguments, **kwargs), ""
    return classes[selection.credential](**selection.arguments, **kwargs), ""


class EnvironmentCredential:
    """A credential configured by environment variables (see the module docstring).

    Keyword arguments (``authority``, ``additionally_allowed_tenants``, ``transport``...) are passed
    to the selected credential.
    """

    def __init__(self, **kwargs: Any) -> None:
        from .certificate import CertificateCredential
        from .client_secret import ClientSecretCredential
        from .username_password import UsernamePasswordCredential

        classes = {
            "ClientSecretCredential": ClientSecretCredential,
            "CertificateCredential": CertificateCredential,
            "UsernamePasswordCredential": UsernamePasswordCredential,
        }
        self._credential, self._unavailable = credential_from_environment(classes, kwargs)

    def _inner(self) -> Any:
        if self._credential is None:
            raise CredentialUnavailableError(message=self._unavailable)
        return self._credential

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """A token from the configured credential (``CredentialUnavailableError`` when there is none)."""
        token: AccessToken = self._inner().get_token(
            *scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs
        )
        return token

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        """A token with its type and refresh time from the configured credential."""
        info: AccessTokenInfo = self._inner().get_token_info(*scopes, options=options)
        return info

    def close(self) -> None:
        if self._credential is not None:
            self._credential.close()

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EnvironmentCredential({self._credential!r})"
