"""Plotting helpers shared by the chapters: image grids, heat-map overlays, curves,
skeletons in 2D and 3D (:mod:`cvbook.viz.skeleton`), and interactive explorers that also
leave a static figure for the printed book."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from cvbook.core.validate import check_tensor
from cvbook.viz.skeleton import draw_skeleton_2d, draw_skeleton_3d

__all__ = ["draw_skeleton_2d", "draw_skeleton_3d", "explorer", "image_grid", "overlay",
           "to_numpy_image"]


def to_numpy_image(img: torch.Tensor) -> np.ndarray:
    """``(C, H, W)`` or ``(H, W)`` tensor in [0, 1] -> ``(H, W, C)``/``(H, W)`` numpy array."""
    check_tensor(img, "img")
    if img.ndim == 3:
        if img.shape[0] not in (1, 3):
            raise ValueError(f"img must have 1 or 3 channels, got shape {tuple(img.shape)}")
        arr = img.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
        return arr[..., 0] if arr.shape[-1] == 1 else arr
    if img.ndim == 2:
        return img.detach().float().cpu().numpy()
    raise ValueError(f"img must be (C, H, W) or (H, W), got shape {tuple(img.shape)}")


def image_grid(images: torch.Tensor | Sequence[torch.Tensor], *, ncols: int = 8,
               titles: Sequence[str] | None = None, size: float = 1.4,
               cmap: str | None = None, suptitle: str | None = None):
    """Show ``(N, C, H, W)`` images in a grid; returns the figure."""
    n = len(images)
    if n == 0:
        raise ValueError("images is empty")
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            arr = to_numpy_image(images[i])
            ax.imshow(arr, cmap=cmap if arr.ndim == 2 else None, interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def overlay(ax, image: torch.Tensor, heatmap: torch.Tensor, *, alpha: float = 0.5,
            cmap: str = "jet", title: str | None = None) -> None:
    """Draw ``heatmap`` (H, W) over ``image`` (C, H, W) on ``ax`` (resized if needed)."""
    check_tensor(heatmap, "heatmap")
    h = heatmap.detach().float()
    while h.ndim > 2:
        h = h[0]
    if h.shape != image.shape[-2:]:
        h = torch.nn.functional.interpolate(h[None, None], size=image.shape[-2:],
                                            mode="bilinear", align_corners=False)[0, 0]
    ax.imshow(to_numpy_image(image))
    ax.imshow(h.cpu().numpy(), cmap=cmap, alpha=alpha)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=8)


def explorer(render: Callable[..., Any], static: Sequence[dict[str, Any]],
             **controls: Any):
    """An interactive explorer with a static fallback for the book.

    ``render(ax, **values)`` draws one state on a matplotlib axes. The static figure
    draws every dict of ``static`` side by side (this is what the HTML book and a
    reader without a live kernel see); then, when ipywidgets is available, an
    ``interact`` widget built from ``controls`` (ipywidgets abbreviations such as
    ``(lo, hi, step)`` or widget instances) lets a reader explore in a live kernel.

    Returns:
        The static figure.
    """
    if not static:
        raise ValueError("static must list at least one state to draw")
    fig, axes = plt.subplots(1, len(static), figsize=(2.6 * len(static), 2.6), squeeze=False)
    for ax, values in zip(axes[0], static):
        render(ax, **values)
    fig.tight_layout()
    plt.show()
    try:
        import ipywidgets as widgets
        from IPython.display import display
    except ImportError:  # pragma: no cover - ipywidgets is a dependency
        return fig

    out = widgets.Output()
    # The live figure is drawn only once a control moves: the static figure above already
    # shows the states, and executors disagree on where a figure drawn into an Output
    # widget at creation goes (nbconvert keeps it in the widget's state, nbval's kernel
    # client records it as one more cell output), which would make stored outputs differ.
    pending_first_call = [True]

    def _draw(**values):
        if pending_first_call:
            pending_first_call.clear()
            return
        with out:
            out.clear_output(wait=True)
            f, ax = plt.subplots(figsize=(3.5, 3.5))
            render(ax, **values)
            plt.show()

    ui = widgets.interactive(_draw, **controls)
    display(widgets.VBox([widgets.HBox(ui.children[:-1]), out]))
    return fig
