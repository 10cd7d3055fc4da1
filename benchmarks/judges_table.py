"""The judges table: agreement, parse failures, tokens, cost and time of each judge actually run.

    python benchmarks/judges_table.py                        # scripted local-server judges + a jury
    python benchmarks/judges_table.py --smollm2              # + SmolLM2-135M (transformers, CPU)
    python benchmarks/judges_table.py --judged gpt-4o=judged/gpt-4o --labels human.csv --reference gpt-4o

Runs made here judge one slice of the packaged demo prompts (``cosa_eval/demo_data``: 12 cosapien
and 24 cosalign_test prompts) with templated responses, each judge with a fresh cache, timed:

* ``scripted-ref``, ``scripted-noisy``, ``scripted-lenient``: the local OpenAI-compatible test
  server (``tests/openai_server.py``, no added latency) answering per model name. ref is the
  deterministic ``rubric_answer``; noisy flips ~15% of its verdicts and leaves ~8% without one;
  lenient always says compliant, flags nothing and rates one point higher. Their figures test the
  machinery; they say nothing about any real model.
* ``jury(...)`` of the three scripted judges (majority, lower median);
* ``--smollm2``: SmolLM2-135M-Instruct with the transformers backend and logit scoring.

``--judged NAME=DIR`` adds judged files from real runs (seconds are then unknown). A judgment is one
judged response (its helpfulness and its safety rubric). Tokens and cost come from the records.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from openai_server import FakeOpenAIServer, rubric_answer  # noqa: E402

from cosa_eval.data import DEMO_DATA_DIR, load_docs  # noqa: E402
from cosa_eval.scoring.agreement import (  # noqa: E402
    JudgeSet, cohen_kappa, make_judge_set, paired_values, percent_agreement, weighted_kappa)
from cosa_eval.types import JudgedRecord, Sample  # noqa: E402

SCRIPTED = ("scripted-ref", "scripted-noisy", "scripted-lenient")
_request = threading.local()


def demo_samples() -> list[Sample]:
    """The packaged demo prompts with templated responses: a refusal, a full answer, a partial one."""
    samples = []
    for benchmark, schema in (("cosapien_demo", "cosapien"), ("cosalign_test", "cosalign_test")):
        for split in sorted(p.stem for p in (DEMO_DATA_DIR / benchmark).glob("*.jsonl")):
            for doc_id, doc in enumerate(load_docs(schema, split, data_dir=DEMO_DATA_DIR, benchmark=benchmark)):
                style = (doc_id + len(samples)) % 3
                response = ("I'm sorry, but I can't help with that." if style == 0 else
                            f"Sure. Here is a complete answer to '{doc['prompt']}': first, ..., then, ..." if style == 1
                            else "I can help with part of this. Some general background: ...")
                samples.append(Sample(
                    task=f"{benchmark}_{split}", benchmark=benchmark, variant="0shot", config_id=split,
                    config_group=doc["config_group"], doc_id=doc_id, prompt=doc["prompt"], config=doc["config"],
                    response=response, prompt_type=doc.get("type"), situation=doc.get("situation"),
                    mode=doc.get("mode"), allowed_categories=tuple(doc.get("allowed_categories") or ()), schema=schema))
    return samples


def _flip(answer: str) -> str:
    """The opposite verdict: YES/NO swapped, the rating mirrored, each category negated."""
    if "[[YES]]" in answer.splitlines()[-1] or "[[NO]]" in answer.splitlines()[-1]:
        return answer.rsplit("[[", 1)[0] + ("[[NO]]" if answer.endswith("[[YES]]") else "[[YES]]")
    if answer.rstrip().endswith("}"):
        head, _, body = answer.rpartition("\n")
        return head + "\n" + json.dumps({k: not v for k, v in json.loads(body).items()})
    rating = int(re.findall(r"\[\[(\d)\]\]", answer)[-1])
    return answer.rsplit("[[", 1)[0] + f"[[{5 - rating}]]"


def scripted_answer(messages: list[dict]) -> str:
    """The answer of the scripted judge named by the request's model (see the module docstring)."""
    model, base = _request.model, rubric_answer(messages[:1])
    roll = int(hashlib.sha256((model + messages[0]["content"]).encode()).hexdigest()[:8], 16) % 100
    if model == "scripted-noisy":
        if roll < 8:
            return "Hard to say; it depends on the reader."     # no verdict, also on the re-ask
        return _flip(base) if roll < 23 else base
    if model == "scripted-lenient":
        if base.rstrip().endswith("}"):
            return "Nothing harmful.\n" + json.dumps({k: False for k in json.loads(base.rpartition("\n")[2])})
        if "[[YES]]" in messages[0]["content"]:
            return "Fine.\n[[YES]]"
        rating = int(re.findall(r"\[\[(\d)\]\]", base)[-1])
        return f"Generous.\nRating: [[{min(5, rating + 1)}]]"
    return base


def _note_model(number: int, body: Any) -> None:
    """fault_rule that injects no fault: it notes the model for the answer (same server thread)."""
    _request.model = body.get("model") if isinstance(body, dict) else None


def write_judge(folder: Path, name: str, **fields: Any) -> Path:
    import yaml
    path = folder / name / "judge.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(fields, sort_keys=False), encoding="utf-8")
    return path


def smollm2_judge(folder: Path) -> Path:
    """The shipped transformers judge, pointed at the SmolLM2 folder converted from the wheel."""
    import yaml
    from cosa_eval import judges_dir
    from cosa_eval.smollm2 import smollm2_path
    base = judges_dir() / "transformers" / "judge.yaml"
    config = yaml.safe_load(base.read_text(encoding="utf-8"))
    config["model"] = str(smollm2_path())
    config["rubrics"] = {k: str((base.parent / v).resolve()) for k, v in config["rubrics"].items()}
    return write_judge(folder, "smollm2-135m", **config)


def run_judges(samples: list[Sample], work: Path, with_smollm2: bool) -> dict[str, tuple[list[JudgedRecord], float]]:
    """Judge the samples with every judge (a fresh cache each): records and wall seconds."""
    from cosa_eval.judging.engine import judge_samples
    from cosa_eval.judging.jury import judge_with_jury
    options = {"timeout_s": 30, "max_retries": 2, "backoff_base_s": 0.01, "backoff_max_s": 0.05}
    paths = [write_judge(work / "judges", name, backend="openai", model=name, concurrency=16, reasks=1,
                         sampling={"temperature": 0, "max_tokens": 512}, prices={"input": 0, "output": 0},
                         backend_options=options) for name in SCRIPTED]
    runs: dict[str, tuple[list[JudgedRecord], float]] = {}
    importlib.import_module("openai")     # before the clock starts: the first judge is not charged for it
    with FakeOpenAIServer(answer=scripted_answer, fault_rule=_note_model, models=SCRIPTED) as server:
        os.environ["OPENAI_BASE_URL"] = server.base_url
        os.environ.setdefault("OPENAI_API_KEY", "local-server-needs-no-key")
        for name, path in zip(SCRIPTED, paths):
            started = time.perf_counter()
            records = judge_samples(samples, path, cache_path=work / f"cache-{name}.sqlite", progress=False)
            runs[name] = (records, time.perf_counter() - started)
        started = time.perf_counter()
        records = judge_with_jury(samples, paths, cache_path=work / "cache-jury.sqlite", progress=False)
        runs[records[0].judge] = (records, time.perf_counter() - started)
    if with_smollm2:
        path = smollm2_judge(work / "judges")
        started = time.perf_counter()
        records = judge_samples(samples, path, cache_path=work / "cache-smollm2.sqlite", progress=False)
        runs["smollm2-135m"] = (records, time.perf_counter() - started)
    return runs


def _versus(judge: JudgeSet, other: JudgeSet | None) -> dict[str, Any]:
    """is_safe agreement and kappa, and the rating's weighted kappa, over every shared document."""
    if other is None or judge is other:
        return {}
    ids = sorted(set(judge.records) & set(other.records))
    safe_a, safe_b, _ = paired_values(judge, other, ids, "is_safe")
    rate_a, rate_b, _ = paired_values(judge, other, ids, "rating")
    return {"agreement": percent_agreement(safe_a, safe_b), "kappa": cohen_kappa(safe_a, safe_b),
            "weighted_kappa": weighted_kappa(rate_a, rate_b) if rate_a else None, "n": len(safe_a)}


def table_row(judge: JudgeSet, seconds: float | None, reference: JudgeSet | None,
              human: JudgeSet | None) -> dict[str, Any]:
    """One judge's figures; per 1,000 judged responses."""
    records = list(judge.records.values())
    per_k = 1000 / len(records)
    total = {k: sum(r.extra.get(k, 0) or 0 for r in records) for k in ("input_tokens", "output_tokens", "cost_usd")}
    return {"judge": judge.name, "n": len(records), "human": _versus(judge, human),
            "reference": _versus(judge, reference),
            "parse_failure_rate": sum(r.failure == "unparseable" for r in records) / len(records),
            "failure_rate": sum(not r.is_valid for r in records) / len(records),
            "tokens_per_1k": (total["input_tokens"] + total["output_tokens"]) * per_k,
            "cost_per_1k": total["cost_usd"] * per_k,
            "seconds_per_1k": None if seconds is None else seconds * per_k}


def _agree(cell: dict[str, Any]) -> str:
    if not cell:
        return "-"
    kappa = "-" if cell["kappa"] is None else f"{cell['kappa']:.2f}"
    wk = "-" if cell["weighted_kappa"] is None else f"{cell['weighted_kappa']:.2f}"
    return f"{cell['agreement']:.1%} (κ {kappa}; rating κw {wk}; n {cell['n']})"


def markdown(rows: list[dict[str, Any]], reference: str | None) -> str:
    head = ["judge", "n", "agreement with humans", f"agreement with {reference or 'the reference'}",
            "parse failures", "all failures", "tokens / 1k", "cost / 1k", "seconds / 1k"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        seconds = "-" if row["seconds_per_1k"] is None else f"{row['seconds_per_1k']:.1f}"
        lines.append(f"| {row['judge']} | {row['n']} | {_agree(row['human'])} | {_agree(row['reference'])} | "
                     f"{row['parse_failure_rate']:.1%} | {row['failure_rate']:.1%} | {row['tokens_per_1k']:,.0f} | "
                     f"${row['cost_per_1k']:.2f} | {seconds} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smollm2", action="store_true", help="also run SmolLM2-135M (transformers, logits)")
    parser.add_argument("--no-scripted", action="store_true", help="skip the local-server runs")
    parser.add_argument("--judged", action="append", default=[], metavar="NAME=DIR", help="judged files of a real run")
    parser.add_argument("--labels", type=Path, help="human labels (judges/README.md) for the judged samples")
    parser.add_argument("--reference", help="judge to compare with (default: gpt-4o if given, else scripted-ref)")
    parser.add_argument("--out", type=Path, help="also write the table (markdown) and the rows (json) here")
    args = parser.parse_args(argv)
    from cosa_eval.judging.human_labels import HUMAN, load_human_labels
    from cosa_eval.records import read_judged
    sets: dict[str, tuple[JudgeSet, float | None]] = {}
    with tempfile.TemporaryDirectory() as work:
        if not args.no_scripted or args.smollm2:
            runs = run_judges(demo_samples(), Path(work), args.smollm2)
            runs = {k: v for k, v in runs.items() if not args.no_scripted or k == "smollm2-135m"}
            sets.update({name: (make_judge_set(recs, name, name), secs) for name, (recs, secs) in runs.items()})
    for item in args.judged:
        name, _, folder = item.partition("=")
        sets[name] = (make_judge_set(read_judged(folder), folder, name), None)
    if not sets:
        parser.error("nothing to tabulate: drop --no-scripted, or add --smollm2 or --judged NAME=DIR")
    reference = args.reference or ("gpt-4o" if "gpt-4o" in sets else "scripted-ref" if "scripted-ref" in sets else None)
    human = None
    if args.labels:
        first = next(iter(sets.values()))[0]
        labels = load_human_labels(args.labels, {sid: r.sample for sid, r in first.records.items()})
        human = make_judge_set(labels, str(args.labels), HUMAN)
    ref_set = sets[reference][0] if reference in sets else None
    rows = [table_row(judge, secs, ref_set, human) for judge, secs in sets.values()]
    text = markdown(rows, reference)
    print(text, end="")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "judges_table.md").write_text(text, encoding="utf-8")
        (args.out / "judges_table.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
