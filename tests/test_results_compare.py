"""Metric tolerances and the sidecar comparator that ``make test`` runs on trained numbers."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from cvbook.core.results import Results, compare_metrics, load_all_results, validate_sidecar


def _stored() -> dict:
    r = Results("99_demo", preset="cpu", seed=0)
    r.metric("top1", torch.tensor(0.812), tol=0.03)
    r.metric("best_k", 28, tol=4)
    r.metric("n_classes", 4)                    # deterministic by construction: exact
    r.claim("the effect holds", True, "0.81 > 0.70")
    r.paper_number("top-1", 79.0, "Table 1")
    return r.to_dict()


def test_tolerances_are_stored_in_the_sidecar():
    d = validate_sidecar(json.loads(json.dumps(_stored())))
    assert d["tolerances"] == {"top1": 0.03, "best_k": 4.0}
    assert "n_classes" not in d["tolerances"]


def test_a_run_within_tolerance_passes():
    stored = _stored()
    run = copy.deepcopy(stored)
    run["metrics"]["top1"] += 0.029
    run["metrics"]["best_k"] = 32
    assert compare_metrics(stored, run) == []
    stored["metrics"]["top1"], run["metrics"]["top1"] = 0.884, 0.914  # exactly tol apart
    assert compare_metrics(stored, run) == []


def test_a_stored_metric_edited_past_its_tolerance_fails():
    stored, run = _stored(), _stored()
    stored["metrics"]["top1"] += 0.031          # a regression, or a hand-edited number
    problems = compare_metrics(stored, run)
    assert len(problems) == 1 and "top1" in problems[0] and "tol 0.03" in problems[0]


def test_a_metric_without_tolerance_compares_exactly():
    stored, run = _stored(), _stored()
    run["metrics"]["n_classes"] = 4.000001
    (p,) = compare_metrics(stored, run)
    assert "n_classes" in p and "exactly" in p


def test_missing_metrics_changed_tolerances_and_claims_are_reported():
    stored, run = _stored(), _stored()
    del run["metrics"]["best_k"]
    run["tolerances"]["top1"] = 0.5             # loosened in the notebook, not re-executed
    run["metrics"]["new"] = 1.0
    run["claims"] = [{"claim": "another claim", "holds": True, "evidence": ""}]
    problems = "\n".join(compare_metrics(stored, run))
    for needle in ("'best_k' is stored but the run lacks it", "tol=0.5", "'new'",
                   "stored claim missing", "not stored: 'another claim'"):
        assert needle in problems


def test_a_not_reproduced_finding_that_comes_or_goes_is_reported():
    stored, run = _stored(), _stored()
    stored["not_reproduced"] = [{"finding": "effect A", "evidence": "0.1 < 0.2"}]
    run["not_reproduced"] = [{"finding": "effect B", "evidence": "0.3 < 0.4"}]
    problems = "\n".join(compare_metrics(stored, run))
    assert "finding missing from the run: 'effect A'" in problems
    assert "not stored: 'effect B'" in problems
    run["not_reproduced"] = [{"finding": "effect A", "evidence": "0.11 < 0.2"}]
    assert compare_metrics(stored, run) == []   # the evidence's digits may move


@pytest.mark.parametrize("tol", [-0.1, float("nan"), float("inf"), True, "0.1"])
def test_bad_tolerances_are_refused(tol):
    with pytest.raises(ValueError, match="tol of metric 'x'"):
        Results("99_demo", preset="cpu", seed=0).metric("x", 1.0, tol=tol)


def test_validate_sidecar_checks_tolerances():
    d = _stored()
    d["tolerances"]["ghost"] = 0.1
    with pytest.raises(ValueError, match="not a metric"):
        validate_sidecar(d)
    d = _stored()
    d["tolerances"]["top1"] = -1
    with pytest.raises(ValueError, match=">= 0"):
        validate_sidecar(d)


def test_load_all_results_skips_seed_summaries(tmp_path):
    (tmp_path / "99_demo.json").write_text(json.dumps(_stored()))
    (tmp_path / "99_demo.seeds.json").write_text(json.dumps({"chapter": "99_demo", "seeds": {}}))
    assert [r["chapter"] for r in load_all_results(tmp_path)] == ["99_demo"]
