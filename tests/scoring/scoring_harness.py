"""Run ``cosa-eval leaderboard ...`` in-process exactly as cosa_eval.cli does (CosaError -> exit 2)."""
from __future__ import annotations

import argparse
from pathlib import Path

from cosa_eval.errors import CosaError, exit_with
from cosa_eval.scoring import cli


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
