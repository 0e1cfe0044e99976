"""The cross-argument shape checks of the library speak with one voice
(:class:`cvbook.core.validate.Shapes`): "<arg> must have shape (<spec>) with <D> = <n> as
in <other arg> (<spec>); got (<shape>)"."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from cvbook.attribution import spearman
from cvbook.attribution.benchmark import pointing_benchmark
from cvbook.attribution.normgrad import conv_contribution_norms
from cvbook.geometry import Camera, to_camera
from cvbook.geometry.so3 import axis_angle_to_matrix, quaternion_to_matrix
from cvbook.metrics.clustering import cluster_acc
from cvbook.metrics.pointing import PointingGame, hits


def _raises(match: str):
    return pytest.raises(ValueError, match=re.escape(match))


def test_pointing() -> None:
    masks = torch.zeros(4, 8, 8, dtype=torch.bool)
    with _raises("points must have shape (N, 2) with N = 4 as in masks (N, H, W); got (3, 2)"):
        hits(torch.zeros(3, 2), masks, 1.0)
    game = PointingGame(3, 1.0)
    with _raises("labels must have shape (N,) with N = 4 as in masks (N, H, W); got (2,)"):
        game.add(torch.zeros(4, 2), masks, torch.zeros(2, dtype=torch.long))
    with _raises("difficult must have shape (N,) with N = 4 as in masks (N, H, W); got (5,)"):
        game.add(torch.zeros(4, 2), masks, torch.zeros(4, dtype=torch.long),
                 torch.zeros(5, dtype=torch.bool))
    assert not game._hits  # nothing was recorded by the failed calls


def test_benchmark() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
    images = torch.zeros(4, 3, 8, 8)
    with _raises("masks must have shape (N, H, W) with H = 8 as in images (N, C, H, W); got "
                 "(4, 6, 8)"):
        pointing_benchmark(net, images, torch.zeros(4, 6, 8, dtype=torch.bool),
                           torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.bool),
                           {}, num_classes=2, tolerance=1.0)
    with _raises("labels must have shape (N,) with N = 4 as in images (N, C, H, W); got (3,)"):
        pointing_benchmark(net, images, torch.zeros(4, 8, 8, dtype=torch.bool),
                           torch.zeros(3, dtype=torch.long), torch.zeros(4, dtype=torch.bool),
                           {}, num_classes=2, tolerance=1.0)


def test_normgrad_helpers() -> None:
    with _raises("b must have shape (N, P) with P = 5 as in a (N, P); got (2, 4)"):
        spearman(torch.zeros(2, 5), torch.zeros(2, 4))
    conv = nn.Conv2d(3, 4, 3, padding=1)
    with _raises("g must have shape (N, D, *, *) with N = 2 as in x (N, C, H, W); got "
                 "(3, 4, 8, 8)"):
        conv_contribution_norms(torch.zeros(2, 3, 8, 8), torch.zeros(3, 4, 8, 8), conv)


def test_clustering() -> None:
    with _raises("y_pred must have shape (N,) with N = 3 as in y_true (N,); got (2,)"):
        cluster_acc([0, 1, 2], [0, 1])


def test_geometry() -> None:
    R = torch.eye(3).expand(2, 3, 3)
    with _raises("t must have shape (N, 3) with N = 2 as in R (N, 3, 3); got (3, 3)"):
        Camera(R=R, t=torch.zeros(3, 3), kind="orthographic", focal=torch.ones(2))
    with _raises("focal must have shape (N,) with N = 2 as in R (N, 3, 3); got (1,)"):
        Camera(R=R, t=torch.zeros(2, 3), kind="orthographic", focal=torch.ones(1))
    with _raises("R must have shape (..., 3, 3); got (2, 3, 4)"):
        to_camera(torch.zeros(2, 5, 3), torch.zeros(2, 3, 4))
    with _raises("w must have shape (..., 3); got (4, 2)"):
        axis_angle_to_matrix(torch.zeros(4, 2))
    with _raises("q must have shape (..., 4) (at least 1 dimensions); got ()"):
        quaternion_to_matrix(torch.tensor(1.0))
