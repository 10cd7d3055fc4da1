"""THE SWEEP: every ``cosa-eval`` subcommand, driven through the real CLI with bad inputs.

Each case must: exit non-zero, print exactly one stderr line starting ``cosa-eval: error:``, print no
traceback, change no file that existed before, and never show the API key. Every case runs with a
marker key in OPENAI_API_KEY against a local server that answers 401 and echoes the Authorization
header in its error body; after the sweep no file under the workspace holds the marker.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from openai_server import FakeOpenAIServer
from cosa_eval.taxonomy import ALL_CATEGORIES
from cosa_eval.types import JudgedRecord, Sample

MARKER = "sk-marker-" + "Zq9" * 12            # the key every case runs with; it must appear nowhere
DATE = "2026-01-01T00-00-00.000000"
ERROR = "cosa-eval: error:"


def _doc(**overrides) -> dict:
    doc = {"benchmark": "cosapien", "schema": "cosapien", "variant": "0shot", "config_id": "film_production",
           "config_group": "cosapien", "prompt": "Describe a chase scene.", "system": "You help a film studio.",
           "type": "allowed"}
    return {**doc, **overrides}


def _sample_row(doc_id: int = 0, response: str = "A car speeds away.", **doc_overrides) -> dict:
    return {"doc_id": doc_id, "doc": _doc(**doc_overrides), "arguments": {}, "resps": [[response]],
            "filtered_resps": [response], "target": ""}


def _record(doc_id: int, **fields) -> dict:
    cosalign = fields.pop("cosalign", False)
    sample = Sample(task="cosalign_test_violence" if cosalign else "cosapien_film_production",
                    benchmark="cosalign_test" if cosalign else "cosapien", variant="0shot",
                    config_id="Violence" if cosalign else "film_production",
                    config_group="seen" if cosalign else "cosapien", doc_id=doc_id, prompt=f"prompt {doc_id}",
                    config="config", response=f"response {doc_id}", prompt_type=None if cosalign else "allowed",
                    situation=1 if cosalign else None, allowed_categories=("Violence",) if cosalign else (),
                    schema="cosalign_test" if cosalign else "cosapien")
    record = JudgedRecord(sample=sample, judge="judge-x", rubric_hashes={"helpfulness": "h"}, rating=doc_id % 6,
                          is_compliant=None if cosalign else True,
                          categories={c: False for c in ALL_CATEGORIES} if cosalign else None)
    return {**record.to_dict(), **fields}


def _write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _samples(case: Path, *rows: dict, task: str = "cosapien_film_production") -> Path:
    _write_jsonl(case / "run" / f"samples_{task}_{DATE}.jsonl", list(rows))
    return case / "run"


def _judged(case: Path, rows: list[dict], name: str = "judged") -> Path:
    _write_jsonl(case / name / "judged_cosapien_film_production.jsonl", rows)
    return case / name


def _good_judged(case: Path, name: str = "judged", **change) -> Path:
    rows = [_record(n) for n in range(10)]
    rows[0].update(change)
    return _judged(case, rows, name)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The files every case protects, a judge for the local server, and the server itself."""
    ws = tmp_path_factory.mktemp("sweep")
    with FakeOpenAIServer(fault_rule=lambda number, body: "401") as server:
        judge = ws / "judges" / "local" / "judge.yaml"
        judge.parent.mkdir(parents=True)
        judge.write_text(json.dumps({"backend": "openai", "model": "judge-model", "concurrency": 2,
                                     "prices": {"input": 1.0, "output": 2.0},
                                     "sampling": {"temperature": 0, "max_tokens": 64},
                                     "backend_options": {"timeout_s": 2, "max_retries": 0}}), encoding="utf-8")
        good = _samples(ws / "good", _sample_row(0), _sample_row(1, prompt="Describe a quiet scene."))
        results = ws / "results"
        env = _env(ws, server)
        added = subprocess.run([sys.executable, "-m", "cosa_eval.cli", "leaderboard", "add",
                                str(_good_judged(ws / "good")), "--model", "m", "--results", str(results), "--allow-partial"],
                               env=env, capture_output=True, text=True, timeout=120)
        assert added.returncode == 0, added.stderr
        yield {"ws": ws, "server": server, "judge": judge, "good": good, "results": results, "env": env}
    leaked = [p for p in ws.rglob("*") if p.is_file() and MARKER.encode() in p.read_bytes()]
    assert not leaked, f"the marker key was written to {leaked}"


def _env(ws: Path, server: FakeOpenAIServer) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "TOKEN"))}
    return {**keep, "OPENAI_API_KEY": MARKER, "OPENAI_BASE_URL": server.base_url, "HOME": str(ws / "home"),
            "COSA_CACHE_DIR": str(ws / "cache"), "COSA_RESULTS_DIR": str(ws / "results"),
            "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "COSA_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}


# --- the cases: name -> builder(case folder, workspace) -> argv ------------------------------------

def _judge(run: Path, w: dict, *more: str) -> list[str]:
    return ["judge", str(run), "--judge", str(w["judge"]), "--output", str(run.parent / "out"), *more]


def _bad_yaml(case: Path, **options) -> Path:
    path = case / "judges" / "bad" / "judge.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"backend": "openai", "model": "judge-model", "backend_options": options}))
    return path


def _binary(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary junk \xc3\x28\n")
    return path


def _labels(case: Path, text: bytes, suffix: str = ".csv") -> Path:
    path = case / f"labels{suffix}"
    path.write_bytes(text)
    return path


def _results_json(case: Path, text: str) -> Path:
    run = _samples(case, _sample_row(0))
    (run / f"results_{DATE}.json").write_text(text)
    return run


def _stray(case: Path, w: dict) -> list[str]:
    judged = _good_judged(case)
    (judged / "judge_run.json").write_text(json.dumps({"judge": "judge-x", "judged_files": {}}))
    return ["leaderboard", "add", str(judged), "--model", "m"]


def _occupied(case: Path, w: dict) -> list[str]:
    run = _samples(case, _sample_row(0))
    _good_judged(case, "out")
    return _judge(run, w)


def _sqlite(case: Path, w: dict) -> list[str]:
    cache = case / "cache.sqlite"
    cache.write_bytes(b"SQLite format 3\x00" + b"\x13\x37" * 4000)
    return _judge(_samples(case, _sample_row(0)), w, "--cache", str(cache))


def _train_input(case: Path) -> Path:
    return _binary(case / "prompts.jsonl")


def _eval_data(case: Path) -> Path:
    _binary(case / "data" / "cosapien" / "film_production.jsonl")
    return case / "data"


def _copy_judge(case: Path, w: dict) -> Path:
    path = case / "judges" / "second" / "judge.yaml"
    path.parent.mkdir(parents=True)
    path.write_bytes(w["judge"].read_bytes())
    return path


def _demo_duplicates(case: Path) -> Path:
    from cosa_eval.data import COSALIGN_TEST_SPLITS
    row = {"prompt": "same", "mode": "exact", "situation": 1}
    for split in sum(COSALIGN_TEST_SPLITS.values(), ()):
        _write_jsonl(case / "data" / "cosalign_test" / f"{split}.jsonl", [row, row])
    return case / "data"


def _demo(case: Path, w: dict, data: Path) -> list[str]:
    """The demo with a given model and judge (no SmolLM2 conversion) and the given data folder."""
    return ["demo", "--data-dir", str(data), "--out", str(case / "o"), "--model", str(case / "model"),
            "--judge", str(w["judge"])]


# name -> (builder(case folder, workspace) -> argv, a fragment the one error line must hold).
# "[helper]" marks a case whose fix lives in another helper's code.
Case = tuple[Callable[[Path, dict], list[str]], str]
CASES: dict[str, Case] = {
    # cosa-eval judge: bad samples files, all refused before any judge call
    "judge: binary samples file": (lambda c, w: _judge(_binary(c / "run" / f"samples_cosapien_x_{DATE}.jsonl").parent, w), 'not UTF-8'),
    "judge: a JSON list line": (lambda c, w: _judge(_samples(c, [1, 2]), w), 'expected a JSON object'),
    "judge: doc.prompt null": (lambda c, w: _judge(_samples(c, _sample_row(0, prompt=None)), w), "doc.prompt is 'None'"),
    "judge: doc.prompt a list": (lambda c, w: _judge(_samples(c, _sample_row(0, prompt=["a", "b"])), w), 'doc.prompt is'),
    "judge: doc without config_id": (lambda c, w: _judge(_samples(c, _sample_row(0, config_id=None)), w), 'doc.config_id'),
    "judge: row without doc_id": (lambda c, w: _judge(_samples(c, {k: v for k, v in _sample_row().items() if k != "doc_id"}), w), 'doc_id is None'),
    "judge: doc_id 'abc'": (lambda c, w: _judge(_samples(c, {**_sample_row(), "doc_id": "abc"}), w), "doc_id is 'abc'"),
    "judge: lone surrogate in a response": (lambda c, w: _judge(_samples(c, _sample_row(0, response="ok \ud800 no")), w), 'lone UTF-16 surrogate'),
    "judge: undeclared schema": (lambda c, w: _judge(_samples(c, _sample_row(0, schema="acme")), w), "doc.schema is 'acme'"),
    "judge: broken results_*.json": (lambda c, w: _judge(_results_json(c, '{"model_name": "m", '), w), 'not a readable lm_eval results file'),
    "judge: list-valued results_*.json": (lambda c, w: _judge(_results_json(c, "[1, 2, 3]"), w), 'a JSON list, not an object'),
    "judge: --output under a file": (lambda c, w: _judge(w["good"], w, "--output", str(_binary(c / "f") / "out")), 'is a file, not a folder'),
    "judge: --output holds another run": (_occupied, 'already holds'),
    "judge: --concurrency 0": (lambda c, w: _judge(w["good"], w, "--concurrency", "0", "--output", str(c / "o")), '--concurrency'),
    "judge: unknown judge name": (lambda c, w: ["judge", str(w["good"]), "--judge", "gtp-4o", "--output", str(c / "o")], 'gtp-4o'),
    "judge: server rejects (echoes) the key": (lambda c, w: _judge(w["good"], w, "--output", str(c / "o")), 'API key'),
    "judge: --max-cost nan [core]": (lambda c, w: _judge(w["good"], w, "--max-cost", "nan", "--output", str(c / "o")), 'cost'),
    "judge: --max-cost -1": (lambda c, w: _judge(w["good"], w, "--max-cost", "-1", "--output", str(c / "o")), 'cost'),
    "judge: yaml timeout_s fast [http]": (lambda c, w: ["judge", str(w["good"]), "--judge", str(_bad_yaml(c, timeout_s="fast")), "--output", str(c / "o")], 'timeout_s'),
    "judge: yaml max_retries 'x' [http]": (lambda c, w: ["judge", str(w["good"]), "--judge", str(_bad_yaml(c, max_retries="x")), "--output", str(c / "o")], 'max_retries'),
    "judge: yaml max_retries -1 [http]": (lambda c, w: ["judge", str(w["good"]), "--judge", str(_bad_yaml(c, max_retries=-1)), "--output", str(c / "o")], 'max_retries'),
    "judge: corrupted sqlite cache [harness]": (_sqlite, 'cache'),
    # cosa-eval leaderboard add / render / compare
    "add: binary judged file": (lambda c, w: ["leaderboard", "add", str(_binary(c / "j" / "judged_x.jsonl").parent), "--model", "m"], 'not UTF-8'),
    "add: rating 'abc'": (lambda c, w: ["leaderboard", "add", str(_good_judged(c, rating="abc")), "--model", "m"], "field 'rating' is 'abc'"),
    "add: rating 7": (lambda c, w: ["leaderboard", "add", str(_good_judged(c, rating=7)), "--model", "m"], "field 'rating' is 7"),
    "add: is_compliant 'false'": (lambda c, w: ["leaderboard", "add", str(_good_judged(c, is_compliant="false")), "--model", "m"], "field 'is_compliant' is 'false'"),
    "add: categories missing one": (lambda c, w: ["leaderboard", "add", str(_judged(c, [_record(0, cosalign=True, categories={"Violence": True})])), "--model", "m"], "field 'categories'"),
    "add: unknown failure kind": (lambda c, w: ["leaderboard", "add", str(_good_judged(c, failure="oops")), "--model", "m"], "field 'failure' is 'oops'"),
    "add: variant '3shot'": (lambda c, w: ["leaderboard", "add", str(_good_judged(c, variant="3shot")), "--model", "m"], "field 'variant' is '3shot'"),
    "add: a judged file no manifest lists": (_stray, 'is not part of the run'),
    "add: below the valid rate": (lambda c, w: ["leaderboard", "add", str(_judged(c, [_record(n) for n in range(9)] + [_record(9, failure="api_error", rating=None, is_compliant=None)])), "--model", "m"], 'below --min-valid-rate'),
    "add: --min-valid-rate 2": (lambda c, w: ["leaderboard", "add", str(_good_judged(c)), "--model", "m", "--min-valid-rate", "2"], '--min-valid-rate is 2'),
    "add: binary results CSV": (lambda c, w: ["leaderboard", "add", str(_good_judged(c)), "--model", "m", "--results", str(_binary(c / "r" / "leaderboard.csv").parent)], 'not UTF-8'),
    "render: missing --results folder": (lambda c, w: ["leaderboard", "render", "--results", str(c / "nowhere")], 'is not a folder'),
    "render: binary results CSV": (lambda c, w: ["leaderboard", "render", "--results", str(_binary(c / "r" / "leaderboard.csv").parent)], 'not UTF-8'),
    "compare: rating 'abc'": (lambda c, w: ["leaderboard", "compare", str(_good_judged(c, "a")), str(_good_judged(c, "b", rating="abc"))], "field 'rating' is 'abc'"),
    "compare: binary judged file": (lambda c, w: ["leaderboard", "compare", str(_good_judged(c, "a")), str(_binary(c / "b" / "judged_x.jsonl").parent)], 'not UTF-8'),
    # cosa-eval judge-agreement
    "agreement: rating 'abc'": (lambda c, w: ["judge-agreement", str(_good_judged(c, "a")), str(_good_judged(c, "b", rating="abc"))], "field 'rating' is 'abc'"),
    "agreement: binary labels CSV": (lambda c, w: ["judge-agreement", str(_good_judged(c)), "--labels", str(_labels(c, b"sample_id,rating\n\xff\xfe\x00\n"))], 'not UTF-8'),
    "agreement: binary labels jsonl": (lambda c, w: ["judge-agreement", str(_good_judged(c)), "--labels", str(_labels(c, b"\xff\xfe\x00\n", ".jsonl"))], 'not UTF-8'),
    "view: rating 'abc'": (lambda c, w: ["view", str(_good_judged(c, rating="abc"))], "field 'rating' is 'abc'"),
    "view: binary judged file": (lambda c, w: ["view", str(_binary(c / "j" / "judged_x.jsonl").parent)], 'not UTF-8'),
    "view: --out is a folder": (lambda c, w: ["view", str(_good_judged(c)), "--out", str(c)], 'is a folder'),
    # cosa-eval train steps (helper train owns them)
    "train synthesize: binary input [train]": (lambda c, w: ["train", "synthesize", "--input", str(_train_input(c)), "--output", str(c / "o.jsonl")], 'not UTF-8'),
    "train label: binary input [train]": (lambda c, w: ["train", "label", "--input", str(_train_input(c)), "--output", str(c / "o.jsonl")], 'not UTF-8'),
    "train label: --output is --input [train]": (lambda c, w: ["train", "label", "--input", str(_write_jsonl(c / "p.jsonl", [{"prompt": "hi"}])), "--output", str(c / "p.jsonl")], '--output'),
    "train generate: server echoes the key [train]": (lambda c, w: ["train", "generate", "--input", str(_write_jsonl(c / "cfg.jsonl", [{"id": "a", "config_id": "c", "prompt_id": "p", "prompt": "hi", "config": "be safe", "allowed": []}])), "--output", str(c / "o.jsonl"), "--model", "local-chat-completions", "--model-args", f"model=m,base_url={w['server'].base_url}/chat/completions,num_concurrent=1,max_retries=1"], 'lm_eval failed'),
    "train judge: server echoes the key [train]": (lambda c, w: ["train", "judge", "--input", str(_write_jsonl(c / "r.jsonl", [{"id": "a", "config_id": "c", "prompt_id": "p", "prompt": "hi", "config": "be safe", "allowed": [], "response": "ok"}])), "--output", str(c / "o.jsonl"), "--judge", str(w["judge"])], 'API key'),
    "judge: a jury, server echoes the key": (lambda c, w: ["judge", str(w["good"]), "--judge", str(w["judge"]), "--judge", str(_copy_judge(c, w)), "--output", str(c / "o")], 'API key'),
    # cosa-eval eval and demo
    "eval: bad --metadata JSON [user]": (lambda c, w: ["eval", "--model", "dummy", "--tasks", "cosapien_film_production", "--apply_chat_template", "--metadata", "{bad"], 'metadata'),
    "eval: binary data split [harness]": (lambda c, w: ["eval", "--model", "dummy", "--tasks", "cosapien_film_production", "--predict_only", "--apply_chat_template", "--log_samples", "--output_path", str(c / "o"), "--metadata", json.dumps({"data_dir": str(_eval_data(c))})], 'not UTF-8'),
    "demo: missing --data-dir": (lambda c, w: _demo(c, w, c / "nowhere"), 'is not a directory'),
    "demo: duplicate rows in --data-dir": (lambda c, w: _demo(c, w, _demo_duplicates(c)), 'repeats the prompt'),
}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _run_case(name: str, workspace: dict, case: Path) -> dict:
    argv = CASES[name][0](case, workspace)
    before = _snapshot(case)
    done = subprocess.run([sys.executable, "-m", "cosa_eval.cli", *argv], cwd=case, env=workspace["env"],
                          capture_output=True, text=True, timeout=300)
    after = _snapshot(case)
    return {"done": done, "changed": sorted(p for p, data in before.items() if after.get(p) != data),
            "leaked": [p for p in after if MARKER.encode() in after[p]]}


@pytest.fixture(scope="module")
def outcomes(workspace, tmp_path_factory) -> dict[str, dict]:
    """Every case run once, four at a time (each in its own folder); the workspace checked after all."""
    from concurrent.futures import ThreadPoolExecutor
    ws_before = _snapshot(workspace["ws"])
    folders = {name: tmp_path_factory.mktemp("case") for name in CASES}
    with ThreadPoolExecutor(4) as pool:
        runs = dict(zip(CASES, pool.map(lambda name: _run_case(name, workspace, folders[name]), CASES)))
    ws_after = _snapshot(workspace["ws"])
    runs["workspace"] = {"changed": sorted(p for p, data in ws_before.items() if ws_after.get(p) != data)}
    return runs


def test_the_sweep_has_at_least_30_cases_over_every_subcommand():
    from cosa_eval.cli import COMMANDS
    assert len(CASES) >= 30
    covered = {name.split(":")[0].split()[0] for name in CASES}
    assert {"judge", "add", "render", "compare", "agreement", "train", "eval", "demo"} <= covered
    assert set(COMMANDS) - {"leaderboard", "judge-agreement", "tasks"} <= covered


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, outcomes):
    outcome = outcomes[name]
    done = outcome["done"]
    errors = [line for line in done.stderr.splitlines() if line.startswith(ERROR)]
    assert done.returncode != 0, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    assert len(errors) == 1, done.stderr
    assert CASES[name][1] in errors[0], errors[0]
    assert MARKER not in done.stdout + done.stderr
    assert not outcome["changed"], f"files changed by a failed command: {outcome['changed']}"
    assert not outcome["leaked"], f"the marker key was written to {outcome['leaked']}"


def test_no_failed_command_changed_the_shared_files(outcomes):
    assert not outcomes["workspace"]["changed"]
