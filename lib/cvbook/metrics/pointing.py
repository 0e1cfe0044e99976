"""The pointing game (Zhang et al. 2016), as used by the extremal-perturbation and
NormGrad papers: a saliency map *hits* when its maximum lies within ``tolerance``
pixels of the ground truth of the explained class (the union of its boxes on VOC, its
masks on COCO or on the scenes world). Accuracy is the mean over classes of the
per-class hit rate, on "all" trials and on the "difficult" subset (here: a small object
together with a distractor, the spirit of the paper's subset: images with a small
object of the class and an object of another class).

Vectorised: the distance of every ground-truth pixel to the pointed location is
computed for the whole batch at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from cvbook.core.validate import Shapes, check_float, check_int, check_tensor
from cvbook.image.filters import gaussian_blur


def gaussian_smooth(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur ``(N, 1, H, W)`` maps with a Gaussian of ``sigma`` pixels (zero padding)."""
    return gaussian_blur(maps.float(), sigma) if sigma > 0 else maps


TIE_RULES = ("first", "random")


def point(saliency: torch.Tensor, size: Sequence[int] | None = None, *,
          smooth: float = 0.0, ties: str = "first", tie_rtol: float = 1e-5,
          generator: torch.Generator | None = None) -> torch.Tensor:
    """Where each map points: ``(N, 2)`` ``(x, y)`` pixel coordinates of its maximum.

    Args:
        saliency: ``(N, h, w)`` or ``(N, 1, h, w)`` maps.
        size: image ``(H, W)``; maps of another size are bilinearly resized first.
        smooth: Gaussian smoothing before the maximum, as a fraction of ``min(H, W)``
            (the papers use 0.02 for gradient-like maps, 0.09 for extremal masks).
        ties: what to do when several pixels share the maximum. ``"first"`` (the
            default, TorchRay's ``argmax``): the first in raster order, so a constant
            map points at pixel ``(0, 0)``. ``"random"``: a pixel drawn uniformly among
            those within ``tie_rtol·max|s|`` of the maximum, so
            a map without spatial information scores what a random point scores.
        tie_rtol: relative tolerance of a tie (bilinear resizing of a constant map
            leaves rounding differences of a few ulps).
        generator: random generator of ``ties="random"`` (on the maps' device).

    >>> s = torch.zeros(1, 4, 6)
    >>> s[0, 1, 4] = 1.0
    >>> point(s)                                  # (x, y) of the maximum
    tensor([[4., 1.]])
    """
    check_tensor(saliency, "saliency", floating=True)
    s = saliency
    if s.ndim == 3:
        s = s[:, None]
    if s.ndim != 4 or s.shape[1] != 1:
        raise ValueError(f"saliency must be (N, H, W) or (N, 1, H, W), got {tuple(saliency.shape)}")
    check_float(smooth, "smooth", min_value=0.0)
    if ties not in TIE_RULES:
        raise ValueError(f"ties must be one of {TIE_RULES}, got {ties!r}")
    check_float(tie_rtol, "tie_rtol", min_value=0.0)
    if size is not None and tuple(s.shape[-2:]) != tuple(size):
        s = F.interpolate(s.float(), size=tuple(size), mode="bilinear", align_corners=False)
    if smooth > 0:
        s = gaussian_smooth(s, smooth * min(s.shape[-2:]))
    W = s.shape[-1]
    if ties == "first":
        flat = s.flatten(1).argmax(1)
    else:
        flat = _random_argmax(s.flatten(1).float(), tie_rtol, generator)
    return torch.stack([flat % W, flat // W], 1).float()


def _random_argmax(s: torch.Tensor, rtol: float, generator: torch.Generator | None
                   ) -> torch.Tensor:
    """``(N,)`` flat index drawn uniformly among each row's (near-)maxima of ``(N, P)``."""
    tied = _tied(s, rtol)
    u = torch.rand(s.shape, generator=generator, device=s.device)
    return torch.where(tied, u, -1.0).argmax(1)


def tie_fraction(saliency: torch.Tensor, rtol: float = 1e-5) -> torch.Tensor:
    """``(N,)`` fraction of each map's pixels tied with its maximum (within
    ``rtol·max|s|``): 1 for a map that is constant over space and carries no location.

    >>> tie_fraction(torch.stack([torch.ones(4, 4), torch.eye(4)]))
    tensor([1.0000, 0.2500])
    """
    check_tensor(saliency, "saliency", floating=True)
    return _tied(saliency.flatten(1).float(), rtol).float().mean(1)


def _tied(s: torch.Tensor, rtol: float) -> torch.Tensor:
    """``(N, P)`` bool: within ``rtol·max|s|`` of the row's maximum."""
    return s >= s.amax(1, keepdim=True) - rtol * s.abs().amax(1, keepdim=True)


def hits(points: torch.Tensor, masks: torch.Tensor, tolerance: float) -> torch.Tensor:
    """``(N,)`` bool: is a ground-truth pixel within ``tolerance`` pixels of each point?

    Args:
        points: ``(N, 2)`` ``(x, y)`` in pixels (pixel ``(i, j)`` has centre ``(j, i)``).
        masks: ``(N, H, W)`` bool ground truth of the explained class.
        tolerance: radius in pixels (15 at ~224 px in the papers).

    >>> masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    >>> masks[:, 2, 5] = True                     # one ground-truth pixel at (x=5, y=2)
    >>> hits(torch.tensor([[5.0, 3.0], [0.0, 0.0]]), masks, 1.0)
    tensor([ True, False])
    """
    s = Shapes()
    s.check(masks, "masks", "N H W")
    s.check(points, "points", "N 2")
    return _hit_test(points, masks, check_float(tolerance, "tolerance", min_value=0.0))


def _hit_test(points: torch.Tensor, masks: torch.Tensor, tol: float) -> torch.Tensor:
    H, W = masks.shape[-2:]
    ys = torch.arange(H, device=masks.device, dtype=torch.float32)
    xs = torch.arange(W, device=masks.device, dtype=torch.float32)
    p = points.to(masks.device).float()
    d2 = (ys[None, :, None] - p[:, 1, None, None]) ** 2 + (xs[None, None, :]
                                                           - p[:, 0, None, None]) ** 2
    return ((d2 <= tol * tol) & masks.bool()).flatten(1).any(1)


def center_points(n: int, size: Sequence[int], device: torch.device | str = "cpu"
                  ) -> torch.Tensor:
    """The "center" baseline: ``(n, 2)`` points at the image centre."""
    H, W = int(size[0]), int(size[1])
    return torch.tensor([(W - 1) / 2, (H - 1) / 2], device=device).expand(n, 2).round()


@dataclass
class PointingGame:
    """Accumulates pointing-game trials and reports per-class mean accuracies.

    Args:
        num_classes: number of classes.
        tolerance: hit radius in pixels.

    Example::

        game = PointingGame(6, tolerance=5)
        game.add(point(maps, (64, 64)), masks, labels, difficult)
        game.accuracy()                 # {"all": 0.9, "difficult": 0.8}
    """

    num_classes: int
    tolerance: float
    _hits: list[torch.Tensor] = field(default_factory=list, repr=False)
    _labels: list[torch.Tensor] = field(default_factory=list, repr=False)
    _difficult: list[torch.Tensor] = field(default_factory=list, repr=False)

    def add(self, points: torch.Tensor, masks: torch.Tensor, labels: torch.Tensor,
            difficult: torch.Tensor | None = None) -> torch.Tensor:
        """Score a batch of trials: ``points (N, 2)``, ``masks (N, H, W)`` bool, ``labels
        (N,)`` int class of each trial, ``difficult (N,)`` bool. Returns ``(N,)`` hits."""
        s = Shapes()
        s.check(masks, "masks", "N H W")
        s.check(points, "points", "N 2")
        s.check(labels, "labels", "N")
        if difficult is not None:
            s.check(difficult, "difficult", "N")
        h = _hit_test(points, masks, check_float(self.tolerance, "tolerance", min_value=0.0))
        if difficult is None:
            difficult = torch.zeros_like(h)
        if labels.dtype.is_floating_point or (labels < 0).any() or (
                labels >= self.num_classes).any():
            raise ValueError(f"labels must be ints in [0, {self.num_classes})")
        self._hits.append(h.cpu())
        self._labels.append(labels.cpu())
        self._difficult.append(difficult.bool().cpu())
        return h

    def per_class(self, subset: str = "all") -> torch.Tensor:
        """``(num_classes,)`` hit rate per class (NaN for a class without trials)."""
        if subset not in ("all", "difficult"):
            raise ValueError(f"subset must be 'all' or 'difficult', got {subset!r}")
        if not self._hits:
            raise ValueError("no trials were added")
        h = torch.cat(self._hits).float()
        y = torch.cat(self._labels)
        keep = torch.cat(self._difficult) if subset == "difficult" else torch.ones_like(
            y, dtype=torch.bool)
        count = torch.bincount(y[keep], minlength=self.num_classes).float()
        total = torch.bincount(y[keep], weights=h[keep], minlength=self.num_classes)
        return torch.where(count > 0, total / count.clamp(min=1), torch.nan)

    def interval(self, subset: str = "all", level: float = 0.95, n_boot: int = 4000,
                 seed: int = 0) -> tuple[float, float]:
        """A ``level`` confidence interval of :meth:`accuracy`'s mean per-class hit rate:
        percentile bootstrap over trials, resampled within each class (each class's
        resampled hit count is ``Binomial(n_c, p_c)``, drawn directly)."""
        pc = self.per_class(subset)
        y = torch.cat(self._labels)
        keep = torch.cat(self._difficult) if subset == "difficult" else torch.ones_like(
            y, dtype=torch.bool)
        count = torch.bincount(y[keep], minlength=self.num_classes).float()
        return _bootstrap_interval(pc, count, level, n_boot, seed)

    def accuracy(self) -> dict[str, float]:
        """Mean per-class accuracy on ``"all"`` and ``"difficult"`` trials (classes
        without trials are skipped), plus the trial counts."""
        out: dict[str, float] = {}
        for subset in ("all", "difficult"):
            pc = self.per_class(subset)
            out[subset] = float(pc[~pc.isnan()].mean()) if (~pc.isnan()).any() else float("nan")
        out["n_all"] = int(sum(len(h) for h in self._hits))
        out["n_difficult"] = int(torch.cat(self._difficult).sum())
        return out


def pointing_accuracy(saliency: torch.Tensor, masks: torch.Tensor, labels: torch.Tensor,
                      difficult: torch.Tensor, *, num_classes: int, tolerance: float,
                      smooth: float = 0.0) -> dict[str, float]:
    """One-call pointing game for single-label images (the scenes world).

    Args:
        saliency: ``(N, 1, h, w)`` maps (resized to the masks' size).
        masks: ``(N, H, W)`` bool ground truth.
        labels: ``(N,)`` classes; difficult: ``(N,)`` bool.
    """
    game = PointingGame(num_classes, tolerance)
    game.add(point(saliency, masks.shape[-2:], smooth=smooth), masks, labels, difficult)
    return game.accuracy()


def center_baseline(masks: torch.Tensor, labels: torch.Tensor, difficult: torch.Tensor, *,
                    num_classes: int, tolerance: float) -> dict[str, float]:
    """Pointing accuracy of always pointing at the image centre."""
    game = PointingGame(num_classes, tolerance)
    game.add(center_points(len(labels), masks.shape[-2:], masks.device), masks, labels,
             difficult)
    return game.accuracy()


def _bootstrap_interval(rates: torch.Tensor, counts: torch.Tensor, level: float,
                        n_boot: int, seed: int) -> tuple[float, float]:
    check_float(level, "level", min_value=0.0, max_value=1.0, open_min=True)
    if level >= 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    check_int(n_boot, "n_boot", min_value=10)
    ok = counts > 0
    if not ok.any():
        return float("nan"), float("nan")
    n, p = counts[ok].double(), rates[ok].double()
    g = torch.Generator().manual_seed(int(seed))
    draws = torch.binomial(n.expand(n_boot, -1).contiguous(),
                           p.expand(n_boot, -1).contiguous(), generator=g)
    means = (draws / n).mean(1)
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    lo, hi = torch.quantile(means, q).tolist()
    return lo, hi


def accuracy_interval(hit: torch.Tensor, labels: torch.Tensor, num_classes: int, *,
                      level: float = 0.95, n_boot: int = 4000, seed: int = 0
                      ) -> tuple[float, float]:
    """Confidence interval of the pointing accuracy (mean per-class hit rate) of trials
    ``hit (N,)`` bool with classes ``labels (N,)``: stratified percentile bootstrap.

    >>> lo, hi = accuracy_interval(torch.arange(200) % 4 != 0, torch.arange(200) % 2, 2)
    >>> round(lo, 2) < 0.75 < round(hi, 2)
    True
    """
    s = Shapes()
    s.check(hit, "hit", "N")
    s.check(labels, "labels", "N")
    num_classes = check_int(num_classes, "num_classes", min_value=1)
    y = labels.cpu().long()
    count = torch.bincount(y, minlength=num_classes).float()
    total = torch.bincount(y, weights=hit.cpu().float(), minlength=num_classes)
    rate = torch.where(count > 0, total / count.clamp(min=1), 0.0)
    return _bootstrap_interval(rate, count, level, n_boot, seed)


def mass_inside(saliency: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``(N,)`` fraction of each map's mass that lies on its ground truth: maps are
    resized to the masks, shifted to a minimum of 0 and normalised to sum 1 (a map that
    puts all of its mass on the object scores 1; a constant map scores the object's
    area fraction). Complements pointing, which looks at the maximum only.

    Args:
        saliency: ``(N, 1, h, w)`` or ``(N, h, w)`` maps.
        masks: ``(N, H, W)`` bool ground truth.

    >>> m = torch.zeros(1, 4, 4, dtype=torch.bool); m[0, :2] = True
    >>> mass_inside(torch.ones(1, 1, 4, 4), m)
    tensor([0.5000])
    """
    check_tensor(saliency, "saliency", floating=True)
    s = saliency if saliency.ndim == 4 else saliency[:, None]
    sh = Shapes()
    sh.check(masks, "masks", "N H W")
    sh.check(s, "saliency", "N 1 * *")
    if tuple(s.shape[-2:]) != tuple(masks.shape[-2:]):
        s = F.interpolate(s.float(), size=tuple(masks.shape[-2:]), mode="bilinear",
                          align_corners=False)
    s = s.float().flatten(1)
    s = s - s.amin(1, keepdim=True)
    total = s.sum(1)
    inside = (s * masks.flatten(1).to(s.device).float()).sum(1)
    area = masks.flatten(1).float().mean(1).to(s.device)
    return torch.where(total > 0, inside / total.clamp(min=1e-30), area)
