"""In-context demonstrations for the ``5shot`` variants, as the paper uses them.

CoSApien: the same 5 demonstrations for every prompt of a config, in the order written.
CoSAlign-Test: 5 drawn per document from the pool whose allowed-category set equals the
document's config, by a hash of (seed, config, prompt), so each document has its own draw and
gets it again on every run. The demonstrations live in ``tasks/cosa/demos.yaml``.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from .config_text import DEFAULT_SEED, seeded_rng
from .errors import CosaError
from .taxonomy import split_of_categories

SHOTS = {"0shot": 0, "5shot": 5}   # variant name -> demonstrations per prompt


def demos_file() -> Path:
    from . import tasks_dir
    return tasks_dir() / "cosa" / "demos.yaml"


@functools.lru_cache(maxsize=1)
def _pools() -> dict[str, list[dict[str, str]]]:
    import yaml
    path = demos_file()
    pools = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for config, demos in pools.items():
        for number, demo in enumerate(demos if isinstance(demos, list) else [None], 1):
            if not (isinstance(demo, dict) and all(isinstance(demo.get(k), str) and demo[k].strip()
                                                   for k in ("user", "assistant"))):
                raise CosaError(f"{path}: {config}: demo {number} must be a mapping with non-empty "
                                "'user' and 'assistant' strings")
    return pools


def pool_key(schema: str, config_id: str, allowed: list[str] | tuple[str, ...] = ()) -> str:
    """Which pool serves a config: its id for CoSApien, its allowed-category set for CoSAlign-Test."""
    return split_of_categories(allowed) if schema == "cosalign_test" else config_id


def demos_for(schema: str, config_id: str, prompt: str, variant: str,
              allowed: list[str] | tuple[str, ...] = (), seed: int | None = None) -> list[dict[str, str]]:
    """The ``{user, assistant}`` turns placed before ``prompt`` under ``variant``."""
    if variant not in SHOTS:
        raise CosaError(f"unknown variant {variant!r}; expected one of {', '.join(SHOTS)}")
    shots = SHOTS[variant]
    if not shots:
        return []
    key = pool_key(schema, config_id, allowed)
    pool = _pools().get(key) or []
    if len(pool) < shots:
        raise CosaError(f"{demos_file()}: config {key!r} has {len(pool)} demonstrations, {variant} needs "
                        f"at least {shots}; add '{key}:' with {{user, assistant}} pairs, or use variant 0shot")
    if schema == "cosapien":
        return [dict(d) for d in pool[:shots]]
    rng = seeded_rng(DEFAULT_SEED if seed is None else seed, f"demos\x1f{key}\x1f{prompt}")
    return [dict(d) for d in rng.sample(pool, shots)]


def as_turns(demos: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Chat turns of a doc's demonstrations."""
    turns: list[dict[str, str]] = []
    for demo in demos:
        turns += [{"role": "user", "content": demo["user"]}, {"role": "assistant", "content": demo["assistant"]}]
    return turns
