"""Wall time of lm_eval over all 3,200 cosalign_test docs with the tiny random Llama (no --limit).

    python benchmarks/full_pass.py [--max-gen-toks 16] [--shared ../shared]

Prints the full pass beside a 10% pass measured in the same run, so the per-doc cost and the
fixed start-up cost (imports, model and data loading) can be read as a ratio on a noisy machine.
Generation is capped (a random model rarely stops by itself; the task default is 1,024 tokens).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def run(model: Path, data: Path, out: Path, max_gen_toks: int, limit: int | None) -> float:
    command = [sys.executable, "-m", "cosa_eval.cli", "eval", "--model", "hf", "--model_args",
               f"pretrained={model}", "--tasks", "cosalign_test", "--apply_chat_template", "--predict_only",
               "--output_path", str(out), "--batch_size", "32", "--gen_kwargs", f"max_gen_toks={max_gen_toks}"]
    if limit:
        command += ["--limit", str(limit)]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "COSA_DATA_DIR": str(data)})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-gen-toks", type=int, default=16)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args()
    from conftest import write_local_data
    from tiny_model import build_tiny_llama
    rows = [json.loads(line) for line in
            (args.shared / "data/cosa/reconstructed/cosalign_test_reconstructed.jsonl").read_text().splitlines()]
    configs = {c["split"]: c["config"] for c in json.loads(
        (args.shared / "data/cosa/reconstructed/cosapien_safety_configs_from_repo.json").read_text())["configs"]}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, data = build_tiny_llama(tmp / "tiny"), write_local_data(tmp / "data", rows, configs)
        part = run(model, data, tmp / "part", args.max_gen_toks, limit=40)      # 8 configs x 40 = 320 docs
        full = run(model, data, tmp / "full", args.max_gen_toks, limit=None)    # 3,200 docs
    per_doc = (full - part) / (3200 - 320)
    print(f"lm_eval cosalign_test, tiny Llama, max_gen_toks={args.max_gen_toks}, batch 32")
    print(f"  320 docs: {part:7.1f} s   3,200 docs: {full:7.1f} s   ratio {full / part:.2f}x for 10x the docs")
    print(f"  marginal cost {per_doc * 1000:.1f} ms/doc; fixed start-up ~{full - 3200 * per_doc:.1f} s")


if __name__ == "__main__":
    main()
