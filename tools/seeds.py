"""Run every chapter's default preset for seeds 0, 1 and 2 and record what each seed gives.

    python tools/seeds.py                                  # every chapter (make seeds)
    python tools/seeds.py notebooks/02_normgrad.ipynb      # one (make seeds NB=...)

Each run is a papermill copy under ``_build/seeds/`` (never the committed notebook) whose
sidecar goes to ``_build/seeds/<chapter>-seed<N>/``. The summary
``notebooks/results/<chapter>.seeds.json`` holds, per seed, its metrics, its claims with
holds/evidence, the not-reproduced findings, its runtime and the git commit it was
measured at (and whether the tree was dirty). A seed whose run fails is recorded with
its error and makes this script exit 1. ``tests/test_conventions.py`` requires the file
for every chapter, seeds 0, 1, 2, every claim holding, and the same claims as the stored
sidecar. The book's results page and any prose about other seeds read this file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEEDS = (0, 1, 2)
SCHEMA = 1


def _git(*args: str) -> str:
    r = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else ""


# what `make seeds` itself writes: a chapter's run does not read these, so writing one
# chapter's seeds file must not mark the next chapter's runs as measured on a dirty tree
OUTPUTS = (":(exclude)notebooks/results/*.seeds.json", ":(exclude)book/results.md")


def provenance() -> dict:
    """The commit the runs are measured at, and whether tracked files differ from it
    (other than the files ``make seeds`` writes itself, :data:`OUTPUTS`)."""
    return {"commit": _git("rev-parse", "HEAD") or None,
            "dirty": bool(_git("status", "--porcelain", "--untracked-files=no", "--", ".",
                               *OUTPUTS))}


def run_seed(nb: Path, seed: int, out: Path) -> dict:
    """papermill ``nb`` with ``seed`` into ``out``; return the seed's record."""
    import papermill

    stem = nb.stem
    results = out / f"{stem}-seed{seed}"
    results.mkdir(parents=True, exist_ok=True)
    for old in results.glob("*.json"):
        old.unlink()
    record: dict = {"seed": seed, **provenance()}
    env_before = os.environ.get("CVBOOK_RESULTS_DIR")
    os.environ["CVBOOK_RESULTS_DIR"] = str(results.resolve())  # the kernel inherits it
    t0 = time.perf_counter()
    try:
        papermill.execute_notebook(str(nb), str(out / f"{stem}-seed{seed}.ipynb"),
                                   parameters={"seed": seed}, cwd=str(nb.parent),
                                   kernel_name="python3", progress_bar=False)
        error = None
    except Exception as e:  # the notebook's own assert cells guard its claims
        error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:300]}"
    finally:
        if env_before is None:
            os.environ.pop("CVBOOK_RESULTS_DIR", None)
        else:
            os.environ["CVBOOK_RESULTS_DIR"] = env_before
    record["wall_s"] = round(time.perf_counter() - t0, 1)
    side = results / f"{stem}.json"
    if side.is_file():
        data = json.loads(side.read_text())
        record.update({k: data[k] for k in ("runtime_s", "device", "versions", "metrics",
                                            "claims")})
        record["not_reproduced"] = data.get("not_reproduced", [])
    else:
        record.update({"runtime_s": None, "metrics": {}, "claims": [], "not_reproduced": []})
        error = error or "the run wrote no sidecar"
    if error:
        record["error"] = error
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebooks", nargs="*", type=Path,
                    help="notebooks to run (default: every notebooks/NN_*.ipynb)")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--out", type=Path, default=ROOT / "_build" / "seeds")
    args = ap.parse_args(argv)
    nbs = [p.resolve() for p in args.notebooks] or \
        sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    failed = []
    for nb in nbs:
        if not nb.is_file():
            ap.error(f"no notebook {nb}")
        records = []
        for seed in args.seeds:
            print(f"== {nb.name} seed {seed}", flush=True)
            rec = run_seed(nb, seed, args.out)
            bad = [c["claim"] for c in rec["claims"] if not c["holds"]]
            print(f"   {rec['wall_s']} s, {len(rec['claims'])} claims, "
                  f"{'all hold' if not bad and 'error' not in rec else 'FAILED'}"
                  + (f": {rec['error']}" if "error" in rec else ""), flush=True)
            if bad or "error" in rec:
                failed.append(f"{nb.stem} seed {seed}")
            records.append(rec)
        summary = {"schema": SCHEMA, "chapter": nb.stem, "preset": "cpu",
                   "generated_by": "make seeds (tools/seeds.py)",
                   # keyed by seed (as a string: JSON keys), each record also holds its seed
                   "seeds": {str(rec["seed"]): rec for rec in records}}
        dest = ROOT / "notebooks" / "results" / f"{nb.stem}.seeds.json"
        dest.write_text(json.dumps(summary, indent=1) + "\n")
        print(f"   wrote {dest.relative_to(ROOT)}", flush=True)
    if failed:
        print("seeds: failures in " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
