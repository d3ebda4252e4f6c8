"""``CertificateCredential``: an application authenticates with a certificate.

The certificate (PEM with its private key, or PKCS#12) signs a fresh client assertion for every
token request (:mod:`protocol.certificate`). The assertion is PS256 with ``x5t#S256``, Entra's
current guidance (azure-identity's sync class still signs RS256 through MSAL; Entra accepts both);
for the ``adfs`` tenant it is RS256 with ``x5t``, which AD FS requires. With
``send_certificate_chain=True`` the chain goes in ``x5c`` (subject name / issuer authentication).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from protocol.certificate import Algorithm, ClientCertificate, load_certificate
from protocol.client_auth import CertificateAssertion
from protocol.drivers import SyncDriver
from protocol.retry import RetryPolicy

from .core import TokenCore
from .credential import SyncCredential
from .persistence_options import TokenCachePersistenceOptions
from .service_principal import check_ids, service_principal_core
from .settings import attach_persistent_cache, constructor_options

__all__ = ["CertificateCredential", "certificate_auth", "certificate_core", "load_client_certificate"]


def load_client_certificate(
    certificate_path: str | None, certificate_data: bytes | None, password: str | bytes | None
) -> ClientCertificate:
    """Load a certificate from a path or bytes (exactly one); ``ValueError`` says what is wrong."""
    if certificate_path and certificate_data:
        raise ValueError('Please specify either "certificate_path" or "certificate_data", not both')
    if certificate_path:
        try:
            data = Path(certificate_path).read_bytes()
        except OSError as exc:
            raise ValueError(
                f"Could not read the certificate file {certificate_path!r}: {exc.strerror or exc}."
            ) from exc
    elif certificate_data:
        data = certificate_data
    else:
        raise ValueError(
            'CertificateCredential requires a value for "certificate_path" or "certificate_data"'
        )
    return load_certificate(data, password)


def certificate_auth(
    tenant_id: str, certificate: ClientCertificate, send_chain: bool
) -> CertificateAssertion:
    """PS256 with ``x5t#S256`` (Entra's guidance); RS256 with ``x5t`` for AD FS, which requires it."""
    algorithm: Algorithm = "RS256" if tenant_id.lower() == "adfs" else "PS256"
    return CertificateAssertion(certificate, algorithm=algorithm, send_chain=send_chain)


def certificate_core(
    credential: str,
    tenant_id: str,
    client_id: str,
    *,
    certificate_path: str | None,
    certificate_data: bytes | None,
    password: str | bytes | None,
    send_certificate_chain: bool,
    authority: str | None,
    disable_instance_discovery: bool,
    additionally_allowed_tenants: list[str] | None,
    retry_policy: RetryPolicy | None,
) -> TokenCore:
    """Validate the arguments, load the certificate and build the token core."""
    check_ids(tenant_id, client_id)
    certificate = load_client_certificate(certificate_path, certificate_data, password)
    client_auth = certificate_auth(tenant_id, certificate, send_certificate_chain)
    return service_principal_core(
        credential,
        tenant_id,
        client_id,
        client_auth,
        authority=authority,
        disable_instance_discovery=disable_instance_discovery,
        additionally_allowed_tenants=additionally_allowed_tenants,
        retry_policy=retry_policy,
    )


class CertificateCredential(SyncCredential):
    """Authenticates as a service principal using a certificate.

    Args:
        tenant_id: ID of the application's Microsoft Entra tenant.
        client_id: the application's client ID.
        certificate_path: path to a PEM file (private key and certificate) or a PKCS#12 file.

    Keyword Args:
        certificate_data: the certificate's bytes instead of a path (exactly one of the two).
        password: the certificate's password, if it has one.
        send_certificate_chain: send the certificate chain (``x5c``) for subject name / issuer
            authentication.
        authority, disable_instance_discovery, additionally_allowed_tenants, transport,
        http_client, retry_policy: as :class:`identity.ClientSecretCredential`.

    Raises:
        ValueError: both or neither of path and data, an unreadable file, a wrong password, a
            non-RSA key, or an invalid tenant id or authority.
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        certificate_path: str | None = None,
        *,
        certificate_data: bytes | None = None,
        password: str | bytes | None = None,
        send_certificate_chain: bool = False,
        authority: str | None = None,
        disable_instance_discovery: bool = False,
        additionally_allowed_tenants: list[str] | None = None,
        cache_persistence_options: TokenCachePersistenceOptions | None = None,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        retry_policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        http = constructor_options(self, locals())
        self._core = certificate_core(
            type(self).__name__,
            tenant_id,
            client_id,
            certificate_path=certificate_path,
            certificate_data=certificate_data,
            password=password,
            send_certificate_chain=send_certificate_chain,
            authority=authority,
            disable_instance_discovery=disable_instance_discovery,
            additionally_allowed_tenants=additionally_allowed_tenants,
            retry_policy=http.retry_policy,
        )
        attach_persistent_cache(self._core, http)
        self._driver = SyncDriver(client=http_client, transport=transport, client_options=http.client_options)
