"""``cosa-eval judge`` end to end: files written, kill -9 resume, and no key in any written file."""
from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from judging_helpers import SECRET_KEY, cosalign_samples, cosapien_samples, write_judge, write_samples_file
from cosa_eval.judging import load_judge, read_judged
from cosa_eval.judging.judge import sample_item
from cosa_eval.cli import main
from cosa_eval.judging.cli import EXIT_UNJUDGED

ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[str]) -> int:
    return main(["judge", *argv])


def test_cli_writes_judged_files_scores_and_run_info(judge_server, tmp_path, cache_path,
                                                     cosalign_rows, cosapien_configs, capsys):
    samples = cosalign_samples(cosalign_rows, 0, 3200)[::100] + cosapien_samples(cosapien_configs)
    runs = tmp_path / "run"
    write_samples_file(runs / "model", samples)
    judge = write_judge(tmp_path / "judges")
    assert run([str(runs), "--judge", str(judge), "--output", str(tmp_path / "out"), "--no-progress"]) == 0
    out = tmp_path / "out"
    tasks = {s.task for s in samples}
    assert {p.name for p in out.glob("judged_*.jsonl")} == {f"judged_{t}.jsonl" for t in tasks}
    records = read_judged(out)
    assert sorted(r.sample.sample_id for r in records) == sorted(s.sample_id for s in samples)
    row = json.loads((out / f"judged_{samples[0].task}.jsonl").read_text().splitlines()[0])
    for key in ("sample_id", "config", "prompt", "response", "rating", "categories", "h", "s", "failure",
                "judge", "rubric_hashes"):
        assert key in row
    scores = json.loads((out / "scores.json").read_text())
    assert set(scores) == {"cosalign_test/0shot", "cosapien/0shot"}
    assert set(scores["cosalign_test/0shot"]["groups"]) == {"seen", "unseen", "all"}
    info = json.loads((out / "judge_run.json").read_text())
    assert info["judge"] == "local" and set(info["rubric_hashes"]) >= {"helpfulness", "compliance", "categories"}
    shown = capsys.readouterr().out
    assert re.search(r"^cosapien/0shot: CoSA-Score -?\d\.\d{4} \(valid_rate 1\.000\)$", shown, re.M), shown


def test_a_missing_key_names_the_fix_this_command_has(tmp_path, cache_path, cosalign_rows, capsys, monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT", "COSA_JUDGE"):
        monkeypatch.delenv(name, raising=False)
    write_samples_file(tmp_path / "run", cosalign_samples(cosalign_rows, 0, 1))
    with pytest.raises(SystemExit) as stop:
        run([str(tmp_path / "run"), "--judge", "gpt-4o", "--no-progress"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith("cosa-eval: error: no OPENAI_API_KEY: export it; or choose")
    assert "--judge NAME" in err and "cosa-eval judge" not in err and "--metadata" not in err


def test_cli_dry_run_and_bad_input(judge_server, tmp_path, cache_path, cosalign_rows, capsys):
    write_samples_file(tmp_path / "run", cosalign_samples(cosalign_rows, 0, 5))
    judge = str(write_judge(tmp_path / "judges"))
    assert run([str(tmp_path / "run"), "--judge", judge, "--dry-run"]) == 0
    shown = capsys.readouterr().out           # a judgment is one response's rubrics (judges/README.md)
    assert "5 judgments (10 rubric questions" in shown and "10 calls to make" in shown
    assert judge_server.request_count == 0
    with pytest.raises(SystemExit) as stop:
        run([str(tmp_path / "nowhere"), "--judge", judge])
    assert stop.value.code == 2 and "does not exist" in capsys.readouterr().err


def _cli(args: list[str], server_url: str) -> subprocess.Popen:
    env = {**os.environ, "OPENAI_BASE_URL": server_url, "OPENAI_API_KEY": SECRET_KEY}
    return subprocess.Popen([sys.executable, "-m", "cosa_eval.cli", "judge", *args, "--no-progress"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _rows(cache: Path) -> int:
    with sqlite3.connect(cache) as db:
        return db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]


def test_kill_9_loses_no_answered_call(judge_server, tmp_path, cosalign_rows):
    samples = cosalign_samples(cosalign_rows, 0, 150)
    write_samples_file(tmp_path / "run", samples)
    judge_path = write_judge(tmp_path / "judges", concurrency=4)
    judge = load_judge(judge_path)
    total = len({judge.request(r, sample_item(s)).key for s in samples for r in judge.rubric_hashes(s)})
    cache = tmp_path / "cache.sqlite"
    args = [str(tmp_path / "run"), "--judge", str(judge_path), "--cache", str(cache), "--output", str(tmp_path / "out")]
    judge_server.set(latency_s=0.03)
    process = _cli(args, judge_server.base_url)
    deadline = time.monotonic() + 60
    while judge_server.completions < total // 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    answered = judge_server.completions
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL and answered < total
    kept = _rows(cache)
    assert answered - 4 <= kept <= answered + 4        # at most the calls in flight are lost
    judge_server.reset()
    judge_server.set(latency_s=0.0)
    again = _cli(args, judge_server.base_url)
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err.decode()
    assert judge_server.request_count == total - kept
    assert _rows(cache) == total
    assert all(r.is_valid for r in read_judged(tmp_path / "out"))


def test_no_api_key_in_any_written_file(judge_server, tmp_path, cosalign_rows):
    judge_server.set(fault_rate=0.3, fault_kinds=("429", "500", "malformed"), seed=3)
    write_samples_file(tmp_path / "run", cosalign_samples(cosalign_rows, 0, 20))
    judge_path = write_judge(tmp_path / "judges", backend_options={"timeout_s": 1, "max_retries": 1,
                                                                  "backoff_base_s": 0.01})
    process = _cli([str(tmp_path / "run"), "--judge", str(judge_path), "--cache", str(tmp_path / "c.sqlite"),
                    "--output", str(tmp_path / "out")], judge_server.base_url)
    out, err = process.communicate(timeout=120)
    assert process.returncode in (0, EXIT_UNJUDGED), err.decode()     # 3: some calls failed for good
    seen = judge_server.requests[0].headers
    assert seen.get("authorization") == f"Bearer {SECRET_KEY}"      # the key was really in use
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.startswith("c.sqlite") for p in written) and any(p.suffix == ".jsonl" for p in written)
    for path in written:
        assert SECRET_KEY.encode() not in path.read_bytes(), path
    assert SECRET_KEY.encode() not in out + err


def test_full_cosalign_test_with_20_percent_faults(judge_server, tmp_path, cosalign_rows):
    """All 3,200 docs x 2 rubrics through the CLI with 20% injected faults: every doc judged right."""
    from openai_server import rubric_answer
    from cosa_eval.judging.rubric import parse_output
    samples = cosalign_samples(cosalign_rows)
    assert len(samples) == 3200
    write_samples_file(tmp_path / "run", samples)
    judge_path = write_judge(tmp_path / "judges", concurrency=32, backend_options={
        "timeout_s": 1.0, "max_retries": 8, "backoff_base_s": 0.02, "backoff_max_s": 0.2})
    judge_server.set(fault_rate=0.2, seed=11, timeout_sleep_s=1.5)
    process = _cli([str(tmp_path / "run"), "--judge", str(judge_path), "--cache", str(tmp_path / "c.sqlite"),
                    "--output", str(tmp_path / "out")], judge_server.base_url)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode()
    assert sum(judge_server.faults.values()) > 1000
    judge = load_judge(judge_path)
    by_id = {r.sample.sample_id: r for r in read_judged(tmp_path / "out")}
    assert len(by_id) == 3200
    for sample in samples:
        record = by_id[sample.sample_id]
        want = {rubric: parse_output(rubric, rubric_answer(list(judge.messages(rubric, sample_item(sample))))).value
                for rubric in ("helpfulness", "categories")}
        assert (record.failure, record.rating, record.categories) == (None, want["helpfulness"], want["categories"])
