"""FixRes's training transform: our batched RandomResizedCrop
(:func:`cvbook.image.crops.random_resized_crop`, one ``roi_align`` call for
the whole batch, on the device) against torchvision's ``v2.RandomResizedCrop`` applied
image by image, as a DataLoader would.

    python benchmarks/bench_fixres_transforms.py [--n 512] [--size 64] [--k 32]
"""

from __future__ import annotations

import argparse

import torch
from _timing import best_time
from torchvision.transforms import v2

from cvbook.image.crops import random_resized_crop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    tv = v2.RandomResizedCrop(args.k, antialias=True)
    for dev in devices:
        x = torch.rand(args.n, 3, args.size, args.size, device=dev)
        g = torch.Generator(device=dev).manual_seed(0)
        ours = best_time(lambda: random_resized_crop(x, args.k, generator=g), dev)
        loop = best_time(lambda: torch.stack([tv(img) for img in x]), dev)
        print(f"{dev.type}: {args.n} images {args.size}px -> {args.k}px: batched "
              f"{args.n / ours:.0f} img/s, torchvision per image {args.n / loop:.0f} img/s, "
              f"ratio {loop / ours:.1f}x")


if __name__ == "__main__":
    main()
