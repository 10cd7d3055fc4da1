"""cosa-eval: controllable safety alignment, measured inside lm-evaluation-harness."""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

__version__ = "0.1.0"
CACHE_ENV = "COSA_CACHE_DIR"


def tasks_dir() -> Path:
    """Folder of the lm_eval task YAMLs (``tasks/`` in a checkout, packaged in a wheel)."""
    from . import _tasks
    return Path(_tasks.__path__[0])


def judges_dir() -> Path:
    """Folder of the shipped judge definitions (``judges/``)."""
    from . import _judges
    return Path(_judges.__path__[0])


def cache_dir() -> Path:
    """Where cosa-eval keeps its judge cache and converted models: ``$COSA_CACHE_DIR``, else
    ``~/.cache/cosa-eval``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "cosa-eval"


# Notebook API, imported on first use (``cosa_eval.frames`` imports pandas only when called).
_LAZY = {"read_judged": "cosa_eval.frames", "read_leaderboard": "cosa_eval.frames"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cosa_eval' has no attribute {name!r}")
