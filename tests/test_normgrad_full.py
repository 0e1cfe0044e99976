"""Chapter 02's ``full`` preset end to end: the committed notebook papermilled with
``preset="full"`` on a tiny fake VOC 2007 folder (the real format, read by torchvision)
with a randomly initialised torchvision classifier (nothing is downloaded), shrunk to a
few images at 64 px so that it runs in well under a minute on a CPU."""

from __future__ import annotations

import pytest
from fake_voc import write_fake_voc
from fullrun import run_full_notebook

pytest.importorskip("papermill")
pytest.importorskip("torchvision")


@pytest.mark.parametrize("model", ["vgg16", "resnet50"])
def test_normgrad_full_preset_runs_end_to_end(tmp_path, model) -> None:
    root = write_fake_voc(tmp_path / "voc", n_images=3, size=(80, 64))
    side = run_full_notebook(
        "02_normgrad", tmp_path / "run", root,
        overrides={"model": model, "pretrained": False, "image_size": 64, "n_meta": 1,
                   "batch_size": 4},
        parameters={"n_eval": 8, "meta_steps": [0.0, 0.0025]})
    assert side["preset"] == "full"
    layers = {"vgg16": ("features.3", "features.29"), "resnet50": ("layer1", "layer4")}[model]
    for name in layers:
        for a in ("gradient", "gradcam", "linear", "normgrad", "normgrad_selective"):
            v = side["metrics"][f"pointing/{a}/{name}"]
            assert 0.0 <= v <= 1.0
    assert side["metrics"]["pointing_trials"] >= 3          # one trial per (image, class)
    assert side["metrics"]["normgrad_autograd_rel_error"] < 1e-5
    assert "class_sensitivity/eta=0.0025" in side["metrics"]
    assert any(c["claim"].startswith("NormGrad equals the autograd") and c["holds"]
               for c in side["claims"])
