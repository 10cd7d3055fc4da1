"""Step 1: label training prompts with the risk categories they involve, through a judge.

Input: jsonl rows with ``prompt`` (and an optional ``id``; otherwise a hash of the prompt). Output:
the same rows plus ``categories`` (the names the judge marked true, taxonomy order), ``judge`` and
``rubric_hash``. A prompt the judge could not label is not written (counted in the manifest), so a
re-run retries it; answers already given come from the judge cache. Prompts you labelled another
way can skip this step: ``synthesize`` reads any jsonl with ``prompt`` and ``categories``.
"""
from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from ..taxonomy import ALL_CATEGORIES
from .files import ResumableWriter, batched, progress, read_jsonl, stable_id, write_manifest
from ..jsonl import text_field
from .judge_options import add_judge_arguments, failure_summary, judge_session, session_settings


def with_ids(rows: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    """Validate ``prompt`` and give every row an ``id``."""
    for row in rows:
        prompt = text_field(row, "prompt", f"{path}: row {row['_row']}")
        row["id"] = str(row.get("id") or stable_id(prompt))
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="prompts jsonl: {prompt, id?, ...}")
    parser.add_argument("--output", required=True, help="labelled prompts jsonl to write or resume")
    add_judge_arguments(parser)


def main(args: argparse.Namespace) -> int:
    rows = with_ids(read_jsonl(args.input, required=("prompt",)), args.input)
    counts: Counter = Counter()
    failures: Counter = Counter()
    with judge_session(args) as session, ResumableWriter(args.output) as writer:
        name, version = session.judge.name, session.judge.rubrics["prompt_categories"].hash
        todo = [r for r in rows if not writer.is_done(r["id"])]
        for chunk in progress(list(batched(todo, args.chunk)), -(-len(todo) // args.chunk), "label", "chunk"):
            verdicts = session.ask("prompt_categories", [{"prompt": r["prompt"]} for r in chunk])
            for row, verdict in zip(chunk, verdicts):
                if not verdict.is_valid:
                    failures[verdict.failure] += 1
                    continue
                present = [c for c in ALL_CATEGORIES if verdict.value.get(c)]
                counts["safe_this_run" if not present else "risky_this_run"] += 1
                writer.write({**row, "categories": present, "judge": name, "rubric_hash": version})
        counts.update(prompts=len(rows), written_this_run=writer.written, total=len(writer.done),
                      **{f"failed_{k}": v for k, v in failures.items()})
        settings = {**session_settings(session), "rubric_hash": version}
    write_manifest(args.output, "label", [args.input], settings, dict(counts))
    print(f"label: {counts['total']} of {len(rows)} prompts labelled in {args.output} with judge {name}"
          f"{failure_summary(failures)}")
    return 0
