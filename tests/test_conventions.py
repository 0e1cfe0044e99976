"""Conventions of the book, checked on every notebook (run by ``make test`` after nbval).

* a ``parameters`` cell with ``preset = "cpu"`` and ``seed``; the bootstrap cell
  (``try: import cvbook`` / ``except ImportError: %pip install``, input hidden in the book);
* nbval compares text only in cells tagged ``nbval-check-output`` (``--nbval-lax``), and
  every notebook has some; trained numbers are compared by value instead: the nbval run's
  sidecars (``NBVAL_RESULTS``) against the stored ones, each metric within its stored
  tolerance (``cvbook.core.results.compare_metrics``);
* ``notebooks/results/<chapter>.seeds.json`` (``make seeds``): seeds 0, 1, 2, every claim
  holding on every seed, the same claims as the stored sidecar;
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

from cvbook.core.results import SEEDS_SUFFIX, compare_metrics, load_all_results

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
    """The first code cell installs cvbook only where it is missing (Colab, Kaggle, a
    downloaded notebook in any Jupyter), from the address of ``_config.yml``, and is hidden
    in the HTML book."""
    code = [c for c in _cells(notebook) if c["cell_type"] == "code"]
    first = _src(code[0])
    assert re.search(r"^try:\n\s+import cvbook\b.*\nexcept ImportError:\n\s+%pip install ",
                     first, re.M | re.S), \
        "the first code cell must be the bootstrap: try: import cvbook / except ImportError: " \
        "%pip install ... (CONTRIBUTING.md)"
    assert '"cvbook @ git+https://github.com/' in first, "install cvbook from the repository"
    assert "google.colab" not in first, "the bootstrap must work outside Colab too"
    assert not re.search(r"pip install[^\n]*\b(torch|numpy)\b", first), \
        "the bootstrap must not install or pin torch/numpy"
    tags = code[0].get("metadata", {}).get("tags", [])
    assert "bootstrap" in tags and ({"hide-input", "remove-input"} & set(tags)), \
        "tag the bootstrap cell `bootstrap` and `hide-input` (its input is hidden in the book)"


def test_checked_cells(notebook):
    """``make nbval`` runs with ``--nbval-lax``: only cells tagged ``nbval-check-output`` have
    their text compared, so every chapter must tag its deterministic cells."""
    cells = [c for c in _cells(notebook) if c["cell_type"] == "code"]
    checked = [c for c in cells if "nbval-check-output" in c.get("metadata", {}).get("tags", [])]
    assert checked, "tag the cells that are deterministic by construction nbval-check-output"
    for c in checked:
        tags = c["metadata"]["tags"]
        assert "nbval-ignore-output" not in tags, f"both checked and ignored: {_src(c)[:60]}"
        assert c.get("outputs"), f"a checked cell with no output checks nothing: {_src(c)[:60]}"


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


def test_intro_links_every_chapter(notebook):
    intro = (ROOT / "book" / "intro.md").read_text()
    assert f"(../notebooks/{notebook.name})" in intro, "link the chapter from book/intro.md"


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


def _nbval_results() -> Path:
    d = os.environ.get("NBVAL_RESULTS")
    if not d:
        pytest.skip("NBVAL_RESULTS not set (make test sets it after nbval)")
    return ROOT / d if not Path(d).is_absolute() else Path(d)


def test_sidecars_of_this_run():
    _check_sidecars(_nbval_results(), [nb.stem for nb in NOTEBOOKS])


def test_metrics_of_this_run_match_the_stored_ones():
    """The regression test of trained numbers: the nbval run's metrics against the stored
    sidecar's, each within the tolerance the chapter declared (exactly when none)."""
    run = {r["chapter"]: r for r in load_all_results(_nbval_results())}
    stored = {r["chapter"]: r for r in load_all_results(ROOT / "notebooks" / "results")}
    problems = []
    for nb in NOTEBOOKS:
        if nb.stem in run and nb.stem in stored:
            problems += compare_metrics(stored[nb.stem], run[nb.stem])
    assert not problems, "metrics moved past their tolerance:\n" + "\n".join(problems)


def test_seeds_file(notebook):
    """``make seeds`` ran the default preset with seeds 0, 1, 2; each claim holds on each."""
    path = ROOT / "notebooks" / "results" / f"{notebook.stem}{SEEDS_SUFFIX}"
    assert path.is_file(), f"no {path.name}: run `make seeds NB=notebooks/{notebook.name}`"
    data = json.loads(path.read_text())
    assert isinstance(data["seeds"], dict), "seeds must map each seed to its record"
    by_seed = {int(k): rec for k, rec in data["seeds"].items()}
    assert all(rec["seed"] == k for k, rec in by_seed.items()), "a record under the wrong seed"
    assert sorted(by_seed) == [0, 1, 2], f"seeds {sorted(by_seed)}, expected [0, 1, 2]"
    stored = {r["chapter"]: r for r in load_all_results(ROOT / "notebooks" / "results")}
    expected = {c["claim"] for c in stored[notebook.stem]["claims"]}
    for s_, rec in sorted(by_seed.items()):
        assert "error" not in rec, f"seed {s_} failed: {rec['error']}"
        assert rec.get("commit"), f"seed {s_}: no commit recorded"
        assert rec.get("dirty") is False, \
            f"seed {s_} was measured on a tree with uncommitted changes: re-run `make seeds`"
        failing = [c["claim"] for c in rec["claims"] if not c["holds"]]
        assert not failing, f"seed {s_}: claims that do not hold: {failing}"
        got = {c["claim"] for c in rec["claims"]}
        assert got == expected, (f"seed {s_}: claims differ from the stored sidecar's: missing "
                                 f"{sorted(expected - got)}, extra {sorted(got - expected)}")
    # seed 0 is the stored run: a notebook re-executed without re-running seeds shows here
    st = stored[notebook.stem]
    moved = compare_metrics(st, {**st, "metrics": by_seed[0]["metrics"],
                                 "claims": by_seed[0]["claims"]})
    assert not moved, (f"seed 0 of {path.name} differs from the stored sidecar (re-run `make "
                       "seeds`):\n" + "\n".join(moved))


def test_results_page_is_generated_from_sidecars():
    subprocess.run([sys.executable, str(ROOT / "tools" / "build_results_page.py")], check=True)
    page = (ROOT / "book" / "results.md").read_text()
    for nb in NOTEBOOKS:
        title = next(re.search(r"^#\s+(.+)$", _src(c), re.M).group(1).strip()
                     for c in _cells(nb) if c["cell_type"] == "markdown"
                     and re.search(r"^#\s+", _src(c), re.M))
        assert f"\n## {title}\n" in page, f"no section titled {title!r} on the results page"
        assert f"(../notebooks/{nb.name})" in page


DEPRECATED_MODULES = ("cvbook.nn.cnn", "cvbook.nn.convnet", "cvbook.nn.feature_cnn",
                      "cvbook.core._validate")


def test_notebooks_import_public_names_only(notebook):
    """Notebooks teach the public API: no deprecated module, no private (``_name``) module
    or name imported from cvbook (a shell or magic line is skipped)."""
    import ast

    for i, c in enumerate(_cells(notebook)):
        if c["cell_type"] != "code":
            continue
        src = "\n".join(line for line in _src(c).splitlines()
                        if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cvbook"):
                mods, names = [node.module], [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names if a.name.startswith("cvbook")]
                names = []
            else:
                continue
            for m in mods:
                assert m not in DEPRECATED_MODULES, f"cell {i} imports deprecated {m}"
                assert not any(p.startswith("_") for p in m.split(".")), \
                    f"cell {i} imports the private module {m}"
            assert not [n for n in names if n.startswith("_")], \
                f"cell {i} imports private names {names} from {mods}"
