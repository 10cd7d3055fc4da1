"""Step 6b: DPO (beta 0.1) on the preference pairs, through TRL's DPOTrainer.

Start from the SFT model; the reference is a frozen copy of it (TRL makes it), or the base with
the adapter switched off under LoRA. Before and after training the log-probability gap
log p(chosen) - log p(rejected) is measured on the first ``--measure-pairs`` pairs, giving the mean
implicit reward margin (0 before by definition) and reward accuracy in ``cosa_manifest.json``.

    cosa-eval train dpo --input pairs.jsonl --model runs/sft --output-dir runs/dpo
    accelerate launch --config_file cosa_eval/train/launch/fsdp_8gpu.yaml -m cosa_eval.cli \\
        train dpo --input pairs.jsonl --model runs/sft --output-dir runs/dpo --epochs 3
"""
from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from .runner import (already_trained, drop_long_prompts, finish, load_model, load_pairs, load_tokenizer,
                     loss_figures, save_final, train_resuming)
from .settings import TrainSettings, add_training_arguments, settings_from_args

DPO_LEARNING_RATE = 5e-7


def dpo_rows(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """TRL's conversational preference rows; provenance fields stay in the jsonl."""
    return [{"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"]} for p in pairs]


def dpo_config(settings: TrainSettings) -> Any:
    from trl import DPOConfig
    return DPOConfig(**settings.trainer_kwargs(), beta=settings.beta, loss_type=["sigmoid"])


def build_trainer(settings: TrainSettings, config: Any, rows: list[dict[str, Any]], model: Any, tokenizer: Any) -> Any:
    """Configure (never subclass) TRL's DPOTrainer."""
    from datasets import Dataset
    from trl import DPOTrainer
    return DPOTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                      peft_config=settings.lora.to_peft() if settings.lora.enabled else None)


def run(settings: TrainSettings, input_path: str) -> dict[str, Any]:
    """Train and save; returns the figures written to the manifest."""
    from .logprobs import margin_summary, pair_gaps
    if already_trained(settings, "dpo"):
        return {}
    counts: Counter = Counter()
    pairs = load_pairs(input_path)
    tokenizer = load_tokenizer(settings)
    rows = drop_long_prompts(dpo_rows(pairs), tokenizer, settings.max_prompt_length, counts)
    counts.update(pairs=len(pairs), dpo_rows=len(rows))
    config = dpo_config(settings)  # sets up the distributed state and the device
    model = load_model(settings)
    # Measured in single-process runs only: under FSDP / ZeRO-3 the weights are sharded or not yet loaded.
    probe = rows[:settings.measure_pairs] if config.world_size == 1 else []
    gaps_before = pair_gaps(model.to(config.device), tokenizer, probe, settings.max_length) if probe else []
    trainer = build_trainer(settings, config, rows, model, tokenizer)
    train_resuming(trainer, settings)
    figures: dict[str, Any] = {**loss_figures(trainer), "global_steps": trainer.state.global_step}
    if probe:
        gaps_after = pair_gaps(trainer.model, tokenizer, probe, settings.max_length)
        figures.update(margin_summary(gaps_before, gaps_after, settings.beta))
    save_final(trainer, tokenizer, settings)
    if trainer.accelerator.is_main_process:
        finish(settings, "dpo", input_path, counts, figures)
        print(f"dpo: {len(rows)} pairs, {trainer.state.global_step} steps, model in {settings.output_dir} "
              f"({', '.join(f'{k} {v:.4g}' for k, v in figures.items() if isinstance(v, float))})")
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_training_arguments(parser, learning_rate=DPO_LEARNING_RATE)
    parser.add_argument("--beta", type=float, default=0.1, help="DPO beta (default: %(default)s, the paper's)")


def main(args: argparse.Namespace) -> int:
    run(settings_from_args(args), args.input)
    return 0


def make_parser(subparsers: Any = None) -> argparse.ArgumentParser:
    """The script's own parser, or a ``dpo`` sub-parser of ``subparsers``."""
    parser = (subparsers.add_parser("dpo", help=__doc__.splitlines()[0]) if subparsers is not None
              else argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    add_arguments(parser)
    return parser


if __name__ == "__main__":
    raise SystemExit(main(make_parser().parse_args()))
