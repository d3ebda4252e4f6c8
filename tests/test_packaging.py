"""The distribution ships every package of the source tree (a missing subpackage only shows in a
non-editable install)."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

ROOT = Path(__file__).resolve().parents[1]


def test_every_python_package_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("protocol", "cache", "identity", "conformance")
        for init in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert listed == found


def test_every_package_is_typed() -> None:
    for top in ("protocol", "cache", "identity", "conformance"):
        assert (ROOT / top / "py.typed").is_file(), top
