"""cvbook.c3dpo: losses, networks, augmentation, baselines and the JSON reader."""

import json
import math

import pytest
import torch

from cvbook.c3dpo import (
    C3DPO,
    c3dpo_loss,
    center_keypoints,
    flat_depth,
    inplane_rotation,
    load_keypoints_json,
    pseudo_huber,
    reprojection_loss,
    tomasi_kanade,
)
from cvbook.data import files as data_files
from cvbook.geometry import random_rotation
from cvbook.geometry.so3 import axis_angle_to_matrix, random_axis_angle
from cvbook.metrics.pose import compose_depth, mpjpe

G = torch.Generator().manual_seed(0)
TINY = data_files.path("c3dpo_tiny.json")


def test_pseudo_huber_limits_and_gradient():
    eps = 0.01
    d2 = torch.tensor([1e-8, 1e-4, 10.0], dtype=torch.float64, requires_grad=True)
    h = pseudo_huber(d2, eps)
    torch.testing.assert_close(h[0], d2[0] / (2 * eps), rtol=1e-3, atol=0)
    torch.testing.assert_close(h[2], d2[2].sqrt() - eps, rtol=1e-4, atol=0)
    h.sum().backward()
    ref = 1 / (2 * eps * torch.sqrt(1 + d2.detach() / eps ** 2))  # d h / d d2
    torch.testing.assert_close(d2.grad, ref)
    with pytest.raises(ValueError, match="eps must be >"):
        pseudo_huber(d2, 0.0)


def test_reprojection_loss_normalised_by_visible_count():
    y = torch.randn(2, 4, 2, generator=G, dtype=torch.float64)
    vis = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool)
    y_hat = y.clone()
    y_hat[0, 3] += 5.0  # an invisible point: ignored
    assert reprojection_loss(y, y_hat, vis).abs() < 1e-12
    y_hat = y + torch.tensor([3.0, -1.0], dtype=torch.float64)  # a 2D shift: centred away
    assert reprojection_loss(y, y_hat, vis).abs() < 1e-12
    # brute force
    y_hat = y + 0.3 * torch.randn(2, 4, 2, generator=G, dtype=torch.float64)
    tot, cnt = 0.0, 0
    for n in range(2):
        m = vis[n]
        a = y[n][m] - y[n][m].mean(0)
        b = y_hat[n][m] - y_hat[n][m].mean(0)
        tot += pseudo_huber(((a - b) ** 2).sum(-1)).sum()
        cnt += int(m.sum())
    torch.testing.assert_close(reprojection_loss(y, y_hat, vis), tot / cnt)


def test_center_keypoints_masked():
    y = torch.tensor([[[0.0, 0.0], [2.0, 2.0], [100.0, 100.0]]])
    vis = torch.tensor([[1, 1, 0]])
    torch.testing.assert_close(center_keypoints(y, vis)[0, :2],
                               torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="vis must have shape"):
        center_keypoints(y, vis[:, :2])


def test_phi_shapes_rotation_and_basis():
    m = C3DPO(7, n_basis=4, width=32, n_blocks=1)
    y = torch.randn(5, 7, 2, generator=G)
    vis = torch.ones(5, 7, dtype=torch.bool)
    out = m(y, vis)
    assert out["alpha"].shape == (5, 4) and out["shape"].shape == (5, 7, 3)
    R = out["R"]
    torch.testing.assert_close(R @ R.transpose(-1, -2), torch.eye(3).expand(5, 3, 3),
                               atol=1e-5, rtol=0)
    # the canonical shape is the linear basis applied to alpha (X = B alpha + b)
    B = m.phi.basis.weight.reshape(7, 3, 4)
    ref = torch.einsum("kcd,nd->nkc", B, out["alpha"]) + m.phi.basis.bias.reshape(7, 3)
    torch.testing.assert_close(out["shape"], ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out["y_hat"], (out["shape"] @ R.transpose(-1, -2))[..., :2])
    # invisible inputs do not matter
    y2 = y.clone()
    vis2 = vis.clone()
    vis2[:, 0] = False
    y2[:, 0] = 123.0
    m.eval()
    a = m(y, vis2)["alpha"]
    b = m(y2, vis2)["alpha"]
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match=r"y must have shape \(N, K, 2\) with K = 7 as in the "
                                         r"model; got \(2, 6, 2\)"):
        m(torch.zeros(2, 6, 2), torch.ones(2, 6))


def test_loss_parts_and_gradients_reach_phi_through_psi():
    torch.manual_seed(0)
    m = C3DPO(6, n_basis=3, width=32, n_blocks=1)
    y = torch.randn(8, 6, 2, generator=G)
    vis = torch.rand(8, 6, generator=G) > 0.2
    loss, parts = c3dpo_loss(m, y, vis, inplane=math.pi / 8,
                             generator=torch.Generator().manual_seed(1))
    assert set(parts) == {"reproj", "canon"}
    torch.testing.assert_close(loss, parts["reproj"] + parts["canon"])
    loss.backward()
    assert m.phi.basis.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in m.psi.parameters())
    # Psi shares Phi's basis: it owns no basis of its own
    assert not any("basis" in n for n, _ in m.psi.named_parameters())
    m2 = C3DPO(6, n_basis=3, width=32, n_blocks=1, canonicalise=False)
    _, parts2 = c3dpo_loss(m2, y, vis)
    assert set(parts2) == {"reproj"}


def _loss_by_hand(m, y, vis, inplane, n_rot, seed):
    """c3dpo_loss written out step by step, drawing the same random numbers."""
    g = torch.Generator().manual_seed(seed)
    n = y.shape[0]
    v = vis.double()
    if inplane > 0:
        th = (2 * torch.rand(2, n, generator=g, dtype=y.dtype) - 1) * inplane

        def rot2(t):  # 2D rotation matrices (n, 2, 2)
            c, s = torch.cos(t), torch.sin(t)
            return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)

        R1, R2 = rot2(th[0]), rot2(th[1])
        y1 = torch.einsum("nij,nkj->nki", R1, y)  # the first copy: rotated by R1
        y2 = torch.einsum("nij,nkj->nki", R2, y1)  # the second: rotated again by R2
        out1, out2 = m.phi(y1, vis), m.phi(y2, vis)
        R1_3 = torch.eye(3, dtype=y.dtype).repeat(n, 1, 1)
        R1_3[:, :2, :2] = R1
        R = R1_3.transpose(1, 2) @ out1["R"]  # the view of the first copy, R1 undone
        X = out2["shape"]  # the shape of the second copy
    else:
        out = m.phi(y, vis)
        R, X = out["R"], out["shape"]
    tot = 0.0
    for i in range(n):  # reprojection: per sample, centred on the visible mean
        yh = (X[i] @ R[i].T)[:, :2]
        mask = vis[i].bool()
        a = y[i][mask] - y[i][mask].mean(0)
        b = yh[mask] - yh[mask].mean(0)
        tot = tot + pseudo_huber(((a - b) ** 2).sum(-1)).sum()
    l_re = tot / v.sum()
    Xr = X.repeat(n_rot, 1, 1)
    Rr = axis_angle_to_matrix(random_axis_angle(n * n_rot, generator=g, dtype=y.dtype))
    back = m.phi.decode(m.psi(torch.einsum("nij,nkj->nki", Rr, Xr)))
    l_can = pseudo_huber(((Xr - back) ** 2).sum(-1)).mean()
    return l_re, l_can


@pytest.mark.parametrize("inplane", [0.0, math.pi / 8])
def test_c3dpo_loss_equals_the_objective_written_by_hand(inplane):
    torch.manual_seed(0)
    m = C3DPO(6, n_basis=3, width=32, n_blocks=1).double()
    y = torch.randn(8, 6, 2, generator=G, dtype=torch.float64)
    vis = torch.rand(8, 6, generator=G) > 0.2
    loss, parts = c3dpo_loss(m, y, vis, inplane=inplane, n_rotations=4,
                             generator=torch.Generator().manual_seed(7))
    l_re, l_can = _loss_by_hand(m, y, vis, inplane, 4, 7)
    torch.testing.assert_close(parts["reproj"], l_re.detach())
    torch.testing.assert_close(parts["canon"], l_can.detach())
    torch.testing.assert_close(loss, l_re + l_can)
    with pytest.raises(ValueError, match="n_rotations must be >= 1"):
        c3dpo_loss(m, y, vis, n_rotations=0)


def test_inplane_augmentation_is_undone_for_an_equivariant_phi():
    # Phi whose viewpoint follows any in-plane rotation of its input and whose shape
    # ignores it (what the augmentation trains towards): the augmented objective then
    # equals the plain one for every random angle
    torch.manual_seed(0)
    m = C3DPO(5, n_basis=2, width=16, n_blocks=1, canonicalise=False).double()
    X0 = torch.randn(5, 3, generator=G, dtype=torch.float64)
    Rtrue = random_rotation(4, generator=G, dtype=torch.float64)
    y = (X0 @ Rtrue.transpose(-1, -2))[..., :2]
    vis = torch.ones(4, 5, dtype=torch.bool)
    calls = []

    def factorise(yin, v):  # recover the in-plane angle of yin relative to y
        cross = (y[..., 0] * yin[..., 1] - y[..., 1] * yin[..., 0]).sum(1)
        dot = (y * yin).sum((1, 2))
        Rz = inplane_rotation(torch.atan2(cross, dot))
        calls.append(yin.shape[0])
        R = Rz @ Rtrue
        X = X0.expand(yin.shape[0], 5, 3)
        P = X @ R.transpose(-1, -2)
        return {"alpha": None, "shape": X, "R": R, "points": P, "y_hat": P[..., :2]}

    m.phi._factorise = factorise
    for seed in range(3):
        loss, _ = c3dpo_loss(m, y, vis, inplane=math.pi / 8,
                             generator=torch.Generator().manual_seed(seed))
        assert loss.abs() < 1e-12
    assert calls == [4, 4] * 3  # two copies, each through Phi on its own


def test_tomasi_kanade_recovers_a_rigid_shape():
    S = torch.randn(10, 3, generator=G, dtype=torch.float64)
    R = random_rotation(40, generator=G, dtype=torch.float64)
    P = S @ R.transpose(-1, -2)  # camera-frame points
    y = P[..., :2]
    vis = torch.rand(40, 10, generator=G) > 0.15
    out = tomasi_kanade(y, vis, n_iter=300)
    pred = compose_depth(y, out["depth"])
    err = mpjpe(pred, P, flip="best")
    assert err.max() < 1e-6
    # and the rigid shape is recovered up to a rotation/reflection: distances agree
    d = torch.cdist(out["shape"], out["shape"])
    torch.testing.assert_close(d, torch.cdist(S, S), atol=1e-5, rtol=0)
    # complete data: one SVD is exact
    full = tomasi_kanade(y, torch.ones(40, 10, dtype=torch.bool), n_iter=1)
    assert mpjpe(compose_depth(y, full["depth"]), P, flip="best").max() < 1e-9


def test_flat_depth():
    y = torch.randn(3, 4, 2)
    assert torch.equal(flat_depth(y), torch.zeros(3, 4))


def test_load_keypoints_json_official_format():
    d = load_keypoints_json(TINY)
    assert d["keypoints"].shape == (6, 19, 2)
    assert d["visible"].dtype == torch.bool and d["visible"].shape == (6, 19)
    assert d["points3d"].shape == (6, 19, 3)
    raw = json.loads(open(TINY).read())
    torch.testing.assert_close(d["keypoints"][2, :, 0], torch.tensor(raw[2]["kp_loc"][0]))
    # orthographic data: the 2D keypoints are the first two 3D coordinates
    torch.testing.assert_close(d["keypoints"], d["points3d"][..., :2], atol=1e-4, rtol=0)


def test_load_keypoints_json_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="keypoint file not found"):
        load_keypoints_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_keypoints_json(bad)
    bad.write_text(json.dumps({"foo": 1}))
    with pytest.raises(ValueError, match="non-empty JSON list"):
        load_keypoints_json(bad)
    bad.write_text(json.dumps([{"kp_loc": [[0, 1], [0, 1]]}]))
    with pytest.raises(ValueError, match="entry 0 lacks the required field 'kp_vis'"):
        load_keypoints_json(bad)
    bad.write_text(json.dumps([{"kp_loc": [[0, 1], [0, 1]], "kp_vis": [1, 1]},
                               {"kp_loc": [[0, 1, 2], [0, 1, 2]], "kp_vis": [1, 1, 1]}]))
    with pytest.raises(ValueError, match="entry 1: expected K=2"):
        load_keypoints_json(bad)
    bad.write_text(json.dumps([{"kp_loc": [[0, 1]], "kp_vis": [1, 1]}]))
    with pytest.raises(ValueError, match="kp_loc must be 2 x K"):
        load_keypoints_json(bad)
    with pytest.raises(TypeError, match="path must be"):
        load_keypoints_json(3)
