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
from .judging import add_judge_arguments, failure_summary, rubric_judge


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="responses (output of 'train generate'), jsonl")
    parser.add_argument("--output", required=True, help="judged responses jsonl to write or resume")
    add_judge_arguments(parser)


def main(args: argparse.Namespace) -> int:
    judge = rubric_judge(args)
    rows = read_jsonl(args.input, required=CONFIG_FIELDS + ("response",))
    hashes = {"addressed": judge.version("addressed"), "categories": judge.version("categories")}
    counts: Counter = Counter()
    failures: Counter = Counter()
    with ResumableWriter(args.output) as writer:
        todo = [r for r in rows if not writer.is_done(r["id"])]
        for chunk in progress(list(batched(todo, args.chunk)), -(-len(todo) // args.chunk), "judge", "chunk"):
            items = [{"prompt": r["prompt"], "response": r["response"]} for r in chunk]
            addressed = judge.ask("addressed", items)
            categories = judge.ask("categories", items)
            for row, is_addressed, labels in zip(chunk, addressed, categories):
                failed = next((v for v in (is_addressed, labels) if not v.is_valid), None)
                if failed is not None:
                    failures[failed.failure] += 1
                    continue
                counts["addressed_this_run" if is_addressed.value else "not_addressed_this_run"] += 1
                writer.write({**row, "addressed": bool(is_addressed.value), "categories": labels.value,
                              "judge": judge.name, "rubric_hashes": hashes})
        counts.update(responses=len(rows), written_this_run=writer.written, total=len(writer.done),
                      **{f"failed_{k}": v for k, v in failures.items()})
    settings = {"judge": judge.name, "judge_model": judge.judge.config.model, "rubric_hashes": hashes,
                **judge.stats}
    write_manifest(args.output, "judge", [args.input], settings, dict(counts))
    print(f"judge: {counts['total']} of {len(rows)} responses judged in {args.output} with judge {judge.name}"
          f"{failure_summary(failures)}")
    return 0
