"""Shared helpers for the protocol tests.

* request checks that compare *everything* about a request in one assertion (so one failure shows
  every difference): method, URL, the whole form or query, and the envelope headers;
* :class:`Router`, a strict fake authority: a request that matches no route fails loudly, and
  :meth:`Router.assert_all_called` fails for routes that were never used;
* canary values for secrets and tokens, which must never appear in messages or reprs;
* RSA/EC keys and certificates generated once per test session.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx

from protocol.errors import translate_transport_error

# --------------------------------------------------------------------------- constants

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "0f1e2d3c-4b5a-6978-8a9b-acbdcedff001"
PUBLIC_HOST = "https://login.microsoftonline.com"
PUBLIC_TOKEN_URL = f"{PUBLIC_HOST}/{TENANT}/oauth2/v2.0/token"
NOW = 1_700_000_000.25
SCOPE = "https://graph.microsoft.com/.default"

SECRET_CANARY = "CANARY-SECRET-4f9c2a71"
AT_CANARY = "CANARY-AT-8d31be05"
RT_CANARY = "CANARY-RT-2b7e6c19"
ID_TOKEN_CANARY = "CANARY-IDT-9a0d4f33"
PASSWORD_CANARY = "CANARY-PASSWORD-61c0e2"
ASSERTION_CANARY = "CANARY-USER-ASSERTION-3e5a77"
CODE_CANARY = "CANARY-CODE-c4d1f8"
VERIFIER_CANARY = "CANARY-VERIFIER-0123456789abcdefghijklmnopqrstuvwxyz"
DEVICE_CODE_CANARY = "CANARY-DEVICE-CODE-77aa10"

ALL_CANARIES = (
    SECRET_CANARY,
    AT_CANARY,
    RT_CANARY,
    ID_TOKEN_CANARY,
    PASSWORD_CANARY,
    ASSERTION_CANARY,
    CODE_CANARY,
    VERIFIER_CANARY,
    DEVICE_CODE_CANARY,
)


def assert_no_canary(*texts: str) -> None:
    """No canary appears in any of ``texts`` (messages, reprs)."""
    leaks = [(canary, text) for text in texts for canary in ALL_CANARIES if canary in text]
    assert leaks == [], f"secret canaries leaked: {leaks}"


def exception_texts(exc: BaseException) -> tuple[str, str]:
    return str(exc), repr(exc)


# --------------------------------------------------------------------------- request checks


def is_uuid4(value: str | None) -> bool:
    if value is None:
        return False
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return parsed.version == 4 and str(parsed) == value


def form_of(request: httpx.Request) -> dict[str, list[str]]:
    """The request body parsed as a form (every field with all its values)."""
    body = request.read().decode("utf-8")
    if not body:
        return {}
    return parse_qs(body, keep_blank_values=True, strict_parsing=True)


def single_form(request: httpx.Request) -> dict[str, str]:
    """The form as ``name -> value``; fails when a field is repeated."""
    parsed = form_of(request)
    repeated = {name: values for name, values in parsed.items() if len(values) != 1}
    assert repeated == {}, f"repeated form fields: {repeated}"
    return {name: values[0] for name, values in parsed.items()}


def query_of(request: httpx.Request) -> dict[str, list[str]]:
    query = request.url.query.decode("ascii")
    if not query:
        return {}
    return parse_qs(query, keep_blank_values=True, strict_parsing=True)


def url_without_query(request: httpx.Request) -> str:
    return str(request.url.copy_with(query=None))


def _envelope(request: httpx.Request) -> dict[str, Any]:
    return {
        "accept": request.headers.get("accept"),
        "user-agent starts with entra-identity/": request.headers.get("user-agent", "").startswith(
            "entra-identity/"
        ),
        "client-request-id is a UUID4": is_uuid4(request.headers.get("client-request-id")),
    }


_EXPECTED_ENVELOPE = {
    "accept": "application/json",
    "user-agent starts with entra-identity/": True,
    "client-request-id is a UUID4": True,
}


def check_form_post(
    request: httpx.Request,
    *,
    url: str,
    fields: Mapping[str, str],
    headers: Mapping[str, str] | None = None,
) -> None:
    """One assertion over method, URL, the whole form, and the headers of a token request."""
    parsed = form_of(request)
    actual: dict[str, Any] = {
        "method": request.method,
        "url": str(request.url),
        "form": parsed,
        "content-type": request.headers.get("content-type"),
        "fields sent as None or blank": sorted(
            name for name, values in parsed.items() if any(v in ("", "None") for v in values)
        ),
        **_envelope(request),
    }
    expected: dict[str, Any] = {
        "method": "POST",
        "url": url,
        "form": {name: [value] for name, value in fields.items()},
        "content-type": "application/x-www-form-urlencoded",
        "fields sent as None or blank": [],
        **_EXPECTED_ENVELOPE,
    }
    for name, value in (headers or {}).items():
        actual[f"header {name}"] = request.headers.get(name)
        expected[f"header {name}"] = value
    assert actual == expected


def check_get(
    request: httpx.Request, *, url: str, params: Mapping[str, str] | None = None, memoize: bool = True
) -> None:
    """One assertion over method, URL (without query), the whole query, headers and memo flag."""
    from protocol.wire import MEMOIZE

    actual: dict[str, Any] = {
        "method": request.method,
        "url": url_without_query(request),
        "query": query_of(request),
        "body": request.read(),
        "memoize": bool(request.extensions.get(MEMOIZE)),
        **_envelope(request),
    }
    expected: dict[str, Any] = {
        "method": "GET",
        "url": url,
        "query": {name: [value] for name, value in (params or {}).items()},
        "body": b"",
        "memoize": memoize,
        **_EXPECTED_ENVELOPE,
    }
    assert actual == expected


# --------------------------------------------------------------------------- responses


def token_body(access_token: str = AT_CANARY, expires_in: Any = 3599, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"token_type": "Bearer", "access_token": access_token, "expires_in": expires_in}
    body.update(extra)
    return body


def error_body(error: str, *codes: int, description: str | None = None, **extra: Any) -> dict[str, Any]:
    first = f"AADSTS{codes[0]}: " if codes else ""
    body: dict[str, Any] = {
        "error": error,
        "error_description": description
        if description is not None
        else f"{first}Something went wrong.\r\nTrace ID: t-1\r\nCorrelation ID: c-1\r\nTimestamp: 2024-01-01",
        "error_codes": list(codes),
        "timestamp": "2024-01-01 00:00:00Z",
        "trace_id": "0b8f1a7c-0000-4000-8000-000000000001",
        "correlation_id": "5d1e2f3a-0000-4000-8000-000000000002",
    }
    body.update(extra)
    return body


def make_response(
    status: int = 200,
    *,
    json: Any = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    url: str = PUBLIC_TOKEN_URL,
    method: str = "POST",
) -> httpx.Response:
    """A response to a request for ``url`` (what parsers receive from the drivers)."""
    request = httpx.Request(method, url)
    if content is not None:
        return httpx.Response(status, content=content, headers=headers, request=request)
    if json is not None:
        return httpx.Response(status, json=json, headers=headers, request=request)
    return httpx.Response(status, headers=headers, request=request)


@dataclass(frozen=True)
class Reply:
    """A canned answer of the fake authority."""

    status: int = 200
    json: Any = None
    content: bytes | None = None
    headers: Mapping[str, str] | None = None
    delay: float = 0.0

    def to_response(self, request: httpx.Request) -> httpx.Response:
        if self.content is not None:
            return httpx.Response(self.status, content=self.content, headers=self.headers, request=request)
        if self.json is not None:
            return httpx.Response(self.status, json=self.json, headers=self.headers, request=request)
        return httpx.Response(self.status, headers=self.headers, request=request)


def ok(body: Any, **kwargs: Any) -> Reply:
    return Reply(200, json=body, **kwargs)


Answer = Reply | Callable[[httpx.Request], httpx.Response] | httpx.RequestError


@dataclass
class _Route:
    answers: list[Answer]
    calls: list[httpx.Request] = field(default_factory=list)


class Router:
    """A strict fake authority usable as a ``send`` function and as a MockTransport handler.

    Routes are keyed by method and URL without query; each route answers with its replies in order,
    repeating the last one. An unmatched request raises ``AssertionError`` at once.
    """

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], _Route] = {}
        self._lock = threading.Lock()
        self.requests: list[httpx.Request] = []
        self.unmatched: list[str] = []

    def add(self, method: str, url: str, *answers: Answer) -> None:
        assert answers, "a route needs at least one answer"
        self._routes[(method, url)] = _Route(list(answers))

    def _next(self, request: httpx.Request) -> Answer:
        key = (request.method, url_without_query(request))
        with self._lock:
            self.requests.append(request)
            route = self._routes.get(key)
            if route is None:
                self.unmatched.append(f"{request.method} {request.url}")
                raise AssertionError(f"unexpected request {request.method} {request.url}")
            index = min(len(route.calls), len(route.answers) - 1)
            route.calls.append(request)
            return route.answers[index]

    def calls(self, method: str, url: str) -> list[httpx.Request]:
        return list(self._routes[(method, url)].calls)

    def assert_all_called(self) -> None:
        never = sorted(f"{m} {u}" for (m, u), route in self._routes.items() if not route.calls)
        assert (never, self.unmatched) == ([], []), "routes never called / requests unmatched"

    # MockTransport handlers ------------------------------------------------

    def handler(self, request: httpx.Request) -> httpx.Response:
        answer = self._next(request)
        if isinstance(answer, httpx.RequestError):
            raise answer
        if isinstance(answer, Reply):
            if answer.delay:
                time.sleep(answer.delay)
            return answer.to_response(request)
        return answer(request)

    async def ahandler(self, request: httpx.Request) -> httpx.Response:
        answer = self._next(request)
        if isinstance(answer, httpx.RequestError):
            raise answer
        if isinstance(answer, Reply):
            if answer.delay:
                await asyncio.sleep(answer.delay)
            return answer.to_response(request)
        return answer(request)

    # run_sync_flow send ----------------------------------------------------

    def send(self, request: httpx.Request) -> httpx.Response:
        """Like a driver's send: httpx transport failures become ``TransportError``."""
        try:
            return self.handler(request)
        except httpx.RequestError as exc:
            raise translate_transport_error(exc, request) from exc


class FakeClock:
    """A clock the test moves; ``advance`` is also usable as a recorded sleep."""

    def __init__(self, start: float = NOW) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class CertMaterial:
    """Keys and certificates generated once per session (2048-bit RSA)."""

    key: Any
    cert: Any
    ca_key: Any
    ca_cert: Any
    leaf_key: Any
    leaf_cert: Any
    other_key: Any
    ec_key: Any
    ec_cert: Any


def _name(common_name: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject_key: Any, subject: str, issuer_key: Any, issuer: str, *, ca: bool) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


@functools.cache
def cert_material() -> CertMaterial:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    def rsa_key() -> Any:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    key, ca_key, leaf_key, other_key = rsa_key(), rsa_key(), rsa_key(), rsa_key()
    ec_key = ec.generate_private_key(ec.SECP256R1())
    return CertMaterial(
        key=key,
        cert=_certificate(key, "self-signed client", key, "self-signed client", ca=False),
        ca_key=ca_key,
        ca_cert=_certificate(ca_key, "Test CA", ca_key, "Test CA", ca=True),
        leaf_key=leaf_key,
        leaf_cert=_certificate(leaf_key, "leaf client", ca_key, "Test CA", ca=False),
        other_key=other_key,
        ec_key=ec_key,
        ec_cert=_certificate(ec_key, "ec client", ec_key, "ec client", ca=False),
    )


def key_pem(key: Any, password: bytes | None = None) -> bytes:
    from cryptography.hazmat.primitives import serialization

    encryption: Any = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def cert_pem(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def cert_der(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.DER)


def pkcs12_bytes(key: Any, cert: Any, cas: list[Any] | None = None, password: bytes | None = None) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    encryption: Any = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return pkcs12.serialize_key_and_certificates(b"client", key, cert, cas, encryption)


@functools.cache
def client_certificate() -> Any:
    """The self-signed certificate loaded by ``protocol.certificate.load_certificate``."""
    from protocol.certificate import load_certificate

    material = cert_material()
    return load_certificate(key_pem(material.key) + cert_pem(material.cert))


def decode_jwt(
    token: str, public_key: Any, *, algorithm: str, audience: str, check_times: bool = True
) -> dict[str, Any]:
    """Verify the signature and audience with pyjwt.

    ``check_times`` checks ``exp``/``nbf``/``iat`` against the real clock; assertions stamped with a
    fake clock pass ``False``.
    """
    import jwt

    return jwt.decode(
        token,
        public_key,
        algorithms=[algorithm],
        audience=audience,
        options={
            "require": ["exp", "iat", "nbf", "aud", "iss", "sub", "jti"],
            "verify_exp": check_times,
            "verify_nbf": check_times,
            "verify_iat": check_times,
        },
    )


def unverified_claims(token: str) -> dict[str, Any]:
    import jwt

    return jwt.decode(token, options={"verify_signature": False})
