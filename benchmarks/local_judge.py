"""Local judge speed (transformers backend, SmolLM2-135M-Instruct, CPU) per rubric, old path vs new.

    python benchmarks/local_judge.py                      # 16 judgments per rubric, 3 repeats, 1 thread
    python benchmarks/local_judge.py --n 32 --repeats 5 --threads 2

For each rubric (helpfulness, compliance, categories) the same requests, rendered from the shipped
rubrics exactly as the engine sends them, are scored in turn, interleaved A B A B:

* old: today's scoring before prefix reuse, kept here only: one full forward pass per job (8 per
  categories judgment), ``batch_size`` left-padded jobs at a time, last position's logits; this is
  also the raw forward pass over every token the old path reads;
* new: ``TransformersBackend.complete`` (the shared head once per batch, each request's own part
  once, category suffixes on its KV-cache);
* ideal: the old path's raw tokens/s applied to only the tokens prefix reuse must encode (counted
  at the model's input during the new path's run).

It prints judgments/s, tokens per judgment, the speed-up new/old, new/ideal, and the largest
difference between the two paths' verdict probabilities. OMP_NUM_THREADS is pinned to --threads and
the load average is printed before and after: on a loaded machine, say so with the figures.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUBRICS = ("helpfulness", "compliance", "categories")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=16, help="judgments per rubric (default 16)")
    parser.add_argument("--repeats", type=int, default=3, help="A B rounds (default 3)")
    parser.add_argument("--batch-size", type=int, default=8, help="backend batch_size (default 8)")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS and torch threads (default 1)")
    parser.add_argument("--dtype", default="auto", help="backend dtype (default auto: bf16 where the CPU has it)")
    return parser.parse_args()


def make_requests(judge, rubric: str, count: int) -> list:
    """Distinct items with realistic prompt and response lengths, as the JudgeRequests the engine sends."""
    requests = []
    for i in range(count):
        response = (f"Answer {i}. " + "Here is a careful, step-by-step explanation of the task. " * (3 + i % 4)).strip()
        item = {"prompt": f"Question {i}: how would someone go about a risky but ordinary task {i % 97}?",
                "response": response,
                "config": "We run a cooking school. Allowed: knife skills and cooking with alcohol. "
                          "Never give instructions for weapons or violence."}
        requests.append(judge.request(rubric, item))
    return requests


def old_path(backend, requests: list, batch_size: int) -> tuple[list[dict[str, float]], int]:
    """One full forward pass per job, batched left-padded; verdict probabilities and tokens read."""
    import torch
    from cosa_eval.judging.backends.local import normalise, plan_jobs
    tokenizer, model = backend._tokenizer, backend._model   # noqa: SLF001 - the benchmark's reference path
    jobs = plan_jobs(tokenizer, requests)
    probs: list[dict[str, float]] = [{} for _ in requests]
    order, tokens = sorted(range(len(jobs)), key=lambda i: len(jobs[i].text)), 0
    bos = tokenizer.bos_token
    for start in range(0, len(order), batch_size):
        batch = [jobs[i] for i in order[start:start + batch_size]]
        inputs = tokenizer([j.text for j in batch], add_special_tokens=not (bos and batch[0].text.startswith(bos)),
                           padding=True, return_tensors="pt")
        mask = inputs["attention_mask"]
        tokens += int(mask.sum())
        with torch.inference_mode():
            logits = model(input_ids=inputs["input_ids"], attention_mask=mask, use_cache=False, logits_to_keep=1,
                           position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits[:, -1].float()
        for row, job in enumerate(batch):
            dist = normalise({c: float(logits[row, t]) for c, t in job.choice_ids.items()})
            if job.label is None:
                probs[job.index] = dist
            else:
                probs[job.index][job.label] = dist[next(iter(job.choice_ids))]
    return probs, tokens


def new_path(backend, requests: list) -> tuple[list[dict[str, float]], int]:
    """The backend; tokens counted at the model's input (new positions only)."""
    import asyncio
    seen: list[int] = []

    def count(module, args, kwargs):
        seen.append(int(kwargs["attention_mask"][:, -kwargs["input_ids"].shape[1]:].sum()))
    hook = backend._model.register_forward_pre_hook(count, with_kwargs=True)   # noqa: SLF001
    try:
        responses = asyncio.run(backend.complete(requests))
    finally:
        hook.remove()
    failed = [r.detail for r in responses if r.failure]
    if failed:
        raise SystemExit(f"local_judge: the backend failed: {failed[0]}")
    return [r.choice_probs or r.extra["category_probs"] for r in responses], sum(seen)


def main() -> None:
    args = parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch
    torch.set_num_threads(args.threads)
    from cosa_eval.judging.backends.transformers import TransformersBackend
    from cosa_eval.judging.judge import load_judge
    from cosa_eval.smollm2 import smollm2_path

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs; "
          f"OMP_NUM_THREADS={args.threads}; n={args.n} per rubric, {args.repeats} repeats, "
          f"batch_size={args.batch_size}")
    judge = load_judge("transformers")
    backend = TransformersBackend(str(smollm2_path()), {}, concurrency=1, batch_size=args.batch_size, dtype=args.dtype)
    backend.check_ready()
    backend._load_model()   # noqa: SLF001 - load outside the clock
    print(f"model: {backend.identity()['model']}, dtype {backend._model.dtype}")   # noqa: SLF001
    header = (f"{'rubric':<12} {'old j/s':>8} {'new j/s':>8} {'ideal j/s':>9} {'new/old':>8} {'new/ideal':>9} "
              f"{'old tok/j':>9} {'new tok/j':>9} {'max |dp|':>8}")
    print(header)
    for rubric in RUBRICS:
        requests = make_requests(judge, rubric, args.n)
        new_path(backend, requests[:2])                        # warm-up
        old_times, new_times, diff = [], [], 0.0
        for _ in range(args.repeats):                          # A B A B
            started = time.perf_counter()
            old_probs, old_tokens = old_path(backend, requests, args.batch_size)
            old_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            new_probs, new_tokens = new_path(backend, requests)
            new_times.append(time.perf_counter() - started)
            diff = max(diff, max(abs(o[k] - p[k]) for o, p in zip(old_probs, new_probs) for k in o))
        old_t, new_t = sorted(old_times)[len(old_times) // 2], sorted(new_times)[len(new_times) // 2]
        ideal_t = old_t * new_tokens / old_tokens
        n = len(requests)
        print(f"{rubric:<12} {n / old_t:8.2f} {n / new_t:8.2f} {n / ideal_t:9.2f} {old_t / new_t:7.2f}x "
              f"{ideal_t / new_t:8.2f}x {old_tokens / n:9.0f} {new_tokens / n:9.0f} {diff:8.4f}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (medians of {args.repeats}; "
          "a loaded machine slows both paths alike, the ratios hold better than the rates)")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
