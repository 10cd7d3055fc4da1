"""Where the leaderboard lives: a user folder by default, the paper's rows always, short model names."""
from __future__ import annotations

import csv

import pytest

from scoring_harness import leaderboard, snapshot
from scoring_fixtures import run_b, write_run


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("COSA_RESULTS_DIR", raising=False)
    checkout = tmp_path / "checkout"
    (checkout / "results").mkdir(parents=True)
    (checkout / "results" / "leaderboard.csv").write_text("tracked file\n")
    monkeypatch.chdir(checkout)
    return tmp_path / "home"


def _models(path):
    with path.open(encoding="utf-8", newline="") as handle:
        return [row["model"] for row in csv.DictReader(handle)]


def test_default_is_a_user_folder_never_the_current_one(tmp_path, home, capsys):
    cached = "/root/.cache/huggingface/hub/models--HuggingFaceTB--SmolLM2-135M-Instruct/snapshots/0a1b2c3d"
    run = write_run(tmp_path / "run", run_b(), cached, f"pretrained={cached}")
    before = snapshot(tmp_path / "checkout")
    assert leaderboard("add", run, "--allow-partial") == 0
    user = home / ".local" / "share" / "cosa-eval" / "results"
    assert _models(user / "leaderboard.csv") == ["HuggingFaceTB/SmolLM2-135M-Instruct"]   # short name
    assert snapshot(tmp_path / "checkout") == before
    assert str(user) in capsys.readouterr().out
    # the paper's rows come with the package: the user's page shows them beside the measured row
    assert leaderboard("render") == 0
    page = (user / "leaderboard.md").read_text(encoding="utf-8")
    assert "HuggingFaceTB/SmolLM2-135M-Instruct" in page and "L3.1-8B-Inst+CoSAlign" in page


def test_cosa_results_dir_and_local_model_paths(tmp_path, home, monkeypatch):
    monkeypatch.setenv("COSA_RESULTS_DIR", str(tmp_path / "mine"))
    run = write_run(tmp_path / "run", run_b(), "./checkpoints/my-model/", "pretrained=./checkpoints/my-model/")
    assert leaderboard("add", run, "--allow-partial") == 0
    assert _models(tmp_path / "mine" / "leaderboard.csv") == ["my-model"]
    assert not (home / ".local").exists()


def test_render_of_a_missing_folder_is_an_error_not_empty_pages(tmp_path, home, capsys):
    assert leaderboard("render", "--results", tmp_path / "nowhere") == 2
    err = capsys.readouterr().err
    assert err.startswith("cosa-eval: error: --results") and "is not a folder" in err
    assert not (tmp_path / "nowhere").exists()
