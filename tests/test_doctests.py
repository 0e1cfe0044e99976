"""Run the ``>>>`` examples in the docstrings of every module of the shared homes, so
``pytest tests`` keeps them true. Homes that do not exist (yet) and modules without
examples are left out at collection."""

import doctest
import importlib
import importlib.util
import pkgutil

import pytest

HOMES = ["core", "image", "geometry", "render", "nn", "metrics", "viz", "data", "cluster"]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _own_tests(name: str) -> list[doctest.DocTest]:
    """The module's own examples (re-exported objects are tested in their home module)."""
    mod = importlib.import_module(name)
    found = doctest.DocTestFinder(exclude_empty=True).find(mod, name)
    return [t for t in found if t.examples and t.filename == getattr(mod, "__file__", None)]


def _modules() -> list[str]:
    names = []
    for home in HOMES:
        name = f"cvbook.{home}"
        if importlib.util.find_spec(name) is None:
            continue
        names.append(name)
        mod = importlib.import_module(name)
        if hasattr(mod, "__path__"):
            names += [m.name for m in pkgutil.walk_packages(mod.__path__, prefix=name + ".")]
    return sorted(n for n in set(names) if _own_tests(n))


@pytest.mark.parametrize("name", _modules())
def test_doctests(name):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = []
    for t in _own_tests(name):
        runner.run(t, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(report)
