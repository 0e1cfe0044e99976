"""NormGrad, multi-layer saliency and meta-saliency (Rebuffi, Fong, Ji & Vedaldi,
"There and back again: revisiting backpropagation saliency methods", CVPR 2020,
arXiv:2004.02866; first version arXiv:1910.08823).

For a convolution ``y_u = W x̃_u`` with unfolded input patches ``x̃_u`` and output
gradients ``g_u = ∂ℓ/∂y_u``, the weight gradient is a sum over locations (Eq. 2)::

    ∂ℓ/∂W = Σ_u g_u x̃_uᵀ,

and NormGrad scores each location by the Frobenius norm of its term (Eq. 3)::

    s(u) = ‖g_u x̃_uᵀ‖_F = ‖g_u‖₂ ‖x̃_u‖₂.

With a *virtual identity* 1x1 layer inserted after any layer (Eq. 4) the input is the
activation itself, ``s(u) = ‖g_u‖ ‖x_u‖`` (norms over channels): the default. The
*selective* variant keeps the positive part of the diagonal, ``‖max(0, x_u ⊙ g_u)‖``.
Meta-saliency (§4) explains the network after one SGD step toward the explained class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cvbook.attribution.core import (
    AGGREGATIONS,
    Target,
    _check_input,
    get_module,
    preserve_model,
    probe,
    resize_map,
    reward,
    saliency,
    target_indices,
)
from cvbook.core.validate import Shapes, check_choice, check_float, check_int
from cvbook.metrics.pointing import PointingGame, mass_inside, point, tie_fraction

NORMGRAD_VARIANTS = ("identity", "selective", "proper")

#: The layers of the per-layer evaluation: the ReLU after each block. VGG-16: relu1_2,
#: relu2_2, relu3_3, relu4_3, relu5_3 (the paper's conv1_2..conv5_3); ResNet-50: the
#: output of each stage. These are the names of the authors' class-sensitivity script.
PAPER_LAYERS: dict[str, tuple[str, ...]] = {
    "scenes_cnn": ("features.relu1", "features.relu2", "features.relu3", "features.relu4",
                   "features.relu5"),
    "vgg16": ("features.3", "features.8", "features.15", "features.22", "features.29"),
    "resnet50": ("layer1", "layer2", "layer3", "layer4"),
}


def normgrad(model: nn.Module, input: torch.Tensor, target: Target, *, layer: str,
             variant: str = "identity", resize: bool | Sequence[int] = False) -> torch.Tensor:
    """NormGrad saliency at ``layer`` (Eq. 3-4); ``(N, 1, h, w)``.

    Args:
        layer: module name. For ``variant="proper"`` it must be an ``nn.Conv2d``: its
            input is unfolded with the layer's kernel, stride, padding and dilation and
            the map lives at its output resolution.
        variant: ``"identity"`` (virtual identity layer after ``layer``:
            ``‖g‖·‖x‖``), ``"selective"`` (``‖max(0, x ⊙ g)‖``) or ``"proper"``
            (``‖g_u‖·‖x̃_u‖`` for the real ``k×k`` convolution).
        resize: upsample to the input size (``True``) or to ``(H, W)``.
    """
    check_choice(variant, "variant", NORMGRAD_VARIANTS)
    if variant == "identity":
        return saliency(model, input, target, layer=layer, aggregate="normgrad",
                        resize=resize)
    if variant == "selective":
        return saliency(model, input, target, layer=layer, aggregate="normgrad_selective",
                        resize=resize)
    _check_input(input)
    conv = get_module(model, layer)
    if not isinstance(conv, nn.Conv2d):
        raise ValueError(f"variant='proper' needs an nn.Conv2d layer, {layer!r} is "
                         f"{type(conv).__name__}")
    seen: dict[str, torch.Tensor] = {}
    with preserve_model(model):
        h = conv.register_forward_pre_hook(lambda m, i: seen.__setitem__("x", i[0]))
        try:
            _, (y,), (g,) = probe(model, input, target, layer)
        finally:
            h.remove()
        with torch.no_grad():
            s = conv_contribution_norms(seen["x"].float(), g.float(), conv)
    if resize:
        s = resize_map(s, input.shape[-2:] if resize is True else resize)
    return s


def conv_contribution_norms(x: torch.Tensor, g: torch.Tensor, conv: nn.Conv2d
                            ) -> torch.Tensor:
    """``‖g_u x̃_uᵀ‖_F`` for every output location ``u`` of ``conv`` (grouped convs:
    the norm over all groups' blocks).

    Args:
        x: ``(N, C_in, H, W)`` the convolution's input.
        g: ``(N, C_out, h, w)`` the gradient at its output.

    Returns:
        ``(N, 1, h, w)``.
    """
    s = Shapes()
    s.check(x, "x", "N C H W")
    s.check(g, "g", "N D * *")
    G = conv.groups
    patches = F.unfold(x, conv.kernel_size, dilation=conv.dilation, padding=conv.padding,
                       stride=conv.stride)                        # (N, C_in*k*k, L)
    N, _, L = patches.shape
    if L != g.shape[-2] * g.shape[-1]:
        raise ValueError(f"g has {g.shape[-2]}x{g.shape[-1]} locations, the unfolded input "
                         f"{L}; is g the gradient at this conv's output?")
    xn2 = patches.view(N, G, -1, L).pow(2).sum(2)                  # (N, G, L)
    gn2 = g.reshape(N, G, -1, L).pow(2).sum(2)                     # (N, G, L)
    return (xn2 * gn2).sum(1).sqrt().view(N, 1, *g.shape[-2:])


def layer_saliencies(model: nn.Module, input: torch.Tensor, target: Target,
                     layers: Sequence[str | None], *,
                     aggregates: Sequence[str] = ("gradient", "gradcam", "linear", "normgrad",
                                                  "normgrad_selective"),
                     ) -> dict[str, list[torch.Tensor]]:
    """Every aggregation at every layer from *one* forward and backward pass (the
    extract-and-aggregate view, CVPR paper §3).

    Returns:
        ``{aggregate: [(N, 1, h_l, w_l) for each layer]}``.
    """
    _check_input(input)
    for a in aggregates:
        check_choice(a, "aggregates[i]", list(AGGREGATIONS))
    with preserve_model(model):
        _, acts, grads = probe(model, input, target, list(layers))
        with torch.no_grad():
            out = {a: [AGGREGATIONS[a](x.float(), g.float()) for x, g in zip(acts, grads)]
                   for a in aggregates}
    return out


def combine_maps(maps: Sequence[torch.Tensor], size: Sequence[int], *,
                 weights: Sequence[float] | None = None, mode: str = "sum") -> torch.Tensor:
    """Multi-layer saliency (CVPR paper §3.3): resize every ``(N, 1, h_l, w_l)`` map to
    ``size``, min-max normalise each image's map, then take the weighted sum or the
    weighted geometric product ``Π_l s_l^{w_l}``. Returns ``(N, 1, H, W)``."""
    if not maps:
        raise ValueError("maps must hold at least one map")
    check_choice(mode, "mode", ("sum", "product"))
    w = torch.ones(len(maps)) if weights is None else torch.as_tensor(weights, dtype=torch.float)
    if w.shape != (len(maps),) or (w < 0).any():
        raise ValueError(f"weights must be {len(maps)} non-negative numbers")
    w = w / w.sum().clamp(min=1e-12)
    out = None
    for m, wl in zip(maps, w.tolist()):
        r = resize_map(m.float(), size)
        lo = r.flatten(1).amin(1)[:, None, None, None]
        hi = r.flatten(1).amax(1)[:, None, None, None]
        r = (r - lo) / (hi - lo).clamp(min=1e-12)
        term = wl * r if mode == "sum" else (r + 1e-6) ** wl
        out = term if out is None else (out + term if mode == "sum" else out * term)
    return out


def meta_saliency(model: nn.Module, input: torch.Tensor, target: Target, *,
                  method: Callable[..., torch.Tensor] = normgrad, lr: float = 0.0025,
                  adversarial: bool = False, chunk_size: int | None = None,
                  direction: str = "gradient", generator: torch.Generator | None = None,
                  stats: dict | None = None, **kwargs) -> torch.Tensor:
    """Meta-saliency (CVPR paper §4, Eq. 8): take one SGD step
    ``θ'_i = θ − η ∇_θ CE(Φ_θ(x_i), c_i)`` toward the explained class ``c_i`` of each
    image (eval mode, batch norm frozen; for dense outputs ``(N, C, *spatial)`` the logits
    are summed over positions and one cross-entropy is taken, as in the authors' code),
    compute ``method`` with ``θ'_i``, and put ``θ`` back exactly.
    ``adversarial=True`` negates the loss (the step goes *away* from ``c``): the map then
    shows *adversarial locations*.

    The step depends on the image and its class, so every image has its own weights
    ``θ'_i``. For the backprop methods of this package (:func:`normgrad` in all three
    variants, :func:`~cvbook.attribution.gradient`, :func:`~cvbook.attribution.grad_cam`,
    :func:`~cvbook.attribution.linear_approx`) all images are handled *together*: the
    per-image gradients come from ``torch.func.vmap`` over ``torch.func.grad``, the
    per-image weights ``θ'_i`` are a batch of parameter sets, and the saliency pass is a
    second vmapped forward/backward with :func:`torch.func.functional_call`; the module's
    own parameters and buffers are never written. Any other ``method`` falls back to one
    image at a time (step, explain, restore).

    Args:
        method: a saliency function ``method(model, x, target, **kwargs)``.
        lr: the step size ``η`` (0.0025 in the authors' scripts).
        adversarial: step up the loss instead of down.
        chunk_size: images per vmapped chunk (each holds a copy of the parameters);
            ``None`` picks as many as keep the copies under about 256 Mi numbers.
        direction: ``"gradient"`` (the method) or ``"random"`` (a control: each parameter
            tensor moves along a random Gaussian direction scaled to the norm of that
            tensor's step, so the step has the same per-tensor size but no class
            information). ``"random"`` needs the batched path.
        generator: random numbers of ``direction="random"``.
        stats: if a dict, it receives ``"rel_change"`` ``(N,)`` (‖θ'_i − θ‖ / ‖θ‖ over all
            floating parameters) and ``"probs"`` ``(N, K)`` (the softmax of the network
            with θ'_i on x_i; for dense outputs, of the logits summed over positions).
            Batched path only.

    Returns:
        ``(N, 1, h, w)`` maps.
    """
    _check_input(input)
    lr = check_float(lr, "lr", min_value=0.0)
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size", min_value=1)
    idx = target_indices(target, input.shape[0], input.device)
    if idx is None:
        raise ValueError("meta_saliency needs class targets (the step is a cross-entropy "
                         "step toward the class)")
    check_choice(direction, "direction", ("gradient", "random"))
    sign = 1.0 if adversarial else -1.0
    fast = _batched_aggregate(model, method, kwargs)
    if fast is not None:
        layer, aggregate, resize = fast
        return _meta_saliency_batched(model, input.detach(), idx, sign * lr, layer,
                                      aggregate, resize, chunk_size, direction=direction,
                                      generator=generator, stats=stats)
    if direction != "gradient" or stats is not None:
        raise ValueError("direction='random' and stats need a method that meta_saliency can "
                         "batch (normgrad, gradient, grad_cam, linear_approx)")
    maps = []
    with preserve_model(model, freeze=False, restore_params=True):
        params = [p for p in model.parameters() if p.is_floating_point()]
        saved = [p.detach().clone() for p in params]
        for p in params:
            p.requires_grad_(True)
        for i in range(input.shape[0]):
            xi = input[i:i + 1].detach()
            loss = _step_loss(model(xi), idx[i])
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            with torch.no_grad():
                for p, g in zip(params, grads):
                    if g is not None:
                        p.add_(sign * lr * g)
            try:
                maps.append(method(model, xi, idx[i:i + 1], **kwargs))
            finally:
                with torch.no_grad():
                    for p, v in zip(params, saved):
                        p.copy_(v)
    return torch.cat(maps, 0)


def _step_loss(out: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of a one-image output ``(1, C)`` or ``(1, C, *spatial)`` toward the
    class ``c`` (a 0-d tensor). A dense output's logits are summed over positions first,
    then one cross-entropy is taken (the authors' meta-saliency code). No data-dependent
    control flow, so it runs under ``torch.func.vmap``."""
    logits = out.float()
    if logits.ndim > 2:
        logits = logits.flatten(2).sum(2)
    return F.cross_entropy(logits, c.expand(logits.shape[0]))


def _batched_aggregate(model: nn.Module, method: Callable[..., torch.Tensor],
                       kwargs: dict) -> tuple[str | None, str | Callable, object] | None:
    """``(layer, aggregate, resize)`` when ``method(**kwargs)`` is one probe of one layer
    followed by an aggregation (meta-saliency can then batch over images); else None."""
    from cvbook.attribution import core

    if not set(kwargs) <= {"layer", "variant", "resize"}:
        return None
    layer, resize = kwargs.get("layer"), kwargs.get("resize", False)
    if method is normgrad:
        variant = kwargs.get("variant", "identity")
        check_choice(variant, "variant", NORMGRAD_VARIANTS)
        if variant == "proper":
            conv = get_module(model, layer)
            if not isinstance(conv, nn.Conv2d):
                raise ValueError(f"variant='proper' needs an nn.Conv2d layer, {layer!r} is "
                                 f"{type(conv).__name__}")
            return layer, "proper", resize
        return layer, {"identity": "normgrad", "selective": "normgrad_selective"}[variant], \
            resize
    if "variant" in kwargs:
        return None
    simple = {core.gradient: "gradient", core.grad_cam: "gradcam",
              core.linear_approx: "linear"}
    if method in simple:
        return layer, simple[method], resize
    return None


def _auto_chunk(n_params: int, n: int) -> int:
    return max(1, min(n, (256 * 2**20) // max(n_params, 1)))


def _meta_saliency_batched(model: nn.Module, input: torch.Tensor, idx: torch.Tensor,
                           step: float, layer: str | None, aggregate: str,
                           resize: bool | Sequence[int], chunk_size: int | None,
                           direction: str = "gradient",
                           generator: torch.Generator | None = None,
                           stats: dict | None = None) -> torch.Tensor:
    """Meta-saliency for a batch: per-image steps ``θ'_i = θ + step·∇CE_i`` and the
    probe of ``layer`` under ``θ'_i``, both vmapped over images (see
    :func:`meta_saliency`). ``aggregate`` is a key of :data:`AGGREGATIONS` or
    ``"proper"`` (the real convolution at ``layer``)."""
    from torch.func import functional_call, grad, vmap

    module = get_module(model, layer)
    proper = aggregate == "proper"
    n = input.shape[0]
    with preserve_model(model):
        params = {k: p.detach() for k, p in model.named_parameters() if p.is_floating_point()}
        buffers = {k: b.detach() for k, b in model.named_buffers()}
        n_params = sum(p.numel() for p in params.values())
        chunk = chunk_size or _auto_chunk(n_params, n)

        def loss(p: dict, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            return _step_loss(functional_call(model, (p, buffers), (x[None],)), c)

        def probed(delta: torch.Tensor, p: dict, x: torch.Tensor, c: torch.Tensor):
            # reward(θ', x) with ``delta`` added to the probed activation: its gradient
            # with respect to delta (at 0) is g, the activation comes back as aux
            seen = {"calls": 0}
            if module is None:
                seen["a"] = x
                out = functional_call(model, (p, buffers), ((x + delta)[None],))
            else:
                def hook(m, i, o):
                    # a module called several times reports its last call (as probe)
                    seen["calls"] += 1
                    if seen["calls"] < calls:
                        return None
                    seen["a"], seen["in"] = o, i[0]
                    return o + delta[None]
                h = module.register_forward_hook(hook)
                try:
                    out = functional_call(model, (p, buffers), (x[None],))
                finally:
                    h.remove()
            scores = out.float().flatten(2).mean(2) if out.ndim > 2 else out.float()
            r = scores[0].gather(0, c[None]).sum()
            return r, (seen["a"][0] if module is not None else seen["a"],
                       seen["in"][0] if proper else seen["a"])

        # the probed activation's shape (and how often the module runs), from one plain
        # forward pass of one image
        with torch.no_grad():
            shape: list = []
            if module is None:
                shape.append(input.shape[1:])
            else:
                h = module.register_forward_hook(lambda m, i, o: shape.append(o.shape[1:]))
                try:
                    model(input[:1])
                finally:
                    h.remove()
                if not shape:
                    raise ValueError(f"layer {layer!r} was not called in the forward pass")
        calls = len(shape)
        delta0 = torch.zeros(shape[-1], device=input.device, dtype=input.dtype)
        per_image_grad = vmap(grad(loss), in_dims=(None, 0, 0))
        probe_grad = grad(probed, has_aux=True)
        def logits(p: dict, x: torch.Tensor) -> torch.Tensor:
            out = functional_call(model, (p, buffers), (x[None],)).float()
            return out.flatten(2).sum(2)[0] if out.ndim > 2 else out[0]

        norm0 = torch.sqrt(sum((v.float() ** 2).sum() for v in params.values()))
        maps, rel, probs = [], [], []
        for s in range(0, n, chunk):
            x, c = input[s:s + chunk], idx[s:s + chunk]
            if step != 0.0:
                g_p = per_image_grad(params, x, c)
                if direction == "random":
                    for k, v in g_p.items():
                        r = torch.randn(v.shape, generator=generator, device=v.device,
                                        dtype=v.dtype)
                        scale = (v.flatten(1).norm(dim=1)
                                 / r.flatten(1).norm(dim=1).clamp(min=1e-30))
                        g_p[k] = r * scale.view(-1, *([1] * (v.ndim - 1)))
            if stats is not None:
                with torch.no_grad():
                    if step == 0.0:
                        rel.append(torch.zeros(x.shape[0], device=x.device))
                        probs.append(vmap(logits, in_dims=(None, 0))(params, x).softmax(-1))
                    else:
                        d2 = sum((g.float().flatten(1) ** 2).sum(1) for g in g_p.values())
                        rel.append(abs(step) * d2.sqrt() / norm0)
                        st = {k: v[None] + step * g_p[k] for k, v in params.items()}
                        probs.append(vmap(logits, in_dims=(0, 0))(st, x).softmax(-1))
            if step == 0.0:   # plain saliency: shared weights
                g, (a, a_in) = vmap(probe_grad, in_dims=(None, None, 0, 0))(delta0, params,
                                                                            x, c)
            else:
                stepped = {k: v[None] + step * g_p[k] for k, v in params.items()}
                g, (a, a_in) = vmap(probe_grad, in_dims=(None, 0, 0, 0))(delta0, stepped,
                                                                         x, c)
            with torch.no_grad():
                g, a = g.float(), a.float()
                if proper:
                    m = conv_contribution_norms(a_in.float(), g, module)
                else:
                    if a.ndim == 2:
                        a, g = a[:, :, None, None], g[:, :, None, None]
                    m = AGGREGATIONS[aggregate](a, g)
            maps.append(m.detach())
    if stats is not None:
        stats["rel_change"] = torch.cat(rel)
        stats["probs"] = torch.cat(probs)
    s = torch.cat(maps, 0)
    if resize:
        s = resize_map(s, input.shape[-2:] if resize is True else resize)
    return s


def adversarial_locations(model: nn.Module, input: torch.Tensor, target: Target, *,
                          method: Callable[..., torch.Tensor] = normgrad, lr: float = 0.0025,
                          **kwargs) -> torch.Tensor:
    """Meta-saliency with the loss negated (CVPR paper §4.2): where a step that would
    *unlearn* the class changes the network most. ``(N, 1, h, w)``."""
    return meta_saliency(model, input, target, method=method, lr=lr, adversarial=True,
                         **kwargs)


@dataclass
class LayerPointing:
    """What :func:`layer_pointing` measured.

    Attributes:
        games: ``{(aggregate, layer): PointingGame}``.
        combined: the pointing game of the combined multi-layer map.
        mass: ``{(aggregate, layer) or "combined": (N,) mass_inside}`` per trial.
        ties: ``{(aggregate, layer): (N,)}`` fraction of pixels tied with the maximum.
        maps: the first ``keep`` trials' maps, ``{aggregate: [(keep, 1, h_l, w_l)]}``,
            and ``"combined"``: ``(keep, 1, H, W)``.
    """

    games: dict[tuple[str, str], PointingGame]
    combined: PointingGame
    mass: dict
    ties: dict[tuple[str, str], torch.Tensor]
    maps: dict

    def accuracy(self, aggregate: str, layer: str, subset: str = "all") -> float:
        return self.games[aggregate, layer].accuracy()[subset]

    def interval(self, aggregate: str, layer: str, subset: str = "all"
                 ) -> tuple[float, float]:
        return self.games[aggregate, layer].interval(subset)


def layer_pointing(model: nn.Module, images: torch.Tensor, targets: Target,
                   masks: torch.Tensor, labels: torch.Tensor, difficult: torch.Tensor,
                   layers: Sequence[str], *, num_classes: int, tolerance: float,
                   aggregates: Sequence[str] = ("gradient", "gradcam", "linear",
                                                "normgrad", "normgrad_selective"),
                   combine: str = "normgrad_selective", batch_size: int = 80,
                   ties: str = "random", generator: torch.Generator | None = None,
                   keep: int = 8, progress: bool = True) -> LayerPointing:
    """The per-layer pointing game of the CVPR paper (its per-layer table): every
    aggregation at every layer from one forward/backward pass per batch, each map's
    maximum scored against the ground truth (:mod:`cvbook.metrics.pointing`), plus the
    multi-layer combination of ``combine`` (:func:`combine_maps`, geometric product over
    all layers) and the fraction of each map's mass on the object.

    Args:
        images: ``(N, C, H, W)``; targets: class indices ``(N,)`` or a reward callable
            (it must accept any batch of rows, see :func:`reward`).
        masks: ``(N, H, W)`` bool ground truth; labels: ``(N,)`` classes of the trials
            (per-class means); difficult: ``(N,)`` bool.
        ties: the pointing tie rule (:func:`cvbook.metrics.pointing.point`); ``"random"``
            so that a spatially constant map scores what a random point scores.
        keep: how many leading trials' maps to return for figures.
    """
    _check_input(images)
    sh = Shapes()
    sh.check(images, "images", "N C H W")
    sh.check(masks, "masks", "N H W")
    sh.check(labels, "labels", "N")
    sh.check(difficult, "difficult", "N")
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    check_choice(combine, "combine", list(aggregates))
    idx = target_indices(targets, images.shape[0], images.device)
    size = images.shape[-2:]
    games = {(a, l): PointingGame(num_classes, tolerance) for a in aggregates for l in layers}
    combined = PointingGame(num_classes, tolerance)
    mass: dict = {}
    tie: dict = {}
    kept: dict = {a: [None] * len(layers) for a in aggregates}
    from tqdm.auto import tqdm

    starts = range(0, images.shape[0], batch_size)
    for s0 in tqdm(starts, desc="per-layer pointing", disable=not progress):
        sl = slice(s0, s0 + batch_size)
        t = idx[sl] if idx is not None else targets
        mp = layer_saliencies(model, images[sl], t, layers, aggregates=aggregates)
        for a in aggregates:
            for j, l in enumerate(layers):
                m = mp[a][j]
                games[a, l].add(point(m, size, ties=ties, generator=generator), masks[sl],
                                labels[sl], difficult[sl])
                mass.setdefault((a, l), []).append(mass_inside(m, masks[sl]).cpu())
                tie.setdefault((a, l), []).append(_tie_fraction(m))
                if s0 == 0:
                    kept[a][j] = m[:keep]
        cm = combine_maps(mp[combine], size, mode="product")
        combined.add(point(cm, size, ties=ties, generator=generator), masks[sl], labels[sl],
                     difficult[sl])
        mass.setdefault("combined", []).append(mass_inside(cm, masks[sl]).cpu())
        if s0 == 0:
            kept["combined"] = cm[:keep]
    return LayerPointing(games, combined, {k: torch.cat(v) for k, v in mass.items()},
                         {k: torch.cat(v) for k, v in tie.items()}, kept)


def _tie_fraction(m: torch.Tensor) -> torch.Tensor:
    return tie_fraction(m).cpu()


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Spearman rank correlation of ``(N, P)`` tensors (average ranks for ties)
    -> ``(N,)``."""
    s = Shapes()
    s.check(a, "a", "N P")
    s.check(b, "b", "N P")

    def ranks(x: torch.Tensor) -> torch.Tensor:
        # average rank of tied values: rank = (#less) + (#equal - 1) / 2, vectorised
        s = x.sort(dim=1).values
        less = torch.searchsorted(s.contiguous(), x.contiguous(), right=False).float()
        leq = torch.searchsorted(s.contiguous(), x.contiguous(), right=True).float()
        return (less + leq - 1) / 2

    ra, rb = ranks(a.float()), ranks(b.float())
    ra = ra - ra.mean(1, keepdim=True)
    rb = rb - rb.mean(1, keepdim=True)
    return (ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1)).clamp(min=1e-12)


def class_sensitivity(model: nn.Module, input: torch.Tensor,
                      method: Callable[..., torch.Tensor], **kwargs) -> torch.Tensor:
    """CVPR paper §5.2: Spearman correlation between the map of the most probable class
    and that of the least probable one, per image; ``(N,)`` (lower = more
    class-sensitive). ``method(model, x, target, **kwargs)``."""
    _check_input(input)
    with preserve_model(model), torch.no_grad():
        out = model(input.detach())
        scores = out.float().flatten(2).mean(2) if out.ndim > 2 else out.float()
    top, bottom = scores.argmax(1), scores.argmin(1)
    both = method(model, torch.cat([input, input]), torch.cat([top, bottom]), **kwargs)
    n = input.shape[0]
    return spearman(both[:n].flatten(1), both[n:].flatten(1))


__all__ = ["NORMGRAD_VARIANTS", "PAPER_LAYERS", "LayerPointing", "adversarial_locations",
           "class_sensitivity", "combine_maps", "conv_contribution_norms", "layer_pointing",
           "layer_saliencies", "meta_saliency", "normgrad", "reward", "spearman"]
