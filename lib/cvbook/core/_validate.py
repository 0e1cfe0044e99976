"""Small input checks shared by the whole library (scikit-learn style: validate at the
boundary, and say in the message what was expected)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch


def check_int(value: object, name: str, *, min_value: int | None = None,
              max_value: int | None = None) -> int:
    """Return ``value`` as an ``int`` or raise ``TypeError``/``ValueError`` naming ``name``."""
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
    """Return ``value`` as a ``float`` or raise naming ``name`` and the expected range."""
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


def check_tensor(x: object, name: str, *, ndim: int | None = None,
                 shape: Sequence[int | None] | None = None, floating: bool = False,
                 dtype: torch.dtype | None = None) -> torch.Tensor:
    """Check that ``x`` is a tensor with the given rank / shape (``None`` = any size)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}")
    if shape is not None:
        if x.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, x.shape)):
            want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name} must have shape {want}, got {tuple(x.shape)}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {x.dtype}")
    return x


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """Check that ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value  # type: ignore[return-value]
