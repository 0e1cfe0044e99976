"""Training the zoo's DVE checkpoints (``dve_c3``, ``dve_c3_dve``, ``dve_c16``,
``dve_c16_dve``: :data:`cvbook.zoo.ZOO`, recipe :class:`cvbook.zoo.DVERecipe`).

The zoo ships networks built from the shared homes and imports no paper module, so the
training of these entries (DVE's loss) lives here and saves through
:func:`cvbook.zoo.save_entry` (float16 weights, provenance json with the sha256)::

    python -m cvbook.dve.zoo_train dve_c16_dve                 # writes cvbook/zoo/
    python -m cvbook.dve.zoo_train dve_c16_dve --smoke --out /tmp/zoo
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cvbook import zoo
from cvbook.core.validate import check_choice, check_int
from cvbook.dve.model import SmallNet
from cvbook.dve.presets import FACES_PAIRS, faces_world
from cvbook.dve.train import evaluate_matching, train_descriptor
from cvbook.zoo import DVERecipe

__all__ = ["DVE_ENTRIES", "main", "train", "train_dve"]

#: The zoo entries this module trains.
DVE_ENTRIES = tuple(n for n, e in zoo.ZOO.items() if isinstance(e.recipe, DVERecipe))


def train_dve(recipe: DVERecipe, *, device: str | torch.device = "cpu",
              progress: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """Train a DVE SmallNet following ``recipe`` on the faces world.

    Returns:
        ``(model, metrics)``: the loss curve (means of 50 steps) and the mean
        same / different-identity matching errors (pixels) on ``recipe.n_eval``
        held-out faces.
    """
    from tqdm.auto import tqdm

    from cvbook.core.seed import seed_everything
    if not isinstance(recipe, DVERecipe):
        raise TypeError(f"recipe must be a DVERecipe, got {type(recipe).__name__}")
    device = torch.device(device)
    seed_everything(recipe.seed, threads=None)
    world = faces_world(seed=recipe.world_seed)
    if device.type != "cpu":
        world = type(world)(world.num_train, world.num_test, config=world.config,
                            seed=world.seed, device=device)
    model = SmallNet(recipe.dim).to(device)
    gen = torch.Generator(device=device).manual_seed(recipe.seed)
    bar = tqdm(total=recipe.steps, desc="steps", disable=not progress)

    def tick(step: int, loss: float) -> None:
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss:.3f}")

    hist = train_descriptor(model, world, steps=recipe.steps, batch_size=recipe.batch_size,
                            lr=recipe.lr, dve=recipe.dve, pairs=FACES_PAIRS, generator=gen,
                            callback=tick, amsgrad=True, milestones=recipe.milestones)
    bar.close()
    model.eval()
    ev = evaluate_matching(model, world, n=recipe.n_eval, pairs=FACES_PAIRS,
                           generator=torch.Generator(device=device).manual_seed(10**6))
    curve = [round(sum(hist[i:i + 50]) / len(hist[i:i + 50]), 4)
             for i in range(0, len(hist), 50)]
    return model, {"same_px": round(float(ev["same"].mean()), 3),
                   "different_px": round(float(ev["different"].mean()), 3),
                   "train_loss_per_50_steps": curve}


def train(name: str, *, out: str | Path | None = None, smoke: bool = False,
          device: str = "cpu", progress: bool = True) -> Path:
    """Train DVE zoo entry ``name`` and save it (float16) with its provenance.

    Args:
        smoke: a seconds-long run (2 steps of 4 pairs) to check that the script works.
    """
    check_choice(name, "name", DVE_ENTRIES)
    recipe = zoo.ZOO[name].recipe
    if smoke:
        recipe = dataclasses.replace(recipe, steps=2, batch_size=4, n_eval=8)
    model, metrics = train_dve(recipe, device=device, progress=progress)
    return zoo.save_entry(name, model, recipe, metrics, out=out, smoke=smoke, device=device,
                          half=True, command=f"python -m cvbook.dve.zoo_train {name}")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``python -m cvbook.dve.zoo_train``)."""
    ap = argparse.ArgumentParser(prog="python -m cvbook.dve.zoo_train",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("name", choices=DVE_ENTRIES)
    ap.add_argument("--out", default=None, help="output folder (default: the package's zoo/)")
    ap.add_argument("--smoke", action="store_true", help="a seconds-long check run")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(check_int(args.threads, "threads", min_value=1))
    path = train(args.name, out=args.out, smoke=args.smoke, device=args.device)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB); metrics: "
          f"{json.dumps(zoo.info(args.name, path.parent)['metrics'])}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
