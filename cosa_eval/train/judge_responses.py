"""Step 4: judge each response: does it address its prompt (a refusal does not), and which risk
categories does it contain?

Two questions per response through one judge, each with its own rubric: ``addressed``
(judges/rubrics/addressed.jinja, [[YES]]/[[NO]]) and ``categories`` (the judge's response-category
rubric, the one cosalign_test scoring uses, JSON over the eight categories). The judge never sees
the config: as in the paper, adherence is computed afterwards from the categories. A response the
judge could not judge is not written (counted in the manifest), so a re-run retries it.
"""
from __future__ import annotations

import argparse
from collections import Counter

from .files import ResumableWriter, batched, progress, read_jsonl, write_manifest
from .generate import CONFIG_FIELDS
from .judge_options import add_judge_arguments, failure_summary, judge_session, session_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="responses (output of 'train generate'), jsonl")
    parser.add_argument("--output", required=True, help="judged responses jsonl to write or resume")
    add_judge_arguments(parser)


def main(args: argparse.Namespace) -> int:
    rows = read_jsonl(args.input, required=CONFIG_FIELDS + ("response",))
    counts: Counter = Counter()
    failures: Counter = Counter()
    with judge_session(args) as session, ResumableWriter(args.output) as writer:
        name = session.judge.name
        hashes = {rubric: session.judge.rubrics[rubric].hash for rubric in ("addressed", "categories")}
        todo = [r for r in rows if not writer.is_done(r["id"])]
        for chunk in progress(list(batched(todo, args.chunk)), -(-len(todo) // args.chunk), "judge", "chunk"):
            items = [{"prompt": r["prompt"], "response": r["response"]} for r in chunk]
            verdicts = session.ask(["addressed"] * len(items) + ["categories"] * len(items), items + items)
            for row, is_addressed, labels in zip(chunk, verdicts[:len(items)], verdicts[len(items):]):
                failed = next((v for v in (is_addressed, labels) if not v.is_valid), None)
                if failed is not None:
                    failures[failed.failure] += 1
                    continue
                counts["addressed_this_run" if is_addressed.value else "not_addressed_this_run"] += 1
                writer.write({**row, "addressed": bool(is_addressed.value), "categories": labels.value,
                              "judge": name, "rubric_hashes": hashes})
        counts.update(responses=len(rows), written_this_run=writer.written, total=len(writer.done),
                      **{f"failed_{k}": v for k, v in failures.items()})
        settings = {**session_settings(session), "rubric_hashes": hashes}
    write_manifest(args.output, "judge", [args.input], settings, dict(counts))
    print(f"judge: {counts['total']} of {len(rows)} responses judged in {args.output} with judge {name}"
          f"{failure_summary(failures)}")
    return 0
