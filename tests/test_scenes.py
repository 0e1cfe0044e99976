"""Tests of the scenes world: determinism, exact ground truth, analytic areas, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from cvbook.data.loaders import TensorBatches
from cvbook.data.scenes import SHAPES, SceneConfig, make_scenes


def test_shapes_dtypes_and_ranges():
    b = make_scenes(12, SceneConfig(image_size=32), seed=0)
    assert b.images.shape == (12, 3, 32, 32) and b.images.dtype == torch.float32
    assert 0 <= b.images.min() and b.images.max() <= 1
    assert b.labels.dtype == torch.int64 and b.labels.max() < len(SHAPES)
    assert b.masks.shape == (12, 32, 32) and b.masks.dtype == torch.bool
    assert b.boxes.shape == (12, 4) and len(b) == 12
    assert b[:3].images.shape[0] == 3 and b.to("cpu").labels.equal(b.labels)


def test_deterministic_per_seed():
    a, b = make_scenes(6, seed=3), make_scenes(6, seed=3)
    c = make_scenes(6, seed=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)
    g = torch.Generator().manual_seed(3)
    assert torch.equal(make_scenes(6, generator=g).images, a.images)


def test_boxes_are_tight_around_masks():
    b = make_scenes(32, SceneConfig(image_size=48), seed=1)
    for i in range(len(b)):
        ys, xs = torch.nonzero(b.masks[i], as_tuple=True)
        assert b.boxes[i].tolist() == [xs.min().item(), ys.min().item(),
                                       xs.max().item() + 1, ys.max().item() + 1]
        cx, cy = b.centers[i]
        x0, y0, x1, y1 = b.boxes[i]
        assert x0 <= cx <= x1 and y0 <= cy <= y1


@pytest.mark.parametrize("shape,area", [("disk", math.pi), ("square", 1.6 ** 2),
                                        ("triangle", 3 * math.sqrt(3) / 4),
                                        ("ring", math.pi * (1.0 - 0.44 ** 2))])
def test_mask_areas_match_the_analytic_shapes(shape, area):
    """Mask pixels / r^2 equals the shape's analytic area in units of its radius."""
    cfg = SceneConfig(image_size=128, classes=(shape, "cross"), scale_range=(0.6, 0.7),
                      distractors=(0, 0))
    b = make_scenes(40, cfg, seed=0)
    sel = b.labels == 0
    r = b.diameters[sel] / 2
    ratio = b.masks[sel].sum((1, 2)).float() / r ** 2
    assert ratio.mean().item() == pytest.approx(area, rel=0.03)


def test_scale_range_controls_object_size():
    small = make_scenes(64, SceneConfig(image_size=64, scale_range=(0.2, 0.25)), seed=0)
    big = make_scenes(64, SceneConfig(image_size=64, scale_range=(0.6, 0.7)), seed=0)
    assert (small.diameters <= 0.25 * 64 + 1e-4).all() and (small.diameters >= 0.2 * 64).all()
    assert small.masks.sum((1, 2)).float().mean() < big.masks.sum((1, 2)).float().mean() / 4


def test_difficult_flag_and_distractors():
    cfg = SceneConfig(image_size=48, scale_range=(0.2, 0.6), distractors=(0, 2),
                      difficult_below=0.35)
    b = make_scenes(200, cfg, seed=2)
    has_distractor = b.distractor_masks.any(2).any(1)
    small = b.diameters / 48 < 0.35
    # difficult => small; and every small object with a visible distractor is difficult
    assert (~b.difficult | small).all()
    assert (b.difficult | ~(small & has_distractor)).all()
    assert 0 < b.difficult.sum() < 200
    assert not (b.distractor_masks & b.masks).any()
    none = make_scenes(20, SceneConfig(distractors=(0, 0)), seed=0)
    assert not none.distractor_masks.any() and not none.difficult.any()


def test_spurious_cue_is_class_specific():
    cfg = SceneConfig(image_size=48, cue_prob=1.0, classes=("disk", "square", "star"))
    b = make_scenes(60, cfg, seed=0)
    assert b.has_cue.all() and b.cue_masks.any(2).any(1).all()
    xs = torch.stack([torch.nonzero(m.any(0))[:, 0].float().mean() for m in b.cue_masks])
    for c in range(3):  # one cue position per class, distinct between classes
        assert xs[b.labels == c].std() < 1e-6
    assert len({round(xs[b.labels == c][0].item()) for c in range(3)}) == 3
    assert not make_scenes(10, SceneConfig(), seed=0).cue_masks.any()


@pytest.mark.parametrize("kw,err", [
    (dict(image_size=8), ValueError), (dict(image_size=32.0), TypeError),
    (dict(classes=("disk",)), ValueError), (dict(classes=("disk", "blob")), ValueError),
    (dict(classes=("disk", "disk")), ValueError), (dict(scale_range=(0.5, 0.2)), ValueError),
    (dict(scale_range=(0.0, 0.5)), ValueError), (dict(distractors=(2, 1)), ValueError),
    (dict(clutter=2.0), ValueError), (dict(cue_prob=-0.1), ValueError),
])
def test_config_rejects_bad_values(kw, err):
    with pytest.raises(err):
        SceneConfig(**kw)


def test_make_scenes_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n must be >= 1"):
        make_scenes(0)
    with pytest.raises(TypeError, match="SceneConfig"):
        make_scenes(2, {"image_size": 32})
    with pytest.raises(ValueError, match="seed or a generator"):
        make_scenes(2, seed=None)


def test_tensor_batches():
    x, y = torch.arange(10.0), torch.arange(10)
    it = TensorBatches(x, y, batch_size=4, generator=torch.Generator().manual_seed(0))
    assert len(it) == 3
    seen = torch.cat([bx for bx, _ in it])
    assert sorted(seen.tolist()) == list(range(10))
    assert all(torch.equal(bx.long(), by) for bx, by in it)
    assert len(TensorBatches(x, batch_size=4, drop_last=True)) == 2
    with pytest.raises(ValueError, match="same length"):
        TensorBatches(x, y[:3], batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        TensorBatches(x, batch_size=0)
