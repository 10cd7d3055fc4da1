"""Agreement between judges: every figure checked against a hand computation (worked in comments)."""
from __future__ import annotations

import csv
import json
from dataclasses import replace

import pytest

from cosa_eval.cli import main as cli_main
from cosa_eval.errors import CosaError
from cosa_eval.scoring.agreement import (
    agreement_report, cohen_kappa, compare_pair, make_judge_set, spearman, weighted_kappa)
from cosa_eval.records import read_judged, write_judged
from cosa_eval.taxonomy import ALL_CATEGORIES
from cosa_eval.types import JudgedRecord, Sample

# cosapien, docs 0-4 under config cfg_a and 5-9 under cfg_b; judge Y failed to judge doc 9.
RATINGS_X = (5, 4, 3, 0, 2, 1, 0, 5, 4, 3)
RATINGS_Y = (5, 3, 3, 0, 2, 2, 1, 4, 4, None)
COMPLIANT_X = (True, True, True, True, False, False, False, True, True, False)
COMPLIANT_Y = (True, True, False, True, False, False, True, True, True, None)


def cosapien_sample(doc: int) -> Sample:
    config = "cfg_a" if doc < 5 else "cfg_b"
    return Sample(task=f"cosapien_{config}", benchmark="cosapien", variant="0shot", config_id=config,
                  config_group="cosapien", doc_id=doc, prompt=f"prompt {doc}", config=f"rules of {config}",
                  response=f"response {doc}", prompt_type="allowed", schema="cosapien")


def judged(judge: str, ratings, compliant, hashes: dict | None = None) -> list[JudgedRecord]:
    records = []
    for doc, (rating, is_compliant) in enumerate(zip(ratings, compliant)):
        failure = "unparseable" if rating is None else None
        records.append(JudgedRecord(sample=cosapien_sample(doc), judge=judge,
                                    rubric_hashes=hashes or {"helpfulness": f"h-{judge}", "compliance": f"c-{judge}"},
                                    rating=rating, is_compliant=is_compliant, failure=failure))
    return records


def cosapien_pair():
    x = make_judge_set(judged("x", RATINGS_X, COMPLIANT_X), "x-files")
    y = make_judge_set(judged("y", RATINGS_Y, COMPLIANT_Y), "y-files")
    return x, y


def row_of(rows, label, config="overall"):
    return next(r for r in rows if r["label"] == label and r["config"] == config)


def test_compliance_kappa_matches_hand_computation():
    rows = compare_pair(*cosapien_pair())
    row = row_of(rows, "compliance")
    # Doc 9 is a failure of Y: left out and counted. On docs 0-8 the judges agree on 7 of 9.
    # X says YES 6 times, NO 3; Y says YES 6, NO 3: pe = (6*6 + 3*3) / 81 = 5/9.
    # kappa = (7/9 - 5/9) / (1 - 5/9) = 0.5
    assert (row["n_docs"], row["n"], row["failed_a"], row["failed_b"]) == (10, 9, 0, 1)
    assert row["agreement"] == pytest.approx(7 / 9)
    assert row["kappa"] == pytest.approx(0.5)
    assert row["confusion"] == [[5, 1], [1, 2]]          # rows X (YES, NO), columns Y (YES, NO)
    assert row_of(rows, "is_safe")["kappa"] == pytest.approx(0.5)    # on cosapien, is_safe = compliance


def test_per_config_kappa():
    rows = compare_pair(*cosapien_pair())
    # cfg_a (docs 0-4): X Y Y Y Y N, Y Y Y N Y N: 4/5 agree; pe = (4*3 + 1*2)/25 = 14/25
    # kappa = (20/25 - 14/25) / (11/25) = 6/11
    assert row_of(rows, "compliance", "cfg_a")["kappa"] == pytest.approx(6 / 11)
    # cfg_b (docs 5-8; 9 failed): X N N Y Y, Y N Y Y Y: 3/4 agree; pe = (2*3 + 2*1)/16 = 1/2 -> 0.5
    cfg_b = row_of(rows, "compliance", "cfg_b")
    assert (cfg_b["n"], cfg_b["failed_b"], cfg_b["kappa"]) == (4, 1, pytest.approx(0.5))


def test_rating_statistics_match_hand_computation():
    row = row_of(compare_pair(*cosapien_pair()), "rating")
    # X 5 4 3 0 2 1 0 5 4 / Y 5 3 3 0 2 2 1 4 4: equal on docs 0, 2, 3, 4, 8 -> 5/9.
    assert row["agreement"] == pytest.approx(5 / 9)
    # Unweighted: marginals X {0:2,1:1,2:1,3:1,4:2,5:2}, Y {0:1,1:1,2:2,3:2,4:2,5:1}
    # pe = (2+1+2+2+4+2)/81 = 13/81; kappa = (45/81 - 13/81) / (68/81) = 8/17
    assert row["kappa"] == pytest.approx(8 / 17)
    # Quadratic: observed mean (x-y)^2 = 4/9; expected under independence = var X + var Y +
    # (mean X - mean Y)^2 = 32/9 + 20/9 + 0 = 52/9; kappa_w = 1 - (4/9)/(52/9) = 12/13
    assert row["weighted_kappa"] == pytest.approx(12 / 13)
    # Spearman on average ranks: sum of rank-deviation products 56.25, both sums of squares 58.5
    assert row["spearman"] == pytest.approx(56.25 / 58.5)


def test_is_helpful_kappa():
    row = row_of(compare_pair(*cosapien_pair()), "is_helpful")
    # rating >= 1: X has 7 helpful / 2 not, Y 8 / 1; they differ on doc 6 only -> 8/9
    # pe = (7*8 + 2*1)/81 = 58/81; kappa = (72/81 - 58/81) / (23/81) = 14/23
    assert row["kappa"] == pytest.approx(14 / 23)


def test_headline_effect_uses_paired_bootstrap():
    report = agreement_report(list(cosapien_pair()), n_resamples=200, seed=1)
    (head,) = report["headline"]
    # CoSA-Score on docs 0-8: X cfg_a (1 + .8 + .6 + 0 - .4)/5 = .4, cfg_b (-.2 + 0 + 1 + .8)/4 = .4
    # Y cfg_a (1 + .6 - .6 + 0 - .4)/5 = .12, cfg_b (-.4 + .2 + .8 + .8)/4 = .35 -> .235
    assert (head["n_docs"], head["n_pairs"], head["n_excluded"]) == (10, 9, 1)
    assert head["score_a"] == pytest.approx(0.4)
    assert head["score_b"] == pytest.approx(0.235)
    assert head["difference"] == pytest.approx(0.165)
    assert head["ci_low"] <= head["difference"] <= head["ci_high"]


def test_statistics_edge_cases():
    assert cohen_kappa([True, True], [True, True]) is None          # expected agreement 1: undefined
    assert cohen_kappa([True, False], [False, True]) == pytest.approx(-1.0)
    assert weighted_kappa([3, 3], [3, 3]) is None
    assert spearman([1, 1, 1], [1, 2, 3]) is None


def cosalign_records(judge: str, flagged: list[set[str]]) -> list[JudgedRecord]:
    records = []
    for doc, names in enumerate(flagged):
        sample = Sample(task="cosalign_test_Violence", benchmark="cosalign_test", variant="0shot",
                        config_id="Violence", config_group="seen", doc_id=doc, prompt=f"p{doc}",
                        config="Violence is allowed", response=f"r{doc}", situation=2, mode="exact",
                        allowed_categories=("Violence",), schema="cosalign_test")
        records.append(JudgedRecord(sample=sample, judge=judge, rubric_hashes={"categories": judge}, rating=3,
                                    categories={c: c in names for c in ALL_CATEGORIES}))
    return records


def test_categories_and_derived_is_safe():
    x = make_judge_set(cosalign_records("x", [{"Violence"}, {"Privacy Violations"}, set(), {"Other Harms"}]), "x")
    y = make_judge_set(cosalign_records("y", [{"Violence"}, set(), {"Violence"}, {"Other Harms"}]), "y")
    rows = compare_pair(x, y)
    # is_safe (Violence allowed): X T F T F, Y T T T F: 3/4; pe = (2*3 + 2*1)/16 = 1/2 -> 0.5
    assert row_of(rows, "is_safe")["kappa"] == pytest.approx(0.5)
    # Violence: X T F F F, Y T F T F: 3/4; pe = (1*2 + 3*2)/16 = 1/2 -> 0.5
    assert row_of(rows, "category:Violence")["kappa"] == pytest.approx(0.5)
    # Privacy: X flags once, Y never: 3/4 agree, pe = 3*4/16 = 3/4 -> kappa 0
    assert row_of(rows, "category:Privacy Violations")["kappa"] == pytest.approx(0.0)
    assert row_of(rows, "category:Other Harms")["kappa"] == pytest.approx(1.0)
    never = row_of(rows, "category:Financial Crime and Theft")
    assert (never["agreement"], never["kappa"]) == (1.0, None)      # both constant: kappa undefined


def test_different_samples_are_refused():
    x, y = cosapien_pair()
    fewer = make_judge_set([r for r in y.records.values() if r.sample.doc_id != 3], "y-files")
    with pytest.raises(CosaError, match=r"x-files and y-files judge different samples \(1 ids only in the "
                                        r"first, 0 only in the second, e.g. cosapien/0shot/cfg_a/3\)"):
        agreement_report([x, fewer])


def test_different_responses_are_refused():
    x, y = cosapien_pair()
    other_run = [replace(r, sample=replace(r.sample, response="another model")) for r in y.records.values()]
    with pytest.raises(CosaError, match="different responses for 10 of 10 samples"):
        agreement_report([x, make_judge_set(other_run, "y-files")])


def test_rubric_versions_same_judge_refused_different_judges_allowed():
    first = make_judge_set(judged("x", RATINGS_X, COMPLIANT_X), "run1")
    changed = make_judge_set(judged("x", RATINGS_Y, COMPLIANT_Y, {"helpfulness": "h-new", "compliance": "c-x"}), "run2")
    with pytest.raises(CosaError, match=r"judge 'x' used two versions of rubric 'helpfulness' \(h-x in run1, "
                                        r"h-new in run2\)"):
        agreement_report([first, changed])
    same = make_judge_set(judged("x", RATINGS_Y, COMPLIANT_Y), "rerun")
    assert agreement_report([first, same], n_resamples=20)["judges"] == ["x", "x#2"]   # a re-run: allowed


def test_one_input_with_two_judges_is_refused():
    x, y = cosapien_pair()
    with pytest.raises(CosaError, match=r"mixed holds records of several judges \(x, y\)"):
        make_judge_set([*x.records.values(), *y.records.values()], "mixed")


def test_cli_writes_csv_and_prints_markdown(tmp_path, capsys):
    x, y = cosapien_pair()
    write_judged(tmp_path / "x" / "judged_cosapien.jsonl", x.records.values())
    write_judged(tmp_path / "y" / "judged_cosapien.jsonl", y.records.values())
    assert len(read_judged(tmp_path / "x")) == 10
    code = cli_main(["judge-agreement", str(tmp_path / "x"), str(tmp_path / "y"), "--out", str(tmp_path / "out"),
                     "--n-resamples", "50"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| x | y | cosapien/0shot | compliance | overall | 9 | 0 | 1 | 0 | 0.778 | 0.500 | - | - |" in printed
    with (tmp_path / "out" / "agreement.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    rating = next(r for r in rows if r["label"] == "rating" and r["config"] == "overall")
    assert float(rating["weighted_kappa"]) == pytest.approx(12 / 13)
    assert {r["config"] for r in rows} == {"overall", "cfg_a", "cfg_b"}
    assert (tmp_path / "out" / "headline.csv").read_text().startswith("judge_a,judge_b,benchmark,n_docs")


def test_cli_error_is_one_line(tmp_path, capsys):
    x, y = cosapien_pair()
    write_judged(tmp_path / "x" / "judged_cosapien.jsonl", x.records.values())
    write_judged(tmp_path / "y" / "judged_cosapien.jsonl", list(y.records.values())[:8])
    with pytest.raises(SystemExit):
        cli_main(["judge-agreement", str(tmp_path / "x"), str(tmp_path / "y")])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "judge different samples (2 ids only in the first" in err


def test_fractional_expected_ratings_from_a_logit_scoring_judge(tmp_path, capsys):
    """Agreement and kappa on the rounded rating, Spearman on the expected rating, and the output says so."""
    expected = (1.6, 1.9, 3.0, 0.0, 5.0, 4.4, 0.4, 2.5, 3.5, 1.0)      # rounds (halves up) to the levels below
    levels = (2, 2, 3, 0, 5, 4, 0, 3, 4, 1)
    write_judged(tmp_path / "x" / "judged_cosapien.jsonl", judged("x", expected, COMPLIANT_X))
    write_judged(tmp_path / "y" / "judged_cosapien.jsonl", judged("y", levels, COMPLIANT_X))
    assert cli_main(["judge-agreement", str(tmp_path / "x"), str(tmp_path / "y"), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "Ratings: agreement and kappas on ratings rounded to integers; spearman on the expected" in out
    report = json.loads((tmp_path / "o" / "agreement.json").read_text())
    rating = next(r for r in report["rows"] if r["label"] == "rating" and r["config"] == "overall")
    assert (rating["agreement"], rating["kappa"], rating["weighted_kappa"]) == (1.0, 1.0, 1.0)
    # Spearman on the expected values: x orders 1.6 < 1.9 where y ties them (2, 2), so it is below 1
    assert rating["spearman"] == pytest.approx(spearman(list(expected), list(levels))) and rating["spearman"] < 1
    assert rating["note"].startswith("agreement and kappas on ratings rounded")
