"""Input validation for the whole library (scikit-learn style: validate at the boundary,
and say in the message what was expected and what was given).

Scalars: :func:`check_int`, :func:`check_float`, :func:`check_range`, :func:`check_choice`.
Tensors: :func:`check_tensor` for one argument, :class:`Shapes` for several arguments whose
dimensions must agree. A shape is written as a string of space-separated dimensions:

* a name (``N``, ``K``, ``D``, ``H``...) binds on first sight and must match afterwards;
* an integer is a fixed size;
* ``*`` is any size;
* a leading ``...`` is any number of batch dimensions (they bind too, as a whole).

Every message has one wording, for example::

    centres must have shape (K, D) with D = 8 as in z (N, D); got (5, 7)

Hot inner loops call none of this: a public function checks its arguments once and then
calls private helpers that trust them.

Example:
    >>> import torch
    >>> s = Shapes()
    >>> z = s.check(torch.zeros(4, 8), "z", "N D")
    >>> s["D"]
    8
    >>> s.check(torch.zeros(5, 7), "centres", "K D")
    Traceback (most recent call last):
        ...
    ValueError: centres must have shape (K, D) with D = 8 as in z (N, D); got (5, 7)
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

__all__ = [
    "Shapes",
    "check_choice",
    "check_float",
    "check_int",
    "check_range",
    "check_tensor",
]


def check_int(value: object, name: str, *, min_value: int | None = None,
              max_value: int | None = None) -> int:
    """Return ``value`` as an ``int`` or raise ``TypeError``/``ValueError`` naming ``name``.

    >>> check_int(3, "k", min_value=1)
    3
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    value = int(value)
    if min_value is not None and value < min_value:
        raise ValueError(f"{name} must be >= {min_value}, got {value}")
    if max_value is not None and value > max_value:
        raise ValueError(f"{name} must be <= {max_value}, got {value}")
    return value


def check_float(value: object, name: str, *, min_value: float | None = None,
                max_value: float | None = None, open_min: bool = False) -> float:
    """Return ``value`` as a ``float`` or raise naming ``name`` and the expected range.

    >>> check_float(0.5, "lr", min_value=0.0, open_min=True)
    0.5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    value = float(value)
    if value != value:  # NaN
        raise ValueError(f"{name} must not be NaN")
    if min_value is not None and (value < min_value or (open_min and value == min_value)):
        op = ">" if open_min else ">="
        raise ValueError(f"{name} must be {op} {min_value}, got {value}")
    if max_value is not None and value > max_value:
        raise ValueError(f"{name} must be <= {max_value}, got {value}")
    return value


def check_range(value: object, name: str, *, low: float, high: float) -> tuple[float, float]:
    """Check a ``(lo, hi)`` pair with ``low <= lo <= hi <= high``."""
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (lo, hi), got {value!r}")
    lo = check_float(value[0], f"{name}[0]")
    hi = check_float(value[1], f"{name}[1]")
    if not (low <= lo <= hi <= high):
        raise ValueError(f"{name} must satisfy {low} <= lo <= hi <= {high}, got {value!r}")
    return lo, hi


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """Check that ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value  # type: ignore[return-value]


def _parse(spec: str | Sequence[int | str | None]) -> list[int | str]:
    """Turn ``"N K 3"`` or ``("N", "K", 3)`` (``None`` = ``*``) into a token list."""
    if isinstance(spec, str):
        raw: list[int | str] = [t for t in spec.replace(",", " ").split() if t]
    else:
        raw = ["*" if t is None else t for t in spec]
    tokens: list[int | str] = []
    for i, t in enumerate(raw):
        if isinstance(t, str) and t.lstrip("-").isdigit():
            t = int(t)
        if isinstance(t, bool) or not isinstance(t, (int, str)):
            raise TypeError(f"a shape spec holds names, ints, '*' or '...'; got {t!r}")
        if t == "..." and i != 0:
            raise ValueError(f"'...' may only lead a shape spec, got {spec!r}")
        tokens.append(t)
    return tokens


def _fmt_spec(tokens: Sequence[int | str]) -> str:
    return "(" + ", ".join(str(t) for t in tokens) + ")" if len(tokens) != 1 else \
        f"({tokens[0]},)"


class Shapes:
    """Named dimensions that bind across the arguments of one call.

    Args:
        **fixed: dimensions known beforehand, e.g. ``Shapes(K=17)`` for a model built for
            17 keypoints (the message then says "as in the model").

    ``check`` returns the tensor so that it can be used inline; ``s["K"]`` reads a bound
    dimension (``s.get("K")`` returns ``None`` when unbound).
    """

    def __init__(self, **fixed: int) -> None:
        self._bound: dict[str, tuple[object, str]] = {}
        for k, v in fixed.items():
            self._bound[k] = (check_int(v, k, min_value=0), "the model")

    def __getitem__(self, dim: str) -> int:
        if dim not in self._bound:
            raise KeyError(f"dimension {dim!r} is not bound yet")
        return self._bound[dim][0]  # type: ignore[return-value]

    def get(self, dim: str) -> int | None:
        return self._bound[dim][0] if dim in self._bound else None  # type: ignore[return-value]

    def check(self, x: object, name: str, spec: str | Sequence[int | str | None], *,
              floating: bool = False, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Check ``x`` against ``spec`` and bind its named dimensions.

        Raises:
            TypeError: ``x`` is not a tensor, or has the wrong dtype.
            ValueError: its rank or a dimension differs from the spec or from a dimension
                bound by an earlier argument.
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        tokens = _parse(spec)
        want = _fmt_spec(tokens)
        got = tuple(x.shape)
        lead = tokens[:1] == ["..."]
        body = tokens[1:] if lead else tokens
        if (x.ndim < len(body)) if lead else (x.ndim != len(body)):
            rank = f"at least {len(body)}" if lead else f"{len(body)}"
            raise ValueError(f"{name} must have shape {want} ({rank} dimensions); got {got}")
        new: dict[str, tuple[object, str]] = {}
        if lead:
            batch = got[: x.ndim - len(body)]
            prev = self._bound.get("...")
            if prev is not None and prev[0] != batch:
                raise ValueError(f"{name} must have shape {want} with ... = {prev[0]} as in "
                                 f"{prev[1]}; got {got}")
            new["..."] = (batch, f"{name} {want}")
        for t, d in zip(body, got[x.ndim - len(body):]):
            if t == "*":
                continue
            if isinstance(t, int):
                if d != t:
                    raise ValueError(f"{name} must have shape {want}; got {got}")
                continue
            prev = self._bound.get(t) or new.get(t)
            if prev is not None and prev[0] != d:
                raise ValueError(f"{name} must have shape {want} with {t} = {prev[0]} as in "
                                 f"{prev[1]}; got {got}")
            new.setdefault(t, (d, f"{name} {want}"))
        if floating and not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
        if dtype is not None and x.dtype != dtype:
            raise TypeError(f"{name} must have dtype {dtype}, got {x.dtype}")
        for k, v in new.items():
            self._bound.setdefault(k, v)
        return x


def check_tensor(x: object, name: str, *, ndim: int | None = None,
                 shape: str | Sequence[int | str | None] | None = None,
                 floating: bool = False, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Check one tensor: its rank, its shape (a spec as in :class:`Shapes`; ``None`` in a
    sequence means any size) and its dtype. For several arguments use :class:`Shapes`.

    >>> check_tensor(torch.zeros(2, 3), "x", shape="N 3").shape
    torch.Size([2, 3])
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions; got shape {tuple(x.shape)}")
    if shape is not None:
        Shapes().check(x, name, shape)
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {x.dtype}")
    return x
