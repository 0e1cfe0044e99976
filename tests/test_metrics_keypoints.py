"""cvbook.metrics.keypoints against brute-force NumPy loops."""

import numpy as np
import pytest
import torch

from cvbook.metrics import image_size_error, iod_error, pck

SWAP = [1, 0, 2, 4, 3]  # MAFL: eyes and mouth corners swap, the nose stays


def _data(n=7, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(n, 5, 2, generator=g, dtype=torch.float64) * 40
    p = t + torch.randn(n, 5, 2, generator=g, dtype=torch.float64) * 3
    p[:2] = p[:2, SWAP]  # two predictions with left and right exchanged
    vis = torch.rand(n, 5, generator=g) > 0.2
    vis[:, 0] = True
    return p.to(device), t.to(device), vis.to(device)


def _brute(p, t, vis, norm, swap):
    p, t, vis = p.cpu().numpy(), t.cpu().numpy(), vis.cpu().numpy()
    out = []
    for i in range(len(p)):
        best = np.inf
        for cand in ([p[i]] + ([p[i][swap]] if swap is not None else [])):
            errs = [np.linalg.norm((cand[l] - t[i][l]) / norm(i)) for l in range(5) if vis[i, l]]
            best = min(best, float(np.mean(errs)))
        out.append(best)
    return np.array(out)


@pytest.mark.parametrize("swap", [None, SWAP])
def test_iod_error(swap, device):
    p, t, vis = _data(device=device)
    tn = t.cpu().numpy()
    ref = _brute(p, t, torch.ones_like(vis), lambda i: np.linalg.norm(tn[i, 0] - tn[i, 1]), swap)
    np.testing.assert_allclose(iod_error(p, t, swap=swap).cpu().numpy(), ref)
    ref = _brute(p, t, vis, lambda i: np.linalg.norm(tn[i, 0] - tn[i, 1]), swap)
    np.testing.assert_allclose(iod_error(p, t, swap=swap, visible=vis).cpu().numpy(), ref)


def test_swap_helps_exactly_the_swapped_images():
    p, t, _ = _data()
    plain, swapped = iod_error(p, t), iod_error(p, t, swap=SWAP)
    assert (swapped <= plain).all()
    assert (swapped[:2] < 0.5 * plain[:2]).all()


@pytest.mark.parametrize("swap", [None, SWAP])
def test_image_size_error(swap, device):
    p, t, vis = _data(device=device)
    ref = _brute(p, t, vis, lambda i: np.array([48.0, 40.0]), swap)  # (W, H) = (48, 40)
    got = image_size_error(p, t, (40, 48), swap=swap, visible=vis)
    np.testing.assert_allclose(got.cpu().numpy(), ref)


def test_pck(device):
    p, t, vis = _data(device=device)
    norm = torch.rand(7, dtype=torch.float64, device=device) * 20 + 10
    got = pck(p, t, 0.2, norm, visible=vis).cpu().numpy()
    pn, tn, vn, nn = (x.cpu().numpy() for x in (p, t, vis, norm))
    ref = [np.mean([np.linalg.norm(pn[i, l] - tn[i, l]) <= 0.2 * nn[i]
                    for l in range(5) if vn[i, l]]) for i in range(7)]
    np.testing.assert_allclose(got, ref)
    assert (pck(p, t, 0.2, norm, swap=SWAP) >= pck(p, t, 0.2, norm)).all()


def test_bad_inputs():
    p, t, _ = _data()
    with pytest.raises(ValueError, match=r"target must have shape \(N, L, 2\) with L = 5"):
        iod_error(p, t[:, :4])
    with pytest.raises(ValueError, match="swap must be a permutation"):
        iod_error(p, t, swap=[0, 0, 1, 2, 3])
    with pytest.raises(ValueError, match="eyes must name two different"):
        iod_error(p, t, eyes=(1, 1))
    with pytest.raises(ValueError, match=r"eyes\[1\] must be <= 4"):
        iod_error(p, t, eyes=(0, 5))
    with pytest.raises(TypeError, match="visible must have dtype torch.bool"):
        pck(p, t, 0.1, visible=torch.ones(7, 5))
    with pytest.raises(TypeError, match="size must be a pair"):
        image_size_error(p, t, 64)
