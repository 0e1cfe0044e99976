"""cvbook.autocorrect: the network's inputs (exact crops, memory without the object
itself), the losses (zero at the truth, gradients against finite differences, symmetry
invariance), the averaging argument (Monte Carlo against the closed form), sequential
correction with an oracle network, presets and validation."""

import math
from dataclasses import replace

import pytest
import torch

from cvbook.autocorrect import (
    PRESETS,
    AutoCorrectConfig,
    AutoCorrectNet,
    annotation_iou,
    annotation_loss,
    correct_annotations,
    inria_tiles,
    l2_optimal_correction,
    make_model,
    object_inputs,
    parameter_loss,
    prepare_objects,
    train_autocorrect,
)
from cvbook.autocorrect.experiment import _correct
from cvbook.core import select_preset
from cvbook.data.aerial import AerialConfig, annotation_masks, make_aerial
from cvbook.geometry import rasterize_polygons, similarity_transform, splat_polygons

WORLD = AerialConfig(tile_size=64, grid=2, buildings=(2, 5))


@pytest.fixture(scope="module")
def world():
    return make_aerial(6, WORLD, seed=0)


def square(c=(20.0, 20.0), h=6.0, dtype=torch.float32):
    x, y = c
    return torch.tensor([[x - h, y - h], [x + h, y - h], [x + h, y + h], [x - h, y + h]],
                        dtype=dtype)


# ------------------------------------------------------------------ inputs
def test_inputs_are_exact_crops_and_the_memory_omits_the_object(world):
    data = prepare_objects(world)
    idx, slot = data.tile[:5], data.slot[:5]
    polys = data.noisy[idx, slot]
    x, origin = object_inputs(data.images, data.memory_noisy, idx, polys, crop=32)
    assert x.shape == (5, 5, 32, 32) and (origin == origin.round()).all()
    # the image channels copy the tile's pixels (zeros outside)
    for b in range(5):
        ox, oy = (int(v) for v in origin[b])
        y0, x0 = max(oy, 0), max(ox, 0)
        y1, x1 = min(oy + 32, 64), min(ox + 32, 64)
        assert torch.equal(x[b, :3, y0 - oy:y1 - oy, x0 - ox:x1 - ox],
                           data.images[idx[b], :, y0:y1, x0:x1])
    # the memory channel equals the rasterised other annotations of the tile
    for b in range(5):
        others = data.valid[idx[b]].clone()
        others[slot[b]] = False
        local = data.noisy[idx[b]][others] - origin[b]
        want = rasterize_polygons(local, 32).sum(0).clamp(0, 1) if others.any() else 0
        torch.testing.assert_close(x[b, 4], torch.as_tensor(want, dtype=x.dtype)
                                   .expand(32, 32), atol=2e-5, rtol=0)
    # the mask channel is the annotation itself, centred
    torch.testing.assert_close(x[:, 3], rasterize_polygons(polys - origin[:, None], 32))


def test_splat_matches_full_rasterisation_and_removes_exactly(world):
    maps = torch.zeros(2, 64, 64)
    polys = world.polygons[:2, 0]
    splat_polygons(maps, torch.tensor([0, 1]), polys, window=48)
    torch.testing.assert_close(maps, rasterize_polygons(polys, 64), atol=1e-5, rtol=0)
    splat_polygons(maps, torch.tensor([0, 1]), polys, window=48, weight=-1.0)
    assert maps.abs().max() < 1e-5
    full = annotation_masks(world.polygons, world.valid, 64, reduce="sum")
    win = annotation_masks(world.polygons, world.valid, 64, reduce="sum", window=48)
    torch.testing.assert_close(win, full, atol=1e-5, rtol=0)


# ------------------------------------------------------------------ losses
def test_annotation_loss_is_zero_at_the_truth_and_grows_with_the_error():
    q = square()[None].expand(3, 4, 2)
    origin = torch.full((3, 2), 4.0)
    t = torch.tensor([[0.0, 0, 0, 0], [2.0, 0, 0, 0], [4.0, 0, 0, 0]])
    target = q  # the input is already right: the identity is the answer
    loss = annotation_loss(t, q, target, origin, 32)
    assert loss[0] < 1e-12 and 0 < loss[1] < loss[2]
    # consistency form: input t . a, target a, prediction t^-1 gives zero
    a = square()[None].expand(3, 4, 2)
    moved = similarity_transform(a, t)
    assert annotation_loss(-t, moved, a, origin, 32).max() < 1e-10
    # the strided loss approximates the full one
    full = annotation_loss(t, q, target, origin, 32)
    fast = annotation_loss(t, q, target, origin, 32, stride=2)
    torch.testing.assert_close(fast, full, rtol=0.1, atol=1e-4)


def test_annotation_loss_ignores_symmetries_the_parameter_loss_does_not():
    a = square(dtype=torch.float64)[None]
    origin = torch.full((1, 2), 4.0, dtype=torch.float64)
    quarter = torch.tensor([[0.0, 0.0, math.pi / 2, 0.0]], dtype=torch.float64)
    ident = torch.zeros(1, 4, dtype=torch.float64)
    # a quarter turn of a square is as good as the identity in annotation space...
    assert annotation_loss(quarter, a, a, origin, 32) < 1e-10
    # ...but not in parameter space
    scale = torch.tensor([8.0, 8.0, 0.26, 0.14], dtype=torch.float64)
    assert parameter_loss(quarter, ident, scale) > 1
    # a shift along a strip longer than the crop is invisible in annotation space
    strip = torch.tensor([[[-100.0, 18.0], [140.0, 18.0], [140.0, 22.0], [-100.0, 22.0]]],
                         dtype=torch.float64)
    along = torch.tensor([[5.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    assert annotation_loss(along, strip, strip, origin, 32) < 1e-10
    assert parameter_loss(along, ident, scale) > 0.05


def test_annotation_loss_gradcheck():
    q = (square(dtype=torch.float64) + 0.3)[None]
    target = similarity_transform(q, torch.tensor([1.0, -0.5, 0.1, 0.05], dtype=torch.float64))
    origin = torch.full((1, 2), 4.0, dtype=torch.float64)
    pred = torch.tensor([[0.4, 0.2, -0.05, 0.02]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda p: annotation_loss(p, q, target, origin, 32, softness=1.0), (pred,))
    assert torch.autograd.gradcheck(
        lambda p: annotation_loss(p, q, target, origin, 32, stride=2), (pred,))


def test_parameter_loss_value():
    p = torch.tensor([[1.0, 2.0, 0.1, 0.0]])
    scale = torch.tensor([2.0, 2.0, 0.1, 1.0])
    torch.testing.assert_close(parameter_loss(p, torch.zeros(1, 4), scale),
                               torch.tensor([(0.25 + 1 + 1 + 0) / 4]))


# ------------------------------------------------------------------ the averaging argument
def test_averaging_argument_monte_carlo():
    g = torch.Generator().manual_seed(0)
    n = 200000
    # Gaussian t and n: the regression of -t on u = t + n has the closed-form slope
    t = 2.0 * torch.randn(n, generator=g, dtype=torch.float64)
    noise = 1.5 * torch.randn(n, generator=g, dtype=torch.float64)
    u = t + noise
    slope = -(u * t).sum() / (u * u).sum()  # least squares through the origin
    want = float(l2_optimal_correction(torch.ones(1, dtype=torch.float64), 2.0, 1.5))
    assert abs(float(slope) - want) < 0.01
    # uniform t much wider than the noise: the conditional mean of -t given u is -u in
    # the interior (the noise averages out), so the optimum is the true correction
    t = 20.0 * (2 * torch.rand(n, generator=g, dtype=torch.float64) - 1)
    noise = 3.0 * (2 * torch.rand(n, generator=g, dtype=torch.float64) - 1)
    u = t + noise
    bins = torch.linspace(-10, 10, 11, dtype=torch.float64)
    which = torch.bucketize(u, bins)
    for b in range(1, 11):
        sel = which == b
        cond = (-t[sel]).mean()
        assert abs(float(cond + u[sel].mean())) < 0.1  # E[-t | u] = -u
    # a mean of noisy transforms recovers the truth: each noisy annotation ã = n . a,
    # averaged over many draws, lands on a
    a = square(dtype=torch.float64)
    n_params = torch.stack([3.0 * (2 * torch.rand(n, generator=g, dtype=torch.float64) - 1)
                            for _ in range(4)], -1) * torch.tensor([1, 1, 0.05, 0.03],
                                                                   dtype=torch.float64)
    mean_annotation = similarity_transform(a, n_params[:20000]).mean(0)
    assert (mean_annotation - a).abs().max() < 0.05


# ------------------------------------------------------------------ correction
class Oracle(AutoCorrectNet):
    """Predicts the true correction of each input, read off a lookup (tests the
    correction loop, not learning)."""

    def __init__(self, answers, memory=True):
        super().__init__(5 if memory else 4, 4)
        self.answers = answers
        self.calls = 0

    def forward(self, x):
        out = self.answers[self.calls]
        self.calls += 1
        return out


def test_sequential_correction_updates_memory_in_place(world):
    # with a network that returns the true correction, one sequential pass recovers the
    # truth, and the memory map afterwards is the one of the true annotations
    P, valid = world.noisy, world.valid
    K = P.shape[1]
    answers = [-world.noise[valid[:, k].nonzero()[:, 0], k] for k in range(K)]
    oracle = Oracle([a for a in answers if len(a)])
    out, steps = _correct(oracle, world.images, P, valid, 32, "sequential", 1, True)
    torch.testing.assert_close(out[valid], world.polygons[valid], atol=1e-3, rtol=0)
    assert len(steps) == 1 + sum(len(a) > 0 for a in answers)
    iou = annotation_iou(out, world.polygons, valid)
    assert iou[valid].min() > 0.97 and torch.isnan(iou[~valid]).all()


def test_correct_annotations_modes_and_restores_training_mode(world):
    cfg = replace(PRESETS["cpu"], crop=32, width=4)
    model = make_model(cfg).train()
    # zero-initialised head: the untrained network returns the identity
    for mode in ("sequential", "independent"):
        out = correct_annotations(model, world.images, world.noisy, world.valid, crop=32,
                                  mode=mode, iterations=2)
        torch.testing.assert_close(out, world.noisy, atol=1e-4, rtol=0)
    assert model.training
    with pytest.raises(ValueError, match="mode must be one of"):
        correct_annotations(model, world.images, world.noisy, world.valid, mode="random")


def test_training_runs_and_lowers_the_loss(world):
    torch.manual_seed(0)
    cfg = select_preset(PRESETS, "cpu", steps=30, batch_size=16, crop=32, width=4, lr=3e-3)
    data = prepare_objects(world)
    for loss in ("mask", "param"):
        c = replace(cfg, loss=loss)
        model = make_model(c)
        hist = train_autocorrect(model, data, c, progress=False, seed=0)
        assert len(hist) == 30 and all(math.isfinite(h) for h in hist)
    model = make_model(replace(cfg, memory=False))
    assert model.in_channels == 4
    hist = train_autocorrect(model, data, cfg, clean=True, progress=False)
    assert sum(hist[-10:]) < sum(hist[:10])


# ------------------------------------------------------------------ presets and validation
def test_presets_and_validation(tmp_path):
    assert PRESETS["cpu"].loss == "mask" and PRESETS["cpu"].memory
    for bad in (dict(loss="l1"), dict(crop=40), dict(loss_stride=5), dict(steps=0)):
        with pytest.raises(ValueError):
            select_preset(PRESETS, "cpu", **bad)
    with pytest.raises(ValueError, match="unknown preset"):
        select_preset(PRESETS, "gpu")
    with pytest.raises(ValueError, match="needs data_root"):
        select_preset(PRESETS, "full")
    with pytest.raises(ValueError, match="train/images/ and train/gt/"):
        select_preset(PRESETS, "full", data_root=str(tmp_path))
    root = tmp_path / "AerialImageDataset" / "train"
    (root / "images").mkdir(parents=True)
    (root / "gt").mkdir()
    for name in ("austin1.tif", "vienna12.tif", "bellingham1.tif"):
        (root / "images" / name).write_bytes(b"")
        (root / "gt" / name).write_bytes(b"")
    pairs = inria_tiles(tmp_path)
    assert [p.name for p, _ in pairs] == ["austin1.tif", "vienna12.tif"]
    cfg = select_preset(PRESETS, "full", data_root=str(tmp_path))
    assert cfg.real_data and cfg.crop == 128
    assert cfg.t_ranges[2] == pytest.approx(math.radians(cfg.t_rotation))


def test_argument_validation(world):
    data = prepare_objects(world)
    with pytest.raises(ValueError, match="polygons must have shape"):
        object_inputs(data.images, data.memory_noisy, data.tile[:2], torch.zeros(3, 6, 2))
    with pytest.raises(ValueError, match="memory must have shape"):
        object_inputs(data.images, data.memory_noisy[:, :5], data.tile[:2],
                      data.noisy[data.tile[:2], data.slot[:2]])
    with pytest.raises(ValueError, match="must be a multiple of stride"):
        annotation_loss(torch.zeros(1, 4), square()[None], square()[None],
                        torch.zeros(1, 2), 30, stride=4)
    with pytest.raises(TypeError, match="batch must be an AerialBatch"):
        prepare_objects(world.images)
    with pytest.raises(TypeError, match="model must be an AutoCorrectNet"):
        train_autocorrect(torch.nn.Linear(2, 2), data, PRESETS["cpu"])
    with pytest.raises(ValueError, match="in_channels must be <= 5"):
        AutoCorrectNet(6)
    assert isinstance(AutoCorrectConfig(), AutoCorrectConfig)
