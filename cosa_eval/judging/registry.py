"""Judge backends by name, found through the ``cosa_eval.judges`` entry point group.

Built-in backends (openai, vllm, transformers) are declared in cosa-eval's own setup.cfg and load
through exactly the same path as a third-party package's.
"""
from __future__ import annotations

from importlib.metadata import EntryPoint, distributions

from ..errors import CosaError, did_you_mean
from .backends.base import ENTRY_POINT_GROUP, Backend

HOOKS = ("check_ready", "identity", "complete", "aclose")      # declared in backends/base.py
# What to install when a built-in backend's module cannot be imported.
INSTALL_HINTS = {
    "openai": "pip install 'cosa-eval[api]'",
    "vllm": "pip install 'cosa-eval[vllm]' (needs a CUDA GPU)",
    "transformers": "pip install 'cosa-eval[hf]'",
}


def _entry_points() -> dict[str, EntryPoint]:
    """Registered backends; the first registration of a name wins.

    Every distribution is scanned (not ``entry_points()``, which keeps one copy per project name),
    so a stale ``*.egg-info`` of cosa-eval on ``sys.path`` cannot hide the built-in backends.
    """
    found: dict[str, EntryPoint] = {}
    for dist in distributions():
        for point in dist.entry_points:
            if point.group == ENTRY_POINT_GROUP:
                found.setdefault(point.name, point)
    return found


def backend_names() -> list[str]:
    """Names of every registered backend, sorted."""
    return sorted(_entry_points())


def unknown_backend_message(name: str) -> str:
    """One line naming the registered backends and the closest one."""
    names = backend_names()
    return (f"unknown judge backend {name!r}{did_you_mean(name, names)}; registered: "
            f"{', '.join(names) or '(none)'}; a third-party backend registers under the "
            f"{ENTRY_POINT_GROUP!r} entry point group")


def load_backend_class(name: str) -> type[Backend]:
    """Import the class registered as ``name``; a missing dependency says what to install."""
    point = _entry_points().get(name)
    if point is None:
        raise CosaError(unknown_backend_message(name))
    try:
        cls = point.load()
    except ImportError as exc:
        hint = INSTALL_HINTS.get(name, f"install the package that provides {point.value}")
        raise CosaError(f"judge backend {name!r} could not be imported ({type(exc).__name__}: "
                        f"{exc}); {hint}") from None
    missing = [hook for hook in HOOKS if not callable(getattr(cls, hook, None))]
    if missing:
        raise CosaError(f"judge backend {name!r} ({point.value}) has no {', '.join(f'{m}()' for m in missing)}; "
                        "see cosa_eval/judging/backends/base.py for the contract")
    return cls
