"""Tests of cvbook.fixres against torchvision's own transforms, closed forms and Monte Carlo."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats
from torchvision.transforms import RandomResizedCrop as RRC_V1
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from cvbook import fixres
from cvbook.core import select_preset
from cvbook.nn import ConvNet


def test_expected_inv_sqrt_area_closed_form_and_monte_carlo():
    assert fixres.expected_inv_sqrt_area((0.08, 1.0)) == pytest.approx(
        2 * (1 - math.sqrt(0.08)) / 0.92)
    assert fixres.expected_inv_sqrt_area((0.08, 1.0)) == pytest.approx(1.559, abs=1e-3)
    s = np.random.default_rng(0).uniform(0.3, 0.7, 400_000)
    assert fixres.expected_inv_sqrt_area((0.3, 0.7)) == pytest.approx(
        np.mean(s ** -0.5), rel=1e-3)
    assert fixres.expected_inv_sqrt_area((0.25, 0.25)) == pytest.approx(2.0)


def test_rrc_expectation_reduces_to_closed_form_without_rejection():
    # a square image and aspect ratio 1: every crop fits, sigma stays uniform
    assert fixres.rrc_expected_inv_sqrt_area((0.08, 1.0), (1.0, 1.0), (50, 50)) == \
        pytest.approx(fixres.expected_inv_sqrt_area((0.08, 1.0)), rel=1e-3)
    # small crops always fit: no rejection either
    assert fixres.rrc_expected_inv_sqrt_area((0.1, 0.5), (3 / 4, 4 / 3), (50, 50)) == \
        pytest.approx(fixres.expected_inv_sqrt_area((0.1, 0.5)), rel=1e-3)
    # with rejection, large crops are under-represented: the expectation grows
    assert fixres.rrc_expected_inv_sqrt_area() > 1.03 * fixres.expected_inv_sqrt_area()


def test_rrc_expectation_matches_torchvision_sampling():
    h, w = 60, 100
    torch.manual_seed(0)
    img = torch.zeros(1, h, w)
    areas = []
    for _ in range(6000):
        _, _, hh, ww = RRC_V1.get_params(img, [0.08, 1.0], [3 / 4, 4 / 3])
        areas.append(hh * ww / (h * w))
    mc = float(np.mean(np.asarray(areas) ** -0.5))
    assert fixres.rrc_expected_inv_sqrt_area(image_size=(h, w)) == pytest.approx(mc, rel=0.01)


def test_apparent_size_ratio_formula():
    # square images, same K: ratio = E[s^-1/2] * K / int(256/224 K)
    assert fixres.apparent_size_ratio(224, 224) == pytest.approx(1.559 * 224 / 256, abs=1e-3)
    # the ratio is 1 at the matching test resolution (up to the integer resize)
    k = fixres.matching_test_resolution(32)
    assert k == pytest.approx(1.559 * 32 * 224 / 256, abs=1e-2)
    # non-square images: objects look smaller at test time by min(H,W)/sqrt(HW)
    assert fixres.apparent_size_ratio(32, 32, image_size=(100, 400)) == pytest.approx(
        fixres.apparent_size_ratio(32, 32) * 0.5)


@pytest.mark.parametrize("bad", [dict(scale=(0.0, 1.0)), dict(scale=(0.5, 0.2)),
                                 dict(resize_ratio=0.5)])
def test_analysis_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        fixres.apparent_size_ratio(32, 32, **bad)


def test_monte_carlo_matches_formula_through_torchvision():
    boxes = torch.tensor([[10.0, 12.0, 30.0, 28.0], [40.0, 40.0, 60.0, 64.0]])
    mc = fixres.monte_carlo_apparent_size(boxes, (64, 64), 32, 32, draws=3000, seed=0)
    exact = fixres.apparent_size_ratio(32, 32, image_size=(64, 64), account_for_rejection=True)
    assert mc["ratio"] == pytest.approx(exact, rel=0.01)
    # the paper's idealised formula (sigma exactly uniform) misses RRC's rejections by ~5%
    ideal = fixres.apparent_size_ratio(32, 32)
    assert 0.03 < mc["ratio"] / ideal - 1 < 0.08
    assert len(np.unique(np.round(mc["test"], 4))) == 2  # the test transform is fixed
    with pytest.raises(ValueError, match=r"\(M, 4\)"):
        fixres.monte_carlo_apparent_size(torch.zeros(2, 3), (64, 64), 32, 32)


def test_rrc_boxes_match_torchvision_distribution():
    """Our vectorised sampler and torchvision's get_params draw the same distribution
    (two-sample Kolmogorov-Smirnov on area fraction and aspect)."""
    h, w, n = 48, 80, 4000
    g = torch.Generator().manual_seed(0)
    ours = fixres.sample_rrc_boxes(n, h, w, generator=g)
    torch.manual_seed(1)
    img = torch.zeros(1, h, w)
    ref = []
    for _ in range(n):
        t, l_, hh, ww = RRC_V1.get_params(img, [0.08, 1.0], [3 / 4, 4 / 3])
        ref.append((l_, t, l_ + ww, t + hh))
    ref = torch.tensor(ref, dtype=torch.float32)

    def feats(b):
        bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        return (bw * bh / (h * w)).numpy(), (bw / bh).numpy(), (b[:, 0] / w).numpy()

    for a, b in zip(feats(ours), feats(ref)):
        assert stats.ks_2samp(a, b).pvalue > 1e-3
    assert (ours[:, 0] >= 0).all() and (ours[:, 2] <= w).all() and (ours[:, 3] <= h).all()


def test_center_crop_boxes_match_torchvision():
    """Resize(int(s K)) + CenterCrop(K) applied by torchvision to a box equals mapping the
    box with our crop region."""
    from torchvision import tv_tensors

    for (h, w, k) in [(64, 64, 32), (60, 90, 28), (97, 53, 40)]:
        crop = fixres.center_crop_boxes(1, h, w, k)[0]
        box = torch.tensor([[5.0, 7.0, 20.0, 30.0]])
        bb = tv_tensors.BoundingBoxes(box, format="XYXY", canvas_size=(h, w), clamping_mode=None)
        tf = v2.Compose([v2.Resize(fixres.test_resize_size(k)), v2.CenterCrop(k)])
        out = tf(tv_tensors.Image(torch.zeros(1, h, w)), bb)[1][0]
        sx, sy = k / (crop[2] - crop[0]), k / (crop[3] - crop[1])
        ours = torch.stack([(box[0, 0] - crop[0]) * sx, (box[0, 1] - crop[1]) * sy,
                            (box[0, 2] - crop[0]) * sx, (box[0, 3] - crop[1]) * sy])
        assert torch.allclose(ours, out.float(), atol=1e-3), (h, w, k, ours, out)


def test_crop_resize_identity_and_against_torchvision():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(2, 3, 32, 32, generator=g)
    full = torch.tensor([[0.0, 0.0, 32.0, 32.0]] * 2)
    assert torch.allclose(fixres.crop_resize(img, full, 32), img, atol=1e-6)
    # a smooth image: our batched crop+resize is close to torchvision's antialiased one
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    smooth = torch.stack([torch.sin(6 * xx), torch.cos(5 * yy), xx * yy])[None] * 0.5 + 0.5
    box = torch.tensor([[8.0, 4.0, 56.0, 52.0]])
    ours = fixres.crop_resize(smooth, box, 24)[0]
    ref = TF.resized_crop(smooth[0], top=4, left=8, height=48, width=48, size=[24, 24],
                          antialias=True)
    assert (ours - ref).abs().mean() < 0.01


def test_test_transform_equals_torchvision_on_pil():
    """Our batched test transform against torchvision on a real image tensor."""
    g = torch.Generator().manual_seed(0)
    arr = (torch.rand(64, 64, 3, generator=g) * 255).to(torch.uint8).numpy()
    pil = Image.fromarray(arr).resize((64, 64))
    ref = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                      v2.GaussianBlur(5, 1.5)])(pil)
    ours = fixres.test_transform(ref[None], 40)[0]
    tv = v2.Compose([v2.Resize(fixres.test_resize_size(40), antialias=True),
                     v2.CenterCrop(40)])(ref)
    assert ours.shape == tv.shape == (3, 40, 40)
    assert (ours - tv).abs().mean() < 0.02


def _tiny_source(n=64, seed=0):
    from cvbook.data.scenes import SceneConfig, make_scenes

    world = SceneConfig(image_size=32, classes=("disk", "square"))
    tr, te = make_scenes(n, world, seed=seed), make_scenes(n // 2, world, seed=seed + 1)
    return fixres.TensorSource(tr.images, tr.labels, te.images, te.labels, num_classes=2,
                               batch_size=16, seed=seed)


def test_finetune_touches_only_last_bn_stats_and_classifier():
    torch.manual_seed(0)
    src = _tiny_source()
    model = ConvNet(2, widths=(8, 16))
    fixres.train(model, src, 16, epochs=1, progress=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tuned, hist = fixres.fixres_finetune(model, src, 24, epochs=2, lr=0.05, progress=False)
    # the original model is untouched
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    after = tuned.state_dict()
    bn = "features.2.1"  # the last BatchNorm of ConvNet(widths=(8, 16))
    assert tuned.last_bn is fixres.last_batchnorm(tuned)
    changed = {k for k in after if not torch.equal(before[k], after[k])}
    assert changed == {f"{bn}.running_mean", f"{bn}.running_var", f"{bn}.num_batches_tracked",
                       "fc.weight", "fc.bias"}, changed
    assert not tuned.training and len(hist) == 2
    assert all(p.requires_grad for p in tuned.parameters())


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_train_with_either_optimizer_changes_every_weight(optimizer):
    torch.manual_seed(0)
    src = _tiny_source()
    model = ConvNet(2, widths=(8, 16))
    before = [p.detach().clone() for p in model.parameters()]
    hist = fixres.train(model, src, 16, epochs=1, lr=1e-2, optimizer=optimizer,
                        progress=False)
    assert len(hist) == 1 and math.isfinite(hist.loss[0])
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    with pytest.raises(ValueError, match="optimizer"):
        fixres.train(model, src, 16, epochs=1, optimizer="adam", progress=False)
    with pytest.raises(ValueError, match="optimizer"):
        dataclasses.replace(fixres.PRESETS["cpu"], optimizer="rmsprop").validate()


def test_train_sweep_stats_and_evaluate_restore_mode():
    torch.manual_seed(0)
    src = _tiny_source()
    model = ConvNet(2, widths=(8, 16))
    hist = fixres.train(model, src, 16, epochs=2, progress=False)
    assert len(hist) == 2 and all(math.isfinite(v) for v in hist.loss)
    model.train()
    sweep = fixres.resolution_sweep(model, src, [16, 24], progress=False)
    assert set(sweep) == {16, 24} and all(0 <= v <= 1 for v in sweep.values())
    assert model.training
    st = fixres.pooled_statistics(model, src, [16, 24])
    assert set(st[16]) == {"mean", "std", "sparsity", "q50", "q90"}
    assert not any(m._forward_pre_hooks for m in model.modules())


def test_tensor_source_rejects_bad_input():
    x, y = torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"train_labels must have shape \(N,\) with N = 4"):
        fixres.TensorSource(x, y[:3], x, y, num_classes=2)
    with pytest.raises(ValueError, match="labels must lie"):
        fixres.TensorSource(x, y + 1, x, y, num_classes=2)
    with pytest.raises(ValueError, match="dimensions"):
        fixres.TensorSource(x[0], y, x, y, num_classes=2)


def test_presets_validate():
    cpu = select_preset(fixres.PRESETS, "cpu")
    assert cpu.k_train < cpu.k_train_high and cpu.k_train in cpu.k_tests
    with pytest.raises(ValueError, match="valid presets"):
        select_preset(fixres.PRESETS, "imagenet")
    with pytest.raises(ValueError, match="data_root"):
        select_preset(fixres.PRESETS, "cpu", data="folder")
    with pytest.raises(ValueError, match="arch must be one of"):
        select_preset(fixres.PRESETS, "cpu", arch="vgg")
    with pytest.raises(ValueError, match="k_tests"):
        select_preset(fixres.PRESETS, "cpu", k_tests=())


# ------------------------------------------------------------------ the full preset's path
def _fake_imagenet(root, classes=("n01", "n02"), per_class=3):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in classes:
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(per_class):
                hw = (int(rng.integers(40, 90)), int(rng.integers(40, 90)))
                Image.fromarray(rng.integers(0, 255, (*hw, 3), dtype=np.uint8)).save(
                    d / f"img{i}.JPEG")
    return root


def test_full_preset_runs_on_a_tiny_fake_imagenet_folder(tmp_path):
    """The full preset's code path (folder source, torchvision ResNet-50, fine-tuning),
    with weights=None and tiny resolutions so that it runs on a CPU in seconds."""
    root = _fake_imagenet(tmp_path / "imagenet")
    cfg = select_preset(fixres.PRESETS, "full", data_root=str(root), pretrained=False,
                        epochs=1, k_train=32, k_tests=(32, 48), finetune_k=48, batch_size=4,
                        workers=0, amp=False)
    src = fixres.build_source(cfg)
    assert src.num_classes == 2 and src.classes == ["n01", "n02"]
    model = fixres.build_model(cfg, src.num_classes)
    fixres.train(model, src, cfg.k_train, epochs=cfg.epochs, lr=0.01, progress=False)
    sweep = fixres.resolution_sweep(model, src, cfg.k_tests, progress=False)
    assert set(sweep) == {32, 48}
    tuned, _ = fixres.fixres_finetune(model, src, cfg.finetune_k, epochs=1, progress=False)
    assert 0 <= fixres.evaluate(tuned, src, cfg.finetune_k) <= 1


def test_folder_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fixres.FolderSource(tmp_path / "nope")
    (tmp_path / "a" / "train").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="val"):
        fixres.FolderSource(tmp_path / "a")
    (tmp_path / "a" / "val").mkdir()
    with pytest.raises(ValueError, match="no class sub-folders"):
        fixres.FolderSource(tmp_path / "a")
    root = _fake_imagenet(tmp_path / "b")
    (root / "val" / "n03").mkdir()
    (root / "val" / "n03" / "x.png").write_bytes(b"")
    with pytest.raises(ValueError, match="differ"):
        fixres.FolderSource(root)
    empty = _fake_imagenet(tmp_path / "c")
    for f in (empty / "train" / "n01").iterdir():
        f.unlink()
    with pytest.raises(ValueError, match="holds no images"):
        fixres.FolderSource(empty)
