"""The shared saliency core: probe any layer by name, any target, the model left as found.

Every attribution method of :mod:`cvbook.attribution` is a thin function over
:func:`saliency`, which

1. puts the model in a known state (:func:`preserve_model`: eval mode, in-place ops off,
   parameters frozen) and *restores exactly* what it found afterwards, even when an
   exception is raised (train/eval flags, ``requires_grad``, ``inplace``, ``.grad``,
   hooks; optionally the parameter values);
2. optionally swaps the backward rule of some modules (DeConvNet, guided backprop,
   excitation backprop) with temporary forward hooks;
3. runs one forward pass, reads the activation ``x`` of the probed layer (or the input),
   turns the output into one *reward* per image (:func:`reward`), and back-propagates to
   get ``g = ∂reward/∂x``;
4. aggregates ``(x, g)`` into a map (:data:`AGGREGATIONS`): the "extract and aggregate"
   view of the NormGrad paper (arXiv:2004.02866, §3).

Targets (``target=``): an ``int`` (one class for the whole batch), a sequence or an
``(N,)`` integer tensor (one class per image), or a callable ``reward(output) -> (N,)``
for custom models (segmentation: sum of a class's logits inside a region; a detector's
score; a regression output). For class targets, outputs with spatial dimensions
``(N, C, H', W')`` are averaged over space (fully-convolutional networks).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cvbook.core.validate import Shapes, check_tensor

Target = int | Sequence[int] | torch.Tensor | Callable[[torch.Tensor], torch.Tensor]
Aggregate = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
               "_backward_pre_hooks", "_forward_hooks_with_kwargs",
               "_forward_hooks_always_called", "_forward_pre_hooks_with_kwargs")


# --------------------------------------------------------------------------- modules
def get_module(model: nn.Module, name: str | None) -> nn.Module | None:
    """The sub-module called ``name`` (as in ``model.named_modules()``); ``None`` or
    ``"input"`` mean the input itself and return ``None``; ``""`` is the model.

    Raises:
        TypeError: ``model`` is not a module or ``name`` not a string.
        ValueError: no such module (the message lists a few valid names).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if name is None or name == "input":
        return None
    if not isinstance(name, str):
        raise TypeError(f"layer must be a module name (str) or None, got {type(name).__name__}")
    modules = dict(model.named_modules())
    if name not in modules:
        names = [n for n in modules if n]
        close = [n for n in names if name.split(".")[-1] in n][:8] or names[:8]
        raise ValueError(f"layer {name!r} is not a module of the model; valid names "
                         f"include {close} (see model.named_modules())")
    return modules[name]


@contextlib.contextmanager
def preserve_model(model: nn.Module, *, eval_mode: bool = True, no_inplace: bool = True,
                   freeze: bool = True, restore_params: bool = False) -> Iterator[nn.Module]:
    """Context manager that leaves ``model`` exactly as it found it.

    On entry it records, for every sub-module, the ``training`` flag, the ``inplace``
    attribute (ReLU, Dropout, ...) and its hook dictionaries, and for every parameter
    ``requires_grad`` and ``.grad``; then (by default) it switches to eval mode, turns
    in-place operations off (they would overwrite probed activations) and freezes the
    parameters. On exit, even on an exception, everything is put back and every hook
    added meanwhile is removed. With ``restore_params=True`` the parameter and buffer
    values are also copied back (meta-saliency changes the weights).

    Args:
        model: the network.
        eval_mode: call ``model.eval()`` inside (batch-norm statistics frozen).
        no_inplace: set ``inplace = False`` on every module that has the attribute.
        freeze: set ``requires_grad = False`` on every parameter.
        restore_params: snapshot and restore parameter and buffer values.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    modules = list(model.modules())
    training = [m.training for m in modules]
    inplace = [(m, m.inplace) for m in modules if isinstance(getattr(m, "inplace", None), bool)]
    hooks = [(m, {a: list(getattr(m, a).keys()) for a in _HOOK_DICTS if hasattr(m, a)})
             for m in modules]
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    grads = [p.grad for p in params]
    values = None
    if restore_params:
        with torch.no_grad():
            values = ([p.detach().clone() for p in params],
                      [(b, b.detach().clone()) for b in model.buffers()])
    try:
        if eval_mode:
            model.eval()
        if no_inplace:
            for m, _ in inplace:
                m.inplace = False
        if freeze:
            for p in params:
                p.requires_grad_(False)
        yield model
    finally:
        if values is not None:
            with torch.no_grad():
                for p, v in zip(params, values[0]):
                    p.copy_(v)
                for b, v in values[1]:
                    b.copy_(v)
        for p, f, g in zip(params, flags, grads):
            p.requires_grad_(f)
            p.grad = g
        for m, v in inplace:
            m.inplace = v
        for m, t in zip(modules, training):
            m.training = t
        for m, keys in hooks:
            for attr, before in keys.items():
                d = getattr(m, attr)
                for k in [k for k in d.keys() if k not in before]:
                    del d[k]


def model_state(model: nn.Module) -> dict[str, object]:
    """A comparable snapshot of everything :func:`preserve_model` restores (for tests):
    training flags, ``inplace`` flags, ``requires_grad``, hook counts, parameter bytes."""
    return {
        "training": [(n, m.training) for n, m in model.named_modules()],
        "inplace": [(n, m.inplace) for n, m in model.named_modules()
                    if isinstance(getattr(m, "inplace", None), bool)],
        "requires_grad": [(n, p.requires_grad) for n, p in model.named_parameters()],
        "grad": [(n, None if p.grad is None else p.grad.clone()) for n, p in
                 model.named_parameters()],
        "hooks": [(n, {a: len(getattr(m, a)) for a in _HOOK_DICTS if hasattr(m, a)})
                  for n, m in model.named_modules()],
        "params": {n: p.detach().clone() for n, p in model.state_dict().items()},
    }


# --------------------------------------------------------------------------- targets
def _check_input(input: torch.Tensor) -> torch.Tensor:
    check_tensor(input, "input", floating=True)
    if input.ndim < 2:
        raise ValueError(f"input must be batched (N, ...), got shape {tuple(input.shape)}")
    return input


def _batch(n: int, source: str) -> Shapes:
    """:class:`~cvbook.core.validate.Shapes` with ``N`` bound to the batch size ``n`` of
    ``source`` (a meta tensor stands for it: no memory, no device), so that a target's
    shape is checked with the shared wording, e.g. "target must have shape (N,) with
    N = 4 as in input (N, *); got (3,)"."""
    s = Shapes()
    s.check(torch.empty(n, 0, device="meta"), source, "N *")
    return s


def target_indices(target: Target, n: int, device: torch.device, *, source: str = "input"
                   ) -> torch.Tensor | None:
    """``target`` as an ``(n,)`` int64 tensor of class indices, or ``None`` for a callable.

    ``n`` is the batch size of ``source`` (named in error messages).

    Raises:
        TypeError / ValueError: naming ``target`` and what was expected.

    >>> target_indices([2, 0], 2, torch.device("cpu"))
    tensor([2, 0])
    >>> target_indices([2, 0, 1], 2, torch.device("cpu"))
    Traceback (most recent call last):
        ...
    ValueError: target must have shape (N,) with N = 2 as in input (N, *); got (3,)
    """
    if callable(target) and not isinstance(target, torch.Tensor):
        return None
    if isinstance(target, bool):
        raise TypeError("target must be a class index, a sequence of them, an (N,) tensor "
                        "or a callable reward(output) -> (N,); got a bool")
    if isinstance(target, int):
        if target < 0:
            raise ValueError(f"target must be a non-negative class index, got {target}")
        return torch.full((n,), target, dtype=torch.long, device=device)
    if isinstance(target, torch.Tensor):
        t = target
    elif isinstance(target, Sequence) and not isinstance(target, str):
        t = torch.as_tensor(list(target))
    else:
        raise TypeError("target must be a class index, a sequence of them, an (N,) tensor "
                        f"or a callable reward(output) -> (N,); got {type(target).__name__}")
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise TypeError(f"target must hold integer class indices, got dtype {t.dtype}")
    if t.ndim == 0:
        t = t.expand(n)
    _batch(n, source).check(t, "target", "N")
    if (t < 0).any():
        raise ValueError("target must hold non-negative class indices")
    return t.to(device=device, dtype=torch.long)


def reward(output: torch.Tensor, target: Target) -> torch.Tensor:
    """One scalar per image to explain: ``(N,)``.

    Args:
        output: the model's output, ``(N, C)`` or ``(N, C, *spatial)`` (averaged over space
            for class targets).
        target: class index / indices, or a callable ``output -> (N,)``.
    """
    if not isinstance(output, torch.Tensor):
        raise TypeError("the model must return a tensor (wrap it, or give target as a "
                        f"callable on its output); got {type(output).__name__}")
    n = output.shape[0]
    idx = target_indices(target, n, output.device, source="output")
    if idx is None:
        r = target(output)  # type: ignore[operator]
        if not isinstance(r, torch.Tensor):
            raise TypeError("a callable target must return an (N,) tensor, got "
                            f"{type(r).__name__}")
        _batch(n, "output").check(r, "target(output)", "N")
        return r.float()
    if output.ndim < 2:
        raise ValueError(f"class targets need an (N, C, ...) output, got {tuple(output.shape)}")
    if (idx >= output.shape[1]).any():
        raise ValueError(f"target class out of range for an output with {output.shape[1]} "
                         "classes")
    scores = output.float().flatten(2).mean(2) if output.ndim > 2 else output.float()
    return scores.gather(1, idx[:, None])[:, 0]


def expand_target(target: Target, n: int, repeats: int, device: torch.device) -> Target:
    """``target`` for a batch where every image is repeated ``repeats`` times in a row."""
    idx = target_indices(target, n, device)
    if idx is None:
        return target
    return idx.repeat_interleave(repeats)


# --------------------------------------------------------------------------- rules
class _RectifiedReLU(torch.autograd.Function):
    """ReLU whose backward is DeConvNet's (``max(0, g)``) or guided backprop's
    (``max(0, g)·[x > 0]``); the forward is unchanged."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, guided: bool) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.guided = guided
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        (x,) = ctx.saved_tensors
        g = g.clamp(min=0)
        if ctx.guided:
            g = g * (x > 0).to(g.dtype)
        return g, None


class _Excitation(torch.autograd.Function):
    """A layer whose backward is excitation backprop's marginal-winning-probability rule
    (Zhang et al. 2016, Eq. 7): ``P(x_j) = x_j Σ_i w⁺_ij P(y_i) / Σ_j' w⁺_ij' x_j'``.
    ``positive(x)`` computes ``Σ_j w⁺_ij x_j`` (the layer with its weights clamped)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor, positive) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.positive = positive
        return y.detach().clone()

    @staticmethod
    def backward(ctx, p_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            xx = x.detach().requires_grad_(True)
            z = ctx.positive(xx)
            z = z + (z == 0).to(z.dtype) * 1e-12
            (g,) = torch.autograd.grad(z, xx, p_out / z)
        return xx.detach() * g, None, None


class _PassThrough(torch.autograd.Function):
    """Identity in the backward pass (batch norm under excitation backprop: each output
    has a single input, which receives all of its probability)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y.detach().clone()

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        return g, None


def _positive_fn(m: nn.Module, negate: bool):
    def sign(w: torch.Tensor) -> torch.Tensor:
        return (-w if negate else w).clamp(min=0)

    if isinstance(m, nn.Conv2d):
        return lambda x: F.conv2d(x, sign(m.weight), None, m.stride, m.padding, m.dilation,
                                  m.groups)
    if isinstance(m, nn.Linear):
        return lambda x: F.linear(x, sign(m.weight))
    if isinstance(m, nn.AdaptiveAvgPool2d):  # functional: calling m would re-enter its hook
        return lambda x: F.adaptive_avg_pool2d(x, m.output_size)
    return lambda x: F.avg_pool2d(x, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                                  m.count_include_pad, m.divisor_override)


def _rule_hooks(model: nn.Module, rule: str | None, contrast_layer: str | None = None
                ) -> list[torch.utils.hooks.RemovableHandle]:
    """Register forward hooks that swap backward rules; return their handles."""
    handles = []
    if rule is None:
        return handles
    if rule in ("deconvnet", "guided"):
        guided = rule == "guided"
        relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
        if not relus:
            raise ValueError(f"{rule} changes the backward pass of nn.ReLU modules, and the "
                             "model has none (functional relu calls cannot be hooked)")
        for m in relus:
            handles.append(m.register_forward_hook(
                lambda mod, inp, out, g=guided: _RectifiedReLU.apply(inp[0], g)))
        return handles
    if rule in ("excitation", "contrastive"):
        contrast = get_module(model, contrast_layer) if rule == "contrastive" else None
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
                fn = _positive_fn(m, negate=m is contrast)
                handles.append(m.register_forward_hook(
                    lambda mod, inp, out, fn=fn: _Excitation.apply(inp[0], out, fn)))
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                handles.append(m.register_forward_hook(
                    lambda mod, inp, out: _PassThrough.apply(inp[0], out)))
        return handles
    raise ValueError(f"unknown backward rule {rule!r}")


def last_linear_layer(model: nn.Module) -> str:
    """Name of the last ``nn.Linear`` (or 1x1 ``nn.Conv2d``) module: the classifier,
    which contrastive excitation backprop negates."""
    name = None
    for n, m in model.named_modules():
        if isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)):
            name = n
    if name is None:
        raise ValueError("the model has no nn.Linear or 1x1 nn.Conv2d classifier; pass "
                         "contrast_layer=")
    return name


# --------------------------------------------------------------------------- probing
def probe(model: nn.Module, input: torch.Tensor, target: Target,
          layers: str | None | Sequence[str | None] = None, *, rule: str | None = None,
          contrast_layer: str | None = None, create_graph: bool = False
          ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """One forward and one backward pass; the activations and gradients of ``layers``.

    Must run inside :func:`preserve_model` (the public methods do that). A module called
    several times in a forward pass (a shared ReLU) reports its *last* call.

    Args:
        model: the network.
        input: ``(N, ...)`` batch.
        target: see :func:`reward`.
        layers: a module name, ``None``/``"input"`` for the input, or a list of them.
        rule: ``None`` (plain gradient), ``"deconvnet"``, ``"guided"``, ``"excitation"``
            or ``"contrastive"`` (the excitation rule with ``contrast_layer`` negated).
        create_graph: keep the graph of the gradients (for second-order use).

    Returns:
        ``(output, activations, gradients)``, one ``(N, C_l, H_l, W_l)`` pair per layer.
    """
    single = isinstance(layers, str) or layers is None
    names = [layers] if single else list(layers)  # type: ignore[list-item]
    if not names:
        raise ValueError("layers must name at least one layer")
    mods = [get_module(model, n) for n in names]
    x = input.detach().clone().requires_grad_(True)
    acts: dict[int, torch.Tensor] = {}
    handles = _rule_hooks(model, rule, contrast_layer)
    try:
        for i, m in enumerate(mods):
            if m is None:
                acts[i] = x
            else:
                def hook(mod, inp, out, i=i):
                    if not isinstance(out, torch.Tensor):
                        raise TypeError(f"layer {names[i]!r} returns "
                                        f"{type(out).__name__}, not a tensor; probe a "
                                        "module that outputs a tensor")
                    acts[i] = out
                handles.append(m.register_forward_hook(hook))
        output = model(x)
        missing = [names[i] for i in range(len(names)) if i not in acts]
        if missing:
            raise ValueError(f"layers {missing} were not called in the forward pass")
        r = reward(output, target)
        act_list = [acts[i] for i in range(len(names))]
        grads = torch.autograd.grad(r.sum(), act_list, create_graph=create_graph,
                                    allow_unused=True)
        grads = [torch.zeros_like(a) if g is None else g for a, g in zip(act_list, grads)]
    finally:
        for h in handles:
            h.remove()
    return output, act_list, list(grads)


def _max_abs(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return g.abs().amax(1, keepdim=True)


def _linear(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return (x * g).sum(1, keepdim=True)


def _gradcam(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    w = g.mean(dim=tuple(range(2, g.ndim)), keepdim=True)
    return (x * w).sum(1, keepdim=True).clamp(min=0)


def _normgrad(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return g.norm(dim=1, keepdim=True) * x.norm(dim=1, keepdim=True)


def _normgrad_selective(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return (x * g).clamp(min=0).norm(dim=1, keepdim=True)


def _channel_sum(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return g.sum(1, keepdim=True)


#: How each method turns a layer's activation ``x`` and gradient ``g`` (both
#: ``(N, C, H, W)``) into a map ``(N, 1, H, W)``.
AGGREGATIONS: dict[str, Aggregate] = {
    "gradient": _max_abs,                   # max_c |g|  (Simonyan et al. 2014)
    "linear": _linear,                      # Σ_c x·g     (linear approximation)
    "gradcam": _gradcam,                    # ReLU(Σ_c x·GAP(g))  (Selvaraju et al. 2017)
    "normgrad": _normgrad,                  # ‖g‖·‖x‖     (NormGrad, virtual identity)
    "normgrad_selective": _normgrad_selective,  # ‖max(0, x⊙g)‖
    "probability": _channel_sum,            # Σ_c P       (excitation backprop)
}


def resize_map(saliency: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize of ``(N, 1, h, w)`` maps to ``size = (H, W)``."""
    check_tensor(saliency, "saliency", ndim=4)
    if tuple(saliency.shape[-2:]) == tuple(size):
        return saliency
    return F.interpolate(saliency.float(), size=tuple(size), mode="bilinear",
                         align_corners=False)


def saliency(model: nn.Module, input: torch.Tensor, target: Target, *,
             layer: str | None = None, aggregate: str | Aggregate = "gradient",
             rule: str | None = None, contrast_layer: str | None = None,
             resize: bool | Sequence[int] = False) -> torch.Tensor:
    """The shared core of the backprop methods (one forward, one backward pass).

    Args:
        model: any ``nn.Module``; left exactly as found (see :func:`preserve_model`).
        input: ``(N, C, H, W)`` batch.
        target: class index, indices ``(N,)`` or a callable reward (see :func:`reward`).
        layer: module name to probe (``None``: the input).
        aggregate: a key of :data:`AGGREGATIONS` or a callable ``(x, g) -> (N, 1, h, w)``.
        rule: backward rule (see :func:`probe`).
        resize: ``True`` to upsample the map to the input size, or a size ``(H, W)``.

    Returns:
        ``(N, 1, h, w)`` saliency at the layer's resolution (or resized).
    """
    _check_input(input)
    agg = AGGREGATIONS.get(aggregate) if isinstance(aggregate, str) else aggregate
    if agg is None or not callable(agg):
        raise ValueError(f"aggregate must be one of {sorted(AGGREGATIONS)} or a callable, "
                         f"got {aggregate!r}")
    with preserve_model(model):
        _, (x,), (g,) = probe(model, input, target, layer, rule=rule,
                              contrast_layer=contrast_layer)
        with torch.no_grad():
            if x.ndim == 2:
                x, g = x[:, :, None, None], g[:, :, None, None]
            s = agg(x.float(), g.float())
    if resize:
        s = resize_map(s, input.shape[-2:] if resize is True else resize)
    return s.detach()


# --------------------------------------------------------------------------- methods
def gradient(model: nn.Module, input: torch.Tensor, target: Target, *,
             layer: str | None = None, resize: bool | Sequence[int] = False) -> torch.Tensor:
    """Gradient saliency (Simonyan et al. 2014): ``max_c |∂reward/∂x_c|``; ``(N,1,h,w)``."""
    return saliency(model, input, target, layer=layer, aggregate="gradient", resize=resize)


def deconvnet(model: nn.Module, input: torch.Tensor, target: Target, *,
              layer: str | None = None, resize: bool | Sequence[int] = False) -> torch.Tensor:
    """DeConvNet (Zeiler & Fergus 2014): ReLUs back-propagate ``max(0, g)``; ``(N,1,h,w)``."""
    return saliency(model, input, target, layer=layer, aggregate="gradient", rule="deconvnet",
                    resize=resize)


def guided_backprop(model: nn.Module, input: torch.Tensor, target: Target, *,
                    layer: str | None = None, resize: bool | Sequence[int] = False
                    ) -> torch.Tensor:
    """Guided backprop (Springenberg et al. 2015): ReLUs back-propagate
    ``max(0, g)·[x > 0]``; ``(N, 1, h, w)``."""
    return saliency(model, input, target, layer=layer, aggregate="gradient", rule="guided",
                    resize=resize)


def grad_cam(model: nn.Module, input: torch.Tensor, target: Target, *, layer: str,
             resize: bool | Sequence[int] = False) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017, Eq. 1-2): ``ReLU(Σ_c x_c · mean_u g_c(u))`` at
    ``layer``; ``(N, 1, h, w)``."""
    return saliency(model, input, target, layer=layer, aggregate="gradcam", resize=resize)


def linear_approx(model: nn.Module, input: torch.Tensor, target: Target, *,
                  layer: str | None = None, resize: bool | Sequence[int] = False
                  ) -> torch.Tensor:
    """Linear approximation (Kindermans et al. 2016; NormGrad paper Eq. 6):
    ``Σ_c x_c·g_c`` at ``layer``; ``(N, 1, h, w)``."""
    return saliency(model, input, target, layer=layer, aggregate="linear", resize=resize)


def excitation_backprop(model: nn.Module, input: torch.Tensor, target: Target, *,
                        layer: str, resize: bool | Sequence[int] = False) -> torch.Tensor:
    """Excitation backprop (Zhang et al. 2016): the marginal winning probability at
    ``layer``, summed over channels; ``(N, 1, h, w)``.

    Conv, linear and average-pooling layers use the positive-weight rule; batch norm
    passes probability through; ReLU and max-pooling use their usual backward (winner
    takes all). Residual additions split nothing: each branch receives the full
    probability of the sum (a known approximation for ResNets)."""
    return saliency(model, input, target, layer=layer, aggregate="probability",
                    rule="excitation", resize=resize)


def contrastive_excitation_backprop(model: nn.Module, input: torch.Tensor, target: Target, *,
                                    layer: str, contrast_layer: str | None = None,
                                    resize: bool | Sequence[int] = False) -> torch.Tensor:
    """Contrastive excitation backprop (Zhang et al. 2016, §3.3): the target's winning
    probability minus that of its *dual* unit (the classifier ``contrast_layer``, by
    default the last linear layer, with negated weights), clamped at zero;
    ``(N, 1, h, w)``."""
    contrast_layer = contrast_layer or last_linear_layer(model)
    get_module(model, contrast_layer)
    pos = saliency(model, input, target, layer=layer, aggregate="probability",
                   rule="excitation")
    neg = saliency(model, input, target, layer=layer, aggregate="probability",
                   rule="contrastive", contrast_layer=contrast_layer)
    s = (pos - neg).clamp(min=0)
    if resize:
        s = resize_map(s, input.shape[-2:] if resize is True else resize)
    return s
