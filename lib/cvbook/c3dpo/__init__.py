"""C3DPO: canonical 3D pose networks for non-rigid structure from motion.

Novotny, Ravi, Graham, Neverova, Vedaldi, ICCV 2019 (arXiv:1909.02533).

* :mod:`cvbook.c3dpo.model`: the networks Phi and Psi, the objective (Eq. 1-5), the
  baselines (Tomasi-Kanade, flat depth) and the reader of the official release's JSON;
* :mod:`cvbook.c3dpo.presets`: the chapter's presets (:data:`PRESETS`);
* :mod:`cvbook.c3dpo.experiment`: the puppet data, the training recipe and the
  evaluation harness of chapter 07.

Everything is re-exported here: ``from cvbook import c3dpo; c3dpo.C3DPO`` and
``from cvbook.c3dpo import C3DPO, c3dpo_loss`` both work.
"""

from cvbook.c3dpo.experiment import (
    STEPS_PER_EPOCH,
    evaluate_depths,
    evaluate_official,
    image_points,
    load_official,
    make_model,
    multiview_consistency,
    predict_depths,
    puppet_multiview,
    puppet_split,
    shape_spread,
    split_keypoints,
    train_c3dpo,
    train_supervised_lifter,
)
from cvbook.c3dpo.model import (
    C3DPO,
    Canonicaliser,
    Factoriser,
    c3dpo_loss,
    center_keypoints,
    flat_depth,
    init_official_,
    inplane_rotation,
    load_keypoints_json,
    pseudo_huber,
    reprojection_loss,
    tomasi_kanade,
)
from cvbook.c3dpo.presets import DATASETS, PRESETS, C3DPOConfig

__all__ = [
    "C3DPO",
    "PRESETS",
    "STEPS_PER_EPOCH",
    "C3DPOConfig",
    "DATASETS",
    "Canonicaliser",
    "Factoriser",
    "c3dpo_loss",
    "center_keypoints",
    "evaluate_depths",
    "evaluate_official",
    "flat_depth",
    "image_points",
    "init_official_",
    "inplane_rotation",
    "load_keypoints_json",
    "load_official",
    "make_model",
    "multiview_consistency",
    "predict_depths",
    "pseudo_huber",
    "puppet_multiview",
    "puppet_split",
    "reprojection_loss",
    "shape_spread",
    "split_keypoints",
    "tomasi_kanade",
    "train_c3dpo",
    "train_supervised_lifter",
]
