"""Clustering metrics: accuracy under the best cluster-to-class matching (Hungarian
algorithm), normalised mutual information and adjusted Rand index.

These are the three numbers every novel-category-discovery paper reports (DTC,
arXiv:1908.09884, Tables 2-5). Cluster ids are arbitrary, so accuracy is measured
after the one-to-one relabelling of clusters that maximises it:

    ACC = max_{perm} (1/N) sum_i [y_i == perm(c_i)]

solved exactly as a linear assignment on the ``(K_pred, K_true)`` contingency table
with :func:`scipy.optimize.linear_sum_assignment`. NMI and ARI come from scikit-learn.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from cvbook.core.validate import Shapes

LabelsLike = torch.Tensor | np.ndarray | Sequence[int]


def _as_labels(x: object, name: str) -> np.ndarray:
    """Return ``x`` as a 1-D int64 numpy array; raise naming ``name`` otherwise."""
    if isinstance(x, torch.Tensor):
        if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise TypeError(f"{name} must hold integer labels, got dtype {x.dtype}")
        arr = x.detach().cpu().numpy()
    elif isinstance(x, np.ndarray):
        if x.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integer labels, got dtype {x.dtype}")
        arr = x
    elif isinstance(x, (list, tuple)):
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in x):
            raise TypeError(f"{name} must be a sequence of ints")
        arr = np.asarray(x, dtype=np.int64)
    else:
        raise TypeError(f"{name} must be a tensor, numpy array or list of ints, "
                        f"got {type(x).__name__}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (N,), got shape {tuple(arr.shape)}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; clustering metrics need at least one sample")
    return arr.astype(np.int64, copy=False)


def _pair(y_true: LabelsLike, y_pred: LabelsLike) -> tuple[np.ndarray, np.ndarray]:
    t = _as_labels(y_true, "y_true")
    p = _as_labels(y_pred, "y_pred")
    s = Shapes()  # the shared wording; from_numpy shares the memory (no copy)
    s.check(torch.from_numpy(t), "y_true", "N")
    s.check(torch.from_numpy(p), "y_pred", "N")
    return t, p


def contingency(y_true: LabelsLike, y_pred: LabelsLike) -> np.ndarray:
    """Counts ``C[a, b]`` of samples in predicted cluster ``a`` and true class ``b``.

    Labels are first mapped to ``0..K-1`` in sorted order, so any integer ids work.

    Returns:
        ``(K_pred, K_true)`` int64 array.
    """
    t, p = _pair(y_true, y_pred)
    _, ti = np.unique(t, return_inverse=True)
    _, pi = np.unique(p, return_inverse=True)
    table = np.zeros((pi.max() + 1, ti.max() + 1), dtype=np.int64)
    np.add.at(table, (pi, ti), 1)
    return table


def hungarian_match(y_true: LabelsLike, y_pred: LabelsLike) -> dict[int, int]:
    """The one-to-one map ``cluster id -> class id`` that maximises agreement.

    Clusters left without a class (more clusters than classes) are not in the map.
    """
    t, p = _pair(y_true, y_pred)
    tu, pu = np.unique(t), np.unique(p)
    table = contingency(t, p)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return {int(pu[r]): int(tu[c]) for r, c in zip(rows, cols)}


def cluster_acc(y_true: LabelsLike, y_pred: LabelsLike) -> float:
    """Clustering accuracy with Hungarian matching (DTC §4, "ACC").

    Args:
        y_true: ``(N,)`` integer class labels.
        y_pred: ``(N,)`` integer cluster ids (any numbering; may have more or fewer
            clusters than classes: unmatched samples count as errors).

    Returns:
        Accuracy in ``[0, 1]``.

    >>> cluster_acc([0, 0, 1, 1, 2], [5, 5, 3, 3, 3])  # clusters 5 -> 0, 3 -> 1
    0.8
    """
    t, p = _pair(y_true, y_pred)
    table = contingency(t, p)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / t.size)


def nmi(y_true: LabelsLike, y_pred: LabelsLike) -> float:
    """Normalised mutual information (arithmetic normalisation, scikit-learn's default)."""
    from sklearn.metrics import normalized_mutual_info_score

    t, p = _pair(y_true, y_pred)
    return float(normalized_mutual_info_score(t, p))


def ari(y_true: LabelsLike, y_pred: LabelsLike) -> float:
    """Adjusted Rand index (scikit-learn)."""
    from sklearn.metrics import adjusted_rand_score

    t, p = _pair(y_true, y_pred)
    return float(adjusted_rand_score(t, p))


def clustering_scores(y_true: LabelsLike, y_pred: LabelsLike) -> dict[str, float]:
    """``{"acc": ..., "nmi": ..., "ari": ...}`` for one clustering."""
    t, p = _pair(y_true, y_pred)
    return {"acc": cluster_acc(t, p), "nmi": nmi(t, p), "ari": ari(t, p)}
