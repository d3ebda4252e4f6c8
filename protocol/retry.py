"""The retry policy: a pure decision function, applied by :func:`protocol.flows.exchange`.

Retried: HTTP 408, 429, 500, 502, 503, 504 and transport failures (no response). Never retried:
any other status, in particular OAuth errors such as ``invalid_grant`` or ``invalid_client``
(HTTP 400/401), which would only fail again and may lock an account.

The wait before retry *n* (1-based) is the server's ``Retry-After`` (seconds or an HTTP date, or
``retry-after-ms`` / ``x-ms-retry-after-ms`` in milliseconds) when given, else exponential backoff
``backoff_factor * 2 ** (n - 1)`` with +/- ``jitter`` spread, capped at ``backoff_max``. A
``Retry-After`` beyond ``retry_after_max``, or a wait that would pass the overall ``deadline``,
stops retrying at once: the caller gets the error now instead of a hang.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

__all__ = ["RETRYABLE_STATUS", "RetryPolicy", "next_retry_delay", "parse_retry_after"]

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a request is retried. All durations in seconds.

    Attributes:
        max_retries: retries after the first attempt (so ``max_retries + 1`` attempts at most).
        backoff_factor: base of the exponential backoff.
        backoff_max: cap of one computed backoff wait.
        retry_after_max: the longest server-requested wait honoured; longer means "give up now".
        deadline: overall budget from the first attempt; no retry starts after it.
        jitter: fraction of spread applied to computed backoff (0.2 = +/- 20 %).
        retry_statuses: the HTTP statuses that are retried.
        status_backoff: ``(status, factor)`` pairs: responses with ``status`` back off with
            ``factor`` instead of ``backoff_factor`` (IMDS asks for longer waits on 410).
    """

    max_retries: int = 3
    backoff_factor: float = 0.8
    backoff_max: float = 30.0
    retry_after_max: float = 60.0
    deadline: float = 120.0
    jitter: float = 0.2
    retry_statuses: frozenset[int] = RETRYABLE_STATUS
    status_backoff: tuple[tuple[int, float], ...] = ()

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.backoff_factor < 0 or self.deadline < 0:
            raise ValueError("RetryPolicy values must not be negative")
        if any(factor < 0 for _, factor in self.status_backoff):
            raise ValueError("RetryPolicy values must not be negative")

    def factor_for(self, status: int | None) -> float:
        """The backoff factor for a response with ``status`` (``None``: no response)."""
        for code, factor in self.status_backoff:
            if code == status:
                return factor
        return self.backoff_factor


#: A policy that never retries (one attempt).
NO_RETRY = RetryPolicy(max_retries=0)


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, or ``None`` when it did not say (or said nonsense)."""
    lowered = headers if isinstance(headers, httpx.Headers) else {k.lower(): v for k, v in headers.items()}
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        raw = lowered.get(name)
        if raw is not None:
            try:
                millis = float(raw)
            except ValueError:
                continue
            if math.isfinite(millis) and millis >= 0:
                return millis / 1000.0
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        import email.utils  # HTTP dates are rare in Retry-After (Entra sends seconds)

        try:
            when = email.utils.parsedate_to_datetime(raw)
            if when.tzinfo is None:
                return None
            moment = when.timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        current = time.time() if now is None else now
        return max(0.0, moment - current)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def next_retry_delay(
    policy: RetryPolicy,
    *,
    retries_done: int,
    status: int | None,
    retry_after: float | None,
    elapsed: float,
    jitter_sample: float,
) -> float | None:
    """Decide whether to retry, and after how long.

    Args:
        policy: the policy in force.
        retries_done: retries already made for this request (0 after the first attempt).
        status: the HTTP status received, or ``None`` for a transport failure.
        retry_after: the server's requested wait (see :func:`parse_retry_after`), if any.
        elapsed: seconds since the first attempt started.
        jitter_sample: a number in ``[0, 1)``; the caller supplies randomness so this stays pure.

    Returns:
        The wait in seconds before the next attempt, or ``None`` to stop and report the failure.
    """
    if retries_done >= policy.max_retries:
        return None
    if status is not None and status not in policy.retry_statuses:
        return None
    if retry_after is not None:
        if retry_after > policy.retry_after_max:
            return None
        delay = retry_after
    else:
        base = policy.factor_for(status) * (2.0 ** min(retries_done, 64))
        spread = policy.jitter * (2.0 * jitter_sample - 1.0)
        delay = min(policy.backoff_max, max(0.0, base * (1.0 + spread)))
    if elapsed + delay > policy.deadline:
        return None
    return delay
