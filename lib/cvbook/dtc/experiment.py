"""One seed of the DTC chapter's experiment (every row of its table) and the summary over
seeds; the data of a preset (:func:`load_split`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cvbook.core.validate import check_int, check_tensor
from cvbook.data.paths import default_data_root
from cvbook.data.splits import NovelSplit, load_digits_split, split_novel
from cvbook.dtc.estimate_k import estimate_k_for_split
from cvbook.dtc.objective import DTCNet, pca_kmeans_init
from cvbook.dtc.presets import MODES, DTCConfig
from cvbook.dtc.train import DTCHistory, extract_features, make_backbone, pretrain, train_dtc
from cvbook.metrics.clustering import clustering_scores

__all__ = ["CIFAR_STATS", "estimate_k_controls", "kmeans_baseline", "linear_probe_ceiling",
           "load_letters_k_world", "load_split", "read_cifar_train", "run_seed", "summarise"]


CIFAR_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.507, 0.487, 0.441), (0.267, 0.256, 0.276)),
}
"""Per-channel mean and std of the official DTC loaders (k-han/DTC ``data/cifarloader.py``)."""


def load_split(cfg: DTCConfig, *, download: bool = False, seed: int = 0) -> NovelSplit:
    """The data of a preset: the jittered digits (:mod:`cvbook.data.glyphs`, drawn with
    ``seed``), the plain 8x8 digits, or CIFAR-10/100 training sets via torchvision
    (the paper clusters the unlabelled *training* images), found in or downloaded to
    ``cfg.data_root`` (``None``: :func:`cvbook.data.paths.default_data_root`, i.e. the
    git-ignored ``data/`` of a repository checkout, else ``~/.cache/cvbook``)."""
    cfg.validate()
    if cfg.dataset == "glyphs":
        from cvbook.data.glyphs import GlyphConfig, load_jittered_digits_split

        return load_jittered_digits_split(cfg.known, cfg.unknown,
                                          GlyphConfig(image_size=cfg.image_size),
                                          seed=seed)
    if cfg.dataset == "digits":
        return load_digits_split(cfg.known, cfg.unknown)
    if cfg.dataset == "fake":
        g = torch.Generator().manual_seed(0)
        n = 10 * len(set(cfg.known) | set(cfg.unknown) | set(cfg.probes))
        x = torch.rand(n, 3, 32, 32, generator=g)
        classes = sorted(set(cfg.known) | set(cfg.unknown) | set(cfg.probes))
        y = torch.tensor(classes).repeat_interleave(10)
        return split_novel(x, y, cfg.known, cfg.unknown, cfg.probes)
    cifar100 = cfg.dataset == "cifar100"
    if download and _cifar_files(_cifar_root(cfg), cifar100)[1]:  # missing: fetch them
        import torchvision

        cls = torchvision.datasets.CIFAR10 if cfg.dataset == "cifar10" else \
            torchvision.datasets.CIFAR100
        cls(_cifar_root(cfg), train=True, download=True)
    x, y = read_cifar_train(_cifar_root(cfg), cifar100=cifar100)
    if cfg.normalize:  # the official loaders' per-channel statistics
        mean, std = CIFAR_STATS["cifar100" if cifar100 else "cifar10"]
        x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    return split_novel(x, y, cfg.known, cfg.unknown, cfg.probes,
                       max_per_class=cfg.max_per_class)


def _cifar_root(cfg: DTCConfig) -> str:
    return cfg.data_root if cfg.data_root is not None else str(default_data_root())


def _cifar_files(root: str | Path, cifar100: bool) -> tuple[list[Path], list[str]]:
    """The training pickles of CIFAR-10/100 under ``root`` and those missing."""
    base = Path(root) / ("cifar-100-python" if cifar100 else "cifar-10-batches-py")
    files = [base / "train"] if cifar100 else [base / f"data_batch_{i}" for i in range(1, 6)]
    return files, [str(f) for f in files if not f.is_file()]


def read_cifar_train(root: str | Path, *, cifar100: bool = False
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """The training split of CIFAR-10 (``cifar-10-batches-py/data_batch_1..5``) or
    CIFAR-100 (``cifar-100-python/train``) from the pickle folder torchvision downloads
    into ``root``, read directly (the format of the official archives: dicts with
    ``data`` ``(N, 3072)`` uint8 rows and ``labels`` / ``fine_labels``), without
    torchvision's checksum test so that a small folder of the same format can stand in
    (:func:`load_split` asks torchvision to download only when files are missing).

    Returns:
        ``(N, 3, 32, 32)`` float images in [0, 1] and ``(N,)`` int64 labels.
    """
    import pickle

    files, missing = _cifar_files(root, cifar100)
    if missing:
        raise FileNotFoundError(f"CIFAR files not found: {missing}; pass download=True "
                                "(or run the notebook with a data_root holding them)")
    data, labels = [], []
    for f in files:
        with open(f, "rb") as fh:
            entry = pickle.load(fh, encoding="latin1")
        data.append(np.asarray(entry["data"], dtype=np.uint8))
        labels.extend(entry["fine_labels" if cifar100 else "labels"])
    arr = np.concatenate(data).reshape(-1, 3, 32, 32)
    return (torch.from_numpy(arr).float().div_(255.0),
            torch.as_tensor(labels, dtype=torch.int64))


def kmeans_baseline(features: torch.Tensor, y: torch.Tensor, k: int, *, pca_dim: int | None
                    = None, n_init: int = 20, seed: int = 0) -> dict[str, float]:
    """k-means (optionally after PCA) on ``(N, D)`` features, scored against ``y``."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    check_tensor(features, "features", ndim=2, floating=True)
    f = features.detach().double().cpu().numpy()
    if pca_dim is not None:
        f = PCA(n_components=pca_dim, random_state=seed).fit_transform(f)
    pred = KMeans(n_clusters=check_int(k, "k", min_value=2), n_init=n_init,
                  random_state=seed).fit_predict(f)
    return clustering_scores(y.cpu(), pred.astype(np.int64))


def run_seed(cfg: DTCConfig, split: NovelSplit, seed: int, *, device: torch.device | str =
             "cpu", progress: bool = True, track_embeddings: bool = False,
             estimate_k: bool = True, modes: Sequence[str] | None = None,
             log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every row of the chapter's table for one seed.

    ``modes`` overrides ``cfg.modes`` (the DTC variants to train on the preset's
    schedule); ``cfg.short_modes`` run again on the short schedule (the ablation; their
    rows and histories carry ", short schedule").

    Returns a dict with ``scores`` (method -> {acc, nmi, ari}; ``"DTC (te)"`` on the
    preset's schedule, ``"DTC (te), short schedule"`` on the short one), ``histories``
    (the same ``"DTC (...)"`` rows -> :class:`DTCHistory`), ``pretrain``
    (:class:`History`), ``features`` (transferred features of the unlabelled set),
    ``init``, ``probe_acc`` (:func:`linear_probe_ceiling` or None) and ``k_estimate``
    (the letters world: :func:`estimate_k_controls`' dict; otherwise a
    :class:`KEstimate`; None when not estimated).
    """
    cfg.validate()
    seed = check_int(seed, "seed", min_value=0)
    dev = torch.device(device)
    s = split.to(dev)
    k = len(s.unknown)
    n_known = len(s.known)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    say = log or (lambda _m: None)
    scores: dict[str, dict[str, float]] = {}
    aug = dict(max_shift=cfg.max_shift, noise_std=cfg.noise_std, flip=cfg.flip)

    scores["k-means, raw pixels"] = kmeans_baseline(s.x_unlab.flatten(1), s.y_unlab, k,
                                                    n_init=cfg.n_init, seed=seed)
    rand_net = make_backbone(cfg, s.x_unlab.shape[1]).to(dev)
    f_rand = extract_features(rand_net, s.x_unlab)
    scores["k-means, random network"] = kmeans_baseline(f_rand, s.y_unlab, k, pca_dim=k,
                                                        n_init=cfg.n_init, seed=seed)
    backbone = make_backbone(cfg, s.x_lab.shape[1]).to(dev)
    pre = pretrain(backbone, s.x_lab, s.y_lab, n_known, epochs=cfg.pretrain_epochs,
                   lr=cfg.pretrain_lr, batch_size=cfg.batch_size, generator=gen,
                   optimizer=cfg.pretrain_optimizer, milestones=cfg.pretrain_milestones,
                   gamma=cfg.pretrain_gamma, weight_decay=cfg.pretrain_weight_decay,
                   amp=cfg.amp, progress=progress, **aug)
    feats = extract_features(backbone, s.x_unlab)
    probe = linear_probe_ceiling(feats, s.y_unlab, seed=seed) if cfg.probe_ceiling else None
    init = pca_kmeans_init(feats, k, n_init=cfg.n_init, seed=seed, rescale=cfg.rescale)
    scores["k-means, transferred features"] = clustering_scores(s.y_unlab.cpu(),
                                                                init.labels.cpu())
    say(f"seed {seed}: k-means on transferred features ACC "
        f"{scores['k-means, transferred features']['acc']:.3f}")
    state = {n: p.detach().clone() for n, p in backbone.state_dict().items()}
    histories: dict[str, DTCHistory] = {}
    runs = [(mode, "", cfg.epochs, cfg.warmup_epochs, cfg.update_interval)
            for mode in (cfg.modes if modes is None else modes)]
    runs += [(mode, ", short schedule", cfg.short_epochs, cfg.short_warmup_epochs,
              cfg.short_update_interval) for mode in cfg.short_modes]
    for mode, tag, epochs, warmup, update in runs:
        bb = make_backbone(cfg, s.x_lab.shape[1]).to(dev)
        bb.load_state_dict(state)
        net = DTCNet(bb, init).to(dev)
        h = train_dtc(net, s.x_unlab, mode=mode, epochs=epochs, warmup_epochs=warmup,
                      warmup_lr=cfg.warmup_lr, update_interval=update, reduction=cfg.reduction,
                      freeze_bn=cfg.freeze_bn, milestones=cfg.milestones, gamma=cfg.gamma,
                      lr=cfg.lr, weight_decay=cfg.weight_decay, batch_size=cfg.batch_size,
                      consistency_weight=cfg.consistency_weight,
                      rampup_length=cfg.rampup_length, ema_alpha=cfg.ema_alpha, amp=cfg.amp,
                      y=s.y_unlab, track_embeddings=track_embeddings and not tag,
                      generator=torch.Generator().manual_seed(seed * 1000 + MODES.index(mode)),
                      progress=progress, **aug)
        histories[f"DTC ({mode}){tag}"] = h
        scores[f"DTC ({mode}){tag}"] = clustering_scores(s.y_unlab.cpu(), h.pred.cpu())
    k_est: Any = None
    if estimate_k and cfg.k_world == "letters":
        k_est = estimate_k_controls(cfg, seed, device=dev, progress=progress)
    elif estimate_k:
        k_est = estimate_k_for_split(cfg, s, backbone, seed=seed, progress=progress)
    return {"scores": scores, "histories": histories, "pretrain": pre, "features": feats,
            "init": init, "k_estimate": k_est, "probe_acc": probe}


def linear_probe_ceiling(features: torch.Tensor, y: torch.Tensor, *, seed: int = 0,
                         folds: int = 5) -> float:
    """The headroom of a feature space: the ``folds``-fold cross-validated accuracy of a
    logistic-regression probe trained on ``(N, D)`` features *with* the labels ``y`` (an
    oracle no clustering method has; features standardised). Clustering ACC on the same
    features cannot be expected above it. With fewer than ``folds`` images in some class
    the folds shrink to that count (NaN below 2: tiny test data)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    check_tensor(features, "features", ndim=2, floating=True)
    f = features.detach().double().cpu().numpy()
    lab = y.detach().cpu().numpy()
    if len(np.unique(lab)) < 2:
        raise ValueError(f"y must hold at least 2 classes, got {np.unique(lab).tolist()}")
    lab = np.unique(lab, return_inverse=True)[1]
    folds = min(check_int(folds, "folds", min_value=2), int(np.bincount(lab).min()
                                                            if len(lab) else 0))
    if folds < 2:
        return float("nan")
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(cross_val_score(clf, f, lab, cv=cv).mean())


def load_letters_k_world(cfg: DTCConfig, seed: int, n_new: int) -> NovelSplit:
    """The class-number world (jittered letters, :func:`cvbook.data.glyphs.make_jittered_letters`,
    drawn with ``seed``): the 26 letters in an order drawn from ``seed``; the first
    ``cfg.k_known`` are the labelled classes of the backbone, the next ``cfg.k_heldout``
    the held-out labelled classes (anchors and probes, never seen by the backbone), and
    the first ``n_new`` of the remaining ones the unlabelled classes."""
    from cvbook.data.glyphs import LETTERS, GlyphConfig, make_jittered_letters

    n_new = check_int(n_new, "n_new", min_value=1)
    rest = len(LETTERS) - cfg.k_known - cfg.k_heldout
    if n_new > rest:
        raise ValueError(f"n_new={n_new} exceeds the {rest} letters left after "
                         f"{cfg.k_known} known and {cfg.k_heldout} held-out classes")
    x, y = make_jittered_letters(GlyphConfig(image_size=cfg.image_size), copies=cfg.k_copies,
                                 seed=seed)
    order = torch.randperm(len(LETTERS), generator=torch.Generator().manual_seed(seed)).tolist()
    known = order[:cfg.k_known]
    held = order[cfg.k_known:cfg.k_known + cfg.k_heldout]
    new = order[cfg.k_known + cfg.k_heldout:][:n_new]
    return split_novel(x, y, known, new, held)


def estimate_k_controls(cfg: DTCConfig, seed: int, *, device: torch.device | str = "cpu",
                        progress: bool = True) -> dict[str, Any]:
    """§3.3 on the jittered letters with the official protocol: a backbone pre-trained on
    ``cfg.k_known`` letters; ``cfg.k_heldout`` other letters, never seen in training,
    split into anchors (``cfg.anchor_ratio``) and probes; the unlabelled set holds
    ``t`` further letters for each ``t`` in ``cfg.k_truths`` (the control: does the
    estimate follow the true number when it changes?). Same backbone for every ``t``.

    Returns ``{"estimates": {t: KEstimate}, "pretrain": History, "split": NovelSplit}``
    (the split of the largest ``t``).
    """
    cfg.validate()
    seed = check_int(seed, "seed", min_value=0)
    dev = torch.device(device)
    t_max = max(cfg.k_truths)
    split = load_letters_k_world(cfg, seed, t_max).to(dev)
    gen = torch.Generator().manual_seed(seed)
    backbone = make_backbone(cfg, split.x_lab.shape[1]).to(dev)
    pre = pretrain(backbone, split.x_lab, split.y_lab, len(split.known),
                   epochs=cfg.pretrain_epochs, lr=cfg.pretrain_lr, batch_size=cfg.batch_size,
                   generator=gen, progress=progress, max_shift=cfg.max_shift,
                   noise_std=cfg.noise_std, flip=cfg.flip)
    est = {}
    for t in cfg.k_truths:
        keep = torch.isin(split.y_unlab, torch.arange(t, device=dev))
        sub = NovelSplit(split.x_lab, split.y_lab, split.x_unlab[keep], split.y_unlab[keep],
                         split.known, split.unknown[:t], split.probes, split.x_probe,
                         split.y_probe)
        est[t] = estimate_k_for_split(cfg, sub, backbone, seed=seed)
    return {"estimates": est, "pretrain": pre, "split": split}


def summarise(scores_per_seed: Sequence[dict[str, dict[str, float]]]
              ) -> dict[str, dict[str, tuple[float, float, int]]]:
    """method -> metric -> (mean, std, number of seeds); the population std over the
    seeds that ran the method (0 for one seed). Methods keep their first-seen order."""
    if len(scores_per_seed) == 0:
        raise ValueError("scores_per_seed is empty")
    methods = list(dict.fromkeys(m for s in scores_per_seed for m in s))
    out: dict[str, dict[str, tuple[float, float, int]]] = {}
    for method in methods:
        runs = [s[method] for s in scores_per_seed if method in s]
        out[method] = {}
        for m in runs[0]:
            v = np.array([r[m] for r in runs], dtype=np.float64)
            out[method][m] = (float(v.mean()), float(v.std()), len(v))
    return out
