"""Step 6b: DPO (beta 0.1) on the preference pairs, through TRL's DPOTrainer.

Start from the SFT model; the reference is the SFT model frozen, scored once over the pairs before
training (``--precompute-ref-log-probs``, the default, so no copy of it is held while training), or
the base with the adapter switched off under LoRA. Before and after training the log-probability gap
log p(chosen) - log p(rejected) is measured on the first ``--measure-pairs`` pairs, giving the mean
implicit reward margin (0 before by definition) and reward accuracy in ``cosa_manifest.json``.
Its flags are the fields of :class:`DPOSettings`:

    cosa-eval train dpo --input pairs.jsonl --model runs/sft --output-dir runs/dpo
    accelerate launch --config_file cosa_eval/train/launch/fsdp_8gpu.yaml -m cosa_eval.cli \\
        train dpo --input pairs.jsonl --model runs/sft --output-dir runs/dpo --epochs 3
"""
from __future__ import annotations

import argparse
from typing import Any

from .logprobs import margin_summary, pair_gaps
from .runner import Step, run_step
from .settings import DPOSettings, TrainSettings, add_training_arguments, settings_from_args

SETTINGS = DPOSettings


def dpo_rows(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """TRL's conversational preference rows; provenance fields stay in the jsonl."""
    return [{"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"]} for p in pairs]


def dpo_config(settings: DPOSettings) -> Any:
    from trl import DPOConfig
    return DPOConfig(**settings.trainer_kwargs(), beta=settings.beta, loss_type=["sigmoid"],
                     precompute_ref_log_probs=settings.precompute_ref_log_probs)


def build_trainer(settings: TrainSettings, config: Any, rows: list[dict[str, Any]], model: Any, tokenizer: Any) -> Any:
    """Configure (never subclass) TRL's DPOTrainer."""
    from datasets import Dataset
    from trl import DPOTrainer
    return DPOTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                      peft_config=settings.peft_config())


STEP = Step(name="dpo", noun="pairs", rows=dpo_rows, config=dpo_config, trainer=build_trainer,
            measure=pair_gaps, figures=lambda before, after, settings: margin_summary(before, after, settings.beta))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_training_arguments(parser)


def main(args: argparse.Namespace) -> int:
    run_step(STEP, settings_from_args(SETTINGS, args), args.input)
    return 0

