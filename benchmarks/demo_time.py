"""Wall time and peak memory of `cosa-eval demo` (target: first run under 15 minutes on 2 loaded CPU cores).

    python benchmarks/demo_time.py [--out DIR] [--threads 2] [--repeat 1]

Each repeat is a user's first run (fresh output folder, fresh cosa-eval cache, so the one-time
SmolLM2 conversion counts) followed by a second run into the same folder, which answers lm_eval
from the generation cache and the judge from the judge cache. Prints the load average before and
after each run: the project's machine is shared, so its figures are noisy.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _load() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def timed(command: list[str], env: dict[str, str], out: Path) -> str:
    before = _load()
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    run = json.loads((out / "demo_run.json").read_text())
    stats, seconds = run["judge_stats"], run["seconds"]
    return (f"{wall / 60:.1f} min (generation {seconds['generation'] / 60:.1f}, judging {seconds['judging'] / 60:.1f}; "
            f"judge calls sent {stats['sent']}, from cache {stats['cached']}; load average {before} -> {_load()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of the demo (default: 2)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp())
    print(f"cosa-eval demo, OMP_NUM_THREADS={args.threads}, OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', 'PASSIVE (the demo default)')}, {os.cpu_count()} CPUs, "
          f"load average {_load()}")
    for number in range(1, args.repeat + 1):
        out = root / f"demo-{number}"
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "COSA_CACHE_DIR": str(root / f"cache-{number}")}
        command = [sys.executable, "-m", "cosa_eval.cli", "demo", "--out", str(out)]
        print(f"run {number}: first  {timed(command, env, out)}", flush=True)
        print(f"run {number}: second {timed(command, env, out)}", flush=True)
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 ** 2
    print(f"peak RSS of a child process: {peak_gb:.2f} GB")


if __name__ == "__main__":
    main()
