"""Training settings for ``train sft`` and ``train dpo``, validated before any model is loaded.

Defaults are the paper's DPO setting (dpo/config in the reference repo): lr 5e-7, RMSprop,
150 warmup steps, max grad norm 10, max length 640 with prompts up to 512 tokens, seed 0, and an
effective batch of 32 on 8 GPUs (1 per device x 4 accumulation steps x 8 processes).
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import CosaError

PAPER_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
OPTIMIZERS = ("rmsprop", "adamw_torch", "adamw_torch_fused", "sgd")
DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class LoraSettings:
    """PEFT LoRA; ``r == 0`` trains every parameter (the paper's main setting)."""

    r: int = 0
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = PAPER_LORA_TARGETS
    merge: bool = True

    def __post_init__(self) -> None:
        if self.r < 0 or self.alpha <= 0:
            raise CosaError(f"--lora-r {self.r} must be >= 0 (0 = off) and --lora-alpha {self.alpha} > 0")
        if not 0 <= self.dropout < 1:
            raise CosaError(f"--lora-dropout {self.dropout} must be in [0, 1)")
        if self.r and not self.target_modules:
            raise CosaError("--lora-targets is empty; e.g. q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")

    @property
    def enabled(self) -> bool:
        return self.r > 0

    def to_peft(self) -> Any:
        from peft import LoraConfig
        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=list(self.target_modules), task_type="CAUSAL_LM")


@dataclass
class TrainSettings:
    """What both trainers share; ``beta`` is used by DPO only."""

    model: str
    output_dir: str
    learning_rate: float = 5e-7
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 1
    gradient_accumulation_steps: int = 4
    max_length: int = 640
    max_prompt_length: int = 512
    warmup_steps: int = 150
    optim: str = "rmsprop"
    max_grad_norm: float = 10.0
    seed: int = 0
    bf16: bool | None = None
    model_dtype: str = "float32"
    gradient_checkpointing: bool = True
    logging_steps: int = 10
    save_steps: int = 500
    beta: float = 0.1
    measure_pairs: int = 64
    keep_checkpoints: bool = False
    lora: LoraSettings = field(default_factory=LoraSettings)

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
        if self.beta <= 0:
            raise CosaError(f"--beta {self.beta} must be > 0 (the paper uses 0.1)")
        if self.model_dtype not in DTYPES:
            raise CosaError(f"--model-dtype {self.model_dtype!r}: expected one of {', '.join(DTYPES)}")
        if self.optim not in OPTIMIZERS:
            raise CosaError(f"--optim {self.optim!r}: expected one of {', '.join(OPTIMIZERS)}")
        if self.warmup_steps < 0 or self.max_grad_norm <= 0 or self.logging_steps < 1 or self.save_steps < 1:
            raise CosaError(f"--warmup-steps {self.warmup_steps} >= 0, --max-grad-norm {self.max_grad_norm} > 0, "
                            f"--logging-steps {self.logging_steps} and --save-steps {self.save_steps} >= 1 needed")

    def trainer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments common to TRL's SFTConfig and DPOConfig."""
        import torch
        bf16 = self.bf16 if self.bf16 is not None else bool(torch.cuda.is_available()
                                                             and torch.cuda.is_bf16_supported())
        return dict(
            output_dir=f"{self.output_dir}/checkpoints", learning_rate=self.learning_rate,
            num_train_epochs=self.num_train_epochs, max_steps=self.max_steps,
            per_device_train_batch_size=self.per_device_train_batch_size,
            gradient_accumulation_steps=self.gradient_accumulation_steps, max_length=self.max_length,
            warmup_steps=self.warmup_steps, optim=self.optim, max_grad_norm=self.max_grad_norm, seed=self.seed,
            bf16=bf16, gradient_checkpointing=self.gradient_checkpointing, logging_steps=self.logging_steps,
            save_strategy="steps", save_steps=self.save_steps, save_total_limit=2, report_to="none",
            use_cpu=not torch.cuda.is_available(),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def add_training_arguments(parser: argparse.ArgumentParser, learning_rate: float) -> None:
    """Flags shared by ``train sft`` and ``train dpo``."""
    add = parser.add_argument
    add("--input", required=True, help="pair rows (output of 'train pair' or 'train load-released'), jsonl")
    add("--model", required=True, help="starting model: folder or hub id")
    add("--output-dir", required=True, help="where the trained HF model folder goes")
    add("--learning-rate", type=float, default=learning_rate, help="default: %(default)s")
    add("--epochs", type=float, default=1.0, dest="num_train_epochs")
    add("--max-steps", type=int, default=-1, help="stop after N optimizer steps (overrides --epochs)")
    add("--batch-size", type=int, default=1, dest="per_device_train_batch_size", help="per device")
    add("--grad-accum", type=int, default=4, dest="gradient_accumulation_steps")
    add("--max-length", type=int, default=640)
    add("--max-prompt-length", type=int, default=512, help="longer prompts are dropped (counted)")
    add("--warmup-steps", type=int, default=150)
    add("--optim", choices=OPTIMIZERS, default="rmsprop")
    add("--max-grad-norm", type=float, default=10.0)
    add("--seed", type=int, default=0)
    add("--bf16", action=argparse.BooleanOptionalAction, default=None, help="default: on when a GPU supports it")
    add("--model-dtype", choices=DTYPES, default="float32",
        help="weights' dtype; float32 keeps full-precision master weights under --bf16 autocast (needed at "
             "lr 5e-7); bfloat16 saves memory, e.g. for a LoRA base")
    add("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=True)
    add("--logging-steps", type=int, default=10)
    add("--save-steps", type=int, default=500, help="checkpoint interval (for resuming)")
    add("--keep-checkpoints", action="store_true", help="keep output-dir/checkpoints after the final save")
    add("--measure-pairs", type=int, default=64, help="pairs used to measure log-probs before/after (0 = off)")
    add("--lora-r", type=int, default=0, help="LoRA rank; 0 = full fine-tuning (paper ablation: 32)")
    add("--lora-alpha", type=int, default=16)
    add("--lora-dropout", type=float, default=0.05)
    add("--lora-targets", default=",".join(PAPER_LORA_TARGETS), help="comma-separated module names")
    add("--no-merge-lora", action="store_true", help="save only the adapter, not a merged model")


def settings_from_args(args: argparse.Namespace) -> TrainSettings:
    lora = LoraSettings(r=args.lora_r, alpha=args.lora_alpha, dropout=args.lora_dropout,
                        target_modules=tuple(t for t in args.lora_targets.split(",") if t),
                        merge=not args.no_merge_lora)
    names = ("learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
             "gradient_accumulation_steps", "max_length", "max_prompt_length", "warmup_steps", "optim",
             "max_grad_norm", "seed", "bf16", "model_dtype", "gradient_checkpointing", "logging_steps", "save_steps",
             "measure_pairs", "keep_checkpoints")
    extra = {"beta": args.beta} if hasattr(args, "beta") else {}
    return TrainSettings(model=args.model, output_dir=args.output_dir, lora=lora,
                         **{n: getattr(args, n) for n in names}, **extra)
