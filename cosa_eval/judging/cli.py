"""``cosa-eval judge``: judge lm_eval ``samples_*.jsonl`` files and score them.

    cosa-eval judge out/my-model --judge gpt-4o --output judged/my-model
    cosa-eval judge out/my-model --judge openai-compatible --dry-run
    OPENAI_BASE_URL=http://localhost:8000/v1 cosa-eval judge out/ --judge judges/my-judge/judge.yaml

The run owns its --output folder (see ``cosa_eval.manifest``). Exit status: 0 when every response
was judged, 3 (``EXIT_UNJUDGED``) when some could not be (the scores are still written; re-run to
retry them, answered calls come from the cache), 2 for bad input. Heavy modules are imported
inside main(), so ``cosa-eval judge --help`` stays instant.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import CosaError
from ..redaction import remember_url
from .config import DEFAULT_JUDGE, JUDGE_ENV, default_judge

EXIT_UNJUDGED = 3
PARSERS = ("final", "reference")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cosa-eval judge``."""
    parser.epilog = (f"exit status: 0 all judged; {EXIT_UNJUDGED} some responses unjudged (scores still "
                     "written; re-run to retry them); 2 bad input")
    parser.add_argument("samples", nargs="+", metavar="SAMPLES",
                        help="lm_eval samples_*.jsonl files or --output_path folders (run with --log_samples)")
    parser.add_argument("--judge", action="append", metavar="NAME|PATH",
                        help=f"a shipped judge (gpt-4o, openai-compatible, vllm, transformers) or a judge.yaml "
                             f"(default: ${JUDGE_ENV}, else {DEFAULT_JUDGE}); repeat it for a jury "
                             "(majority for YES/NO and categories, see --jury-rating)")
    parser.add_argument("--jury-rating", choices=("median", "mean"), default="median",
                        help="how a jury combines helpfulness ratings (default: median)")
    parser.add_argument("--judge-endpoint", metavar="URL",
                        help="send the judge's calls to this OpenAI-compatible base URL, under the judge's name "
                             "(recorded in judge_run.json, scores.json and the leaderboard row)")
    parser.add_argument("--parser", choices=PARSERS,
                        help="how verdicts are read from the judge's text: final (the judge's last verdict, "
                             "default) or reference (the CoSA reference code's rules); no new judge calls")
    parser.add_argument("--output", type=Path, metavar="DIR",
                        help="where judged_<task>.jsonl, scores.json and judge_run.json go (default: "
                             "cosa_judged_<judge> beside the first SAMPLES path); it must not hold another "
                             "run's files unless --overwrite")
    parser.add_argument("--overwrite", action="store_true",
                        help="remove the judged files, scores.json and judge_run.json of another run in --output")
    parser.add_argument("--cache", type=Path, metavar="PATH",
                        help="judge cache file (default: $COSA_CACHE_DIR/judge_cache.sqlite, else "
                             "~/.cache/cosa-eval/judge_cache.sqlite)")
    parser.add_argument("--max-cost", type=float, metavar="USD",
                        help="stop sending judge calls once this much has been spent in this run")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the calls, tokens and cost a run would need, calling nothing")
    parser.add_argument("--batch", action="store_true",
                        help="send through the provider's Batch API (OpenAI, Azure OpenAI: half price, up to 24 h); "
                             "a killed run's batches are collected by a re-run")
    parser.add_argument("--no-wait", action="store_true",
                        help="with --batch: submit the batches and exit; re-run the same command to collect them")
    parser.add_argument("--export-requests", type=Path, metavar="FILE.jsonl",
                        help="write the requests the cache cannot answer yet in the OpenAI batch input format "
                             "(for vllm run-batch, Ray Data, a Batch API), calling nothing")
    parser.add_argument("--import-answers", type=Path, metavar="FILE.jsonl",
                        help="read answers in the OpenAI batch output format into the cache (all lines checked "
                             "first; a bad file imports nothing); a re-run then judges from the cache")
    parser.add_argument("--concurrency", type=int, metavar="N", help="judge calls in flight at once")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def default_output(samples: list[str], judge_name: str) -> Path:
    """``cosa_judged_<judge>`` inside the first given folder (or beside the first given file)."""
    first = Path(samples[0])
    return (first if first.is_dir() else first.parent) / f"cosa_judged_{judge_name}"


def _manifest(args: argparse.Namespace, judge: str, rubric_hashes: dict[str, str], parser: str,
              identity: dict[str, str] | None) -> dict[str, Any]:
    """The run's identity, known before any judge call (judge_run.json, see cosa_eval.manifest); the
    judge's endpoint and model are those its check found answering (``judge_identity``), nothing else."""
    from ..manifest import samples_ids
    from ..samples import find_sample_files, read_run_info
    return {"judge": judge, "rubric_hashes": rubric_hashes, "parser": parser, "judge_identity": identity,
            "samples": samples_ids(find_sample_files(args.samples)), "run": read_run_info(args.samples[0])}


def _summary(run: Any, output: Path) -> str:
    from ..snapshots import answered_by, snapshot_summary
    stats, records = run.stats, run.records
    valid = sum(r.is_valid for r in records)
    failures = ", ".join(f"{k} {v}" for k, v in sorted(stats.failures.items())) or "none"
    return (f"judged {len(records)} responses ({valid} valid; failures: {failures}); "
            f"{stats.sent - stats.unanswered} calls answered{_unanswered(stats.unanswered)}, {stats.cached} "
            f"answered from the cache, {stats.reasked} re-asked, "
            f"${stats.cost_usd:.4f} spent; read with the {stats.parser} parser ({stats.parser_disagreements} "
            f"verdict{'' if stats.parser_disagreements == 1 else 's'} the other parser reads differently); "
            f"{snapshot_summary(answered_by(records))}; wrote {output}")


def _unanswered(count: int) -> str:
    return f" ({count} more sent but never answered, after the backend's retries)" if count else ""


def check_ready(judge: Any) -> None:
    """The judge's readiness check, its error ending with the fix a ``cosa-eval judge`` user has."""
    try:
        judge.check_ready()
    except CosaError as error:
        raise CosaError(f"{error}; or choose another judge with --judge NAME|PATH (or COSA_JUDGE)") from None


def _load_options(args: argparse.Namespace) -> dict[str, Any]:
    """load_judge keywords the user set (None leaves the judge.yaml's own setting)."""
    if args.concurrency is not None and args.concurrency < 1:
        raise CosaError(f"--concurrency must be at least 1, got {args.concurrency}")
    remember_url(args.judge_endpoint)
    options = {"concurrency": args.concurrency, "endpoint": args.judge_endpoint, "parser": args.parser}
    return {key: value for key, value in options.items() if value is not None}


def main(args: argparse.Namespace) -> int:
    """Judge, write judged files + scores.json + judge_run.json, print a one-line summary."""
    from ..samples import read_samples
    from .engine import estimate
    from .judge import load_judge
    options = _load_options(args)
    samples = read_samples(args.samples)
    names = args.judge or [default_judge()]
    if len(names) > 1:
        return _main_jury(samples, names, args)
    judge = load_judge(names[0], **options)
    if args.dry_run:
        if judge.identity().get("endpoint") == "local":    # no key or server to spare: load what a run loads
            check_ready(judge)
        print(estimate(samples, judge, cache_path=args.cache).summary())
        return 0
    if args.export_requests or args.import_answers:
        from .offline import main_offline
        return main_offline(args, judge, samples)
    from .batch import BatchesPending
    try:
        run, scores, output = _judge_into_folder(args, judge, samples)
    except BatchesPending as pending:
        print(f"cosa-eval: {pending} (exit status {EXIT_UNJUDGED})", file=sys.stderr)
        return EXIT_UNJUDGED
    _print_scores(scores)
    print(_summary(run, output), file=sys.stderr)
    return _exit_status(run.records, output)


def _judge_into_folder(args: argparse.Namespace, judge: Any, samples: list) -> tuple[Any, dict[str, Any], Path]:
    """Claim the output folder, judge, write its files; the run, its scores and the folder."""
    from ..manifest import claim_output
    from .engine import judge_run
    from .outputs import write_run_outputs
    parser = judge.config.parser
    check_ready(judge)                         # before the folder is claimed: what answers, and whether it can
    manifest = _manifest(args, judge.name, {name: r.hash for name, r in judge.rubrics.items()}, parser,
                         judge.identity())
    output = args.output or default_output(args.samples, judge.name)
    claim_output(output, manifest, args.overwrite)
    run = judge_run(samples, judge, cache_path=args.cache, max_cost=args.max_cost,
                    progress=not args.no_progress, batch=_batch_mode(args))
    manifest.update(judge_file=str(judge.config.path), backend=judge.config.backend,
                    sampling=judge.config.sampling, stats=vars(run.stats))
    extra = {"parser": parser, "judge_endpoint": manifest["judge_identity"].get("endpoint", ""),
             "parser_disagreements": run.stats.parser_disagreements}
    return run, write_run_outputs(output, run.records, manifest, extra), output


def _batch_mode(args: argparse.Namespace) -> str | None:
    """"wait" | "no-wait" for --batch [--no-wait], None online."""
    if args.no_wait and not args.batch:
        raise CosaError("--no-wait applies to --batch; add --batch, or leave --no-wait out")
    return ("no-wait" if args.no_wait else "wait") if args.batch else None


def judge_folder(samples: list[str], judge: str, output: Path, *, cache: Path | None = None,
                 overwrite: bool = False, progress: bool = True) -> Any:
    """``cosa-eval judge`` with one judge for callers in Python (the demo): the same checks and
    files; returns the judging run (records and stats)."""
    from ..samples import read_samples
    from .judge import load_judge
    parser = argparse.ArgumentParser(prog="cosa-eval judge")
    add_arguments(parser)
    argv = [*samples, "--judge", judge, "--output", str(output)]
    argv += (["--cache", str(cache)] if cache else []) + (["--overwrite"] if overwrite else [])
    args = parser.parse_args(argv + ([] if progress else ["--no-progress"]))
    return _judge_into_folder(args, load_judge(judge, **_load_options(args)), read_samples(samples))[0]


def _exit_status(records: list, output: Path) -> int:
    """0 when every response is judged, else EXIT_UNJUDGED with a line saying what to do."""
    unjudged = sum(not r.is_valid for r in records)
    if not unjudged:
        return 0
    print(f"cosa-eval: {unjudged} of {len(records)} responses are unjudged (scores over the "
          f"{len(records) - unjudged} valid ones are in {output}); re-run the same command to retry them "
          f"(exit status {EXIT_UNJUDGED})", file=sys.stderr)
    return EXIT_UNJUDGED


def _main_jury(samples: list, names: list[str], args: argparse.Namespace) -> int:
    """``--judge A --judge B ...``: each member judged (and cached) on its own, verdicts combined."""
    from ..manifest import claim_output
    from .judge import load_judge
    from .jury import judge_with_jury, jury_name
    from .outputs import write_run_outputs
    if args.dry_run or args.max_cost is not None:
        raise CosaError("--dry-run and --max-cost apply to one judge; run them per member, then the jury")
    if args.judge_endpoint or args.parser:
        raise CosaError("--judge-endpoint and --parser apply to one judge; set them in each member's judge.yaml")
    members = [load_judge(member) for member in names]     # checked (names, rubrics) before any call
    name = jury_name([member.name for member in members])
    output = args.output or default_output(args.samples, name)
    manifest = {**_manifest(args, name, {}, "final", None), "members": names, "rating": args.jury_rating}
    claim_output(output, manifest, args.overwrite)
    records = judge_with_jury(samples, members, cache_path=args.cache, rating=args.jury_rating,
                              progress=not args.no_progress)
    scores = write_run_outputs(output, records, manifest, {"parser": "final", "judge_endpoint": ""})
    _print_scores(scores)
    print(f"judged {len(records)} responses with a jury of {len(names)}; wrote {output}", file=sys.stderr)
    return _exit_status(records, output)


def _print_scores(scores: dict[str, Any]) -> None:
    for key, score in scores.items():
        overall = score["overall"]
        value, rate = overall.get("cosa_score"), overall.get("valid_rate")
        shown = "none (no valid verdict)" if value is None else f"{value:.4f}"
        print(f"{key}: CoSA-Score {shown} (valid_rate {'none' if rate is None else f'{rate:.3f}'})")
