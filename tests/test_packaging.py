"""A non-editable wheel carries the tasks, judges and demo data, and `cosa-eval eval` finds them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_lm_eval_tasks import ROOT, samples_of


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next((tmp / "dist").glob("cosa_eval-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp / "site"),
                    str(wheel)], check=True, capture_output=True)
    return tmp / "site"


def _python(site: Path, code: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                          cwd=cwd, env=env).stdout.strip()


def test_wheel_ships_tasks_judges_and_demo_data(wheel_site, tmp_path):
    found = _python(wheel_site, "import cosa_eval; print(cosa_eval.tasks_dir()); print(cosa_eval.judges_dir()); "
                    "print(cosa_eval.__file__)", tmp_path).splitlines()
    tasks, judges, package = map(Path, found)
    assert str(package).startswith(str(wheel_site))
    assert (tasks / "cosa" / "_cosa_yaml").is_file() and (tasks / "cosa" / "demos.yaml").is_file()
    assert len(list((tasks / "cosa").glob("cosapien_*.yaml"))) >= 12
    assert (judges / "gpt-4o" / "judge.yaml").is_file() and (judges / "rubrics" / "helpfulness.jinja").is_file()
    assert len(list((package.parent / "demo_data" / "cosalign_test").glob("*.jsonl"))) == 8
    assert (package.parent / "train" / "launch" / "single_gpu.yaml").is_file()
    entry_points = _python(wheel_site, "from importlib.metadata import entry_points as e; "
                           "print(sorted(x.name for x in e(group='cosa_eval.judges')))", tmp_path)
    assert "openai" in entry_points and "transformers" in entry_points
    groups = _python(wheel_site, "from importlib.metadata import entry_points as e; print(sorted(e().groups))", tmp_path)
    assert "lm_eval.tasks" not in groups                   # read by no lm_eval release (tests/test_eval_cli.py)


def test_cosa_eval_eval_runs_from_any_folder_with_the_wheel(wheel_site, tmp_path, tiny_model_dir):
    env = {**os.environ, "PYTHONPATH": str(wheel_site)}
    result = subprocess.run([sys.executable, "-m", "cosa_eval.cli", "eval", "--model", "hf", "--model_args",
                             f"pretrained={tiny_model_dir}", "--tasks", "cosapien_demo", "--apply_chat_template",
                             "--limit", "1", "--predict_only", "--output_path", str(tmp_path / "out"),
                             "--gen_kwargs", "max_gen_toks=2"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert set(samples_of(tmp_path / "out")) == {"cosapien_demo_cooking_school", "cosapien_demo_crime_novel_studio"}


def test_cosa_eval_tasks_runs_from_any_folder_with_the_wheel(wheel_site, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(wheel_site), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "cosa_eval.cli", "tasks"], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert str(wheel_site) in result.stdout and "cosapien_demo_cooking_school" in result.stdout
