"""The pointing-game benchmark of the extremal-perturbation paper (Table 2), on any data
with per-class ground-truth masks: every method explains the ground-truth class of every
image, its map is (optionally) smoothed and its maximum scored with
:class:`cvbook.metrics.pointing.PointingGame`; the center baseline comes for free.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from cvbook.core.validate import Shapes, check_int
from cvbook.metrics.pointing import PointingGame, center_points, point

Method = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class PointingTable:
    """Pointing accuracies (mean of per-class hit rates) per method.

    Attributes:
        all: ``{method: accuracy}`` on every trial.
        difficult: ``{method: accuracy}`` on the difficult subset.
        hits: ``{method: (N,) bool}`` per-trial hits.
        n_all, n_difficult: trial counts.
    """

    all: dict[str, float]
    difficult: dict[str, float]
    hits: dict[str, torch.Tensor]
    n_all: int
    n_difficult: int
    _difficult: torch.Tensor | None = None

    def interval(self, name: str, subset: str = "all", z: float = 1.96
                 ) -> tuple[float, float]:
        """95% Wilson interval of the plain hit rate of ``name`` on ``subset`` (the table's
        accuracy is the mean of per-class rates; with balanced classes the two agree)."""
        h = self.hits[name].float()
        if subset == "difficult":
            h = h[self._difficult]
        n = max(int(h.numel()), 1)
        p = float(h.mean()) if h.numel() else 0.0
        den = 1 + z * z / n
        c = (p + z * z / (2 * n)) / den
        half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / den
        return max(0.0, c - half), min(1.0, c + half)

    def rows(self, digits: int = 2) -> list[tuple[str, float, float]]:
        """``[(method, all, difficult)]`` rounded, in insertion order."""
        return [(k, round(self.all[k], digits), round(self.difficult[k], digits))
                for k in self.all]

    def markdown(self, paper: Mapping[str, tuple[float, float]] | None = None,
                 digits: int = 2) -> str:
        """A Markdown table, with the paper's ``(all, difficult)`` numbers beside ours."""
        head = ("| method | all (95% CI) | difficult (95% CI) |"
                + (" paper all | paper difficult |" if paper else ""))
        sep = "|---|---|---|" + ("---|---|" if paper else "")
        lines = [head, sep]
        for name, a, d in self.rows(digits):
            la, ha = self.interval(name, "all")
            ld, hd = self.interval(name, "difficult")
            row = (f"| {name} | {a:.{digits}f} ({la:.{digits}f}–{ha:.{digits}f}) | "
                   f"{d:.{digits}f} ({ld:.{digits}f}–{hd:.{digits}f}) |")
            if paper:
                p = paper.get(name)
                row += f" {p[0]:.1f} | {p[1]:.1f} |" if p else " – | – |"
            lines.append(row)
        return "\n".join(lines)


def pointing_benchmark(model: nn.Module, images: torch.Tensor, masks: torch.Tensor,
                       labels: torch.Tensor, difficult: torch.Tensor,
                       methods: Mapping[str, Method], *, num_classes: int,
                       tolerance: float, smooth: Mapping[str, float] | None = None,
                       batch_size: int = 64, center: bool = True) -> PointingTable:
    """Run the pointing game for every method.

    Args:
        model: the classifier.
        images: ``(N, 3, H, W)``; masks: ``(N, H, W)`` bool ground truth of the class
            ``labels (N,)`` to explain; difficult: ``(N,)`` bool.
        methods: ``{name: method(model, images, labels) -> (N, 1, h, w)}``.
        tolerance: hit radius in pixels (15 px at 224 px in the paper).
        smooth: ``{name: fraction of min(H, W)}`` Gaussian smoothing before the maximum
            (the paper: 0.02 for gradient-like maps, 0.09 for extremal perturbations).
        batch_size: images per call of a method.
        center: add the "center" baseline first.
    """
    s = Shapes()
    s.check(images, "images", "N C H W", floating=True)
    s.check(masks, "masks", "N H W")
    s.check(labels, "labels", "N")
    s.check(difficult, "difficult", "N")
    n = images.shape[0]
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    smooth = dict(smooth or {})
    size = images.shape[-2:]
    res_all, res_diff, hits = {}, {}, {}
    names = (["center"] if center else []) + list(methods)
    for name in names:
        game = PointingGame(num_classes, tolerance)
        if name == "center":
            pts = center_points(n, size, images.device)
        else:
            pts = torch.cat([point(methods[name](model, images[i:i + batch_size],
                                                 labels[i:i + batch_size]), size,
                                   smooth=smooth.get(name, 0.0))
                             for i in range(0, n, batch_size)])
        hits[name] = game.add(pts, masks, labels, difficult)
        acc = game.accuracy()
        res_all[name], res_diff[name] = acc["all"], acc["difficult"]
    return PointingTable(all=res_all, difficult=res_diff, hits=hits, n_all=n,
                         n_difficult=int(difficult.sum()),
                         _difficult=difficult.bool().cpu())
