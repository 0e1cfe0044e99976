"""Results sidecars: one JSON file per chapter, one schema for all (DESIGN §3.12).

A notebook creates a :class:`Results` in its setup cell (which starts the clock),
records metrics, the claims its prose makes (each computed, never typed in, and also
guarded by an assert cell) and the paper's numbers, and writes the file in its last
cell. The book's results page and the convention tests read these files.

Trained numbers move a little from one CPU to another (vector kernels, BLAS, thread
scheduling), so every metric may declare an absolute tolerance when it is recorded
(``S.results.metric("top1", acc, tol=0.03)``); the sidecar stores it under
``"tolerances"``, and :func:`compare_metrics` checks a fresh run against the stored
sidecar metric by metric within the *stored* tolerance. A metric recorded without a
tolerance is compared exactly: leave it out only for numbers that are deterministic by
construction (counts, closed forms, configuration).

The output folder is ``$CVBOOK_RESULTS_DIR`` if set, else ``results/`` under the
working directory (a notebook runs from ``notebooks/``). Runs with other seeds or the
``full`` preset set ``CVBOOK_RESULTS_DIR`` so they never overwrite the stored sidecar.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cvbook.core.checkpoint import atomic_write_bytes

SCHEMA_KEYS = ("chapter", "preset", "seed", "device", "runtime_s", "versions", "metrics",
               "claims", "paper")
SEEDS_SUFFIX = ".seeds.json"  # notebooks/results/<chapter>.seeds.json, written by make seeds
# optional keys: "tolerances" ({metric: absolute tolerance}), "not_reproduced"


def results_dir() -> Path:
    """Where sidecars go: ``$CVBOOK_RESULTS_DIR`` or ``./results``."""
    return Path(os.environ.get("CVBOOK_RESULTS_DIR", "results"))


def _number(value: Any, name: str) -> float | int:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"metric {name!r} must be a scalar, got shape {tuple(value.shape)}")
        value = value.item()
    if hasattr(value, "item") and not isinstance(value, (int, float)):
        value = value.item()  # numpy scalars
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"metric {name!r} must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"metric {name!r} is not finite ({value})")
    return value


def _tolerance(tol: Any, name: str) -> float:
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not math.isfinite(tol) \
            or tol < 0:
        raise ValueError(f"tol of metric {name!r} must be a finite number >= 0 (an absolute "
                         f"tolerance), got {tol!r}")
    return float(tol)


@dataclass
class Results:
    """Collects a chapter's results and writes its sidecar.

    Args:
        chapter: the notebook's stem, e.g. ``"03_fixres"``.
        preset: the preset name in use.
        seed: the seed in use.
        device: the device the chapter ran on.
    """

    chapter: str
    preset: str
    seed: int
    device: str = "cpu"
    metrics: dict[str, float | int] = field(default_factory=dict)
    claims: list[dict[str, Any]] = field(default_factory=list)
    paper: list[dict[str, Any]] = field(default_factory=list)
    not_reproduced: list[dict[str, Any]] = field(default_factory=list)
    tolerances: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        if not isinstance(self.chapter, str) or not self.chapter:
            raise ValueError("chapter must be a non-empty string such as '03_fixres'")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise TypeError(f"seed must be an int, got {type(self.seed).__name__}")
        self.device = str(self.device)

    def metric(self, name: str, value: Any, tol: float | None = None) -> float | int:
        """Record a scalar metric (tensor, numpy or Python number); returns it.

        Args:
            name: the metric's key in the sidecar.
            value: a scalar (a one-element tensor, a numpy scalar or a Python number).
            tol: the absolute tolerance within which a re-run on another machine must
                reproduce the stored value (``make test`` compares them). ``None`` (the
                default) means *exactly*: only for numbers deterministic by construction.
                Choose it from evidence (runs under other CPU kernels and seeds), small
                enough that a real regression falls outside it (CONTRIBUTING.md).
        """
        if not isinstance(name, str) or not name:
            raise ValueError("metric name must be a non-empty string")
        self.metrics[name] = _number(value, name)
        if tol is None:
            self.tolerances.pop(name, None)
        else:
            self.tolerances[name] = _tolerance(tol, name)
        return self.metrics[name]

    def claim(self, claim: str, holds: Any, evidence: str) -> bool:
        """Record a claim the prose makes, whether it holds, and the numbers behind it.
        Returns ``holds`` as a bool so the notebook can ``assert`` it."""
        if isinstance(holds, torch.Tensor):
            holds = bool(holds.item())
        if not isinstance(holds, (bool, int)) and not hasattr(holds, "__bool__"):
            raise TypeError("holds must be a boolean")
        holds = bool(holds)
        if not claim or not isinstance(claim, str):
            raise ValueError("claim must be a non-empty string")
        self.claims = [c for c in self.claims if c["claim"] != claim]
        self.claims.append({"claim": claim, "holds": holds, "evidence": str(evidence)})
        return holds

    def record_not_reproduced(self, finding: str, evidence: str) -> None:
        """Record an effect of the paper that this chapter does *not* reproduce, with the
        numbers that show it. Such findings are not claims (the prose does not assert
        them); they are listed on the results page so that no gap hides."""
        if not finding or not isinstance(finding, str):
            raise ValueError("finding must be a non-empty string")
        if not evidence or not isinstance(evidence, str):
            raise ValueError("evidence must be a non-empty string with the measured numbers")
        self.not_reproduced = [f for f in self.not_reproduced if f["finding"] != finding]
        self.not_reproduced.append({"finding": finding, "evidence": evidence})

    def paper_number(self, metric: str, value: float, source: str) -> None:
        """Record a number reported by the paper, with where it comes from."""
        self.paper.append({"metric": metric, "value": _number(value, metric),
                           "source": source})

    def to_dict(self) -> dict[str, Any]:
        import cvbook

        return {
            "chapter": self.chapter,
            "preset": self.preset,
            "seed": self.seed,
            "device": self.device,
            "runtime_s": round(time.perf_counter() - self.started, 1),
            "versions": {"cvbook": cvbook.__version__, "torch": torch.__version__,
                         "python": platform.python_version()},
            "metrics": self.metrics,
            "tolerances": self.tolerances,
            "claims": self.claims,
            "paper": self.paper,
            "not_reproduced": self.not_reproduced,
        }

    def write(self, directory: str | os.PathLike | None = None) -> Path:
        """Write ``<directory>/<chapter>.json`` atomically and return its path."""
        directory = Path(directory) if directory is not None else results_dir()
        path = directory / f"{self.chapter}.json"
        atomic_write_bytes(path, (json.dumps(self.to_dict(), indent=2) + "\n").encode())
        return path


def validate_sidecar(data: Any) -> dict[str, Any]:
    """Check a loaded sidecar against the schema; raise ``ValueError`` naming the problem."""
    if not isinstance(data, dict):
        raise ValueError("a results sidecar must be a JSON object")
    missing = [k for k in SCHEMA_KEYS if k not in data]
    if missing:
        raise ValueError(f"results sidecar lacks keys {missing}")
    if not isinstance(data["runtime_s"], (int, float)):
        raise ValueError("runtime_s must be a number")
    for c in data["claims"]:
        if set(c) != {"claim", "holds", "evidence"} or not isinstance(c["holds"], bool):
            raise ValueError(f"malformed claim {c!r}")
    for p in data["paper"]:
        if set(p) != {"metric", "value", "source"}:
            raise ValueError(f"malformed paper entry {p!r}")
    tols = data.get("tolerances", {})  # optional key
    if not isinstance(tols, dict):
        raise ValueError("tolerances must be an object {metric: absolute tolerance}")
    for name, tol in tols.items():
        if name not in data["metrics"]:
            raise ValueError(f"tolerance for {name!r}, which is not a metric")
        _tolerance(tol, name)
    for f in data.get("not_reproduced", []):  # optional key
        if set(f) != {"finding", "evidence"}:
            raise ValueError(f"malformed not_reproduced entry {f!r}")
    return data


def compare_metrics(stored: dict[str, Any], run: dict[str, Any]) -> list[str]:
    """Compare a fresh run's sidecar with the stored one; return the problems (empty: same).

    Every stored metric must be in the run and within the *stored* tolerance
    (``|run - stored| <= tol``; exactly equal when the stored sidecar declares none); the
    run may not add metrics or declare a tolerance other than the stored one (re-execute
    the notebook to store a new declaration), and both must record the same set of claims
    and the same set of not-reproduced findings (a finding that appears or disappears on
    another machine changes what the chapter reports).
    """
    problems = []
    chapter = stored.get("chapter", "?")
    s_m, r_m = stored["metrics"], run["metrics"]
    s_tol, r_tol = stored.get("tolerances", {}), run.get("tolerances", {})
    for name in sorted(set(s_m) | set(r_m)):
        if name not in r_m:
            problems.append(f"{chapter}: metric {name!r} is stored but the run lacks it")
            continue
        if name not in s_m:
            problems.append(f"{chapter}: the run records {name!r}, which is not stored "
                            "(re-execute the notebook)")
            continue
        tol = s_tol.get(name)
        if r_tol.get(name) != tol:
            problems.append(f"{chapter}: {name!r} declares tol={r_tol.get(name)} but the stored "
                            f"sidecar has tol={tol} (re-execute the notebook)")
        diff = abs(r_m[name] - s_m[name])
        slack = 1e-9 * max(1.0, abs(s_m[name]))  # |0.914 - 0.884| is 0.030000000000000027
        if (tol is None and r_m[name] != s_m[name]) or (tol is not None and diff > tol + slack):
            problems.append(f"{chapter}: {name} = {r_m[name]!r}, stored {s_m[name]!r} "
                            f"(|diff| {diff:.3g} > " + ("0, compared exactly)" if tol is None
                                                       else f"tol {tol:g})"))
    s_c = {c["claim"] for c in stored["claims"]}
    r_c = {c["claim"] for c in run["claims"]}
    for c in sorted(s_c - r_c):
        problems.append(f"{chapter}: stored claim missing from the run: {c!r}")
    for c in sorted(r_c - s_c):
        problems.append(f"{chapter}: the run makes a claim that is not stored: {c!r}")
    s_f = {f["finding"] for f in stored.get("not_reproduced", [])}
    r_f = {f["finding"] for f in run.get("not_reproduced", [])}
    for f in sorted(s_f - r_f):
        problems.append(f"{chapter}: stored not-reproduced finding missing from the run: {f!r}")
    for f in sorted(r_f - s_f):
        problems.append(f"{chapter}: the run records a not-reproduced finding that is not "
                        f"stored: {f!r}")
    return problems


def load_all_results(directory: str | os.PathLike) -> list[dict[str, Any]]:
    """Load and validate every ``*.json`` sidecar in ``directory``, sorted by chapter
    (``*.seeds.json`` files, the per-seed summaries of ``make seeds``, are skipped)."""
    out = []
    for path in sorted(Path(directory).glob("*.json")):
        if path.name.endswith(SEEDS_SUFFIX):  # per-seed summaries (make seeds), not sidecars
            continue
        try:
            out.append(validate_sidecar(json.loads(path.read_text())))
        except (ValueError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: {e}") from e
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def results_table(directory: str | os.PathLike, linked: set[str] | None = None) -> str:
    """A MyST/Markdown page body: for every chapter, one row per claim (chapter, claim,
    holds, our evidence, the paper's numbers, runtime). Chapters in ``linked`` (all when
    ``None``) link to their notebook."""
    rows = ["| chapter | claim | holds | our numbers | paper (real data) | runtime (s) |",
            "|---|---|---|---|---|---|"]
    for r in load_all_results(directory):
        paper = "; ".join(f"{p['metric']}: {_fmt(p['value'])} ({p['source']})"
                          for p in r["paper"]) or "–"
        entries = [(c["claim"], "yes" if c["holds"] else "**no**", c["evidence"])
                   for c in r["claims"]]
        entries += [(f["finding"], "not reproduced", f["evidence"])
                    for f in r.get("not_reproduced", [])]
        for i, (text, holds, evidence) in enumerate(entries):
            rows.append("| " + " | ".join([
                ((f"[{r['chapter']}](../notebooks/{r['chapter']}.ipynb)"
                  if linked is None or r["chapter"] in linked else r["chapter"])
                 if i == 0 else ""),
                text, holds, evidence.replace("|", "/"),
                paper if i == 0 else "",
                f"{r['runtime_s']:.0f} ({r['preset']}, {r['device']})" if i == 0 else "",
            ]) + " |")
    return "\n".join(rows) + "\n"
