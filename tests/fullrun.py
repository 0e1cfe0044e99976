"""Run a chapter's committed notebook end to end with its ``full`` preset on tiny fake data.

Every chapter's ``full`` preset is the paper's experiment (real datasets, paper-sized
models); a reader runs it on a GPU with ``make full NB=...``. The tests cannot download
data or weights, so each chapter's test builds a tiny folder (or file) *of the real
format* and calls :func:`run_full_notebook`, which papermills a copy of the notebook (never
the committed file) with ``preset="full"``, ``data_root=<fake>`` and the ``overrides``
dict that the notebook's parameters cell passes on to ``select_preset`` (to shrink epochs,
image counts and so on; ``weights=None`` style overrides select random initialisation so
that nothing is downloaded). Any exception in any cell fails the test, and the test can
then inspect the sidecar the run wrote.

Convention for a notebook's parameters cell (tagged ``parameters``)::

    preset = "cpu"
    seed = 0
    data_root = None   # full preset: ...
    overrides = {}     # extra preset fields, e.g. {"epochs": 1} (the tests shrink `full`)

and ``cfg = select_preset(PRESETS, preset, data_root=data_root, ..., **overrides)``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def run_full_notebook(stem: str, tmp_path: Path, data_root: str | os.PathLike,
                      overrides: dict[str, Any] | None = None,
                      parameters: dict[str, Any] | None = None,
                      timeout: int = 600, folder: str = "") -> dict[str, Any]:
    """papermill ``notebooks/<stem>.ipynb`` with the full preset into ``tmp_path``.

    Args:
        stem: the notebook's name without ``.ipynb``, e.g. ``"03_fixres"``.
        tmp_path: scratch folder (pytest's ``tmp_path``); the executed copy and the run's
            sidecar are written there.
        data_root: the fake dataset in the real format.
        overrides: preset fields to override (shrunk sizes, random weights).
        parameters: further parameters-cell values.
        timeout: per-cell timeout in seconds.
        folder: a sub-folder of ``notebooks/`` holding the notebook (``"drafts"`` for a
            chapter that has not yet been promoted into the book).

    Returns:
        The sidecar the run wrote (``metrics``, ``claims``, ...), or ``{}`` if none.
    """
    import papermill

    nb = NOTEBOOKS / folder / f"{stem}.ipynb"
    if not nb.is_file():
        raise FileNotFoundError(f"no notebook {nb}")
    results = tmp_path / "results"
    results.mkdir(parents=True, exist_ok=True)
    params: dict[str, Any] = {"preset": "full", "seed": 0, "data_root": str(data_root),
                              "overrides": dict(overrides or {})}
    params.update(parameters or {})
    before = os.environ.get("CVBOOK_RESULTS_DIR")
    os.environ["CVBOOK_RESULTS_DIR"] = str(results)  # the kernel inherits it
    try:
        papermill.execute_notebook(str(nb), str(tmp_path / f"{stem}-full.ipynb"),
                                   parameters=params, cwd=str(nb.parent),
                                   kernel_name="python3", progress_bar=False,
                                   execution_timeout=timeout)
    finally:
        if before is None:
            os.environ.pop("CVBOOK_RESULTS_DIR", None)
        else:
            os.environ["CVBOOK_RESULTS_DIR"] = before
    side = results / f"{stem}.json"
    return json.loads(side.read_text()) if side.is_file() else {}
