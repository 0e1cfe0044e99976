"""Confidence intervals for differences between methods evaluated on the same samples.

:func:`paired_bootstrap` resamples the test samples (with replacement) and recomputes the
mean difference of two methods' per-sample errors on each resample: the percentile
interval of those means is the interval of the difference, which keeps the pairing (both
methods see the same resampled samples), so that sample difficulty cancels.

For a handful of repeats (training runs, shuffles) the normal quantile 1.96 is too small:
:func:`t_quantile` gives Student's, :func:`welch_satterthwaite_df` the effective degrees of
freedom of a sum of variance estimates with different degrees of freedom, and
:func:`mean_interval` the t interval of a mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from cvbook.core.validate import Shapes, check_float, check_int, check_tensor

__all__ = ["mean_interval", "paired_bootstrap", "t_quantile", "welch_satterthwaite_df"]


def t_quantile(level: float = 0.95, df: float = math.inf) -> float:
    """The two-sided Student-t quantile ``t_{(1+level)/2, df}`` (``df = inf``: the normal
    one, 1.96 for 95%).

    >>> round(t_quantile(0.95, 2), 3), round(t_quantile(0.95, math.inf), 3)
    (4.303, 1.96)
    """
    from scipy.stats import norm, t

    level = check_float(level, "level", min_value=0.0, max_value=1.0, open_min=True)
    if level >= 1.0:
        raise ValueError(f"level must be below 1, got {level}")
    df = check_float(df, "df", min_value=0.0, open_min=True)
    q = (1 + level) / 2
    return float(norm.ppf(q) if math.isinf(df) else t.ppf(q, df))


def welch_satterthwaite_df(variances: Sequence[float], dfs: Sequence[float]) -> float:
    """Effective degrees of freedom of ``sum(variances)``, each term an estimate with
    ``dfs[i]`` degrees of freedom: ``(sum v)^2 / sum(v^2 / df)`` (Welch-Satterthwaite).

    >>> welch_satterthwaite_df([1.0, 1.0], [2, 2])
    4.0
    """
    if len(variances) != len(dfs) or not variances:
        raise ValueError("variances and dfs must be non-empty and of the same length; got "
                         f"{len(variances)} and {len(dfs)}")
    num = sum(variances) ** 2
    den = sum(v * v / check_float(d, "dfs[i]", min_value=0.0, open_min=True)
              for v, d in zip(variances, dfs))
    return math.inf if den == 0 else num / den


def mean_interval(values: torch.Tensor, level: float = 0.95) -> dict[str, float]:
    """Student-t interval of the mean of ``values`` ``(R,)`` (e.g. one number per repeat):
    ``mean ± t_{(1+level)/2, R-1}·s/√R``; ``{"mean", "lo", "hi"}``.

    >>> r = mean_interval(torch.tensor([1.0, 2.0, 3.0]))
    >>> round(r["lo"], 3), round(r["hi"], 3)  # 2 ± 4.303·1/√3
    (-0.484, 4.484)
    """
    v = check_tensor(values, "values", ndim=1).double()
    if v.shape[0] < 2:
        raise ValueError(f"values must hold at least 2 numbers; got {v.shape[0]}")
    mean = float(v.mean())
    half = t_quantile(level, v.shape[0] - 1) * float(v.std()) / math.sqrt(v.shape[0])
    return {"mean": mean, "lo": mean - half, "hi": mean + half}


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
