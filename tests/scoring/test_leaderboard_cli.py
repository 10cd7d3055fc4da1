"""`cosa-eval leaderboard add/render/compare` end to end on two fixture runs."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from scoring_harness import leaderboard, snapshot
from cosa_eval import __version__
from cosa_eval.scoring import tables
from scoring_fixtures import cosapien_run, run_a, run_b, write_run

REPO_RESULTS = Path(__file__).resolve().parents[2] / "results"


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    """A copy of the shipped results/ folder (headers + the paper's rows)."""
    return Path(shutil.copytree(REPO_RESULTS, tmp_path / "results"))


@pytest.fixture()
def runs(tmp_path: Path) -> dict[str, Path]:
    return {
        "a": write_run(tmp_path / "run-a", run_a() + cosapien_run(), "model-a", "pretrained=a"),
        "b": write_run(tmp_path / "run-b", run_b(), "model-b", "pretrained=b"),
    }


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _row(rows: list[dict[str, str]], **match: str) -> dict[str, str]:
    found = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


def test_add_and_render_end_to_end(runs, results, capsys):
    assert leaderboard("add", runs["a"], runs["b"], "--results", results, "--min-valid-rate", "0",
                       "--allow-partial") == 0
    assert leaderboard("render", "--results", results) == 0
    board = _rows(results / "leaderboard.csv")
    assert len(board) == 3
    a = _row(board, model="model-a", benchmark="cosalign_test")
    # hand computation in test_metrics.py: 0.411111 overall, seen 0.116667, unseen 1, ...
    assert {k: a[k] for k in ("cosa_score", "seen_cosa_score", "unseen_cosa_score", "valid_rate", "n",
                              "n_valid", "failures", "helpful_safe", "helpful_unsafe", "over_refusal")} == {
        "cosa_score": "0.411111", "seen_cosa_score": "0.116667", "unseen_cosa_score": "1",
        "valid_rate": "0.75", "n": "10", "n_valid": "8", "failures": "api_error=1;unparseable=1",
        "helpful_safe": "0.527778", "helpful_unsafe": "0.194444", "over_refusal": "0.166667"}
    # seen cells: safe (1/3, 1/3) and Violence (1/4, 1/4) -> (1/3 + 1/4) / 2 = 0.291667 each
    assert (a["seen_helpful_safe"], a["seen_helpful_unsafe"]) == ("0.291667", "0.291667")
    assert (a["model_args"], a["judge"], a["scoring"], a["source"]) == ("pretrained=a", "judge-x", "standard", "measured")
    assert (a["lm_eval_version"], a["date"], a["cosa_eval_version"]) == ("0.4.9", "2023-11-14T22:13:20Z", __version__)
    assert a["rubric_hashes"] == "categories=c222;helpfulness=h111"
    assert float(a["cosa_score_ci_low"]) <= 0.411111 <= float(a["cosa_score_ci_high"])
    assert (a["bootstrap_resamples"], a["bootstrap_seed"]) == ("1000", "0")
    # run B: safe (1+1+0+0)/4 = 0.5, Violence 0.5, Sexual 1 -> (0.5 + 0.5 + 1) / 3 = 0.666667
    assert _row(board, model="model-b")["cosa_score"] == "0.666667"
    assert _row(board, model="model-a", benchmark="cosapien")["cosa_score"] == "0.4"
    configs = _rows(results / "leaderboard_by_config.csv")
    assert len(configs) == 3 + 3 + 2
    violence = _row(configs, model="model-a", config_id="Violence")
    assert (violence["cosa_score"], violence["over_refusal"], violence["violations"]) == \
        ("0.1", "0.5", "Other Harms=1;Privacy Violations=1")
    markdown = (results / "leaderboard.md").read_text(encoding="utf-8")
    assert ("| model-a \\[partial: 3 of 8 configs; 10 of 3200 documents\\] | 0shot | judge-x | standard | measured "
            "| 10 | 75.0% | 0.411 [") in markdown
    assert "| L3.1-8B-Inst+CoSAlign | 0shot | gpt-4o (paper) |" in markdown and "0.408" in markdown
    page = (results / "leaderboard.html").read_text(encoding="utf-8")
    assert "model-a" in page and "<script>" in page
    assert "http://" not in page and "https://" not in page and "<link rel=\"stylesheet\"" not in page
    plot = (results / "leaderboard.png").read_bytes()
    assert plot[:8] == b"\x89PNG\r\n\x1a\n" and len(plot) > 20_000
    assert "model-a cosalign_test/0shot judge judge-x: CoSA-Score 0.411111" in capsys.readouterr().out


def test_adding_a_run_again_updates_its_rows(runs, results, tmp_path):
    assert leaderboard("add", runs["a"], runs["b"], "--results", results, "--min-valid-rate", "0",
                       "--allow-partial") == 0
    before = snapshot(results)
    assert leaderboard("add", runs["a"], "--results", results, "--min-valid-rate", "0", "--allow-partial") == 0
    assert snapshot(results) == before  # same run, same seed: byte-identical
    rejudged = write_run(tmp_path / "run-a2", run_b(), "model-a", "pretrained=a")
    assert leaderboard("add", rejudged, "--results", results, "--allow-partial") == 0
    board = _rows(results / "leaderboard.csv")
    assert len(board) == 3
    assert _row(board, model="model-a", benchmark="cosalign_test")["cosa_score"] == "0.666667"
    assert len(_rows(results / "leaderboard_by_config.csv")) == 8


def test_model_name_from_option_when_no_results_json(tmp_path, results, capsys):
    folder = write_run(tmp_path / "judged-only", run_b())
    before = snapshot(results)
    assert leaderboard("add", folder, "--results", results) == 2
    assert "pass --model NAME" in capsys.readouterr().err
    assert snapshot(results) == before
    assert leaderboard("add", folder / "judged_cosalign_test_0shot.jsonl", "--model", "m", "--results", results,
                       "--allow-partial") == 0
    assert _row(_rows(results / "leaderboard.csv"), model="m")["model_args"] == ""


def test_cascade_oracle_rows_are_kept_apart(runs, results):
    assert leaderboard("add", runs["b"], "--results", results, "--allow-partial") == 0
    assert leaderboard("add", runs["a"], "--cascade-oracle", "--results", results, "--min-valid-rate", "0",
                       "--allow-partial") == 0
    board = _rows(results / "leaderboard.csv")
    # Cascade-Oracle overall (test_metrics.py): (1/3 + 0.2 + 1) / 3 = 0.511111
    assert _row(board, model="model-a", benchmark="cosalign_test", scoring="cascade_oracle")["cosa_score"] == "0.511111"


def test_compare_prints_the_paired_difference(runs, capsys):
    judged_a = runs["a"] / "judged_cosalign_test_0shot.jsonl"
    assert leaderboard("compare", judged_a, runs["b"], "--resamples", "500") == 0
    out = capsys.readouterr().out
    # hand computation in test_bootstrap.py: A - B = -0.311111
    assert "A - B = -0.3111" in out and "p = " in out and "8 of 10 prompts" in out
    assert leaderboard("compare", judged_a, runs["b"], "--json") == 0
    assert json.loads(capsys.readouterr().out)[0]["difference"] == pytest.approx(-0.311111, abs=1e-6)


def test_atomic_write_leaves_files_untouched_when_writing_fails(runs, results, monkeypatch):
    assert leaderboard("add", runs["b"], "--results", results, "--allow-partial") == 0
    before = snapshot(results)
    calls = {"n": 0}
    real = csv.DictWriter.writerow

    def failing(self, row):
        calls["n"] += 1
        if calls["n"] > 5:
            raise OSError("disk full")
        return real(self, row)

    monkeypatch.setattr(csv.DictWriter, "writerow", failing)
    with pytest.raises(OSError):
        leaderboard("add", runs["a"], "--results", results, "--min-valid-rate", "0", "--allow-partial")
    assert snapshot(results) == before  # no partial table, no temp file left


def test_csv_schema_matches_the_readme():
    readme = (REPO_RESULTS / "README.md").read_text(encoding="utf-8")
    for column in (*tables.LEADERBOARD_COLUMNS, *tables.BY_CONFIG_COLUMNS):
        assert f"`{column}`" in readme or column in ("seen_cosa_score_ci_low", "seen_cosa_score_ci_high",
                                                    "unseen_cosa_score_ci_low", "unseen_cosa_score_ci_high")
    for path in (REPO_RESULTS / tables.LEADERBOARD, REPO_RESULTS / tables.BY_CONFIG, tables.PAPER_PATH):
        tables.read_table(path, *(
            (tables.BY_CONFIG_COLUMNS, tables.BY_CONFIG_KEY) if path.name == tables.BY_CONFIG
            else (tables.LEADERBOARD_COLUMNS, tables.KEY)))


def test_paper_rows_hold_the_reference_figures():
    rows = _rows(tables.PAPER_PATH)
    assert {r["source"] for r in rows} == {"reported"}
    inst = _row(rows, model="L3.1-8B-Inst+ICA", benchmark="cosalign_test")
    assert (inst["seen_cosa_score"], inst["unseen_cosa_score"], inst["seen_helpful_safe"]) == ("0.182", "0.091", "0.237")
    cosalign = _row(rows, model="L3.1-8B-Inst+CoSAlign", benchmark="cosalign_test")
    assert (cosalign["seen_cosa_score"], cosalign["unseen_cosa_score"]) == ("0.408", "0.293")
    human = _row(rows, model="L3.1-8B-Inst+CoSAlign", benchmark="cosapien")
    assert (human["cosa_score"], human["judge"], human["helpful_safe"]) == ("0.597", "human (paper)", "0.77")
    assert len([r for r in rows if r["reference"] == "Table 3"]) == 15
    # Table 1's overall equals the unweighted 8-config mean of the family table's seen/unseen
    mini = _row(rows, model="GPT-4o-mini+ICA")
    assert float(mini["cosa_score"]) == pytest.approx((5 * 0.275 + 3 * 0.212) / 8, abs=5e-4)


def test_through_the_cosa_eval_entry_point(runs, results, capsys):
    """The same through cosa_eval.cli."""
    from cosa_eval import cli

    assert cli.main(["leaderboard", "add", str(runs["b"]), "--results", str(results), "--allow-partial"]) == 0
    assert _row(_rows(results / "leaderboard.csv"), model="model-b")["cosa_score"] == "0.666667"
    with pytest.raises(SystemExit) as stop:
        cli.main(["leaderboard", "compare", str(runs["a"]), str(runs["b"])])
    assert stop.value.code == 2 and "compare runs of the same tasks" in capsys.readouterr().err


def test_shipped_views_match_the_shipped_csvs(tmp_path):
    """results/leaderboard.md and .html are re-rendered whenever a CSV changes."""
    assert leaderboard("render", "--results", REPO_RESULTS, "--out", tmp_path) == 0
    for name in ("leaderboard.md", "leaderboard.html"):
        assert (tmp_path / name).read_bytes() == (REPO_RESULTS / name).read_bytes(), \
            f"results/{name} is stale: run 'cosa-eval leaderboard render'"


def test_judge_output_folder_alone_names_its_model(tmp_path, results):
    """'cosa-eval judge' writes cosa_judged_<judge>/ with judge_run.json holding lm_eval's run info."""
    out = write_run(tmp_path / "run" / "cosa_judged_judge-x", run_b())
    info = {"judge": "judge-x", "run": {"model": "model-j", "model_args": "pretrained=j",
                                        "lm_eval_version": "0.4.9", "date": 1_700_000_000.0}}
    (out / "judge_run.json").write_text(json.dumps(info), encoding="utf-8")
    assert leaderboard("add", out, "--results", results, "--allow-partial") == 0
    row = _row(_rows(results / "leaderboard.csv"), model="model-j")
    assert (row["model_args"], row["date"], row["cosa_score"]) == ("pretrained=j", "2023-11-14T22:13:20Z", "0.666667")
