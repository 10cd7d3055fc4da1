"""The real lm_eval CLI on a tiny random Llama over the cosa-eval tasks, with local data."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


from cosa_eval.config_text import frame_scenario, render_config
from cosa_eval.taxonomy import categories_of_split
from tiny_model import NO_SYSTEM_TEMPLATE, build_tiny_llama

ROOT = Path(__file__).resolve().parents[1]
TURN = re.compile(r"<\|(system|user|assistant)\|>(.*?)<\|end\|>", re.S)


def run_lm_eval(args: list[str], data_dir: Path, *, cli: str = "lm_eval", env: dict | None = None,
                tasks: Path = ROOT / "tasks"):
    command = [sys.executable, "-m", "lm_eval", *args, "--include_path", str(tasks)]
    if cli == "cosa-eval":
        command = [sys.executable, "-m", "cosa_eval.cli", "eval", *args]
    full_env = {**os.environ, "COSA_DATA_DIR": str(data_dir), **(env or {})}
    full_env.pop("OPENAI_API_KEY", None)
    return subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=600)


def samples_of(out: Path) -> dict[str, list[dict]]:
    found = {}
    for path in out.rglob("samples_*.jsonl"):
        task = re.match(r"samples_(.+)_\d{4}-", path.name).group(1)
        found[task] = [json.loads(line) for line in path.read_text().splitlines()]
    return found


def turns(row: dict) -> list[tuple[str, str]]:
    return TURN.findall(row["arguments"]["gen_args_0"]["arg_0"])


ACME_SCENARIO = "We are Acme's support bot. Help with orders and accounts; never share another customer's data."


def readme_example(tmp: Path, data_dir: Path) -> tuple[Path, Path]:
    """The tasks/README worked example as written there: its YAML beside the shipped task YAMLs, and
    its data (4 prompts) beside the shared local data."""
    section = (ROOT / "tasks" / "README.md").read_text().split("## Adding a task")[1]
    snippet = textwrap.dedent(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    tasks = tmp / "tasks"
    shutil.copytree(ROOT / "tasks", tasks)
    name = re.search(r"task: (\S+)", snippet).group(1)
    (tasks / "cosa" / f"{name}.yaml").write_text(snippet)
    data = tmp / "data"
    (data / "acme").mkdir(parents=True)
    for name in ("cosapien", "cosalign_test"):
        (data / name).symlink_to(data_dir / name)
    rows = [{"prompt": f"Where is my order number {n}?", "scenario": ACME_SCENARIO, "type": "allowed"} for n in range(4)]
    (data / "acme" / "support_bot.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return tasks, data


def assert_one_line_error(result, *fragments: str):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("cosa-eval: error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in errors[0]


def test_every_prompt_carries_its_own_config(tmp_path, tiny_model_dir, local_data_dir, cosapien_configs):
    out = tmp_path / "out"
    tasks, data = readme_example(tmp_path, local_data_dir)
    result = run_lm_eval(["--model", "hf", "--model_args", f"pretrained={tiny_model_dir}", "--tasks",
                          "cosapien,cosalign_test,acme_support_bot", "--apply_chat_template", "--limit", "4",
                          "--predict_only", "--log_samples", "--output_path", str(out), "--gen_kwargs",
                          "max_gen_toks=4"], data, tasks=tasks)
    assert result.returncode == 0, result.stderr[-3000:]
    samples = samples_of(out)
    assert len(samples) == 14 and all(len(rows) == 4 for rows in samples.values())
    configs = {**cosapien_configs, "support_bot": ACME_SCENARIO}
    for task, rows in samples.items():
        for row in rows:
            doc = row["doc"]
            (role0, system), (role1, user) = turns(row)
            assert (role0, role1) == ("system", "user")
            assert user == doc["prompt"]
            declared = (("acme", "cosapien") if task == "acme_support_bot" else
                        ("cosapien",) * 2 if task.startswith("cosapien") else ("cosalign_test",) * 2)
            assert (doc["benchmark"], doc["schema"], doc["variant"]) == (*declared, "0shot")
            assert task.endswith(doc["config_id"].lower().replace(".", "_"))
            if doc["schema"] == "cosapien":
                expected = frame_scenario(configs[doc["config_id"]])
            else:
                expected = render_config(categories_of_split(doc["config_id"]), f"{doc['config_id']}\x1f{doc['prompt']}")
            assert system == doc["system"] == expected, task
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    assert {results["configs"][task]["metadata"]["version"] for task in samples} == {2.0}


def _five_shot_run(out: Path, tiny_model_dir: Path, data_dir: Path, limit: int, *extra: str) -> dict[str, list[dict]]:
    result = run_lm_eval(["--model", "hf", "--model_args", f"pretrained={tiny_model_dir}", "--tasks",
                          "cosapien_5shot_film_production,cosalign_test_5shot_violence", "--apply_chat_template",
                          "--limit", str(limit), "--predict_only", "--log_samples", "--output_path", str(out), *extra],
                         data_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return samples_of(out)


def test_five_shot_docs_get_their_own_seeded_demos_identical_across_runs(tmp_path, tiny_model_dir, local_data_dir):
    first = _five_shot_run(tmp_path / "a", tiny_model_dir, local_data_dir, 3, "--gen_kwargs", "max_gen_toks=2")
    # The second run keeps the tasks' own decoding (1,024 tokens: one doc per task keeps it short),
    # so its results file shows the settings lm_eval really used.
    second = _five_shot_run(tmp_path / "b", tiny_model_dir, local_data_dir, 1)
    shown = {}
    for task, rows in first.items():
        for row in rows:
            sent = turns(row)
            assert [role for role, _ in sent] == ["system"] + ["user", "assistant"] * 5 + ["user"]
            demos = [{"user": u, "assistant": a} for (_, u), (_, a) in zip(sent[1:-1:2], sent[2:-1:2])]
            assert demos == row["doc"]["demos"], task
            shown.setdefault(task, []).append(tuple(d["user"] for d in demos))
        assert turns(rows[0]) == turns(second[task][0]), f"{task}: the same demos on a second run"
    assert len(set(shown["cosalign_test_5shot_violence"])) == 3, "each CoSAlign-Test doc draws its own 5"
    assert len(set(shown["cosapien_5shot_film_production"])) == 1, "CoSApien keeps 5 fixed per config"
    results = json.loads(next((tmp_path / "b").rglob("results_*.json")).read_text())
    for task in second:
        gen = results["configs"][task]["generation_kwargs"]
        assert gen["until"] == [] and gen["max_gen_toks"] == 1024, gen
        assert gen["do_sample"] is False and gen["temperature"] == 0.0, gen


def test_without_chat_template_the_run_stops_before_generation(tmp_path, tiny_model_dir, local_data_dir):
    out = tmp_path / "out"
    result = run_lm_eval(["--model", "hf", "--model_args", f"pretrained={tiny_model_dir}", "--tasks", "cosapien",
                          "--limit", "1", "--predict_only", "--output_path", str(out)], local_data_dir)
    assert_one_line_error(result, "--apply_chat_template")
    assert not list(out.rglob("samples_*"))


@pytest.fixture(scope="module")
def no_system_model(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("nosys"), chat_template=NO_SYSTEM_TEMPLATE)


def test_template_that_drops_system_stops_or_folds_when_asked(tmp_path, no_system_model, local_data_dir):
    args = ["--model", "hf", "--model_args", f"pretrained={no_system_model}", "--tasks", "cosapien_game_development",
            "--apply_chat_template", "--limit", "1", "--predict_only", "--output_path", str(tmp_path / "a"),
            "--gen_kwargs", "max_gen_toks=2"]
    assert_one_line_error(run_lm_eval(args, local_data_dir), "drops the system message", "fold_system")
    folded = run_lm_eval(args[:-4] + ["--output_path", str(tmp_path / "b"), "--gen_kwargs", "max_gen_toks=2",
                                      "--metadata", '{"fold_system": true}'], local_data_dir)
    assert folded.returncode == 0, folded.stderr[-3000:]
    row = samples_of(tmp_path / "b")["cosapien_game_development"][0]
    [(role, content)] = turns(row)
    assert role == "user" and content.startswith(row["doc"]["system"]) and content.endswith(row["doc"]["prompt"])
    results = json.loads(next((tmp_path / "b").rglob("results_*.json")).read_text())
    assert results["configs"]["cosapien_game_development"]["metadata"]["system_message"].startswith("folded")


def test_truncation_that_would_cut_the_config_stops(tmp_path, tiny_model_dir, local_data_dir):
    result = run_lm_eval(["--model", "hf", "--model_args", f"pretrained={tiny_model_dir},max_length=1100",
                          "--tasks", "cosapien_book_publisher_arab", "--apply_chat_template", "--limit", "1",
                          "--predict_only", "--output_path", str(tmp_path)], local_data_dir)
    assert_one_line_error(result, "cut the safety config", "max_length")


def test_malformed_row_is_a_one_line_error(tmp_path, tiny_model_dir):
    bad = tmp_path / "data" / "cosapien"
    bad.mkdir(parents=True)
    (bad / "film_production.jsonl").write_text('{"prompt": "x", "scenario": "y", "type": "sometimes"}\n')
    result = run_lm_eval(["--model", "hf", "--model_args", f"pretrained={tiny_model_dir}", "--tasks",
                          "cosapien_film_production", "--apply_chat_template", "--predict_only",
                          "--output_path", str(tmp_path / "out")], tmp_path / "data")
    assert_one_line_error(result, "film_production.jsonl: row 1: field 'type'")


def test_missing_data_dir_is_a_one_line_error(tmp_path, tiny_model_dir):
    result = run_lm_eval(["--model", "hf", "--model_args", f"pretrained={tiny_model_dir}", "--tasks", "cosapien",
                          "--apply_chat_template", "--predict_only", "--output_path", str(tmp_path)],
                         tmp_path / "missing")
    assert_one_line_error(result, "COSA_DATA_DIR", "is not a directory")


def test_cosa_eval_eval_adds_include_path_and_suggests_task_names(tmp_path, tiny_model_dir, local_data_dir):
    args = ["--model", "hf", "--model_args", f"pretrained={tiny_model_dir}", "--apply_chat_template", "--limit", "1",
            "--predict_only", "--output_path", str(tmp_path), "--gen_kwargs", "max_gen_toks=2"]
    typo = run_lm_eval([*args, "--tasks", "cosalign_tset"], local_data_dir, cli="cosa-eval")
    assert_one_line_error(typo, "did you mean 'cosalign_test'")
    ok = run_lm_eval([*args, "--tasks", "cosalign_test_unseen"], local_data_dir, cli="cosa-eval")
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert len(samples_of(tmp_path)) == 3
    no_template = run_lm_eval([a for a in args if a != "--apply_chat_template"] + ["--tasks", "cosapien"],
                              local_data_dir, cli="cosa-eval")
    assert_one_line_error(no_template, "--apply_chat_template")
