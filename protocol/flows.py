"""Generator flows: protocol exchanges written once, run by a sync or an async driver.

A flow is a generator that yields what it needs done and receives the outcome:

* it yields an :class:`httpx.Request` and receives the :class:`httpx.Response` (body read); when no
  response could be had, the driver throws :class:`~protocol.errors.TransportError` into the flow
  at that ``yield``;
* it yields :class:`Sleep` and receives ``None`` once the time has passed;
* it yields :class:`~protocol.process.RunProcess` and receives a
  :class:`~protocol.process.ProcessResult` (developer-tool credentials); when the process cannot
  run or times out the driver throws :class:`~protocol.process.ProcessError` into the flow;
* it yields :class:`Call` and receives what its function returned: blocking work the flow cannot
  do itself (waiting for a browser's redirect, a user's callback, file I/O), which the sync driver
  calls in place and the async driver in a worker thread, so an event loop never blocks on it;
  an exception the function raises is thrown into the flow at that ``yield``.

It ``return``\\ s its typed result. The drivers (:mod:`protocol.drivers`) are the only code that
performs I/O or sleeps, so every protocol decision (retries, polling, discovery then token) is
written exactly once for both sync and async callers.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TypeVar

import httpx

from .errors import TransportError
from .process import ProcessResult, RunProcess
from .retry import RetryPolicy, next_retry_delay, parse_retry_after

__all__ = ["Call", "Clock", "Exchange", "Flow", "Sleep", "Step", "call", "exchange", "run_sync_flow"]

T = TypeVar("T")

_LOGGER = logging.getLogger("protocol")


@dataclass(frozen=True, slots=True)
class Sleep:
    """Ask the driver to wait ``seconds`` before resuming the flow."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Call:
    """Ask the driver to run blocking ``function()`` (in a worker thread when async) and send back
    its result."""

    function: Callable[[], object]


Step = httpx.Request | Sleep | RunProcess | Call
Flow = Generator[Step, "httpx.Response | ProcessResult | object | None", T]


def call(function: Callable[[], T]) -> Generator[Step, object, T]:
    """``result = yield from call(f)``: run blocking ``f`` through the driver, typed."""
    result = yield Call(function)
    return result  # type: ignore[return-value]


Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Exchange:
    """The final response of a (possibly retried) request and when its attempt was sent.

    Attributes:
        response: the last response received.
        sent_at: epoch seconds read just before the attempt that produced ``response``.
        attempts: how many attempts were made.
    """

    response: httpx.Response
    sent_at: float
    attempts: int


def exchange(
    build: Callable[[], httpx.Request],
    policy: RetryPolicy,
    *,
    clock: Clock = time.time,
    monotonic: Clock = time.monotonic,
    jitter: Callable[[], float] = random.random,
) -> Flow[Exchange]:
    """Send the request ``build()`` returns, retrying by ``policy``.

    The request is rebuilt for every attempt, so one-time values (a client assertion's ``jti``, a
    ``client-request-id``) are never replayed. Returns the final response whatever its status:
    interpreting it is the parser's job. Re-raises :class:`TransportError` when the last attempt got
    no response.
    """
    start = monotonic()
    retries = 0
    while True:
        request = build()
        sent_at = clock()
        try:
            response = yield request
        except TransportError as failure:
            if not failure.retryable:
                raise
            delay = next_retry_delay(
                policy,
                retries_done=retries,
                status=None,
                retry_after=None,
                elapsed=monotonic() - start,
                jitter_sample=jitter(),
            )
            if delay is None:
                raise
            reason = "no response"
        else:
            if not isinstance(response, httpx.Response):  # pragma: no cover - a driver bug
                raise RuntimeError("the driver resumed a request step without a response")
            if response.status_code not in policy.retry_statuses:
                return Exchange(response, sent_at, retries + 1)
            delay = next_retry_delay(
                policy,
                retries_done=retries,
                status=response.status_code,
                retry_after=parse_retry_after(response.headers, now=clock()),
                elapsed=monotonic() - start,
                jitter_sample=jitter(),
            )
            if delay is None:
                return Exchange(response, sent_at, retries + 1)
            reason = f"HTTP {response.status_code}"
        _LOGGER.debug(
            "%s %s: %s; retry %d in %.2f s",
            request.method,
            request.url.copy_with(query=None),
            reason,
            retries + 1,
            delay,
        )
        retries += 1
        if delay > 0:
            yield Sleep(delay)


def run_sync_flow(flow: Flow[T], send: Callable[[httpx.Request], httpx.Response]) -> T:
    """Run ``flow`` against a plain ``send`` function without sleeping (for tests and tools).

    ``send`` may raise :class:`TransportError`; it is thrown into the flow like a driver would.
    """
    try:
        step = next(flow)
        while True:
            if isinstance(step, Sleep):
                step = flow.send(None)
                continue
            if isinstance(step, RunProcess):
                raise TypeError("run_sync_flow does not run processes; use a driver")
            if isinstance(step, Call):
                try:
                    result = step.function()
                except Exception as exc:  # handed to the flow, as a driver does
                    step = flow.throw(exc)
                else:
                    step = flow.send(result)
                continue
            try:
                response = send(step)
            except TransportError as exc:
                step = flow.throw(exc)
            else:
                step = flow.send(response)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
