"""Small pretrained models shipped with the book, and the script that makes them.

A chapter whose default preset cannot train a good enough network within its CPU budget
loads one of these checkpoints instead (DESIGN §3). Each one is produced by this module
(``python -m cvbook.zoo train NAME``), lives in ``cvbook/zoo/NAME.pt`` next to
``NAME.pt.json`` (its config, seed, metrics, versions and sha256) and is loaded with
``torch.load(weights_only=True)`` after its hash is checked.

Command line::

    python -m cvbook.zoo list
    python -m cvbook.zoo train scenes_cnn            # writes cvbook/zoo/scenes_cnn.pt
    python -m cvbook.zoo train scenes_cnn --smoke --out /tmp/zoo   # a seconds-long check
    python -m cvbook.zoo verify scenes_cnn

Python::

    from cvbook.zoo import load_model
    model = load_model("scenes_cnn")          # eval mode, on the CPU
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cvbook.core.batched import batched_forward
from cvbook.core.checkpoint import load_checkpoint, save_checkpoint, sha256_file
from cvbook.core.validate import check_choice, check_int

ZOO_DIR = Path(__file__).resolve().parent / "zoo"


@dataclass(frozen=True)
class SceneCNNRecipe:
    """How a :class:`cvbook.nn.SceneCNN` of the zoo is trained.

    Attributes:
        image_size: side of the scenes (pixels).
        classes: the shape classes (label order).
        cue_prob: probability of the class-specific spurious cue in training images.
        width: first-block width of the network.
        epochs: passes over the training scenes (with random horizontal flips).
        n_train: training scenes (drawn once).
        n_test: held-out scenes for the recorded accuracy (drawn without the cue).
        batch_size: mini-batch size.
        lr: peak Adam learning rate (cosine decay to zero).
        weight_decay: AdamW weight decay.
        seed: seed of the data and the initialisation.

    The defaults are the recipe of the shipped ``scenes_cnn``: 24 epochs of 6000 scenes
    (batch 64, AdamW, lr 4e-3 with cosine decay), about 4.5 CPU-minutes on 2 cores; its
    test accuracy on 1000 fresh scenes is recorded in ``scenes_cnn.pt.json`` (0.987). The
    first recipe (10 epochs of 4000 scenes) stopped at 0.62 with the training loss still
    falling (1.39 -> 0.82: the loss sits near ln 4 for the first few hundred steps). A weak
    classifier's logits barely move under perturbation, which made the attribution
    chapters' results less convincing; chapter 01's ``lambda_start`` is scaled to the
    stronger network's logits. Width (8) and layer names are unchanged, so the chapters'
    probes ``features.relu1..5`` still apply.
    """

    image_size: int = 64
    classes: tuple[str, ...] = ("disk", "square", "triangle", "cross")
    cue_prob: float = 0.0
    width: int = 8
    epochs: int = 24
    n_train: int = 6000
    n_test: int = 1000
    batch_size: int = 64
    lr: float = 4e-3
    weight_decay: float = 1e-4
    seed: int = 0


@dataclass(frozen=True)
class DVERecipe:
    """How a DVE descriptor (:class:`cvbook.nn.SmallNet`) of the zoo is trained on the
    faces world (chapter 05). ``python -m cvbook.zoo train NAME`` runs its trainer,
    :mod:`cvbook.dve.zoo_train` (DVE's loss lives in that paper module, which the zoo does
    not import: :attr:`trainer` names it and is imported at run time only).

    Attributes:
        dim: descriptor size ``C``.
        dve: with descriptor vector exchange (the auxiliary image is the next sample).
        steps: Adam steps (AMSGrad, as the official configs), each on ``batch_size`` fresh
            pairs of training identities (:data:`cvbook.dve.presets.FACES_PAIRS`).
        batch_size, lr: pairs per step and the initial learning rate.
        milestones: fractions of ``steps`` after which the learning rate drops 10x (the
            official SmallNet schedule: epochs 70 and 90 of 100).
        world_seed: seed of the faces world's identity table
            (:func:`cvbook.dve.presets.faces_world`).
        seed: seed of the initialisation and of the training pairs (one checkpoint per
            seed and arm: ``dve_c<C>[_dve]_s<seed>``; the chapter loads its seed's).
        n_eval: held-out faces of the recorded matching errors.
        eval_every: steps between the recorded evaluations of the training curve
            (same / different-identity matching error on ``n_eval`` held-out faces),
            which show where the errors level off.
        trainer: the module whose ``train(name, ...)`` makes this entry.

    The first recipe (300 steps) stopped with DVE's loss still falling; the plateau
    measurement that set ``steps`` is in the chapter and in each entry's provenance
    (``train_loss_per_25_steps`` and ``eval_curve``).
    """

    dim: int = 16
    dve: bool = False
    steps: int = 800
    batch_size: int = 16
    lr: float = 1e-3
    milestones: tuple[float, ...] = (0.7, 0.9)
    world_seed: int = 0
    seed: int = 0
    n_eval: int = 256
    eval_every: int = 100
    trainer: str = "cvbook.dve.zoo_train"


@dataclass(frozen=True)
class FixResRecipe:
    """How a base network of the FixRes chapter (03) is trained: a
    :class:`~cvbook.nn.ConvNet` (``widths``, ``global_pool``) on the scenes world of seed
    ``seed`` (the split the chapter's ``cpu`` preset draws for that seed:
    ``make_scenes(n_train, seed=2·seed)``, ``make_scenes(n_test, seed=2·seed + 1)``), at
    resolution ``k_train`` with ``RandomResizedCrop`` + flip (batched, on the device), AdamW
    and a one-cycle learning rate (15% warm-up), for ``epochs`` epochs: the training of
    ``cvbook.fixres.train``. The chapter loads ``fixres_k<K>_s<seed>`` for its seed: one
    network per seed, so that seeds 0-2 vary the data, the initialisation and the
    augmentation draws, as a full training run would. ``tests/test_fixres_zoo.py`` checks
    that these fields equal the chapter's ``cpu`` preset.
    """

    k_train: int = 24
    seed: int = 0
    epochs: int = 20
    widths: tuple[int, ...] = (16, 32, 64, 128)
    global_pool: str = "avg"
    classes: tuple[str, ...] = ("disk", "square", "triangle", "cross")
    clutter: float = 0.1
    image_size: int = 48
    n_train: int = 6000
    n_test: int = 2000
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.05
    k_tests: tuple[int, ...] = (16, 24, 32, 40, 48)


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo: its name, what it is, and its training recipe."""

    name: str
    description: str
    recipe: SceneCNNRecipe | DVERecipe | FixResRecipe = field(default_factory=SceneCNNRecipe)


ZOO: dict[str, ZooEntry] = {
    "scenes_cnn": ZooEntry(
        "scenes_cnn",
        "SceneCNN (width 8) trained on 64 px scenes of four shape classes; used by "
        "chapters 01 (extremal perturbations) and 02 (NormGrad).",
        SceneCNNRecipe()),
    "scenes_cnn_cue": ZooEntry(
        "scenes_cnn_cue",
        "The same network trained on scenes where a class-specific marker on the top "
        "border (a spurious cue) appears with probability 0.8. No checkpoint is shipped "
        "and no chapter loads it (chapter 02 fine-tunes scenes_cnn on cue scenes in the "
        "notebook); train it with `python -m cvbook.zoo train scenes_cnn_cue`.",
        SceneCNNRecipe(cue_prob=0.8, epochs=6, n_train=3000)),
}
for _dim in (3, 16):
    for _dve in (False, True):
        for _s in (0, 1, 2):
            _name = f"dve_c{_dim}" + ("_dve" if _dve else "") + f"_s{_s}"
            ZOO[_name] = ZooEntry(
                _name, f"SmallNet, {_dim}-D descriptors, trained "
                f"{'with' if _dve else 'without'} descriptor vector exchange on the faces "
                f"world from seed {_s} (chapter 05); stored in float16.",
                DVERecipe(dim=_dim, dve=_dve, seed=_s))
for _k, _role in ((24, "trained at K_train = 24 px"),
                  (32, "trained at K_train^high = 32 px (the comparison of section 9)")):
    for _s in (0, 1, 2):
        ZOO[f"fixres_k{_k}_s{_s}"] = ZooEntry(
            f"fixres_k{_k}_s{_s}",
            f"ConvNet of chapter 03 (FixRes) {_role} on the scenes of seed {_s}.",
            FixResRecipe(k_train=_k, seed=_s))


def _scene_config(recipe: SceneCNNRecipe, cue_prob: float):
    from cvbook.data.scenes import SceneConfig

    return SceneConfig(image_size=recipe.image_size, classes=tuple(recipe.classes),
                       cue_prob=cue_prob)


def scene_config(name: str, *, cue_prob: float | None = None):
    """The :class:`~cvbook.data.scenes.SceneConfig` zoo entry ``name`` was trained on
    (``cue_prob`` overrides the probability of the spurious cue)."""
    check_choice(name, "name", list(ZOO))
    recipe = ZOO[name].recipe
    if not isinstance(recipe, SceneCNNRecipe):
        raise ValueError(f"{name} is not a SceneCNN entry; its data is "
                         "the scenes of cvbook.zoo.FixResRecipe")
    return _scene_config(recipe, recipe.cue_prob if cue_prob is None else cue_prob)


def build_model(name: str) -> nn.Module:
    """A freshly initialised network of zoo entry ``name`` (no weights loaded)."""
    from cvbook.nn.classifiers import SceneCNN

    check_choice(name, "name", list(ZOO))
    recipe = ZOO[name].recipe
    if isinstance(recipe, DVERecipe):
        from cvbook.nn.backbones import SmallNet

        return SmallNet(recipe.dim)
    if isinstance(recipe, FixResRecipe):
        return build_model_from_recipe(recipe)
    return SceneCNN(num_classes=len(recipe.classes), width=recipe.width)


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` (in eval mode, restored after) on ``(N, 3, S, S)``
    images and their ``(N,)`` labels."""
    logits = batched_forward(model, images, batch_size=batch_size)
    return float((logits.argmax(1) == labels).sum()) / len(images)


def train_scene_cnn(recipe: SceneCNNRecipe, *, device: str | torch.device = "cpu",
                    progress: bool = True, model: nn.Module | None = None
                    ) -> tuple[nn.Module, dict[str, Any]]:
    """Train a :class:`~cvbook.nn.SceneCNN` following ``recipe``.

    ``recipe.n_train`` scenes are drawn once (seeded from ``recipe.seed``); every epoch
    visits them in a new order with random horizontal flips; AdamW with a cosine
    learning rate.

    Returns:
        ``(model, metrics)`` with ``metrics = {"test_accuracy": ..., "train_loss": [...]}``
        (accuracy on ``n_test`` held-out scenes without the cue; for a cue recipe also
        ``"test_accuracy_cue"`` on held-out scenes that always carry the cue).
    """
    from tqdm.auto import tqdm

    from cvbook.core.seed import seed_everything
    from cvbook.data.scenes import make_scenes
    from cvbook.nn.classifiers import SceneCNN

    if not isinstance(recipe, SceneCNNRecipe):
        raise TypeError(f"recipe must be a SceneCNNRecipe, got {type(recipe).__name__}")
    device = torch.device(device)
    seed_everything(recipe.seed, threads=None)
    if model is None:
        model = SceneCNN(num_classes=len(recipe.classes), width=recipe.width)
    model = model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr,
                            weight_decay=recipe.weight_decay)
    steps_per_epoch = math.ceil(recipe.n_train / recipe.batch_size)
    total = recipe.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    cfg = _scene_config(recipe, recipe.cue_prob)
    losses: list[float] = []
    gen = torch.Generator(device=device).manual_seed(recipe.seed)
    data = make_scenes(recipe.n_train, cfg, seed=recipe.seed * 1000 + 1, device=device)
    for _ in tqdm(range(recipe.epochs), desc="epochs", disable=not progress):
        order = torch.randperm(recipe.n_train, generator=gen, device=device)
        model.train()
        run = torch.zeros((), device=device)
        for i in range(steps_per_epoch):
            idx = order[i * recipe.batch_size:(i + 1) * recipe.batch_size]
            x, y = data.images[idx], data.labels[idx]
            flip = torch.rand(len(idx), generator=gen, device=device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            run += loss.detach()
        losses.append(round(float(run) / steps_per_epoch, 4))
    model.eval()
    test = make_scenes(recipe.n_test, _scene_config(recipe, 0.0),
                       seed=10**6 + recipe.seed, device=device)
    metrics: dict[str, Any] = {"test_accuracy": round(accuracy(model, test.images,
                                                               test.labels), 4),
                               "train_loss": losses}
    if recipe.cue_prob > 0:
        cue = make_scenes(recipe.n_test, _scene_config(recipe, 1.0),
                          seed=10**6 + recipe.seed, device=device)
        metrics["test_accuracy_cue"] = round(accuracy(model, cue.images, cue.labels), 4)
    return model, metrics


def _fixres_source(recipe: FixResRecipe, device: torch.device | str, n_train: int):
    from cvbook.data.scenes import SceneConfig, make_scenes
    from cvbook.data.sources import TensorSource

    world = SceneConfig(image_size=recipe.image_size, classes=tuple(recipe.classes),
                        clutter=recipe.clutter, distractors=(0, 0))
    tr = make_scenes(n_train, world, seed=2 * recipe.seed, device=device)
    te = make_scenes(min(recipe.n_test, n_train), world, seed=2 * recipe.seed + 1,
                     device=device)
    return TensorSource(tr.images, tr.labels, te.images, te.labels,
                        num_classes=world.num_classes, batch_size=recipe.batch_size,
                        seed=recipe.seed, train_boxes=tr.boxes)


def train_fixres(recipe: FixResRecipe, *, device: str | torch.device = "cpu",
                 progress: bool = True, n_train: int | None = None
                 ) -> tuple[nn.Module, dict[str, Any]]:
    """Train a base network of chapter 03 following ``recipe`` (see :class:`FixResRecipe`).

    Returns:
        ``(model, metrics)``: ``train_loss`` per epoch and the held-out top-1 of the
        seed's test split at every resolution of ``recipe.k_tests`` with the test
        transform (``test_top1_at``: the chapter's "no fine-tuning" curve).
    """
    from cvbook.core.seed import seed_everything
    from cvbook.core.train import fit

    if not isinstance(recipe, FixResRecipe):
        raise TypeError(f"recipe must be a FixResRecipe, got {type(recipe).__name__}")
    seed_everything(recipe.seed, threads=None)
    source = _fixres_source(recipe, device, n_train or recipe.n_train)
    model = build_model_from_recipe(recipe).to(device)
    data = source.train_batches(recipe.k_train, augment=True)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr,
                                                total_steps=recipe.epochs * len(data),
                                                pct_start=0.15)
    hist = fit(model, data, lambda net, b: nn.functional.cross_entropy(net(b[0]), b[1]), opt,
               epochs=recipe.epochs, scheduler=sched, scheduler_step="step",
               progress=progress, desc=f"train @ {recipe.k_train}px")
    model.eval()
    top1 = {}
    with torch.no_grad():
        for k in recipe.k_tests:
            hit = sum(int((model(x).argmax(1) == y).sum()) for x, y in source.test_batches(k))
            top1[str(k)] = round(hit / len(source.test_labels), 4)
    return model, {"train_loss": [round(v, 4) for v in hist.loss], "test_top1_at": top1}


def build_model_from_recipe(recipe: FixResRecipe) -> nn.Module:
    """A freshly initialised ConvNet of a :class:`FixResRecipe` (channels-last)."""
    from cvbook.nn.classifiers import ConvNet

    return ConvNet(len(recipe.classes), widths=recipe.widths,
                   global_pool=recipe.global_pool).to(memory_format=torch.channels_last)


def checkpoint_path(name: str, directory: str | Path | None = None) -> Path:
    """Where the weights of ``name`` live (``cvbook/zoo/NAME.pt`` by default)."""
    check_choice(name, "name", list(ZOO))
    return Path(directory if directory is not None else ZOO_DIR) / f"{name}.pt"


def train(name: str, *, out: str | Path | None = None, smoke: bool = False,
          device: str = "cpu", progress: bool = True) -> Path:
    """Train zoo entry ``name`` and save it with its provenance.

    Args:
        name: a key of :data:`ZOO`.
        out: output folder (default: the package's ``zoo/`` folder).
        smoke: a seconds-long run (1 epoch of 256 scenes) to check that the script works.
        device: where to train.

    Returns:
        The path of the written ``.pt`` file (its ``.pt.json`` lies beside it).
    """
    check_choice(name, "name", list(ZOO))
    recipe = ZOO[name].recipe
    if isinstance(recipe, DVERecipe):
        # DVE's loss lives in its paper module, which the zoo does not import (layering):
        # the recipe names the trainer, loaded at run time; it saves through save_entry
        import importlib

        trainer = importlib.import_module(recipe.trainer)
        return trainer.train(name, out=out, smoke=smoke, device=device, progress=progress)
    if isinstance(recipe, FixResRecipe):
        if smoke:
            recipe = dataclasses.replace(recipe, epochs=1)
        model, metrics = train_fixres(recipe, device=device, progress=progress,
                                      n_train=256 if smoke else None)
    else:
        if smoke:
            recipe = dataclasses.replace(recipe, epochs=1, n_train=256, n_test=64)
        model, metrics = train_scene_cnn(recipe, device=device, progress=progress)
    return save_entry(name, model, recipe, metrics, out=out, smoke=smoke, device=device)


def save_entry(name: str, model: nn.Module, recipe: Any, metrics: dict[str, Any], *,
               out: str | Path | None = None, smoke: bool = False, device: str = "cpu",
               half: bool = False, command: str | None = None) -> Path:
    """Save a trained zoo model with its provenance (``NAME.pt`` and ``NAME.pt.json``).

    Args:
        half: store floating-point tensors in float16 (loading casts them back).
        command: the command that made it (default: ``python -m cvbook.zoo train NAME``).
    """
    check_choice(name, "name", list(ZOO))
    state = {k: (v.detach().cpu().half() if half and v.is_floating_point()
                 else v.detach().cpu()).contiguous() for k, v in model.state_dict().items()}
    path = checkpoint_path(name, out)
    meta = {"name": name, "description": ZOO[name].description,
            "recipe": dataclasses.asdict(recipe), "seed": recipe.seed, "metrics": metrics,
            "smoke": smoke, "command": (command or f"python -m cvbook.zoo train {name}")
            + (" --smoke" if smoke else ""),
            "versions": {"torch": torch.__version__, "python": platform.python_version()},
            "device": str(device), "threads": torch.get_num_threads()}
    save_checkpoint(path, state, meta)
    return path


def info(name: str, directory: str | Path | None = None) -> dict[str, Any]:
    """The provenance record (``NAME.pt.json``) of a zoo checkpoint."""
    side = Path(str(checkpoint_path(name, directory)) + ".json")
    if not side.is_file():
        raise FileNotFoundError(f"no provenance file {side}; run `python -m cvbook.zoo "
                                f"train {name}`")
    return json.loads(side.read_text())


def load_model(name: str, *, device: str | torch.device = "cpu",
               directory: str | Path | None = None) -> nn.Module:
    """Build zoo entry ``name``, load its checked weights (``weights_only=True``) and
    return it in eval mode on ``device``.

    Raises:
        FileNotFoundError: the checkpoint is missing (train it with the command above).
        ValueError: the file does not match the sha256 recorded beside it.
    """
    path = checkpoint_path(name, directory)
    state = load_checkpoint(path, sha256=info(name, directory)["sha256"])
    model = build_model(name)
    model.load_state_dict(state)
    return model.to(device).eval()


def verify(name: str, directory: str | Path | None = None) -> bool:
    """True when the checkpoint's bytes match the sha256 recorded beside it."""
    return sha256_file(checkpoint_path(name, directory)) == info(name, directory)["sha256"]


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``python -m cvbook.zoo``)."""
    parser = argparse.ArgumentParser(prog="python -m cvbook.zoo", description=__doc__
                                     .split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the zoo")
    t = sub.add_parser("train", help="train a model and save it with its provenance")
    t.add_argument("name", choices=sorted(ZOO))
    t.add_argument("--out", default=None, help="output folder (default: the package's zoo/)")
    t.add_argument("--smoke", action="store_true", help="a seconds-long check run")
    t.add_argument("--device", default="cpu")
    t.add_argument("--threads", type=int, default=None)
    v = sub.add_parser("verify", help="check a checkpoint against its recorded sha256")
    v.add_argument("name", choices=sorted(ZOO))
    v.add_argument("--dir", default=None)
    args = parser.parse_args(argv)
    if args.cmd == "list":
        for entry in ZOO.values():
            print(f"{entry.name}: {entry.description}")
        return 0
    if args.cmd == "train":
        if args.threads is not None:
            torch.set_num_threads(check_int(args.threads, "threads", min_value=1))
        path = train(args.name, out=args.out, smoke=args.smoke, device=args.device)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB); metrics: "
              f"{json.dumps(info(args.name, path.parent)['metrics'])}")
        return 0
    ok = verify(args.name, args.dir)
    print(f"{args.name}: {'ok' if ok else 'HASH MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
