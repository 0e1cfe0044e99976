"""Confidence intervals for differences between methods evaluated on the same samples.

:func:`paired_bootstrap` resamples the test samples (with replacement) and recomputes the
mean difference of two methods' per-sample errors on each resample: the percentile
interval of those means is the interval of the difference, which keeps the pairing (both
methods see the same resampled samples), so that sample difficulty cancels.
"""

from __future__ import annotations

import torch

from cvbook.core.validate import Shapes, check_float, check_int

__all__ = ["paired_bootstrap"]


def paired_bootstrap(a: torch.Tensor, b: torch.Tensor, *, n_boot: int = 2000,
                     level: float = 0.95, generator: torch.Generator | None = None
                     ) -> dict[str, float]:
    """Paired bootstrap interval of ``mean(a - b)``.

    Args:
        a, b: ``(N,)`` per-sample values of two methods on the same ``N`` samples.
        n_boot: bootstrap resamples.
        level: coverage of the percentile interval (0.95: the 2.5% and 97.5% quantiles).
        generator: draws the resamples (on ``a``'s device).

    Returns:
        ``{"diff": mean(a - b), "lo": ..., "hi": ...}`` as floats.
    """
    s = Shapes()
    s.check(a, "a", "N", floating=True)
    s.check(b, "b", "N", floating=True)
    n_boot = check_int(n_boot, "n_boot", min_value=10)
    level = check_float(level, "level", min_value=0.0, max_value=1.0, open_min=True)
    if level >= 1.0:
        raise ValueError(f"level must be below 1, got {level}")
    d = (a - b).double()
    idx = torch.randint(0, d.shape[0], (n_boot, d.shape[0]), generator=generator,
                        device=d.device)
    means = d[idx].mean(1)
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=d.dtype, device=d.device)
    lo, hi = torch.quantile(means, q).tolist()
    return {"diff": float(d.mean()), "lo": lo, "hi": hi}
