"""Judge engine throughput, cached re-run time and memory, measured side by side in one run.

    python benchmarks/judge_throughput.py                     # defaults below
    python benchmarks/judge_throughput.py --n 2000 --latency 0.1 --concurrency 64
    PYTHONPATH=../older-checkout python benchmarks/judge_throughput.py   # the same, for an older release

1. N judgments against the local OpenAI-compatible server (a subprocess, so it does not share
   this process's GIL) answering after L seconds, C calls in flight: wall time vs the ideal N*L/C
   (target <= 1.15x). ``judge.check_ready()`` (which imports the openai client, ~0.3 s) runs
   before the clock starts, as it does before an lm_eval run, and is printed separately.
2. Engine time of a fully cached re-run of 6,400 judgments (3,200 docs x 2 rubrics; target < 2 s).
3. Peak memory of an engine run over 100,000 cached judgments (a fresh child process).
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from openai_server import rubric_answer  # noqa: E402

from cosa_eval.judging.backends.base import JudgeResponse  # noqa: E402
from cosa_eval.judging.cache import JudgeCache  # noqa: E402
from cosa_eval.judging.engine import judge_run  # noqa: E402
from cosa_eval.judging.judge import load_judge, sample_item  # noqa: E402
from cosa_eval.types import Sample  # noqa: E402

SPLITS = ("safe", "Violence", "Privacy_Violations")


def make_samples(count: int) -> list[Sample]:
    """Distinct cosalign_test-shaped samples with realistic prompt and response lengths."""
    samples = []
    for i in range(count):
        prompt = f"Question {i}: how would someone go about a risky but ordinary task number {i % 97}?"
        response = (f"Answer {i}. " + "Here is a careful, step-by-step explanation of the task. " * 6).strip()
        samples.append(Sample(task="cosalign_test_bench", benchmark="cosalign_test", schema="cosalign_test", variant="0shot",
                              config_id=SPLITS[i % 3], config_group="seen", doc_id=i, prompt=prompt,
                              config="Allowed: Violence.", response=response, situation=1 + i % 3,
                              mode="exact", allowed_categories=("Violence",) if i % 3 == 1 else ()))
    return samples


def write_judge(folder: Path, concurrency: int) -> Path:
    """A judge.yaml for the local server (shipped rubrics)."""
    path = folder / "bench" / "judge.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"backend: openai\nmodel: judge-model\nsampling: {{temperature: 0, max_tokens: 256}}\n"
                    f"concurrency: {concurrency}\nprices: {{input: 2.5, output: 10}}\n"
                    "backend_options: {timeout_s: 30, max_retries: 3}\n", encoding="utf-8")
    return path


def fill_cache(cache_path: Path, judge_path: Path, samples: list[Sample]) -> int:
    """Store the answers the local server would give, without any HTTP (``put`` only, so the
    script also runs against an older checkout on PYTHONPATH)."""
    judge = load_judge(judge_path)
    count = 0
    with JudgeCache(cache_path) as cache:
        for sample in samples:
            for rubric in judge.rubric_hashes(sample):
                request = judge.request(rubric, sample_item(sample))
                text = rubric_answer(list(request.messages))
                count += cache.put(request.key, rubric, JudgeResponse(text=text, input_tokens=700, output_tokens=60))
    return count


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "openai_server.py"), "--latency", str(latency)],
                              stdout=subprocess.PIPE, text=True)
    return server, server.stdout.readline().strip()


def bench_throughput(folder: Path, n: int, latency: float, concurrency: int) -> dict:
    """Wall time of N fresh judgments vs N*L/C."""
    server, url = start_server(latency)
    os.environ["OPENAI_BASE_URL"], os.environ["OPENAI_API_KEY"] = url, "sk-bench-not-a-secret"
    try:
        judge = load_judge(write_judge(folder, concurrency))
        samples = make_samples(n // 2)
        started = time.perf_counter()
        judge.check_ready()              # as before an lm_eval run: imports the openai client
        ready_s = time.perf_counter() - started
        started = time.perf_counter()
        run = judge_run(samples, judge, cache_path=folder / "throughput.sqlite", progress=False)
        wall = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait()
    ideal = run.stats.sent * latency / concurrency
    return {"calls": run.stats.sent, "wall_s": wall, "ideal_s": ideal, "ratio": wall / ideal, "ready_s": ready_s}


def bench_cached(folder: Path, judgments: int) -> dict:
    """Engine time of a re-run whose every judgment is in the cache (no server at all)."""
    judge_path = write_judge(folder, 16)
    samples = make_samples(judgments // 2)
    cache_path = folder / "cached.sqlite"
    fill_cache(cache_path, judge_path, samples)
    started = time.perf_counter()
    run = judge_run(samples, load_judge(judge_path), cache_path=cache_path, progress=False)
    seconds = time.perf_counter() - started
    assert run.stats.sent == 0 and run.stats.cached == judgments
    return {"judgments": judgments, "engine_s": seconds}


def memory_child(cache_path: str, judge_path: str, judgments: int) -> None:
    """Run in a fresh process: print RSS after imports and samples, and the peak after the run."""
    samples = make_samples(judgments // 2)
    judge = load_judge(judge_path)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    run = judge_run(samples, judge, cache_path=cache_path, progress=False)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert run.stats.sent == 0 and len(run.records) == judgments // 2
    print(f"{before:.0f} {peak:.0f} {seconds:.2f}")


def bench_memory(folder: Path, judgments: int) -> dict:
    """Peak RSS of a cached run over ``judgments`` judgments, in a child process."""
    judge_path = write_judge(folder, 16)
    cache_path = folder / "memory.sqlite"
    fill_cache(cache_path, judge_path, make_samples(judgments // 2))
    out = subprocess.run([sys.executable, __file__, "--memory-child", str(cache_path), str(judge_path),
                          str(judgments)], check=True, capture_output=True, text=True).stdout.split()
    before, peak, seconds = float(out[0]), float(out[1]), float(out[2])
    return {"judgments": judgments, "rss_before_mb": before, "peak_rss_mb": peak, "engine_s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="judgments for the throughput run")
    parser.add_argument("--latency", type=float, default=0.2, help="server seconds per answer")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--cached", type=int, default=6400)
    parser.add_argument("--memory", type=int, default=100_000)
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        return memory_child(args.memory_child[0], args.memory_child[1], int(args.memory_child[2]))
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} before", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t = bench_throughput(folder, args.n, args.latency, args.concurrency)
        print(f"throughput: {t['calls']} calls, latency {args.latency}s, concurrency {args.concurrency}: "
              f"wall {t['wall_s']:.2f}s vs ideal {t['ideal_s']:.2f}s = {t['ratio']:.3f}x (target <= 1.15x); "
              f"check_ready before it {t['ready_s']:.2f}s")
        c = bench_cached(folder, args.cached)
        print(f"cached re-run: {c['judgments']} judgments in {c['engine_s']:.2f}s engine time (target < 2s)")
        m = bench_memory(folder, args.memory)
        print(f"memory: {m['judgments']} cached judgments, peak RSS {m['peak_rss_mb']:.0f} MB "
              f"({m['rss_before_mb']:.0f} MB before the run; engine {m['engine_s']:.1f}s)")
    print(f"load average {os.getloadavg()[0]:.2f} after (a loaded machine: times are upper bounds)")


if __name__ == "__main__":
    main()
