"""The parent's mount of the mock authority: HTTPS on 127.0.0.1, server-side latency, a counter.

:class:`BenchAuthority` wraps :meth:`conformance.authority.MockAuthority.handle` for
:class:`conformance.server.HttpsServer` (``TCP_NODELAY`` on every socket, listen backlog 128, one
thread per connection), mounts the same handler over plain HTTP too (:class:`conformance.server.HttpServer`,
``http_url``: the managed-identity endpoints, IMDS's among them, are plain HTTP in real life) and
adds two things the benchmark needs:

* a constant latency, applied in the server's connection thread before the authority answers, so
  concurrent requests wait in parallel exactly as they would on a slow network (a client-side delay
  would measure the client's scheduling instead);
* a control endpoint, ``GET /_bench/requests``, that answers how many requests the authority has
  recorded, by endpoint. Children read it between the phases of a workload to count the round trips
  each phase cost. Control requests are neither delayed nor recorded by the authority.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from types import TracebackType

import httpx

from conformance.authority import MockAuthority
from conformance.bench.workloads import CONTROL_PATH
from conformance.server import HttpServer, HttpsServer

__all__ = ["CONTROL_PATH", "BenchAuthority"]


class BenchAuthority:
    """The mock authority with default tenant and app, served over HTTPS for benchmark children.

    Use as a context manager; ``url``, ``ca_path`` and ``http_url`` (the plain-HTTP mount of the same
    authority, for managed identity) are set once started. ``latency`` (seconds)
    may be changed between children; it applies to every authority request that arrives after it.
    """

    def __init__(self, *, token_lifetime: int = 3600) -> None:
        self.authority = MockAuthority.with_defaults(token_lifetime=token_lifetime)
        self._latency = 0.0
        self._lock = threading.Lock()
        self._server = HttpsServer(self.handle)
        self._http_server = HttpServer(self.handle)

    @property
    def latency(self) -> float:
        """Seconds every authority request waits, server-side, before it is answered."""
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        if not 0 <= seconds <= 10:
            raise ValueError("latency must be between 0 and 10 seconds")
        with self._lock:
            self._latency = seconds

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def http_url(self) -> str:
        """Origin of the plain-HTTP mount (``http://127.0.0.1:PORT``): IMDS's host for children."""
        return self._http_server.url

    @property
    def ca_path(self) -> str:
        return self._server.ca_path

    def request_count(self) -> int:
        """Requests the authority recorded so far (control requests excluded)."""
        with self.authority.lock:
            return len(self.authority.requests)

    def counts(self) -> dict[str, int]:
        """Recorded requests by endpoint name, plus ``total``."""
        with self.authority.lock:
            by_endpoint = Counter(recorded.endpoint for recorded in self.authority.requests)
        return {"total": sum(by_endpoint.values()), **by_endpoint}

    def reset(self) -> None:
        """Forget recorded requests (between children; issued tokens stay valid)."""
        self.authority.reset_requests()

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer the control endpoint, or wait ``latency`` and let the authority answer."""
        if request.url.path == CONTROL_PATH:
            return httpx.Response(
                200, headers={"content-type": "application/json"}, content=json.dumps(self.counts())
            )
        delay = self._latency
        if delay:
            time.sleep(delay)
        return self.authority.handle(request)

    def start(self) -> BenchAuthority:
        self._server.start()
        try:
            self._http_server.start()
        except BaseException:
            self._server.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            self._http_server.stop()
        finally:
            self._server.stop()

    def __enter__(self) -> BenchAuthority:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
