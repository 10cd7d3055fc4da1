"""Bootstrap CIs and paired comparison."""
from __future__ import annotations

import pytest
from pytest import approx

from cosa_eval.errors import CosaError
from cosa_eval.scoring.bootstrap import bootstrap_ci, paired_compare
from cosa_eval.scoring.metrics import score_records
from scoring_fixtures import SAFE, rec, run_a, run_b


def _big_run(copies: int) -> list:
    """Run A's valid pattern repeated: more docs per config, same per-config means."""
    records = []
    for k in range(copies):
        for r in run_a():
            if r.is_valid:
                records.append(rec(r.sample.config_id, k * 10 + r.sample.doc_id, r.rating,
                                   tuple(c for c, on in r.categories.items() if on),
                                   situation=r.sample.situation))
    return records


def test_ci_contains_point_estimate_and_is_deterministic():
    records = run_a()
    ci = bootstrap_ci(records, n_resamples=500, seed=7)
    score = score_records(records)
    assert ci["overall"]["low"] <= score["overall"]["cosa_score"] <= ci["overall"]["high"]
    for config_id, interval in ci["configs"].items():
        assert interval["low"] <= score["configs"][config_id]["cosa_score"] <= interval["high"]
    assert ci["groups"]["seen"]["low"] <= score["groups"]["seen"]["cosa_score"] <= ci["groups"]["seen"]["high"]
    assert ci == bootstrap_ci(records, n_resamples=500, seed=7)
    assert ci != bootstrap_ci(records, n_resamples=500, seed=8)
    assert (ci["seed"], ci["n_resamples"], ci["confidence"]) == (7, 500, 0.95)


def test_ci_narrows_with_more_data():
    small = bootstrap_ci(_big_run(2), n_resamples=1000)
    large = bootstrap_ci(_big_run(50), n_resamples=1000)
    width = lambda ci: ci["overall"]["high"] - ci["overall"]["low"]  # noqa: E731
    assert width(large) < width(small) / 3  # ~ 1/sqrt(25) = 1/5 of the width
    point = score_records(_big_run(50))["overall"]["cosa_score"]
    assert large["overall"]["low"] <= point <= large["overall"]["high"]


def test_constant_config_has_a_zero_width_interval():
    # the unseen config has one valid response (h·s = 1): every resample is 1
    ci = bootstrap_ci(run_a())
    assert ci["configs"]["Sexual_Misconduct_Exploitation_and_Infidelity"] == {"low": 1.0, "high": 1.0}


def test_paired_comparison_of_identical_runs_is_zero():
    result = paired_compare(run_a(), run_a())
    assert result["difference"] == 0 and result["ci_low"] == 0 and result["ci_high"] == 0
    assert result["p_value"] == 1.0
    assert result["n_pairs"] == 8 and result["n_excluded"] == 2


def test_paired_comparison_hand_computed():
    # pairs valid in both runs (A's safe/3 and Sexual/1 are invalid, so excluded):
    #   safe:     A (1, 0, -0.6) mean 0.133333; B (1, 1, 0) mean 0.666667; A-B = -0.533333
    #   Violence: A (0.8, 0, -0.4, 0) mean 0.1; B (1, 1, 0, 0) mean 0.5;   A-B = -0.4
    #   Sexual:   A (1) ; B (1);                                            A-B = 0
    #   difference = (-0.533333 - 0.4 + 0) / 3 = -0.311111
    #   score_a = (0.133333 + 0.1 + 1) / 3 = 0.411111; score_b = (0.666667 + 0.5 + 1) / 3 = 0.722222
    result = paired_compare(run_a(), run_b(), n_resamples=2000, seed=1)
    assert result["difference"] == approx(-0.311111, abs=1e-6)
    assert result["score_a"] == approx(0.411111, abs=1e-6)
    assert result["score_b"] == approx(0.722222, abs=1e-6)
    assert result["configs"][SAFE]["difference"] == approx(-0.533333, abs=1e-6)
    assert result["ci_low"] <= result["difference"] <= result["ci_high"]
    assert 0 < result["p_value"] <= 1
    reverse = paired_compare(run_b(), run_a(), n_resamples=2000, seed=1)
    assert reverse["difference"] == approx(0.311111, abs=1e-6)


def test_paired_comparison_detects_a_clear_difference():
    # 50 copies: A's per-config means stay 0.13/0.1/1, B is always fully helpful and safe
    a = _big_run(50)
    b = [rec(r.sample.config_id, r.sample.doc_id, 5, ("Violence",) if r.sample.config_id == "Violence" else (),
             situation=r.sample.situation) for r in a]
    result = paired_compare(a, b, n_resamples=1000)
    assert result["ci_high"] < 0 and result["p_value"] < 0.01


def test_paired_comparison_refuses_mismatches():
    with pytest.raises(CosaError, match="prompt sets differ"):
        paired_compare(run_a(), run_b()[:-1])
    with pytest.raises(CosaError, match="judged by 'judge-x' but run B by 'judge-y'"):
        paired_compare(run_a(), run_b(judge="judge-y"))
    with pytest.raises(CosaError, match="different rubric versions"):
        paired_compare(run_a(), run_b(hashes={"helpfulness": "other"}))
    with pytest.raises(CosaError, match="cosalign_test/0shot but run B is cosalign_test/5shot"):
        paired_compare(run_a(), run_b(variant="5shot"))


def test_settings_are_checked():
    with pytest.raises(CosaError, match="n_resamples"):
        bootstrap_ci(run_a(), n_resamples=1)
    with pytest.raises(CosaError, match="confidence"):
        bootstrap_ci(run_a(), confidence=95)
