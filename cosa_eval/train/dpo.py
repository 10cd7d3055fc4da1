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
from typing import Any

from .logprobs import margin_summary, pair_gaps
from .runner import Step, run_step
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


STEP = Step(name="dpo", noun="pairs", rows=dpo_rows, config=dpo_config, trainer=build_trainer,
            measure=pair_gaps, figures=lambda before, after, settings: margin_summary(before, after, settings.beta))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_training_arguments(parser, learning_rate=DPO_LEARNING_RATE)
    parser.add_argument("--beta", type=float, default=0.1, help="DPO beta (default: %(default)s, the paper's)")


def main(args: argparse.Namespace) -> int:
    run_step(STEP, settings_from_args(args), args.input)
    return 0


def make_parser(subparsers: Any = None) -> argparse.ArgumentParser:
    """The script's own parser, or a ``dpo`` sub-parser of ``subparsers``."""
    parser = (subparsers.add_parser("dpo", help=__doc__.splitlines()[0]) if subparsers is not None
              else argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    add_arguments(parser)
    return parser


if __name__ == "__main__":
    raise SystemExit(main(make_parser().parse_args()))
