"""Benchmark: the cost of NormGrad (and of all five aggregations at five layers at once)
relative to one plain gradient pass to the input.

    python benchmarks/bench_normgrad.py [--repeats 5] [--batch 64]
"""

from __future__ import annotations

import argparse
import time

import torch

import cvbook.attribution as A
from cvbook.nn.cnn import SCENE_CNN_LAYERS


def best_of(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from cvbook.zoo import build_model

    model = build_model("scenes_cnn").eval()
    x = torch.rand(args.batch, 3, 64, 64)
    y = torch.zeros(args.batch, dtype=torch.long)
    base = best_of(lambda: A.gradient(model, x, y), args.repeats)
    rows = {
        "normgrad @ relu3": lambda: A.normgrad(model, x, y, layer="features.relu3"),
        "normgrad proper @ conv4": lambda: A.normgrad(model, x, y, layer="features.conv4",
                                                      variant="proper"),
        "5 aggregations x 5 layers, one pass": lambda: A.layer_saliencies(
            model, x, y, list(SCENE_CNN_LAYERS)),
    }
    print(f"plain gradient pass: {base * 1e3:.1f} ms for {args.batch} images")
    for name, fn in rows.items():
        t = best_of(fn, args.repeats)
        print(f"{name:40s}: {t * 1e3:7.1f} ms  ({t / base:.2f}x the gradient pass)")


if __name__ == "__main__":
    main()
