"""Evaluation helpers: run a model in eval mode and put its mode back, chunk a forward
pass over a large batch.

Every chapter evaluates a network the same way: switch to eval mode (batch-norm uses its
running statistics, dropout is off), run the inputs through in chunks that fit in memory
without building a graph, concatenate, and restore the mode the caller had set, even
when the forward raises. :func:`eval_mode` is that context; :func:`batched_forward` is
the chunked forward inside it.

Example:
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Dropout(0.5)).train()
    >>> batched_forward(net, torch.ones(5, 3), batch_size=2).shape
    torch.Size([5, 2])
    >>> net.training
    True
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from cvbook.core.validate import check_int

__all__ = ["batched_forward", "eval_mode"]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` (and all its sub-modules) in eval mode; restore every sub-module's
    own ``training`` flag on exit, even on error (a model may hold frozen eval-mode
    parts inside a training one, so restoring only the top flag is not enough).

    >>> net = torch.nn.Linear(2, 2).train()
    >>> with eval_mode(net):
    ...     net.training
    False
    >>> net.training
    True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, was in modes:
            m.training = was


def _cat(outs: list[Any]) -> Any:
    first = outs[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(outs)
    if isinstance(first, dict):
        return {k: _cat([o[k] for o in outs]) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(_cat([o[i] for o in outs]) for i in range(len(first)))
    raise TypeError(f"the forward must return tensors, tuples/lists or dicts of them; got "
                    f"{type(first).__name__}")


@torch.no_grad()
def batched_forward(model: nn.Module, *inputs: torch.Tensor, batch_size: int = 512,
                    fn: Callable[..., Any] | None = None) -> Any:
    """``fn(*chunk)`` (default ``model(*chunk)``) over chunks of ``batch_size`` rows of
    ``inputs``, under ``torch.no_grad()`` with ``model`` in eval mode (restored after, even
    on error), concatenated along the first dimension.

    Args:
        model: the module whose mode is switched (``fn`` may call a part of it).
        *inputs: tensors sharing their first dimension ``N`` (chunked together).
        batch_size: rows per chunk (>= 1).
        fn: what to call on each chunk; ``model`` when ``None``.

    Returns:
        The outputs, with the structure ``fn`` returns (a tensor, a tuple/list or a dict
        of tensors), each of first dimension ``N``.
    """
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    if not inputs:
        raise ValueError("batched_forward needs at least one input tensor")
    n = None
    for i, t in enumerate(inputs):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"inputs[{i}] must be a torch.Tensor, got {type(t).__name__}")
        if n is None:
            n = t.shape[0]
        elif t.shape[0] != n:
            raise ValueError(f"inputs[{i}] must have N = {n} rows as in inputs[0]; got "
                             f"shape {tuple(t.shape)}")
    if n == 0:
        raise ValueError("inputs are empty (N = 0)")
    call = model if fn is None else fn
    with eval_mode(model):
        outs = [call(*(t[i:i + batch_size] for t in inputs)) for i in range(0, n, batch_size)]
    return _cat(outs)
