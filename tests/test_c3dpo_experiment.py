"""cvbook.c3dpo's presets, training recipe and evaluation harness (chapter 07), and the
pose metrics and skeleton plots they use."""

from __future__ import annotations

import json
import math

import matplotlib.pyplot as plt
import pytest
import torch

from cvbook import c3dpo
from cvbook.c3dpo import (
    PRESETS,
    C3DPOConfig,
    evaluate_depths,
    image_points,
    multiview_consistency,
    predict_depths,
    puppet_multiview,
    puppet_split,
    shape_spread,
    split_keypoints,
    tomasi_kanade,
    train_c3dpo,
    train_supervised_lifter,
)
from cvbook.core import select_preset
from cvbook.data.puppet import PARENTS, PuppetWorld
from cvbook.metrics.pose import (
    best_flip,
    canonical_consistency,
    compose_depth,
    depth_metrics,
    mpjpe,
    stress,
)
from cvbook.viz import draw_skeleton_2d, draw_skeleton_3d


@pytest.fixture(autouse=True)
def _one_thread():
    """One thread, as the chapter runs (C3DPO's steps are too short to share between
    threads: on a loaded 2-core machine, 2 threads made these tests 10x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TINY = C3DPOConfig(steps=100, batch_size=16, width=16, n_blocks=1, n_basis=3, n_train=64,
                   n_test=32)


# ---------------------------------------------------------------------------- presets
def test_presets_validate_with_clear_errors(tmp_path) -> None:
    assert select_preset(PRESETS, "cpu") == C3DPOConfig()
    with pytest.raises(ValueError, match="unknown preset 'gpu'; valid presets: cpu, full"):
        select_preset(PRESETS, "gpu")
    with pytest.raises(ValueError, match="unknown parameter 'n_bases'.*valid parameters: "
                                         ".*n_basis"):
        select_preset(PRESETS, "cpu", n_bases=3)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        select_preset(PRESETS, "cpu", steps=0)
    with pytest.raises(ValueError, match="occlusion must be <= 0.9"):
        select_preset(PRESETS, "cpu", occlusion=0.95)
    with pytest.raises(TypeError, match="parameter 'n_basis' must be of type"):
        select_preset(PRESETS, "cpu", n_basis=2.5)
    with pytest.raises(ValueError, match="inplane must be <= "):
        select_preset(PRESETS, "cpu", inplane=4.0)


def test_config_prints_readably() -> None:
    """print(cfg) shows pi/8, not 0.39269908169872414; repr keeps the exact floats."""
    import math

    text = str(PRESETS["cpu"])
    assert "inplane=pi/8" in text and "0.3926990" not in text
    assert "lr=0.003" in text and "n_basis=" in text and "dataset='h36m'" in text
    assert "inplane=0," in str(C3DPOConfig(inplane=0.0))  # off
    assert "inplane=0.3" in str(C3DPOConfig(inplane=0.3))
    assert "inplane=pi," in str(C3DPOConfig(inplane=math.pi))
    assert repr(PRESETS["cpu"]).count("0.39269908169872414") == 1


def test_full_preset_checks_data_root_on_selection(tmp_path) -> None:
    with pytest.raises(ValueError, match="the full preset needs data_root: the folder holding "
                                         "the official C3DPO keypoint files h36m_train.json "
                                         "and h36m_val.json"):
        select_preset(PRESETS, "full")
    with pytest.raises(ValueError, match=r"data_root='.*missing' must be a folder holding the "
                                         r"official C3DPO keypoint files .*missing: "
                                         r"h36m_train.json, h36m_val.json"):
        select_preset(PRESETS, "full", data_root=str(tmp_path / "missing"))
    for name in ("h36m_train.json", "h36m_val.json"):
        (tmp_path / name).write_text("[]")
    cfg = select_preset(PRESETS, "full", data_root=str(tmp_path))
    assert cfg.width == 1024 and cfg.inplane == pytest.approx(math.pi / 8)
    assert cfg.files() == (tmp_path / "h36m_train.json", tmp_path / "h36m_val.json")
    with pytest.raises(ValueError, match="is not supported"):
        select_preset(PRESETS, "cpu", dataset="coco")
    with pytest.raises(ValueError, match="per-class evaluation masks"):
        select_preset(PRESETS, "cpu", dataset="pascal3d")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        select_preset(PRESETS, "cpu", optimizer="rmsprop")
    with pytest.raises(ValueError, match="not supported"):
        C3DPOConfig(dataset="up3d_79kp", data_root=str(tmp_path)).validate()


def test_sgd_recipe_steps_the_learning_rate_down() -> None:
    cfg = C3DPOConfig(steps=9, batch_size=4, width=8, n_blocks=0, n_basis=2, n_train=8,
                      optimizer="sgd", lr=0.5, weight_decay=5e-4)
    g = torch.Generator().manual_seed(0)
    y, v = torch.randn(8, 5, 2, generator=g), torch.ones(8, 5, dtype=torch.bool)
    lrs = []
    orig = torch.optim.SGD.step

    def spy(self, *a, **k):
        lrs.append(self.param_groups[0]["lr"])
        assert self.param_groups[0]["momentum"] == 0.9
        assert self.param_groups[0]["weight_decay"] == 5e-4
        return orig(self, *a, **k)

    torch.optim.SGD.step = spy
    try:
        train_c3dpo(cfg, y, v, generator=g, progress=False)
    finally:
        torch.optim.SGD.step = orig
    # lr / 10 after 2/3 and after 8/9 of the steps (epochs 60 and 80 of 90)
    assert lrs == pytest.approx([0.5] * 6 + [0.05] * 2 + [0.005])


# ---------------------------------------------------------------------------- data
def test_puppet_split_and_multiview() -> None:
    world = PuppetWorld()
    g = torch.Generator().manual_seed(0)
    b = puppet_split(world, 40, TINY, occlusion=0.5, generator=g)
    assert b.keypoints.shape == (40, world.num_joints, 2)
    assert 0.3 < float(b.visible.float().mean()) < 0.7 and not b.self_occluded.any()
    mv = puppet_multiview(world, 3, 4, TINY, generator=g)
    assert mv.keypoints.shape == (12, world.num_joints, 2)
    # the 4 views of one figure share pose and identity, and differ in viewpoint
    a = mv.angles.view(3, 4, *mv.angles.shape[1:])
    assert torch.equal(a[:, :1].expand_as(a), a)
    assert not torch.allclose(mv.keypoints[0], mv.keypoints[1])


def test_split_keypoints_centres_scales_and_splits() -> None:
    g = torch.Generator().manual_seed(0)
    kp = torch.randn(10, 5, 2, generator=g) * 3 + 7
    vis = torch.rand(10, 5, generator=g) > 0.2
    p3 = torch.randn(10, 5, 3, generator=g)
    out = split_keypoints({"keypoints": kp, "visible": vis, "points3d": p3}, 100,
                          generator=torch.Generator().manual_seed(1))
    assert out["test_y"].shape == (2, 5, 2) and out["train_y"].shape == (8, 5, 2)
    allv = torch.cat([out["train_v"], out["test_v"]])
    ally = torch.cat([out["train_y"], out["test_y"]])
    assert ally[allv].std().item() == pytest.approx(1.0, rel=1e-5)
    assert out["test_gt"].shape == (2, 5, 3)
    assert split_keypoints({"keypoints": kp, "visible": vis}, 1)["test_gt"] is None
    with pytest.raises(ValueError, match=r"visible must have shape \(N, K\) with K = 5 as in "
                                         r"keypoints \(N, K, 2\); got \(10, 4\)"):
        split_keypoints({"keypoints": kp, "visible": vis[:, :4]}, 2)
    with pytest.raises(ValueError, match="at least 5 samples"):
        split_keypoints({"keypoints": kp[:4], "visible": vis[:4]}, 2)


# ---------------------------------------------------------------------------- training
def test_train_c3dpo_is_reproducible_and_learns() -> None:
    world = PuppetWorld()
    data = puppet_split(world, TINY.n_train, TINY, generator=torch.Generator().manual_seed(0))
    runs = []
    for _ in range(2):
        g = torch.Generator().manual_seed(3)
        m, h = train_c3dpo(TINY, data.keypoints, data.visible, seed=0, generator=g,
                           progress=False)
        runs.append((m, h))
    (m1, h1), (m2, h2) = runs
    assert len(h1) == 1 and math.isfinite(h1.loss[0]) and set(h1.metrics) == {"reproj", "canon"}
    assert h1.loss == h2.loss
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p, q)
    m3, h3 = train_c3dpo(TINY, data.keypoints, data.visible, canonicalise=False, seed=0,
                         generator=torch.Generator().manual_seed(3), progress=False)
    assert m3.psi is None and set(h3.metrics) == {"reproj"}
    with pytest.raises(ValueError, match=r"vis must have shape \(N, K\) with N = 64 as in y"):
        train_c3dpo(TINY, data.keypoints, data.visible[:5])


def test_make_model_seeds_the_initialisation() -> None:
    a = c3dpo.make_model(TINY, 7, seed=4)
    b = c3dpo.make_model(TINY, 7, canonicalise=False, seed=4)
    for p, q in zip(a.phi.parameters(), b.phi.parameters()):
        assert torch.equal(p, q)


def test_psi_ablation_is_batch_matched() -> None:
    """With and without Psi, training from the same generator state draws the same
    mini-batches and in-plane angles (Psi's rotations have their own stream): the
    generator ends in the same state, and a spy sees the same batches."""
    world = PuppetWorld()
    data = puppet_split(world, TINY.n_train, TINY, generator=torch.Generator().manual_seed(0))
    seen, states = {}, {}
    orig = c3dpo.experiment.c3dpo_loss
    for canon in (True, False):
        batches = []

        def spy(model, y, vis, batches=batches, **kw):
            batches.append(y.clone())
            return orig(model, y, vis, **kw)

        c3dpo.experiment.c3dpo_loss = spy
        try:
            g = torch.Generator().manual_seed(5)
            train_c3dpo(TINY, data.keypoints, data.visible, canonicalise=canon, seed=0,
                        generator=g, progress=False)
        finally:
            c3dpo.experiment.c3dpo_loss = orig
        seen[canon], states[canon] = torch.stack(batches), g.get_state()
    assert torch.equal(seen[True], seen[False]) and torch.equal(states[True], states[False])


def test_official_initialisation_and_deviation_options() -> None:
    """cfg.init="official" redraws every linear layer N(0, 0.01^2) with zero biases and
    batch-norm scales U(0, 1), as the release; the options validate."""
    m = c3dpo.make_model(C3DPOConfig(init="official", width=64, n_blocks=2), 19, seed=0)
    lin = [x for x in m.modules() if isinstance(x, torch.nn.Linear)]
    bns = [x for x in m.modules() if isinstance(x, torch.nn.BatchNorm1d)]
    w = torch.cat([x.weight.detach().flatten() for x in lin])
    assert abs(float(w.std()) - 0.01) < 0.001
    assert all(float(x.bias.detach().abs().max()) == 0 for x in lin)
    g = torch.cat([x.weight.detach() for x in bns])
    assert float(g.min()) >= 0 and float(g.max()) <= 1 and abs(float(g.mean()) - 0.5) < 0.05
    d = c3dpo.make_model(C3DPOConfig(width=64, n_blocks=2), 19, seed=0)
    assert float(d.phi.basis.bias.detach().abs().max()) > 0  # the chapter's default differs
    with pytest.raises(ValueError, match="init must be one of"):
        select_preset(PRESETS, "cpu", init="xavier")
    with pytest.raises(ValueError, match="reprojection must be one of"):
        select_preset(PRESETS, "cpu", reprojection="centered")


def test_uncentred_reprojection_sees_a_translation() -> None:
    """The release compares the uncentred projection Pi R X with the centred input: a
    constant offset of the mean shape costs nothing in the centred loss and something in
    the uncentred one."""
    torch.manual_seed(0)
    m = c3dpo.C3DPO(7, 2, 16, 1, canonicalise=False).eval()
    y = torch.randn(8, 7, 2)
    vis = torch.ones(8, 7)
    with torch.no_grad():
        base = {c: c3dpo.c3dpo_loss(m, y, vis, center_reprojection=c)[0] for c in (True, False)}
        m.phi.basis.bias.add_(torch.tensor([0.5, 0.0, 0.0]).repeat(7))  # shift every X
        moved = {c: c3dpo.c3dpo_loss(m, y, vis, center_reprojection=c)[0] for c in (True, False)}
    torch.testing.assert_close(moved[True], base[True], rtol=1e-5, atol=1e-6)
    assert float(moved[False]) > float(base[False]) + 1e-3


# ---------------------------------------------------------------------------- evaluation
@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    world = PuppetWorld()
    g = torch.Generator().manual_seed(0)
    data = puppet_split(world, TINY.n_train, TINY, generator=g)
    m, _ = train_c3dpo(TINY, data.keypoints, data.visible, seed=0, generator=g,
                       progress=False)
    return world, m, puppet_split(world, 20, TINY, generator=g)


def test_predict_and_evaluate_match_the_definitions(trained) -> None:
    world, m, test = trained
    y, v, gt = test.keypoints, test.visible, test.joints_cam
    d = predict_depths({"net": m}, y, v, rigid="tk", flat="flat")
    assert list(d) == ["net", "tk", "flat"]
    torch.testing.assert_close(d["net"], m.predict(y, v)["points"][..., 2])
    torch.testing.assert_close(d["tk"], tomasi_kanade(y, v)["depth"])
    assert torch.equal(d["flat"], torch.zeros(20, world.num_joints))
    assert list(predict_depths({"net": m}, y, v, rigid=None, flat=None)) == ["net"]
    table = evaluate_depths(d, gt)
    for name, depth in d.items():
        P = compose_depth(gt[..., :2], depth)
        ref = {"mpjpe": mpjpe(P, gt, flip="none").mean(),
               "mpjpe_best": mpjpe(P, gt, flip="best").mean(), "stress": stress(P, gt).mean()}
        for k in ref:
            torch.testing.assert_close(table[name][k], ref[k])


def test_multiview_consistency_matches_the_metric(trained) -> None:
    world, m, _ = trained
    mv = puppet_multiview(world, 3, 4, TINY, generator=torch.Generator().manual_seed(5))
    got = multiview_consistency({"net": m}, mv, 3)["net"]
    shapes = m.predict(mv.keypoints, mv.visible)["shape"].reshape(3, 4, -1, 3)
    torch.testing.assert_close(got, canonical_consistency(shapes).mean())
    with pytest.raises(ValueError, match="n_figures=5"):
        multiview_consistency({"net": m}, mv, 5)


class _Translated:
    """A stand-in for Phi whose points are the truth moved by an arbitrary 3D offset (the
    loss compares centred point sets, so Phi's projection may carry any 2D offset)."""

    def __init__(self, points: torch.Tensor) -> None:
        self.points = points

    def predict(self, y, vis):
        return {"points": self.points + torch.tensor([0.3, -0.2, 0.1])}


def test_image_points_recentres_a_translated_projection() -> None:
    g = torch.Generator().manual_seed(0)
    P = torch.randn(8, 6, 3, generator=g)
    y = P[..., :2] + torch.tensor([5.0, -2.0])  # image frame: input moved by a translation
    vis = torch.rand(8, 6, generator=g) > 0.3
    vis[:, 0] = True
    out = image_points({"net": _Translated(P)}, y, vis, rigid=None, flat=None)["net"]
    # missing keypoints land exactly on their true image position; visible keep the input
    torch.testing.assert_close(out[..., :2], y)
    torch.testing.assert_close(out[..., 2], P[..., 2] + 0.1)


def test_shape_spread_within_between_and_truth(trained) -> None:
    world, m, _ = trained
    mv = puppet_multiview(world, 3, 4, TINY, generator=torch.Generator().manual_seed(5))
    r = shape_spread({"net": m}, mv, 3)
    torch.testing.assert_close(torch.tensor(r["net"]["within"]),
                               multiview_consistency({"net": m}, mv, 3)["net"])
    X = m.predict(mv.keypoints, mv.visible)["shape"].reshape(3, 4, -1, 3)
    Xm = (X - X.mean(-2, keepdim=True)).mean(1)
    ref = (Xm - Xm.mean(0)).norm(dim=-1).mean()
    assert r["net"]["between"] == pytest.approx(float(ref), rel=1e-5)
    assert r["net"]["ratio"] == pytest.approx(r["net"]["within"] / r["net"]["between"])
    assert 0 <= r["net"]["alpha_within"] <= 1
    G = mv.joints_world.reshape(3, 4, -1, 3)[:, 0]
    assert r["truth"]["between"] == pytest.approx(float(canonical_consistency(G[None])[0]))
    with pytest.raises(ValueError, match="n_figures=5"):
        shape_spread({"net": m}, mv, 5)


def test_supervised_lifter_learns_depth() -> None:
    world = PuppetWorld()
    g = torch.Generator().manual_seed(0)
    tr = puppet_split(world, 512, TINY, generator=g)
    te = puppet_split(world, 128, TINY, generator=g)
    lifter = train_supervised_lifter(tr.keypoints, tr.visible, tr.joints_cam, steps=150,
                                     batch_size=64, width=64, seed=0, generator=g)
    with torch.no_grad():
        d = lifter(te.keypoints, te.visible)
    assert d.shape == (128, world.num_joints)
    torch.testing.assert_close(d.mean(1), torch.zeros(128), atol=1e-5, rtol=0)
    learned = depth_metrics(d, te.joints_cam)["mpjpe_orig"]
    flat = depth_metrics(torch.zeros_like(d), te.joints_cam)["mpjpe_orig"]
    assert learned < flat


# ---------------------------------------------------------------------------- metrics
def test_depth_metrics_and_best_flip_by_hand(device) -> None:
    g = torch.Generator().manual_seed(0)
    gt = torch.randn(6, 5, 3, generator=g, dtype=torch.float64).to(device)
    depth = -gt[..., 2].clone()  # the mirror image: exact up to the flip
    depth[:3] = gt[:3, :, 2] + 0.1 * torch.randn(3, 5, generator=g, dtype=torch.float64
                                                 ).to(device)
    m = depth_metrics(depth, gt)
    P = torch.cat([gt[..., :2], depth[..., None]], -1)
    c = lambda x: x - x.mean(-2, keepdim=True)  # noqa: E731
    flip = torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64, device=device)
    e = (c(P) - c(gt)).norm(dim=-1).mean(-1)
    ef = (c(P) * flip - c(gt)).norm(dim=-1).mean(-1)
    torch.testing.assert_close(m["mpjpe"], e.mean())
    torch.testing.assert_close(m["mpjpe_best"], torch.minimum(e, ef).mean())
    bf = best_flip(depth, gt)
    torch.testing.assert_close(bf[3:], gt[3:])  # the mirrored samples are flipped back
    torch.testing.assert_close(bf[:3], P[:3])
    with pytest.raises(ValueError, match=r"depth must have shape \(N, K\) with K = 5 as in gt "
                                         r"\(N, K, 3\); got \(6, 4\)"):
        depth_metrics(depth[:, :4], gt)
    with pytest.raises(ValueError, match=r"depth must have shape \(N, K\) with N = 6 as in gt"):
        best_flip(depth[:2], gt)


# ---------------------------------------------------------------------------- plots
def test_skeleton_plots() -> None:
    world = PuppetWorld()
    b = world.sample_keypoints(1, generator=torch.Generator().manual_seed(0), occlusion=0.3)
    fig, (a1, a2) = plt.subplots(1, 2)
    draw_skeleton_2d(a1, b.keypoints[0], PARENTS, b.visible[0])
    n_bones = sum(p >= 0 for p in PARENTS)
    assert len(a1.lines) == n_bones and len(a1.collections) == 2
    ax3 = draw_skeleton_3d(a2, [b.joints_cam[0], b.joints_cam[0] * 0.9], PARENTS,
                           azimuth=30, title="t")
    assert ax3.name == "3d" and len(ax3.lines) == 2 * n_bones and a2 not in fig.axes
    assert draw_skeleton_3d(ax3, [b.joints_cam[0]], PARENTS) is ax3
    with pytest.raises(ValueError, match=r"vis must have shape \(K,\) with K = 19 as in y"):
        draw_skeleton_2d(a1, b.keypoints[0], PARENTS, b.visible[0, :3])
    with pytest.raises(ValueError, match="parents must list K = 19"):
        draw_skeleton_2d(a1, b.keypoints[0], PARENTS[:5])
    with pytest.raises(ValueError, match=r"skeletons\[1\] must have shape \(K, 3\) with K = 19"):
        draw_skeleton_3d(ax3, [b.joints_cam[0], b.joints_cam[0, :4]], PARENTS)
    plt.close("all")


def test_tiny_json_split(tmp_path) -> None:
    entries = [{"kp_loc": [[float(i + k) for k in range(4)], [float(k) for k in range(4)]],
                "kp_vis": [1, 1, 0, 1], "kp_loc_3d": [[0.0] * 4, [1.0] * 4, [2.0] * 4]}
               for i in range(6)]
    f = tmp_path / "kp.json"
    f.write_text(json.dumps(entries))
    out = split_keypoints(c3dpo.load_keypoints_json(f), 3)
    assert out["test_y"].shape == (1, 4, 2) and out["test_gt"].shape == (1, 4, 3)
