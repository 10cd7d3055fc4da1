"""``cosa-eval leaderboard add | render | compare``: judged runs -> results/ tables, pages and plots.

    cosa-eval leaderboard add out/llama-3.1-8b                       # add or update a run's rows
    cosa-eval leaderboard render                                     # leaderboard.md/.html/.png
    cosa-eval leaderboard compare out/model-a out/model-b            # paired difference, CI, p

The results folder defaults to $COSA_RESULTS_DIR, else ~/.local/share/cosa-eval/results
(``tables.default_results_dir``); the paper's reported rows ship with the package and are always shown.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..atomic import check_folder
from ..errors import CosaError
from .bootstrap import DEFAULT_RESAMPLES
from .coverage import marks
from . import leaderboard
from .tables import RESULTS_ENV, default_results_dir

RESULTS_HELP = f"results folder (default: ${RESULTS_ENV}, else ~/.local/share/cosa-eval/results)"


def _bootstrap_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cascade-oracle", action="store_true",
                        help="score unsafe responses as refusals (h = 0, safe): the Cascade-Oracle upper bound")
    parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES, metavar="N",
                        help=f"bootstrap resamples (default {DEFAULT_RESAMPLES})")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed, recorded in the results (default 0)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the add / render / compare subcommands."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="add or update runs in results/leaderboard*.csv",
                         description="Score judged runs and add them to the leaderboard CSVs; a run "
                                     "added again replaces its rows.")
    add.add_argument("runs", nargs="+", metavar="RUN",
                     help="an lm_eval output folder holding judged_*.jsonl, or judged .jsonl files")
    add.add_argument("--results", type=Path, metavar="DIR", help=RESULTS_HELP)
    add.add_argument("--model", metavar="NAME",
                     help="model name (default: from lm_eval's results_*.json beside the judged files, "
                          "shortened: a hub cache path becomes org/name, a local path its folder name)")
    add.add_argument("--min-valid-rate", type=float, default=leaderboard.DEFAULT_MIN_VALID_RATE, metavar="FRACTION",
                     help=f"refuse a run whose share of validly judged responses is lower (default "
                          f"{leaderboard.DEFAULT_MIN_VALID_RATE})")
    add.add_argument("--allow-partial", action="store_true",
                     help="add a run that lm_eval cut (--limit, --samples) or that covers fewer configs or "
                          "documents than its benchmark declares; its rows are marked partial")
    add.add_argument("--allow-mixed-judge", action="store_true",
                     help="add a run whose answers came from more than one judge snapshot (refused by default)")
    _bootstrap_options(add)
    render = sub.add_parser("render", help="write leaderboard.md, leaderboard.html and leaderboard.png",
                            description="Render the results CSVs as markdown, a static HTML page and a plot.")
    render.add_argument("--results", type=Path, metavar="DIR", help=RESULTS_HELP)
    render.add_argument("--out", metavar="DIR", help="output folder (default: the results folder)")
    compare = sub.add_parser("compare", help="paired comparison of two runs on the same prompts",
                             description="CoSA-Score of RUN_A minus RUN_B on the same prompts, with a "
                                         "paired-bootstrap CI and a two-sided p-value.")
    compare.add_argument("run_a", metavar="RUN_A")
    compare.add_argument("run_b", metavar="RUN_B")
    compare.add_argument("--json", action="store_true", help="print the full result as JSON")
    _bootstrap_options(compare)


def main(args: argparse.Namespace) -> int:
    """Run the chosen action; CosaError propagates to cosa_eval.cli, which prints it and exits 2."""
    if args.action in ("add", "render"):
        args.results = args.results or default_results_dir()
        check_folder("--results", Path(args.results))
    if args.action == "render" and args.out:
        check_folder("--out", Path(args.out))
    if args.action == "add":
        rows = leaderboard.add_runs(args.runs, args.results, model=args.model, cascade_oracle=args.cascade_oracle,
                                    n_resamples=args.resamples, seed=args.seed, min_valid_rate=args.min_valid_rate,
                                    allow_partial=args.allow_partial, allow_mixed_judge=args.allow_mixed_judge)
        for row in rows:
            ci = f"[{row['cosa_score_ci_low']}, {row['cosa_score_ci_high']}]"
            endpoint = f", endpoint {row['judge_endpoint']}" if row["judge_endpoint"] else ""
            print(f"{row['model']} {row['benchmark']}/{row['variant']} judge {row['judge']}: CoSA-Score "
                  f"{row['cosa_score']} {ci}, valid {row['n_valid']}/{row['n']}; parser {row['parser']}{endpoint}"
                  f"{marks(row)}")
        print(f"updated {args.results}/leaderboard.csv and {args.results}/leaderboard_by_config.csv")
    elif args.action == "render":
        from .render import render

        if not Path(args.results).is_dir():
            raise CosaError(f"--results {args.results} is not a folder; add runs first "
                            "('cosa-eval leaderboard add RUN --results DIR') or give the folder holding leaderboard.csv")
        for path in render(args.results, args.out):
            print(f"wrote {path}")
    else:
        results = leaderboard.compare_runs(args.run_a, args.run_b, cascade_oracle=args.cascade_oracle,
                                           n_resamples=args.resamples, seed=args.seed)
        print(json.dumps(results, indent=2) if args.json
              else leaderboard.format_comparison(results, args.run_a, args.run_b))
    return 0
