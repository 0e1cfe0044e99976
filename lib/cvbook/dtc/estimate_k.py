"""Estimating the number of novel classes (Han et al., ICCV 2019, §3.3): constrained
k-means (:func:`cvbook.cluster.constrained_kmeans`) over anchors, probes and the
unlabelled points for each candidate count, scored by probe accuracy and the silhouette
of the free points, then the clusters of the chosen run that hold unlabelled points are
counted, as the official code (k-han/DTC, ``cifar100_est_k.py``) does."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cvbook.cluster import constrained_kmeans, silhouette_score
from cvbook.core.validate import Shapes, check_float, check_int
from cvbook.data.splits import NovelSplit
from cvbook.dtc.presets import DTCConfig
from cvbook.dtc.train import extract_features, make_backbone, pretrain
from cvbook.metrics.clustering import cluster_acc

__all__ = ["KEstimate", "estimate_k_for_split", "estimate_num_classes"]


@dataclass
class KEstimate:
    """Result of :func:`estimate_num_classes`.

    ``candidates``: the unlabelled class counts tried; ``probe_acc``/``silhouette``:
    their scores; ``k_acc``/``k_sil``: the argmaxes (the largest candidate on ties);
    ``k_star``: the candidate at ``ceil((i_acc + i_sil) / 2)`` (``i``: indices into
    ``candidates``); ``k``: the estimate, the number of clusters in ``k_star``'s run
    holding more than ``ratio`` times the largest one's unlabelled points; ``sizes``:
    unlabelled points per cluster in that run; ``labels``: its cluster of every
    unlabelled point.
    """

    candidates: list[int]
    probe_acc: list[float]
    silhouette: list[float]
    k_acc: int
    k_sil: int
    k_star: int
    k: int
    sizes: list[int]
    labels: torch.Tensor | None = None


def estimate_num_classes(anchors: torch.Tensor, anchor_labels: torch.Tensor,
                         probes: torch.Tensor, probe_labels: torch.Tensor,
                         unlabelled: torch.Tensor, *, k_max: int = 10, k_min: int = 0,
                         ratio: float = 0.01, n_iter: int = 30, n_init: int = 10,
                         exclusive: bool = False,
                         generator: torch.Generator | None = None) -> KEstimate:
    """§3.3: estimate the number of classes in ``unlabelled`` with probe classes, as the
    official code does (k-han/DTC, ``cifar100_est_k.py``).

    For each candidate ``k`` of unlabelled classes, constrained k-means
    (:func:`cvbook.cluster.constrained_kmeans`) clusters anchors ∪ probes ∪ unlabelled
    into ``A + V + k`` clusters: the anchor points keep their class (``A`` clusters
    whose centres start at the class means), the probe and unlabelled points are free
    and go to the nearest of *all* centres (``exclusive=True``: only to the ``V + k``
    new ones). Two scores per candidate: the accuracy of the probe points
    (:func:`cvbook.metrics.clustering.cluster_acc`, Hungarian; high when the probe
    classes are neither merged nor split) and the silhouette (the cluster validity
    index) of the free points, probes and unlabelled together. With ``i_acc`` and
    ``i_sil`` the (last) argmaxes, the run of candidate index ``ceil((i_acc + i_sil) /
    2)`` is kept and its clusters holding more than ``ratio`` times the largest one's
    unlabelled points are counted: that count is the estimate.

    Args:
        anchors: ``(N_a, D)`` features; anchor_labels: ``(N_a,)`` in ``0..A-1``.
        probes: ``(N_v, D)`` features; probe_labels: ``(N_v,)`` in ``0..V-1``.
        unlabelled: ``(N_u, D)`` features.
    """
    s = Shapes()
    for name, t, spec in (("anchors", anchors, "A D"), ("probes", probes, "V D"),
                          ("unlabelled", unlabelled, "U D")):
        s.check(t, name, spec, floating=True)
        if t.shape[0] == 0:
            raise ValueError(f"{name} is empty")
    for name, lab, spec in (("anchor_labels", anchor_labels, "A"),
                            ("probe_labels", probe_labels, "V")):
        s.check(lab, name, spec)
        if lab.is_floating_point() or bool((lab < 0).any()):
            raise ValueError(f"{name} must be non-negative integer class ids")
    k_min = check_int(k_min, "k_min", min_value=0)
    k_max = check_int(k_max, "k_max", min_value=max(1, k_min))
    ratio = check_float(ratio, "ratio", min_value=0.0, max_value=1.0)
    dev = unlabelled.device
    a = int(anchor_labels.max()) + 1
    v = int(probe_labels.max()) + 1
    if a + v + k_min < 2:
        raise ValueError(f"the smallest candidate needs at least 2 clusters: {a} anchor + {v} "
                         f"probe classes + k_min={k_min}")
    x = torch.cat([anchors, probes, unlabelled])
    n_a, n_v = anchors.shape[0], probes.shape[0]
    free = torch.full((n_v + unlabelled.shape[0],), -1, dtype=torch.int64, device=dev)
    fixed = torch.cat([anchor_labels.to(dev, torch.int64), free])
    free_x = x[n_a:]
    cands = list(range(k_min, k_max + 1))
    accs, sils, runs = [], [], []
    for k in cands:  # a handful of candidates; each run is batched over restarts
        lab, _ = constrained_kmeans(x, a + v + k, fixed, n_iter=n_iter, n_init=n_init,
                                    exclusive=exclusive, generator=generator)
        runs.append(lab[n_a + n_v:])
        accs.append(cluster_acc(probe_labels.cpu(), lab[n_a:n_a + n_v].cpu()))
        lf = lab[n_a:]
        sils.append(float(silhouette_score(free_x, lf))
                    if 2 <= int(torch.unique(lf).numel()) < lf.numel() else -1.0)
    i_acc = len(cands) - 1 - int(np.argmax(accs[::-1]))     # last argmax, as official
    i_sil = len(cands) - 1 - int(np.argmax(sils[::-1]))
    i_star = math.ceil((i_acc + i_sil) / 2)
    lu = runs[i_star]
    sizes = torch.bincount(lu, minlength=a + v + cands[i_star])
    kept = int((sizes.double() > ratio * sizes.max().double()).sum())
    return KEstimate(cands, accs, sils, cands[i_acc], cands[i_sil], cands[i_star], kept,
                     sizes.tolist(), lu)


def estimate_k_for_split(cfg: DTCConfig, split: NovelSplit, backbone: nn.Module, *,
                         seed: int = 0, progress: bool = False) -> KEstimate:
    """Class-number estimation for a split.

    * With held-out probe classes (CIFAR-100: 80-89, never seen in pre-training), as
      the official code: a random ``cfg.anchor_ratio`` of them (60%) become the anchors
      and the rest the probes, on the features of the main ``backbone``.
    * Otherwise (the digits worlds, ten classes only) the known classes are divided:
      ``cfg.anchors`` are the anchors and the other known classes the probes; a second
      backbone is pre-trained on the anchors only, so that the probes are as new to the
      features as the unlabelled classes (the anchors, unlike the official ones, are
      not: there are too few classes to hold out both).

    Features are reduced to ``cfg.k_pca_dim`` dimensions by PCA first (0: not reduced).
    """
    dev = split.x_unlab.device
    gen = torch.Generator().manual_seed(seed)
    if split.x_probe is not None:
        feat_net = backbone
        n_probe = len(split.probes)
        n_anchor = min(max(1, round(n_probe * cfg.anchor_ratio)), n_probe - 1)
        if n_probe < 2:
            raise ValueError(f"class-number estimation needs at least 2 probe classes, got "
                             f"{split.probes}")
        perm = torch.randperm(n_probe, generator=gen)
        anchor_ids = perm[:n_anchor].to(dev)
        a_mask = torch.isin(split.y_probe, anchor_ids)
        x_a, y_a = split.x_probe[a_mask], split.y_probe[a_mask]
        x_p, y_p = split.x_probe[~a_mask], split.y_probe[~a_mask]
    else:
        known = list(split.known)
        anchor_ids = [known.index(c) for c in cfg.anchors]
        probe_ids = [i for i in range(len(known)) if i not in anchor_ids]
        if len(probe_ids) < 2 or len(anchor_ids) < 2:
            raise ValueError("class-number estimation needs at least 2 anchor and 2 probe "
                             f"classes; anchors={cfg.anchors}, known={cfg.known}")
        a_mask = torch.isin(split.y_lab, torch.tensor(anchor_ids, device=dev))
        x_a, y_a = split.x_lab[a_mask], split.y_lab[a_mask]
        x_p, y_p = split.x_lab[~a_mask], split.y_lab[~a_mask]
        feat_net = make_backbone(cfg, split.x_lab.shape[1]).to(dev)
        _, y_a_pre = torch.unique(y_a, return_inverse=True)
        pretrain(feat_net, x_a, y_a_pre, len(anchor_ids), epochs=cfg.pretrain_epochs,
                 lr=cfg.pretrain_lr, batch_size=cfg.batch_size, generator=gen,
                 progress=progress, max_shift=cfg.max_shift, noise_std=cfg.noise_std,
                 flip=cfg.flip)
    _, y_a = torch.unique(y_a, return_inverse=True)
    _, y_p = torch.unique(y_p, return_inverse=True)
    fa, fp, fu = (extract_features(feat_net, t) for t in (x_a, x_p, split.x_unlab))
    if cfg.k_pca_dim and cfg.k_pca_dim < fa.shape[1]:
        from sklearn.decomposition import PCA

        allf = torch.cat([fa, fp, fu]).detach().double().cpu().numpy()
        red = torch.as_tensor(PCA(cfg.k_pca_dim, random_state=seed).fit_transform(allf),
                              dtype=fa.dtype, device=fa.device)
        fa, fp, fu = red.split([len(fa), len(fp), len(fu)])
    return estimate_num_classes(fa, y_a, fp, y_p, fu, k_max=cfg.k_max,
                                k_min=cfg.k_min, ratio=cfg.small_cluster_ratio, n_iter=20,
                                n_init=cfg.k_n_init, generator=gen)
