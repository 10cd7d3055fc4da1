"""Run ``cosa-eval leaderboard ...`` in-process exactly as cosa_eval.cli does (CosaError -> exit 2)."""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from cosa_eval.errors import CosaError, exit_with
from cosa_eval.scoring import cli
from scoring_fixtures import cosapien_run, run_a, run_b, write_run

REPO_RESULTS = Path(__file__).resolve().parents[2] / "results"


def leaderboard(*argv: str | Path) -> int:
    """Exit status of ``cosa-eval leaderboard ARGV``; an error's one line goes to stderr."""
    parser = argparse.ArgumentParser(prog="cosa-eval leaderboard")
    cli.add_arguments(parser)
    try:
        return int(cli.main(parser.parse_args([str(a) for a in argv])) or 0)
    except CosaError as error:
        try:
            exit_with(error)
        except SystemExit as stop:
            return int(stop.code)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def results_with_runs(tmp_path: Path, model_b: str | None = None) -> Path:
    """A copy of the project's results folder with run A (+ a CoSApien run) added, and run B under
    the name ``model_b`` when given; the fixture runs hold failures, so no valid-rate floor."""
    results = Path(shutil.copytree(REPO_RESULTS, tmp_path / "results"))
    runs = [write_run(tmp_path / "run-a", run_a() + cosapien_run(), "model-a")]
    if model_b:
        runs.append(write_run(tmp_path / "run-b", run_b(), model_b))
    assert leaderboard("add", *runs, "--results", results, "--min-valid-rate", "0", "--allow-partial") == 0
    return results
