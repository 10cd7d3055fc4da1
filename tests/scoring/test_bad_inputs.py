"""Bad inputs: one-line CosaError naming the file (and row/column), exit 2, and no byte changed."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scoring_harness import leaderboard, snapshot
from cosa_eval.scoring import tables
from scoring_fixtures import SAFE, cosapien_run, rec, run_a, run_b, write_jsonl, write_run

REPO_RESULTS = Path(__file__).resolve().parents[2] / "results"


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    """results/ after one successful add, so every table has rows to protect."""
    folder = Path(shutil.copytree(REPO_RESULTS, tmp_path / "results"))
    run = write_run(tmp_path / "run-b", run_b(), "model-b", "pretrained=b")
    assert leaderboard("add", run, "--results", folder, "--allow-partial") == 0
    return folder


def _fails(capsys, results: Path, *argv, expect: str) -> str:
    before = snapshot(results)
    assert leaderboard(*argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cosa-eval: error: ") and err.count("\n") == 1, err
    assert expect in err, err
    assert snapshot(results) == before
    return err


def test_non_cosa_jsonl(tmp_path, results, capsys):
    other = tmp_path / "other" / "judged_mmlu.jsonl"
    other.parent.mkdir()
    other.write_text(json.dumps({"doc_id": 0, "acc": 1.0}) + "\n", encoding="utf-8")
    _fails(capsys, results, "add", other.parent, "--model", "m", "--results", results, expect=str(other))
    not_json = tmp_path / "notjson.jsonl"
    not_json.write_text("hello\n", encoding="utf-8")
    _fails(capsys, results, "add", not_json, "--model", "m", "--results", results, expect=f"{not_json}: line 1")


def test_record_of_an_undeclared_schema(tmp_path, results, capsys):
    """A benchmark of the user's own must declare its schema; only the shipped names imply one."""
    row = rec(SAFE, 0, 5).to_dict() | {"benchmark": "mmlu", "sample_id": "mmlu/0shot/safe/0"}
    del row["schema"]
    path = tmp_path / "judged_mmlu.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    _fails(capsys, results, "add", path, "--model", "m", "--results", results,
           expect=f"{path}: line 1: field 'schema' is missing and benchmark 'mmlu' is not a shipped one")


def test_empty_run(tmp_path, results, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    _fails(capsys, results, "add", empty, "--model", "m", "--results", results, expect=f"no judged_*.jsonl under {empty}")
    blank = write_jsonl(tmp_path / "blank" / "judged_cosalign_test.jsonl", [])
    _fails(capsys, results, "add", blank.parent, "--model", "m", "--results", results, expect=f"{blank} holds no judged records")
    missing = tmp_path / "missing"
    _fails(capsys, results, "add", missing, "--results", results, expect=f"{missing} does not exist")


def test_run_without_any_valid_verdict(tmp_path, results, capsys):
    run = write_run(tmp_path / "failed", [rec(SAFE, 0, failure="api_error")], "model-f")
    _fails(capsys, results, "add", run, "--results", results, expect="no valid judged response")


def test_mixed_rubrics_and_duplicate_rows(tmp_path, results, capsys):
    mixed = write_run(tmp_path / "mixed", run_a() + [rec(SAFE, 9, 5, hashes={"helpfulness": "new"})], "model-m")
    _fails(capsys, results, "add", mixed, "--results", results, expect="different rubric versions")
    run = write_run(tmp_path / "twice", run_b(), "model-t")
    _fails(capsys, results, "add", run, run, "--results", results, expect="both give the row")


def test_compare_refuses_different_judges_benchmarks_and_prompts(tmp_path, results, capsys):
    a = write_run(tmp_path / "a", run_a(), "model-a")
    b_other_judge = write_run(tmp_path / "b", run_b(judge="judge-y"), "model-b")
    _fails(capsys, results, "compare", a, b_other_judge, expect="judged by 'judge-x' but run B by 'judge-y'")
    b_more = write_run(tmp_path / "c", run_b() + cosapien_run(), "model-c")
    _fails(capsys, results, "compare", a, b_more, expect="compare runs of the same tasks")
    b_fewer = write_run(tmp_path / "d", run_b()[:-1], "model-d")
    _fails(capsys, results, "compare", a, b_fewer, expect="prompt sets differ")


def _edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, count), encoding="utf-8")


@pytest.mark.parametrize("action", ["add", "render"])
def test_hand_broken_csvs(tmp_path, results, capsys, action, monkeypatch):
    run = write_run(tmp_path / "run-a", run_a(), "model-a")
    argv = ("add", run, "--results", results) if action == "add" else ("render", "--results", results)
    board = results / "leaderboard.csv"
    pristine = board.read_bytes()
    # a non-numeric score
    _edit(board, ",0.666667,", ",high,")
    err = _fails(capsys, results, *argv, expect=f"{board}: line 2, column 'cosa_score': 'high' is not a number")
    assert "delete the row" in err and "git checkout" in err
    # duplicate keys
    board.write_bytes(pristine + pristine.splitlines(keepends=True)[1])
    _fails(capsys, results, *argv, expect=f"{board}: line 3 repeats the key")
    # a missing column
    lines = pristine.decode().splitlines(keepends=True)
    board.write_text("".join(line.replace(",over_refusal,", ",", 1) if i == 0 else line
                             for i, line in enumerate(lines)), encoding="utf-8")
    _fails(capsys, results, *argv, expect=f"{board}: line 1: missing column(s) over_refusal")
    # a row with a field too many
    board.write_bytes(pristine.rstrip(b"\n") + b",extra\n")
    _fails(capsys, results, *argv, expect=f"{board}: line 2 has more fields")
    # a required cell emptied, and a value outside its choices, in the by-config table
    board.write_bytes(pristine)
    by_config = results / "leaderboard_by_config.csv"
    _edit(by_config, ",measured", ",guessed")
    _fails(capsys, results, *argv, expect=f"{by_config}: line 2, column 'source': 'guessed' is not one of")
    _edit(by_config, ",guessed", ",measured")
    paper = Path(shutil.copy(tables.PAPER_PATH, tmp_path / tables.PAPER))
    monkeypatch.setattr(tables, "PAPER_PATH", paper)
    if action == "render":
        _edit(paper, "L3.1-8B-Inst+ICA,", ",")
        _fails(capsys, results, *argv, expect=f"{paper}: line 2, column 'model' is empty but required")


def test_folder_holding_several_models(tmp_path, results, capsys):
    write_run(tmp_path / "out" / "model-a", run_a(), "model-a")
    write_run(tmp_path / "out" / "model-b", run_b(), "model-b")
    _fails(capsys, results, "add", tmp_path / "out", "--results", results, expect="holds several lm_eval runs")
