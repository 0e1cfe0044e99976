"""cvbook.metrics.depth against NumPy loops and their invariances;
cvbook.metrics.segmentation against scikit-learn's jaccard_score."""

import numpy as np
import pytest
import torch
from sklearn.metrics import jaccard_score

from cvbook.metrics import confusion_matrix, iou_per_class, mad, mask_iou, mean_iou, side


def _depths(n=3, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    d = torch.rand(n, 6, 7, generator=g, dtype=torch.float64) + 0.9
    p = d * torch.exp(0.1 * torch.randn(n, 6, 7, generator=g, dtype=torch.float64))
    m = torch.rand(n, 6, 7, generator=g) > 0.3
    return p.to(device), d.to(device), m.to(device)


def test_side_brute_force_and_scale_invariance(device):
    p, d, m = _depths(device=device)
    got = side(p, d, m).cpu().numpy()
    pn, dn, mn = (x.cpu().numpy() for x in (p, d, m))
    ref = []
    for i in range(len(pn)):
        delta = np.log(pn[i][mn[i]]) - np.log(dn[i][mn[i]])
        ref.append(np.sqrt(np.mean(delta**2) - np.mean(delta) ** 2))
    np.testing.assert_allclose(got, ref, rtol=1e-10)
    torch.testing.assert_close(side(7.5 * p, d, m), side(p, d, m))
    assert side(2.0 * d, d, m).abs().max() < 1e-12
    # the mask matters: changing pixels outside it changes nothing
    q = torch.where(m, p, p * 3.0 + 1.0)
    torch.testing.assert_close(side(q, d, m), side(p, d, m))
    assert torch.isnan(side(p, d, torch.zeros_like(m))).all()


def test_mad_brute_force(device):
    g = torch.Generator().manual_seed(1)
    a = torch.randn(3, 3, 5, 6, generator=g, dtype=torch.float64).to(device)
    b = torch.randn(3, 3, 5, 6, generator=g, dtype=torch.float64).to(device)
    m = (torch.rand(3, 5, 6, generator=g) > 0.4).to(device)
    assert mad(a, a, m).abs().max() < 1e-5  # identical normals (acos near 1 is steep)
    assert mad(a, 2.5 * a, m).abs().max() < 1e-5
    torch.testing.assert_close(mad(a, -a), torch.full((3,), 180.0, dtype=torch.float64,
                                                      device=device))
    an, bn, mn = (x.cpu().numpy() for x in (a, b, m))
    ref = []
    for i in range(3):
        angs = []
        for y in range(5):
            for x in range(6):
                if mn[i, y, x]:
                    u, v = an[i, :, y, x], bn[i, :, y, x]
                    c = u @ v / np.linalg.norm(u) / np.linalg.norm(v)
                    angs.append(np.degrees(np.arccos(np.clip(c, -1, 1))))
        ref.append(np.mean(angs))
    np.testing.assert_allclose(mad(a, b, m).cpu().numpy(), ref, rtol=1e-10)


def _labels(n=3, c=4, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, c, (n, 9, 11), generator=g)
    p = torch.where(torch.rand(n, 9, 11, generator=g) < 0.6, t,
                    torch.randint(0, c, (n, 9, 11), generator=g))
    return p.to(device), t.to(device)


@pytest.mark.parametrize("b", [1, 3])
def test_iou_matches_sklearn(b, device):
    p, t = _labels(b, device=device)
    pn, tn = p.cpu().numpy().ravel(), t.cpu().numpy().ravel()
    ref = jaccard_score(tn, pn, average=None, labels=range(4))
    np.testing.assert_allclose(iou_per_class(p, t, 4).cpu().numpy(), ref)
    np.testing.assert_allclose(mean_iou(p, t, 4).item(), ref.mean())
    per = iou_per_class(p, t, 4, per_image=True, zero_division=0.0).cpu().numpy()
    for i in range(b):
        ref_i = jaccard_score(t[i].cpu().numpy().ravel(), p[i].cpu().numpy().ravel(),
                              average=None, labels=range(4), zero_division=0)
        np.testing.assert_allclose(per[i], ref_i)
    cm = confusion_matrix(p, t, 4).cpu().numpy()
    ref_cm = np.zeros((4, 4), dtype=np.int64)
    np.add.at(ref_cm, (tn, pn), 1)
    np.testing.assert_array_equal(cm, ref_cm)


def test_iou_ignore_index_and_absent_classes():
    p, t = _labels(2, c=3)
    t = t.clone()
    t[:, :2] = 255
    keep = (t != 255).numpy().ravel()
    ref = jaccard_score(t.numpy().ravel()[keep], p.numpy().ravel()[keep], average=None,
                        labels=range(5), zero_division=0)
    got = iou_per_class(p, t, 5, ignore_index=255, zero_division=0.0).numpy()
    np.testing.assert_allclose(got, ref)
    got = iou_per_class(p, t, 5, ignore_index=255).numpy()
    assert np.isnan(got[3:]).all()  # classes 3, 4 appear nowhere: undefined, not 0
    assert mean_iou(p, t, 5, ignore_index=255).item() == pytest.approx(ref[:3].mean())


@pytest.mark.parametrize("b", [1, 3])
def test_mask_iou_matches_sklearn(b, device):
    g = torch.Generator().manual_seed(2)
    a = (torch.rand(b, 8, 8, generator=g) > 0.5).to(device)
    c = (torch.rand(b, 8, 8, generator=g) > 0.5).to(device)
    got = mask_iou(a, c).cpu().numpy()
    ref = [jaccard_score(c[i].cpu().numpy().ravel(), a[i].cpu().numpy().ravel())
           for i in range(b)]
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    empty = torch.zeros(2, 4, 4, dtype=torch.bool, device=device)
    assert (mask_iou(empty, empty) == 1).all()


def test_bad_inputs():
    p, t = _labels(2)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        iou_per_class(p, t, 3)
    with pytest.raises(TypeError, match="pred must be an integer label map"):
        iou_per_class(p.float(), t, 4)
    with pytest.raises(ValueError, match=r"target must have shape \(\.\.\., H, W\) with H = 9"):
        mean_iou(p, t[:, :5], 4)
    with pytest.raises(TypeError, match="pred must have dtype torch.bool"):
        mask_iou(p, t > 0)
    d = torch.rand(2, 4, 4) + 1
    with pytest.raises(ValueError, match=r"mask must have shape \(N, H, W\) with N = 2"):
        side(d, d, torch.ones(3, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"target must have shape \(N, 3, H, W\)"):
        mad(torch.rand(1, 3, 2, 2), torch.rand(1, 2, 2, 2))
