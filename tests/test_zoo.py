"""The model zoo: the training script runs (smoke), shipped checkpoints match their
recorded sha256 and load with weights_only=True."""

from __future__ import annotations

import json

import pytest
import torch

from cvbook import zoo


def test_smoke_training_script(tmp_path):
    assert zoo.main(["train", "scenes_cnn", "--smoke", "--out", str(tmp_path)]) == 0
    meta = json.loads((tmp_path / "scenes_cnn.pt.json").read_text())
    assert meta["smoke"] and meta["seed"] == 0 and "test_accuracy" in meta["metrics"]
    assert meta["recipe"]["epochs"] == 1
    model = zoo.load_model("scenes_cnn", directory=tmp_path)
    assert not model.training
    assert zoo.verify("scenes_cnn", tmp_path)
    # a changed file is refused
    with open(tmp_path / "scenes_cnn.pt", "ab") as f:
        f.write(b"tampered")
    with pytest.raises(ValueError, match="sha256"):
        zoo.load_model("scenes_cnn", directory=tmp_path)


@pytest.mark.parametrize("name", ["scenes_cnn"])
def test_shipped_checkpoint_matches_hash(name):
    path = zoo.checkpoint_path(name)
    assert path.is_file(), f"run `python -m cvbook.zoo train {name}`"
    assert zoo.verify(name)
    meta = zoo.info(name)
    # the attribution chapters need a confident classifier (the first recipe gave 0.62)
    assert not meta["smoke"] and meta["metrics"]["test_accuracy"] >= 0.85
    assert path.stat().st_size < 2_000_000
    recipe = zoo.ZOO[name].recipe
    assert meta["recipe"] == json.loads(json.dumps(__import__("dataclasses").asdict(recipe)))
    model = zoo.load_model(name)
    x = torch.rand(2, 3, 64, 64)
    assert model(x).shape == (2, len(meta["recipe"]["classes"]))


def test_errors():
    with pytest.raises(ValueError, match="name"):
        zoo.build_model("nope")
    with pytest.raises(FileNotFoundError):
        zoo.info("scenes_cnn", "/nonexistent")
