"""The pointing pieces chapter 02 adds: the tie rule of ``point``, ``tie_fraction``,
bootstrap intervals, ``mass_inside``, and the per-layer harness ``layer_pointing``
(against a hand-written loop)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import cvbook.attribution as A
from cvbook.attribution.normgrad import PAPER_LAYERS, layer_pointing
from cvbook.metrics.pointing import (
    PointingGame,
    accuracy_interval,
    mass_inside,
    point,
    tie_fraction,
)
from cvbook.nn import SceneCNN


def test_first_rule_is_unchanged_and_random_rule_draws_among_ties() -> None:
    s = torch.full((400, 1, 6, 6), 0.3)
    assert (point(s) == 0).all()                             # argmax: the first pixel
    g = torch.Generator().manual_seed(0)
    p = point(s, ties="random", generator=g)
    counts = torch.bincount((p[:, 1] * 6 + p[:, 0]).long(), minlength=36)
    assert (counts > 0).sum() >= 30                          # spread over the 36 pixels
    # a unique maximum is found by both rules, also after a resize (ulp-level ties)
    s[:, 0, 2, 4] = 1.0
    for ties in ("first", "random"):
        q = point(s, (12, 12), ties=ties, generator=g)
        assert (q[:, 0] >= 8).all() and (q[:, 0] <= 9).all()
        assert (q[:, 1] >= 4).all() and (q[:, 1] <= 5).all()
    with pytest.raises(ValueError, match="ties must be one of"):
        point(s, ties="last")


def test_resized_constant_map_is_one_big_tie() -> None:
    s = torch.full((2, 1, 8, 8), 0.37)
    big = F.interpolate(s, size=(64, 64), mode="bilinear", align_corners=False)
    assert (tie_fraction(big) == 1).all()
    assert tie_fraction(torch.eye(4)[None]).item() == pytest.approx(0.25)


def test_interval_matches_the_normal_approximation_and_contains_the_accuracy() -> None:
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(2000) % 4
    hit = torch.rand(2000, generator=g) < 0.6
    lo, hi = accuracy_interval(hit, labels, 4)
    game = PointingGame(4, 0.0)
    masks = torch.zeros(2000, 3, 3, dtype=torch.bool)
    masks[hit, 1, 1] = True
    game.add(torch.ones(2000, 2), masks, labels)
    acc = game.accuracy()["all"]
    assert lo < acc < hi
    assert game.interval() == pytest.approx((lo, hi), abs=0.005)
    # per-class binomial variances: sd of the mean of 4 class means
    pc = game.per_class()
    sd = math.sqrt(sum(p * (1 - p) / 500 for p in pc.tolist())) / 4
    assert (hi - lo) / 2 == pytest.approx(1.96 * sd, rel=0.1)
    with pytest.raises(ValueError, match="level"):
        accuracy_interval(hit, labels, 4, level=1.0)


def test_mass_inside_analytic_cases() -> None:
    m = torch.zeros(2, 8, 8, dtype=torch.bool)
    m[:, :, :2] = True                                       # a quarter of the image
    s = torch.zeros(2, 1, 8, 8)
    s[0, 0, :, :2] = 1.0                                     # all mass on the object
    torch.testing.assert_close(mass_inside(s, m), torch.tensor([1.0, 0.25]))
    small = torch.zeros(1, 1, 4, 4)
    small[0, 0, :, :1] = 1.0                                 # resized to 8x8 first
    assert 0.6 < mass_inside(small, m[:1]).item() <= 1.0


def test_layer_pointing_equals_a_hand_written_loop() -> None:
    torch.manual_seed(0)
    model = SceneCNN(num_classes=3, width=4).eval()
    x = torch.rand(10, 3, 32, 32)
    y = torch.arange(10) % 3
    masks = torch.zeros(10, 32, 32, dtype=torch.bool)
    masks[:, 8:20, 10:24] = True
    difficult = torch.arange(10) % 2 == 0
    layers = PAPER_LAYERS["scenes_cnn"]
    res = layer_pointing(model, x, y, masks, y, difficult, layers, num_classes=3,
                         tolerance=2.0, batch_size=4, ties="first", progress=False, keep=3)
    maps = A.layer_saliencies(model, x, y, layers)
    for a, per_layer in maps.items():
        for name, m in zip(layers, per_layer):
            game = PointingGame(3, 2.0)
            game.add(point(m, (32, 32)), masks, y, difficult)
            assert res.accuracy(a, name) == pytest.approx(game.accuracy()["all"])
            torch.testing.assert_close(res.mass[a, name], mass_inside(m, masks))
            torch.testing.assert_close(res.maps[a][layers.index(name)], m[:3])
    comb = A.combine_maps(maps["normgrad_selective"], (32, 32), mode="product")
    game = PointingGame(3, 2.0)
    game.add(point(comb, (32, 32)), masks, y, difficult)
    assert res.combined.accuracy()["all"] == pytest.approx(game.accuracy()["all"])
    # the gradient at the last layer is constant over space (global average pooling)
    assert (res.ties["gradient", layers[-1]] == 1).all()
    assert (res.ties["normgrad", layers[-1]] < 1).all()


def test_layer_pointing_validates() -> None:
    model = SceneCNN(num_classes=3, width=4).eval()
    x = torch.rand(4, 3, 32, 32)
    m = torch.zeros(4, 32, 32, dtype=torch.bool)
    with pytest.raises(ValueError, match="masks"):
        layer_pointing(model, x, torch.zeros(4, dtype=torch.long), m[:3],
                       torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.bool),
                       ["features.relu1"], num_classes=3, tolerance=1.0, progress=False)
    with pytest.raises(ValueError, match="combine"):
        layer_pointing(model, x, torch.zeros(4, dtype=torch.long), m,
                       torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.bool),
                       ["features.relu1"], num_classes=3, tolerance=1.0,
                       aggregates=("gradient",), progress=False)
