"""Clustering on the device: k-means++ seeding, (constrained) k-means and the silhouette.

Why written here rather than taken from scikit-learn: scikit-learn's ``KMeans`` runs on
the CPU in NumPy and has no notion of points whose cluster is *fixed*, which is what
DTC's class-number estimation (Han et al., ICCV 2019, §3.3) needs; these versions run
batched on the inputs' device, with ``n_init`` restarts evaluated together as one batch
and no host synchronisation inside the Lloyd iterations. The tests check them against
scikit-learn's ``KMeans`` (plain case) and ``silhouette_score``.

* :func:`kmeans_pp_init`: batched k-means++ seeding (Arthur & Vassilvitskii 2007), some
  centres possibly already placed.
* :func:`constrained_kmeans`: Lloyd's algorithm in which points with ``fixed >= 0`` keep
  their cluster; ``fixed=None`` is plain k-means.
* :func:`silhouette_score`: the mean silhouette (Rousseeuw 1987), vectorised.

Example:
    >>> import torch
    >>> x = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    >>> labels, centres = constrained_kmeans(x, 2, generator=torch.Generator().manual_seed(0))
    >>> bool(labels[0] == labels[1]) and bool(labels[2] == labels[3])
    True
    >>> round(float(silhouette_score(x, labels)), 3)
    0.986
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cvbook.core.validate import Shapes, check_int

__all__ = ["constrained_kmeans", "kmeans_pp_init", "silhouette_score"]


def _kmeanspp(x: torch.Tensor, centres: torch.Tensor, n_new: int, weight: torch.Tensor,
              generator: torch.Generator | None) -> torch.Tensor:
    """k-means++ without checks (the hot helper of :func:`constrained_kmeans`)."""
    r = centres.shape[0]
    for _ in range(n_new):  # loop over the (few) new centres, not over points
        if centres.shape[1] == 0:
            prob = weight[None].expand(r, -1)
        else:
            d2 = torch.cdist(x[None].expand(r, -1, -1), centres).pow(2).amin(2)  # (R, N)
            prob = d2 * weight[None]
            prob = torch.where(prob.sum(1, keepdim=True) > 0, prob, weight[None].expand(r, -1))
        pick = torch.multinomial(prob, 1, generator=generator)[:, 0]           # (R,)
        centres = torch.cat([centres, x[pick][:, None]], 1)
    return centres


def kmeans_pp_init(x: torch.Tensor, n_new: int, *, centres: torch.Tensor | None = None,
                   weight: torch.Tensor | None = None, n_init: int = 1,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """k-means++ seeding, ``n_init`` independent draws at once.

    Each new centre is a point drawn with probability proportional to ``weight_i`` times
    its squared distance to the nearest centre placed so far (the first, when none is
    placed, proportional to ``weight_i``).

    Args:
        x: ``(N, D)`` points.
        n_new: number of centres to add (>= 0).
        centres: ``(R, A, D)`` centres already placed (``A`` may be 0); ``None``: none,
            with ``R = n_init``.
        weight: ``(N,)`` non-negative; 0 excludes a point (default: all 1).
        n_init: number of draws ``R`` when ``centres`` is ``None``.
        generator: for the draws (on ``x``'s device).

    Returns:
        ``(R, A + n_new, D)`` centres.

    >>> x = torch.tensor([[0.0], [10.0]])
    >>> kmeans_pp_init(x, 2, generator=torch.Generator().manual_seed(0)).sort(1).values
    tensor([[[ 0.],
             [10.]]])
    """
    s = Shapes()
    s.check(x, "x", "N D", floating=True)
    n_new = check_int(n_new, "n_new", min_value=0)
    if centres is None:
        n_init = check_int(n_init, "n_init", min_value=1)
        centres = x.new_zeros(n_init, 0, x.shape[1])
    else:
        s.check(centres, "centres", "R A D", floating=True)
    if weight is None:
        weight = x.new_ones(x.shape[0])
    else:
        s.check(weight, "weight", "N", floating=True)
        if bool((weight < 0).any()) or not bool((weight > 0).any()):
            raise ValueError("weight must be non-negative with at least one positive entry")
    if n_new > int((weight > 0).sum()):
        raise ValueError(f"n_new={n_new} is more than the {int((weight > 0).sum())} points "
                         "that may be chosen")
    return _kmeanspp(x, centres, n_new, weight, generator)


def constrained_kmeans(x: torch.Tensor, k: int, fixed: torch.Tensor | None = None, *,
                       n_iter: int = 30, n_init: int = 5, exclusive: bool = False,
                       generator: torch.Generator | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means in which some points have a fixed cluster (DTC §3.3).

    Points with ``fixed[i] = a >= 0`` always belong to cluster ``a`` (the anchor
    classes, numbered ``0..A-1``); the others (``fixed[i] = -1``) go to the nearest
    centre. Anchor centres start at their class means, the other ``k - A`` by
    k-means++ over the free points. ``n_init`` restarts run together as a batch; the
    one with the lowest inertia is returned. ``n_iter`` Lloyd steps (no early stop,
    hence no host sync). With ``exclusive=True`` free points may only join the
    ``k - A`` new clusters (the unlabelled classes are disjoint from the anchors).

    Args:
        x: ``(N, D)`` points. k: clusters (``>= max(2, A)``).
        fixed: ``(N,)`` integer cluster ids or -1; ``None`` = plain k-means.

    Returns:
        labels ``(N,)`` int64 and centres ``(k, D)``.

    >>> x = torch.tensor([[0.0], [1.0], [9.0], [10.0]])
    >>> fixed = torch.tensor([0, -1, -1, -1])
    >>> constrained_kmeans(x, 2, fixed, generator=torch.Generator().manual_seed(0))[0]
    tensor([0, 0, 1, 1])
    """
    s = Shapes()
    s.check(x, "x", "N D", floating=True)
    k = check_int(k, "k", min_value=2)
    n_iter = check_int(n_iter, "n_iter", min_value=1)
    n_init = check_int(n_init, "n_init", min_value=1)
    n, d = x.shape
    if n == 0:
        raise ValueError("x is empty")
    if fixed is None:
        fixed = torch.full((n,), -1, dtype=torch.int64, device=x.device)
    s.check(fixed, "fixed", "N")
    if fixed.is_floating_point() or fixed.dtype == torch.bool:
        raise TypeError(f"fixed must be integer cluster ids (or -1), got {fixed.dtype}")
    fixed = fixed.to(x.device, torch.int64)
    a = int(fixed.max().item()) + 1
    if bool((fixed < -1).any()):
        raise ValueError("fixed must hold cluster ids >= 0 or -1 for free points")
    if a > k:
        raise ValueError(f"k={k} must be at least the number of anchor clusters ({a})")
    free = fixed < 0
    if int(free.sum()) < k - a:
        raise ValueError(f"k={k} needs at least {k - a} free points, got {int(free.sum())}")

    # anchor class means
    sums = torch.zeros(a, d, device=x.device, dtype=x.dtype).index_add_(0, fixed[~free],
                                                                           x[~free])
    counts = torch.bincount(fixed[~free], minlength=a).to(x.dtype)
    if a and bool((counts == 0).any()):
        raise ValueError("fixed must use every id 0..A-1 for at least one point")
    anchor_c = sums / counts.clamp_min(1)[:, None]
    centres = _kmeanspp(x, anchor_c[None].expand(n_init, -1, -1).contiguous(), k - a,
                        free.to(x.dtype), generator)                          # (R, k, D)
    rows = torch.arange(n_init, device=x.device)[:, None]
    block = torch.zeros(k, device=x.device, dtype=x.dtype)
    if exclusive:
        block[:a] = float("inf")                    # anchor clusters closed to free points
    xr = x[None].expand(n_init, -1, -1)
    for _ in range(n_iter):
        d2 = torch.cdist(xr, centres).pow(2) + block                         # (R, N, k)
        lab = torch.where(free[None], d2.argmin(2), fixed[None])             # (R, N)
        flat = (lab + rows * k).reshape(-1)
        sm = torch.zeros(n_init * k, d, device=x.device, dtype=x.dtype).index_add_(
            0, flat, xr.reshape(-1, d))
        c = torch.bincount(flat, minlength=n_init * k).to(x.dtype)[:, None]
        new = (sm / c.clamp_min(1)).reshape(n_init, k, d)
        centres = torch.where(c.reshape(n_init, k, 1) > 0, new, centres)
    d2 = torch.cdist(xr, centres).pow(2) + block
    lab = torch.where(free[None], d2.argmin(2), fixed[None])
    d2 = torch.where(torch.isinf(d2), torch.zeros_like(d2), d2)
    inertia = d2.gather(2, lab[..., None])[..., 0].sum(1)                    # (R,)
    best = int(inertia.argmin())
    return lab[best], centres[best]


def silhouette_score(x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean silhouette ``s_i = (b_i - a_i) / max(a_i, b_i)`` (Euclidean), vectorised
    with one ``(N, N)`` distance matrix; points alone in their cluster score 0
    (scikit-learn's convention).

    Args:
        x: ``(N, D)``; labels: ``(N,)`` with 2..N-1 distinct values.

    Returns:
        A scalar tensor.

    >>> x = torch.tensor([[0.0], [1.0], [10.0], [11.0]])
    >>> round(float(silhouette_score(x, torch.tensor([0, 0, 1, 1]))), 4)
    0.8997
    """
    s = Shapes()
    s.check(x, "x", "N D", floating=True)
    s.check(labels, "labels", "N")
    _, inv = torch.unique(labels, return_inverse=True)
    c = int(inv.max()) + 1 if inv.numel() else 0
    if not 2 <= c <= x.shape[0] - 1:
        raise ValueError(f"labels must have between 2 and N-1={x.shape[0] - 1} distinct "
                         f"values, got {c}")
    dist = torch.cdist(x, x)                                                  # (N, N)
    onehot = F.one_hot(inv, c).to(x.dtype)                                    # (N, C)
    sums = dist @ onehot                                                      # (N, C)
    counts = onehot.sum(0)                                                    # (C,)
    own = counts[inv]
    a = sums.gather(1, inv[:, None])[:, 0] / (own - 1).clamp_min(1)
    mean_other = sums / counts[None]
    mean_other = mean_other.masked_fill(onehot.bool(), float("inf"))
    b = mean_other.amin(1)
    sil = (b - a) / torch.maximum(a, b).clamp_min(1e-12)
    return torch.where(own > 1, sil, torch.zeros_like(sil)).mean()

