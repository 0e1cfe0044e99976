"""Deep Transfer Clustering: closed forms, brute force, scikit-learn and bad inputs."""

import dataclasses
import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import silhouette_score as sk_silhouette

from cvbook import dtc
from cvbook.metrics.clustering import cluster_acc


def blobs(centres, n, scale=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = torch.as_tensor(centres, dtype=torch.float32)
    x = c.repeat_interleave(n, 0) + scale * torch.randn(len(c) * n, c.shape[1], generator=g)
    return x, torch.arange(len(c)).repeat_interleave(n)


# ---------------------------------------------------------------- DEC objective


def test_soft_assign_matches_formula():
    g = torch.Generator().manual_seed(0)
    z, mu = torch.randn(7, 3, generator=g), torch.randn(4, 3, generator=g)
    for alpha in (1.0, 2.5):
        d2 = ((z[:, None] - mu[None]) ** 2).sum(-1)
        num = (1 + d2 / alpha) ** (-(alpha + 1) / 2)
        torch.testing.assert_close(dtc.soft_assign(z, mu, alpha), num / num.sum(1, keepdim=True))


def test_target_distribution_formula_and_sharpening():
    q = torch.softmax(torch.randn(10, 4, generator=torch.Generator().manual_seed(1)), 1)
    w = q**2 / q.sum(0)
    p = dtc.target_distribution(q)
    torch.testing.assert_close(p, w / w.sum(1, keepdim=True))
    torch.testing.assert_close(p.sum(1), torch.ones(10))
    # with balanced clusters the target is sharper (lower entropy) than q
    qb = torch.tensor([[0.6, 0.4], [0.4, 0.6]])
    pb = dtc.target_distribution(qb)
    assert (pb.max(1).values > qb.max(1).values).all()


def test_kl_matches_torch_and_dec_gradient():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    mu = torch.randn(4, 3, generator=g, dtype=torch.float64)
    q = dtc.soft_assign(z, mu)
    p = dtc.target_distribution(q)
    kl = dtc.kl_divergence(p, q)
    torch.testing.assert_close(kl, torch.nn.functional.kl_div(q.log(), p, reduction="batchmean"))
    (kl * len(z)).backward()
    # DEC (Xie et al. 2016) closed form for alpha = 1, p held fixed:
    # dL/dz_i = 2 sum_k (1 + |z_i - mu_k|^2)^-1 (p_ik - q_ik)(z_i - mu_k)
    diff = z.detach()[:, None] - mu[None]
    inv = 1 / (1 + (diff**2).sum(-1))
    grad = 2 * ((inv * (p - q.detach()))[..., None] * diff).sum(1)
    torch.testing.assert_close(z.grad, grad)


def test_rampup_and_ensemble():
    assert dtc.rampup_weight(0, 10, 10.0) == pytest.approx(10 * math.exp(-5))
    assert dtc.rampup_weight(5, 10, 10.0) == pytest.approx(10 * math.exp(-1.25))
    assert dtc.rampup_weight(10, 10, 10.0) == 10.0 == dtc.rampup_weight(50, 10, 10.0)
    assert dtc.rampup_weight(3, 0, 2.0) == 2.0
    ens = dtc.TemporalEnsemble(5, 3, alpha=0.6)
    c = torch.full((5, 3), 1 / 3)
    for _ in range(3):  # bias correction: a constant input is returned exactly
        torch.testing.assert_close(ens.update(c), c)
    with pytest.raises(ValueError, match="q must have shape"):
        ens.update(torch.zeros(4, 3))


# ---------------------------------------------------------------- data and augmentation


def test_augment_is_a_translation():
    x = torch.zeros(50, 1, 8, 8)
    x[:, 0, 4, 4] = 1.0
    y = dtc.augment(x, max_shift=1, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    assert torch.allclose(y.sum((1, 2, 3)), torch.ones(50))
    pos = y[:, 0].flatten(1).argmax(1)
    r, c = pos // 8, pos % 8
    assert ((r - 4).abs() <= 1).all() and ((c - 4).abs() <= 1).all()
    assert len(set(zip(r.tolist(), c.tolist()))) > 4  # shifts vary per image
    torch.testing.assert_close(dtc.augment(x, max_shift=0), x)
    flipped = dtc.augment(x, max_shift=0, flip=True, generator=torch.Generator().manual_seed(0))
    assert set(flipped[:, 0, 4].argmax(1).tolist()) == {3, 4}


def test_split_novel_and_digits():
    s = dtc.load_digits_split()
    assert s.x_lab.shape[1:] == (1, 8, 8) and s.x_unlab.shape[0] == 896
    assert set(s.y_lab.tolist()) == set(range(5)) == set(s.y_unlab.tolist())
    assert 0 <= s.x_lab.min() and s.x_lab.max() <= 1
    x, y = torch.rand(12, 1, 4, 4), torch.tensor([0, 1, 2, 3] * 3)
    t = dtc.split_novel(x, y, known=[3], unknown=[0, 2], probes=[1], max_per_class=2)
    assert t.y_lab.tolist() == [0, 0] and sorted(t.y_unlab.tolist()) == [0, 0, 1, 1]
    assert t.x_probe.shape[0] == 2
    with pytest.raises(ValueError, match="disjoint"):
        dtc.split_novel(x, y, known=[0, 1], unknown=[1, 2])
    with pytest.raises(ValueError, match="at least 2"):
        dtc.split_novel(x, y, known=[0], unknown=[1])
    with pytest.raises(ValueError, match=r"labels must have shape \(N,\) with N = 12 as in images"):
        dtc.split_novel(x, y[:5], known=[0], unknown=[1, 2])
    with pytest.raises(ValueError, match="empty"):
        dtc.split_novel(x[:0], y[:0], known=[0], unknown=[1, 2])
    with pytest.raises(ValueError, match="no images"):
        dtc.split_novel(x, y, known=[0], unknown=[1, 7])


def test_pretrain_rejects_bad_labels():
    bb = dtc.make_backbone(dtc.PRESETS["cpu"], 1)
    x = torch.rand(6, 1, 8, 8)
    with pytest.raises(ValueError, match="known classes"):
        dtc.pretrain(bb, x, torch.tensor([0, 1, 2, 3, 4, 5]), 5, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"y must have shape \(N,\) with N = "):
        dtc.pretrain(bb, x, torch.tensor([0, 1]), 5, epochs=1, progress=False)
    with pytest.raises(ValueError, match="empty"):
        dtc.pretrain(bb, x[:0], torch.tensor([], dtype=torch.long), 5, epochs=1,
                     progress=False)
    with pytest.raises(ValueError, match="n_classes"):
        dtc.pretrain(bb, x, torch.zeros(6, dtype=torch.long), 1, epochs=1, progress=False)


# ---------------------------------------------------------------- initialisation and training


class Flatten(torch.nn.Module):
    out_dim = 64

    def forward(self, x):
        return x.flatten(1)


def test_pca_bottleneck_reproduces_pca_and_kmeans():
    from sklearn.decomposition import PCA

    s = dtc.load_digits_split()
    x = s.x_unlab[:200]
    f = x.flatten(1)
    init = dtc.pca_kmeans_init(f, 5, n_init=3, seed=0, rescale=False)
    net = dtc.DTCNet(Flatten(), init)
    z, q = dtc.predict(net, x)
    ref = PCA(5, random_state=0).fit_transform(f.double().numpy())
    np.testing.assert_allclose(z.numpy(), ref, atol=1e-4)
    scaled = dtc.pca_kmeans_init(f, 5, n_init=3, seed=0)  # RMS distance to centre = 1
    zs = dtc.predict(dtc.DTCNet(Flatten(), scaled), x)[0]
    rms = (zs - scaled.centres[scaled.labels]).pow(2).sum(1).mean().sqrt()
    assert rms.item() == pytest.approx(1.0, rel=1e-3)
    assert cluster_acc(init.labels, q.argmax(1)) > 0.95  # q starts at the k-means solution
    with pytest.raises(ValueError, match="k must be >= 2"):
        dtc.pca_kmeans_init(f, 1)
    with pytest.raises(ValueError, match="at least k"):
        dtc.pca_kmeans_init(f[:3], 5)


@pytest.mark.parametrize("mode", dtc.MODES)
def test_train_dtc_modes_run(mode):
    s = dtc.load_digits_split()
    x, y = s.x_unlab[:96], s.y_unlab[:96]
    init = dtc.pca_kmeans_init(x.flatten(1), 5, n_init=2)
    net = dtc.DTCNet(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 64)), init)
    h = dtc.train_dtc(net, x, mode=mode, epochs=3, warmup_epochs=1, update_interval=1,
                      batch_size=32, y=y, track_embeddings=True, progress=False)
    # the warm-up epoch comes before the 3 main epochs (official schedule)
    assert h.warmup == 1 and len(h.acc) == 4 and len(h.history.loss) == 4
    assert h.embeddings.shape == (5, 96, 5) and h.pred.shape == (96,)
    cons = h.history.metrics["consistency"]
    assert cons[0] == 0.0  # no consistency term during the warm-up
    if mode in ("none", "tep"):  # TEP acts through the target only, as the official code
        assert all(c == 0.0 for c in cons)
    else:
        assert all(c > 0.0 for c in cons[1:])
    assert set(h.history.metrics) == {"kl", "consistency"}
    assert all(math.isfinite(v) for v in h.history.loss)
    with pytest.raises(ValueError, match="mode must be one of"):
        dtc.train_dtc(net, x, mode="bad")
    with pytest.raises(ValueError, match=r"y must have shape \(N,\) with N = "):
        dtc.train_dtc(net, x, y=y[:3])
    with pytest.raises(ValueError, match="empty"):
        dtc.train_dtc(net, x[:0])


# ---------------------------------------------------------------- class-number estimation


def test_constrained_kmeans_keeps_anchors_and_matches_kmeans():
    from sklearn.cluster import KMeans

    x, y = blobs([[0, 0], [3, 0], [0, 3], [3, 3]], 20)
    lab, c = dtc.constrained_kmeans(x, 4, generator=torch.Generator().manual_seed(0))
    assert cluster_acc(y, lab) == 1.0
    sk = KMeans(4, n_init=5, random_state=0).fit(x.numpy())
    inertia = ((x - c[lab]) ** 2).sum()
    assert inertia.item() == pytest.approx(sk.inertia_, rel=1e-3)
    # anchors: the first two blobs fixed as clusters 1 and 0 even though one point of
    # blob 0 is placed on blob 2
    fixed = torch.full((80,), -1)
    fixed[:20], fixed[20:40] = 1, 0
    x2 = x.clone()
    x2[0] = x[45]
    lab2, c2 = dtc.constrained_kmeans(x2, 4, fixed, generator=torch.Generator().manual_seed(0))
    assert (lab2[:20] == 1).all() and (lab2[20:40] == 0).all()
    torch.testing.assert_close(c2[1], x2[:20].mean(0))
    assert cluster_acc(y[40:], lab2[40:]) == 1.0 and set(lab2[40:].tolist()) == {2, 3}
    # exclusive: free points never join an anchor cluster, even one they sit on
    fixed3 = torch.full((80,), -1)
    fixed3[:20] = 0
    lab3, _ = dtc.constrained_kmeans(x, 3, fixed3, exclusive=True,
                                     generator=torch.Generator().manual_seed(0))
    assert (lab3[:20] == 0).all() and (lab3[20:] != 0).all()


def test_constrained_kmeans_bad_inputs():
    x = torch.rand(10, 2)
    with pytest.raises(ValueError, match="k must be >= 2"):
        dtc.constrained_kmeans(x, 1)
    with pytest.raises(ValueError, match=r"fixed must have shape \(N,\) with N = "):
        dtc.constrained_kmeans(x, 3, torch.full((9,), -1))
    with pytest.raises(ValueError, match="anchor clusters"):
        dtc.constrained_kmeans(x, 2, torch.tensor([0, 1, 2] + [-1] * 7))
    with pytest.raises(ValueError, match="empty"):
        dtc.constrained_kmeans(x[:0], 2)
    with pytest.raises(TypeError, match="fixed must be integer"):
        dtc.constrained_kmeans(x, 2, torch.zeros(10))


def test_silhouette_matches_sklearn():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(40, 3, generator=g, dtype=torch.float64)
    lab = torch.randint(0, 4, (40,), generator=g)
    lab[0] = 9  # a singleton cluster scores 0, as in scikit-learn
    assert dtc.silhouette_score(x, lab).item() == pytest.approx(sk_silhouette(x, lab))
    with pytest.raises(ValueError, match="distinct"):
        dtc.silhouette_score(x, torch.zeros(40, dtype=torch.long))


def test_estimate_num_classes_on_blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(10, 6)) * 4
    x, y = blobs(centres, 15, scale=0.3)
    a, v = y < 3, (y >= 3) & (y < 5)
    u = y >= 5
    est = dtc.estimate_num_classes(x[a], y[a], x[v], y[v] - 3, x[u], k_max=7, n_iter=15,
                                   n_init=3, generator=torch.Generator().manual_seed(0))
    # candidates from 0 new classes, as the official cifar100_est_k.py (np.arange)
    assert est.candidates == list(range(0, 8)) and len(est.silhouette) == 8
    # the official rule, recomputed by brute force from the two curves
    last_argmax = [max(i for i, s in enumerate(c) if s == max(c))
                   for c in (est.probe_acc, est.silhouette)]
    assert est.k_acc == last_argmax[0] and est.k_sil == last_argmax[1]
    assert est.k_star == math.ceil(sum(last_argmax) / 2)
    assert est.k_sil == 5  # separated blobs: the silhouette peaks at the truth
    assert max(est.probe_acc) == 1.0
    sizes = torch.bincount(est.labels, minlength=len(est.sizes))
    assert sizes.tolist() == est.sizes
    assert est.k == sum(1 for n in est.sizes if n > 0.01 * max(est.sizes))
    assert 5 <= est.k <= 6  # ties in probe ACC up to k_max push the chosen run up by one
    with pytest.raises(ValueError, match="unlabelled is empty"):
        dtc.estimate_num_classes(x[a], y[a], x[v], y[v] - 3, x[:0])
    with pytest.raises(ValueError, match=r"anchor_labels must have shape \(A,\) with A = "):
        dtc.estimate_num_classes(x[a], y[a][:5], x[v], y[v] - 3, x[u])
    with pytest.raises(ValueError, match="k_max must be >= 2"):
        dtc.estimate_num_classes(x[a], y[a], x[v], y[v] - 3, x[u], k_min=2, k_max=1)
    with pytest.raises(ValueError, match="k_max must be >= 1"):
        dtc.estimate_num_classes(x[a], y[a], x[v], y[v] - 3, x[u], k_max=0)


def test_estimate_num_classes_free_points_may_join_anchors():
    """Official: probes and unlabelled points go to the nearest of all centres, anchors
    included; ``exclusive=True`` closes the anchor clusters to them."""
    x, y = blobs([[0, 0], [5, 0], [0, 5], [5, 5]], 12, scale=0.2)
    a, v, u = y == 0, y == 1, y >= 2
    xu = torch.cat([x[u], x[a][:4] + 0.05])          # 4 unlabelled points on the anchor blob
    g = torch.Generator().manual_seed(0)
    est = dtc.estimate_num_classes(x[a], y[a], x[v], y[v] - 1, xu, k_max=3, n_init=3,
                                   generator=g)
    assert (est.labels[-4:] == 0).all()              # they joined the anchor cluster
    est_x = dtc.estimate_num_classes(x[a], y[a], x[v], y[v] - 1, xu, k_max=3, n_init=3,
                                     exclusive=True, generator=g)
    assert (est_x.labels != 0).all()


def test_kl_reductions_match_pytorch():
    g = torch.Generator().manual_seed(0)
    q = torch.softmax(torch.randn(9, 4, generator=g), 1)
    p = dtc.target_distribution(q)
    with warnings.catch_warnings():  # PyTorch warns that "mean" is not "batchmean"
        warnings.simplefilter("ignore", UserWarning)
        ref = torch.nn.functional.kl_div(q.log(), p)
    torch.testing.assert_close(dtc.kl_divergence(p, q, reduction="mean"), ref)
    torch.testing.assert_close(dtc.kl_divergence(p, q),
                               torch.nn.functional.kl_div(q.log(), p, reduction="batchmean"))
    with pytest.raises(ValueError, match="reduction"):
        dtc.kl_divergence(p, q, reduction="sum")


# ---------------------------------------------------------------- presets, full path on fake data


def test_summarise_handles_missing_methods():
    runs = [{"a": {"acc": 0.5}, "b": {"acc": 1.0}}, {"a": {"acc": 0.7}}]
    out = dtc.summarise(runs)
    assert out["a"]["acc"] == pytest.approx((0.6, 0.1, 2)) and out["b"]["acc"] == (1.0, 0.0, 1)
    with pytest.raises(ValueError, match="empty"):
        dtc.summarise([])


def test_presets_validate():
    for cfg in dtc.PRESETS.values():
        cfg.validate()
    with pytest.raises(ValueError, match="disjoint"):
        dataclasses.replace(dtc.PRESETS["cpu"], unknown=(4, 5)).validate()
    with pytest.raises(ValueError, match="anchors"):
        dataclasses.replace(dtc.PRESETS["cpu"], anchors=(7,)).validate()
    with pytest.raises(ValueError, match="dataset"):
        dataclasses.replace(dtc.PRESETS["cpu"], dataset="mnist").validate()


def test_read_cifar_pickles(tmp_path):
    from fake_cifar import make_fake_cifar10, make_fake_cifar100

    make_fake_cifar10(tmp_path, per_class=3)
    x, y = dtc.read_cifar_train(tmp_path)
    assert x.shape == (30, 3, 32, 32) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert torch.bincount(y).tolist() == [3] * 10
    make_fake_cifar100(tmp_path, per_class=1)
    x, y = dtc.read_cifar_train(tmp_path, cifar100=True)
    assert x.shape == (100, 3, 32, 32) and y.tolist() == list(range(100))
    with pytest.raises(FileNotFoundError, match="CIFAR files not found"):
        dtc.read_cifar_train(tmp_path / "nothing")


def test_full_preset_path_on_fake_cifar(tmp_path):
    from fake_cifar import make_fake_cifar10

    make_fake_cifar10(tmp_path, per_class=2)
    cfg = dataclasses.replace(dtc.PRESETS["full"], data_root=str(tmp_path), pretrain_epochs=1,
                              epochs=1, n_init=1, batch_size=10, modes=("te",),
                              warmup_epochs=0)
    split = dtc.load_split(cfg)
    assert split.x_lab.shape == (10, 3, 32, 32)
    # the official loaders' normalisation: (x - mean) / std per channel, x in [0, 1]
    raw, y = dtc.read_cifar_train(tmp_path)
    mean, std = dtc.CIFAR_STATS["cifar10"]
    first = raw[y < 5][:1]
    want = (first - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(split.x_lab[:1], want)
    assert cfg.pretrain_optimizer == "adam" and cfg.pretrain_milestones == (100, 150)
    assert cfg.amp and dtc.PRESETS["full_cifar100"].backbone == "vgg6"
    out = dtc.run_seed(cfg, split, 0, progress=False, estimate_k=False)
    assert set(out["scores"]) == {"k-means, raw pixels", "k-means, random network",
                                  "k-means, transferred features", "DTC (te)"}
    assert out["features"].shape == (10, 512)
    assert 0.0 <= out["probe_acc"] <= 1.0  # two images per class: 2-fold


def test_cifar100_estimate_k_path_with_vgg(tmp_path):
    """The full CIFAR-100 preset's class-number estimation (held-out classes 80-89 split
    into 60% anchors and 40% probes, the official VGG's features, candidates from 0 new
    classes) runs end to end on a fake folder of the real format."""
    from fake_cifar import make_fake_cifar100

    make_fake_cifar100(tmp_path, per_class=1)
    cfg = dataclasses.replace(dtc.PRESETS["full_cifar100"], data_root=str(tmp_path), k_max=4,
                              k_n_init=2)
    split = dtc.load_split(cfg)
    assert split.x_lab.shape[0] == 80 and split.x_probe.shape[0] == 10
    assert split.x_unlab.shape[0] == 10 and split.y_probe.tolist() == list(range(10))
    backbone = dtc.make_backbone(cfg, 3)
    est = dtc.estimate_k_for_split(cfg, split, backbone, seed=0)
    assert est.candidates == [0, 1, 2, 3, 4] and est.k_star in est.candidates
    # 6 anchors + 4 probes + k_star new clusters
    assert len(est.sizes) == 10 + est.k_star and 1 <= est.k <= 10 + est.k_star


def test_full_notebook_runs_on_fake_cifar(tmp_path):
    """The committed notebook end to end with the `full` preset on a tiny CIFAR-10 pickle
    folder (random weights, shrunk epochs)."""
    from fake_cifar import make_fake_cifar10
    from fullrun import run_full_notebook

    make_fake_cifar10(tmp_path / "data", per_class=2)
    side = run_full_notebook("04_dtc", tmp_path, tmp_path / "data", overrides={
        "pretrain_epochs": 1, "epochs": 1, "warmup_epochs": 1, "n_init": 1, "batch_size": 10,
        "k_max": 2, "k_n_init": 1, "update_interval": 1, "modes": ["te"]},
        parameters={"n_seeds": 1})
    assert side["metrics"]["n_seeds"] == 1
    assert "estimated_k_seed0_truth5" in side["metrics"]


def test_full_cifar100_notebook_runs_on_fake_cifar(tmp_path):
    """The committed notebook end to end with the `full_cifar100` preset (the official VGG,
    held-out anchors and probes 80-89, candidates from 0) on a tiny CIFAR-100 pickle folder
    (random weights, shrunk epochs and candidate scan)."""
    from fake_cifar import make_fake_cifar100
    from fullrun import run_full_notebook

    make_fake_cifar100(tmp_path / "data", per_class=2)
    side = run_full_notebook("04_dtc", tmp_path, tmp_path / "data", overrides={
        "pretrain_epochs": 1, "epochs": 1, "warmup_epochs": 1, "n_init": 1, "batch_size": 40,
        "k_max": 2, "k_n_init": 1, "update_interval": 1, "modes": ["te"]},
        parameters={"preset": "full_cifar100", "n_seeds": 1})
    assert side["preset"] == "full_cifar100" and side["metrics"]["n_seeds"] == 1
    assert "estimated_k_seed0_truth10" in side["metrics"]
    assert "DTC_te_acc_mean" in side["metrics"]


# ---------------------------------------------------------------- round 3: probe, VGG, recipes


def test_linear_probe_ceiling_separable_and_random():
    x, y = blobs([[0, 0], [6, 0], [0, 6]], 20, scale=0.3)
    assert dtc.linear_probe_ceiling(x, y) == 1.0          # linearly separable: perfect
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(300, 4, generator=g)
    chance = dtc.linear_probe_ceiling(noise, torch.arange(3).repeat(100))
    assert chance < 0.5                                    # no information: near 1/3
    one = torch.tensor([0, 20, 40])
    assert math.isnan(dtc.linear_probe_ceiling(x[one], y[one]))  # one image per class
    with pytest.raises(ValueError, match="at least 2 classes"):
        dtc.linear_probe_ceiling(x[:20], y[:20])


def test_vgg6_shapes_and_adam_recipe():
    net = dtc.VGG6(3)
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 512) and net.out_dim == 512
    with pytest.raises(ValueError, match="x must have shape"):
        net(torch.rand(2, 3, 16, 16))
    # the official recipe: Adam, lr x gamma at the milestones (per epoch)
    x, y = torch.rand(12, 1, 16, 16), torch.arange(3).repeat(4)
    bb = dtc.PooledCNN(1, 4)
    h = dtc.pretrain(bb, x, y, 3, epochs=3, lr=0.01, batch_size=6, optimizer="adam",
                     milestones=(2,), gamma=0.1, weight_decay=0.0, progress=False)
    assert len(h.loss) == 3
    with pytest.raises(ValueError, match="optimizer"):
        dtc.pretrain(bb, x, y, 3, epochs=1, optimizer="rmsprop", progress=False)


def test_gather_epoch_is_identity_outside_torchrun():
    from cvbook.dtc.train import _gather_epoch

    q = torch.rand(5, 3)
    assert _gather_epoch(q) is q
