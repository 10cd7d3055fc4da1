"""A row is the benchmark it says it is: partial runs are refused or marked, and so is a judge that
does not tell answers apart, in the CSV, the markdown, the HTML page and the plot."""
from __future__ import annotations

import csv
import json

import pytest

from cosa_eval.scoring.coverage import judge_caveat, partial_reason
from cosa_eval.scoring.plot import build_figure
from cosa_eval.scoring.render import load_board, markdown_text
from scoring_fixtures import rec, write_run
from scoring_harness import leaderboard

COSAPIEN = ("game_development", "public_prosecutor", "book_publisher_arab", "language_learning", "film_production")


def whole_cosapien(rating=lambda n: n % 6) -> list:
    """Every document CoSApien declares (5 configs x 40), judged, ratings spread over 0-5."""
    return [rec(config, n, rating(n), compliant=n % 3 > 0, prompt_type="allowed", benchmark="cosapien")
            for config in COSAPIEN for n in range(40)]


def test_the_whole_benchmark_is_complete_and_a_cut_one_says_why():
    records = whole_cosapien()
    assert partial_reason(records, {}) == ""
    assert partial_reason(records[:80], {}) == "2 of 5 configs; 80 of 200 documents"
    assert partial_reason(records, {"limit": 40}) == "lm_eval --limit 40"
    counts = {f"cosapien_{c}": {"original": 40, "effective": 40} for c in COSAPIEN}
    counts["cosapien_film_production"]["effective"] = 39
    assert partial_reason(records[:-1], {"n_samples": counts}) == ("lm_eval --samples kept 199 of 200 documents; "
                                                                   "199 of 200 documents")


def test_a_judge_that_gives_every_answer_the_same_rating_is_flagged():
    assert judge_caveat(whole_cosapien()) == ""
    flagged = judge_caveat(whole_cosapien(rating=lambda n: 3.1 + n % 2 / 10))
    assert flagged == "every rating within 0.10: the judge does not tell answers apart"


def test_a_complete_run_is_added_unmarked(tmp_path):
    run = write_run(tmp_path / "run", whole_cosapien(), "model-a")
    assert leaderboard("add", run, "--results", tmp_path / "results") == 0
    [row] = csv.DictReader((tmp_path / "results" / "leaderboard.csv").open())
    assert row["partial"] == row["judge_caveat"] == ""


def test_a_partial_run_is_refused_unless_allowed(tmp_path, capsys):
    run = write_run(tmp_path / "run", whole_cosapien()[:80], "model-a")
    results = tmp_path / "results"
    assert leaderboard("add", run, "--results", results) == 2
    error = capsys.readouterr().err
    assert "cosapien/0shot is partial (2 of 5 configs; 80 of 200 documents)" in error and "--allow-partial" in error
    assert not results.exists()


@pytest.mark.parametrize("cut", ["limit", "flat judge"])
def test_marked_rows_are_marked_beside_the_paper_rows_in_every_view(tmp_path, cut):
    flat = cut == "flat judge"
    run = write_run(tmp_path / "run", whole_cosapien(rating=lambda n: 2 if flat else n % 6), "model-a")
    if not flat:
        results_json = next(run.glob("results_*.json"))
        data = json.loads(results_json.read_text())
        data["config"]["limit"] = 40.0
        results_json.write_text(json.dumps(data))
    results = tmp_path / "results"
    assert leaderboard("add", run, "--results", results, *([] if flat else ["--allow-partial"])) == 0
    assert leaderboard("render", "--results", results) == 0
    mark = "every rating within 0.00: the judge does not tell answers apart" if flat else "partial: lm_eval --limit 40"
    markdown, html = (results / "leaderboard.md").read_text(), (results / "leaderboard.html").read_text()
    section = markdown.split("## CoSApien (human-authored, 5 configs)")[1]
    assert markdown_text(f"model-a [{mark}]") in section and "(paper)" in section   # beside Table 4's rows, marked
    assert f"model-a [{mark}]" in html
    labels = [t.get_text().replace("\n", " ") for axis in build_figure(load_board(results)).axes
              for t in axis.get_yticklabels()]
    short = "judge cannot tell answers apart" if flat else "partial"
    assert [label for label in labels if "model-a" in label][0].endswith(f"[{short}]")
