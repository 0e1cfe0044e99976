r"""Depth and normal errors as Unsup3D reports them on synthetic faces (Wu et al. 2020;
SIDE is the scale-invariant error of Eigen et al. 2014, the square root of their
scale-invariant log error with lambda = 1).

* :func:`side`: scale-invariant depth error per image, on log depth over a mask,

  .. math:: \Delta = \log \hat d - \log d, \qquad
      \mathrm{SIDE} = \sqrt{\overline{\Delta^2} - \bar\Delta^2},

  the standard deviation of the log-ratio, so a global scale of the prediction (a
  constant in log depth) does not change it. Unsup3D reports it x 1e-2.
* :func:`mad`: mean angle deviation between predicted and true normals, in degrees, over
  the mask.

Both return ``(N,)`` per image (Unsup3D reports mean +- std over the test images). The
mask selects the object (foreground); an empty mask gives NaN. Depths must be positive.
Written here: neither scikit-learn, SciPy nor kornia has these masked, per-image forms;
tested against NumPy loops.
"""

from __future__ import annotations

import torch

from cvbook.core.validate import Shapes, check_float

__all__ = ["mad", "side"]


def _mask(mask: object, s: Shapes, like: torch.Tensor) -> torch.Tensor:
    if mask is None:
        return torch.ones(like.shape[0], *like.shape[-2:], dtype=like.dtype, device=like.device)
    return s.check(mask, "mask", "N H W", dtype=torch.bool).to(like.dtype)


def _masked_mean(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return (x * m).sum((-2, -1)) / m.sum((-2, -1))


def side(pred: torch.Tensor, target: torch.Tensor,
         mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""Scale-invariant depth error per image (see the module docstring).

    Args:
        pred, target: ``(N, H, W)`` positive depths.
        mask: optional ``(N, H, W)`` bool foreground.

    Returns:
        ``(N,)`` SIDE values (not scaled by 100).

    >>> d = torch.rand(2, 4, 4) + 1
    >>> side(3 * d, d).abs().max() < 1e-6
    tensor(True)
    """
    s = Shapes()
    pred = s.check(pred, "pred", "N H W", floating=True)
    target = s.check(target, "target", "N H W", floating=True)
    m = _mask(mask, s, pred)
    delta = pred.log() - target.log()
    mean = _masked_mean(delta, m)
    # two passes (mean of squared deviations), not E[D^2] - E[D]^2, which cancels badly
    return _masked_mean((delta - mean[:, None, None]).pow(2), m).sqrt()


def mad(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, *,
        eps: float = 1e-8) -> torch.Tensor:
    """Mean angle between normals per image, in degrees (normals need not be unit length;
    each is normalised, with ``eps`` guarding zero vectors).

    Args:
        pred, target: ``(N, 3, H, W)`` normals.
        mask: optional ``(N, H, W)`` bool foreground.

    Returns:
        ``(N,)`` mean angles in degrees (an evaluation metric: ``acos`` has an infinite
        slope at 0 degrees, so do not train on it).

    >>> n = torch.zeros(1, 3, 2, 2)
    >>> n[:, 2] = 1.0
    >>> m = n.clone()
    >>> m[:, 0] = 1.0
    >>> mad(m, n)
    tensor([45.])
    """
    s = Shapes()
    pred = s.check(pred, "pred", "N 3 H W", floating=True)
    target = s.check(target, "target", "N 3 H W", floating=True)
    eps = check_float(eps, "eps", min_value=0.0)
    m = _mask(mask, s, pred)
    cos = torch.nn.functional.cosine_similarity(pred, target, dim=1, eps=eps)
    angle = torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0)))
    return _masked_mean(angle, m)
