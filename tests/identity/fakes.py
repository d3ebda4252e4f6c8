"""An in-process Entra token endpoint that records requests, and the sync/async test driver.

``FakeEntra`` answers from a queue of canned replies (Entra-shaped JSON, HTML pages, transport
errors), then with a fresh token per request (``CANARY-AT-9b2c-<n>``). ``Api`` builds the sync or
async ``ClientSecretCredential`` against it and exposes one awaitable call shape for both, so every
scenario is written once and runs in both modes.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

import httpx

import identity
import identity.aio
from protocol.retry import RetryPolicy

TENANT = "7f0a1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b"
OTHER_TENANT = "c0ffee00-1111-4222-8333-444455556666"
CLIENT_ID = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
SECRET = "CANARY-SECRET-1f3a"
ACCESS_TOKEN = "CANARY-AT-9b2c"
CANARIES = (SECRET, ACCESS_TOKEN)

VAULT = "https://vault.azure.net/.default"
GRAPH = "https://graph.microsoft.com/.default"
STORAGE = "https://storage.azure.com/.default"

NOW = 1_700_000_000.0
CORRELATION_ID = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
TRACE_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

CP1_CLAIMS = {"access_token": {"xms_cc": {"values": ["CP1"]}}}

#: No waiting between retries (the tests assert attempt counts, not timing).
FAST_RETRY = RetryPolicy(backoff_factor=0)


def token_url(tenant: str = TENANT, host: str = "login.microsoftonline.com") -> str:
    return f"https://{host}/{tenant}/oauth2/v2.0/token"


def token_body(access_token: str = ACCESS_TOKEN, expires_in: Any = 3599, **extra: Any) -> dict[str, Any]:
    """A client-credentials success body as Entra sends it."""
    return {
        "token_type": "Bearer",
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": access_token,
        **extra,
    }


def token_response(access_token: str = ACCESS_TOKEN, expires_in: Any = 3599, **extra: Any) -> httpx.Response:
    return httpx.Response(200, json=token_body(access_token, expires_in, **extra))


def error_response(
    status: int, error: str, code: int, description: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    """An Entra error body (https://learn.microsoft.com/entra/identity-platform/reference-error-codes)."""
    full = (
        f"AADSTS{code}: {description}\r\nTrace ID: {TRACE_ID}\r\nCorrelation ID: {CORRELATION_ID}\r\n"
        "Timestamp: 2024-05-01 10:00:00Z"
    )
    body = {
        "error": error,
        "error_description": full,
        "error_codes": [code],
        "timestamp": "2024-05-01 10:00:00Z",
        "trace_id": TRACE_ID,
        "correlation_id": CORRELATION_ID,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }
    return httpx.Response(status, json=body, headers=headers)


def invalid_client() -> httpx.Response:
    return error_response(
        401,
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client "
        "secret value, not the client secret ID, for a secret added to app '" + CLIENT_ID + "'.",
    )


def html_502() -> httpx.Response:
    page = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"
    return httpx.Response(502, text=page, headers={"content-type": "text/html"})


def unavailable_503() -> httpx.Response:
    return error_response(503, "temporarily_unavailable", 90006, "The service is temporarily unavailable.")


def connect_error(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]


class FakeEntra:
    """Records every request; answers queued replies first, then a fresh token per request.

    Strict like respx's ``assert_all_mocked`` / ``assert_all_called``: without a queued reply or a
    ``fallback``, only a token-endpoint ``POST`` is answered; anything else is answered 404 and
    recorded in ``unexpected``. :meth:`verify` (run after every test) fails on unexpected requests
    and on queued replies nobody asked for.
    """

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.unexpected: list[str] = []
        self.delay = 0.0
        #: Called (and awaited, for the async handler) before answering: lets a test hold a request
        #: until something else has happened, with no timing involved.
        self.hold: Callable[[], Any] | None = None
        self.fallback: Callable[[httpx.Request], httpx.Response] | None = None
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()

    def reply(self, *replies: Reply) -> None:
        """Queue replies, used once each in order."""
        self._replies.extend(replies)

    def verify(self) -> None:
        assert not self.unexpected, f"requests nobody expected: {self.unexpected}"
        assert not self._replies, f"{len(self._replies)} queued replies were never requested"

    def _record(self, request: httpx.Request) -> tuple[int, Reply | None]:
        with self._lock:
            self.requests.append(request)
            return len(self.requests), (self._replies.popleft() if self._replies else None)

    def _answer(self, number: int, reply: Reply | None, request: httpx.Request) -> httpx.Response:
        if reply is None and self.fallback is not None:
            reply = self.fallback
        if reply is None:
            if request.method == "POST" and request.url.path.endswith("/token"):
                return token_response(f"{ACCESS_TOKEN}-{number}")
            self.unexpected.append(f"{request.method} {request.url}")
            return httpx.Response(404, json={"error": "not_found"})
        if isinstance(reply, httpx.Response):
            return reply
        return reply(request)

    def handler(self, request: httpx.Request) -> httpx.Response:
        number, reply = self._record(request)
        if self.delay:
            time.sleep(self.delay)
        if self.hold is not None:
            self.hold()
        return self._answer(number, reply, request)

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        number, reply = self._record(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.hold is not None:
            await self.hold()
        return self._answer(number, reply, request)

    @property
    def forms(self) -> list[dict[str, str]]:
        return [form(request) for request in self.requests]

    @property
    def urls(self) -> list[str]:
        return [str(request.url) for request in self.requests]


def form(request: httpx.Request) -> dict[str, str]:
    """The form body as a dict (every field must appear once)."""
    parsed = parse_qs(request.content.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    duplicated = {name: values for name, values in parsed.items() if len(values) != 1}
    assert not duplicated, f"fields sent more than once: {duplicated}"
    return {name: values[0] for name, values in parsed.items()}


def cred_form(scope: str = VAULT, **extra: str) -> dict[str, str]:
    """The exact form of a client-secret token request."""
    return {
        "client_id": CLIENT_ID,
        "grant_type": "client_credentials",
        "scope": scope,
        "client_secret": SECRET,
        **extra,
    }


def cae_form(scope: str = VAULT, claims: dict[str, Any] | None = None) -> dict[str, Any]:
    """Like :func:`cred_form` with ``claims`` decoded (compare with :func:`decoded_form`)."""
    return {**cred_form(scope), "claims": CP1_CLAIMS if claims is None else claims}


def decoded_form(request: httpx.Request) -> dict[str, Any]:
    fields: dict[str, Any] = form(request)
    if "claims" in fields:
        fields["claims"] = json.loads(fields["claims"])
    return fields


def error_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def assert_no_canary(*texts: str) -> None:
    for text in texts:
        for canary in CANARIES:
            assert canary not in text, f"{canary!r} leaked into {text!r}"


def assert_exception_has_no_canary(exc: BaseException) -> None:
    for link in error_chain(exc):
        assert_no_canary(str(link), repr(link), *(str(arg) for arg in link.args))


class FakeClock:
    """Epoch seconds that only move when told to."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ClosingTransport(httpx.MockTransport):
    """A mock transport that remembers whether the client that owns it closed it."""

    closed = False

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


class Api:
    """The sync or async credential behind one awaitable call shape."""

    def __init__(self, mode: str, entra: FakeEntra, clock: FakeClock) -> None:
        self.mode = mode
        self.entra = entra
        self.clock = clock
        self.opened: list[Any] = []

    @property
    def handler(self) -> Callable[[httpx.Request], Any]:
        return self.entra.handler if self.mode == "sync" else self.entra.async_handler

    def credential(
        self,
        tenant_id: str = TENANT,
        client_id: str = CLIENT_ID,
        client_secret: str = SECRET,
        **kwargs: Any,
    ) -> Any:
        kwargs.setdefault("retry_policy", FAST_RETRY)
        if "http_client" not in kwargs:
            kwargs.setdefault("transport", httpx.MockTransport(self.handler))
        cls = identity.ClientSecretCredential if self.mode == "sync" else identity.aio.ClientSecretCredential
        credential = cls(tenant_id, client_id, client_secret, **kwargs)
        # The core reads its clock (time.time, captured at construction) for request times,
        # expiry and freshness. There is no public clock parameter, so tests swap in a fake one to
        # make expires_on / refresh_on exact and to move time forward without sleeping.
        credential._core.clock = self.clock
        self.opened.append(credential)
        return credential

    def http_client(self, transport: httpx.MockTransport) -> Any:
        if self.mode == "sync":
            return httpx.Client(transport=transport)
        return httpx.AsyncClient(transport=transport)

    async def get_token(self, credential: Any, *scopes: str, **kwargs: Any) -> Any:
        result = credential.get_token(*scopes, **kwargs)
        return await result if self.mode == "async" else result

    async def get_token_info(self, credential: Any, *scopes: str, options: Any = None) -> Any:
        result = credential.get_token_info(*scopes, options=options)
        return await result if self.mode == "async" else result

    async def close(self, credential: Any) -> None:
        result = credential.close()
        if self.mode == "async":
            await result

    async def token_inside_context(self, credential: Any, *scopes: str) -> Any:
        """Enter the credential as a context manager, get a token, exit."""
        if self.mode == "sync":
            with credential as entered:
                assert entered is credential
                return credential.get_token(*scopes)
        async with credential as entered:
            assert entered is credential
            return await credential.get_token(*scopes)

    async def concurrently(
        self, credential: Any, scope_sets: Sequence[Iterable[str]], *, return_exceptions: bool = False
    ) -> list[Any]:
        """``get_token`` from one thread (sync) or one task (async) per scope set, all at once."""
        calls = [tuple(scopes) for scopes in scope_sets]
        if self.mode == "async":
            return list(
                await asyncio.gather(
                    *(credential.get_token(*scopes) for scopes in calls), return_exceptions=return_exceptions
                )
            )
        barrier = threading.Barrier(len(calls))

        def call(scopes: tuple[str, ...]) -> Any:
            barrier.wait(timeout=10)
            try:
                return credential.get_token(*scopes)
            except Exception as exc:
                if return_exceptions:
                    return exc
                raise

        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            return list(pool.map(call, calls))

    @property
    def callers(self) -> int:
        """How many concurrent callers a concurrency test uses in this mode."""
        return 64 if self.mode == "sync" else 1000


def fields(info: Any) -> tuple[str, int, str, int | None]:
    """An ``AccessTokenInfo`` as a tuple (azure-core's class has no ``__eq__``)."""
    return (info.token, info.expires_on, info.token_type, info.refresh_on)


def new_request_id_is_uuid(request: httpx.Request) -> bool:
    try:
        uuid.UUID(request.headers["client-request-id"])
    except (KeyError, ValueError):
        return False
    return True
