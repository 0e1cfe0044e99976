"""Pointing game: against brute force, the center baseline, per-class means, subsets;
and the VOC adapter on fake annotations."""

from __future__ import annotations

import math

import pytest
import torch

from cvbook.metrics.pointing import (
    PointingGame,
    center_baseline,
    center_points,
    hits,
    point,
    pointing_accuracy,
)


def test_hits_match_brute_force():
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(20, 12, 12, generator=g) > 0.93
    pts = torch.randint(0, 12, (20, 2), generator=g).float()
    got = hits(pts, masks, 2.5)
    for i in range(20):
        want = any(masks[i, y, x] and math.hypot(x - pts[i, 0], y - pts[i, 1]) <= 2.5
                   for y in range(12) for x in range(12))
        assert bool(got[i]) == want


def test_point_takes_the_maximum_after_resize_and_smoothing():
    s = torch.zeros(2, 1, 8, 8)
    s[0, 0, 2, 5] = 1
    s[1, 0, 7, 0] = 1
    torch.testing.assert_close(point(s), torch.tensor([[5.0, 2.0], [0.0, 7.0]]))
    big = point(s, (16, 16))
    assert big.shape == (2, 2) and (big[0] - torch.tensor([11.0, 4.0])).abs().max() <= 1
    assert point(s[:, 0], smooth=0.1).shape == (2, 2)
    with pytest.raises(ValueError, match="saliency"):
        point(torch.zeros(2, 3, 4, 4))


def test_per_class_mean_and_subsets():
    game = PointingGame(3, tolerance=0)
    masks = torch.zeros(4, 5, 5, dtype=torch.bool)
    masks[:, 2, 2] = True
    pts = torch.tensor([[2.0, 2.0], [0.0, 0.0], [2.0, 2.0], [2.0, 2.0]])
    labels = torch.tensor([0, 0, 1, 2])
    difficult = torch.tensor([False, True, True, False])
    game.add(pts, masks, labels, difficult)
    pc = game.per_class()
    torch.testing.assert_close(pc, torch.tensor([0.5, 1.0, 1.0]))
    acc = game.accuracy()
    assert acc["all"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert acc["difficult"] == pytest.approx((0.0 + 1.0) / 2)   # class 2 has no trial
    assert acc["n_all"] == 4 and acc["n_difficult"] == 2
    with pytest.raises(ValueError, match="labels"):
        game.add(pts, masks, torch.tensor([0, 0, 1, 3]))


def test_center_baseline_and_one_call():
    masks = torch.zeros(2, 9, 9, dtype=torch.bool)
    masks[0, 4, 4] = True      # at the centre
    masks[1, 0, 0] = True      # in a corner
    torch.testing.assert_close(center_points(2, (9, 9)), torch.tensor([[4.0, 4.0]] * 2))
    acc = center_baseline(masks, torch.tensor([0, 1]), torch.tensor([False, True]),
                          num_classes=2, tolerance=1)
    assert acc["all"] == 0.5 and acc["difficult"] == 0.0
    sal = masks[:, None].float()
    assert pointing_accuracy(sal, masks, torch.tensor([0, 1]), torch.tensor([False, True]),
                             num_classes=2, tolerance=0)["all"] == 1.0


def test_voc_adapter_on_fake_annotation():
    from cvbook.data.voc import VOC_CLASSES, annotation_trials, voc_reward

    ann = {"annotation": {"size": {"width": "100", "height": "50"}, "object": [
        {"name": "dog", "bndbox": {"xmin": "1", "ymin": "1", "xmax": "20", "ymax": "10"}},
        {"name": "cat", "bndbox": {"xmin": "51", "ymin": "1", "xmax": "100", "ymax": "50"}},
    ]}}
    trials = annotation_trials(ann, 10)
    assert [t["label"] for t in trials] == [VOC_CLASSES.index("cat"), VOC_CLASSES.index("dog")]
    cat, dog = trials
    assert cat["mask"][:, 5:].all() and not cat["mask"][:, :5].any()
    assert dog["difficult"] and not cat["difficult"]
    assert dog["mask"][:2, :2].all() and dog["mask"].sum() == 4
    logits = torch.zeros(2, 1000)
    logits[0, 281] = 5.0
    r = voc_reward(torch.tensor([VOC_CLASSES.index("cat"), VOC_CLASSES.index("cow")]))(logits)
    assert r.shape == (2,) and r[0] > r[1]


def test_voc_pointing_set_on_fake_files(tmp_path):
    from PIL import Image

    from cvbook.data.voc import voc_pointing_set

    base = tmp_path / "VOCdevkit" / "VOC2007"
    for d in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (base / d).mkdir(parents=True)
    Image.new("RGB", (40, 30), (120, 30, 200)).save(base / "JPEGImages" / "000001.jpg")
    (base / "Annotations" / "000001.xml").write_text(
        "<annotation><filename>000001.jpg</filename><size><width>40</width><height>30"
        "</height><depth>3</depth></size><object><name>cat</name><difficult>0</difficult>"
        "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>20</xmax><ymax>15</ymax></bndbox>"
        "</object><object><name>car</name><difficult>0</difficult><bndbox><xmin>21</xmin>"
        "<ymin>1</ymin><xmax>40</xmax><ymax>30</ymax></bndbox></object></annotation>")
    (base / "ImageSets" / "Main" / "test.txt").write_text("000001\n")
    data = voc_pointing_set(str(tmp_path), size=16)
    assert data["images"].shape == (2, 3, 16, 16)
    assert data["masks"].shape == (2, 16, 16) and data["labels"].tolist() == [6, 7]


def test_voc_hit_region_at_original_resolution_and_all_difficult_skip():
    from cvbook.data.voc import VOC_CLASSES, annotation_trials

    # a 100x50 image squashed to a 10x10 grid: grid pixel (i, j) has its centre at
    # ((j + 0.5) * 10, (i + 0.5) * 5) original pixels
    ann = {"annotation": {"size": {"width": "100", "height": "50"}, "object": [
        {"name": "dog", "difficult": "0",
         "bndbox": {"xmin": "41", "ymin": "21", "xmax": "60", "ymax": "30"}},
        {"name": "cat", "difficult": "1",
         "bndbox": {"xmin": "1", "ymin": "1", "xmax": "10", "ymax": "10"}},
    ]}}
    plain = annotation_trials(ann, 10)
    assert len(plain) == 2                                    # default: every class kept
    (dog,) = annotation_trials(ann, 10, tolerance=12.0, skip_all_difficult=True)
    assert dog["label"] == VOC_CLASSES.index("dog")
    ys, xs = (torch.arange(10) + 0.5) * 5, (torch.arange(10) + 0.5) * 10
    dy = torch.clamp(torch.maximum(20 - ys, ys - 30), min=0)
    dx = torch.clamp(torch.maximum(40 - xs, xs - 60), min=0)
    brute = (dy[:, None] ** 2 + dx[None] ** 2).sqrt() < 12.0   # strict, as TorchRay
    assert torch.equal(dog["mask"], brute)
    # by hand: 7.5 px above the box is a hit, 17.5 px is not; 5 px left is, 15 px is not
    m = dog["mask"]
    assert m[2, 5] and not m[0, 5] and m[5, 3] and not m[5, 2]
