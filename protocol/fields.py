"""Typed reading of the JSON objects an authority sends: every field checked, each failure named.

The wire payloads here are small flat objects (a token response has a dozen fields), so a reader
of typed fields does what a schema library would, without its import time and memory on the path
of the first token (measured by ``python -m conformance bench``; pydantic cost about 90 ms and
11 MiB there). A :class:`Fields` reader collects the names of missing or mistyped fields; the
parser then raises one :class:`~protocol.errors.MalformedResponseError` naming all of them, and
never quotes a value (values may be tokens).

Rules, as the protocol allows them:

* ``null`` counts as absent;
* strings must be JSON strings (numbers are not turned into strings);
* durations (``expires_in``, ``interval``...) are integers, or numeric strings and finite
  numbers as some v1-style endpoints send them, truncated to whole seconds; booleans are refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["Fields"]


class Fields:
    """Reads typed fields from ``body`` and remembers which ones were missing or invalid."""

    __slots__ = ("_body", "invalid")

    def __init__(self, body: Mapping[str, Any]) -> None:
        self._body = body
        self.invalid: list[str] = []

    def _fail(self, name: str) -> None:
        if name not in self.invalid:
            self.invalid.append(name)

    def required_str(self, name: str) -> str:
        """A non-empty string that must be present."""
        value = self._body.get(name)
        if isinstance(value, str) and value:
            return value
        self._fail(name)
        return ""

    def optional_str(self, name: str, default: str | None = None) -> str | None:
        """A string, or ``default`` when absent."""
        value = self._body.get(name)
        if value is None:
            return default
        if isinstance(value, str):
            return value
        self._fail(name)
        return default

    def seconds(
        self, name: str, *, default: int | None = None, minimum: int = 0, maximum: int | None = None
    ) -> int | None:
        """A whole number of seconds within ``[minimum, maximum]``, or ``default`` when absent."""
        value = self._body.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            self._fail(name)
            return default
        seconds: int
        if isinstance(value, int):
            seconds = value
        elif isinstance(value, (float, str)):
            try:
                number = float(value.strip()) if isinstance(value, str) else value
            except ValueError:
                self._fail(name)
                return default
            if not math.isfinite(number):
                self._fail(name)
                return default
            seconds = int(number)
        else:
            self._fail(name)
            return default
        if seconds < minimum or (maximum is not None and seconds > maximum):
            self._fail(name)
            return default
        return seconds

    def int_list(self, name: str) -> list[int]:
        """A list of integers (Entra's ``error_codes``); an empty list when absent."""
        value = self._body.get(name)
        if value is None:
            return []
        if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return list(value)
        self._fail(name)
        return []

    def names(self) -> str:
        """The invalid field names, sorted and comma-separated (``""`` when all were fine)."""
        return ", ".join(sorted(self.invalid))
