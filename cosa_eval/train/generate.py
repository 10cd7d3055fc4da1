"""Step 3: generate responses per config through lm_eval, the config as the system message.

lm_eval generates, exactly as in ``cosa-eval eval``: this step writes the configs that still lack a
response as the documents of a small task (``repeats: N`` and the sampling settings in its YAML),
runs ``cosa-eval eval --predict_only --log_samples`` with any ``--model`` lm_eval supports (``hf``,
``vllm``, ``local-chat-completions``, ...), and turns each row of lm_eval's samples file into N
response rows. One output row per (config, sample index); a re-run sends only the configs with a
missing row to lm_eval. lm_eval's output (keys masked) goes to ``<output>.lm_eval/lm_eval.log``.
Greedy decoding (temperature 0) gives one response per config, so ``--num-responses`` above 1
needs a temperature above 0.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from ..errors import CosaError, redact
from .files import ResumableWriter, progress, read_jsonl, write_manifest

CONFIG_FIELDS = ("id", "config_id", "prompt_id", "prompt", "config", "allowed")
TASK = "cosa_train_generate"
_ERROR_LINE = re.compile(r"(cosa-eval: error: |[\w.]*(Error|Exception)\b)")   # what a failed run ends with
# lm_eval's progress bars (local models, API models): "...requests:  50%|#####     | 3/6 [00:01<00:01, ...]"
_GENERATED = re.compile(r"(?:Running generate_until requests|Requesting API):[^|]*\|[^|]*\|\s*(\d+)/(\d+)")


@dataclass(frozen=True)
class Sampling:
    """Decoding settings, validated once."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 1024
    num_responses: int = 1

    def __post_init__(self) -> None:
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise CosaError(f"temperature {self.temperature} must be >= 0 and top_p {self.top_p} in (0, 1]")
        if self.max_new_tokens < 1 or self.num_responses < 1:
            raise CosaError(f"max_new_tokens {self.max_new_tokens} and num_responses {self.num_responses} "
                            "must be at least 1")
        if self.num_responses > 1 and self.temperature == 0:
            raise CosaError(f"--num-responses {self.num_responses} with greedy decoding gives identical "
                            "responses; pass --temperature 1 --top-p 0.95 (the paper's best-of-n preset)")

    def generation_kwargs(self) -> dict[str, Any]:
        """lm_eval's ``generation_kwargs``: no stop sequence (lm_eval's default would cut at a blank line)."""
        sampled = self.temperature > 0
        kwargs: dict[str, Any] = {"until": [], "max_gen_toks": self.max_new_tokens, "do_sample": sampled,
                                  "temperature": self.temperature}
        return {**kwargs, "top_p": self.top_p} if sampled else kwargs


def response_id(config_id: str, index: int) -> str:
    return f"{config_id}#{index}"


def write_task(folder: Path, rows: list[dict[str, Any]], sampling: Sampling) -> Path:
    """The configs as documents of a one-file lm_eval task; returns the include folder."""
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "tasks").mkdir(parents=True)
    docs = folder / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": r["id"], "prompt": r["prompt"], "config": r["config"]},
                                       ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    task = {"task": TASK, "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(docs)}},
            "test_split": "test", "output_type": "generate_until", "description": "config",
            "doc_to_text": "prompt", "doc_to_target": "", "repeats": sampling.num_responses,
            "generation_kwargs": sampling.generation_kwargs(), "metadata": {"version": 1.0}}
    (folder / "tasks" / f"{TASK}.yaml").write_text(yaml.safe_dump(task, sort_keys=False), encoding="utf-8")
    return folder / "tasks"


def run_lm_eval(folder: Path, args: argparse.Namespace) -> Path:
    """``cosa-eval eval`` in a subprocess, its output masked into a log; returns lm_eval's output folder."""
    out, log = folder / "out", folder / "lm_eval.log"
    command = [sys.executable, "-m", "cosa_eval.cli", "eval", "--model", args.model, "--tasks", TASK,
               "--include_path", str(folder / "tasks"), "--apply_chat_template", "--predict_only",
               "--log_samples", "--output_path", str(out), "--batch_size", args.batch_size, "--seed", str(args.seed)]
    if args.model_args:
        command += ["--model_args", args.model_args]
    last = error = ""
    with log.open("w", encoding="utf-8") as handle, progress(None, None, "generate: lm_eval loads the model",
                                                           "response") as bar, subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace") as process:
        for line in process.stdout:            # tqdm's \r updates arrive as lines of their own
            masked = redact(line)
            handle.write(masked)
            last = masked.strip() or last
            error = masked.strip() if _ERROR_LINE.match(masked) else error
            done = _GENERATED.search(masked)
            if done:
                bar.set_description("generate: lm_eval generates", refresh=False)
                bar.total, bar.n = int(done[2]), int(done[1])
                bar.refresh()
    if process.returncode != 0:
        reason = (error or last).removeprefix("cosa-eval: error: ")[:300]
        raise CosaError(f"lm_eval failed (exit {process.returncode}): {reason}; full log: {log}. Rows done so far "
                        "are kept: fix the cause and re-run to resume")
    return out


def _config_reached(prompt: Any, config: str) -> bool:
    """Whether the prompt lm_eval sent still carries the config (a template may drop the system role)."""
    text = str(prompt)
    if config.strip() in text:
        return True
    try:
        messages = json.loads(text)
    except ValueError:
        return False
    return isinstance(messages, list) and any(
        isinstance(m, dict) and m.get("role") == "system" and config.strip() in str(m.get("content")) for m in messages)


def generations(out: Path, where: str) -> Iterator[tuple[str, list[str]]]:
    """(config row id, responses) for each row of the samples file under lm_eval's ``out`` folder."""
    from ..jsonl import iter_jsonl
    from ..samples import find_sample_files, task_of
    files = [path for path in find_sample_files([out]) if task_of(path) == TASK]
    for path in files:
        for number, row in iter_jsonl(path, fix="re-run the step"):
            doc, resps = row.get("doc") or {}, row.get("resps") or [[]]
            prompt = (row.get("arguments") or {}).get("gen_args_0", {}).get("arg_0", "")
            if not _config_reached(prompt, doc.get("config", "")):
                raise CosaError(f"{path}: line {number}: the model's chat template dropped the system message, so "
                                f"the config never reached the model; use {where} with a model whose chat "
                                "template accepts a system role")
            yield str(doc["id"]), [text for text in resps[0] if isinstance(text, str)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="configs (output of 'train synthesize'), jsonl")
    parser.add_argument("--output", required=True, help="responses jsonl to write or resume")
    parser.add_argument("--model", default="hf", help="lm_eval model type: hf, vllm, local-chat-completions, ... "
                                                      "(default: hf)")
    parser.add_argument("--model-args", default="", help="lm_eval --model_args, e.g. pretrained=MODEL_DIR")
    parser.add_argument("--num-responses", type=int, default=1,
                        help="responses per config (lm_eval repeats; default: %(default)s)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default: %(default)s)")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling (default: %(default)s)")
    parser.add_argument("--max-new-tokens", type=int, default=1024, help="per response (default: %(default)s)")
    parser.add_argument("--batch-size", default="8", help="lm_eval --batch_size: a number or auto (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="lm_eval --seed (python, numpy, torch; default: "
                                                            "%(default)s)")


def main(args: argparse.Namespace) -> int:
    sampling = Sampling(args.temperature, args.top_p, args.max_new_tokens, args.num_responses)
    rows = read_jsonl(args.input, required=CONFIG_FIELDS)
    by_id = {str(r["id"]): r for r in rows}
    generator = {"model": args.model, "model_args": redact(args.model_args), **asdict(sampling), "seed": args.seed}
    counts: Counter = Counter(configs=len(rows))
    with ResumableWriter(args.output) as writer:
        todo = [r for r in rows if not all(writer.is_done(response_id(r["id"], k))
                                           for k in range(sampling.num_responses))]
        if todo:
            folder = Path(f"{args.output}.lm_eval")
            write_task(folder, todo, sampling)
            print(f"generate: lm_eval generates {sampling.num_responses} x {len(todo)} configs (log: "
                  f"{folder / 'lm_eval.log'})", flush=True)
            out = run_lm_eval(folder, args)
            for row_id, texts in list(generations(out, f"--model {args.model}")):   # all checked, then written
                row = {k: v for k, v in by_id[row_id].items() if k not in ("_row", "seed")}
                counts["missing_responses"] += sampling.num_responses - len(texts)
                for index, text in enumerate(texts[:sampling.num_responses]):
                    writer.write({**row, "id": response_id(row["id"], index), "sample_index": index,
                                  "response": text, "generator": generator})
        counts.update(written_this_run=writer.written, total=len(writer.done))
    write_manifest(args.output, "generate", [args.input], {**generator, "batch_size": args.batch_size}, dict(counts))
    missing = f"; {counts['missing_responses']} responses missing, re-run to retry them" \
        if counts["missing_responses"] else ""
    print(f"generate: {counts['total']} responses for {len(rows)} configs in {args.output} "
          f"({writer.written} new){missing}")
    return 0
