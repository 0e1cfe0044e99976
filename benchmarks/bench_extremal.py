"""Benchmark: extremal perturbation's cost per iteration against the model's own floor.

    python benchmarks/bench_extremal.py                  # ResNet-18, 224 px, 1 image, 3 areas
    python benchmarks/bench_extremal.py --threads 1 --iterations 20
    python benchmarks/bench_extremal.py --batching      # also: all areas batched vs one by one

The floor is one forward+backward of the model at batch ``A`` (one image, ``A`` areas):
an extremal-perturbation iteration cannot cost less. The script reports cvbook's seconds
per iteration and its ratio to the floor (issue 10's bar: <= 1.3), and TorchRay's ratio
when ``torchray`` is importable (it is not a dependency; nothing is installed). Times are
the best of a few runs (wall clock and, less disturbed on a shared machine, process CPU
time); ResNet-18 uses random weights (the cost does not depend on them).
"""

from __future__ import annotations

import argparse

import torch
from _timing import best_time, best_wall_and_cpu

from cvbook.attribution import extremal_perturbation


def per_iteration(run, iterations: int, repeats: int) -> tuple[float, float]:
    """Seconds per iteration of ``run(its)``: the difference between ``iterations`` and
    a short run removes the fixed set-up cost (pyramid, first forward, result)."""
    short = max(2, iterations // 5)
    run(short)  # warm-up
    w1, c1 = best_wall_and_cpu(lambda: run(short), repeats)
    w2, c2 = best_wall_and_cpu(lambda: run(iterations), repeats)
    n = iterations - short
    return (w2 - w1) / n, (c2 - c1) / n


def floor(model, x: torch.Tensor, repeats: int) -> tuple[float, float]:
    """One forward+backward of ``model`` at ``x``'s batch (input gradient only)."""
    for p in model.parameters():
        p.requires_grad_(False)
    xi = x.clone().requires_grad_(True)

    def step():
        model(xi)[:, 0].sum().backward()

    step()
    return best_wall_and_cpu(step, max(5, repeats * 3))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batching", action="store_true",
                   help="also time all areas in one batch against one area at a time")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    import torchvision

    areas = (0.05, 0.1, 0.2)
    net = torchvision.models.resnet18(weights=None).eval()
    x = torch.rand(1, 3, args.size, args.size)
    kw = dict(areas=areas, step=7, sigma=21.0, max_blur=20.0)
    fw, fc = floor(net, x.expand(len(areas), -1, -1, -1), args.repeats)
    print(f"floor: ResNet-18 forward+backward at batch {len(areas)}, {args.size} px: "
          f"{1e3 * fw:.1f} ms wall, {1e3 * fc:.1f} ms CPU ({args.threads} threads)")
    cw, cc = per_iteration(lambda its: extremal_perturbation(net, x, 0, iterations=its, **kw),
                           args.iterations, args.repeats)
    print(f"cvbook  : {1e3 * cw:.1f} ms/iteration wall, {1e3 * cc:.1f} ms CPU; ratio to the "
          f"floor {cw / fw:.2f} (wall), {cc / fc:.2f} (CPU)")
    try:
        from torchray.attribution.extremal_perturbation import (
            extremal_perturbation as torchray_ep,
        )
    except ImportError:
        print("TorchRay: not installed (pip install torchray to compare)")
    else:
        tw, tc = per_iteration(lambda its: torchray_ep(net, x, 0, areas=list(areas),
                                                       max_iter=its),
                               args.iterations, args.repeats)
        print(f"TorchRay: {1e3 * tw:.1f} ms/iteration wall, {1e3 * tc:.1f} ms CPU; ratio "
              f"{tw / fw:.2f} (wall), {tc / fc:.2f} (CPU)")
    if args.batching:
        def single(its: int):
            for a in areas:
                extremal_perturbation(net, x, 0, iterations=its, **{**kw, "areas": (a,)})
        tb = best_time(lambda: extremal_perturbation(net, x, 0, iterations=args.iterations,
                                                     **kw), repeats=1)
        ts = best_time(lambda: single(args.iterations), repeats=1)
        print(f"batching: all {len(areas)} areas in one batch {ts / tb:.2f}x faster than "
              "one at a time")


if __name__ == "__main__":
    main()
