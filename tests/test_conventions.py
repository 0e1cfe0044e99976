"""Conventions of the book, checked on every notebook (run by ``make test`` after nbval).

* a ``parameters`` cell with ``preset = "cpu"`` and ``seed``; the Colab bootstrap cell;
* executed top to bottom, in order, without errors, no papermill-injected cell;
* every figure a cell shows is stored (the book needs them);
* listed in ``_toc.yml``; the Colab address in step with ``_config.yml``;
* a results sidecar that follows the schema, whose claims all hold, within the
  3-minute budget; the same for the sidecars of the nbval run when present
  (``NBVAL_RESULTS``), so the budget is checked on this machine too;
* ``book/results.md`` is generated from the sidecars.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cvbook.core.results import load_all_results

pytestmark = pytest.mark.conventions

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BUDGET_S = 180


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found under notebooks/"


def _cells(nb: Path):
    return json.loads(nb.read_text())["cells"]


def _src(cell) -> str:
    return "".join(cell["source"])


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.stem)
def notebook(request) -> Path:
    return request.param


def test_parameters_cell(notebook):
    cells = [c for c in _cells(notebook) if c["cell_type"] == "code"]
    params = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one code cell must be tagged `parameters`"
    src = _src(params[0])
    assert re.search(r'^preset\s*=\s*"cpu"', src, re.M), "parameters must set preset = \"cpu\""
    assert re.search(r"^seed\s*=\s*\d+", src, re.M), "parameters must set seed"
    assert not any("injected-parameters" in c.get("metadata", {}).get("tags", [])
                   for c in _cells(notebook))


def test_bootstrap_cell_comes_first(notebook):
    code = [c for c in _cells(notebook) if c["cell_type"] == "code"]
    first = _src(code[0])
    assert '"google.colab" in sys.modules' in first and "pip install" in first, \
        "the first code cell must be the Colab bootstrap"
    assert not re.search(r"pip install[^\n]*\b(torch|numpy)\b", first), \
        "the bootstrap must not install or pin torch/numpy"


def test_title_citation_badge_runtime(notebook):
    md = _src(_cells(notebook)[0])
    assert md.lstrip().startswith("# "), "the first cell is the chapter's title"
    assert "arxiv.org/abs/" in md, "cite the paper with its arXiv link"
    assert "colab-badge.svg" in md and f"notebooks/{notebook.name}" in md, "Colab badge"
    assert re.search(r"[Rr]untime", md), "state the default preset's runtime"


def test_every_shown_figure_is_stored(notebook):
    """A cell that calls ``plt.show()`` must store its figure. Executing under a non-inline
    matplotlib backend (``MPLBACKEND=Agg``) silently drops every figure from the book."""
    for i, c in enumerate(_cells(notebook)):
        if c["cell_type"] == "code" and "plt.show()" in _src(c):
            assert any("image/png" in o.get("data", {}) for o in c.get("outputs", [])), \
                f"cell {i} shows a figure but stores none (was it executed with MPLBACKEND=Agg?)"


def test_executed_in_order_without_errors(notebook):
    code = [c for c in _cells(notebook) if c["cell_type"] == "code" and _src(c).strip()]
    counts = [c.get("execution_count") for c in code]
    assert None not in counts, "every code cell must be executed (stored outputs)"
    assert counts == list(range(1, len(counts) + 1)), \
        "cells must be executed once, top to bottom (run `make execute`)"
    for c in code:
        for o in c.get("outputs", []):
            assert o.get("output_type") != "error", f"stored error in: {_src(c)[:80]}"


def test_has_asserts_and_claims(notebook):
    src = "\n".join(_src(c) for c in _cells(notebook) if c["cell_type"] == "code")
    assert "assert " in src, "guard the chapter's claims with assert cells"
    assert ".claim(" in src and ".write(" in src, "record claims and write the sidecar"


def test_listed_in_toc(notebook):
    toc = (ROOT / "_toc.yml").read_text()
    assert f"notebooks/{notebook.stem}" in toc


def test_repository_address_in_one_place():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "sync_repo_url.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def _check_sidecars(directory: Path, expected: list[str]):
    by_chapter = {r["chapter"]: r for r in load_all_results(directory)}
    for stem in expected:
        assert stem in by_chapter, f"no results sidecar for {stem} in {directory}"
        r = by_chapter[stem]
        assert r["preset"] == "cpu" and r["seed"] == 0, f"{stem}: sidecar not from the default"
        assert r["runtime_s"] <= BUDGET_S, \
            f"{stem}: default preset took {r['runtime_s']} s (budget {BUDGET_S} s)"
        assert r["claims"], f"{stem}: no claims recorded"
        failing = [c["claim"] for c in r["claims"] if not c["holds"]]
        assert not failing, f"{stem}: claims that do not hold: {failing}"
        assert r["paper"], f"{stem}: record the paper's numbers"


def test_stored_sidecars():
    _check_sidecars(ROOT / "notebooks" / "results", [nb.stem for nb in NOTEBOOKS])


def test_sidecars_of_this_run():
    d = os.environ.get("NBVAL_RESULTS")
    if not d:
        pytest.skip("NBVAL_RESULTS not set (make test sets it after nbval)")
    d = ROOT / d if not Path(d).is_absolute() else Path(d)
    _check_sidecars(d, [nb.stem for nb in NOTEBOOKS])


def test_results_page_is_generated_from_sidecars():
    subprocess.run([sys.executable, str(ROOT / "tools" / "build_results_page.py")], check=True)
    page = (ROOT / "book" / "results.md").read_text()
    for nb in NOTEBOOKS:
        assert nb.stem in page
