"""Seeding and determinism.

A re-run of a notebook must reproduce its stored outputs (nbval compares them), so
every chapter starts with :func:`seed_everything`. It seeds Python, NumPy and torch,
turns on torch's deterministic algorithms and fixes the number of CPU threads: the
order of floating-point reductions depends on the thread count, so a fixed count
removes run-to-run noise on one machine. Two CPU threads match the 2-core machines
the book is tested on (and Colab's free tier).
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from cvbook.core.validate import check_int

DEFAULT_THREADS = 2


def seed_everything(seed: int = 0, *, deterministic: bool = True,
                    threads: int | None = DEFAULT_THREADS) -> torch.Generator:
    """Seed every random number generator and make torch deterministic.

    Args:
        seed: a non-negative integer.
        deterministic: turn on ``torch.use_deterministic_algorithms`` (with
            ``warn_only=True`` so that an op without a deterministic kernel on some GPU
            warns instead of failing) and disable cuDNN autotuning.
        threads: number of intra-op CPU threads, or ``None`` to leave torch's default.

    Returns:
        A CPU ``torch.Generator`` seeded with ``seed``, for code that takes one.
    """
    seed = check_int(seed, "seed", min_value=0, max_value=2**63 - 1)
    if threads is not None:
        threads = check_int(threads, "threads", min_value=1)
        torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (seeds legacy global users, e.g. sklearn)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    return torch.Generator().manual_seed(seed)
