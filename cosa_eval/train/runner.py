"""What ``sft`` and ``dpo`` share: pair loading, model loading, resuming, the final HF folder."""
from __future__ import annotations

import shutil
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import CosaError
from .files import read_jsonl, read_manifest, write_manifest
from .settings import TrainSettings

PAIR_FIELDS = ("id", "prompt", "chosen", "rejected")


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value)


def load_pairs(path: str) -> list[dict[str, Any]]:
    """Pair rows with chat-message ``prompt``, ``chosen`` and ``rejected``, validated."""
    rows = read_jsonl(path, required=PAIR_FIELDS)
    if not rows:
        raise CosaError(f"{path} has no pairs; check the counts in {path}.manifest.json of 'train pair'")
    for row in rows:
        for name in ("prompt", "chosen", "rejected"):
            if not _is_messages(row[name]):
                raise CosaError(f"{path}: row {row['_row']}: field {name!r} must be a list of "
                                "{role, content} messages; rebuild it with 'train pair' or 'train load-released'")
    return rows


def load_tokenizer(settings: TrainSettings) -> Any:
    from transformers import AutoTokenizer
    try:
        tokenizer = AutoTokenizer.from_pretrained(settings.model)
    except OSError as exc:
        raise CosaError(f"cannot load a tokenizer from {settings.model!r} ({str(exc).splitlines()[0]})") from None
    if tokenizer.chat_template is None:
        raise CosaError(f"{settings.model} has no chat template; CoSAlign puts the config in the system message, "
                        "so start from an instruction-tuned model")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(settings: TrainSettings) -> Any:
    import torch
    from transformers import AutoModelForCausalLM
    try:
        return AutoModelForCausalLM.from_pretrained(settings.model, dtype=getattr(torch, settings.model_dtype))
    except OSError as exc:
        raise CosaError(f"cannot load a model from {settings.model!r} ({str(exc).splitlines()[0]})") from None


def drop_long_prompts(rows: list[dict[str, Any]], tokenizer: Any, limit: int, counts: Counter) -> list[dict[str, Any]]:
    """Rows whose templated prompt fits ``limit`` tokens (the paper's max_prompt_length)."""
    kept = []
    for row in rows:
        text = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        if len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= limit:
            kept.append(row)
        else:
            counts["prompt_too_long_dropped"] += 1
    if not kept:
        raise CosaError(f"every prompt is longer than --max-prompt-length {limit} tokens; raise it")
    return kept


def already_trained(settings: TrainSettings, step: str) -> bool:
    manifest = read_manifest(settings.output_dir, folder=True)
    if manifest and manifest.get("step") == step and manifest.get("counts", {}).get("complete"):
        print(f"{step}: {settings.output_dir} is already trained (cosa_manifest.json); delete it to train again")
        return True
    return False


def train_resuming(trainer: Any, settings: TrainSettings) -> Any:
    """``trainer.train()``, continuing from the newest checkpoint of an interrupted run."""
    checkpoints = Path(settings.output_dir) / "checkpoints"
    resume = any(checkpoints.glob("checkpoint-*")) if checkpoints.is_dir() else False
    if resume:
        print(f"resuming from the newest checkpoint under {checkpoints}")
    return trainer.train(resume_from_checkpoint=True if resume else None)


def save_final(trainer: Any, tokenizer: Any, settings: TrainSettings) -> None:
    """A normal HF folder (weights, config, tokenizer, chat template); LoRA merged unless asked not to.

    ``trainer.save_model`` gathers sharded weights under FSDP or ZeRO-3; merging then happens on the
    main process only, from the base model and the saved adapter.
    """
    out = Path(settings.output_dir)
    if settings.lora_enabled:
        trainer.save_model(str(out / "adapter"))
    else:
        trainer.save_model(str(out))
    trainer.accelerator.wait_for_everyone()
    if not trainer.accelerator.is_main_process:
        return
    if settings.lora_enabled and settings.merge_lora:
        merge_adapter(settings, out / "adapter", out)
    tokenizer.save_pretrained(out)
    if not settings.keep_checkpoints:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)


def merge_adapter(settings: TrainSettings, adapter: Path, out: Path) -> None:
    """Base model + LoRA adapter -> one merged model folder (what lm_eval's ``pretrained=`` loads)."""
    from peft import PeftModel
    base = load_model(settings)
    PeftModel.from_pretrained(base, str(adapter)).merge_and_unload().save_pretrained(out)


def loss_figures(trainer: Any) -> dict[str, float]:
    """First and last logged training loss."""
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {"first_logged_loss": losses[0], "last_logged_loss": losses[-1]} if losses else {}


def finish(settings: TrainSettings, step: str, input_path: str, counts: Counter, figures: dict[str, Any]) -> None:
    """Write ``cosa_manifest.json``; its ``complete`` flag makes a re-run a no-op."""
    write_manifest(settings.output_dir, step, [input_path], settings.to_dict(),
                   {**counts, **figures, "complete": True}, folder=True)


@dataclass(frozen=True)
class Step:
    """What differs between ``sft`` and ``dpo``; :func:`run_step` does the rest."""

    name: str                                                    # "sft" | "dpo"
    noun: str                                                    # what one training row is called
    rows: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]  # pairs -> TRL dataset rows
    config: Callable[[TrainSettings], Any]                       # the TRL config (sets up the device)
    trainer: Callable[..., Any]                                  # (settings, config, rows, model, tokenizer)
    measure: Callable[[Any, Any, list[dict[str, Any]], int], Any]  # (model, tokenizer, rows, max_length)
    figures: Callable[[Any, Any, TrainSettings], dict[str, Any]]  # (before, after, settings)


def run_step(step: Step, settings: TrainSettings, input_path: str) -> dict[str, Any]:
    """Train and save; returns the figures written to the manifest."""
    if already_trained(settings, step.name):
        return {}
    counts: Counter = Counter()
    # TRL 1.16 reads transformers' deprecated `is_gradient_checkpointing` at every step: nothing for us to change.
    warnings.filterwarnings("ignore", message=".is_gradient_checkpointing. is deprecated", category=FutureWarning)
    pairs = load_pairs(input_path)
    tokenizer = load_tokenizer(settings)
    rows = drop_long_prompts(step.rows(pairs), tokenizer, settings.max_prompt_length, counts)
    counts.update({"pairs": len(pairs), f"{step.name}_rows": len(rows)})
    config = step.config(settings)  # sets up the distributed state and the device
    model = load_model(settings)
    # Measured in single-process runs only: under FSDP / ZeRO-3 the weights are sharded or not yet loaded.
    probe = rows[:settings.measure_pairs] if config.world_size == 1 else []
    before = step.measure(model.to(config.device), tokenizer, probe, settings.max_length) if probe else None
    trainer = step.trainer(settings, config, rows, model, tokenizer)
    train_resuming(trainer, settings)
    figures: dict[str, Any] = {**loss_figures(trainer), "global_steps": trainer.state.global_step}
    if probe:
        after = step.measure(trainer.model, tokenizer, probe, settings.max_length)
        figures.update(step.figures(before, after, settings))
    save_final(trainer, tokenizer, settings)
    if trainer.accelerator.is_main_process:
        finish(settings, step.name, input_path, counts, figures)
        shown = ", ".join(f"{k} {v:.4g}" for k, v in figures.items() if isinstance(v, float))
        print(f"{step.name}: {len(rows)} {step.noun}, {trainer.state.global_step} steps, "
              f"model in {settings.output_dir} ({shown})")
    return figures
