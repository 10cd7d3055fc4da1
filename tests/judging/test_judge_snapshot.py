"""The judge that answered is recorded: the model snapshot and system_fingerprint of every answer."""
from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from judging_helpers import cosalign_samples, write_judge, write_samples_file
from cosa_eval.cli import main
from cosa_eval.judging.backends.base import JudgeResponse
from cosa_eval.judging.cache import JudgeCache
from cosa_eval.judging.config import load_judge_config
from cosa_eval.records import read_judged

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT_A, SNAPSHOT_B = "judge-model-2024-08-06", "judge-model-2024-11-20"


def cli(*argv) -> int:
    try:
        return main([str(a) for a in argv])
    except SystemExit as stop:
        return int(stop.code)


def test_the_shipped_gpt4o_judge_names_a_dated_snapshot():
    assert re.fullmatch(r"gpt-4o-\d{4}-\d{2}-\d{2}", load_judge_config(ROOT / "judges/gpt-4o/judge.yaml").model)


def test_every_answer_records_its_snapshot_in_cache_records_run_and_scores(
        judge_server, tmp_path, cache_path, cosalign_rows, capsys):
    judge_server.set(snapshot=SNAPSHOT_A, fingerprint="fp_aaa")
    write_samples_file(tmp_path / "run", cosalign_samples(cosalign_rows, 0, 3200)[::400])
    out = tmp_path / "out"
    assert cli("judge", tmp_path / "run", "--judge", write_judge(tmp_path / "judges"), "--output", out,
               "--no-progress") == 0
    with sqlite3.connect(cache_path) as db:
        assert set(db.execute("SELECT model, system_fingerprint FROM answers")) == {(SNAPSHOT_A, "fp_aaa")}
    for record in read_judged(out):
        assert record.extra["answered_by"] == {
            rubric: {"model": SNAPSHOT_A, "system_fingerprint": "fp_aaa"} for rubric in ("helpfulness", "categories")}
    run = json.loads((out / "judge_run.json").read_text())
    assert run["answered_by"] == {SNAPSHOT_A: {"answers": 16, "system_fingerprints": ["fp_aaa"]}}
    assert run["is_mixed_judge"] is False
    assert {s["judge_snapshot"] for s in json.loads((out / "scores.json").read_text()).values()} == {SNAPSHOT_A}
    assert f"answered by {SNAPSHOT_A}" in capsys.readouterr().err
    results = tmp_path / "results"
    assert cli("leaderboard", "add", "--allow-partial", out, "--model", "m", "--results", results) == 0
    assert SNAPSHOT_A in (results / "leaderboard.csv").read_text()


def test_a_run_answered_by_two_snapshots_says_so_and_the_leaderboard_refuses_it(
        judge_server, tmp_path, cache_path, cosalign_rows, capsys):
    samples = cosalign_samples(cosalign_rows, 0, 3200)[::400]
    judge = write_judge(tmp_path / "judges")
    judge_server.set(snapshot=SNAPSHOT_A)
    write_samples_file(tmp_path / "half", samples[:4])
    assert cli("judge", tmp_path / "half", "--judge", judge, "--output", tmp_path / "a", "--no-progress") == 0
    judge_server.set(snapshot=SNAPSHOT_B)          # the alias moved on; the cache still holds A's answers
    write_samples_file(tmp_path / "run", samples)
    out = tmp_path / "out"
    capsys.readouterr()
    assert cli("judge", tmp_path / "run", "--judge", judge, "--output", out, "--no-progress") == 0
    err = capsys.readouterr().err
    assert "answered by 2 snapshots" in err and SNAPSHOT_A in err and SNAPSHOT_B in err
    run = json.loads((out / "judge_run.json").read_text())
    assert run["is_mixed_judge"] is True and set(run["answered_by"]) == {SNAPSHOT_A, SNAPSHOT_B}
    results = tmp_path / "results"
    assert cli("leaderboard", "add", "--allow-partial", out, "--model", "m", "--results", results) == 2
    err = capsys.readouterr().err
    assert err.startswith("cosa-eval: error:") and err.count("\n") == 1 and "--allow-mixed-judge" in err
    assert not (results / "leaderboard.csv").exists()
    assert cli("leaderboard", "add", "--allow-partial", out, "--model", "m", "--results", results, "--allow-mixed-judge") == 0
    board = (results / "leaderboard.csv").read_text()
    assert f"{SNAPSHOT_A}+{SNAPSHOT_B}" in board


def test_a_cache_written_before_snapshots_were_recorded_stays_readable(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE answers (key TEXT PRIMARY KEY, rubric TEXT NOT NULL, text TEXT, choice_probs TEXT, "
                   "failure TEXT, detail TEXT NOT NULL DEFAULT '', input_tokens INTEGER NOT NULL DEFAULT 0, "
                   "output_tokens INTEGER NOT NULL DEFAULT 0, cost_usd REAL NOT NULL DEFAULT 0, "
                   "seconds REAL NOT NULL DEFAULT 0, created REAL NOT NULL)")
        db.execute("INSERT INTO answers (key, rubric, text, created) VALUES ('old', 'helpfulness', 'Rating: [[3]]', 1)")
    with JudgeCache(path) as cache:
        old = cache.get_many(["old"])["old"]
        assert old.text == "Rating: [[3]]" and (old.model, old.system_fingerprint) == ("", "")
        cache.put("new", "helpfulness", JudgeResponse(text="Rating: [[4]]", model=SNAPSHOT_A, system_fingerprint="fp"))
        assert cache.get_many(["new"])["new"].model == SNAPSHOT_A
    with JudgeCache(path) as cache:                 # opening it again migrates nothing twice
        assert len(cache) == 2
