"""CelebA faces for DVE's ``full`` preset, through torchvision's ``CelebA`` dataset.

The official data loader (``CelebAPrunedAligned_MAFLVal`` in jamt9000/DVE) crops each
178 x 218 aligned CelebA image to its 178 x 178 square starting 30 rows down ("move head
up a bit"), resizes it to ``imwidth`` (100 px for SmallNet, 136 px for the hourglass) and
moves the five landmarks accordingly (``y - 30``, times ``imwidth / 178``); the pair's
border crop (15 / 20 px) then happens in :func:`cvbook.data.pairs.warped_pairs`.
:class:`CelebAFaces` does the same on torchvision's CelebA folder layout and offers the
faces world's ``sample(n, split, generator=...)``, so that
:func:`cvbook.dve.train.train_descriptor` and the evaluation protocols take either.

Deviations (named in the chapter): torchvision's CelebA has no MAFL lists, so the test
faces are CelebA's own test partition rather than MAFL's 1000 test images (which come
from it), and the training faces are CelebA's training partition (the official code also
uses it, minus the MAFL test images, which are not in it). The colour jitter is
:func:`cvbook.image.jitter.color_jitter`'s rather than PIL's plus PCA lighting, and there
is no JPEG re-compression.

torchvision verifies the md5 of the annotation files before it reads them; this class
checks only that they exist (``_check_integrity``), so that a folder made of the real
files in another order, or the tests' tiny fake folder, loads; nothing is ever
downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from cvbook.core.validate import check_choice, check_int
from cvbook.data.faces import FaceBatch

__all__ = ["CELEBA_FILES", "CelebAFaces"]

#: The files torchvision's CelebA reads under ``<root>/celeba/``.
CELEBA_FILES = ("list_eval_partition.txt", "identity_CelebA.txt", "list_bbox_celeba.txt",
                "list_landmarks_align_celeba.txt", "list_attr_celeba.txt")


def _dataset(root: str, split: str):
    from torchvision.datasets import CelebA

    class _LocalCelebA(CelebA):
        def _check_integrity(self) -> bool:  # files present; no md5, no download
            base = os.path.join(self.root, self.base_folder)
            return os.path.isdir(os.path.join(base, "img_align_celeba")) and all(
                os.path.isfile(os.path.join(base, f)) for f in CELEBA_FILES)

    return _LocalCelebA(root, split=split, target_type=["landmarks", "identity"],
                        download=False)


class CelebAFaces:
    """Aligned CelebA faces, cropped and resized as DVE's loader does.

    Args:
        root: the folder that holds ``celeba/`` in torchvision's layout.
        image_size: ``imwidth`` (side after the square crop and resize).
        max_images: read at most this many images of each split (the first ones).
        device: where the returned tensors go.

    ``sample(n, split, generator=g)`` returns a :class:`cvbook.data.faces.FaceBatch` of
    ``n`` random faces of ``"train"`` or ``"test"`` (images in [0, 1], ``(n, 3, S, S)``;
    landmarks ``(n, 5, 2)`` in pixels, MAFL's order; identity the CelebA person id).
    """

    SPLITS = ("train", "test")
    TOP, SIDE = 30, 178  # the official square crop of the 178 x 218 aligned images

    def __init__(self, root: str | os.PathLike, *, image_size: int = 136,
                 max_images: int | None = None, device: torch.device | str = "cpu") -> None:
        base = Path(root) / "celeba"
        missing = [f for f in CELEBA_FILES if not (base / f).is_file()]
        if not (base / "img_align_celeba").is_dir() or missing:
            raise FileNotFoundError(f"{base} must hold img_align_celeba/ and "
                                    f"{', '.join(CELEBA_FILES)} (torchvision's CelebA layout); "
                                    f"missing: {missing or ['img_align_celeba/']}")
        self.image_size = check_int(image_size, "image_size", min_value=16)
        self.max_images = None if max_images is None else check_int(max_images, "max_images",
                                                                      min_value=1)
        self.device = torch.device(device)
        self.sets = {s: _dataset(str(root), s) for s in self.SPLITS}

    def __len__(self) -> int:
        return len(self.sets["train"])

    def size(self, split: str) -> int:
        """Images available in ``split``."""
        check_choice(split, "split", self.SPLITS)
        n = len(self.sets[split])
        return n if self.max_images is None else min(n, self.max_images)

    def load(self, indices: torch.Tensor, split: str) -> FaceBatch:
        """The faces at ``indices`` ``(n,)`` of ``split``, cropped and resized."""
        from torchvision.transforms.functional import pil_to_tensor, resize

        check_choice(split, "split", self.SPLITS)
        ds = self.sets[split]
        imgs, lms, ids = [], [], []
        s = self.image_size
        for i in indices.tolist():
            img, (lm, ident) = ds[i]
            x = pil_to_tensor(img.convert("RGB"))[:, self.TOP:self.TOP + self.SIDE, :self.SIDE]
            imgs.append(resize(x, [s, s], antialias=True).float() / 255)
            p = lm.float().reshape(5, 2) - torch.tensor([0.0, self.TOP])
            # the official loader scales pixel indices by s / 178; our pixel centres sit
            # at integers as well (cvbook.geometry.coords), so the same map applies
            lms.append(p * (s / self.SIDE))
            ids.append(int(ident))
        n = len(imgs)
        dev = self.device
        return FaceBatch(images=torch.stack(imgs).to(dev), landmarks=torch.stack(lms).to(dev),
                         identity=torch.tensor(ids, dtype=torch.int64, device=dev),
                         centre=torch.zeros(n, 2, device=dev), angle=torch.zeros(n, device=dev),
                         scale=torch.ones(n, device=dev))

    def identities(self, split: str) -> torch.Tensor:
        """``(size(split),)`` int64 CelebA person ids of the images of ``split``."""
        check_choice(split, "split", self.SPLITS)
        return self.sets[split].identity.reshape(-1)[:self.size(split)].long()

    def sample_indices(self, n: int, split: str = "train", *,
                       generator: torch.Generator | None = None,
                       max_tries: int = 50) -> torch.Tensor:
        """``(n,)`` random image indices of ``split`` (with replacement) whose
        neighbours show different people, cyclically (``id[i] != id[(i + 1) % n]``), so
        that DVE's auxiliary image (the next sample) and the matching protocol's
        "different identity" target are always another person. Drawn in order: each
        position takes the first of a block of 64 random candidates whose person differs
        from the previous one's (and, for the last, from the first's)."""
        n = check_int(n, "n", min_value=1)
        ids = self.identities(split)
        if n > 1 and int(ids.unique().numel()) < 2:
            raise ValueError(f"split {split!r} holds fewer than 2 identities: a batch of "
                             f"{n} cannot have different people as neighbours")
        dev = generator.device if generator is not None else torch.device("cpu")
        m = len(ids)
        out = [int(torch.randint(0, m, (1,), generator=generator, device=dev))]
        for i in range(1, n):
            avoid = {int(ids[out[-1]])} | ({int(ids[out[0]])} if i == n - 1 else set())
            for _ in range(max_tries):
                cand = torch.randint(0, m, (64,), generator=generator, device=dev).cpu()
                ok = [int(c) for c in cand if int(ids[c]) not in avoid]
                if ok:
                    out.append(ok[0])
                    break
            else:
                raise RuntimeError(f"could not draw {n} faces of {split!r} whose neighbours "
                                   f"are different people (are there only 2 identities and "
                                   f"an odd batch?)")
        return torch.tensor(out, dtype=torch.int64)

    def sample(self, n: int, split: str = "train", *,
               generator: torch.Generator | None = None) -> FaceBatch:
        """``n`` random faces of ``split`` (drawn with replacement; neighbours are
        different people: :meth:`sample_indices`)."""
        return self.load(self.sample_indices(n, split, generator=generator), split)
