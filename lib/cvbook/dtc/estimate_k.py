"""Estimating the number of novel classes (Han et al., ICCV 2019, §3.3): constrained
k-means (:func:`cvbook.cluster.constrained_kmeans`) over anchors, probes and the
unlabelled points for each candidate count, scored by probe accuracy and the silhouette
of the unlabelled points, then the small-cluster cut."""

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
from cvbook.metrics.clustering import hungarian_match

__all__ = ["KEstimate", "estimate_k_for_split", "estimate_num_classes"]


def _probe_score(probe_labels: torch.Tensor, probe_pred: torch.Tensor,
                 unlab_pred: torch.Tensor) -> float:
    """Probe accuracy under Hungarian matching, with the unlabelled points that fall in
    a matched probe cluster counted as errors: ``correct / (N_v + intruders)``.

    Plain probe ACC cannot see an underestimate (an unlabelled class merged into a
    probe's cluster leaves the probe points correct); counting the intruders makes
    the score drop for too few clusters (merges) as well as too many (splits)."""
    mapping = hungarian_match(probe_labels.cpu(), probe_pred.cpu())
    clusters = torch.tensor(list(mapping), dtype=torch.int64)
    classes = torch.tensor(list(mapping.values()), dtype=torch.int64)
    lut = torch.full((int(probe_pred.max()) + 1,), -1, dtype=torch.int64)
    lut[clusters] = classes
    correct = int((lut[probe_pred.cpu()] == probe_labels.cpu()).sum())
    intruders = int(torch.isin(unlab_pred.cpu(), clusters).sum())
    return correct / (probe_labels.numel() + intruders)


@dataclass
class KEstimate:
    """Result of :func:`estimate_num_classes`.

    ``candidates``: the unlabelled class counts tried; ``probe_acc``/``silhouette``:
    their scores; ``k_acc``/``k_sil``: the argmaxes; ``k_star``:
    ``ceil((k_acc + k_sil) / 2)``; ``k``: the estimate after dropping small clusters;
    ``sizes``: unlabelled points per free cluster in the final run.
    """

    candidates: list[int]
    probe_acc: list[float]
    silhouette: list[float]
    k_acc: int
    k_sil: int
    k_star: int
    k: int
    sizes: list[int]


def estimate_num_classes(anchors: torch.Tensor, anchor_labels: torch.Tensor,
                         probes: torch.Tensor, probe_labels: torch.Tensor,
                         unlabelled: torch.Tensor, *, k_max: int = 10, k_min: int = 1,
                         ratio: float = 0.01, n_iter: int = 30, n_init: int = 5,
                         generator: torch.Generator | None = None) -> KEstimate:
    """§3.3: estimate the number of classes in ``unlabelled`` with probe classes.

    For each candidate ``k`` of unlabelled classes, constrained k-means clusters
    anchors ∪ probes ∪ unlabelled into ``A + V + k`` clusters (``A`` anchor classes,
    fixed; ``V`` probe classes, free like the unlabelled points; free points go to the
    ``V + k`` new clusters only, since the new classes are disjoint from the anchors:
    otherwise anchor clusters absorb unlabelled classes and small ``k`` look as good
    as the right one). Two scores: the
    accuracy of the probe points (Hungarian, against their known labels: right only
    when ``k`` neither merges nor splits the probe classes; unlabelled points that land
    in a probe's cluster count as errors, see :func:`_probe_score`) and the silhouette
    of the unlabelled points. ``k* = ceil((argmax acc + argmax silhouette) / 2)``. Finally a
    run with every labelled class fixed and ``k*`` free clusters; free clusters
    holding fewer than ``ratio`` times the largest one's unlabelled points are
    dropped, and the rest counted.

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
    k_min = check_int(k_min, "k_min", min_value=1)
    k_max = check_int(k_max, "k_max", min_value=max(2, k_min))
    ratio = check_float(ratio, "ratio", min_value=0.0, max_value=1.0)
    dev = unlabelled.device
    a = int(anchor_labels.max()) + 1
    v = int(probe_labels.max()) + 1
    x = torch.cat([anchors, probes, unlabelled])
    n_a, n_v = anchors.shape[0], probes.shape[0]
    free = torch.full((n_v + unlabelled.shape[0],), -1, dtype=torch.int64, device=dev)
    fixed = torch.cat([anchor_labels.to(dev, torch.int64), free])
    cands = list(range(k_min, k_max + 1))
    accs, sils = [], []
    for k in cands:  # a handful of candidates; each run is batched
        lab, _ = constrained_kmeans(x, a + v + k, fixed, n_iter=n_iter, n_init=n_init,
                                    exclusive=True, generator=generator)
        lu = lab[n_a + n_v:]
        accs.append(_probe_score(probe_labels, lab[n_a:n_a + n_v], lu))
        sils.append(float(silhouette_score(unlabelled, lu))
                    if 2 <= int(torch.unique(lu).numel()) < lu.numel() else -1.0)
    k_acc = cands[int(np.argmax(accs))]
    k_sil = cands[int(np.argmax(sils))]
    k_star = math.ceil((k_acc + k_sil) / 2)
    # final run: all labelled classes fixed, k* free clusters; drop the small ones
    fixed2 = torch.cat([anchor_labels.to(dev, torch.int64),
                        probe_labels.to(dev, torch.int64) + a,
                        torch.full((unlabelled.shape[0],), -1, dtype=torch.int64, device=dev)])
    lab, _ = constrained_kmeans(x, a + v + k_star, fixed2, n_iter=n_iter, n_init=n_init,
                                exclusive=True, generator=generator)
    lu = lab[n_a + n_v:]
    sizes = torch.bincount(lu, minlength=a + v + k_star)[a + v:]
    kept = int((sizes >= ratio * sizes.max()).sum()) if int(sizes.max()) > 0 else 0
    return KEstimate(cands, accs, sils, k_acc, k_sil, k_star, kept, sizes.tolist())


def estimate_k_for_split(cfg: DTCConfig, split: NovelSplit, backbone: nn.Module, *,
                         seed: int = 0, progress: bool = False) -> KEstimate:
    """Class-number estimation for a split: the probes are the split's held-out probe
    classes if it has them (CIFAR-100: 80-89, never seen in pre-training), else the
    known classes that are not anchors, with a backbone pre-trained on the anchors
    only, so that the probes are as novel to the features as the unlabelled classes.
    """
    dev = split.x_unlab.device
    gen = torch.Generator().manual_seed(seed)
    known = list(split.known)
    anchor_ids = [known.index(c) for c in cfg.anchors]
    if split.x_probe is not None:
        feat_net = backbone
        xa_mask = torch.isin(split.y_lab, torch.tensor(anchor_ids, device=dev))
        x_a, y_a = split.x_lab[xa_mask], split.y_lab[xa_mask]
        x_p, y_p = split.x_probe, split.y_probe
        _, y_a = torch.unique(y_a, return_inverse=True)
    else:
        probe_ids = [i for i in range(len(known)) if i not in anchor_ids]
        if len(probe_ids) < 2 or len(anchor_ids) < 2:
            raise ValueError("class-number estimation needs at least 2 anchor and 2 probe "
                             f"classes; anchors={cfg.anchors}, known={cfg.known}")
        a_mask = torch.isin(split.y_lab, torch.tensor(anchor_ids, device=dev))
        x_a, y_a = split.x_lab[a_mask], split.y_lab[a_mask]
        _, y_a = torch.unique(y_a, return_inverse=True)
        x_p, y_p = split.x_lab[~a_mask], split.y_lab[~a_mask]
        _, y_p = torch.unique(y_p, return_inverse=True)
        feat_net = make_backbone(cfg, split.x_lab.shape[1]).to(dev)
        pretrain(feat_net, x_a, y_a, len(anchor_ids), epochs=cfg.pretrain_epochs,
                 lr=cfg.pretrain_lr, batch_size=cfg.batch_size, generator=gen,
                 progress=progress, max_shift=cfg.max_shift, noise_std=cfg.noise_std,
                 flip=cfg.flip)
    fa, fp, fu = (extract_features(feat_net, t) for t in (x_a, x_p, split.x_unlab))
    if cfg.k_pca_dim and cfg.k_pca_dim < fa.shape[1]:
        from sklearn.decomposition import PCA

        allf = torch.cat([fa, fp, fu]).detach().double().cpu().numpy()
        red = torch.as_tensor(PCA(cfg.k_pca_dim, random_state=seed).fit_transform(allf),
                              dtype=fa.dtype, device=fa.device)
        fa, fp, fu = red.split([len(fa), len(fp), len(fu)])
    return estimate_num_classes(fa, y_a, fp, y_p, fu, k_max=cfg.k_max,
                                ratio=cfg.small_cluster_ratio, n_iter=20, n_init=3,
                                generator=gen)
