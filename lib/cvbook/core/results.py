"""Results sidecars: one JSON file per chapter, one schema for all (DESIGN §3.12).

A notebook creates a :class:`Results` in its setup cell (which starts the clock),
records metrics, the claims its prose makes (each computed, never typed in, and also
guarded by an assert cell) and the paper's numbers, and writes the file in its last
cell. The book's results page and the convention tests read these files.

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
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        if not isinstance(self.chapter, str) or not self.chapter:
            raise ValueError("chapter must be a non-empty string such as '03_fixres'")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise TypeError(f"seed must be an int, got {type(self.seed).__name__}")
        self.device = str(self.device)

    def metric(self, name: str, value: Any) -> float | int:
        """Record a scalar metric (tensor, numpy or Python number); returns it."""
        self.metrics[name] = _number(value, name)
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
    for f in data.get("not_reproduced", []):  # optional key
        if set(f) != {"finding", "evidence"}:
            raise ValueError(f"malformed not_reproduced entry {f!r}")
    return data


def load_all_results(directory: str | os.PathLike) -> list[dict[str, Any]]:
    """Load and validate every ``*.json`` sidecar in ``directory``, sorted by chapter."""
    out = []
    for path in sorted(Path(directory).glob("*.json")):
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
