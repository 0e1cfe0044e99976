"""Chapter 07's full preset: the official Human3.6M protocol on files of the official
release's format (``h36m_train.json``, ``h36m_val.json``), and the notebook run end to end
with ``preset="full"`` on a tiny fake pair of such files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from cvbook.c3dpo import (
    PRESETS,
    evaluate_official,
    image_points,
    load_official,
    train_c3dpo,
)
from cvbook.core import select_preset
from cvbook.data.puppet import PuppetWorld
from cvbook.metrics.pose import group_mean, pose_errors

# the 15 actions of the official evaluation (dataset/dataset_configs.py: H36M_ACTIONS)
ACTIONS = ("Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing",
           "Purchases", "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking",
           "WalkTogether")


def write_fake_h36m(folder: Path, n_train: int = 240, n_val: int = 60, seed: int = 0) -> Path:
    """``h36m_train.json`` and ``h36m_val.json`` in the official format: ``{"dataset":
    name, "data": [entries]}``, each entry with ``kp_loc`` (2 x 17, image frame, y down),
    ``kp_vis`` (17), ``kp_loc_3d`` (3 x 17, hip-centred, camera frame) in the file's units
    and ``h36m_info`` (``scale`` to millimetres, ``action_name``). Made from the puppet's
    first 17 joints, which are Human3.6M's 17 in the same order."""
    world = PuppetWorld()
    g = torch.Generator().manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("val", n_val)):
        b = world.sample_keypoints(n, generator=g, self_occlusion=False)
        X = b.joints_cam[:, :17] * torch.tensor([-1.0, -1.0, 1.0])  # y down: turn by pi
        X = X - X[:, :1]  # hip-centred
        scale = 500 + 30 * torch.randn(n, generator=g)  # file units -> mm
        X = X * 1000 / scale[:, None, None]
        vis = torch.rand(n, 17, generator=g) > 0.05
        data = [{"file_name": f"S9/{ACTIONS[i % 15]}/frame_{i:05d}.jpg",
                 "kp_loc": [[round(float(v), 5) for v in X[i, :, c]] for c in (0, 1)],
                 "kp_vis": [int(v) for v in vis[i]],
                 "kp_loc_3d": [[round(float(v), 5) for v in X[i, :, c]] for c in range(3)],
                 "h36m_info": {"scale": round(float(scale[i]), 4),
                               "action_name": ACTIONS[i % 15], "subject": "S9"}}
                for i in range(n)]
        (folder / f"h36m_{split}.json").write_text(json.dumps({"dataset": f"h36m_{split}",
                                                               "data": data}))
    return folder


def test_full_preset_is_the_official_configuration(tmp_path) -> None:
    root = write_fake_h36m(tmp_path / "c3dpo", 20, 10)
    cfg = select_preset(PRESETS, "full", data_root=str(root))
    # cfgs/h36m.yaml of the official release
    assert (cfg.width, cfg.n_blocks, cfg.n_basis, cfg.batch_size) == (1024, 6, 10, 1024)
    assert (cfg.optimizer, cfg.lr, cfg.weight_decay) == ("sgd", 1e-3, 5e-4)
    assert cfg.steps == 90 * 1249280 // 1024 and cfg.n_rotations == 4
    assert cfg.inplane == pytest.approx(math.pi / 8) and cfg.dataset == "h36m"
    assert (cfg.reprojection, cfg.init) == ("uncentred", "official")  # model.py's choices
    (root / "h36m_val.json").unlink()
    with pytest.raises(ValueError, match="missing: h36m_val.json"):
        select_preset(PRESETS, "full", data_root=str(root))


def test_official_protocol_on_fake_files(tmp_path) -> None:
    torch.set_num_threads(1)
    root = write_fake_h36m(tmp_path / "c3dpo")
    cfg = select_preset(PRESETS, "full", data_root=str(root), steps=20, batch_size=32,
                        width=32, n_blocks=1)
    data = load_official(cfg)
    tr, va = data["train"], data["val"]
    assert tr["keypoints"].shape == (240, 17, 2) and va["points3d"].shape == (60, 17, 3)
    assert va["scale"].shape == (60,) and va["group"][:2] == ["Directions", "Discussion"]
    model, hist = train_c3dpo(cfg, tr["keypoints"], tr["visible"], seed=0,
                              generator=torch.Generator().manual_seed(0), progress=False)
    assert len(hist.loss) == 1 and math.isfinite(hist.loss[0])
    pts = image_points({"C3DPO": model}, va["keypoints"], va["visible"])
    assert list(pts) == ["C3DPO", "rigid factorisation", "flat depth"]
    vis = va["visible"]
    # visible keypoints keep the input x, y; missing ones get the reprojection
    assert torch.equal(pts["C3DPO"][..., :2][vis], va["keypoints"][vis])
    table = evaluate_official(pts, va["points3d"], root=0, scale=va["scale"],
                              group=va["group"])
    for name, P in pts.items():
        e = pose_errors(P, va["points3d"], root=0, scale=va["scale"])
        for k in ("mpjpe_orig", "mpjpe_best", "stress"):
            ref = group_mean(e[k], va["group"])[0]
            assert table[name][k] == pytest.approx(float(ref))
    with pytest.raises(ValueError, match="expects 14 groups"):
        evaluate_official(pts, va["points3d"], root=0, group=va["group"], n_groups=14)
    assert evaluate_official(pts, va["points3d"], root=0, scale=va["scale"],
                             group=va["group"], n_groups=15) == table
    # a training file without 3D ground truth while the evaluation file has it: clear error
    train = json.loads((root / "h36m_train.json").read_text())
    for entry in train["data"]:
        del entry["kp_loc_3d"]
    (root / "h36m_train.json").write_text(json.dumps(train))
    with pytest.raises(ValueError, match="no kp_loc_3d"):
        load_official(cfg)
    # the flat prediction of a hip-centred figure: an error of the order of its depth (mm)
    assert 20 < table["flat depth"]["mpjpe_orig"] < 400


def test_full_notebook_runs_end_to_end_on_fake_files(tmp_path) -> None:
    pytest.importorskip("papermill")
    from fullrun import run_full_notebook

    root = write_fake_h36m(tmp_path / "c3dpo", 240, 60)
    side = run_full_notebook("07_c3dpo", tmp_path, root,
                             overrides={"steps": 20, "batch_size": 32, "width": 32,
                                        "n_blocks": 1})
    assert side["preset"] == "full"
    for method in ("C3DPO", "C3DPO_without_Psi", "rigid", "flat"):
        for metric in ("mpjpe_orig", "mpjpe_best", "stress"):
            assert f"{metric}/{method}" in side["metrics"]
