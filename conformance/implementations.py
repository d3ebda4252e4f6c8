"""Implementations under test: adapters that give the scenario suite one way to drive any client.

An :class:`Implementation` builds credentials of a given kind against a :class:`Target` (where the
mock authority listens and which CA to trust) and acquires tokens with them. Sync credentials are
called directly (the HTTPS mock serves from its own threads); async ones are awaited. Adapters
exist for this project's ``identity`` (sync and ``identity.aio``) and for ``azure.identity`` (the
reference client, when installed). Another client can be put through the suite by writing one more
adapter.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import ssl
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = [
    "CAPABILITIES",
    "Implementation",
    "Target",
    "all_implementations",
]

#: Kinds of credential the scenarios use.
CAPABILITIES = (
    "client_secret",
    "certificate",
    "assertion",
    "authorization_code",
    "on_behalf_of",
    "workload_identity",
    "managed_identity",
    "azure_pipelines",
    "default",
)

#: DefaultAzureCredential's exclusions of the developer-tool members (az, pwsh, azd): the scenarios
#: leave them out so a chain never spawns a tool of the machine running the suite.
_DEVELOPER_MEMBERS = (
    "exclude_shared_token_cache_credential",
    "exclude_visual_studio_code_credential",
    "exclude_cli_credential",
    "exclude_powershell_credential",
    "exclude_developer_cli_credential",
)


@dataclass(frozen=True)
class Target:
    """Where the mock authority is reachable.

    Attributes:
        authority: the authority host URL to give credentials (``https://127.0.0.1:PORT``).
        ca_path: a PEM file with the CA that signed the mock's certificate.
    """

    authority: str
    ca_path: str


@dataclass
class Implementation:
    """One client library in one mode.

    Attributes:
        name: e.g. ``identity[sync]``.
        library: ``identity`` or ``azure.identity``.
        mode: ``sync`` or ``async``.
        factories: credential kind -> factory(target, tenant_id, client_id, secret-or-material, **kw);
            ``managed_identity`` and ``default`` take only keyword arguments.
        skips: scenario name -> reason this implementation cannot run it.
    """

    name: str
    library: str
    mode: str
    factories: dict[str, Callable[..., Any]] = field(default_factory=dict)
    skips: dict[str, str] = field(default_factory=dict)

    def supports(self, kind: str) -> bool:
        return kind in self.factories

    def unavailable_error(self) -> type[Exception]:
        """This library's ``CredentialUnavailableError`` (a ``ClientAuthenticationError`` subclass)."""
        if self.library == "identity":
            from identity.errors import CredentialUnavailableError
        else:
            from azure.identity import CredentialUnavailableError
        error: type[Exception] = CredentialUnavailableError
        return error

    def credential(self, kind: str, target: Target, *args: Any, **kwargs: Any) -> Any:
        """A credential of ``kind`` pointed at ``target``."""
        return self.factories[kind](target, *args, **kwargs)

    async def get_token(self, credential: Any, *scopes: str, **kwargs: Any) -> Any:
        """``credential.get_token(...)``, awaited when it is a coroutine."""
        result = credential.get_token(*scopes, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def get_token_info(self, credential: Any, *scopes: str, options: Any = None) -> Any:
        result = credential.get_token_info(*scopes, options=options)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def close(self, credential: Any) -> None:
        result = credential.close()
        if inspect.isawaitable(result):
            await result


# Fast retries: the scenarios exercise retry decisions, not wall-clock waits.
def _identity_options(target: Target, mode: str) -> dict[str, Any]:
    from protocol.retry import RetryPolicy

    context = ssl.create_default_context(cafile=target.ca_path)
    transport: Any
    if mode == "sync":
        transport = httpx.HTTPTransport(verify=context)
    else:
        transport = httpx.AsyncHTTPTransport(verify=context)
    return {
        "authority": target.authority,
        # The mock is not a Microsoft host: Entra's instance discovery would not vouch for it.
        "disable_instance_discovery": True,
        "transport": transport,
        "retry_policy": RetryPolicy(backoff_factor=0.01, backoff_max=0.05),
    }


def _fast_imds_retry() -> Any:
    """IMDS's documented policy (which statuses, how many retries) with waits of a few milliseconds."""
    from protocol.managed_identity.imds import IMDS_RETRY

    return dataclasses.replace(
        IMDS_RETRY,
        backoff_factor=0.01,
        backoff_max=0.05,
        status_backoff=tuple((status, 0.01) for status, _ in IMDS_RETRY.status_backoff),
    )


def _identity(mode: str) -> Implementation:
    module = "identity" if mode == "sync" else "identity.aio"

    def load(name: str) -> Any:
        return getattr(importlib.import_module(module), name)

    def client_secret(target: Target, tenant_id: str, client_id: str, secret: str, **kw: Any) -> Any:
        return load("ClientSecretCredential")(
            tenant_id, client_id, secret, **_identity_options(target, mode), **kw
        )

    def certificate(target: Target, tenant_id: str, client_id: str, pem: bytes, **kw: Any) -> Any:
        return load("CertificateCredential")(
            tenant_id, client_id, certificate_data=pem, **_identity_options(target, mode), **kw
        )

    def authorization_code(
        target: Target, tenant_id: str, client_id: str, code: str, redirect_uri: str, secret: str, **kw: Any
    ) -> Any:
        return load("AuthorizationCodeCredential")(
            tenant_id,
            client_id,
            code,
            redirect_uri,
            client_secret=secret,
            **_identity_options(target, mode),
            **kw,
        )

    def device_code(target: Target, tenant_id: str, client_id: str, prompt: Any, **kw: Any) -> Any:
        return load("DeviceCodeCredential")(
            client_id, tenant_id=tenant_id, prompt_callback=prompt, **_identity_options(target, mode), **kw
        )

    def username_password(
        target: Target, tenant_id: str, client_id: str, username: str, password: str, **kw: Any
    ) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return load("UsernamePasswordCredential")(
                client_id, username, password, tenant_id=tenant_id, **_identity_options(target, mode), **kw
            )

    def assertion(target: Target, tenant_id: str, client_id: str, func: Callable[[], str], **kw: Any) -> Any:
        return load("ClientAssertionCredential")(
            tenant_id, client_id, func, **_identity_options(target, mode), **kw
        )

    def on_behalf_of(
        target: Target, tenant_id: str, client_id: str, secret: str, user_assertion: str, **kw: Any
    ) -> Any:
        return load("OnBehalfOfCredential")(
            tenant_id,
            client_id,
            client_secret=secret,
            user_assertion=user_assertion,
            **_identity_options(target, mode),
            **kw,
        )

    def workload_identity(
        target: Target, tenant_id: str, client_id: str, token_file_path: str, **kw: Any
    ) -> Any:
        return load("WorkloadIdentityCredential")(
            tenant_id=tenant_id,
            client_id=client_id,
            token_file_path=token_file_path,
            **_identity_options(target, mode),
            **kw,
        )

    def managed_identity(target: Target, **kw: Any) -> Any:
        # No transport: managed identity endpoints are plain HTTP on loopback, and Service Fabric's
        # HTTPS endpoint is checked against IDENTITY_SERVER_THUMBPRINT by the credential's own
        # pinning transport, not against the mock's CA.
        return load("ManagedIdentityCredential")(retry_policy=_fast_imds_retry(), **kw)

    def azure_pipelines(
        target: Target,
        tenant_id: str,
        client_id: str,
        service_connection_id: str,
        system_access_token: str,
        **kw: Any,
    ) -> Any:
        return load("AzurePipelinesCredential")(
            tenant_id=tenant_id,
            client_id=client_id,
            service_connection_id=service_connection_id,
            system_access_token=system_access_token,
            **_identity_options(target, mode),
            **kw,
        )

    def default(target: Target, **kw: Any) -> Any:
        # The authority comes from AZURE_AUTHORITY_HOST, as it would in production.
        options = _identity_options(target, mode)
        del options["authority"]
        return load("DefaultAzureCredential")(**dict.fromkeys(_DEVELOPER_MEMBERS, True), **options, **kw)

    return Implementation(
        name=f"identity[{mode}]",
        library="identity",
        mode=mode,
        factories={
            "client_secret": client_secret,
            "certificate": certificate,
            "assertion": assertion,
            "authorization_code": authorization_code,
            "device_code": device_code,
            "username_password": username_password,
            "on_behalf_of": on_behalf_of,
            "workload_identity": workload_identity,
            "managed_identity": managed_identity,
            "azure_pipelines": azure_pipelines,
            "default": default,
        },
    )


def _azure_options(target: Target) -> dict[str, Any]:
    return {
        "authority": target.authority,
        "connection_verify": target.ca_path,
        "retry_backoff_factor": 0.01,
        "retry_backoff_max": 0.05,
    }


def _azure(mode: str) -> Implementation:
    module = "azure.identity" if mode == "sync" else "azure.identity.aio"

    def load(name: str) -> Any:
        return getattr(importlib.import_module(module), name)

    def discovery_off(kw: dict[str, Any]) -> dict[str, Any]:
        # The reference asks the public cloud's instance discovery for unknown hosts unless told not to.
        merged = {"disable_instance_discovery": True}
        merged.update(kw)
        return merged

    def client_secret(target: Target, tenant_id: str, client_id: str, secret: str, **kw: Any) -> Any:
        return load("ClientSecretCredential")(
            tenant_id, client_id, secret, **_azure_options(target), **discovery_off(kw)
        )

    def certificate(target: Target, tenant_id: str, client_id: str, pem: bytes, **kw: Any) -> Any:
        return load("CertificateCredential")(
            tenant_id, client_id, certificate_data=pem, **_azure_options(target), **discovery_off(kw)
        )

    def assertion(target: Target, tenant_id: str, client_id: str, func: Callable[[], str], **kw: Any) -> Any:
        kw.pop("disable_instance_discovery", None)  # the reference's assertion credential never discovers
        return load("ClientAssertionCredential")(tenant_id, client_id, func, **_azure_options(target), **kw)

    def authorization_code(
        target: Target, tenant_id: str, client_id: str, code: str, redirect_uri: str, secret: str, **kw: Any
    ) -> Any:
        return load("AuthorizationCodeCredential")(
            tenant_id, client_id, code, redirect_uri, client_secret=secret, **_azure_options(target), **kw
        )

    def on_behalf_of(
        target: Target, tenant_id: str, client_id: str, secret: str, user_assertion: str, **kw: Any
    ) -> Any:
        return load("OnBehalfOfCredential")(
            tenant_id,
            client_id,
            client_secret=secret,
            user_assertion=user_assertion,
            **_azure_options(target),
            **discovery_off(kw),
        )

    def workload_identity(
        target: Target, tenant_id: str, client_id: str, token_file_path: str, **kw: Any
    ) -> Any:
        return load("WorkloadIdentityCredential")(
            tenant_id=tenant_id,
            client_id=client_id,
            token_file_path=token_file_path,
            **_azure_options(target),
            **kw,
        )

    def managed_identity(target: Target, **kw: Any) -> Any:
        return load("ManagedIdentityCredential")(retry_backoff_factor=0.01, retry_backoff_max=0.05, **kw)

    def azure_pipelines(
        target: Target,
        tenant_id: str,
        client_id: str,
        service_connection_id: str,
        system_access_token: str,
        **kw: Any,
    ) -> Any:
        return load("AzurePipelinesCredential")(
            tenant_id=tenant_id,
            client_id=client_id,
            service_connection_id=service_connection_id,
            system_access_token=system_access_token,
            **_azure_options(target),
            **kw,
        )

    def default(target: Target, **kw: Any) -> Any:
        # Beyond the developer tools, the reference's chain has members that read the machine (the
        # shared token cache, VS Code's sign-in) and, sync only, the OS broker and the browser.
        excluded = [*_DEVELOPER_MEMBERS, "exclude_shared_token_cache_credential"]
        excluded.append("exclude_visual_studio_code_credential")
        if mode == "sync":
            excluded += ["exclude_broker_credential", "exclude_interactive_browser_credential"]
        options = _azure_options(target)
        del options["authority"]  # AZURE_AUTHORITY_HOST names it
        return load("DefaultAzureCredential")(**dict.fromkeys(excluded, True), **options, **discovery_off(kw))

    skips: dict[str, str] = {}
    if mode == "sync":
        skips["username_password_then_refresh"] = (
            "MSAL 1.39's username/password flow first asks the user realm endpoint at the authority's "
            "host without its port (https://127.0.0.1:443/common/userrealm/...), so it cannot reach a "
            "mock on any other port (checked by hand: connection refused on 443)"
        )
    if mode == "async":
        skips["token_response_without_access_token"] = (
            "azure-identity 1.27's async credentials raise a bare KeyError('access_token') for a 200 "
            "response without an access token (a defect of the reference client, checked by hand)"
        )
        skips["custom_authority_reads_metadata"] = (
            "azure-identity's async credentials build '<authority>/<tenant>/oauth2/v2.0/token' "
            "themselves and never read OpenID metadata"
        )
        skips["managed_identity_service_fabric_pin_mismatch"] = (
            "azure-identity 1.27's async Service Fabric credential does not pin: it sends the request "
            "(and its Secret header) with connection_verify=False and accepts any server certificate "
            "(checked by hand: it returns a token from a server whose certificate is not the one in "
            "IDENTITY_SERVER_THUMBPRINT); its sync credential pins through MSAL"
        )

    def device_code(target: Target, tenant_id: str, client_id: str, prompt: Any, **kw: Any) -> Any:
        return load("DeviceCodeCredential")(
            client_id,
            tenant_id=tenant_id,
            prompt_callback=prompt,
            **_azure_options(target),
            **discovery_off(kw),
        )

    def username_password(
        target: Target, tenant_id: str, client_id: str, username: str, password: str, **kw: Any
    ) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return load("UsernamePasswordCredential")(
                client_id,
                username,
                password,
                tenant_id=tenant_id,
                **_azure_options(target),
                **discovery_off(kw),
            )

    # azure-identity has no async device code or username/password credentials (by design).
    users = {"device_code": device_code, "username_password": username_password} if mode == "sync" else {}
    return Implementation(
        name=f"azure.identity[{mode}]",
        library="azure.identity",
        mode=mode,
        factories={
            "client_secret": client_secret,
            "certificate": certificate,
            "assertion": assertion,
            "authorization_code": authorization_code,
            **users,
            "on_behalf_of": on_behalf_of,
            "workload_identity": workload_identity,
            "managed_identity": managed_identity,
            "azure_pipelines": azure_pipelines,
            "default": default,
        },
        skips=skips,
    )


def reference_available() -> bool:
    """True when azure-identity (and, for its async credentials, aiohttp) can be imported."""
    return importlib.util.find_spec("azure.identity") is not None


def all_implementations(*, include_reference: bool = True) -> list[Implementation]:
    """``identity`` sync and async, then ``azure.identity`` sync and async when installed."""
    implementations = [_identity("sync"), _identity("async")]
    if include_reference and reference_available():
        implementations.append(_azure("sync"))
        if importlib.util.find_spec("aiohttp") is not None:
            implementations.append(_azure("async"))
    return implementations
