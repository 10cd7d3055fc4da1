"""The results folder's writers: concurrent adds keep every row, a render is all or nothing, and a
path that cannot be used is one error line, naming it, with nothing changed."""
from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scoring_fixtures import run_b, write_run
from scoring_harness import REPO_RESULTS, leaderboard, snapshot
from cosa_eval import cli

ROOT = Path(__file__).resolve().parents[2]
TRIALS = 6                # 20 trials measured by hand: every row kept every time
# Each child imports everything, says it is ready, and waits for the word to go: a barrier, no sleeps.
CHILD = ("import sys; from cosa_eval.cli import main; import cosa_eval.scoring.leaderboard; "
         "print('ready', flush=True); sys.stdin.readline(); sys.exit(main(sys.argv[1:]))")


def _models(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return sorted(row["model"] for row in csv.DictReader(handle))


def _main_fails(capsys, *argv: str | Path) -> str:
    """``cosa-eval ARGV`` exits non-zero with exactly one error line and no traceback."""
    with pytest.raises(SystemExit) as stop:
        cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert stop.value.code != 0 and err.startswith("cosa-eval: error: ") and err.count("\n") == 1, err
    return err


def test_concurrent_adds_keep_every_row(tmp_path):
    runs = [write_run(tmp_path / f"run-{name}", run_b(), f"model-{name}") for name in "ab"]
    lost = []
    for trial in range(TRIALS):
        results = tmp_path / f"results-{trial}"
        children = [subprocess.Popen([sys.executable, "-c", CHILD, "leaderboard", "add", "--allow-partial", str(run),
                                      "--results", str(results)], cwd=ROOT, text=True, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE) for run in runs]
        assert all(child.stdout.readline() == "ready\n" for child in children)
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            _, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
        if _models(results / "leaderboard.csv") != ["model-a", "model-b"]:
            lost.append(trial)
        assert not [p for p in results.iterdir() if p.name.endswith(".tmp")]
    assert not lost, f"rows lost in trials {lost} of {TRIALS}"


@pytest.fixture()
def rendered(tmp_path: Path) -> Path:
    """A results folder with one run added and rendered."""
    results = Path(shutil.copytree(REPO_RESULTS, tmp_path / "results"))
    assert leaderboard("add", "--allow-partial", write_run(tmp_path / "run", run_b(), "model-b"), "--results", results) == 0
    assert leaderboard("render", "--results", results) == 0
    return results


def test_a_failing_png_leaves_md_and_html_as_they_were(rendered, tmp_path, monkeypatch, capsys):
    from cosa_eval.scoring import plot

    assert leaderboard("add", "--allow-partial", write_run(tmp_path / "run-2", run_b(), "model-c"), "--results", rendered) == 0
    before = snapshot(rendered)

    def broken(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(plot, "render_plot", broken)
    err = _main_fails(capsys, "leaderboard", "render", "--results", rendered)
    assert "no space left" in err.lower() and str(rendered) in err
    assert snapshot(rendered) == before            # md and html not rewritten, no temporary left


def test_a_mathtext_model_name_is_plain_text_in_the_png(rendered, tmp_path):
    name = r"gpt$\x$-mini"
    assert leaderboard("add", "--allow-partial", write_run(tmp_path / "run-2", run_b(), name), "--results", rendered) == 0
    assert leaderboard("render", "--results", rendered) == 0
    from cosa_eval.scoring.plot import build_figure
    from cosa_eval.scoring.render import load_board

    figure = build_figure(load_board(rendered))
    labels = [t.get_text() for axis in figure.axes for t in axis.get_yticklabels()]
    assert any(name in label for label in labels)


def test_render_out_a_file(rendered, tmp_path, capsys):
    file = tmp_path / "notes.txt"
    file.write_text("mine\n")
    err = _main_fails(capsys, "leaderboard", "render", "--results", rendered, "--out", file)
    assert f"--out {file}" in err and "not a folder" in err
    assert file.read_text() == "mine\n"


def test_add_results_a_file(tmp_path, capsys):
    file = tmp_path / "notes.txt"
    file.write_text("mine\n")
    run = write_run(tmp_path / "run", run_b(), "model-b")
    for results in (file, file / "sub"):
        err = _main_fails(capsys, "leaderboard", "add", "--allow-partial", run, "--results", results)
        assert f"--results {results}" in err and "not a folder" in err
    assert file.read_text() == "mine\n"


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC, errno.EACCES])
def test_read_only_or_full_results_folder(rendered, tmp_path, monkeypatch, capsys, code):
    """Simulated (tests may run as root, where permissions do not stop a write)."""
    before = snapshot(rendered)
    real = os.replace

    def failing(src, dst, *args, **kwargs):
        if Path(dst).parent == rendered:
            raise OSError(code, os.strerror(code), str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing)
    run = write_run(tmp_path / "run-2", run_b(), "model-c")
    err = _main_fails(capsys, "leaderboard", "add", "--allow-partial", run, "--results", rendered)
    assert str(rendered) in err and errno.errorcode[code] in err
    err = _main_fails(capsys, "leaderboard", "render", "--results", rendered)
    assert str(rendered) in err and errno.errorcode[code] in err
    assert snapshot(rendered) == before


@pytest.mark.parametrize("date", ["NaN", "Infinity", "1e20", "-1e20", '"nan"', '"1e20"'])
def test_an_impossible_date_in_lm_eval_results(tmp_path, capsys, date):
    run = write_run(tmp_path / "run", run_b(), "model-b")
    results_json = next(run.glob("results_*.json"))
    data = results_json.read_text().replace('"date": 1700000000.0', f'"date": {date}')
    results_json.write_text(data)
    assert json.loads(data)["date"] is not None
    err = _main_fails(capsys, "leaderboard", "add", "--allow-partial", run, "--results", tmp_path / "results")
    assert str(results_json) in err and "'date'" in err
    assert not (tmp_path / "results").exists()


def test_render_of_a_read_only_results_folder_elsewhere(rendered, tmp_path, monkeypatch):
    """No lock file can be made in a read-only folder, and nobody can be writing there: render reads it."""
    import filelock

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self.lock_file))

    monkeypatch.setattr(filelock.FileLock, "acquire", read_only)
    assert leaderboard("render", "--results", rendered, "--out", tmp_path / "views") == 0
    assert (tmp_path / "views" / "leaderboard.md").read_bytes() == (rendered / "leaderboard.md").read_bytes()
