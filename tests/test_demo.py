"""`cosa-eval demo` end to end on a reduced slice: real SmolLM2 through lm_eval, judged, published."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "COSA_CACHE_DIR": os.environ.get("COSA_CACHE_DIR", str(out / "cache"))}
    env.pop("OPENAI_API_KEY", None)
    command = [sys.executable, "-m", "cosa_eval.cli", "demo", "--out", str(out / "demo"), "--per-config", "1",
               "--max-gen-toks", "12", "--cache", str(out / "judge_cache.sqlite")]
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    return out / "demo", first, second


def test_demo_writes_page_plot_and_csvs(demo_run):
    out, first, _ = demo_run
    assert first.returncode == 0, first.stderr[-3000:]
    assert "NOT comparable with published" in first.stdout
    for name in ("leaderboard.html", "leaderboard.png", "leaderboard.md", "results/leaderboard.csv",
                 "results/leaderboard_by_config.csv"):
        assert (out / name).stat().st_size > 100, name
    rows = list(csv.DictReader((out / "results/leaderboard.csv").open()))
    assert {r["benchmark"] for r in rows} == {"cosapien", "cosalign_test"}
    assert all(-1 <= float(r["cosa_score"]) <= 1 and float(r["valid_rate"]) == 1.0 for r in rows)


def test_demo_generates_with_real_smollm2_and_the_config_as_system(demo_run):
    out, first, _ = demo_run
    assert first.returncode == 0, first.stderr[-3000:]
    files = list((out / "runs").rglob("samples_cosalign_test_violence_*.jsonl"))
    row = json.loads(files[0].read_text().splitlines()[0])
    prompt = row["arguments"]["gen_args_0"]["arg_0"]
    assert prompt.startswith("<|im_start|>system\n" + row["doc"]["system"])
    assert row["resps"][0][0].strip()                      # a real model answers with text


def test_second_demo_run_reuses_the_judge_cache(demo_run):
    out, _, second = demo_run
    assert second.returncode == 0, second.stderr[-3000:]
    stats = json.loads((out / "judged" / "judge_run.json").read_text())["stats"]
    assert stats["sent"] == 0 and stats["cached"] > 0
    rows = list(csv.DictReader((out / "results/leaderboard.csv").open()))
    assert len(rows) == 2                                  # re-adding the same run updated its rows
