"""Provider batch mode (--batch) against the test server's Batch API: same verdicts as online at
batch prices, each key submitted once across kill -9 at every phase, partial expiry loses nothing."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from judging_helpers import SECRET_KEY, cosalign_samples, cosapien_samples, write_judge, write_samples_file
from cosa_eval.cli import main

ROOT = Path(__file__).resolve().parents[2]
BATCH_OPTIONS = {"timeout_s": 5, "max_retries": 2, "backoff_base_s": 0.01, "backoff_max_s": 0.05,
                 "batch_max_requests": 16, "batch_poll_s": 0.01}


def cli(*argv) -> int:
    try:
        return main([str(a) for a in argv])
    except SystemExit as stop:
        return int(stop.code)


def judged(folder: Path, *, drop_cost: bool = False) -> dict[str, list[dict]]:
    found = {}
    for path in sorted(folder.glob("judged_*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for row in rows if drop_cost else []:
            row["extra"].pop("cost_usd")
        found[path.name] = rows
    return found


@pytest.fixture
def run_folder(tmp_path, cosalign_rows, cosapien_configs) -> Path:
    samples = cosalign_samples(cosalign_rows, 0, 3200)[::100] + cosapien_samples(cosapien_configs)
    write_samples_file(tmp_path / "run", samples)
    return tmp_path / "run"


@pytest.fixture
def judge(tmp_path) -> Path:
    return write_judge(tmp_path / "judges", backend_options=BATCH_OPTIONS)


def test_batch_mode_gives_the_online_verdicts_at_batch_prices(judge_server, tmp_path, run_folder, judge, capsys):
    assert cli("judge", run_folder, "--judge", judge, "--cache", tmp_path / "a.sqlite", "--output", tmp_path / "a",
               "--no-progress") == 0
    judge_server.reset()
    assert cli("judge", run_folder, "--judge", judge, "--cache", tmp_path / "b.sqlite", "--output", tmp_path / "b",
               "--batch") == 0
    assert judge_server.request_count == 0                        # nothing went online
    submitted = judge_server.batch.submitted
    assert set(submitted.values()) == {1} and len(judge_server.batch.batches) >= len(submitted) / 16
    assert judged(tmp_path / "b", drop_cost=True) == judged(tmp_path / "a", drop_cost=True)
    assert (tmp_path / "b" / "scores.json").read_bytes() == (tmp_path / "a" / "scores.json").read_bytes()
    online, batch = (json.loads((tmp_path / f / "judge_run.json").read_text())["stats"] for f in "ab")
    assert batch["cost_usd"] == pytest.approx(online["cost_usd"] / 2)
    assert "batch batch_1: completed" in capsys.readouterr().err      # progress per batch


def test_dry_run_shows_online_and_batch_cost(judge_server, tmp_path, run_folder, judge, capsys):
    assert cli("judge", run_folder, "--judge", judge, "--cache", tmp_path / "c.sqlite", "--dry-run") == 0
    out = capsys.readouterr().out
    online, batch = (float(x) for x in __import__("re").search(r"\$([\d.]+) online, \$([\d.]+) with --batch", out).groups())
    assert batch == pytest.approx(online / 2, abs=0.01)


def test_no_wait_submits_and_a_rerun_collects(judge_server, tmp_path, run_folder, judge, capsys):
    cache = tmp_path / "c.sqlite"
    args = ("judge", run_folder, "--judge", judge, "--cache", cache, "--output", tmp_path / "out", "--batch",
            "--no-wait", "--no-progress")
    assert cli(*args) == 3
    assert "re-run the same command to collect them" in capsys.readouterr().err
    first = dict(judge_server.batch.submitted)
    assert first
    # an online run leaves the batched keys alone and says how to collect them
    assert cli("judge", run_folder, "--judge", judge, "--cache", cache, "--output", tmp_path / "o", "--no-progress") == 2
    assert "--batch" in capsys.readouterr().err and judge_server.request_count == 0
    for _ in range(10):
        if cli(*args) == 0:
            break
    else:
        pytest.fail("--no-wait runs never collected every batch")
    assert set(judge_server.batch.submitted.values()) == {1} and judge_server.request_count == 0


def test_an_expired_batch_keeps_its_answers_and_the_rest_is_resubmitted(judge_server, tmp_path, run_folder, judge):
    cache = tmp_path / "c.sqlite"
    judge_server.batch.outcome = "expired"
    args = ("judge", run_folder, "--judge", judge, "--cache", cache, "--output", tmp_path / "out", "--batch",
            "--no-progress")
    assert cli(*args) == 3                                  # some unjudged: typed, never graded
    first = dict(judge_server.batch.submitted)
    kept = sum(int(b["request_counts"]["completed"]) for b in judge_server.batch.batches.values())
    assert 0 < kept < len(first)
    judge_server.batch.outcome = "completed"
    assert cli(*args) == 0
    again = {key for key, count in judge_server.batch.submitted.items() if count > 1}
    assert len(again) == len(first) - kept and all(count <= 2 for count in judge_server.batch.submitted.values())


def _cli_process(args: list, server_url: str) -> subprocess.Popen:
    env = {**os.environ, "OPENAI_BASE_URL": server_url, "OPENAI_API_KEY": SECRET_KEY}
    return subprocess.Popen([sys.executable, "-m", "cosa_eval.cli", "judge", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.parametrize("phase", ["upload", "create", "created", "retrieve", "content"])
def test_kill_9_at_each_phase_then_a_rerun_submits_each_key_once(judge_server, tmp_path, run_folder, judge, phase):
    args = [run_folder, "--judge", judge, "--cache", tmp_path / "c.sqlite", "--output", tmp_path / "out",
            "--batch", "--no-progress"]
    judge_server.batch.hold = phase
    process = _cli_process(args, judge_server.base_url)
    assert judge_server.batch.reached.wait(60), process.communicate(timeout=5)[1].decode()
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    judge_server.batch.release()
    assert judge_server.batch.passed.wait(30)       # the provider finished what it was asked before the kill
    rerun = _cli_process(args, judge_server.base_url)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()
    assert set(judge_server.batch.submitted.values()) == {1}       # counted at the server
    assert judge_server.request_count == 0
    records = [row for rows in judged(tmp_path / "out").values() for row in rows]
    assert records and all(row["failure"] is None for row in records)
