"""Finding and running the tasks from the command line: `cosa-eval tasks`, `cosa-eval eval --help`,
argument and task-name errors before any model loads, and lm_eval's own `ls tasks`."""
from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
from pathlib import Path

from test_lm_eval_tasks import assert_one_line_error

ROOT = Path(__file__).resolve().parents[1]


def cosa_eval(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    full_env = {key: value for key, value in os.environ.items() if key != "COSA_DATA_DIR"}
    return subprocess.run([sys.executable, "-m", "cosa_eval.cli", *args], capture_output=True, text=True,
                          env={**full_env, **(env or {})}, timeout=timeout)


def _table(stdout: str) -> dict[str, tuple[str, str, str]]:
    rows = {}
    for line in stdout.splitlines():
        match = re.match(r"^(\s*)(\S+)\s+(task|group)\s+(\S+)\s+(.+)$", line)
        if match:
            rows[match[2]] = (match[3], match[4], match[5])
    return rows


def test_tasks_lists_every_task_and_group_with_counts_and_source(local_data_dir):
    result = cosa_eval("tasks", "--data-dir", str(local_data_dir))
    assert result.returncode == 0, result.stderr[-2000:]
    rows = _table(result.stdout)
    yamls = {p.stem for p in (ROOT / "tasks" / "cosa").glob("*.yaml")} - {"demos"}
    assert set(rows) == yamls                                      # every task and group, nothing else
    members = [name for name in rows if name.startswith("cosapien_") and rows[name][0] == "task"
               and "_5shot_" not in name and "_demo_" not in name]
    assert len(members) == 5
    assert rows["cosapien"][0] == "group"
    assert int(rows["cosapien"][1]) == sum(int(rows[m][1]) for m in members) > 0
    assert rows["cosapien_demo"][1:] == ("12", "packaged sample (cosa_eval/demo_data)")
    assert rows["cosalign_test_violence"][2] == f"local {local_data_dir / 'cosalign_test'}"
    assert int(rows["cosalign_test"][1]) == int(rows["cosalign_test_seen"][1]) + int(rows["cosalign_test_unseen"][1])
    assert "lm_eval ls tasks" in result.stdout and "no entry point" in result.stdout


def test_tasks_without_data_says_why_counts_are_missing(tmp_path):
    result = cosa_eval("tasks", env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-2000:]
    rows = _table(result.stdout)
    assert rows["cosapien"][1] == "?" and rows["cosapien_demo"][1] == "12"
    assert "? hub microsoft/CoSApien: could not load" in result.stdout and "COSA_DATA_DIR" in result.stdout
    assert "cosa-eval tasks --data-dir DIR" in result.stdout


def test_lm_eval_lists_the_tasks_given_the_printed_folder():
    folder = cosa_eval("tasks", "--path").stdout.strip()
    assert Path(folder, "cosa", "_cosa_yaml").is_file()
    listed = subprocess.run([sys.executable, "-m", "lm_eval", "ls", "groups", "--include_path", folder],
                            capture_output=True, text=True, timeout=600)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert re.search(r"\bcosalign_test_unseen\b", listed.stdout) and re.search(r"\bcosapien_5shot\b", listed.stdout)


def test_eval_help_is_cosa_evals_and_lm_evals_help():
    result = cosa_eval("eval", "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage: cosa-eval eval")
    assert "--apply_chat_template" in result.stdout and "--model_args" in result.stdout and "--metadata" in result.stdout


def test_bad_metadata_json_is_one_line_error(tmp_path):
    result = cosa_eval("eval", "--model", "hf", "--model_args", f"pretrained={tmp_path}", "--tasks", "cosapien_demo",
                       "--apply_chat_template", "--metadata", '{"judge": gpt-4o}')
    assert_one_line_error(result, "--metadata", "Invalid JSON", "double quotes")


def test_unknown_task_is_named_before_any_model_loads(tmp_path):
    result = cosa_eval("eval", "--model", "hf", "--model_args", f"pretrained={tmp_path / 'no-such-model'}",
                       "--tasks", "cosapien_demo,cosapien_dmo", "--apply_chat_template")
    assert_one_line_error(result, "'cosapien_dmo' (did you mean 'cosapien_demo'?)", "cosa-eval tasks")


def test_no_task_entry_point_that_no_lm_eval_reads():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert "lm_eval.tasks" not in config["options.entry_points"]
    import lm_eval
    sources = [p.read_text(encoding="utf-8", errors="replace") for p in Path(lm_eval.__file__).parent.rglob("*.py")]
    # if an lm_eval release starts discovering plugins, declare the entry point again
    assert not any(re.search(r"entry_points\(", text) for text in sources)
