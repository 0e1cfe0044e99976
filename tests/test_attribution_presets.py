"""The attribution chapters' presets (01, 02): validated, with clear errors, and the full
presets check the VOC folder before anything is downloaded."""

from __future__ import annotations

import pytest

from cvbook.attribution.presets import (
    EXTREMAL_PRESETS,
    NORMGRAD_PRESETS,
    ExtremalConfig,
    NormGradConfig,
    check_voc_root,
)
from cvbook.core import select_preset

ALL = [EXTREMAL_PRESETS, NORMGRAD_PRESETS]


@pytest.mark.parametrize("presets", ALL)
def test_cpu_preset_validates_and_is_offline(presets) -> None:
    cfg = select_preset(presets, "cpu")
    assert cfg.model == "scenes_cnn" and cfg.data_root is None


@pytest.mark.parametrize("presets", ALL)
def test_unknown_preset_and_parameter_list_the_choices(presets) -> None:
    with pytest.raises(ValueError, match="unknown preset 'gpu'; valid presets: cpu, full"):
        select_preset(presets, "gpu")
    with pytest.raises(ValueError, match="unknown parameter 'n_evals'.*valid parameters: "
                                         ".*n_eval"):
        select_preset(presets, "cpu", n_evals=10)


@pytest.mark.parametrize("presets", ALL)
def test_full_preset_needs_the_voc_folder(presets, tmp_path) -> None:
    with pytest.raises(ValueError, match="needs data_root.*VOCdevkit/VOC2007"):
        select_preset(presets, "full")
    with pytest.raises(ValueError, match=r"data_root='.*' must be a folder holding "
                                         r"VOCdevkit/VOC2007.*is not a folder"):
        select_preset(presets, "full", data_root=str(tmp_path))
    (tmp_path / "VOCdevkit" / "VOC2007").mkdir(parents=True)
    cfg = select_preset(presets, "full", data_root=str(tmp_path))
    assert cfg.model == "vgg16" and cfg.data_root == str(tmp_path)


def test_full_preset_fails_before_downloading(monkeypatch) -> None:
    """The VOC check runs in select_preset, before any model is built."""
    import torchvision

    def boom(*a, **k):
        raise AssertionError("weights requested before the data folder was checked")

    monkeypatch.setattr(torchvision.models, "vgg16", boom)
    with pytest.raises(ValueError, match="data_root"):
        select_preset(EXTREMAL_PRESETS, "full", data_root="/no/such/folder")


@pytest.mark.parametrize("field,value,err,match", [
    ("iterations", 0, ValueError, "iterations must be >= 1"),
    ("areas", (0.1, 1.5), ValueError, r"areas\[i\] must be <= 1.0"),
    ("areas", (), ValueError, "areas must list at least one"),
    ("n_eval", 4, ValueError, "n_eval must be >= 8"),
    ("lambda_growth", 0.9, ValueError, "lambda_growth must be >= 1.0"),
    ("model", "vgg19", ValueError, "model must be one of 'scenes_cnn', 'vgg16', 'resnet50'"),
    ("iterations", 1.5, TypeError, "parameter 'iterations' must be of type"),
    ("substeps", 0, ValueError, "substeps must be >= 1"),
])
def test_extremal_bad_values(field, value, err, match) -> None:
    with pytest.raises(err, match=match):
        select_preset(EXTREMAL_PRESETS, "cpu", **{field: value})


@pytest.mark.parametrize("field,value,match", [
    ("meta_steps", (0.0, -0.1), r"meta_steps\[i\] must be >= 0.0"),
    ("meta_steps", (), "meta_steps must list at least one"),
    ("n_meta", 1000, "n_meta must be <= 240"),
    ("tolerance", -1.0, "tolerance must be >= 0.0"),
])
def test_normgrad_bad_values(field, value, match) -> None:
    with pytest.raises(ValueError, match=match):
        select_preset(NORMGRAD_PRESETS, "cpu", **{field: value})


def test_configs_are_frozen_and_overrides_keep_the_rest() -> None:
    cfg = select_preset(EXTREMAL_PRESETS, "cpu", iterations=20, n_eval=None)
    assert cfg == ExtremalConfig(iterations=20)
    with pytest.raises(AttributeError):
        cfg.iterations = 3  # type: ignore[misc]
    assert select_preset(NORMGRAD_PRESETS, "cpu", n_eval=16, n_meta=16) == \
        NormGradConfig(n_eval=16, n_meta=16)


def test_check_voc_root_types() -> None:
    with pytest.raises(TypeError, match="data_root must be a path"):
        check_voc_root(3)  # type: ignore[arg-type]
