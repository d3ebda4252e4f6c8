"""The async twins mirror their sync classes exactly: CI fails if the hand-kept copies drift.

Constructors differ only in the annotations of ``transport`` and ``http_client`` (sync vs async
httpx types); ``get_token`` and ``get_token_info`` take the same parameters.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest

import identity
import identity.aio

#: Credentials whose modules exist before the package exports them: name -> module in both packages.
_NOT_YET_EXPORTED: dict[str, str] = {}

TWINS = sorted(
    {name for name in identity.aio.__all__ if name.endswith("Credential")} | set(_NOT_YET_EXPORTED)
)


def _twins(name: str) -> tuple[Any, Any]:
    """The sync class and its async twin."""
    if name in identity.aio.__all__:
        return getattr(identity, name), getattr(identity.aio, name)
    module = _NOT_YET_EXPORTED[name]
    sync = importlib.import_module(f"identity.{module}")
    aio = importlib.import_module(f"identity.aio.{module}")
    return getattr(sync, name), getattr(aio, name)


def _shape(function: object, *, ignore_annotations: frozenset[str] = frozenset()) -> list[tuple[object, ...]]:
    signature = inspect.signature(function)  # type: ignore[arg-type]
    return [
        (
            p.name,
            p.kind,
            p.default,
            None if p.name in ignore_annotations else p.annotation,
        )
        for p in signature.parameters.values()
    ]


#: Keywords only the sync class has, as in azure-identity (its interactive and broker members are sync only).
_SYNC_ONLY = {
    "DefaultAzureCredential": {
        "exclude_interactive_browser_credential",
        "exclude_broker_credential",
        "interactive_browser_tenant_id",
        "interactive_browser_client_id",
        "broker_tenant_id",
        "broker_client_id",
    }
}


@pytest.mark.parametrize("name", TWINS)
def test_constructor_signatures_match(name: str) -> None:
    ignore = frozenset({"transport", "http_client"})
    sync, aio = _twins(name)
    sync_only = _SYNC_ONLY.get(name, set())
    expected = [p for p in _shape(sync.__init__, ignore_annotations=ignore) if p[0] not in sync_only]
    assert _shape(aio.__init__, ignore_annotations=ignore) == expected


@pytest.mark.parametrize("name", TWINS)
@pytest.mark.parametrize("method", ["get_token", "get_token_info"])
def test_method_signatures_match(name: str, method: str) -> None:
    sync, aio = _twins(name)
    assert _shape(getattr(aio, method)) == _shape(getattr(sync, method))


@pytest.mark.parametrize("name", TWINS)
def test_docstrings_point_at_the_sync_class(name: str) -> None:
    doc = _twins(name)[1].__doc__ or ""
    assert "(async)" in doc or f"identity.{name}" in doc
