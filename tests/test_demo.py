"""`cosa-eval demo` end to end on a reduced slice: real SmolLM2 through lm_eval, judged, published."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from cosa_eval.scoring.render import markdown_text

MARK = "ANSWER FROM THE GENERATION CACHE"


def _mark_one_cached_answer(out) -> None:
    """Replace one cached lm_eval answer, so a second run shows whether it generated again."""
    from sqlitedict import SqliteDict
    files = list((out / "generation_cache").glob("*_rank0.db"))
    assert len(files) == 1, files
    with SqliteDict(str(files[0]), autocommit=True) as cache:
        key = sorted(cache.keys())[0]
        cache[key] = MARK


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "COSA_CACHE_DIR": os.environ.get("COSA_CACHE_DIR", str(out / "cache"))}
    env.pop("OPENAI_API_KEY", None)
    command = [sys.executable, "-m", "cosa_eval.cli", "demo", "--out", str(out / "demo"), "--per-config", "1",
               "--max-gen-toks", "12", "--cache", str(out / "judge_cache.sqlite")]
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    first_stats = json.loads((out / "demo" / "demo_run.json").read_text())["judge_stats"] if first.returncode == 0 else {}
    if first.returncode == 0:
        _mark_one_cached_answer(out / "demo")
    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    return out / "demo", first, second, first_stats


def test_demo_writes_page_plot_and_csvs(demo_run):
    out, first, _, _ = demo_run
    assert first.returncode == 0, first.stderr[-3000:]
    assert "NOT comparable with published" in first.stdout
    for name in ("leaderboard.html", "leaderboard.png", "leaderboard.md", "results/leaderboard.csv",
                 "results/leaderboard_by_config.csv"):
        assert (out / name).stat().st_size > 100, name
    rows = list(csv.DictReader((out / "results/leaderboard.csv").open()))
    assert {r["benchmark"] for r in rows} == {"cosapien_demo", "cosalign_test"}
    assert all(-1 <= float(r["cosa_score"]) <= 1 and float(r["valid_rate"]) == 1.0 for r in rows)
    explorer = out / "explorer.html"
    assert f"explorer (every response, verdict and rationale): {explorer}" in first.stdout
    embedded = explorer.read_text(encoding="utf-8").split('id="cosa-data">', 1)[1].split("</script>", 1)[0]
    data = json.loads(embedded)
    assert len(data["rows"]) == sum(int(r["n"]) for r in rows)
    assert all(verdict["texts"] for row in data["rows"] for verdict in row["v"].values())   # from the judge cache


def test_demo_cannot_be_mistaken_for_a_result(demo_run):
    out, first, _, _ = demo_run
    assert first.returncode == 0, first.stderr[-3000:]
    markdown, html = (out / "leaderboard.md").read_text(), (out / "leaderboard.html").read_text()
    for view, shown in ((markdown, markdown_text), (html, str)):
        assert "NOT comparable with published CoSA-Scores" in view
        assert "invented demo sample in the CoSApien schema" in view and "not CoSApien" in view
        assert "Per-response helpfulness ratings" in view
        assert view.count(shown("[partial: lm_eval --samples kept")) == 2              # both rows: slices, and marked
    cosapien = markdown.split("## CoSApien (human-authored, 5 configs)")[1].split("\n## ")[0]
    assert "(demo)" not in cosapien                                  # only the paper's rows are CoSApien rows
    # the rating distribution is printed per benchmark, with a warning when the judge does not discriminate
    ratings = [line for line in first.stdout.splitlines() if line.strip().startswith(("cosapien_demo ", "cosalign_test "))
               and "n=" in line]
    assert len(ratings) == 2 and all(" 0:" in line and " 5:" in line for line in ratings)
    # lm_eval's predict-only table and raw float prints stay out of the demo's output (they go to lm_eval.log)
    assert "bypass" not in first.stdout and "999" not in first.stdout and "|" not in first.stdout
    assert "bypass" in (out / "lm_eval.log").read_text()
    assert "CoSA-Score 0." not in first.stdout + first.stderr


def test_demo_generates_with_real_smollm2_and_the_config_as_system(demo_run):
    out, first, _, _ = demo_run
    assert first.returncode == 0, first.stderr[-3000:]
    files = list((out / "runs").rglob("samples_cosalign_test_violence_*.jsonl"))
    row = json.loads(files[0].read_text().splitlines()[0])
    prompt = row["arguments"]["gen_args_0"]["arg_0"]
    assert prompt.startswith("<|im_start|>system\n" + row["doc"]["system"])
    assert row["resps"][0][0].strip()                      # a real model answers with text


def test_second_demo_run_answers_from_the_caches_and_only_rejudges(demo_run):
    out, first, second, first_stats = demo_run
    assert first.returncode == 0 and second.returncode == 0, second.stderr[-3000:]
    responses = [json.loads(line)["resps"][0][0] for path in (out / "runs").rglob("samples_*.jsonl")
                 for line in path.read_text().splitlines()]
    assert responses.count(MARK) == 1                      # lm_eval answered from its cache, generating nothing
    assert len(list((out / "runs").rglob("samples_cosalign_test_safe_*.jsonl"))) == 1   # one run's samples
    stats = json.loads((out / "demo_run.json").read_text())["judge_stats"]
    assert first_stats["sent"] > 2
    assert stats["sent"] == 2 and stats["cached"] == first_stats["sent"] - 2   # only the changed answer re-judged
    rows = list(csv.DictReader((out / "results/leaderboard.csv").open()))
    assert len(rows) == 2                                  # re-adding the same run updated its rows
