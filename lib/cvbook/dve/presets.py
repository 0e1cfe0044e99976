"""The presets of chapter 05 (DVE): the faces world on a CPU, CelebA/MAFL with the paper's
hourglass on a GPU.

Example:
    >>> from cvbook.core import select_preset
    >>> cfg = select_preset(PRESETS, "cpu", demo_steps=10)
    >>> cfg.demo_steps, cfg.dims, cfg.arch
    (10, (3, 16), 'smallnet')
    >>> select_preset(PRESETS, "full")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: the full preset needs data_root: a folder holding torchvision's ...
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cvbook.core.validate import check_choice, check_float, check_int
from cvbook.data.faces import FaceConfig, FaceWorld
from cvbook.data.pairs import PairConfig

__all__ = ["PRESETS", "DVEConfig", "FACES_PAIRS", "faces_world"]

#: The pairs of the faces world (the cpu preset and the zoo's checkpoints): stronger warps
#: than the official ``Warper``'s effective ones (rotation 2.5°, scale 0.05, translation
#: 0.05 on each warp), because the world's faces are posed more freely than CelebA's
#: aligned crops (rotation 6°, scale 5 %, translation 3 % of the side between any two
#: faces): the pairs must cover the pose differences that cross-identity matching meets.
FACES_PAIRS = PairConfig(rotation=8.0, scale=0.08, translation=0.08, sigma=0.005,
                         sigma_large=0.02, crop=8, multiplier=1.0)


def faces_world(num_train: int = 2000, num_test: int = 300, seed: int = 0) -> FaceWorld:
    """The chapter's faces world (64 px faces, 2000 training and 300 held-out identities
    drawn from ``seed``; the zoo's checkpoints were trained on its training identities)."""
    return FaceWorld(num_train, num_test, config=FaceConfig(image_size=64), seed=seed)


@dataclass(frozen=True)
class DVEConfig:
    """Settings of chapter 05.

    Attributes:
        data: ``"faces"`` (the procedural world) or ``"celeba"`` (torchvision's CelebA
            under ``data_root``).
        arch: ``"smallnet"`` (stride 2, raw dot products) or ``"hourglass"`` (stride 4,
            unit descriptors x 20).
        dims: descriptor sizes ``C`` trained with and without DVE.
        use_zoo: evaluate the zoo's converged checkpoints (faces only); the notebook
            still trains ``demo_steps`` steps for real.
        demo_steps: steps of the training run shown in the notebook (per model when
            ``use_zoo`` is off).
        batch_size, lr: pairs per step and Adam's learning rate (AMSGrad, as the
            official configs).
        milestones: fractions of ``demo_steps`` after which the learning rate drops 10x
            (the official schedules: the hourglass's ``StepLR`` of 50 epochs in 100,
            ``(0.5,)``; SmallNet's epochs 70 and 90 of 100, the zoo recipe's; none for the
            cpu preset's few-dozen-step demonstration).
        image_size, crop: the images before the pair's border crop, and that crop
            (faces: 64 and 8 -> 48 px; CelebA: the paper's 100 and 15 -> 70 px for
            SmallNet, 136 and 20 for the hourglass).
        n_match: held-out faces for the matching protocol.
        n_reg_train, n_reg_test, reg_epochs, reg_batch: the landmark regressor's training
            and test faces, its passes over the training faces and mini-batch (the
            official keypoint configs: 300 epochs of 32, Adam with AMSGrad, lr 1e-3, weight
            decay 5e-4, drops after epochs 100 and 250:
            :func:`cvbook.dve.evaluation.fit_landmark_regressor`).
        amp: mixed precision (bfloat16 autocast on CUDA; ignored on the CPU).
        data_root: the CelebA folder (``full``): it must hold ``celeba/`` in
            torchvision's layout.
        max_images: cap on the CelebA images read per split (``None``: all).
        hg_width, hg_depth, hg_stride: the hourglass (the official ``HourglassNet``: one
            stack, 256 channels, depth 4, a stride-2 stem).
    """

    data: str = "faces"
    arch: str = "smallnet"
    dims: tuple[int, ...] = (3, 16)
    use_zoo: bool = True
    demo_steps: int = 30
    batch_size: int = 16
    lr: float = 1e-3
    milestones: tuple[float, ...] = ()
    image_size: int = 64
    crop: int = 8
    n_match: int = 300
    n_reg_train: int = 400
    n_reg_test: int = 200
    reg_epochs: int = 300
    reg_batch: int = 32
    amp: bool = False
    data_root: str | None = None
    max_images: int | None = None
    hg_width: int = 256
    hg_depth: int = 4
    hg_stride: int = 2

    def validate(self) -> None:
        check_choice(self.data, "data", ("faces", "celeba"))
        check_choice(self.arch, "arch", ("smallnet", "hourglass"))
        if not isinstance(self.dims, tuple) or not self.dims:
            raise ValueError(f"dims must be a non-empty tuple of ints; got {self.dims!r}")
        for d in self.dims:
            check_int(d, "dims", min_value=1)
        if self.use_zoo and (self.data != "faces" or self.arch != "smallnet"):
            raise ValueError("use_zoo needs data='faces' and arch='smallnet' (the zoo holds "
                             "SmallNets of the faces world)")
        check_int(self.demo_steps, "demo_steps", min_value=1)
        check_int(self.batch_size, "batch_size", min_value=2)
        check_float(self.lr, "lr", min_value=0.0, open_min=True)
        if not isinstance(self.milestones, tuple):
            raise ValueError(f"milestones must be a tuple of fractions; got {self.milestones!r}")
        for m in self.milestones:
            check_float(m, "milestones", min_value=0.0, max_value=1.0)
        check_int(self.image_size, "image_size", min_value=16)
        check_int(self.crop, "crop", min_value=0, max_value=(self.image_size - 1) // 2 - 4)
        check_int(self.n_match, "n_match", min_value=2)
        check_int(self.n_reg_train, "n_reg_train", min_value=2)
        check_int(self.n_reg_test, "n_reg_test", min_value=2)
        check_int(self.reg_epochs, "reg_epochs", min_value=1)
        check_int(self.reg_batch, "reg_batch", min_value=1)
        check_int(self.hg_width, "hg_width", min_value=2)
        check_int(self.hg_depth, "hg_depth", min_value=1, max_value=6)
        check_int(self.hg_stride, "hg_stride", min_value=1, max_value=4)
        if self.arch == "hourglass" and self.size % (self.hg_stride * 2**self.hg_depth):
            raise ValueError(f"the cropped side image_size - 2 crop = {self.size} must be "
                             f"divisible by hg_stride * 2**hg_depth = "
                             f"{self.hg_stride * 2**self.hg_depth}")
        if self.max_images is not None:
            check_int(self.max_images, "max_images", min_value=2)
        if self.data == "celeba":
            if self.data_root is None:
                raise ValueError("the full preset needs data_root: a folder holding "
                                 "torchvision's CelebA layout (celeba/img_align_celeba/, "
                                 "list_eval_partition.txt, list_landmarks_align_celeba.txt, "
                                 "identity_CelebA.txt, ...)")
            base = Path(self.data_root) / "celeba"
            if not (base / "img_align_celeba").is_dir():
                raise ValueError(f"data_root must hold celeba/img_align_celeba/ "
                                 f"(torchvision's CelebA layout); not found under "
                                 f"{self.data_root!r}")

    @property
    def size(self) -> int:
        """Side of the cropped images the network sees."""
        return self.image_size - 2 * self.crop


PRESETS: dict[str, DVEConfig] = {
    "cpu": DVEConfig(),
    # the paper's strongest model: CelebA, hourglass 64-D with DVE, 136 px crops
    # (configs/celeba/hourglass-64d-dve.json: batch 16, Adam lr 1e-3 AMSGrad, the learning
    # rate / 10 after 50 of 100 epochs)
    "full": DVEConfig(data="celeba", arch="hourglass", dims=(64,), use_zoo=False,
                      demo_steps=20000, batch_size=16, milestones=(0.5,), image_size=136,
                      crop=20,
                      n_match=1000, n_reg_train=5000, n_reg_test=1000, reg_batch=32,
                      amp=True),
}
