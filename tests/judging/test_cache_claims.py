"""Runs sharing one cache send each request once; budgets count calls in flight; a damaged cache
is one line. Against the real local server, and real ``cosa-eval judge`` processes."""
from __future__ import annotations

import os
import random
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from judging_helpers import SECRET_KEY, cosalign_samples, write_judge, write_samples_file
from cosa_eval.errors import CosaError
from cosa_eval.judging import JudgeCache, judge_run, load_judge
from cosa_eval.judging.backends.base import JudgeResponse
from cosa_eval.judging.judge import sample_item
from cosa_eval.judging.pricing import cost_usd, estimate_tokens


def _cli(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cosa_eval.cli", "judge", *args, "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env})


def _keys(judge, samples) -> set[str]:
    return {judge.request(rubric, sample_item(s)).key for s in samples for rubric in judge.rubric_hashes(s)}


def _one_line_error(returncode: int, stderr: str, *fragments: str) -> None:
    assert returncode != 0 and "Traceback" not in stderr, stderr[-2000:]
    errors = [line for line in stderr.splitlines() if line.startswith("cosa-eval: error:")]
    assert len(errors) == 1, stderr[-2000:]
    for fragment in fragments:
        assert fragment in errors[0]


def test_two_concurrent_judge_processes_send_each_request_once(judge_server, tmp_path, cosalign_rows):
    judge_server.set(latency_s=0.25)                      # long enough for the two runs to overlap
    judge_yaml = write_judge(tmp_path / "judges", concurrency=8)
    samples = cosalign_samples(cosalign_rows, 0, 3200)[::40]        # 80 docs over all 8 configs
    write_samples_file(tmp_path / "run", samples)
    env = {"OPENAI_BASE_URL": judge_server.base_url, "OPENAI_API_KEY": SECRET_KEY}
    cache = tmp_path / "shared.sqlite"
    runs = [_cli(str(tmp_path / "run"), "--judge", str(judge_yaml), "--cache", str(cache),
                 "--output", str(tmp_path / f"out{i}"), env=env) for i in (1, 2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (_, err) in zip(runs, outputs):
        assert run.returncode == 0, err[-3000:]
    distinct = len(_keys(load_judge(judge_yaml), samples))
    assert judge_server.completions == judge_server.request_count == distinct
    sent = [int(re.search(r"(\d+) calls answered", err).group(1)) for _, err in outputs]
    assert sum(sent) == distinct
    first, second = (sorted((tmp_path / f"out{i}").glob("judged_*.jsonl")) for i in (1, 2))
    assert len(first) == 8 and [p.name for p in first] == [p.name for p in second]
    assert all(a.read_text() == b.read_text() for a, b in zip(first, second))


def _first_request(judge, sample):
    return judge.request("helpfulness", sample_item(sample))


def test_a_run_waits_for_the_answer_to_a_key_another_run_holds(judge_server, judge_yaml, cache_path,
                                                              cosalign_rows):
    judge, samples = load_judge(judge_yaml), cosalign_samples(cosalign_rows, 0, 3)
    request = _first_request(judge, samples[0])
    other = JudgeCache(cache_path)
    assert other.claim([request.key])[0] == [request.key]
    answer = JudgeResponse(text="Fine.\nRating: [[4]]", input_tokens=3, output_tokens=2)
    later = threading.Timer(1.0, other.put, (request.key, "helpfulness", answer))
    later.start()
    run = judge_run(samples, judge, progress=False)
    later.join()
    other.close()
    assert judge_server.completions == 5                 # 6 requests, one answered by the other run
    assert run.records[0].rating == 4 and all(r.is_valid for r in run.records)


@pytest.mark.parametrize("how", ["lease runs out", "failure released"])
def test_a_key_is_taken_over_from_a_dead_or_failed_owner(judge_server, judge_yaml, cache_path,
                                                         cosalign_rows, how):
    judge, samples = load_judge(judge_yaml), cosalign_samples(cosalign_rows, 0, 3)
    request = _first_request(judge, samples[0])
    other = JudgeCache(cache_path, lease_s=0.5)        # a run that never renews: it crashed
    assert other.claim([request.key])[0] == [request.key]
    later = None
    if how == "failure released":
        other.lease_s = 3600.0
        other.claim([request.key])
        failed = JudgeResponse(failure="api_error", detail="HTTP 500")
        later = threading.Timer(0.5, other.put, (request.key, "helpfulness", failed))
        later.start()
    run = judge_run(samples, judge, progress=False)
    if later:
        later.join()
    assert judge_server.completions == 6 and all(r.is_valid for r in run.records)
    with sqlite3.connect(cache_path) as db:
        assert db.execute("SELECT COUNT(*) FROM claims WHERE key = ?", (request.key,)).fetchone()[0] == 0
    other.close()


def test_a_live_run_keeps_its_claims_through_a_call_longer_than_the_lease(judge_server, tmp_path, cache_path,
                                                                         cosalign_rows, monkeypatch):
    monkeypatch.setattr("cosa_eval.judging.cache.LEASE_S", 0.4)
    judge_server.set(latency_s=2.0)
    judge = load_judge(write_judge(tmp_path, backend_options={"timeout_s": 10, "max_retries": 0}))
    samples = cosalign_samples(cosalign_rows, 0, 1)
    running = threading.Thread(target=judge_run, args=(samples, judge), kwargs={"progress": False})
    running.start()
    deadline = time.monotonic() + 60
    while judge_server.request_count < 2 and time.monotonic() < deadline:     # both calls in flight
        time.sleep(0.01)
    time.sleep(1.0)                                      # 2.5 leases long: renewed, never run out
    other = JudgeCache(cache_path)
    mine, answered = other.claim([_first_request(judge, samples[0]).key])
    running.join()
    other.close()
    assert mine == [] and answered == {} and judge_server.completions == 2


def test_a_killed_run_on_this_host_frees_its_claims_at_once(judge_server, judge_yaml, cache_path,
                                                            cosalign_rows):
    judge, samples = load_judge(judge_yaml), cosalign_samples(cosalign_rows, 0, 3)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owner = f"{socket.gethostname()}:{int(gone.stdout)}:killed"
    JudgeCache(cache_path).close()
    with sqlite3.connect(cache_path) as db:          # its lease would last a minute
        db.execute("INSERT INTO claims VALUES (?, ?, ?)", (_first_request(judge, samples[0]).key, owner,
                                                           time.time() + 60))
    started = time.monotonic()
    run = judge_run(samples, judge, progress=False)
    assert time.monotonic() - started < 30 and judge_server.completions == 6
    assert all(r.is_valid for r in run.records)


def test_budget_counts_the_calls_in_flight(judge_server, tmp_path, cache_path, cosalign_rows):
    judge_server.set(latency_s=0.3)
    judge = load_judge(write_judge(tmp_path, concurrency=16, prices={"input": 1000.0, "output": 1000.0}))
    samples = cosalign_samples(cosalign_rows, 0, 20)
    requests = [judge.request(rubric, sample_item(s)) for s in samples for rubric in judge.rubric_hashes(s)]
    one_call = max(cost_usd(judge.prices, estimate_tokens(r.messages[0]["content"]), 256) for r in requests)
    run = judge_run(samples, judge, max_cost=3 * one_call, progress=False)
    assert run.stats.cost_usd <= 3 * one_call + one_call
    assert judge_server.request_count == run.stats.sent < 16
    assert {r.failure for r in run.records} == {None, "budget_exceeded"}


@pytest.mark.parametrize("budget", [float("nan"), -1.0])
def test_a_budget_that_is_no_number_of_dollars_is_refused(judge_server, judge_yaml, cache_path,
                                                          cosalign_rows, budget):
    with pytest.raises(CosaError, match="budget"):
        judge_run(cosalign_samples(cosalign_rows, 0, 2), load_judge(judge_yaml), max_cost=budget)
    assert judge_server.request_count == 0


def test_max_cost_nan_on_the_command_line_is_one_line(judge_server, judge_yaml, tmp_path, cosalign_rows):
    write_samples_file(tmp_path / "run", cosalign_samples(cosalign_rows, 0, 2))
    run = _cli(str(tmp_path / "run"), "--judge", str(judge_yaml), "--max-cost", "nan", "--cache",
               str(tmp_path / "c.sqlite"), env={"OPENAI_BASE_URL": judge_server.base_url, "OPENAI_API_KEY": SECRET_KEY})
    _, err = run.communicate(timeout=120)
    _one_line_error(run.returncode, err, "budget", "nan")
    assert judge_server.request_count == 0


def _damage(path, where: str) -> None:
    """Overwrite bytes in place (same size: damaged, not truncated)."""
    data = bytearray(path.read_bytes())
    start, end = (0, 100) if where == "header" else (4096, len(data))
    rng = random.Random(0)
    data[start:end] = bytes(rng.randrange(256) for _ in range(end - start))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["header", "pages"])      # found at open / at the first query
def test_a_damaged_cache_is_one_line_naming_the_file(judge_server, judge_yaml, tmp_path, cosalign_rows,
                                                     where):
    cache = tmp_path / "damaged.sqlite"
    samples = cosalign_samples(cosalign_rows, 0, 40)
    judge_run(samples, load_judge(judge_yaml), cache_path=cache, progress=False)
    assert cache.stat().st_size > 3 * 4096 and not cache.with_name(cache.name + "-wal").exists()
    _damage(cache, where)
    write_samples_file(tmp_path / "run", samples)
    judge_server.reset()
    run = _cli(str(tmp_path / "run"), "--judge", str(judge_yaml), "--cache", str(cache), "--output",
               str(tmp_path / "out"), env={"OPENAI_BASE_URL": judge_server.base_url, "OPENAI_API_KEY": SECRET_KEY})
    _, err = run.communicate(timeout=120)
    _one_line_error(run.returncode, err, str(cache), "damaged", "move it aside")
    assert judge_server.request_count == 0
