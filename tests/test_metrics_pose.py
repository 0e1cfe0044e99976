"""cvbook.metrics.pose against brute force and analytic cases."""

import itertools

import pytest
import torch

from cvbook.geometry import random_rotation
from cvbook.metrics.pose import canonical_consistency, compose_depth, mpjpe, stress

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
