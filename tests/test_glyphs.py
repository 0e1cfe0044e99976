"""The jittered-digits world (cvbook.data.glyphs): analytic identity case, determinism,
nuisances independent of the class, bad inputs."""

import dataclasses

import pytest
import torch

from cvbook.data.glyphs import (
    GlyphConfig,
    jitter_glyphs,
    load_jittered_digits_split,
    make_jittered_digits,
)

IDENTITY = GlyphConfig(image_size=8, glyph_size=8.0, max_rotation=0.0, scale_range=(1.0, 1.0),
                       aspect_range=(1.0, 1.0), max_shear=0.0, max_shift=0.0,
                       stroke_range=(0.0, 0.0), clutter=(0, 0), noise_std=0.0)


def test_identity_jitter_reproduces_the_glyph():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 1, 8, 8, generator=g)
    out = jitter_glyphs(x, IDENTITY, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_thickest_stroke_is_the_3x3_dilation():
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 3, 3] = 1.0
    thick = dataclasses.replace(IDENTITY, stroke_range=(1.0, 1.0))
    out = jitter_glyphs(x, thick, generator=torch.Generator().manual_seed(0))
    assert out[0, 0, 2:5, 2:5].min() == pytest.approx(1.0) and out.sum() == pytest.approx(9.0)


def test_world_is_seeded_and_in_range():
    cfg = GlyphConfig()
    x0, y0 = make_jittered_digits(cfg, seed=0)
    x0b, _ = make_jittered_digits(cfg, seed=0)
    x1, y1 = make_jittered_digits(cfg, seed=1)
    assert x0.shape == (1797, 1, 16, 16) and torch.equal(x0, x0b) and torch.equal(y0, y1)
    assert not torch.equal(x0, x1) and float(x0.min()) >= 0 and float(x0.max()) <= 1
    x2, y2 = make_jittered_digits(dataclasses.replace(cfg, copies=2), seed=0)
    assert x2.shape[0] == 2 * 1797 and torch.equal(y2[:1797], y0)


def test_clutter_strokes_on_blank_glyphs():
    """Blank glyphs: without clutter and noise the canvas stays empty; with exactly one
    clutter stroke every canvas holds one, at an intensity inside the configured range."""
    blank = torch.zeros(64, 1, 8, 8)
    g = torch.Generator().manual_seed(0)
    quiet = dataclasses.replace(GlyphConfig(), clutter=(0, 0), noise_std=0.0)
    assert float(jitter_glyphs(blank, quiet, generator=g).abs().max()) == 0.0
    one = dataclasses.replace(quiet, clutter=(1, 1), clutter_intensity=(0.5, 0.6),
                              clutter_length=(0.5, 0.5))
    peak = jitter_glyphs(blank, one, generator=g).amax((1, 2, 3))
    centre_cov = torch.sigmoid(torch.tensor(0.7 / 0.3)).item()
    assert float(peak.min()) >= 0.5 * 0.5 and float(peak.max()) <= 0.6 * centre_cov + 1e-6


def test_split_and_bad_inputs():
    s = load_jittered_digits_split((0, 1), (2, 3, 4), seed=0)
    assert s.x_lab.shape[1:] == (1, 16, 16) and set(s.y_unlab.tolist()) == {0, 1, 2}
    with pytest.raises(ValueError, match="glyphs must be an"):
        jitter_glyphs(torch.rand(3, 8, 8))
    with pytest.raises(TypeError, match="floating"):
        jitter_glyphs(torch.zeros(2, 1, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="image_size"):
        GlyphConfig(image_size=4).validate()
    with pytest.raises(ValueError, match="scale_range"):
        GlyphConfig(scale_range=(1.2, 0.8)).validate()
    with pytest.raises(ValueError, match="clutter"):
        GlyphConfig(clutter=(3, 1)).validate()


# ---------------------------------------------------------------- jittered letters


def test_render_letters_fills_the_square_and_differs_per_font():
    from cvbook.data.glyphs import FONT_FILES, render_letters

    g, y, f = render_letters("AOI", size=12)
    assert g.shape == (3 * len(FONT_FILES), 1, 12, 12) and len(FONT_FILES) == 22
    assert y.tolist() == [0] * 22 + [1] * 22 + [2] * 22 and f.tolist() == list(range(22)) * 3
    assert float(g.min()) >= 0.0 and float(g.max()) <= 1.0
    # the longer side of every glyph's ink spans the square (scaled to fit, aspect kept)
    ink = g[:, 0] > 0.05
    rows, cols = ink.any(2), ink.any(1)
    span = torch.maximum(rows.sum(1), cols.sum(1))
    assert int(span.min()) >= 11
    # aspect kept: "I" (tall, thin) is on average much narrower than "O" (a stretch to
    # fill the square would make both 12 wide)
    width = cols.sum(1).float()
    assert float(width[44:].mean()) < 0.8 * float(width[22:44].mean())
    # typefaces differ: no two fonts give the same "A"
    a = g[:22].flatten(1)
    d = torch.cdist(a, a) + torch.eye(22) * 1e3
    assert float(d.min()) > 0.1
    with pytest.raises(ValueError, match="distinct"):
        render_letters("AA")


def test_jittered_letters_world_and_k_split():
    import dataclasses as dc

    from cvbook import dtc
    from cvbook.data.glyphs import make_jittered_letters

    x, y = make_jittered_letters(GlyphConfig(image_size=16), copies=2, seed=3)
    assert x.shape == (26 * 22 * 2, 1, 16, 16) and torch.bincount(y).tolist() == [44] * 26
    x2, _ = make_jittered_letters(GlyphConfig(image_size=16), copies=2, seed=3)
    assert torch.equal(x, x2)
    cfg = dc.replace(dtc.PRESETS["cpu"], k_copies=1)
    s0 = dtc.load_letters_k_world(cfg, 0, 5)
    s1 = dtc.load_letters_k_world(cfg, 1, 5)
    for s in (s0, s1):  # backbone classes, held-out anchors/probes, new classes: disjoint
        assert len(s.known) == 16 and len(s.probes) == 5 and len(s.unknown) == 5
        assert len(set(s.known) | set(s.probes) | set(s.unknown)) == 26
        assert s.x_lab.shape[0] == 16 * 22 and s.x_probe.shape[0] == 5 * 22
    assert s0.known != s1.known  # the letter order is drawn from the seed
    with pytest.raises(ValueError, match="exceeds"):
        dtc.load_letters_k_world(cfg, 0, 6)
