"""What every chapter's setup does, in one call: :func:`start`.

The bootstrap itself (``try: import cvbook`` / ``except ImportError: %pip install`` of
this package, for Colab, Kaggle or a downloaded notebook) has to run *before*
``import cvbook`` and therefore lives in each notebook's first code cell; see
``tools/sync_repo_url.py`` for how its repository address is kept in step with
``_config.yml`` (the one place that address is written down).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch

from cvbook.core.device import get_device
from cvbook.core.results import Results
from cvbook.core.seed import seed_everything

#: Resolution of every figure (screen and saved). The book scales images to its column, so
#: a higher dpi makes them sharper there without changing their layout; 110 is the floor
#: at which small tick labels stay legible in the HTML book (issue 8).
FIGURE_DPI = 110


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


@dataclass
class Session:
    """The context a chapter passes around: device, results recorder, generator."""

    device: torch.device
    results: Results
    generator: torch.Generator
    seed: int
    preset: str


def start(chapter: str, *, preset: str, seed: int = 0, device: str = "auto",
          threads: int | None = 2) -> Session:
    """Seed everything, choose the device, set plotting defaults, start the clock.

    Args:
        chapter: the notebook's stem (``"03_fixres"``), used for the results sidecar.
        preset: the preset name in use.
        seed: the seed (every random number in the chapter derives from it).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
        threads: CPU threads (fixed, so that stored outputs reproduce).
    """
    import matplotlib

    gen = seed_everything(seed, threads=threads)
    dev = get_device(device)
    matplotlib.rcParams.update({"figure.dpi": FIGURE_DPI, "savefig.dpi": FIGURE_DPI,
                                "figure.max_open_warning": 0,
                                "axes.spines.top": False, "axes.spines.right": False})
    return Session(device=dev, results=Results(chapter, preset=preset, seed=seed,
                                               device=dev.type), generator=gen, seed=seed,
                   preset=preset)
