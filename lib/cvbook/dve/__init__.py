"""Descriptor Vector Exchange (Thewlis, Albanie, Bilen & Vedaldi, ICCV 2019,
arXiv:1908.06427): dense descriptors learnt from warped pairs, made identity-free by
rebuilding each descriptor from another person's image before matching.

Modules: :mod:`~cvbook.dve.loss` (the dense equivariance loss and the exchange, matmul
form), :mod:`~cvbook.dve.model` (SmallNet, the hourglass descriptor),
:mod:`~cvbook.dve.evaluation` (matching errors, landmark regressor, %IOD) and
:mod:`~cvbook.dve.train` (training on the faces world, the matching protocol),
:mod:`~cvbook.dve.experiment` (the chapter's paired evaluation, intervals),
:mod:`~cvbook.dve.presets` and :mod:`~cvbook.dve.celeba` (the full preset's data). The faces
world and the pairs are shared homes: :mod:`cvbook.data.faces`, :mod:`cvbook.data.pairs`.
"""

from cvbook.data.faces import FaceConfig, FaceWorld
from cvbook.data.pairs import PairBatch, PairConfig, warped_pairs
from cvbook.dve.celeba import CelebAFaces
from cvbook.dve.evaluation import (
    LandmarkRegressor,
    describe,
    fit_landmark_regressor,
    iod_percent,
    match_points,
    matching_error,
)
from cvbook.dve.experiment import dense_match, evaluate_models, mean_ci, ratio_ci
from cvbook.dve.loss import (
    correspondence_at_features,
    dense_equivariance_loss,
    dve_loss,
    exchange,
    feature_positions,
    naive_dense_equivariance_loss,
)
from cvbook.dve.model import HourglassDescriptor, SmallNet
from cvbook.dve.presets import FACES_PAIRS, PRESETS, DVEConfig, faces_world
from cvbook.dve.train import evaluate_landmarks, evaluate_matching, train_descriptor

__all__ = [
    "CelebAFaces",
    "DVEConfig",
    "FACES_PAIRS",
    "FaceConfig",
    "FaceWorld",
    "HourglassDescriptor",
    "LandmarkRegressor",
    "PRESETS",
    "PairBatch",
    "PairConfig",
    "SmallNet",
    "correspondence_at_features",
    "dense_equivariance_loss",
    "dense_match",
    "describe",
    "dve_loss",
    "evaluate_landmarks",
    "evaluate_matching",
    "evaluate_models",
    "exchange",
    "faces_world",
    "feature_positions",
    "fit_landmark_regressor",
    "iod_percent",
    "match_points",
    "matching_error",
    "mean_ci",
    "naive_dense_equivariance_loss",
    "ratio_ci",
    "train_descriptor",
    "warped_pairs",
]
