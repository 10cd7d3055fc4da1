"""Wall time and peak memory of `cosa-eval demo` (target: under 15 minutes on 2 CPU cores).

    python benchmarks/demo_time.py [--out DIR]

Runs the demo twice into the same folder: the second run reuses the judge cache, and the ratio
of the two judging stages shows what the cache saves.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp()) / "demo"
    command = [sys.executable, "-m", "cosa_eval.cli", "demo", "--out", str(out), "--cache", str(out / "cache.sqlite")]
    first = timed(command)
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 ** 2
    second = timed(command)
    stats = json.loads((out / "judged" / "judge_run.json").read_text())["stats"]
    print(f"cosa-eval demo: first run {first / 60:.1f} min, second run {second / 60:.1f} min "
          f"({second / first:.2f}x; judge calls sent on the second run: {stats['sent']}, "
          f"from cache: {stats['cached']}); peak RSS of a child process {peak_gb:.2f} GB")


if __name__ == "__main__":
    main()
