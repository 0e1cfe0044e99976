"""Run the ``>>>`` examples of every library module (pyproject's pytest options do not
collect doctests from lib/, so this test does): an example in a docstring is part of
the API's documentation and must stay true."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib" / "cvbook"


def _modules_with_examples() -> list[str]:
    names = []
    for path in sorted(LIB.rglob("*.py")):
        if "__pycache__" in path.parts or ">>>" not in path.read_text():
            continue
        rel = path.relative_to(LIB.parent).with_suffix("")
        parts = list(rel.parts[:-1]) if rel.name == "__init__" else list(rel.parts)
        names.append(".".join(parts))
    return names


MODULES = _modules_with_examples()


def test_the_shared_homes_have_examples() -> None:
    for name in ("cvbook.core.validate", "cvbook.metrics.pose", "cvbook.geometry.so3",
                 "cvbook.metrics.pointing", "cvbook.metrics.clustering"):
        assert name in MODULES, f"{name} lost its doctest examples"


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
