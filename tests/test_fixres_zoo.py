"""The per-seed base networks of chapter 03 in the model zoo: the recipe trains them (smoke
run), the shipped files match their sha256 and their recorded recipe, and they are the
trained networks the chapter's prose describes."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from cvbook import fixres, zoo

NAMES = [f"fixres_k{k}_s{s}" for k in (24, 32) for s in (0, 1, 2)]
# the fields of the cpu preset that shape the training, which the zoo's recipe repeats
# (the zoo may import no chapter module)
TRAINING_FIELDS = ("widths", "global_pool", "classes", "clutter", "image_size", "n_train",
                   "n_test", "epochs", "batch_size", "lr", "weight_decay")


def test_zoo_recipe_is_the_chapters_cpu_preset():
    cfg = fixres.PRESETS["cpu"]
    for name in NAMES:
        recipe = zoo.ZOO[name].recipe
        assert {f: getattr(recipe, f) for f in TRAINING_FIELDS} == \
            {f: getattr(cfg, f) for f in TRAINING_FIELDS}
        assert recipe.k_tests == cfg.k_tests and cfg.optimizer == "adamw"
    assert {zoo.ZOO[n].recipe.k_train for n in NAMES} == {cfg.k_train, cfg.k_train_high}


def test_smoke_training_of_a_fixres_entry(tmp_path):
    assert zoo.main(["train", "fixres_k24_s1", "--smoke", "--out", str(tmp_path)]) == 0
    meta = zoo.info("fixres_k24_s1", tmp_path)
    assert meta["smoke"] and meta["seed"] == 1 and meta["recipe"]["epochs"] == 1
    assert set(meta["metrics"]["test_top1_at"]) == {str(k) for k in
                                                     fixres.PRESETS["cpu"].k_tests}
    model = zoo.load_model("fixres_k24_s1", directory=tmp_path)
    assert model(torch.rand(2, 3, 24, 24)).shape == (2, 4)


@pytest.mark.parametrize("name", NAMES)
def test_shipped_fixres_checkpoints(name):
    path = zoo.checkpoint_path(name)
    assert path.is_file(), f"run `python -m cvbook.zoo train {name}`"
    assert zoo.verify(name)
    meta = zoo.info(name)
    recipe = zoo.ZOO[name].recipe
    assert not meta["smoke"]
    assert meta["recipe"] == json.loads(json.dumps(dataclasses.asdict(recipe)))
    assert path.stat().st_size < 600_000
    # trained: well above chance (0.25) at its own resolution, loss far below ln 4
    assert meta["metrics"]["test_top1_at"][str(recipe.k_train)] >= 0.8
    assert meta["metrics"]["train_loss"][-1] < 0.8
    model = zoo.load_model(name)
    assert not model.training and fixres.receptive_field(model) == 38


def test_zoo_entries_and_errors():
    cfg = fixres.PRESETS["cpu"]
    with pytest.raises(ValueError, match="no fixres_k24_s7"):
        fixres.base_network(cfg, None, 24, "zoo", seed=7)
    with pytest.raises(ValueError, match="not a SceneCNN"):
        zoo.scene_config("fixres_k24_s0")
    with pytest.raises(TypeError):
        zoo.train_fixres(zoo.SceneCNNRecipe())
