"""6,400 judgments three ways against the local server: online, --batch, and export -> answer
offline -> import; checks that all three give the same judged files and scores, and prints times.

    python benchmarks/batch_vs_online.py [--per-file 1000] [--out DIR]

The samples are the shared CoSAlign-Test reconstruction (3,200 rows x 2 rubrics), with the test
suite's scripted responses. Judged files are compared byte for byte, except ``cost_usd`` in batch
mode (batch prices are half the online ones); scores.json byte for byte. Each key's submissions
are counted at the server.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "judging")]

from conftest import SHARED_COSALIGN  # noqa: E402
from judging_helpers import cosalign_samples, write_judge, write_samples_file  # noqa: E402
from openai_server import FakeOpenAIServer  # noqa: E402

from cosa_eval.cli import main as cosa  # noqa: E402


def judged(folder: Path, drop_cost: bool) -> list[str]:
    lines = []
    for path in sorted(folder.glob("judged_*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if drop_cost:
                row["extra"].pop("cost_usd")
            lines.append(json.dumps(row, sort_keys=True) if drop_cost else line)
    return lines


def timed(*argv: object) -> float:
    start = time.perf_counter()
    status = cosa(["judge", *map(str, argv), "--no-progress"])
    assert status == 0, f"exit status {status}"
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-file", type=int, default=1000, help="batch_max_requests (default 1000)")
    parser.add_argument("--out", type=Path, help="scratch folder (default: a new temporary one)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="cosa-batch-bench-"))
    rows = [json.loads(line) for line in SHARED_COSALIGN.read_text(encoding="utf-8").splitlines()]
    run = out / "run"
    write_samples_file(run, cosalign_samples(rows))
    judge = write_judge(out / "judges", concurrency=32, backend_options={
        "timeout_s": 30, "max_retries": 3, "batch_max_requests": args.per_file, "batch_poll_s": 0.05})
    with FakeOpenAIServer() as server:
        os.environ.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-bench")
        online = timed(run, "--judge", judge, "--cache", out / "online.sqlite", "--output", out / "online")
        calls = server.request_count
        server.reset()
        batch = timed(run, "--judge", judge, "--cache", out / "batch.sqlite", "--output", out / "batch", "--batch")
        submitted, batches = server.batch.submitted, len(server.batch.batches)
        rounds, imported, import_s = 0, 0, 0.0
        while True:
            requests, answers = out / f"requests-{rounds}.jsonl", out / f"answers-{rounds}.jsonl"
            timed(run, "--judge", judge, "--cache", out / "offline.sqlite", "--export-requests", requests)
            lines = [json.loads(line) for line in requests.read_text(encoding="utf-8").splitlines()]
            if not lines:
                break
            answers.write_text("".join(json.dumps(line) + "\n" for line in server.answer_offline(lines)), encoding="utf-8")
            import_s += timed(run, "--judge", judge, "--cache", out / "offline.sqlite", "--import-answers", answers)
            imported, rounds = imported + len(lines), rounds + 1
        timed(run, "--judge", judge, "--cache", out / "offline.sqlite", "--output", out / "offline")
    scores = {name: (out / name / "scores.json").read_bytes() for name in ("online", "batch", "offline")}
    print(f"judgments: {len(rows) * 2:,}; online: {calls:,} calls, {online:.1f} s")
    print(f"--batch: {batches} batches of <= {args.per_file} requests, {sum(submitted.values()):,} submissions, "
          f"each key {set(submitted.values())} time(s), {batch:.1f} s")
    print(f"offline: {rounds} export/import round(s), {imported:,} answers imported in {import_s:.1f} s "
          f"({imported / max(import_s, 1e-9):,.0f}/s incl. the run's setup)")
    print(f"judged files identical to online: batch (cost_usd aside) {judged(out / 'batch', True) == judged(out / 'online', True)}, "
          f"offline (byte for byte) {judged(out / 'offline', False) == judged(out / 'online', False)}; "
          f"scores.json identical: {scores['batch'] == scores['online'] == scores['offline']}")


if __name__ == "__main__":
    main()
