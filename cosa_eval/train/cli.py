"""``cosa-eval train STEP``: the CoSAlign pipeline, one resumable step per sub-command.

    label -> synthesize -> generate -> judge -> pair -> sft -> dpo     (or load-released -> sft -> dpo)

Each step reads the previous step's jsonl, appends to its own, skips rows already done, and writes
a manifest beside its output. See cosa_eval/train/README.md for a worked run.
"""
from __future__ import annotations

import argparse
import importlib

from .files import check_distinct

# step -> (module exposing add_arguments(parser) and main(args) -> int, one-line help)
STEPS: dict[str, tuple[str, str]] = {
    "label": ("cosa_eval.train.label", "label training prompts with risk categories (judge)"),
    "synthesize": ("cosa_eval.train.synthesize", "synthesize configs per prompt: exact/superset/safe/not-superset"),
    "generate": ("cosa_eval.train.generate", "generate responses per (config, prompt)"),
    "judge": ("cosa_eval.train.judge_responses", "judge responses: addressed? which risk categories? (judge)"),
    "pair": ("cosa_eval.train.pairing", "error-score responses and build preference pairs"),
    "sft": ("cosa_eval.train.sft", "supervised fine-tuning on the chosen responses (TRL)"),
    "dpo": ("cosa_eval.train.dpo", "DPO on the preference pairs, beta 0.1 (TRL)"),
    "load-released": ("cosa_eval.train.released", "convert microsoft/CoSAlign-Train from the hub to pair rows"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One sub-parser per step; a module's ``SETTINGS`` dataclass, if any, gives its flags (as TRL's scripts)."""
    from transformers import HfArgumentParser
    steps = parser.add_subparsers(dest="train_step", metavar="STEP", parser_class=HfArgumentParser)
    for name, (module, help_text) in STEPS.items():
        step = importlib.import_module(module)
        settings = getattr(step, "SETTINGS", None)
        formatter = argparse.ArgumentDefaultsHelpFormatter if settings else argparse.HelpFormatter
        sub = steps.add_parser(name, help=help_text, description=help_text, formatter_class=formatter,
                               dataclass_types=settings)
        sub.set_defaults(train_module=module)
        step.add_arguments(sub)


def main(args: argparse.Namespace) -> int:
    if getattr(args, "train_step", None) is None:
        print("usage: cosa-eval train STEP ...; steps: " + ", ".join(STEPS))
        return 2
    check_distinct(getattr(args, "input", None), getattr(args, "output", None) or getattr(args, "output_dir", None))
    return int(importlib.import_module(args.train_module).main(args) or 0)
