"""Write ``book/results.md`` from the stored sidecars and the per-seed summaries.

One section per chapter, titled with the chapter's own title (the first heading of its
notebook): the claims, with whether each holds on seeds 0, 1 and 2 (from
``notebooks/results/<chapter>.seeds.json``, written by ``make seeds``), the findings the
chapter does not reproduce, and the paper's numbers in their own table. Run by
``make book``, ``make execute``, ``make seeds`` and ``make test``; the page is generated,
never typed in.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from cvbook.core.results import SEEDS_SUFFIX, load_all_results  # noqa: E402

SEEDS = (0, 1, 2)

HEADER = """# Results at a glance

Every chapter ends by writing a *results sidecar* (`notebooks/results/<chapter>.json`):
the metrics its default preset measured, each claim its prose makes (computed in the
notebook and guarded there by an assert cell), the effects of the paper it does *not*
reproduce, and the paper's numbers on the real datasets. `make seeds` re-runs every
chapter with seeds 0, 1 and 2 and records what each seed gives
(`notebooks/results/<chapter>.seeds.json`). This page is generated from those files by
`tools/build_results_page.py`; it is never edited by hand.

Our numbers come from the synthetic worlds of the default `cpu` preset, so they are not
comparable in value to the paper's: what should carry over is the *effect* (the ordering
of methods, the direction of a change), which is what each claim states. In the claims
tables, ✓ means the claim holds on that seed, ✗ that it fails, and – that the seed has
not been run yet (`make seeds`).

"""


def _cell(text: str) -> str:
    """Text that is safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def chapter_title(notebook: Path) -> str:
    """The first Markdown heading of a notebook, without the ``#``."""
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            m = re.search(r"^#\s+(.+)$", "".join(cell["source"]), re.M)
            if m:
                return m.group(1).strip()
    return notebook.stem


def _seed_holds(seeds: dict | None) -> dict[int, dict[str, bool]]:
    """{seed: {claim: holds}} from a ``.seeds.json`` summary (a failed run holds nothing)."""
    out: dict[int, dict[str, bool]] = {}
    for rec in (seeds or {}).get("seeds", {}).values():
        out[rec["seed"]] = {c["claim"]: bool(c["holds"]) and "error" not in rec
                            for c in rec.get("claims", [])}
    return out


def _mark(held: dict[str, bool] | None, claim: str) -> str:
    if held is None:
        return "–"
    return {True: "✓", False: "✗", None: "✗ (not recorded)"}[held.get(claim)]


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def chapter_section(r: dict, title: str, seeds: dict | None, linked: bool) -> str:
    stem = r["chapter"]
    link = f"[Open the chapter](../notebooks/{stem}.ipynb)." if linked else f"`{stem}`."
    lines = [f"## {title}", ""]
    lines.append(f"{link} The stored run (default preset `{r['preset']}`, seed {r['seed']}) "
                 f"took {r['runtime_s']:.0f} s on {r['device'].upper()}.")
    held = _seed_holds(seeds)
    if seeds:
        commits = sorted({(rec.get("commit") or "?")[:10] + (" (dirty)" if rec.get("dirty")
                                                             else "")
                          for rec in seeds["seeds"].values()})
        runtimes = [rec["runtime_s"] for rec in seeds["seeds"].values() if rec.get("runtime_s")]
        lines[-1] += (f" Seeds 0, 1, 2 measured at commit {', '.join(commits)}"
                      + (f", {min(runtimes):.0f}–{max(runtimes):.0f} s a run."
                         if runtimes else "."))
    lines += ["", "| claim | " + " | ".join(f"seed {s}" for s in SEEDS)
              + " | evidence (stored run, seed 0) |",
              "|---|" + "---|" * len(SEEDS) + "---|"]
    for c in r["claims"]:
        lines.append(f"| {_cell(c['claim'])} | "
                     + " | ".join(_mark(held.get(s), c["claim"]) for s in SEEDS)
                     + f" | {_cell(c['evidence'])} |")
    nr = r.get("not_reproduced", [])
    lines += ["", "**Not reproduced.**" if nr else "**Not reproduced:** nothing recorded."]
    if nr:
        lines.append("")
        lines += [f"* {_cell(f['finding'])}: {_cell(f['evidence'])}" for f in nr]
    lines += ["", "**The paper's numbers** (real datasets; not comparable in value to ours).",
              "", "| metric | value | source |", "|---|---|---|"]
    lines += [f"| {_cell(p['metric'])} | {_fmt(p['value'])} | {_cell(p['source'])} |"
              for p in r["paper"]]
    return "\n".join(lines) + "\n"


def build(root: Path = ROOT) -> str:
    results = root / "notebooks" / "results"
    toc = (root / "_toc.yml").read_text()
    sidecars = load_all_results(results) if results.is_dir() else []
    if not sidecars:
        return HEADER + "No chapter has results yet.\n"
    sections = []
    for r in sidecars:
        nb = root / "notebooks" / f"{r['chapter']}.ipynb"
        title = chapter_title(nb) if nb.is_file() else r["chapter"]
        seeds_file = results / f"{r['chapter']}{SEEDS_SUFFIX}"
        seeds = json.loads(seeds_file.read_text()) if seeds_file.is_file() else None
        sections.append(chapter_section(r, title, seeds,
                                        f"notebooks/{r['chapter']}" in toc and nb.is_file()))
    return HEADER + f"{len(sidecars)} chapter(s) so far.\n\n" + "\n".join(sections)


def main() -> None:
    text = build()
    out = ROOT / "book" / "results.md"
    if not out.exists() or out.read_text() != text:
        out.write_text(text)


if __name__ == "__main__":
    main()
