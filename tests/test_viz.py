"""Tests of the plotting helpers: they draw what they are given and reject bad input."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch

from cvbook.core import autocast, supports_amp
from cvbook.core.train import History
from cvbook.viz import explorer, image_grid, overlay, to_numpy_image


def test_to_numpy_image_layouts():
    assert to_numpy_image(torch.rand(3, 5, 7)).shape == (5, 7, 3)
    assert to_numpy_image(torch.rand(1, 5, 7)).shape == (5, 7)
    assert to_numpy_image(torch.rand(5, 7)).shape == (5, 7)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        to_numpy_image(torch.rand(4, 5, 7))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        to_numpy_image(torch.rand(2, 3, 5, 7))
    with pytest.raises(TypeError, match="torch.Tensor"):
        to_numpy_image([[0.0]])


def test_image_grid_and_overlay():
    fig = image_grid(torch.rand(5, 3, 8, 8), ncols=3, titles=list("abcde"))
    assert len(fig.axes) == 6 and fig.axes[0].get_title() == "a"
    plt.close(fig)
    with pytest.raises(ValueError, match="empty"):
        image_grid(torch.rand(0, 3, 8, 8))
    fig, ax = plt.subplots()
    overlay(ax, torch.rand(3, 16, 16), torch.rand(4, 4), title="t")
    assert len(ax.images) == 2 and ax.images[1].get_array().shape == (16, 16)
    plt.close(fig)


def test_explorer_draws_static_states():
    calls = []
    fig = explorer(lambda ax, k: calls.append(k), [dict(k=1), dict(k=2)], k=(1, 4, 1))
    # only the static states: the live widget draws nothing until a control moves (so
    # that nbconvert and nbval record the same cell outputs)
    assert calls == [1, 2] and len(fig.axes) == 2
    with pytest.raises(ValueError, match="static"):
        explorer(lambda ax, k: None, [], k=(1, 4, 1))
    plt.close("all")


def test_history_plot():
    h = History(loss=[3.0, 2.0, 1.0], metrics={"acc": [0.1, 0.5, 0.9]})
    ax = h.plot(logy=True)
    assert len(ax.lines) == 2 and ax.get_yscale() == "log"
    plt.close("all")


def test_amp_helpers_reject_bad_devices():
    assert not supports_amp("cpu")
    with pytest.raises(ValueError, match="device must be one of"):
        supports_amp("tpu")
    with pytest.raises(TypeError, match="device must be"):
        autocast(3)
