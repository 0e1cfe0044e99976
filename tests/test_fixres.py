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


@pytest.mark.parametrize("cached", [False, True])
def test_finetune_touches_only_last_bn_stats_and_classifier(cached):
    torch.manual_seed(0)
    src = _tiny_source()
    model = ConvNet(2, widths=(8, 16))
    fixres.train(model, src, 16, epochs=1, progress=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tuned, hist = fixres.fixres_finetune(model, src, 24, epochs=2, lr=0.05, progress=False,
                                         cached=cached)
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
    # split="train": the training crops, and the source's generator left as it was found
    state = src.generator.get_state()
    tr = fixres.pooled_statistics(model, src, [16], split="train")
    assert torch.equal(src.generator.get_state(), state)
    assert tr[16]["mean"] != st[16]["mean"]  # RandomResizedCrop, not the test transform
    assert fixres.pooled_statistics(model, src, [16], split="train") == tr  # reproducible
    with pytest.raises(ValueError, match="split"):
        fixres.pooled_statistics(model, src, [16], split="val")


def test_official_resize_sets_the_height():
    """The official code's Resize (largest=False) sets the height, torchvision's the
    shorter side: equal for landscape and square images, not for portrait ones."""
    for hw in ((375, 500), (48, 48), (500, 375), (640, 427)):
        h, w = fixres.official_resize_shape(hw, 256)
        assert h == 256 and w == int(256 * hw[1] / hw[0])
        tv = v2.Resize(256)(torch.zeros(1, *hw)).shape[-2:]
        assert (tuple(tv) == (h, w)) == (hw[0] <= hw[1]), hw
    with pytest.raises(ValueError, match="size"):
        fixres.official_resize_shape((10, 10), 0)


def test_monte_carlo_portrait_follows_the_resize_rule():
    """On a portrait canvas the official rule shrinks test objects by W/H: the simulated
    ratio grows by H/W against torchvision's shorter-side rule, as the formula says."""
    boxes = torch.tensor([[6.0, 14.0, 30.0, 38.0], [10.0, 18.0, 22.0, 30.0]])
    short = fixres.monte_carlo_apparent_size(boxes, (48, 36), 24, 24, draws=400, seed=0)
    tall = fixres.monte_carlo_apparent_size(boxes, (48, 36), 24, 24, draws=400, seed=0,
                                            test_resize="height")
    assert np.allclose(short["train"], tall["train"])  # the same training crops
    assert tall["test"].mean() == pytest.approx(short["test"].mean() * 36 / 48, rel=0.02)
    formula = fixres.apparent_size_ratio(24, 24, image_size=(48, 36), account_for_rejection=True)
    assert short["ratio"] == pytest.approx(formula, rel=0.05)
    with pytest.raises(ValueError, match="test_resize"):
        fixres.monte_carlo_apparent_size(boxes, (48, 36), 24, 24, draws=4, test_resize="width")


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


# ----------------------------------------------- cached fine-tuning, curves, top-k, torchrun
@pytest.mark.parametrize("pool", ["max", "avg"])
def test_cached_finetune_equals_the_full_forward_path(pool):
    """Fine-tuning on the frozen trunk's cached output is the official computation: same
    batches (same shuffling generator), same BN statistics, same classifier."""
    torch.manual_seed(0)
    model = ConvNet(2, widths=(8, 16, 32), global_pool=pool)
    fixres.train(model, _tiny_source(), 16, epochs=1, progress=False)
    trunk, head = fixres.split_at_last_bn(model)
    x = torch.rand(3, 3, 24, 24)
    with torch.no_grad():
        model.eval()
        assert torch.allclose(head(trunk(x)), model(x), atol=1e-6)
    runs = {}
    for cached in (False, True):
        src = _tiny_source()  # same seed: same generator state
        tuned, hist = fixres.fixres_finetune(model, src, 24, epochs=3, lr=0.05, lr_step=2,
                                             cached=cached, progress=False)
        runs[cached] = (tuned.state_dict(), hist.loss)
    (a, la), (b, lb) = runs[False], runs[True]
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)
    assert la == pytest.approx(lb, rel=1e-5)
    with pytest.raises(ValueError, match="cached=True"):
        fixres.fixres_finetune(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3),
                                                   torch.nn.BatchNorm2d(2),
                                                   torch.nn.AdaptiveAvgPool2d(1),
                                                   torch.nn.Flatten(), torch.nn.Linear(2, 2)),
                               _tiny_source(), 16, cached=True, progress=False)


def test_finetune_lr_step_divides_the_rate_by_ten():
    torch.manual_seed(0)
    model = ConvNet(2, widths=(8, 16))
    seen = []
    from cvbook.fixres import finetune as ft_module

    orig = ft_module.fit

    def spy(*args, **kw):
        sched = kw["scheduler"]
        out = orig(*args, on_epoch_end=lambda e, h: seen.append(sched.get_last_lr()[0]), **kw)
        return out

    ft_module.fit = spy
    try:
        fixres.fixres_finetune(model, _tiny_source(), 16, epochs=4, lr=0.1, lr_step=2,
                               progress=False)
    finally:
        ft_module.fit = orig
    assert seen == pytest.approx([0.1, 0.01, 0.01, 0.001])


def test_resolution_curves_fast_path_matches_evaluate_and_finetune():
    torch.manual_seed(0)
    src = _tiny_source()
    model = ConvNet(2, widths=(8, 16))
    fixres.train(model, src, 16, epochs=1, progress=False)
    curves = fixres.resolution_curves(model, src, [16, 24], finetune_ks=[24], epochs=1,
                                      lr=0.05, progress=False)
    for k in (16, 24):
        assert curves.no_ft[k] == pytest.approx(fixres.evaluate(model, src, k), abs=1e-9)
    assert set(curves.ft) == {24} and set(curves.models) == {24}
    assert curves.ft[24] == pytest.approx(fixres.evaluate(curves.models[24], src, 24))
    assert curves.top5_ft == {}  # two classes: no top-5


def test_topk_accuracy_against_brute_force():
    torch.manual_seed(0)
    n, c = 40, 7
    x = torch.rand(n, 3, 16, 16)
    y = torch.randint(0, c, (n,))
    src = fixres.TensorSource(x, y, x, y, num_classes=c, batch_size=9)
    model = ConvNet(c, widths=(4, 8))
    acc = fixres.topk_accuracy(model, src, 16, topk=(1, 5, 10))
    with torch.no_grad():
        model.eval()
        logits = model((fixres.center_crop(x, 16) - src.mean) / src.std)
    rank = (logits > logits.gather(1, y[:, None])).sum(1)  # classes scored above the label
    for t in (1, 5):
        assert acc[t] == pytest.approx((rank < t).sum().item() / n, abs=1e-12)
    assert acc[10] == 1.0  # more than the number of classes: always right
    assert fixres.evaluate(model, src, 16) == acc[1]
    with pytest.raises(ValueError, match="topk"):
        fixres.topk_accuracy(model, src, 16, topk=(0,))


# ------------------------------------------------- the full presets, end to end in the notebook
_SHRINK = {"pretrained": False, "k_tests": [32, 64], "finetune_ks": [32, 64], "finetune_k": 64,
           "finetune_epochs": 1, "batch_size": 4, "workers": 0, "amp": False}


@pytest.mark.parametrize("preset, extra", [
    ("full", {"k_train": 32}),
    ("full128", {"k_train": 32, "k_train_high": 64, "epochs": 1}),
])
def test_full_presets_run_the_notebook_end_to_end(tmp_path, preset, extra):
    """The committed notebook, papermilled with a full preset on a fake ImageNet folder of
    seven classes (top-5 is defined), torchvision's ResNet-50 with random weights and tiny
    resolutions; every cell runs and the sidecar records the decomposition and top-5."""
    pytest.importorskip("papermill")
    from fullrun import run_full_notebook

    root = _fake_imagenet(tmp_path / "imagenet", classes=tuple(f"n0{i}" for i in range(7)),
                          per_class=2)
    side = run_full_notebook("03_fixres", tmp_path, root, overrides={**_SHRINK, **extra},
                             parameters={"preset": preset, "strict": False})
    assert side["preset"] == preset
    for key in ("top1_train_res", "top1_test_res_no_ft", "top1_fixres",
                "top1_ft_at_train_res", "top5_train_res", "top5_test_res_no_ft", "top5_fixres",
                "top5_ft_at_train_res", "pooled_mean_train_crops",
                "pooled_mean_finetuned_k_test"):
        assert 0 <= side["metrics"][key] <= 1 or key.startswith("pooled"), key
    # the claim's paired intervals are computed on the folder path too (per-image hits)
    for key in ("diff_fixres_minus_test_res_no_ft", "diff_fixres_minus_ft_at_train_res"):
        assert -1 <= side["metrics"][f"{key}_lo"] <= side["metrics"][key] <= 1, key
    claim = next(c for c in side["claims"] if c["claim"].startswith("FixRes fine-tuning at"))
    assert "lower bound" in claim["evidence"]
    # one name per number: K_train^high = K_test would repeat top1_fixres / _test_res_no_ft
    assert "top1_train_low_finetune_high" not in side["metrics"]
    if preset == "full128":
        assert "top1_train_high_test_high" in side["metrics"]


def test_full_presets_record_paired_intervals_on_the_folder_path(tmp_path):
    """The folder path (the full presets) records per-image hits, so the decomposition's
    paired intervals are computed there too (not point estimates)."""
    root = _fake_imagenet(tmp_path / "imagenet", per_class=4)
    src = fixres.FolderSource(root, batch_size=3, workers=0)
    torch.manual_seed(0)
    model = ConvNet(2, widths=(8, 16))
    curves = fixres.resolution_curves(model, src, [16, 24], finetune_ks=[16, 24], epochs=1,
                                      lr=0.05, progress=False)
    n = 8  # validation images
    for key in (("no_ft", 16), ("no_ft", 24), ("ft", 16), ("ft", 24), ("ft", 24, 0)):
        assert curves.correct[key].shape == (n,) and curves.correct[key].dtype == torch.bool
    assert curves.no_ft[24] == pytest.approx(curves.correct[("no_ft", 24)].double().mean().item())
    assert curves.ft[24] == pytest.approx(fixres.evaluate(curves.models[24], src, 24))
    hits = fixres.topk_hits(model, src, 24, topk=(1, 5))
    assert hits.shape == (n, 2) and bool(hits[:, 1].all())  # two classes: top-5 always right
    d, lo, hi = fixres.paired_difference(curves.correct[("ft", 24)], curves.correct[("no_ft", 16)])
    assert lo <= d <= hi


def test_difference_in_differences_uses_student_t_for_few_repeats():
    """With R = 3 shuffles whose variance dominates, the interval's quantile approaches
    t_{0.975,2} = 4.303 (Welch-Satterthwaite), not 1.96; z= keeps a fixed quantile."""
    from cvbook.metrics.intervals import t_quantile, welch_satterthwaite_df

    n = 4000
    g = torch.Generator().manual_seed(0)
    no = torch.rand(n, generator=g) < 0.5
    ft_lo = torch.stack([no] * 3)
    fix_hi = torch.stack([no.clone() for _ in range(3)])
    for r, m in enumerate((0, 40, 200)):  # shuffles differ a lot: 0, 1%, 5% more right
        fix_hi[r, torch.nonzero(~no)[:m, 0]] = True
    did, lo, hi = fixres.difference_in_differences(fix_hi, no, ft_lo, no)
    d = fix_hi.double() - no.double()
    terms = [d.mean(0).var().item() / n, d.mean(1).var().item() / 3]
    se = sum(terms) ** 0.5
    q = t_quantile(0.95, welch_satterthwaite_df(terms, [n - 1, 2]))
    assert 4.0 < q < 4.303 + 1e-9
    assert (hi - lo) / 2 == pytest.approx(q * se) and did == pytest.approx(d.mean().item())
    _, lo_z, hi_z = fixres.difference_in_differences(fix_hi, no, ft_lo, no, z=1.96)
    assert (hi_z - lo_z) / 2 == pytest.approx(1.96 * se)
    assert t_quantile(0.95, 2) == pytest.approx(4.3027, abs=1e-4)


def test_matched_shuffles_give_every_resolution_the_same_batches():
    torch.manual_seed(0)
    src = _tiny_source()
    model = ConvNet(2, widths=(8, 16))
    fixres.train(model, src, 16, epochs=1, progress=False)
    curves = fixres.resolution_curves(model, src, [16, 24], epochs=1, lr=0.05, progress=False,
                                      seed=3, matched_shuffles=True)
    for k in (16, 24):  # the seed ignores K: shuffle_seed(seed, 1, r)
        tuned, _ = fixres.fixres_finetune(model, src, k, epochs=1, lr=0.05, progress=False,
                                          shuffle_seed=fixres.shuffle_seed(3, 1, 0))
        a, b = tuned.state_dict(), curves.models[k].state_dict()
        assert all(torch.allclose(a[key].float(), b[key].float(), atol=1e-6) for key in a)


def test_test_resize_height_follows_the_official_resize():
    """test_resize="height" (the release's Resize: the height, whatever the orientation):
    the batched transform matches torchvision's Resize((H', W')) + CenterCrop(K) on a
    portrait image, padding included, and the folder loader's ResizeHeight gives the
    official shape; landscape images are unchanged."""
    from torchvision.transforms import v2

    from cvbook.data.sources import ResizeHeight

    g = torch.Generator().manual_seed(0)
    img = torch.nn.functional.interpolate(torch.rand(1, 3, 10, 8, generator=g), size=(80, 60),
                                          mode="bilinear", align_corners=False)  # smooth
    k = 32
    h2, w2 = fixres.official_resize_shape((80, 60), fixres.test_resize_size(k))  # 36 x 27
    ref = v2.CenterCrop(k)(v2.functional.resize(img, [h2, w2], antialias=True))
    ours = fixres.test_transform(img, k, test_resize="height")
    pad = (k - w2) // 2  # zero columns on the left (torchvision splits 5 as 2 + 3)
    assert float(ref[..., :pad].abs().max()) == 0 and float(ours[..., :pad - 1].abs().max()) == 0
    inner = slice(pad + 1, pad + w2 - 1)  # roi_align extends the edge by one source pixel
    assert (ours[..., inner] - ref[..., inner]).abs().max() < 0.05
    assert ResizeHeight(36)(torch.zeros(3, 80, 60)).shape[-2:] == (36, 27)
    land = torch.rand(1, 3, 60, 80, generator=g)
    assert torch.equal(fixres.test_transform(land, k, test_resize="height"),
                       fixres.test_transform(land, k))
    with pytest.raises(ValueError, match="test_resize must be one of"):
        fixres.test_transform(img, k, test_resize="width")
    with pytest.raises(ValueError, match="test_resize must be one of"):
        select_preset(fixres.PRESETS, "cpu", test_resize="longer")


def test_full_presets_follow_the_official_recipe():
    for name in ("full", "full128"):
        cfg = fixres.PRESETS[name]
        assert cfg.arch == "resnet50" and cfg.finetune_epochs == 56 and cfg.finetune_lr_step == 30
        assert cfg.finetune_lr == pytest.approx(
            fixres.linear_scaled_lr(fixres.OFFICIAL_FINETUNE_LR_512, cfg.batch_size))
        assert cfg.k_train in cfg.ks_to_finetune and cfg.test_k in cfg.ks_to_finetune
    assert fixres.PRESETS["full"].test_k == 384 and fixres.PRESETS["full128"].test_k == 224
    assert fixres.PRESETS["full128"].k_train == 128 and fixres.PRESETS["full128"].epochs == 120
    cpu = fixres.PRESETS["cpu"]
    assert cpu.finetune_lr == pytest.approx(fixres.linear_scaled_lr(8e-3, cpu.batch_size))
    assert all(k % 8 == 0 for k in cpu.k_tests)  # multiples of the ConvNet's total stride
    # K_test of the decomposition: the grid point nearest the formula's matching resolution
    assert cpu.test_k == 32


def test_world_diagnostics():
    assert fixres.receptive_field(ConvNet(2, widths=(4, 8, 16))) == 18
    assert fixres.receptive_field(ConvNet(2, widths=(4, 8, 16, 32))) == 38
    with pytest.raises(TypeError):
        fixres.receptive_field(torch.nn.Linear(2, 2))
    # an object that fills the image: the coverage is the crop's area fraction
    boxes = torch.tensor([[0.0, 0.0, 30.0, 20.0]])
    cov = fixres.crop_object_coverage(boxes, (20, 30), draws=500, seed=3)
    g = torch.Generator().manual_seed(3)
    torch.randint(0, 1, (500,), generator=g)
    c = fixres.sample_rrc_boxes(500, 20, 30, generator=g)
    assert torch.allclose(cov, (c[:, 2] - c[:, 0]) * (c[:, 3] - c[:, 1]) / 600)
    cov = fixres.crop_object_coverage(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), (40, 40), draws=4000)
    assert 0 < (cov == 0).float().mean() < 1 and cov.max() <= 1
    a = torch.tensor([True, True, False, True])
    b = torch.tensor([True, False, False, False])
    d, lo, hi = fixres.paired_difference(a, b)
    assert d == pytest.approx(0.5) and lo < d < hi
    assert hi - lo == pytest.approx(2 * 1.96 * float(torch.tensor([0.0, 1, 0, 1]).std()) / 2)


def test_difference_in_differences_reduces_to_the_paired_difference():
    """With the same network at both resolutions for "no fine-tuning" and one repeat, the
    difference-in-differences is the paired difference of the two fine-tuned networks;
    with repeats it is the mean of the per-repeat values and its interval is wider."""
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.rand(3, 400, generator=g) < 0.8).unbind(0)
    did = fixres.difference_in_differences(a[None], c, b[None], c)
    ref = fixres.paired_difference(a, b)
    assert all(abs(x - y) < 1e-12 for x, y in zip(did, ref))
    fa, fb = torch.rand(2, 3, 400, generator=g) < 0.8
    d3 = fixres.difference_in_differences(fa, c, fb, c)
    per = [fixres.paired_difference(fa[r], fb[r])[0] for r in range(3)]
    assert abs(d3[0] - sum(per) / 3) < 1e-12
    seeds = {fixres.shuffle_seed(s, k, r) for s in (0, 1) for k in (24, 32) for r in (0, 1)}
    assert len(seeds) == 8
