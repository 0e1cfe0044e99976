"""Benchmark: extremal perturbation, seconds per (image, area), all areas and images in
one batch against one (image, area) at a time.

    python benchmarks/bench_extremal.py                 # 64 px SceneCNN and 224 px ResNet-18
    python benchmarks/bench_extremal.py --iterations 20 --images 4

ResNet-18 uses random weights (no download): the cost does not depend on the weights.
"""

from __future__ import annotations

import argparse

import torch
from _timing import best_time

from cvbook.attribution import extremal_perturbation


def bench(model, size: int, images: int, areas: tuple[float, ...], iterations: int,
          step: int, sigma: float, max_blur: float, substeps: int | None) -> dict[str, float]:
    x = torch.rand(images, 3, size, size)
    y = torch.zeros(images, dtype=torch.long)
    kw = dict(step=step, sigma=sigma, max_blur=max_blur, substeps=substeps)

    def batched(its: int):
        extremal_perturbation(model, x, y, areas=areas, iterations=its, **kw)

    def single(its: int):
        for i in range(images):
            for a in areas:
                extremal_perturbation(model, x[i:i + 1], y[i:i + 1], areas=(a,),
                                      iterations=its, **kw)

    # warm both paths up with a short run (first calls pay one-off allocator and kernel
    # set-up costs), then time the real one once
    batched(2)
    single(2)
    t_batched = best_time(lambda: batched(iterations), repeats=1, warmup=False)
    t_single = best_time(lambda: single(iterations), repeats=1, warmup=False)
    n = images * len(areas)
    return {"batched_s_per_image_area": t_batched / n, "single_s_per_image_area": t_single / n,
            "speedup": t_single / t_batched}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-224", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from cvbook.zoo import build_model

    areas = (0.05, 0.1, 0.2)
    r = bench(build_model("scenes_cnn").eval(), 64, args.images, areas, args.iterations,
              step=4, sigma=8.0, max_blur=6.0, substeps=2)
    print(f"64 px SceneCNN  : {r['batched_s_per_image_area']:.3f} s/(image, area) batched, "
          f"{r['single_s_per_image_area']:.3f} one at a time, speed-up {r['speedup']:.1f}x "
          f"({args.iterations} iterations)")
    if not args.skip_224:
        import torchvision

        net = torchvision.models.resnet18(weights=None).eval()
        r = bench(net, 224, args.images, areas, args.iterations, step=7, sigma=21.0,
                  max_blur=20.0, substeps=None)
        print(f"224 px ResNet-18: {r['batched_s_per_image_area']:.3f} s/(image, area) "
              f"batched, {r['single_s_per_image_area']:.3f} one at a time, speed-up "
              f"{r['speedup']:.1f}x ({args.iterations} iterations)")


if __name__ == "__main__":
    main()
