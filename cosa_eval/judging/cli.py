"""``cosa-eval judge``: judge lm_eval ``samples_*.jsonl`` files and score them.

    cosa-eval judge out/my-model --judge gpt-4o --output judged/my-model
    cosa-eval judge out/my-model --judge openai-compatible --dry-run
    OPENAI_BASE_URL=http://localhost:8000/v1 cosa-eval judge out/ --judge judges/my-judge/judge.yaml

Heavy modules are imported inside main(), so ``cosa-eval judge --help`` stays instant.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..errors import CosaError
from .config import DEFAULT_JUDGE, JUDGE_ENV, default_judge



def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cosa-eval judge``."""
    parser.add_argument("samples", nargs="+", metavar="SAMPLES",
                        help="lm_eval samples_*.jsonl files or --output_path folders (run with --log_samples)")
    parser.add_argument("--judge", action="append", metavar="NAME|PATH",
                        help=f"a shipped judge (gpt-4o, openai-compatible, vllm, transformers) or a judge.yaml "
                             f"(default: ${JUDGE_ENV}, else {DEFAULT_JUDGE}); repeat it for a jury "
                             "(majority for YES/NO and categories, see --jury-rating)")
    parser.add_argument("--jury-rating", choices=("median", "mean"), default="median",
                        help="how a jury combines helpfulness ratings (default: median)")
    parser.add_argument("--output", type=Path, metavar="DIR",
                        help="where judged_<task>.jsonl and scores.json go (default: "
                             "cosa_judged_<judge> beside the first SAMPLES path)")
    parser.add_argument("--cache", type=Path, metavar="PATH",
                        help="judge cache file (default: $COSA_CACHE_DIR/judge_cache.sqlite, else "
                             "~/.cache/cosa-eval/judge_cache.sqlite)")
    parser.add_argument("--max-cost", type=float, metavar="USD",
                        help="stop sending judge calls once this much has been spent in this run")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the calls, tokens and cost a run would need, calling nothing")
    parser.add_argument("--concurrency", type=int, metavar="N", help="judge calls in flight at once")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def default_output(samples: list[str], judge_name: str) -> Path:
    """``cosa_judged_<judge>`` inside the first given folder (or beside the first given file)."""
    first = Path(samples[0])
    return (first if first.is_dir() else first.parent) / f"cosa_judged_{judge_name}"


def _write_outputs(output: Path, records: list, info: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    from ..samples import read_run_info
    from ..scoring.metrics import score_groups
    from .records import judged_file_name, write_judged
    by_task: dict[str, list] = defaultdict(list)
    for record in records:
        by_task[record.sample.task].append(record)
    for task, task_records in sorted(by_task.items()):
        write_judged(output / judged_file_name(task), task_records)
    scores = score_groups(records)
    (output / "scores.json").write_text(json.dumps(scores, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    info = {**info, "samples": [str(p) for p in args.samples], "run": read_run_info(args.samples[0])}
    (output / "judge_run.json").write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
    return scores


def _judge_info(judge: Any, run: Any) -> dict[str, Any]:
    return {"judge": judge.name, "judge_file": str(judge.config.path), "backend": judge.config.backend,
            "model": judge.config.model, "sampling": judge.config.sampling,
            "rubric_hashes": {name: r.hash for name, r in judge.rubrics.items()}, "stats": vars(run.stats)}


def _summary(run: Any, output: Path) -> str:
    stats, records = run.stats, run.records
    valid = sum(r.is_valid for r in records)
    failures = ", ".join(f"{k} {v}" for k, v in sorted(stats.failures.items())) or "none"
    return (f"judged {len(records)} responses ({valid} valid; failures: {failures}); "
            f"{stats.sent} calls sent, {stats.cached} answered from the cache, {stats.reasked} re-asked, "
            f"${stats.cost_usd:.4f} spent; wrote {output}")


def main(args: argparse.Namespace) -> int:
    """Judge, write judged files + scores.json + judge_run.json, print a one-line summary."""
    from ..samples import read_samples
    from .engine import estimate, judge_run
    from .judge import load_judge
    if args.concurrency is not None and args.concurrency < 1:
        raise CosaError(f"--concurrency must be at least 1, got {args.concurrency}")
    samples = read_samples(args.samples)
    names = args.judge or [default_judge()]
    if len(names) > 1:
        return _main_jury(samples, names, args)
    judge = load_judge(names[0], concurrency=args.concurrency)
    if args.dry_run:
        print(estimate(samples, judge, cache_path=args.cache).summary())
        return 0
    run = judge_run(samples, judge, cache_path=args.cache, max_cost=args.max_cost,
                    progress=not args.no_progress)
    output = args.output or default_output(args.samples, judge.name)
    scores = _write_outputs(output, run.records, _judge_info(judge, run), args)
    _print_scores(scores)
    print(_summary(run, output), file=sys.stderr)
    return 0


def _main_jury(samples: list, names: list[str], args: argparse.Namespace) -> int:
    """``--judge A --judge B ...``: each member judged (and cached) on its own, verdicts combined."""
    from .jury import judge_with_jury, jury_name
    if args.dry_run or args.max_cost is not None:
        raise CosaError("--dry-run and --max-cost apply to one judge; run them per member, then the jury")
    records = judge_with_jury(samples, names, cache_path=args.cache, rating=args.jury_rating,
                              progress=not args.no_progress)
    name = records[0].judge if records else jury_name(names)
    output = args.output or default_output(args.samples, name)
    scores = _write_outputs(output, records, {"judge": name, "members": names, "rating": args.jury_rating}, args)
    _print_scores(scores)
    print(f"judged {len(records)} responses with a jury of {len(names)}; wrote {output}", file=sys.stderr)
    return 0


def _print_scores(scores: dict[str, Any]) -> None:
    for key, score in scores.items():
        overall = score["overall"]
        print(f"{key}: CoSA-Score {overall.get('cosa_score')} (valid_rate {overall.get('valid_rate')})")
