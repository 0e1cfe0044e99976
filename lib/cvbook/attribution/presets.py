"""The presets of the attribution chapters: 01 (extremal perturbations) and 02 (NormGrad).

Each chapter's settings are a frozen dataclass validated by
:func:`cvbook.core.select_preset` (``"cpu"``: the synthetic scenes world and the zoo's
small CNN, offline, a few minutes on 2 CPU cores; ``"full"``: the paper's pointing game on
PASCAL VOC 2007 with torchvision's ImageNet VGG-16, on a GPU).

The ``full`` presets check that ``data_root`` holds ``VOCdevkit/VOC2007`` when the preset
is selected, that is before any network weights are downloaded, so that a wrong path
stops in the parameters cell with a message saying what is expected (issue 8).

Example:
    >>> from cvbook.core import select_preset
    >>> cfg = select_preset(EXTREMAL_PRESETS, "cpu", iterations=50)
    >>> cfg.iterations, cfg.areas
    (50, (0.05, 0.1, 0.2))
    >>> select_preset(NORMGRAD_PRESETS, "gpu")
    Traceback (most recent call last):
        ...
    ValueError: unknown preset 'gpu'; valid presets: cpu, full
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cvbook.core.validate import check_choice, check_float, check_int

__all__ = [
    "EXTREMAL_PRESETS",
    "NORMGRAD_PRESETS",
    "ExtremalConfig",
    "NormGradConfig",
    "check_voc_root",
]

MODELS = ("scenes_cnn", "vgg16", "resnet50")


def check_voc_root(data_root: str | os.PathLike | None) -> Path:
    """Check that ``data_root`` is a folder holding PASCAL VOC 2007 as torchvision reads
    it (``data_root/VOCdevkit/VOC2007/{Annotations,JPEGImages,ImageSets}``).

    Raises:
        ValueError: ``data_root`` is ``None`` or lacks ``VOCdevkit/VOC2007`` (the message
            names the folder it looked for and how to get the data).
    """
    layout = ("a folder holding VOCdevkit/VOC2007 (Annotations/, JPEGImages/, "
              "ImageSets/), e.g. the extracted VOCtest_06-Nov-2007.tar; see cvbook.data.voc")
    if data_root is None:
        raise ValueError(f"the full preset needs data_root: {layout}")
    if not isinstance(data_root, (str, os.PathLike)):
        raise TypeError(f"data_root must be a path, got {type(data_root).__name__}")
    root = Path(data_root).expanduser()
    voc = root / "VOCdevkit" / "VOC2007"
    if not voc.is_dir():
        raise ValueError(f"data_root={str(data_root)!r} must be {layout}; "
                         f"{voc} is not a folder")
    return root


def _check_common(cfg: ExtremalConfig | NormGradConfig) -> None:
    check_choice(cfg.model, "model", MODELS)
    check_int(cfg.n_eval, "n_eval", min_value=8)
    check_float(cfg.tolerance, "tolerance", min_value=0.0)
    check_int(cfg.demo_epochs, "demo_epochs", min_value=0)
    if cfg.model != "scenes_cnn":
        check_voc_root(cfg.data_root)


@dataclass(frozen=True)
class ExtremalConfig:
    """Chapter 01: extremal perturbations (Fong, Patrick, Vedaldi, ICCV 2019).

    Attributes:
        model: ``"scenes_cnn"`` (the zoo's network for the scenes world) or a torchvision
            ImageNet classifier, ``"vgg16"`` / ``"resnet50"`` (full preset).
        data_root: a folder holding ``VOCdevkit/VOC2007`` (full preset).
        n_eval: pointing-game images (half of them "difficult").
        areas: the target areas ``a`` of the extremal masks.
        iterations: SGD iterations of the mask optimisation (800 in the paper).
        step, sigma, substeps: the smooth mask's grid step, smooth-max kernel width (pixels)
            and sub-sampling (``None``: evaluate the smooth max at every pixel); 7, 21 and
            ``None`` at 224 px in the paper.
        max_blur: sigma of the blur pyramid's strongest level (20 px at 224 px).
        lr: the mask's learning rate.
        lambda_start, lambda_growth: weight of the area constraint and its growth per
            iteration (300 and 1.0035 over 800 iterations in the paper; the CPU preset's
            logits are a few times larger, hence 100 and a faster growth over 150).
        rise_masks: RISE's number of masks (a baseline).
        tolerance: pointing-game hit radius in pixels (15 at 224 px).
        demo_epochs: epochs of the "train a fresh network" demonstration.
    """

    model: str = "scenes_cnn"
    data_root: str | None = None
    n_eval: int = 32
    areas: tuple[float, ...] = (0.05, 0.1, 0.2)
    iterations: int = 150
    step: int = 4
    sigma: float = 8.0
    substeps: int | None = 2
    max_blur: float = 6.0
    lr: float = 0.1
    lambda_start: float = 100.0
    lambda_growth: float = 1.035
    rise_masks: int = 250
    tolerance: float = 4.0
    demo_epochs: int = 2

    def validate(self) -> None:
        check_int(self.iterations, "iterations", min_value=1)
        if not self.areas:
            raise ValueError("areas must list at least one target area in (0, 1]")
        for a in self.areas:
            check_float(a, "areas[i]", min_value=0.0, max_value=1.0, open_min=True)
        check_int(self.step, "step", min_value=1)
        check_float(self.sigma, "sigma", min_value=0.0, open_min=True)
        if self.substeps is not None:
            check_int(self.substeps, "substeps", min_value=1)
        check_float(self.max_blur, "max_blur", min_value=0.0, open_min=True)
        check_float(self.lr, "lr", min_value=0.0, open_min=True)
        check_float(self.lambda_start, "lambda_start", min_value=0.0, open_min=True)
        check_float(self.lambda_growth, "lambda_growth", min_value=1.0)
        check_int(self.rise_masks, "rise_masks", min_value=1)
        _check_common(self)


EXTREMAL_PRESETS: dict[str, ExtremalConfig] = {
    "cpu": ExtremalConfig(),
    # The paper's setting (Sec. 4): VGG-16 on the VOC 2007 test set, 224 px images.
    "full": ExtremalConfig(model="vgg16", n_eval=4952, areas=(0.025, 0.05, 0.1, 0.2),
                           iterations=800, step=7, sigma=21.0, substeps=None, max_blur=20.0,
                           lr=0.01, lambda_start=300.0, lambda_growth=1.0035,
                           rise_masks=8000, tolerance=15.0),
}


@dataclass(frozen=True)
class NormGradConfig:
    """Chapter 02: NormGrad and meta-saliency (Rebuffi, Fong, Ji, Vedaldi, CVPR 2020).

    Attributes:
        model, data_root, n_eval, tolerance, demo_epochs: as in :class:`ExtremalConfig`
            (``n_eval``: scenes, or VOC images for the full preset; an image with several
            classes gives one trial per class).
        meta_steps: the meta-saliency step sizes ``eta`` of the sweep (0: plain NormGrad;
            0.0025 is the authors' default in their class-sensitivity script).
        meta_controls: step sizes at which the random-direction control (the same
            per-tensor step norm, no class information) is run too; each must be in
            ``meta_steps``.
        n_meta: images of the class-sensitivity and meta-saliency localisation checks.
        ties: the pointing game's tie rule (``"random"`` for the scenes, whose last-layer
            gradient map is constant; ``"first"``, TorchRay's argmax, for ``full``).
        cue_steps: fine-tuning steps on scenes with a spurious cue (scenes only).
        pretrained: load torchvision's ImageNet weights for the full preset's classifier
            (``False``: random initialisation, for the tests; nothing is downloaded).
        image_size: side the VOC images are resized to (full preset; 224 in the paper).
        batch_size: images per forward/backward pass of the per-layer evaluation.
    """

    model: str = "scenes_cnn"
    data_root: str | None = None
    n_eval: int = 240
    tolerance: float = 4.0
    meta_steps: tuple[float, ...] = (0.0, 3e-5, 1e-4, 3e-4, 0.0025)
    meta_controls: tuple[float, ...] = (1e-4, 0.0025)
    n_meta: int = 120
    ties: str = "random"
    cue_steps: int = 60
    demo_epochs: int = 2
    pretrained: bool = True
    image_size: int = 224
    batch_size: int = 80

    def validate(self) -> None:
        if not self.meta_steps:
            raise ValueError("meta_steps must list at least one step size >= 0")
        for s in self.meta_steps:
            check_float(s, "meta_steps[i]", min_value=0.0)
        for s in self.meta_controls:
            if s not in self.meta_steps:
                raise ValueError(f"meta_controls: {s} is not one of meta_steps "
                                 f"{self.meta_steps}")
        check_choice(self.ties, "ties", ("random", "first"))
        check_int(self.n_meta, "n_meta", min_value=1, max_value=self.n_eval)
        check_int(self.cue_steps, "cue_steps", min_value=1)
        if not isinstance(self.pretrained, bool):
            raise TypeError(f"pretrained must be a bool, got {type(self.pretrained).__name__}")
        check_int(self.image_size, "image_size", min_value=32)
        check_int(self.batch_size, "batch_size", min_value=1)
        _check_common(self)


NORMGRAD_PRESETS: dict[str, NormGradConfig] = {
    "cpu": NormGradConfig(),
    # The paper's setting: VGG-16 (or model="resnet50") on the VOC 2007 test set, 224 px,
    # pointing tolerance 15 px at the original resolution, first-pixel argmax (TorchRay);
    # meta-saliency's step 0.0025 (the authors' script) with its random-direction control.
    "full": NormGradConfig(model="vgg16", n_eval=4952, tolerance=15.0, n_meta=200,
                           meta_steps=(0.0, 1e-4, 0.0025), meta_controls=(0.0025,),
                           ties="first", batch_size=32),
}
