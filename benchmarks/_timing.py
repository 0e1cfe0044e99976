"""Timing shared by the benchmark scripts: the best of a few runs, CUDA-synchronised.

The scripts run as ``python benchmarks/bench_*.py``, so this module is importable as
``_timing`` from them. Best-of-N (not the mean) is the usual choice for micro-benchmarks:
it is the run least disturbed by the rest of the machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn: Callable[[], object], device: torch.device | str = "cpu", *,
              repeats: int = 3, warmup: bool = True) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``fn`` (after one warm-up call)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    device = torch.device(device)
    if warmup:
        fn()
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return best


def best_wall_and_cpu(fn: Callable[[], object], repeats: int = 3) -> tuple[float, float]:
    """Fastest wall-clock and fastest process-CPU seconds of ``repeats`` calls of ``fn``
    (after one warm-up call). On a shared machine the CPU time is the steadier of the
    two. CPU only: a CUDA kernel's time is not process CPU time."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    fn()
    wall, cpu = float("inf"), float("inf")
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - t)
        cpu = min(cpu, time.process_time() - c)
    return wall, cpu
