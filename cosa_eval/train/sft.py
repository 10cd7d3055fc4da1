"""Step 6a: supervised fine-tuning on the chosen responses, through TRL's SFTTrainer.

As in the reference code, each distinct (config, prompt) is trained on the *last* chosen response
seen for it. Rows are conversational prompt-completion pairs, so the loss covers the response
only. Runnable as a script or as ``cosa-eval train sft``:

    cosa-eval train sft --input pairs.jsonl --model meta-llama/Llama-3.1-8B-Instruct \\
        --output-dir runs/sft --learning-rate 1e-5
    accelerate launch --config_file cosa_eval/train/launch/fsdp_8gpu.yaml -m cosa_eval.cli \\
        train sft --input pairs.jsonl --model meta-llama/Llama-3.1-8B-Instruct --output-dir runs/sft
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

from .runner import (already_trained, drop_long_prompts, finish, load_model, load_pairs, load_tokenizer,
                     loss_figures, save_final, train_resuming)
from .settings import TrainSettings, add_training_arguments, settings_from_args

SFT_LEARNING_RATE = 1e-5  # the paper does not state its SFT learning rate; a common full-FT value


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
                      peft_config=settings.lora.to_peft() if settings.lora.enabled else None)


def run(settings: TrainSettings, input_path: str) -> dict[str, Any]:
    """Train and save; returns the figures written to the manifest."""
    from .logprobs import mean_nll
    if already_trained(settings, "sft"):
        return {}
    counts: Counter = Counter()
    pairs = load_pairs(input_path)
    tokenizer = load_tokenizer(settings)
    rows = drop_long_prompts(sft_rows(pairs), tokenizer, settings.max_prompt_length, counts)
    counts.update(pairs=len(pairs), sft_rows=len(rows))
    config = sft_config(settings)  # sets up the distributed state and the device
    model = load_model(settings)
    # Measured in single-process runs only: under FSDP / ZeRO-3 the weights are sharded or not yet loaded.
    probe = rows[:settings.measure_pairs] if config.world_size == 1 else []
    figures: dict[str, Any] = {}
    if probe:
        figures["nll_before"] = mean_nll(model.to(config.device), tokenizer, probe, settings.max_length)
    trainer = build_trainer(settings, config, rows, model, tokenizer)
    train_resuming(trainer, settings)
    if probe:
        figures["nll_after"] = mean_nll(trainer.model, tokenizer, probe, settings.max_length)
    figures.update(loss_figures(trainer), global_steps=trainer.state.global_step)
    save_final(trainer, tokenizer, settings)
    if trainer.accelerator.is_main_process:
        finish(settings, "sft", input_path, counts, figures)
        print(f"sft: {len(rows)} examples, {trainer.state.global_step} steps, model in {settings.output_dir} "
              f"({', '.join(f'{k} {v:.4g}' for k, v in figures.items() if isinstance(v, float))})")
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_training_arguments(parser, learning_rate=SFT_LEARNING_RATE)


def main(args: argparse.Namespace) -> int:
    run(settings_from_args(args), args.input)
    return 0


def make_parser(subparsers: Any = None) -> argparse.ArgumentParser:
    """The script's own parser, or a ``sft`` sub-parser of ``subparsers``."""
    parser = (subparsers.add_parser("sft", help=__doc__.splitlines()[0]) if subparsers is not None
              else argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    add_arguments(parser)
    return parser


if __name__ == "__main__":
    raise SystemExit(main(make_parser().parse_args()))
