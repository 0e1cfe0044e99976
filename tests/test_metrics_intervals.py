"""Tests of cvbook.metrics.intervals (the paired bootstrap)."""

from __future__ import annotations

import math

import pytest
import torch

from cvbook.metrics.intervals import paired_bootstrap


def test_paired_bootstrap_matches_the_normal_interval() -> None:
    g = torch.Generator().manual_seed(0)
    n = 4000
    common = 10 * torch.randn(n, generator=g, dtype=torch.float64)  # shared difficulty
    a = common + 0.3 + torch.randn(n, generator=g, dtype=torch.float64)
    b = common
    r = paired_bootstrap(a, b, n_boot=4000, generator=torch.Generator().manual_seed(1))
    d = a - b
    half = 1.96 * float(d.std()) / math.sqrt(n)  # the pairing removes the shared part
    assert r["diff"] == pytest.approx(float(d.mean()))
    assert r["lo"] == pytest.approx(float(d.mean()) - half, abs=0.15 * half)
    assert r["hi"] == pytest.approx(float(d.mean()) + half, abs=0.15 * half)


def test_paired_bootstrap_constant_difference_and_validation() -> None:
    b = torch.rand(50, generator=torch.Generator().manual_seed(0))
    r = paired_bootstrap(b + 2.0, b, n_boot=100)
    assert r["lo"] == pytest.approx(2.0) and r["hi"] == pytest.approx(2.0)
    with pytest.raises(ValueError):
        paired_bootstrap(b, b[:10])
    with pytest.raises(ValueError):
        paired_bootstrap(b, b, level=1.0)
