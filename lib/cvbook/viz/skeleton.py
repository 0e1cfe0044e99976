"""Skeletons: 2D keypoints with their visibility, and 3D skeletons seen from any azimuth.

A skeleton is a set of ``K`` points and a kinematic tree ``parents`` (``parents[j]`` is
the parent of joint ``j``, ``-1`` for the root), as in :data:`cvbook.data.puppet.PARENTS`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from cvbook.core.validate import Shapes, check_float

__all__ = ["draw_skeleton_2d", "draw_skeleton_3d"]


def _check_parents(parents: Sequence[int], k: int) -> list[int]:
    parents = [int(p) for p in parents]
    if len(parents) != k or any(p < -1 or p >= k for p in parents):
        raise ValueError(f"parents must list K = {k} parent indices in [-1, {k}); got "
                         f"{len(parents)} entries")
    return parents


def draw_skeleton_2d(ax, y: torch.Tensor, parents: Sequence[int],
                     vis: torch.Tensor | None = None, color: str = "k") -> None:
    """Draw 2D keypoints ``y`` ``(K, 2)`` and their bones on ``ax``: visible keypoints
    filled (red), missing ones hollow (blue); ``vis`` ``(K,)`` (``None``: all visible).
    The axes get an equal aspect and no frame."""
    s = Shapes()
    s.check(y, "y", "K 2")
    if vis is not None:
        s.check(vis, "vis", "K")
    parents = _check_parents(parents, y.shape[0])
    p = y.detach().float().cpu().numpy()
    for j, q in enumerate(parents):
        if q >= 0:
            ax.plot(p[[q, j], 0], p[[q, j], 1], "-", color=color, lw=1.5)
    v = np.ones(len(p), bool) if vis is None else vis.detach().bool().cpu().numpy()
    ax.scatter(p[v, 0], p[v, 1], s=14, color="tab:red", zorder=3)
    ax.scatter(p[~v, 0], p[~v, 1], s=14, facecolors="none", edgecolors="tab:blue", zorder=3)
    ax.set_aspect("equal")
    ax.axis("off")


def draw_skeleton_3d(ax, skeletons: Sequence[torch.Tensor], parents: Sequence[int], *,
                     colors: Sequence[str] = ("k", "tab:red", "tab:blue", "tab:green"),
                     azimuth: float = 0.0, elevation: float = 10.0, lim: float = 0.9,
                     title: str | None = None):
    """Draw 3D skeletons (each ``(K, 3)`` in a camera frame: ``x`` right, ``y`` up,
    ``z`` depth) turned to ``azimuth`` degrees, upright, in one 3D axes.

    ``ax`` may be a 2D axes (for instance one panel of :func:`cvbook.viz.explorer`): it
    is replaced by a 3D axes in the same place. Returns the 3D axes.
    """
    if not skeletons:
        raise ValueError("skeletons must hold at least one (K, 3) tensor")
    s = Shapes()
    for i, pts in enumerate(skeletons):
        s.check(pts, f"skeletons[{i}]", "K 3")
    if len(colors) < len(skeletons):
        raise ValueError(f"colors must name at least {len(skeletons)} colours, got "
                         f"{len(colors)}")
    azimuth = check_float(azimuth, "azimuth")
    lim = check_float(lim, "lim", min_value=0.0, open_min=True)
    parents = _check_parents(parents, s["K"])
    if getattr(ax, "name", "") != "3d":
        fig, spec = ax.figure, ax.get_subplotspec()
        ax.remove()
        ax = fig.add_subplot(spec, projection="3d")
    for pts, col in zip(skeletons, colors):
        p = pts.detach().float().cpu().numpy()
        for j, q in enumerate(parents):
            if q >= 0:  # plot (x, depth, y) so that the figure stands upright
                ax.plot(p[[q, j], 0], p[[q, j], 2], p[[q, j], 1], color=col, lw=1.5)
    ax.view_init(elev=elevation, azim=-90 + azimuth)
    ax.set_xlim(-lim, lim), ax.set_ylim(-lim, lim), ax.set_zlim(-lim, lim)
    ax.set_xticks([]), ax.set_yticks([]), ax.set_zticks([])
    if title:
        ax.set_title(title, fontsize=7)
    return ax
