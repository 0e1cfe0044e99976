"""tools/: the repository-address sync rewrites only the book's own links; the results
page has one section per chapter with per-seed claims and the paper's numbers."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


sync_repo_url = _tool("sync_repo_url")
build_results_page = _tool("build_results_page")

OLD = "https://github.com/old-owner/cvbook"
NEW = "https://github.com/new-owner/cvbook-book"
TEXT = f"""[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/old-owner/cvbook/blob/main/notebooks/07_c3dpo.ipynb)
    %pip install -q "cvbook @ git+{OLD}"
Issues: {OLD}/issues. The official code: https://github.com/facebookresearch/c3dpo_nrsfm
and https://github.com/old-owner/other-project (another repository of the same owner), and
a Colab link to someone else's notebook:
https://colab.research.google.com/github/facebookresearch/c3dpo_nrsfm/blob/main/demo.ipynb
"""


def test_sync_rewrites_the_books_own_links_only():
    out = sync_repo_url.sync(TEXT, NEW, "main")
    assert "colab.research.google.com/github/new-owner/cvbook-book/blob/main/notebooks/" \
        "07_c3dpo.ipynb" in out
    assert f'"cvbook @ git+{NEW}"' in out
    assert f"Issues: {NEW}/issues." in out
    # never a link to another repository, even one of the same owner or on Colab
    assert "https://github.com/facebookresearch/c3dpo_nrsfm\n" in out
    assert "https://github.com/old-owner/other-project" in out
    assert "colab.research.google.com/github/facebookresearch/c3dpo_nrsfm/blob/main/" \
        "demo.ipynb" in out
    assert "old-owner/cvbook/" not in out and "old-owner/cvbook\"" not in out
    assert sync_repo_url.sync(out, NEW, "main") == out  # idempotent


def test_sync_follows_the_branch():
    out = sync_repo_url.sync(TEXT, OLD, "v1")
    assert "/old-owner/cvbook/blob/v1/notebooks/07_c3dpo.ipynb" in out
    assert "c3dpo_nrsfm/blob/main/demo.ipynb" in out


def _book_tree(root) -> None:
    """A minimal book: _config.yml at NEW, one notebook whose badge points at the old address."""
    (root / "notebooks").mkdir()
    (root / "book").mkdir()
    (root / "_config.yml").write_text(f"title: x\nrepository:\n  url: {NEW}\n"
                                          "  branch: main\n")
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": TEXT.splitlines(True)}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (root / "notebooks" / "01_x.ipynb").write_text(json.dumps(nb, indent=1) + "\n")


def test_sync_check_and_rewrite_on_a_tree(tmp_path):
    _book_tree(tmp_path)
    (tmp_path / "book" / "setup.md").write_text(TEXT)
    assert sync_repo_url.main(["--check"], root=tmp_path) == 1
    assert sync_repo_url.main([], root=tmp_path) == 0
    assert sync_repo_url.main(["--check"], root=tmp_path) == 0
    page = (tmp_path / "book" / "setup.md").read_text()
    assert NEW in page and "facebookresearch/c3dpo_nrsfm" in page


def test_sync_rewrites_a_plain_link_known_from_another_file(tmp_path):
    """A page with only ``git clone <old address>`` (no badge or install of its own) and
    CITATION.cff follow the address too: the old address is learnt from every file."""
    _book_tree(tmp_path)
    old_slug = next(iter(sync_repo_url.own_slugs(TEXT) - {NEW.removeprefix("https://github.com/")}))
    plain = (f"git clone https://github.com/{old_slug}\n"
             "see https://github.com/facebookresearch/c3dpo_nrsfm\n")
    (tmp_path / "book" / "clone.md").write_text(plain)
    (tmp_path / "CITATION.cff").write_text(f'repository-code: "https://github.com/{old_slug}"\n')
    assert sync_repo_url.main([], root=tmp_path) == 0
    page = (tmp_path / "book" / "clone.md").read_text()
    assert f"git clone {NEW}" in page and "facebookresearch/c3dpo_nrsfm" in page
    assert NEW in (tmp_path / "CITATION.cff").read_text()


def _sidecar(chapter: str, claims: list[str]) -> dict:
    return {"chapter": chapter, "preset": "cpu", "seed": 0, "device": "cpu", "runtime_s": 12.0,
            "versions": {}, "metrics": {"m": 1.0}, "tolerances": {"m": 0.1},
            "claims": [{"claim": c, "holds": True, "evidence": "a | b"} for c in claims],
            "paper": [{"metric": "top-1", "value": 79.0, "source": "Table 1"}],
            "not_reproduced": [{"finding": "an effect", "evidence": "0.1 vs 0.2"}]}


def test_results_page_sections_seeds_and_paper_table(tmp_path):
    (tmp_path / "notebooks" / "results").mkdir(parents=True)
    (tmp_path / "_toc.yml").write_text("root: book/intro\n  - file: notebooks/01_x\n")
    nb = {"cells": [{"cell_type": "markdown", "metadata": {},
                     "source": ["# A chapter title\n", "\n", "text"]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "notebooks" / "01_x.ipynb").write_text(json.dumps(nb))
    res = tmp_path / "notebooks" / "results"
    (res / "01_x.json").write_text(json.dumps(_sidecar("01_x", ["c1", "c2"])))
    seeds = {"chapter": "01_x", "seeds": {
        "0": {"seed": 0, "commit": "abc", "dirty": False, "runtime_s": 10,
         "claims": [{"claim": "c1", "holds": True, "evidence": ""},
                    {"claim": "c2", "holds": True, "evidence": ""}]},
        "1": {"seed": 1, "commit": "abc", "dirty": False, "runtime_s": 11,
         "claims": [{"claim": "c1", "holds": True, "evidence": ""},
                    {"claim": "c2", "holds": False, "evidence": ""}]}}}
    (res / "01_x.seeds.json").write_text(json.dumps(seeds))
    page = build_results_page.build(tmp_path)
    assert "## A chapter title" in page
    assert "| c1 | ✓ | ✓ | – | a \\| b |" in page
    assert "| c2 | ✓ | ✗ | – |" in page
    assert "| top-1 | 79 | Table 1 |" in page
    assert "an effect: 0.1 vs 0.2" in page
    assert "(../notebooks/01_x.ipynb)" in page


def test_start_sets_legible_figure_dpi():
    matplotlib = pytest.importorskip("matplotlib")
    import torch

    from cvbook.core.notebook import FIGURE_DPI, start

    det = torch.are_deterministic_algorithms_enabled()
    try:
        with matplotlib.rc_context():
            start("00_test", preset="cpu", seed=0, device="cpu", threads=None)
            assert FIGURE_DPI >= 110
            assert matplotlib.rcParams["figure.dpi"] >= 110
            assert matplotlib.rcParams["savefig.dpi"] >= 110
    finally:  # start() turns deterministic algorithms on: leave the session as it was
        torch.use_deterministic_algorithms(det)


def test_citation_cff_is_valid_and_in_step():
    """CITATION.cff: the required keys of CFF 1.2.0, valid author entries, and the version
    and licence that pyproject.toml declares (no schema validator is installed offline)."""
    import datetime
    import re

    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    toml = (ROOT / "pyproject.toml").read_text()  # tomllib is 3.11+; the package supports 3.10
    project = {k: re.search(rf'^{k} = "([^"]+)"', toml, re.M).group(1)
               for k in ("version", "license")}
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors"):
        assert cff.get(key), f"CITATION.cff lacks {key}"
    assert all(set(a) & {"name", "family-names"} for a in cff["authors"])
    assert cff["type"] in ("software", "dataset")
    assert str(cff["version"]) == project["version"]
    assert cff["license"] == project["license"] == "MIT"
    datetime.date.fromisoformat(str(cff["date-released"]))
    assert cff["repository-code"] == sync_repo_url.repo_url(ROOT)[0]


def test_seeds_provenance_ignores_its_own_outputs(tmp_path, monkeypatch):
    """Writing one chapter's seeds file (or the results page) must not make the next
    chapter's runs "dirty"; any other tracked change must."""
    import subprocess

    seeds = _tool("seeds")
    (tmp_path / "notebooks" / "results").mkdir(parents=True)
    (tmp_path / "book").mkdir()
    files = {"notebooks/results/01_x.seeds.json": "{}", "book/results.md": "# r",
             "notebooks/01_x.ipynb": "{}"}
    for rel, text in files.items():
        (tmp_path / rel).write_text(text)

    def git(*a):
        subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    monkeypatch.setattr(seeds, "ROOT", tmp_path)
    assert seeds.provenance()["dirty"] is False
    (tmp_path / "notebooks/results/01_x.seeds.json").write_text('{"seeds": {}}')
    (tmp_path / "book/results.md").write_text("# r2")
    assert seeds.provenance()["dirty"] is False
    (tmp_path / "notebooks/01_x.ipynb").write_text('{"cells": []}')
    assert seeds.provenance()["dirty"] is True
