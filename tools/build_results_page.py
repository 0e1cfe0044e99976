"""Write ``book/results.md`` from every ``notebooks/results/*.json`` sidecar.

Run by ``make book``, ``make execute`` and ``make test`` (the book's execution is off, so
the page is generated from the stored sidecars, never typed in).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from cvbook.core.results import load_all_results, results_table  # noqa: E402

HEADER = """# Results at a glance

Every chapter ends by writing a *results sidecar* (`notebooks/results/<chapter>.json`):
the metrics it measured with its default preset, each claim its prose makes (computed in
the notebook and guarded there by an assert cell), and the paper's numbers on the real
datasets. This page is generated from those files by `tools/build_results_page.py`; it is
never edited by hand.

Our numbers come from the synthetic worlds of the default `cpu` preset, so they are not
comparable in value to the paper's: what should carry over is the *effect* (the ordering
of methods, the direction of a change), which is what each claim states.

"""


def main() -> None:
    results = ROOT / "notebooks" / "results"
    toc = (ROOT / "_toc.yml").read_text()
    linked = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb") if f"notebooks/{p.stem}" in toc}
    body = (results_table(results, linked) if results.is_dir()
            else "No chapter has results yet.\n")
    n = len(load_all_results(results)) if results.is_dir() else 0
    text = HEADER + f"{n} chapter(s) so far.\n\n" + body
    out = ROOT / "book" / "results.md"
    if not out.exists() or out.read_text() != text:
        out.write_text(text)


if __name__ == "__main__":
    main()
