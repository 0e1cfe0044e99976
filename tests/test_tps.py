"""DVE's pairs: the two-stage TPS warp, per-image jitter, the border crop, and the
direction of the correspondence grid."""

import pytest
import torch
import torch.nn.functional as F

from cvbook.data.faces import FaceWorld
from cvbook.data.pairs import PairConfig, warped_pairs
from cvbook.geometry.coords import pixel_to_normalized
from cvbook.geometry.warp import sample_at

NO_JITTER = dict(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)


@pytest.fixture(scope="module")
def faces():
    w = FaceWorld(num_train=30, num_test=5, seed=0)
    return w.sample(8, "train", generator=torch.Generator().manual_seed(0))


def test_grid_direction_landmarks(faces):
    """A source landmark, looked up in the grid, lands on the same landmark of the
    target; the other direction does not."""
    cfg = PairConfig(rotation=10.0, scale=0.1, translation=0.05, sigma=0.01, sigma_large=0.03)
    p = warped_pairs(faces.images, faces.landmarks, config=cfg,
                     generator=torch.Generator().manual_seed(1))
    assert p.source.shape == (8, 3, 48, 48) and p.grid.shape == (8, 48, 48, 2)
    mapped = sample_at(p.grid.permute(0, 3, 1, 2), p.source_landmarks)
    err = (mapped - p.target_landmarks).norm(dim=-1)
    moved = (p.source_landmarks - p.target_landmarks).norm(dim=-1)
    assert float(err.max()) < 0.05 and float(moved.mean()) > 1.0
    wrong = sample_at(p.grid.permute(0, 3, 1, 2), p.target_landmarks)
    assert float((wrong - p.source_landmarks).norm(dim=-1).mean()) > 0.5 * float(moved.mean())


def test_grid_direction_pixels(faces):
    """Without jitter, the target read at the grid reproduces the source."""
    cfg = PairConfig(**NO_JITTER)
    p = warped_pairs(faces.images, config=cfg, generator=torch.Generator().manual_seed(2))
    rec = F.grid_sample(p.target, pixel_to_normalized(p.grid, (48, 48)),
                        padding_mode="border", align_corners=False)
    inside = ((p.grid > 1) & (p.grid < 46)).all(-1)[:, None].expand_as(rec)
    err = (rec - p.source).abs()[inside].mean()
    assert float(err) < 0.25 * float((p.target - p.source).abs()[inside].mean())


def test_jitter_separate_per_image_and_crop(faces):
    """Colour jitter differs between the two images (a jitter-free pair's colour
    statistics agree), and the crop keeps the warp's black border out."""
    g = torch.Generator().manual_seed(3)
    flat = torch.full((4, 3, 64, 64), 0.5)
    p = warped_pairs(flat, config=PairConfig(**NO_JITTER), generator=g)
    torch.testing.assert_close(p.source, p.target)
    assert float(p.source.min()) > 0.49  # no black border entered
    q = warped_pairs(flat, config=PairConfig(), generator=g)
    assert float((q.source.mean((1, 2, 3)) - q.target.mean((1, 2, 3))).abs().max()) > 1e-3


def test_two_stage_warp_strengths_as_the_official_warper():
    """The official Warper scales every parameter of *both* warps by 0.5: the first image
    moves from the original as much as the second moves from the first, and
    ``multiplier`` scales the displacements linearly (pure-TPS case, small warps)."""
    x = torch.rand(64, 3, 32, 32)
    lm = torch.rand(64, 20, 2) * 31
    disp = {}
    for a in (0.5, 1.0):
        cfg = PairConfig(rotation=0.0, scale=0.0, translation=0.0, sigma=0.02,
                         sigma_large=0.02, crop=0, multiplier=a, **NO_JITTER)
        p = warped_pairs(x, lm, config=cfg, generator=torch.Generator().manual_seed(4))
        d1 = (p.target_landmarks - lm).norm(dim=-1).mean()
        d2 = (p.source_landmarks - p.target_landmarks).norm(dim=-1).mean()
        assert 0.8 < float(d1 / d2) < 1.25
        disp[a] = float(d2)
    assert 0.45 < disp[0.5] / disp[1.0] < 0.55


def test_validation(faces):
    with pytest.raises(ValueError, match="crop must be < S / 2"):
        warped_pairs(faces.images, config=PairConfig(crop=32))
    with pytest.raises(ValueError, match="landmarks must have shape"):
        warped_pairs(faces.images, faces.landmarks[:2])
    with pytest.raises(ValueError, match="hue must be <= 0.5"):
        PairConfig(hue=0.7)
