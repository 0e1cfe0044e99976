"""Device and automatic-mixed-precision (AMP) selection.

Every chapter calls :func:`get_device` once and passes the result on; library code
otherwise follows the device of its inputs.
"""

from __future__ import annotations

import contextlib

import torch

_VALID = ("auto", "cpu", "cuda", "mps")


def get_device(prefer: str | torch.device | None = "auto") -> torch.device:
    """Pick a device: ``"auto"`` (CUDA, then Apple MPS, then CPU) or an explicit one.

    Raises:
        ValueError: the name is unknown, or the requested accelerator is not available.
    """
    if prefer is None or prefer == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if isinstance(prefer, torch.device):
        dev = prefer
    elif isinstance(prefer, str):
        try:
            dev = torch.device(prefer)
        except RuntimeError as e:
            raise ValueError(f"device must be one of {_VALID} (optionally with an index, "
                             f"e.g. 'cuda:1'); got {prefer!r}") from e
    else:
        raise TypeError(f"device must be a str or torch.device, got {type(prefer).__name__}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but CUDA is not available; "
                         "use device='auto' or 'cpu'")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) is not None
                                  and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was requested but MPS is not available")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be one of {_VALID}; got {prefer!r}")
    return dev


def _as_device(device: torch.device | str) -> torch.device:
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise TypeError(f"device must be a str or torch.device, got {type(device).__name__}")
    try:
        return torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"device must be one of {_VALID[1:]} (optionally with an index); "
                         f"got {device!r}") from e


def supports_amp(device: torch.device | str) -> bool:
    """Whether mixed precision is worth turning on for ``device`` (CUDA only)."""
    return _as_device(device).type == "cuda"


def amp_dtype(device: torch.device | str) -> torch.dtype:
    """The half-precision type used by :func:`autocast` on ``device``:
    bfloat16 where the GPU supports it (no loss scaling needed), else float16."""
    device = _as_device(device)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    if device.type == "cuda":
        return torch.float16
    return torch.bfloat16


def autocast(device: torch.device | str, enabled: bool = True):
    """A context manager for AMP on ``device``; a no-op when disabled or unsupported."""
    device = _as_device(device)
    if not enabled or not supports_amp(device):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype(device))
