"""SmolLM2 generation with OpenMP's waiting threads spinning (ACTIVE) or sleeping (PASSIVE), the
setting `cosa-eval demo` defaults to PASSIVE. Runs interleaved (A B A B) in fresh processes and
prints the load average: the difference shows on shared, loaded cores.

    python benchmarks/omp_wait.py [--repeat 2] [--threads 2] [--tokens 16]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

CHILD = """
import time, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from cosa_eval.smollm2 import smollm2_path
path = str(smollm2_path())
tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
model = AutoModelForCausalLM.from_pretrained(path)
chats = [[{"role": "system", "content": "You answer questions for a cooking school. " * 20},
          {"role": "user", "content": f"Question {i}: how long do I boil rice?"}] for i in range(8)]
batch = tokenizer(tokenizer.apply_chat_template(chats, tokenize=False, add_generation_prompt=True),
                  return_tensors="pt", padding=True)
start = time.perf_counter()
with torch.no_grad():
    model.generate(**batch, max_new_tokens=TOKENS, min_new_tokens=TOKENS, do_sample=False)
print(f"{time.perf_counter() - start:.1f}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=16)
    args = parser.parse_args()
    code = CHILD.replace("TOKENS", str(args.tokens))
    print(f"one batch of 8 chats, {args.tokens} new tokens, OMP_NUM_THREADS={args.threads}, {os.cpu_count()} CPUs")
    for number in range(1, args.repeat + 1):
        for policy in ("ACTIVE", "PASSIVE"):
            load = "/".join(f"{v:.1f}" for v in os.getloadavg())
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "OMP_WAIT_POLICY": policy}
            seconds = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                     check=True).stdout.strip()
            print(f"repeat {number} {policy:<7} {seconds:>6} s  (load average before: {load})", flush=True)


if __name__ == "__main__":
    main()
