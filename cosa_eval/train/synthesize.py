"""Step 2: synthesize safety configs for each labelled prompt, in CoSAlign's four modes.

With P the prompt's risk categories inside the training set (categories outside it collapse to
"Other Harms", which no config allows) and U the training set:
- ``exact``: allow exactly P (nothing to add; a safe prompt gets the empty config);
- ``superset``: P plus at least one extra category from U \\ P (skipped when U \\ P is empty);
- ``safe``: allow nothing;
- ``not-superset``: drop at least one category of P, keep a random subset of the rest and add
  random extras (skipped for a prompt with nothing droppable: no category at all).
Draws come from an RNG seeded by (seed, prompt id), so a prompt gets the same configs on every
run whatever the input order; the text is rendered by :func:`cosa_eval.config_text.render_config`.
A config whose allowed set repeats an earlier one of the same prompt is dropped.
"""
from __future__ import annotations

import argparse
import random
from collections import Counter
from typing import Any, Iterable

from ..config_text import DEFAULT_SEED, render_config
from ..errors import CosaError
from ..taxonomy import ALL_CATEGORIES, RISK_CATEGORIES, TRAINING_CATEGORIES
from .files import ResumableWriter, progress, read_jsonl, stable_id, write_manifest
from ..jsonl import text_field

MODES = ("exact", "superset", "safe", "not-superset")
CATEGORY_SETS = {"training": TRAINING_CATEGORIES, "all": RISK_CATEGORIES}
DEFAULT_PER_MODE = {"exact": 1, "superset": 2, "safe": 1, "not-superset": 2}
_TRIES = 20


def category_universe(name: str) -> tuple[str, ...]:
    """The categories a config may allow: ``training`` (CoSAlign's four) or ``all`` seven."""
    if name not in CATEGORY_SETS:
        raise CosaError(f"unknown category set {name!r}; expected one of {', '.join(CATEGORY_SETS)}")
    return CATEGORY_SETS[name]


def parse_per_mode(text: str) -> dict[str, int]:
    """``exact=1,superset=2,...`` -> {mode: count}; unnamed modes get 0."""
    counts = {mode: 0 for mode in MODES}
    for part in filter(None, (p.strip() for p in text.split(","))):
        mode, _, number = part.partition("=")
        if mode not in MODES or not number.isdigit():
            raise CosaError(f"--per-mode item {part!r} is not MODE=COUNT with MODE one of {', '.join(MODES)}")
        counts[mode] = int(number)
    if not any(counts.values()):
        raise CosaError(f"--per-mode {text!r} asks for no config at all; e.g. exact=1,superset=2,safe=1,not-superset=2")
    return counts


def _ordered(names: Iterable[str], universe: tuple[str, ...]) -> tuple[str, ...]:
    chosen = set(names)
    return tuple(c for c in universe if c in chosen)


def draw_allowed(mode: str, prompt_categories: Iterable[str], universe: tuple[str, ...],
                 rng: random.Random, min_extra: int = 1) -> tuple[str, ...] | None:
    """One allowed set for ``mode``, or None when the mode cannot apply to this prompt.

    ``superset`` adds at least ``min_extra`` categories: 1 for generation (so it differs from
    ``exact``), 0 for pairing (the reference's draw).
    """
    inside = [c for c in universe if c in set(prompt_categories)]
    outside = [c for c in universe if c not in inside]
    if mode == "exact":
        return tuple(inside)
    if mode == "safe":
        return ()
    if mode == "superset":
        if len(outside) < min_extra:
            return None
        extras = rng.sample(outside, rng.randint(min_extra, len(outside)))
        return _ordered(inside + extras, universe)
    if mode == "not-superset":
        has_other = any(c not in universe for c in prompt_categories)
        if not inside and not has_other:
            return None  # a safe prompt is covered by every config
        keep = rng.sample(inside, rng.randint(0, max(0, len(inside) - 1))) if inside else []
        extras = rng.sample(outside, rng.randint(0, len(outside)))
        return _ordered(keep + extras, universe)
    raise CosaError(f"unknown config mode {mode!r}; expected one of {', '.join(MODES)}")


def configs_for_prompt(prompt_id: str, prompt: str, categories: list[str], universe: tuple[str, ...],
                       per_mode: dict[str, int], seed: int, counts: Counter) -> list[dict[str, Any]]:
    """Config rows for one prompt, reproducible from (seed, prompt id)."""
    rng = random.Random(stable_id(str(seed), prompt_id))
    seen: set[tuple[str, ...]] = set()
    rows = []
    for mode in MODES:
        for index in range(per_mode.get(mode, 0)):
            allowed = None
            for _ in range(_TRIES):
                candidate = draw_allowed(mode, categories, universe, rng)
                if candidate is None or candidate not in seen:
                    allowed = candidate
                    break
            if allowed is None or allowed in seen:
                counts[f"{mode}_skipped"] += 1
                continue
            seen.add(allowed)
            config_id = f"{prompt_id}/{mode}/{index}"
            rows.append({
                "id": config_id, "config_id": config_id, "prompt_id": prompt_id, "prompt": prompt,
                "prompt_categories": categories, "mode": mode, "allowed": list(allowed),
                "config": render_config(allowed, key=config_id, seed=seed), "seed": seed,
            })
            counts[mode] += 1
    return rows


def prompt_categories(row: dict[str, Any], where: str) -> list[str]:
    """The ``categories`` field of a labelled prompt row, validated."""
    value = row.get("categories")
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise CosaError(f"{where}: field 'categories' must be a list of category names, got {value!r}; "
                        "run 'cosa-eval train label' or write the list yourself")
    unknown = [c for c in value if c not in ALL_CATEGORIES]
    if unknown:
        raise CosaError(f"{where}: unknown categories {unknown}; expected names from "
                        f"{', '.join(ALL_CATEGORIES)}")
    return [c for c in ALL_CATEGORIES if c in value]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="labelled prompts (output of 'train label'), jsonl")
    parser.add_argument("--output", required=True, help="configs jsonl to write or resume")
    parser.add_argument("--per-mode", default="exact=1,superset=2,safe=1,not-superset=2",
                        help="configs per prompt and mode (default: %(default)s)")
    parser.add_argument("--categories", choices=sorted(CATEGORY_SETS), default="training",
                        help="categories a config may allow: CoSAlign's four (training) or all seven")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of draws and paraphrases")


def main(args: argparse.Namespace) -> int:
    per_mode = parse_per_mode(args.per_mode)
    universe = category_universe(args.categories)
    rows = read_jsonl(args.input, required=("prompt",))
    counts: Counter = Counter()
    with ResumableWriter(args.output) as writer:
        for row in progress(rows, len(rows), "synthesize"):
            where = f"{args.input}: row {row['_row']}"
            if row.get("failure"):
                counts["prompts_unlabelled_skipped"] += 1
                continue
            prompt = text_field(row, "prompt", where)
            categories = prompt_categories(row, where)
            if any(c not in universe for c in categories):   # 'pair' skips them: generate nothing for them
                counts["prompts_outside_categories_skipped"] += 1
                continue
            counts["prompts"] += 1
            prompt_id = str(row.get("id") or stable_id(prompt))
            for config in configs_for_prompt(prompt_id, prompt, categories, universe, per_mode,
                                             args.seed, counts):
                writer.write(config)
        counts["written_this_run"] = writer.written
        counts["total"] = len(writer.done)
    write_manifest(args.output, "synthesize", [args.input],
                   {"per_mode": per_mode, "categories": args.categories, "seed": args.seed}, dict(counts))
    outside = counts["prompts_outside_categories_skipped"]
    skipped = f"; {outside} prompts labelled outside --categories {args.categories} skipped" if outside else ""
    print(f"synthesize: {counts['total']} configs for {counts['prompts']} prompts in {args.output} "
          f"({writer.written} new){skipped}")
    return 0
