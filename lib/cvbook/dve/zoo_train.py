"""Training the zoo's DVE checkpoints (``dve_c<C>[_dve]_s<seed>`` for C in {3, 16} and
seeds 0-2: :data:`cvbook.zoo.ZOO`, recipe :class:`cvbook.zoo.DVERecipe`).

The zoo ships networks built from the shared homes and imports no paper module, so the
training of these entries (DVE's loss) lives here; ``python -m cvbook.zoo train NAME``
imports this module at run time (the recipe's ``trainer``) and it saves through
:func:`cvbook.zoo.save_entry` (float16 weights, provenance json with the sha256)::

    python -m cvbook.zoo train dve_c16_dve_s0                 # writes cvbook/zoo/
    python -m cvbook.zoo train dve_c16_dve_s0 --smoke --out /tmp/zoo
    python -m cvbook.dve.zoo_train dve_c16_dve_s0             # the same
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
        ``(model, metrics)``: the loss curve (``train_loss_per_25_steps``, means of 25
        steps), the training curve of the matching errors (``eval_curve``: the step and
        the mean same / different-identity errors on the same ``recipe.n_eval`` held-out
        faces every ``recipe.eval_every`` steps) and the final mean errors (pixels).
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

    curve: list[list[float]] = []

    def evaluate() -> tuple[float, float]:
        ev = evaluate_matching(model, world, n=recipe.n_eval, pairs=FACES_PAIRS,
                               generator=torch.Generator(device=device).manual_seed(10**6))
        return round(float(ev["same"].mean()), 3), round(float(ev["different"].mean()), 3)

    def tick(step: int, loss: float) -> None:
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss:.3f}")
        if (step + 1) % recipe.eval_every == 0 and step + 1 < recipe.steps:
            curve.append([step + 1, *evaluate()])  # evaluate_matching restores train mode

    hist = train_descriptor(model, world, steps=recipe.steps, batch_size=recipe.batch_size,
                            lr=recipe.lr, dve=recipe.dve, pairs=FACES_PAIRS, generator=gen,
                            callback=tick, amsgrad=True, milestones=recipe.milestones)
    bar.close()
    model.eval()
    same, different = evaluate()
    curve.append([recipe.steps, same, different])
    losses = [round(sum(hist[i:i + 25]) / len(hist[i:i + 25]), 4)
              for i in range(0, len(hist), 25)]
    return model, {"same_px": same, "different_px": different,
                   "eval_curve": curve, "eval_curve_columns": ["step", "same_px",
                                                               "different_px"],
                   "train_loss_per_25_steps": losses}


def train(name: str, *, out: str | Path | None = None, smoke: bool = False,
          device: str = "cpu", progress: bool = True) -> Path:
    """Train DVE zoo entry ``name`` and save it (float16) with its provenance.

    Args:
        smoke: a seconds-long run (2 steps of 4 pairs) to check that the script works.
    """
    check_choice(name, "name", DVE_ENTRIES)
    recipe = zoo.ZOO[name].recipe
    if smoke:
        recipe = dataclasses.replace(recipe, steps=2, batch_size=4, n_eval=8, eval_every=1)
    model, metrics = train_dve(recipe, device=device, progress=progress)
    return zoo.save_entry(name, model, recipe, metrics, out=out, smoke=smoke, device=device,
                          half=True)


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
