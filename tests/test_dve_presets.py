"""DVE's presets, the CelebA reader on a tiny fake folder of torchvision's format, the zoo's
DVE entries, and the chapter's full preset end to end on that folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cvbook import zoo
from cvbook.core import select_preset
from cvbook.dve import PRESETS, CelebAFaces, DVEConfig, mean_ci, ratio_ci
from cvbook.dve.celeba import CELEBA_FILES

ATTRS = ["5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald",
         "Bangs", "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair",
         "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair",
         "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
         "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose",
         "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
         "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick",
         "Wearing_Necklace", "Wearing_Necktie", "Young"]


def make_fake_celeba(root, n: int = 12, seed: int = 0):
    """A tiny CelebA folder in torchvision's layout: ``root/celeba/img_align_celeba/*.jpg``
    (178 x 218 JPEGs) and the five annotation files (partition: 0 train, 1 valid, 2 test;
    landmarks near the real means of the aligned images)."""
    rng = np.random.default_rng(seed)
    base = root / "celeba"
    (base / "img_align_celeba").mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    part = [0 if i < n // 2 else (1 if i < 3 * n // 4 else 2) for i in range(n)]
    mean_lm = np.array([69, 111, 108, 111, 89, 135, 72, 152, 106, 152])
    rows_lm, rows_bb, rows_attr = [], [], []
    for name in names:
        img = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)
        Image.fromarray(img).save(base / "img_align_celeba" / name, quality=90)
        lm = mean_lm + rng.integers(-3, 4, 10)
        rows_lm.append(name + " " + " ".join(str(v) for v in lm))
        rows_bb.append(f"{name} 95 71 226 313")
        rows_attr.append(name + " " + " ".join(str(v) for v in rng.choice([-1, 1], 40)))
    (base / "list_eval_partition.txt").write_text(
        "".join(f"{a} {p}\n" for a, p in zip(names, part)))
    (base / "identity_CelebA.txt").write_text(
        "".join(f"{a} {100 + i}\n" for i, a in enumerate(names)))
    (base / "list_bbox_celeba.txt").write_text(
        f"{n}\nimage_id x_1 y_1 width height\n" + "\n".join(rows_bb) + "\n")
    (base / "list_landmarks_align_celeba.txt").write_text(
        f"{n}\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x "
        "leftmouth_y rightmouth_x rightmouth_y\n" + "\n".join(rows_lm) + "\n")
    (base / "list_attr_celeba.txt").write_text(
        f"{n}\n" + " ".join(ATTRS) + "\n" + "\n".join(rows_attr) + "\n")
    return root


def test_presets_unknown_and_bad_values(tmp_path):
    with pytest.raises(ValueError, match="unknown preset"):
        select_preset(PRESETS, "gpu")
    with pytest.raises(ValueError, match="unknown parameter"):
        select_preset(PRESETS, "cpu", epochs=3)
    with pytest.raises(ValueError, match="batch_size"):
        select_preset(PRESETS, "cpu", batch_size=1)
    with pytest.raises(ValueError, match="data"):
        select_preset(PRESETS, "cpu", data="imagenet")
    with pytest.raises(ValueError, match="dims"):
        select_preset(PRESETS, "cpu", dims=())
    with pytest.raises(ValueError, match="use_zoo"):
        select_preset(PRESETS, "cpu", arch="hourglass")
    with pytest.raises(ValueError, match="data_root"):
        select_preset(PRESETS, "full")
    with pytest.raises(ValueError, match="img_align_celeba"):
        select_preset(PRESETS, "full", data_root=str(tmp_path))
    with pytest.raises(ValueError, match="divisible"):
        DVEConfig(data="faces", arch="hourglass", use_zoo=False, image_size=64,
                  crop=10).validate()
    cfg = select_preset(PRESETS, "cpu")
    assert cfg.size == 48 and cfg.dims == (3, 16) and cfg.use_zoo
    full = PRESETS["full"]
    assert full.size == 96 and full.arch == "hourglass" and full.dims == (64,) and full.amp
    assert full.milestones == (0.5,) and cfg.milestones == ()  # StepLR 50 of 100 epochs
    assert full.reg_epochs == 300 and full.reg_batch == 32  # the official keypoint configs
    with pytest.raises(ValueError, match="milestones"):
        DVEConfig(milestones=(1.5,)).validate()


def test_celeba_reader_crops_as_the_official_loader(tmp_path):
    root = make_fake_celeba(tmp_path)
    cfg = select_preset(PRESETS, "full", data_root=str(root))
    faces = CelebAFaces(root, image_size=cfg.image_size)
    assert faces.size("train") == 6 and faces.size("test") == 3
    b = faces.load(torch.tensor([0, 1]), "train")
    assert b.images.shape == (2, 3, 136, 136) and b.landmarks.shape == (2, 5, 2)
    assert float(b.images.min()) >= 0 and float(b.images.max()) <= 1
    # landmark y - 30, times 136 / 178 (jamt9000/DVE data_loader: initial crop at row 30)
    raw = (tmp_path / "celeba" / "list_landmarks_align_celeba.txt").read_text().split("\n")[2]
    v = torch.tensor([float(t) for t in raw.split()[1:]]).reshape(5, 2)
    torch.testing.assert_close(b.landmarks[0], (v - torch.tensor([0.0, 30.0])) * 136 / 178)
    assert b.identity.tolist() == [100, 101]
    g = torch.Generator().manual_seed(0)
    assert len(faces.sample(5, "test", generator=g)) == 5


def test_celeba_neighbours_are_different_people(tmp_path):
    """DVE's auxiliary image (the next sample) and the "different identity" target must
    show another person: the reader redraws clashing neighbours (cyclically)."""
    root = make_fake_celeba(tmp_path)
    names = [f"{i + 1:06d}.jpg" for i in range(12)]
    # the 6 training images show only 2 people; the 3 test images all show one person
    person = [7, 7, 7, 7, 7, 8, 1, 1, 1, 1, 1, 1]
    (tmp_path / "celeba" / "identity_CelebA.txt").write_text(
        "".join(f"{a} {p}\n" for a, p in zip(names, person)))
    faces = CelebAFaces(root, image_size=32)
    idx = faces.sample_indices(64, "train", generator=torch.Generator().manual_seed(0))
    ids = faces.identities("train")[idx]
    assert bool((ids != ids.roll(-1)).all())
    b = faces.sample(6, "train", generator=torch.Generator().manual_seed(1))
    assert bool((b.identity != b.identity.roll(-1)).all())
    with pytest.raises(ValueError, match="fewer than 2 identities"):
        faces.sample(4, "test")
    (tmp_path / "celeba" / CELEBA_FILES[1]).unlink()
    with pytest.raises(FileNotFoundError, match="identity_CelebA"):
        CelebAFaces(root)


def test_intervals():
    m, lo, hi = mean_ci(torch.arange(100.0))
    assert lo < m < hi and abs(m - 49.5) < 1e-9
    assert abs((hi - lo) / 2 - 1.96 * float(torch.arange(100.0).std()) / 10) < 1e-3
    a = torch.linspace(1, 2, 200)
    r, lo, hi = ratio_ci(a, 2 * a + 0.01 * torch.randn(200, generator=torch.Generator()
                                                        .manual_seed(0)))
    assert lo < r < hi and abs(r - 0.5) < 0.01 and hi - lo < 0.01


def test_zoo_dve_smoke(tmp_path):
    """``python -m cvbook.zoo train`` makes the DVE entries (through the recipe's trainer,
    imported at run time), and so does the chapter module's own entry point."""
    from cvbook.dve import zoo_train

    assert zoo.main(["train", "dve_c3_dve_s1", "--smoke", "--out", str(tmp_path)]) == 0
    meta = json.loads((tmp_path / "dve_c3_dve_s1.pt.json").read_text())
    assert meta["smoke"] and meta["recipe"]["dve"] and meta["recipe"]["dim"] == 3
    assert meta["seed"] == 1 and meta["recipe"]["seed"] == 1
    assert {"same_px", "different_px", "eval_curve", "train_loss_per_25_steps"} <= set(
        meta["metrics"])
    assert meta["command"] == "python -m cvbook.zoo train dve_c3_dve_s1 --smoke"
    model = zoo.load_model("dve_c3_dve_s1", directory=tmp_path)
    assert not model.training and next(model.parameters()).dtype == torch.float32
    assert model(torch.zeros(2, 3, 48, 48)).shape == (2, 3, 24, 24)
    assert zoo_train.main(["dve_c16_s2", "--smoke", "--out", str(tmp_path)]) == 0
    assert zoo.verify("dve_c16_s2", tmp_path)
    assert set(zoo_train.DVE_ENTRIES) == {f"dve_c{d}{v}_s{s}" for d in (3, 16)
                                          for v in ("", "_dve") for s in (0, 1, 2)}


def test_shipped_dve_checkpoints():
    """Every DVE checkpoint in the package matches its recipe, hash and training record.

    Issue 12, second round: the per-seed entries (``dve_c{3,16}[_dve]_s{0,1,2}``) replaced
    the four 300-step checkpoints, and none of the twelve is trained yet (a 2-core machine
    shared by many sessions gave the two seed-0 16-D runs a tenth of a core each; they were
    stopped at step ~395 of 800). ``notebooks/drafts/README.md`` lists the commands; each
    trained file is checked here as soon as it lands."""
    from cvbook.dve.zoo_train import DVE_ENTRIES

    for name in DVE_ENTRIES:
        path = zoo.checkpoint_path(name)
        if not path.is_file():
            continue
        assert zoo.verify(name)
        meta = zoo.info(name)
        assert not meta["smoke"] and path.stat().st_size < 1_000_000  # float16
        recipe = zoo.ZOO[name].recipe
        assert meta["recipe"] == json.loads(json.dumps(
            __import__("dataclasses").asdict(recipe)))
        assert meta["command"] == f"python -m cvbook.zoo train {name}"
        # trained: the matching error is far below the untrained network's (about 26 px)
        assert meta["metrics"]["same_px"] < 5.0
        steps = [row[0] for row in meta["metrics"]["eval_curve"]]
        assert steps[-1] == recipe.steps and len(steps) == recipe.steps // recipe.eval_every


def test_full_preset_notebook_on_fake_celeba(tmp_path):
    """The notebook's full preset end to end (hourglass, CelebA reader, DVE training,
    both protocols) on a tiny fake CelebA folder, random initial weights, shrunk sizes."""
    from tests.fullrun import run_full_notebook

    root = make_fake_celeba(tmp_path / "data")
    side = run_full_notebook(
        "05_dve", tmp_path, root,
        overrides={"demo_steps": 2, "batch_size": 2, "n_match": 2, "n_reg_train": 4,
                   "n_reg_test": 2, "reg_epochs": 1, "hg_width": 16, "max_images": 8},
        folder="drafts")  # a draft chapter (notebooks/drafts/README.md)
    assert side["preset"] == "full"
    assert any(k.startswith("same_px") for k in side["metrics"])
