"""Benchmark: the cost of NormGrad (and of all five aggregations at five layers at once)
relative to one plain gradient pass to the input; and meta-saliency (one SGD step per
image, then NormGrad), batched with torch.func against one image at a time.

    python benchmarks/bench_normgrad.py [--repeats 5] [--batch 64]
"""

from __future__ import annotations

import argparse

import torch
from _timing import best_wall_and_cpu

import cvbook.attribution as A
from cvbook.nn import SCENE_CNN_LAYERS


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
    y = torch.arange(args.batch) % 4
    base = best_wall_and_cpu(lambda: A.gradient(model, x, y), args.repeats)
    rows = {
        "normgrad @ relu3": lambda: A.normgrad(model, x, y, layer="features.relu3"),
        "normgrad proper @ conv4": lambda: A.normgrad(model, x, y, layer="features.conv4",
                                                      variant="proper"),
        "5 aggregations x 5 layers, one pass": lambda: A.layer_saliencies(
            model, x, y, list(SCENE_CNN_LAYERS)),
        "meta-saliency @ relu3, batched (vmap)": lambda: A.meta_saliency(
            model, x, y, lr=0.01, layer="features.relu3"),
        # a lambda around normgrad is not recognised: the reference one-image loop
        "meta-saliency @ relu3, one image at a time": lambda: A.meta_saliency(
            model, x, y, lr=0.01, layer="features.relu3",
            method=lambda m, xx, t, **kw: A.normgrad(m, xx, t, **kw)),
    }
    print(f"plain gradient pass: {base[0] * 1e3:.1f} ms wall, {base[1] * 1e3:.1f} ms CPU "
          f"for {args.batch} images")
    for name, fn in rows.items():
        t = best_wall_and_cpu(fn, args.repeats)
        print(f"{name:44s}: {t[0] * 1e3:7.1f} ms wall ({t[0] / base[0]:.2f}x), "
              f"{t[1] * 1e3:7.1f} ms CPU ({t[1] / base[1]:.2f}x the gradient pass)")

if __name__ == "__main__":
    main()
