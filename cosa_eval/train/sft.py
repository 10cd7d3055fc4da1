"""Step 6a: supervised fine-tuning on the chosen responses, through TRL's SFTTrainer.

As in the reference code, each distinct (config, prompt) is trained on the *last* chosen response
seen for it. Rows are conversational prompt-completion pairs, so the loss covers the response
only. Its flags are the fields of :class:`SFTSettings`:

    cosa-eval train sft --input pairs.jsonl --model meta-llama/Llama-3.1-8B-Instruct \\
        --output-dir runs/sft --learning-rate 1e-5
    accelerate launch --config_file cosa_eval/train/launch/fsdp_8gpu.yaml -m cosa_eval.cli \\
        train sft --input pairs.jsonl --model meta-llama/Llama-3.1-8B-Instruct --output-dir runs/sft
"""
from __future__ import annotations

import argparse
import json
from typing import Any

from .logprobs import mean_nll
from .runner import Step, run_step
from .settings import SFTSettings, TrainSettings, add_training_arguments, settings_from_args

SETTINGS = SFTSettings


def sft_rows(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One prompt-completion row per distinct prompt (system + user), its last chosen response."""
    latest: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key = json.dumps(pair["prompt"], sort_keys=True, ensure_ascii=False)
        latest.pop(key, None)  # re-insert so order follows the last occurrence
        latest[key] = {"prompt": pair["prompt"], "completion": pair["chosen"]}
    return list(latest.values())


def sft_config(settings: TrainSettings) -> Any:
    from trl import SFTConfig
    return SFTConfig(**settings.trainer_kwargs(), completion_only_loss=True)


def build_trainer(settings: TrainSettings, config: Any, rows: list[dict[str, Any]], model: Any, tokenizer: Any) -> Any:
    """Configure (never subclass) TRL's SFTTrainer."""
    from datasets import Dataset
    from trl import SFTTrainer
    return SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows),
                      processing_class=tokenizer,
                      peft_config=settings.peft_config())


STEP = Step(name="sft", noun="examples", rows=sft_rows, config=sft_config, trainer=build_trainer,
            measure=mean_nll, figures=lambda before, after, settings: {"nll_before": before, "nll_after": after})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_training_arguments(parser)


def main(args: argparse.Namespace) -> int:
    run_step(STEP, settings_from_args(SETTINGS, args), args.input)
    return 0

