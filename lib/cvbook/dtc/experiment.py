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

__all__ = ["kmeans_baseline", "load_split", "read_cifar_train", "run_seed", "summarise"]


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

    ``modes`` overrides ``cfg.modes`` (the DTC variants to train).

    Returns a dict with ``scores`` (method -> {acc, nmi, ari}), ``histories`` (mode ->
    :class:`DTCHistory`), ``pretrain`` (:class:`History`), ``features`` (transferred
    features of the unlabelled set) and ``k_estimate`` (:class:`KEstimate` or None).
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
                   progress=progress, **aug)
    feats = extract_features(backbone, s.x_unlab)
    init = pca_kmeans_init(feats, k, n_init=cfg.n_init, seed=seed, rescale=cfg.rescale)
    scores["k-means, transferred features"] = clustering_scores(s.y_unlab.cpu(),
                                                                init.labels.cpu())
    say(f"seed {seed}: k-means on transferred features ACC "
        f"{scores['k-means, transferred features']['acc']:.3f}")
    state = {n: p.detach().clone() for n, p in backbone.state_dict().items()}
    histories: dict[str, DTCHistory] = {}
    for mode in (cfg.modes if modes is None else modes):
        bb = make_backbone(cfg, s.x_lab.shape[1]).to(dev)
        bb.load_state_dict(state)
        net = DTCNet(bb, init).to(dev)
        h = train_dtc(net, s.x_unlab, mode=mode, epochs=cfg.epochs,
                      warmup_epochs=cfg.warmup_epochs, warmup_lr=cfg.warmup_lr,
                      update_interval=cfg.update_interval, reduction=cfg.reduction,
                      freeze_bn=cfg.freeze_bn, milestones=cfg.milestones, gamma=cfg.gamma,
                      lr=cfg.lr, weight_decay=cfg.weight_decay, batch_size=cfg.batch_size,
                      consistency_weight=cfg.consistency_weight,
                      rampup_length=cfg.rampup_length, ema_alpha=cfg.ema_alpha,
                      y=s.y_unlab, track_embeddings=track_embeddings,
                      generator=torch.Generator().manual_seed(seed * 1000 + MODES.index(mode)),
                      progress=progress, **aug)
        histories[mode] = h
        scores[f"DTC ({mode})"] = clustering_scores(s.y_unlab.cpu(), h.pred.cpu())
    k_est = None
    if estimate_k:
        k_est = estimate_k_for_split(cfg, s, backbone, seed=seed, progress=progress)
    return {"scores": scores, "histories": histories, "pretrain": pre, "features": feats,
            "init": init, "k_estimate": k_est}


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
