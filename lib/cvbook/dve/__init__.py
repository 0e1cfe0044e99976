"""Descriptor Vector Exchange (Thewlis, Albanie, Bilen & Vedaldi, ICCV 2019,
arXiv:1908.06427): dense descriptors learnt from warped pairs, made identity-free by
rebuilding each descriptor from another person's image before matching.

Modules: :mod:`~cvbook.dve.loss` (the dense equivariance loss and the exchange, matmul
form), :mod:`~cvbook.dve.model` (SmallNet, the hourglass descriptor),
:mod:`~cvbook.dve.evaluation` (matching errors, landmark regressor, %IOD) and
:mod:`~cvbook.dve.train` (training on the faces world, the matching protocol). The faces
world and the pairs are shared homes: :mod:`cvbook.data.faces`, :mod:`cvbook.data.pairs`.
"""

from cvbook.data.faces import FaceConfig, FaceWorld
from cvbook.data.pairs import PairBatch, PairConfig, warped_pairs
from cvbook.dve.evaluation import (
    LandmarkRegressor,
    describe,
    fit_landmark_regressor,
    iod_percent,
    match_points,
    matching_error,
)
from cvbook.dve.loss import (
    correspondence_at_features,
    dense_equivariance_loss,
    dve_loss,
    exchange,
    feature_positions,
    naive_dense_equivariance_loss,
)
from cvbook.dve.model import HourglassDescriptor, SmallNet
from cvbook.dve.train import evaluate_landmarks, evaluate_matching, train_descriptor

__all__ = [
    "FaceConfig",
    "FaceWorld",
    "HourglassDescriptor",
    "LandmarkRegressor",
    "PairBatch",
    "PairConfig",
    "SmallNet",
    "correspondence_at_features",
    "dense_equivariance_loss",
    "describe",
    "dve_loss",
    "evaluate_landmarks",
    "evaluate_matching",
    "exchange",
    "feature_positions",
    "fit_landmark_regressor",
    "iod_percent",
    "match_points",
    "matching_error",
    "naive_dense_equivariance_loss",
    "train_descriptor",
    "warped_pairs",
]
