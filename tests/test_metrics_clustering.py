"""Clustering metrics against brute force over permutations and scikit-learn."""

from itertools import permutations

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from cvbook.metrics.clustering import (
    ari,
    cluster_acc,
    clustering_scores,
    contingency,
    hungarian_match,
    nmi,
)


def brute_force_acc(t: np.ndarray, p: np.ndarray) -> float:
    classes, clusters = np.unique(t), np.unique(p)
    k = max(len(classes), len(clusters))
    best = 0.0
    for perm in permutations(range(k), len(clusters)):
        mapping = {c: (classes[j] if j < len(classes) else -999) for c, j in zip(clusters, perm)}
        best = max(best, float(np.mean([mapping[c] == y for c, y in zip(p, t)])))
    return best


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k_true,k_pred", [(3, 3), (4, 4), (3, 5), (5, 3)])
def test_acc_matches_brute_force(seed, k_true, k_pred):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, k_true, 30)
    p = rng.integers(0, k_pred, 30)
    assert cluster_acc(t, p) == pytest.approx(brute_force_acc(t, p))


def test_acc_is_permutation_invariant_and_exact():
    t = np.array([0, 0, 1, 1, 2, 2])
    assert cluster_acc(t, np.array([2, 2, 0, 0, 1, 1])) == 1.0
    assert cluster_acc(t, [5, 5, 7, 7, 9, 9]) == 1.0  # arbitrary ids, list input
    assert cluster_acc(torch.tensor(t), torch.tensor([1, 1, 1, 1, 0, 0])) == pytest.approx(4 / 6)
    assert hungarian_match(t, [2, 2, 0, 0, 1, 1]) == {2: 0, 0: 1, 1: 2}
    assert contingency(t, [0, 0, 0, 1, 1, 1]).tolist() == [[2, 1, 0], [0, 1, 2]]


def test_nmi_ari_match_sklearn():
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 4, 50), rng.integers(0, 5, 50)
    assert nmi(t, p) == pytest.approx(normalized_mutual_info_score(t, p))
    assert ari(t, p) == pytest.approx(adjusted_rand_score(t, p))
    s = clustering_scores(torch.tensor(t), torch.tensor(p))
    assert set(s) == {"acc", "nmi", "ari"}
    assert clustering_scores(t, t) == {"acc": 1.0, "nmi": 1.0, "ari": 1.0}


@pytest.mark.parametrize("t,p,err,match", [
    ([0, 1, 2], [0, 1], ValueError,
     r"y_pred must have shape \(N,\) with N = 3 as in y_true \(N,\); got \(2,\)"),
    ([], [], ValueError, "empty"),
    (np.zeros((2, 2), int), np.zeros((2, 2), int), ValueError, "1-D"),
    (torch.tensor([0.0, 1.0]), torch.tensor([0, 1]), TypeError, "integer"),
    (np.array([0.5, 1.0]), np.array([0, 1]), TypeError, "integer"),
    ("abc", [0, 1, 2], TypeError, "y_true"),
    ([0, 1], [0, 1.5], TypeError, "y_pred"),
])
def test_bad_inputs(t, p, err, match):
    with pytest.raises(err, match=match):
        cluster_acc(t, p)
