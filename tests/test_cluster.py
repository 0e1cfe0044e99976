"""cvbook.cluster: k-means++, constrained k-means and the silhouette, against
scikit-learn and brute force."""

import numpy as np
import pytest
import torch

from cvbook.cluster import constrained_kmeans, kmeans_pp_init, silhouette_score


def _blobs(n_per=30, k=3, d=2, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=g, dtype=dtype) * 10
    x = centres.repeat_interleave(n_per, 0) + torch.randn(k * n_per, d, generator=g,
                                                          dtype=dtype)
    return x, torch.arange(k).repeat_interleave(n_per)


@pytest.mark.parametrize("n_init", [1, 3])
def test_plain_kmeans_matches_sklearn(device, n_init):
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    x, y = _blobs()
    lab, cen = constrained_kmeans(x.to(device), 3, n_init=n_init,
                                  generator=torch.Generator(device).manual_seed(0))
    km = KMeans(3, n_init=10, random_state=0).fit(x.numpy())
    assert adjusted_rand_score(km.labels_, lab.cpu().numpy()) == 1.0
    assert adjusted_rand_score(y.numpy(), lab.cpu().numpy()) == 1.0
    # same partition -> same centres (the cluster means), up to the order
    ours = cen.cpu().numpy()[np.argsort(cen.cpu().numpy()[:, 0])]
    theirs = km.cluster_centers_[np.argsort(km.cluster_centers_[:, 0])]
    np.testing.assert_allclose(ours, theirs, atol=1e-8)
    # inertia of our labels equals scikit-learn's
    inertia = float(((x - cen.cpu()[lab.cpu()]) ** 2).sum())
    assert inertia == pytest.approx(km.inertia_, rel=1e-9)


def test_constrained_kmeans_keeps_fixed_points(device):
    x, y = _blobs(n_per=20)
    fixed = torch.full((60,), -1)
    fixed[:5] = 0                      # five points of blob 0 fixed to cluster 0
    fixed[25:27] = 1                   # two of blob 1 fixed to cluster 1
    lab, cen = constrained_kmeans(x.to(device), 3, fixed.to(device),
                                  generator=torch.Generator(device).manual_seed(0))
    lab = lab.cpu()
    assert (lab[:5] == 0).all() and (lab[25:27] == 1).all()
    assert (lab[:20] == 0).all() and (lab[20:40] == 1).all() and (lab[40:] == 2).all()
    # exclusive: free points never join anchor clusters
    lab_x, _ = constrained_kmeans(x.to(device), 4, fixed.to(device), exclusive=True,
                                  generator=torch.Generator(device).manual_seed(0))
    free = fixed < 0
    assert (lab_x.cpu()[free] >= 2).all()


@pytest.mark.parametrize("n", [1, 3])
def test_kmeans_pp_init_batch_and_weight(device, n):
    x = torch.tensor([[0.0], [1.0], [10.0], [11.0]], device=device)
    w = torch.tensor([1.0, 0.0, 1.0, 0.0], device=device)
    c = kmeans_pp_init(x, 2, weight=w, n_init=n, generator=torch.Generator(device).manual_seed(0))
    assert c.shape == (n, 2, 1)
    assert set(c.flatten().tolist()) <= {0.0, 10.0}
    # with one centre placed, the new one goes to the far point with probability 1 here
    c2 = kmeans_pp_init(x, 1, centres=torch.zeros(n, 1, 1, device=device), weight=w)
    assert (c2[:, 1, 0] == 10.0).all()


def test_silhouette_matches_sklearn_and_brute_force():
    from sklearn.metrics import silhouette_score as sk

    x, _ = _blobs(n_per=10, k=3, d=4, seed=1)
    g = torch.Generator().manual_seed(2)
    lab = torch.randint(0, 4, (30,), generator=g)
    lab[0] = 5  # a singleton cluster scores 0 (scikit-learn's convention)
    # torch.cdist's matrix-product path costs ~1e-10 in float64
    assert float(silhouette_score(x, lab)) == pytest.approx(sk(x.numpy(), lab.numpy()),
                                                            abs=1e-8)
    # brute force, point by point, from the definition
    vals = []
    for i in range(30):
        di = ((x - x[i]) ** 2).sum(1).sqrt()
        own = lab == lab[i]
        if own.sum() == 1:
            vals.append(0.0)
            continue
        a = float(di[own].sum() / (own.sum() - 1))
        b = min(float(di[lab == c].mean()) for c in lab.unique() if c != lab[i])
        vals.append((b - a) / max(a, b))
    assert float(silhouette_score(x, lab)) == pytest.approx(np.mean(vals), abs=1e-8)


def test_bad_inputs():
    x = torch.rand(6, 2)
    with pytest.raises(TypeError, match="x must be a floating-point"):
        constrained_kmeans(torch.zeros(6, 2, dtype=torch.int64), 2)
    with pytest.raises(ValueError, match=r"fixed must have shape \(N,\) with N = 6"):
        constrained_kmeans(x, 2, torch.full((5,), -1))
    with pytest.raises(TypeError, match="fixed must be integer"):
        constrained_kmeans(x, 2, torch.full((6,), -1.0))
    with pytest.raises(ValueError, match="anchor clusters"):
        constrained_kmeans(x, 2, torch.tensor([0, 1, 2, -1, -1, -1]))
    with pytest.raises(ValueError, match="k must be >= 2"):
        constrained_kmeans(x, 1)
    with pytest.raises(ValueError, match=r"centres must have shape \(R, A, D\) with D = 2"):
        kmeans_pp_init(x, 1, centres=torch.zeros(1, 1, 3))
    with pytest.raises(ValueError, match="n_new=7"):
        kmeans_pp_init(x, 7)
    with pytest.raises(ValueError, match=r"labels must have shape \(N,\) with N = 6"):
        silhouette_score(x, torch.zeros(5, dtype=torch.int64))
    with pytest.raises(ValueError, match="distinct"):
        silhouette_score(x, torch.zeros(6, dtype=torch.int64))
