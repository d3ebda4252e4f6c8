"""The async twins mirror their sync classes exactly: CI fails if the hand-kept copies drift.

Constructors differ only in the annotations of ``transport`` and ``http_client`` (sync vs async
httpx types); ``get_token`` and ``get_token_info`` take the same parameters.
"""

from __future__ import annotations

import inspect

import pytest

import identity
import identity.aio

TWINS = [name for name in identity.aio.__all__ if name.endswith("Credential")]


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


@pytest.mark.parametrize("name", TWINS)
def test_constructor_signatures_match(name: str) -> None:
    ignore = frozenset({"transport", "http_client"})
    assert _shape(getattr(identity.aio, name).__init__, ignore_annotations=ignore) == _shape(
        getattr(identity, name).__init__, ignore_annotations=ignore
    )


@pytest.mark.parametrize("name", TWINS)
@pytest.mark.parametrize("method", ["get_token", "get_token_info"])
def test_method_signatures_match(name: str, method: str) -> None:
    assert _shape(getattr(getattr(identity.aio, name), method)) == _shape(
        getattr(getattr(identity, name), method)
    )


@pytest.mark.parametrize("name", TWINS)
def test_docstrings_point_at_the_sync_class(name: str) -> None:
    doc = getattr(identity.aio, name).__doc__ or ""
    assert "(async)" in doc or f"identity.{name}" in doc
