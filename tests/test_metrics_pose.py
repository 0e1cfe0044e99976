"""cvbook.metrics.pose against brute force and analytic cases."""

import itertools

import pytest
import torch

from cvbook.geometry import random_rotation
from cvbook.metrics.pose import (
    canonical_consistency,
    compose_depth,
    depth_metrics,
    global_flip,
    group_mean,
    mpjpe,
    pose_errors,
    stress,
)

G = torch.Generator().manual_seed(0)


def test_mpjpe_brute_force_and_translation_invariance():
    gt = torch.randn(5, 7, 3, generator=G, dtype=torch.float64)
    pred = gt + 0.1 * torch.randn(5, 7, 3, generator=G, dtype=torch.float64)
    shifted = pred + torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    ref = []
    for n in range(5):
        p, g = pred[n] - pred[n].mean(0), gt[n] - gt[n].mean(0)
        ref.append(sum(float((p[k] - g[k]).norm()) for k in range(7)) / 7)
    torch.testing.assert_close(mpjpe(shifted, gt, flip="none"), torch.tensor(ref,
                               dtype=torch.float64))


def test_mpjpe_flip_recovers_reflection():
    gt = torch.randn(4, 9, 3, generator=G, dtype=torch.float64)
    mirrored = gt * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    assert (mpjpe(mirrored, gt, flip="none") > 0.1).all()
    torch.testing.assert_close(mpjpe(mirrored, gt, flip="best"),
                               torch.zeros(4, dtype=torch.float64))
    torch.testing.assert_close(mpjpe(mirrored, gt, flip="flipped"),
                               torch.zeros(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="flip must be one of"):
        mpjpe(gt, gt, flip="yes")


def test_stress_brute_force_and_invariances():
    gt = torch.randn(3, 6, 3, generator=G, dtype=torch.float64)
    pred = torch.randn(3, 6, 3, generator=G, dtype=torch.float64)
    ref = torch.tensor([sum(abs(float((pred[n, i] - pred[n, j]).norm()
                                      - (gt[n, i] - gt[n, j]).norm()))
                            for i, j in itertools.combinations(range(6), 2)) / 15
                        for n in range(3)], dtype=torch.float64)
    torch.testing.assert_close(stress(pred, gt), ref)
    R = random_rotation(3, generator=G, dtype=torch.float64)
    moved = gt @ R.transpose(-1, -2) * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    torch.testing.assert_close(stress(moved, gt), torch.zeros(3, dtype=torch.float64))


def test_canonical_consistency():
    X = torch.randn(2, 1, 5, 3, generator=G, dtype=torch.float64)
    same = X.expand(2, 4, 5, 3) + torch.randn(2, 4, 1, 3, generator=G, dtype=torch.float64)
    torch.testing.assert_close(canonical_consistency(same), torch.zeros(2, dtype=torch.float64))
    two = torch.stack([torch.zeros(5, 3), torch.zeros(5, 3)]).double()
    two[1, 0, 0], two[0, 0, 0] = 1.0, -1.0  # point 0 differs between the two views
    s = two - two.mean(-2, keepdim=True)
    ref = (s - s.mean(0)).norm(dim=-1).mean()
    torch.testing.assert_close(canonical_consistency(two), ref)
    with pytest.raises(ValueError, match="shapes must have shape"):
        canonical_consistency(torch.zeros(4, 3))


def test_compose_and_validation():
    xy = torch.randn(2, 4, 2)
    d = torch.randn(2, 4)
    P = compose_depth(xy, d)
    assert torch.equal(P[..., :2], xy) and torch.equal(P[..., 2], d)
    with pytest.raises(ValueError, match=r"xy must have shape \(\.\.\., K, 2\) with K = 3 as in "
                                         r"depth \(\.\.\., K\); got \(\d+, 4, 2\)"):
        compose_depth(xy, d[:, :3])
    with pytest.raises(ValueError, match=r"gt must have shape \(\.\.\., K, 3\) with K = 4 as in "
                                         r"pred \(\.\.\., K, 3\); got \(2, 5, 3\)"):
        mpjpe(torch.zeros(2, 4, 3), torch.zeros(2, 5, 3))
    with pytest.raises(TypeError, match="pred must be a torch.Tensor"):
        stress([1, 2], torch.zeros(2, 3))


def _official_by_hand(pred, gt, root, scale):
    """The release's calc_3d_errs, one sample and one joint at a time."""
    rows = []
    for n in range(pred.shape[0]):
        p, g = pred[n].clone(), gt[n].clone()
        if root is not None:
            p, g = p - p[root], g - g[root]
        else:
            p[:, 2] -= p[:, 2].mean()
            g[:, 2] -= g[:, 2].mean()
        pf = p.clone()
        pf[:, 2] = -pf[:, 2]
        K = p.shape[0]
        e = sum(float((p[k] - g[k]).norm()) for k in range(K)) / K
        ef = sum(float((pf[k] - g[k]).norm()) for k in range(K)) / K
        st = sum(abs(float((p[i] - p[j]).norm() - (g[i] - g[j]).norm()))
                 for i, j in itertools.combinations(range(K), 2)) / (K * (K - 1) / 2)
        s = float(scale[n]) if scale is not None else 1.0
        rows.append((e * s, ef * s, min(e, ef) * s, st * s))
    return torch.tensor(rows, dtype=torch.float64)


@pytest.mark.parametrize("root", [0, None])
def test_pose_errors_match_the_official_definitions(root):
    gt = torch.randn(5, 6, 3, generator=G, dtype=torch.float64)
    pred = gt + 0.3 * torch.randn(5, 6, 3, generator=G, dtype=torch.float64)
    pred[1:3, :, 2] *= -1  # two mirrored samples
    scale = torch.rand(5, generator=G, dtype=torch.float64) + 0.5
    got = pose_errors(pred, gt, root=root, scale=scale)
    ref = _official_by_hand(pred, gt, root, scale)
    for i, k in enumerate(("mpjpe_orig", "mpjpe_flip", "mpjpe_best", "stress")):
        torch.testing.assert_close(got[k], ref[:, i])
    # a hip-centred ground truth and a prediction translated anywhere: the same errors
    moved = pose_errors(pred + torch.tensor([3.0, -1.0, 7.0], dtype=torch.float64), gt,
                        root=0)
    torch.testing.assert_close(moved["mpjpe_orig"], pose_errors(pred, gt, root=0)["mpjpe_orig"])
    with pytest.raises(ValueError, match=r"scale must be a number or have shape \(N,\)"):
        pose_errors(pred, gt, scale=torch.ones(3))
    with pytest.raises(ValueError, match="root must be <= 5"):
        pose_errors(pred, gt, root=6)


def test_group_mean_brute_force():
    v = torch.rand(9, generator=G, dtype=torch.float64)
    groups = ["walk", "sit", "walk", "eat", "sit", "walk", "eat", "eat", "eat"]
    mean, per = group_mean(v, groups)
    ref = {g: float(v[[i for i, h in enumerate(groups) if h == g]].mean()) for g in set(groups)}
    assert set(per) == set(ref)
    for g in ref:
        assert float(per[g]) == pytest.approx(ref[g])
    assert float(mean) == pytest.approx(sum(ref.values()) / 3)
    assert float(group_mean(v, torch.zeros(9, dtype=torch.long))[0]) == pytest.approx(
        float(v.mean()))
    with pytest.raises(ValueError, match="groups must hold N = 9 labels"):
        group_mean(v, groups[:3])


def test_global_flip_and_depth_metrics_flipped_fraction():
    gt = torch.randn(10, 5, 3, generator=G, dtype=torch.float64)
    depth = -gt[..., 2] + 0.01 * torch.randn(10, 5, generator=G, dtype=torch.float64)
    depth[:3] = gt[:3, :, 2]  # 3 of 10 with the right sign
    assert global_flip(depth, gt) == -1.0 and global_flip(-depth, gt) == 1.0
    m = depth_metrics(depth, gt)
    assert float(m["flipped_fraction"]) == pytest.approx(0.7)
    assert float(m["mpjpe_orig"]) == float(m["mpjpe"])
    # one global sign repairs the majority, never more than the per-sample best
    g = depth_metrics(-depth, gt)
    assert float(m["mpjpe_best"]) <= float(g["mpjpe_orig"]) < float(m["mpjpe_orig"])
