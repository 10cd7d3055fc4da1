"""Scoring: CoSA-Score and breakdowns, bootstrap CIs and paired differences, judge agreement, the leaderboard."""
from __future__ import annotations

from .bootstrap import bootstrap_ci, paired_compare, paired_difference
from .leaderboard import add_runs, compare_runs, format_comparison, load_run, run_rows
from .metrics import score_groups, score_records
from .render import render

__all__ = ["add_runs", "bootstrap_ci", "compare_runs", "format_comparison", "load_run", "paired_compare",
           "paired_difference", "render", "run_rows", "score_groups", "score_records"]
