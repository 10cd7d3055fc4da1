"""A judge run owns its output folder; a run with unjudged items is visible; the leaderboard checks both."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from judging_helpers import cosalign_samples, cosapien_samples, write_judge, write_samples_file
from cosa_eval.cli import main
from cosa_eval.judging.cli import EXIT_UNJUDGED


def cli(*argv: str | Path) -> int:
    """``cosa-eval ARGV`` in-process; an error's exit status is returned, not raised."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as stop:
        return int(stop.code)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def two_benchmarks(tmp_path, cosalign_rows, cosapien_configs) -> tuple[Path, list[Path]]:
    samples = cosalign_samples(cosalign_rows, 0, 3200)[::400] + cosapien_samples(cosapien_configs)
    files = write_samples_file(tmp_path / "run", samples)
    return tmp_path / "run", files


def test_a_second_run_over_fewer_tasks_is_refused_then_overwrite_removes_the_stale_files(
        judge_server, tmp_path, cache_path, two_benchmarks, capsys):
    folder, files = two_benchmarks
    judge, out = write_judge(tmp_path / "judges"), tmp_path / "out"
    assert cli("judge", folder, "--judge", judge, "--output", out, "--no-progress") == 0
    assert len(list(out.glob("judged_*.jsonl"))) == len(files)
    manifest = json.loads((out / "judge_run.json").read_text())
    assert {s["sha256"] for s in manifest["samples"]} == {f"sha256:{hashlib.sha256(f.read_bytes()).hexdigest()}" for f in files}
    assert manifest["parser"] == "final" and manifest["cosa_eval_version"] and set(manifest["judged_files"]) == \
        {p.name for p in out.glob("judged_*.jsonl")}
    # the same command again is the same run: it resumes in place, from the cache
    sent = judge_server.request_count
    assert cli("judge", folder, "--judge", judge, "--output", out, "--no-progress") == 0
    assert judge_server.request_count == sent
    # a run over one task into the same folder is refused before any call, and changes nothing
    before = snapshot(out)
    one = next(f for f in files if "cosapien" in f.name)
    capsys.readouterr()
    assert cli("judge", one, "--judge", judge, "--output", out, "--no-progress") == 2
    err = capsys.readouterr().err
    assert err.startswith("cosa-eval: error: --output") and "--overwrite" in err and err.count("\n") == 1
    assert snapshot(out) == before and judge_server.request_count == sent
    # --overwrite removes the other run's judged files: the folder holds one run only
    assert cli("judge", one, "--judge", judge, "--output", out, "--overwrite", "--no-progress") == 0
    assert [p.name for p in out.glob("judged_*.jsonl")] == [f"judged_{one.name.split('_2026')[0][8:]}.jsonl"]
    results = tmp_path / "results"
    assert cli("leaderboard", "add", out, "--model", "m", "--results", results, "--allow-partial") == 0
    board = (results / "leaderboard.csv").read_text()
    assert "cosapien" in board and "cosalign_test" not in board


def test_leaderboard_refuses_a_folder_mixing_runs(judge_server, tmp_path, cache_path, two_benchmarks, capsys):
    folder, files = two_benchmarks
    judge = write_judge(tmp_path / "judges")
    cosapien = [f for f in files if "cosapien" in f.name]
    assert cli("judge", *cosapien, "--judge", judge, "--output", tmp_path / "a", "--no-progress") == 0
    assert cli("judge", folder, "--judge", judge, "--output", tmp_path / "b", "--no-progress") == 0
    stray = next(p for p in (tmp_path / "b").glob("judged_cosalign*.jsonl"))
    shutil.copy(stray, tmp_path / "a" / stray.name)           # a file of run b dropped into run a's folder
    results = tmp_path / "results"
    capsys.readouterr()
    assert cli("leaderboard", "add", tmp_path / "a", "--model", "m", "--results", results) == 2
    assert f"{tmp_path / 'a' / stray.name} is not part of the run" in capsys.readouterr().err
    (tmp_path / "a" / stray.name).unlink()
    judged = next((tmp_path / "a").glob("judged_*.jsonl"))
    judged.write_text(judged.read_text().replace('"rating": 5', '"rating": 4'))
    assert cli("leaderboard", "add", tmp_path / "a", "--model", "m", "--results", results) == 2
    assert "was changed after the run" in capsys.readouterr().err
    assert not results.exists()


def test_an_impossible_output_fails_before_any_judge_call(judge_server, tmp_path, cache_path, two_benchmarks, capsys):
    folder, _ = two_benchmarks
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert cli("judge", folder, "--judge", write_judge(tmp_path / "judges"), "--output", blocker / "out") == 2
    err = capsys.readouterr().err
    assert err.startswith("cosa-eval: error: --output") and "is a file, not a folder" in err
    assert judge_server.request_count == 0


def test_unjudged_responses_exit_3_and_the_leaderboard_wants_a_valid_rate(
        judge_server, tmp_path, cache_path, cosalign_rows, capsys):
    samples = cosalign_samples(cosalign_rows, 0, 20)
    write_samples_file(tmp_path / "run", samples)
    doomed = [json.dumps(samples[n].prompt)[1:-1] for n in (3, 4)]
    judge_server.set(fault_rule=lambda number, body: "500" if any(d in json.dumps(body) for d in doomed) else None)
    judge = write_judge(tmp_path / "judges", backend_options={"timeout_s": 1, "max_retries": 0, "backoff_base_s": 0.01})
    out = tmp_path / "out"
    assert cli("judge", tmp_path / "run", "--judge", judge, "--output", out, "--no-progress") == EXIT_UNJUDGED
    err = capsys.readouterr().err
    assert "2 of 20 responses are unjudged" in err and f"exit status {EXIT_UNJUDGED}" in err
    scores = json.loads((out / "scores.json").read_text())
    assert scores["cosalign_test/0shot"]["overall"]["n_valid"] == 18       # the scores are kept
    results = tmp_path / "results"
    assert cli("leaderboard", "add", out, "--model", "m", "--results", results) == 2
    err = capsys.readouterr().err
    assert "valid 18/20 (90.0%), below --min-valid-rate 0.95" in err
    assert not results.exists()
    assert cli("leaderboard", "add", out, "--model", "m", "--results", results, "--min-valid-rate", "0.9",
               "--allow-partial") == 0
    assert "valid 18/20" in capsys.readouterr().out


def test_endpoint_and_parser_are_recorded_in_scores_manifest_and_row(
        judge_server, tmp_path, cache_path, cosalign_rows, monkeypatch, capsys):
    """--judge-endpoint sends the calls there (OPENAI_BASE_URL is a dead port here) and is recorded."""
    write_samples_file(tmp_path / "run", cosalign_samples(cosalign_rows, 0, 5))
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    out, judge = tmp_path / "out", write_judge(tmp_path / "judges")
    assert cli("judge", tmp_path / "run", "--judge", judge, "--output", out, "--judge-endpoint",
               judge_server.base_url, "--parser", "reference", "--no-progress") == 0
    scores = json.loads((out / "scores.json").read_text())["cosalign_test/0shot"]
    assert scores["parser"] == "reference" and judge_server.base_url.split("//")[1] in scores["judge_endpoint"]
    manifest = json.loads((out / "judge_run.json").read_text())
    assert manifest["parser"] == "reference"
    assert judge_server.base_url.split("//")[1] in manifest["judge_identity"]["endpoint"]
    assert "judge_endpoint" not in manifest and "model" not in manifest     # one field, the one that is true
    results = tmp_path / "results"
    assert cli("leaderboard", "add", out, "--model", "m", "--results", results, "--allow-partial") == 0
    assert judge_server.base_url.split("//")[1] in capsys.readouterr().out
    row = (results / "leaderboard.csv").read_text().splitlines()
    assert ",reference," in row[1] and judge_server.base_url.split("//")[1] in row[1]
