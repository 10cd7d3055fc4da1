"""Training settings for ``train sft`` and ``train dpo``: the one source of every flag and default.

Each field is one flag, derived by transformers' ``HfArgumentParser`` (as TRL's scripts do):
``--learning-rate`` (or ``--learning_rate``), booleans with a ``--no-...`` form, ``aliases`` and
``help`` from the field's metadata. Values are validated before any model is loaded.

Defaults are the paper's DPO setting (dpo/config in the reference repo): lr 5e-7, RMSprop,
150 warmup steps, max grad norm 10, max length 640 with prompts up to 512 tokens, seed 0, and an
effective batch of 32 on 8 GPUs (1 per device x 4 accumulation steps x 8 processes).
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, TypeVar

from ..errors import CosaError

PAPER_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
Optimizer = Literal["rmsprop", "adamw_torch", "adamw_torch_fused", "sgd"]
DType = Literal["float32", "bfloat16", "float16"]


def _flag(help_text: str, *aliases: str) -> dict[str, Any]:
    return {"help": help_text, "aliases": list(aliases)}


@dataclass
class TrainSettings:
    """What both trainers share."""

    model: str = field(metadata=_flag("starting model: folder or hub id"))
    output_dir: str = field(metadata=_flag("where the trained HF model folder goes"))
    learning_rate: float = field(default=5e-7, metadata=_flag("peak learning rate"))
    num_train_epochs: float = field(default=1.0, metadata=_flag("epochs", "--epochs"))
    max_steps: int = field(default=-1, metadata=_flag("stop after N optimizer steps (overrides --epochs)"))
    per_device_train_batch_size: int = field(default=1, metadata=_flag("sequences per device", "--batch-size"))
    gradient_accumulation_steps: int = field(default=4, metadata=_flag("accumulation steps", "--grad-accum"))
    max_length: int = field(default=640, metadata=_flag("longer sequences are cut by TRL"))
    max_prompt_length: int = field(default=512, metadata=_flag("longer prompts are dropped (counted)"))
    warmup_steps: int = field(default=150, metadata=_flag("linear warmup steps"))
    optim: Optimizer = field(default="rmsprop", metadata=_flag("optimizer"))
    max_grad_norm: float = field(default=10.0, metadata=_flag("gradient clipping norm"))
    seed: int = field(default=0, metadata=_flag("training seed"))
    bf16: bool | None = field(default=None, metadata=_flag("bf16 autocast: true/false; default: on when a GPU "
                                                           "supports it"))
    model_dtype: DType = field(default="float32", metadata=_flag(
        "weights' dtype; float32 keeps full-precision master weights under bf16 autocast (needed at lr 5e-7); "
        "bfloat16 saves memory, e.g. for a LoRA base"))
    gradient_checkpointing: bool = field(default=True, metadata=_flag("trade compute for memory"))
    logging_steps: int = field(default=10, metadata=_flag("log the loss every N steps"))
    save_steps: int = field(default=500, metadata=_flag("checkpoint interval (for resuming)"))
    measure_pairs: int = field(default=64, metadata=_flag("rows used to measure log-probs before/after (0 = off)"))
    keep_checkpoints: bool = field(default=False, metadata=_flag("keep output-dir/checkpoints after the final save"))
    lora_r: int = field(default=0, metadata=_flag("LoRA rank; 0 = full fine-tuning (paper ablation: 32)"))
    lora_alpha: int = field(default=16, metadata=_flag("LoRA alpha"))
    lora_dropout: float = field(default=0.05, metadata=_flag("LoRA dropout"))
    lora_targets: list[str] = field(default_factory=lambda: list(PAPER_LORA_TARGETS),
                                    metadata=_flag("module names LoRA adapts"))
    merge_lora: bool = field(default=True, metadata=_flag("merge the adapter into a full model (--no-merge-lora: "
                                                          "save only the adapter)"))

    def __post_init__(self) -> None:
        if self.learning_rate <= 0:
            raise CosaError(f"--learning-rate {self.learning_rate} must be > 0 (the paper uses 5e-7)")
        if self.max_steps == 0 or (self.max_steps < 0 and self.num_train_epochs <= 0):
            raise CosaError(f"--max-steps {self.max_steps} / --epochs {self.num_train_epochs}: train for at least "
                            "one step")
        if min(self.per_device_train_batch_size, self.gradient_accumulation_steps) < 1:
            raise CosaError(f"--batch-size {self.per_device_train_batch_size} and --grad-accum "
                            f"{self.gradient_accumulation_steps} must be >= 1")
        if not 0 < self.max_prompt_length < self.max_length:
            raise CosaError(f"--max-prompt-length {self.max_prompt_length} must be in (0, --max-length "
                            f"{self.max_length}) so that the response keeps some tokens")
        if self.warmup_steps < 0 or self.max_grad_norm <= 0 or self.logging_steps < 1 or self.save_steps < 1:
            raise CosaError(f"--warmup-steps {self.warmup_steps} >= 0, --max-grad-norm {self.max_grad_norm} > 0, "
                            f"--logging-steps {self.logging_steps} and --save-steps {self.save_steps} >= 1 needed")
        if self.lora_r < 0 or self.lora_alpha <= 0 or not 0 <= self.lora_dropout < 1:
            raise CosaError(f"--lora-r {self.lora_r} must be >= 0 (0 = off), --lora-alpha {self.lora_alpha} > 0 and "
                            f"--lora-dropout {self.lora_dropout} in [0, 1)")
        if self.lora_r and not self.lora_targets:
            raise CosaError("--lora-targets is empty; e.g. --lora-targets " + " ".join(PAPER_LORA_TARGETS))

    @property
    def lora_enabled(self) -> bool:
        return self.lora_r > 0

    def peft_config(self) -> Any:
        """PEFT's LoraConfig, or None for full fine-tuning."""
        if not self.lora_enabled:
            return None
        from peft import LoraConfig
        return LoraConfig(r=self.lora_r, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
                          target_modules=list(self.lora_targets), task_type="CAUSAL_LM")

    def trainer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments common to TRL's SFTConfig and DPOConfig."""
        import torch
        from transformers import TrainingArguments
        bf16 = self.bf16 if self.bf16 is not None else bool(torch.cuda.is_available()
                                                             and torch.cuda.is_bf16_supported())
        names = {f.name for f in fields(TrainingArguments)}     # renamed in transformers 5.2x
        checkpointing = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
        return dict(
            output_dir=f"{self.output_dir}/checkpoints", learning_rate=self.learning_rate,
            num_train_epochs=self.num_train_epochs, max_steps=self.max_steps,
            per_device_train_batch_size=self.per_device_train_batch_size,
            gradient_accumulation_steps=self.gradient_accumulation_steps, max_length=self.max_length,
            warmup_steps=self.warmup_steps, optim=self.optim, max_grad_norm=self.max_grad_norm, seed=self.seed,
            bf16=bf16, logging_steps=self.logging_steps, **{checkpointing: self.gradient_checkpointing},
            save_strategy="steps", save_steps=self.save_steps, save_total_limit=2, report_to="none",
            use_cpu=not torch.cuda.is_available(),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SFTSettings(TrainSettings):
    """``train sft``; the paper does not state its SFT learning rate, 1e-5 is a common full-FT value."""

    learning_rate: float = field(default=1e-5, metadata=_flag("peak learning rate"))


@dataclass
class DPOSettings(TrainSettings):
    """``train dpo``: the paper's setting, sigmoid loss with beta 0.1."""

    beta: float = field(default=0.1, metadata=_flag("DPO beta (the paper's: 0.1)"))
    precompute_ref_log_probs: bool = field(default=True, metadata=_flag(
        "score the pairs under the frozen reference in one pass before training, so no second copy of the "
        "model stays in memory while training (the same figures; LoRA needs no copy either way)"))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta <= 0:
            raise CosaError(f"--beta {self.beta} must be > 0 (the paper uses 0.1)")


Settings = TypeVar("Settings", bound=TrainSettings)


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The flag that is not a setting: the pairs file."""
    parser.add_argument("--input", required=True,
                        help="pair rows (output of 'train pair' or 'train load-released'), jsonl")


def settings_from_args(cls: type[Settings], args: argparse.Namespace) -> Settings:
    """The settings dataclass from a namespace parsed with ``HfArgumentParser(cls)``'s flags."""
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if f.init})
