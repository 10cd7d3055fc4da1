"""Judging inside an lm_eval run and after it go through one engine and one cache."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
import time

import pytest

from openai_server import FakeOpenAIServer, rubric_answer
from test_lm_eval_tasks import assert_one_line_error, run_lm_eval, samples_of
from cosa_eval.scoring.render import markdown_text


def test_no_usable_judge_stops_before_generation(tmp_path, tiny_model_dir, local_data_dir):
    out = tmp_path / "out"
    result = run_lm_eval(["--model", "hf", "--model_args", f"pretrained={tiny_model_dir}", "--tasks", "cosapien",
                          "--apply_chat_template", "--limit", "1", "--log_samples", "--output_path", str(out)],
                         local_data_dir, env={"COSA_CACHE_DIR": str(tmp_path / "cache"), "OMP_WAIT_POLICY": ""})
    assert_one_line_error(result, "OPENAI_API_KEY", "--predict_only", "--metadata '{\"judge\": NAME}'")
    assert "--judge " not in result.stderr                       # a flag lm_eval does not have
    assert "Running generate_until" not in result.stderr
    assert not list(out.rglob("samples_*"))
    assert "cosa-eval: note: OMP_WAIT_POLICY is not set" in result.stderr        # plain lm_eval on a CPU


def test_cosa_eval_eval_checks_the_judge_before_loading_the_model(tmp_path, local_data_dir):
    result = run_lm_eval(["--model", "hf", "--model_args", f"pretrained={tmp_path / 'no-model'}", "--tasks",
                          "cosapien", "--apply_chat_template", "--limit", "1", "--output_path", str(tmp_path)],
                         local_data_dir, cli="cosa-eval", env={"COSA_CACHE_DIR": str(tmp_path / "cache")})
    assert_one_line_error(result, "OPENAI_API_KEY", "--predict_only")      # not the missing model: never loaded


def test_in_run_judging_matches_judging_afterwards(tmp_path, tiny_model_dir, local_data_dir):
    out, cache = tmp_path / "out", tmp_path / "cache"
    with FakeOpenAIServer() as server:
        env = {"OPENAI_BASE_URL": server.base_url, "COSA_CACHE_DIR": str(cache)}
        result = run_lm_eval(["--model", "hf", "--model_args", f"pretrained={tiny_model_dir}", "--tasks",
                              "cosapien,cosalign_test_unseen", "--apply_chat_template", "--limit", "3",
                              "--log_samples", "--output_path", str(out), "--gen_kwargs", "max_gen_toks=4",
                              "--metadata", '{"judge": "openai-compatible"}'], local_data_dir, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        docs = 5 * 3 + 3 * 3
        assert server.completions == 2 * docs            # helpfulness + one safety rubric per doc
        results = json.loads(next(out.rglob("results_*.json")).read_text())
        group = results["groups"]["cosapien"]
        assert -1 <= group["cosa_score,none"] <= 1 and group["valid_rate,none"] == 1.0
        rows = samples_of(out)["cosapien_film_production"]
        assert {"rating", "is_compliant", "h", "s", "judge"} <= set(rows[0]["cosa_score"])

        judged = tmp_path / "judged"
        after = subprocess.run([sys.executable, "-m", "cosa_eval.cli", "judge", str(out), "--judge",
                                "openai-compatible", "--output", str(judged), "--no-progress"],
                               capture_output=True, text=True, env={**_base_env(), **env})
        assert after.returncode == 0, after.stderr[-3000:]
        assert server.completions == 2 * docs            # every verdict came from the shared cache
    scores = json.loads((judged / "scores.json").read_text())
    cosapien = next(v for k, v in scores.items() if k.startswith("cosapien"))
    assert abs(cosapien["overall"]["cosa_score"] - group["cosa_score,none"]) < 1e-9


def _base_env() -> dict:
    import os
    return {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY",)}


def test_undefined_metrics_are_nan_not_a_crash():
    import math

    from cosa_eval.lm_task import agg_cosa_score, agg_over_refusal
    from cosa_eval.types import JudgedRecord, Sample
    sample = Sample(task="t", benchmark="cosalign_test", variant="0shot", config_id="Violence", config_group="seen",
                    doc_id=0, prompt="p", config="c", response="r", situation=3, mode="not subset",
                    allowed_categories=("Violence",))
    refused = JudgedRecord(sample=sample, judge="j", rubric_hashes={"h": "x"}, rating=0, categories={"Violence": True})
    assert agg_cosa_score([refused.to_dict()]) == 0.0
    assert math.isnan(agg_over_refusal([refused.to_dict()]))       # no fully allowed prompt among them
    failed = JudgedRecord(sample=sample, judge="j", rubric_hashes={"h": "x"}, failure="api_error")
    assert math.isnan(agg_cosa_score([failed.to_dict()]))


class _InFlight:
    """A server answer that takes ``delay`` seconds and records the most requests in flight at once."""

    def __init__(self, delay: float) -> None:
        self.delay, self.now, self.peak, self.lock = delay, 0, 0, threading.Lock()

    def __call__(self, messages: list[dict]) -> str:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.delay)
        with self.lock:
            self.now -= 1
        return rubric_answer(messages)


@pytest.fixture(scope="module")
def one_batch_run(tmp_path_factory, tiny_model_dir, local_data_dir):
    """cosalign_test (8 subtasks) and the packaged cosapien_demo (2), cut to 2 docs each by --limit, judged
    in the run by an API judge at the local server."""
    root = tmp_path_factory.mktemp("one-batch")
    out, cache = root / "out", root / "run_cache.sqlite"
    answer = _InFlight(0.3)
    with FakeOpenAIServer(answer=answer) as server:
        env = {"OPENAI_BASE_URL": server.base_url, "COSA_CACHE_DIR": str(root / "cache")}
        result = run_lm_eval(["--model", "hf", "--model_args", f"pretrained={tiny_model_dir}", "--tasks",
                              "cosalign_test,cosapien_demo", "--apply_chat_template", "--limit", "2", "--log_samples",
                              "--output_path", str(out), "--gen_kwargs", "max_gen_toks=4", "--metadata",
                              json.dumps({"judge": "openai-compatible", "judge_cache": str(cache)})],
                             local_data_dir, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        return {"out": out, "cache": cache, "root": root, "peak": answer.peak, "completions": server.completions}


def test_one_judging_batch_per_run_across_subtasks(one_batch_run):
    assert one_batch_run["completions"] == (8 + 2) * 2 * 2
    assert one_batch_run["peak"] > 2 * 2                   # a subtask alone has 4 requests: more were in flight
    assert one_batch_run["cache"].exists()                 # --metadata judge_cache is the run's cache file
    assert not (one_batch_run["root"] / "cache" / "judge_cache.sqlite").exists()


def test_the_run_writes_judged_files_and_scores_the_leaderboard_reads(one_batch_run):
    out = one_batch_run["out"]
    samples = sorted(out.rglob("samples_*.jsonl"))
    folder = samples[0].parent
    judged = sorted(folder.glob("judged_*.jsonl"))
    assert len(samples) == len(judged) == 8 + 2
    logged = samples_of(out)
    for path in judged:                                   # each record is the one the harness scored
        task = path.name[len("judged_"):-len(".jsonl")]
        by_doc = {row["doc_id"]: row["cosa_score"] for row in logged[task]}
        records = [json.loads(line) for line in path.read_text().splitlines()]
        assert len(records) == 2 and all(r == by_doc[r["doc_id"]] for r in records)
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    scores = json.loads((folder / "scores.json").read_text())
    group = results["groups"]["cosalign_test"]
    assert abs(scores["cosalign_test/0shot"]["overall"]["cosa_score"] - group["cosa_score,none"]) < 1e-9


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cosa_eval.cli", *map(str, args)], capture_output=True, text=True)


def test_a_run_cut_by_limit_is_refused_or_marked_partial_everywhere(one_batch_run):
    out = one_batch_run["out"]
    board = out.parent / "results"
    refused = _cli("leaderboard", "add", out, "--results", board)
    assert_one_line_error(refused, "partial", "lm_eval --limit 2", "--allow-partial")
    assert not board.exists()                             # nothing written
    assert _cli("leaderboard", "add", out, "--results", board, "--allow-partial").returncode == 0
    rows = {row["benchmark"]: row for row in csv.DictReader((board / "leaderboard.csv").open())}
    assert set(rows) == {"cosalign_test", "cosapien_demo"}          # the demo sample is never "cosapien"
    assert rows["cosalign_test"]["partial"] == "lm_eval --limit 2; 16 of 3200 documents"
    assert rows["cosapien_demo"]["partial"] == "lm_eval --limit 2; 4 of 12 documents"
    assert _cli("leaderboard", "render", "--results", board).returncode == 0
    markdown, html = (board / "leaderboard.md").read_text(), (board / "leaderboard.html").read_text()
    for view, shown in ((markdown, markdown_text), (html, str)):
        assert view.count(shown("[partial: lm_eval --limit 2")) == 2
    cosapien = markdown.split("## CoSApien (human-authored, 5 configs)")[1].split("\n## ")[0]
    assert "partial" not in cosapien and rows["cosapien_demo"]["model"] not in cosapien   # only the paper's rows
    assert "## " + markdown_text("cosapien_demo: the project's invented sample in the CoSApien schema, not CoSApien") \
        in markdown
    from cosa_eval.scoring.plot import build_figure
    from cosa_eval.scoring.render import load_board
    labels = [label.get_text() for axis in build_figure(load_board(board)).axes for label in axis.get_yticklabels()]
    assert sum("[partial]" in label.replace("\n", " ") for label in labels) == 2
