"""DTC's objective (Han et al., ICCV 2019, §3.1-3.2): the PCA + k-means initialisation
of the bottleneck and prototypes, the Student-t soft assignment (eq. 1), the sharpened
target (eq. 2), the KL loss (eq. 3), the network that ties them together, and the
temporal ensemble and ramp-up of the consistency term."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cvbook.core.validate import Shapes, check_float, check_int, check_tensor

__all__ = ["DTCNet", "KMeansInit", "TemporalEnsemble", "kl_divergence", "pca_kmeans_init",
           "rampup_weight", "soft_assign", "target_distribution"]


@dataclass
class KMeansInit:
    """PCA + k-means initialisation. ``weight`` ``(K, D)`` and ``bias`` ``(K,)`` are the
    PCA map ``z = weight @ f + bias``; ``centres`` ``(K, K)``; ``labels`` ``(N,)``."""

    weight: torch.Tensor
    bias: torch.Tensor
    centres: torch.Tensor
    labels: torch.Tensor


def pca_kmeans_init(features: torch.Tensor, k: int, *, n_init: int = 20,
                    seed: int = 0, rescale: bool = True) -> KMeansInit:
    """Step 2 (§3.1): PCA of the unlabelled features to ``k`` dims, then k-means with
    ``n_init`` restarts (scikit-learn).

    Args:
        features: ``(N, D)`` features of the unlabelled images, ``N >= k``.
        k: number of clusters (>= 2); also the PCA / bottleneck dimension.
        rescale: scale the PCA map so that points lie at RMS distance 1 from their
            centres (the kernel of eq. 1 has a fixed width; ``False``: plain PCA).
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    check_tensor(features, "features", shape="N D", floating=True)
    k = check_int(k, "k", min_value=2)
    if features.shape[0] < k:
        raise ValueError(f"features must have at least k={k} rows, got {features.shape[0]}")
    if features.shape[1] < k:
        raise ValueError(f"features must have at least k={k} dimensions for PCA to k, got "
                         f"{features.shape[1]}")
    f = features.detach().double().cpu().numpy()
    pca = PCA(n_components=k, random_state=seed).fit(f)
    z = pca.transform(f)
    km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(z)
    # Scale the embedding so that the RMS distance of a point to its centre is 1: the
    # Student-t kernel of eq. 1 has a fixed width, so on a tiny scale every q_i would be
    # nearly uniform and DEC would have no signal. k-means is scale-invariant.
    scale = 1.0
    if rescale:
        rms = np.sqrt(((z - km.cluster_centers_[km.labels_]) ** 2).sum(1).mean())
        scale = 1.0 / max(rms, 1e-12)
    dev, dt = features.device, features.dtype
    w = torch.as_tensor(pca.components_ * scale, dtype=dt, device=dev)
    b = -(w @ torch.as_tensor(pca.mean_, dtype=dt, device=dev))
    return KMeansInit(w, b, torch.as_tensor(km.cluster_centers_ * scale, dtype=dt, device=dev),
                      torch.as_tensor(km.labels_, dtype=torch.int64, device=dev))


def soft_assign(z: torch.Tensor, centres: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Eq. (1): Student-t soft assignment of embeddings to prototypes,
    ``q_ik ∝ (1 + ||z_i - mu_k||^2 / alpha)^(-(alpha + 1) / 2)``.

    Args:
        z: ``(N, D)`` embeddings; centres: ``(K, D)`` prototypes ``mu``.

    Returns:
        ``(N, K)`` rows summing to one.
    """
    s = Shapes()
    s.check(z, "z", "N D", floating=True)
    s.check(centres, "centres", "K D", floating=True)
    alpha = check_float(alpha, "alpha", min_value=0.0, open_min=True)
    d2 = (z[:, None, :] - centres[None, :, :]).pow(2).sum(-1)           # (N, K)
    logits = -(alpha + 1.0) / 2.0 * torch.log1p(d2 / alpha)
    return torch.softmax(logits, dim=1)


def target_distribution(q: torch.Tensor) -> torch.Tensor:
    """Eq. (2): the sharpened target ``p_ik ∝ q_ik^2 / f_k`` with ``f_k = sum_i q_ik``
    (squaring sharpens, dividing by cluster frequency stops large clusters taking
    over). ``(N, K) -> (N, K)``, rows summing to one, no gradient."""
    check_tensor(q, "q", ndim=2, floating=True)
    if q.shape[0] == 0:
        raise ValueError("q is empty")
    q = q.detach()
    w = q.pow(2) / q.sum(0, keepdim=True)
    return w / w.sum(1, keepdim=True)


def kl_divergence(p: torch.Tensor, q: torch.Tensor, eps: float = 1e-12,
                  reduction: str = "batchmean") -> torch.Tensor:
    """Eq. (3): ``KL(P || Q) = sum_i sum_k p_ik log(p_ik / q_ik)``, divided by ``N``
    (``reduction="batchmean"``, the paper's per-sample mean) or by ``N * K``
    (``"mean"``: what the official code computes, ``F.kl_div(q.log(), p)`` with
    PyTorch's default element-wise reduction). ``p``, ``q``: ``(N, K)``."""
    s = Shapes()
    s.check(p, "p", "N K", floating=True)
    s.check(q, "q", "N K", floating=True)
    if reduction not in ("batchmean", "mean"):
        raise ValueError(f"reduction must be 'batchmean' or 'mean', got {reduction!r}")
    terms = p * (torch.log(p.clamp_min(eps)) - torch.log(q.clamp_min(eps)))
    return terms.sum(1).mean() if reduction == "batchmean" else terms.mean()


class DTCNet(nn.Module):
    """Backbone -> bottleneck ``Linear(D, K)`` -> soft assignment to prototypes ``mu``.

    Shapes: ``(N, C, H, W)`` -> ``z`` ``(N, K)``, ``q`` ``(N, K)``.
    """

    def __init__(self, backbone: nn.Module, init: KMeansInit, alpha: float = 1.0) -> None:
        super().__init__()
        k, d = init.weight.shape
        self.backbone = backbone
        self.bottleneck = nn.Linear(d, k)
        with torch.no_grad():
            self.bottleneck.weight.copy_(init.weight)
            self.bottleneck.bias.copy_(init.bias)
        self.centres = nn.Parameter(init.centres.detach().clone())
        self.alpha = alpha

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(self.backbone(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.embed(x).float()  # eqs. 1-3 in float32 under autocast
        return z, soft_assign(z, self.centres.float(), self.alpha)


def rampup_weight(epoch: int | float, length: int, lam: float) -> float:
    """The consistency weight ``w(t) = lam * exp(-5 (1 - t/T)^2)`` for ``t < T``, then
    ``lam`` (Laine & Aila's sigmoid-shaped ramp-up used by DTC, §3.2)."""
    lam = check_float(lam, "lam", min_value=0.0)
    length = check_int(length, "length", min_value=0)
    epoch = check_float(epoch, "epoch", min_value=0.0)
    if length == 0 or epoch >= length:
        return lam
    return lam * math.exp(-5.0 * (1.0 - epoch / length) ** 2)


class TemporalEnsemble:
    """Per-sample exponential moving average of predictions (§3.2, after Laine & Aila):
    ``Q <- alpha Q + (1 - alpha) q_epoch``, bias-corrected ``Q / (1 - alpha^t)``.

    Args:
        n: number of samples; k: number of clusters; alpha: EMA momentum (0.6 in DTC).
    """

    def __init__(self, n: int, k: int, alpha: float = 0.6, device: torch.device | str =
                 "cpu") -> None:
        self.n = check_int(n, "n", min_value=1)
        self.k = check_int(k, "k", min_value=1)
        self.alpha = check_float(alpha, "alpha", min_value=0.0, max_value=0.999)
        self.state = torch.zeros(n, k, device=device)
        self.steps = 0

    def update(self, q: torch.Tensor) -> torch.Tensor:
        """Fold in this epoch's ``(n, k)`` predictions; returns the corrected ensemble."""
        check_tensor(q, "q", shape=(self.n, self.k), floating=True)
        self.state.mul_(self.alpha).add_(q.detach(), alpha=1.0 - self.alpha)
        self.steps += 1
        return self.value

    @property
    def value(self) -> torch.Tensor:
        """``(n, k)`` bias-corrected ensemble (zeros before the first update)."""
        if self.steps == 0:
            return self.state.clone()
        return self.state / (1.0 - self.alpha ** self.steps)
