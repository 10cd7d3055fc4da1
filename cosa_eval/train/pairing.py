"""Step 5: draw pairing configs, error-score judged responses under them and pair them (Algorithm 1).

For each prompt (as the reference's ``build_spec_paired_data_simple.py --modes mixed``):
- prompts labelled with a category outside the training set are skipped (counted);
- one config is drawn per mode: ``exact``, ``superset`` (0 or more extra categories), ``safe`` and
  ``not-superset`` (none for a safe prompt), seeded by (seed, prompt id);
- all judged responses to the prompt, whatever config they were generated under, are grouped by
  (exact category set, addressed).
Error score of a response group under a config that allows the set A:
    +1        if the response does not address the prompt fully (a refusal counts as not addressed)
    +alpha    (0.1) per risk category present in the response that A allows
    +beta     (3)   per risk category present that A does not allow
"Other Harms" is never allowed; when training on a subset of the taxonomy (CoSAlign's released
data uses the four TRAINING_CATEGORIES), every category outside it collapses to "Other Harms"
first. Under each config, every pair of groups with different scores gives a pair (lower score
chosen), with a response drawn at random from each group for that pair. Ties are skipped; a pair
whose chosen response has a disallowed category (score >= beta) is dropped.
"""
from __future__ import annotations

import argparse
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Iterable, Iterator

from ..config_text import render_config
from ..errors import CosaError
from ..taxonomy import OTHER_HARMS, RISK_CATEGORIES, TRAINING_CATEGORIES
from .files import ResumableWriter, read_jsonl, stable_id, write_manifest
from .synthesize import CATEGORY_SETS, MODES, category_universe, draw_allowed

ALPHA = 0.1
BETA = 3.0


def collapse(categories: Iterable[str], universe: Iterable[str]) -> frozenset[str]:
    """Categories outside ``universe`` (and unknown names) become "Other Harms"."""
    inside = set(universe)
    return frozenset(c if c in inside else OTHER_HARMS for c in categories)


def error_score(is_addressed: bool, categories: Iterable[str], allowed: Iterable[str],
                universe: Iterable[str] = TRAINING_CATEGORIES, alpha: float = ALPHA, beta: float = BETA) -> float:
    """The CoSAlign error score of one response under a config allowing ``allowed``."""
    present = collapse(categories, universe)
    permitted = set(allowed) & set(universe)
    n_allowed = sum(1 for c in present if c in permitted)
    n_disallowed = len(present) - n_allowed
    return round((0.0 if is_addressed else 1.0) + alpha * n_allowed + beta * n_disallowed, 9)


def has_disallowed(categories: Iterable[str], allowed: Iterable[str], universe: Iterable[str]) -> bool:
    permitted = set(allowed) & set(universe)
    return any(c not in permitted for c in collapse(categories, universe))


@dataclass(frozen=True)
class Judged:
    """One judged response, reduced to what pairing needs."""

    id: str
    response: str
    is_addressed: bool
    categories: frozenset[str]


@dataclass(frozen=True)
class Config:
    """One pairing config of a prompt."""

    id: str
    prompt_id: str
    prompt: str
    text: str
    allowed: tuple[str, ...]
    mode: str


Group = tuple[frozenset[str], bool]   # (exact category set, addressed)


def groups_of(responses: list[Judged]) -> dict[Group, list[Judged]]:
    """Responses by (exact category set, addressed), in a fixed order."""
    groups: dict[Group, list[Judged]] = defaultdict(list)
    for item in sorted(responses, key=lambda r: r.id):
        groups[(item.categories, item.is_addressed)].append(item)
    return {key: groups[key] for key in sorted(groups, key=lambda k: (sorted(k[0]), k[1]))}


def pairing_configs(prompt_id: str, prompt: str, categories: Iterable[str], universe: tuple[str, ...],
                    seed: int, counts: Counter) -> list[Config]:
    """One config per mode, drawn for pairing (superset with 0 or more extras), seeded per prompt."""
    rng = random.Random(stable_id(str(seed), prompt_id, "pair"))
    configs = []
    for mode in MODES:
        allowed = draw_allowed(mode, categories, universe, rng, min_extra=0)
        if allowed is None:       # not-superset of a safe prompt
            counts[f"{mode}_skipped"] += 1
            continue
        config_id = f"{prompt_id}/pair/{mode}"
        configs.append(Config(id=config_id, prompt_id=prompt_id, prompt=prompt, allowed=allowed, mode=mode,
                              text=render_config(allowed, key=config_id, seed=seed)))
    return configs


def pairs_for_config(config: Config, groups: dict[Group, list[Judged]], universe: Iterable[str], counts: Counter,
                     rng: random.Random, alpha: float = ALPHA,
                     beta: float = BETA) -> Iterator[tuple[Judged, Judged, float, float]]:
    """(chosen, rejected, chosen score, rejected score) for every scorable pair of groups."""
    universe = tuple(universe)
    scored = [(error_score(key[1], key[0], config.allowed, universe, alpha, beta), key) for key in groups]
    for (score_a, a), (score_b, b) in combinations(scored, 2):
        if score_a == score_b:
            counts["ties_skipped"] += 1
            continue
        (cs, chosen), (rs, rejected) = sorted([(score_a, a), (score_b, b)], key=lambda t: t[0])
        if has_disallowed(chosen[0], config.allowed, universe):
            counts["chosen_disallowed_dropped"] += 1
            continue
        counts["pairs"] += 1
        yield rng.choice(groups[chosen]), rng.choice(groups[rejected]), cs, rs


def pair_row(config: Config, chosen: Judged, rejected: Judged, cs: float, rs: float) -> dict[str, Any]:
    """A TRL conversational preference row plus provenance."""
    return {
        "id": stable_id(config.id, chosen.id, rejected.id),
        "prompt": [{"role": "system", "content": config.text}, {"role": "user", "content": config.prompt}],
        "chosen": [{"role": "assistant", "content": chosen.response}],
        "rejected": [{"role": "assistant", "content": rejected.response}],
        "prompt_id": config.prompt_id, "config_id": config.id, "mode": config.mode,
        "allowed": list(config.allowed),
        "chosen_id": chosen.id, "rejected_id": rejected.id,
        "chosen_score": cs, "rejected_score": rs,
        "chosen_categories": sorted(chosen.categories), "rejected_categories": sorted(rejected.categories),
        "chosen_addressed": chosen.is_addressed, "rejected_addressed": rejected.is_addressed,
        "source": "cosalign-pipeline",
    }


def _judged_of(row: dict[str, Any]) -> Judged | None:
    if row.get("failure") or row.get("addressed") is None or row.get("categories") is None:
        return None
    present = frozenset(name for name, flag in row["categories"].items() if flag)
    return Judged(id=str(row["id"]), response=row["response"], is_addressed=bool(row["addressed"]),
                  categories=present)


def build_pairs(rows: list[dict[str, Any]], universe: Iterable[str] = TRAINING_CATEGORIES, seed: int = 0,
                alpha: float = ALPHA, beta: float = BETA) -> tuple[list[dict[str, Any]], Counter]:
    """Pair rows from judged response rows (the output of ``cosa-eval train judge``)."""
    universe = tuple(universe)
    counts: Counter = Counter()
    prompts: dict[str, tuple[str, tuple[str, ...]]] = {}
    responses: dict[str, list[Judged]] = defaultdict(list)
    for row in rows:
        prompt_id = str(row["prompt_id"])
        prompts.setdefault(prompt_id, (row["prompt"], tuple(row["prompt_categories"])))
        judged = _judged_of(row)
        counts["responses"] += 1
        if judged is None:
            counts["unjudged_skipped"] += 1
        else:
            responses[prompt_id].append(judged)
    out: list[dict[str, Any]] = []
    for prompt_id in sorted(prompts):
        prompt, categories = prompts[prompt_id]
        if any(c not in universe for c in categories):
            counts["prompts_outside_categories_skipped"] += 1
            continue
        counts["prompts"] += 1
        groups = groups_of(responses.get(prompt_id, []))
        counts["groups"] += len(groups)
        rng = random.Random(stable_id(str(seed), prompt_id))
        for config in pairing_configs(prompt_id, prompt, categories, universe, seed, counts):
            out.extend(pair_row(config, *pair)
                       for pair in pairs_for_config(config, groups, universe, counts, rng, alpha, beta))
    return out, counts


JUDGED_FIELDS = ("id", "prompt_id", "prompt", "prompt_categories", "response")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="judged responses (output of 'train judge'), jsonl")
    parser.add_argument("--output", required=True, help="preference pairs jsonl to write or resume")
    parser.add_argument("--categories", choices=sorted(CATEGORY_SETS), default="training",
                        help="training categories; others collapse to Other Harms (default: %(default)s)")
    parser.add_argument("--alpha", type=float, default=ALPHA, help="cost per allowed category present")
    parser.add_argument("--beta", type=float, default=BETA, help="cost per disallowed category present")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pairing configs and response draws")


def main(args: argparse.Namespace) -> int:
    if not 0 <= args.alpha * len(RISK_CATEGORIES) + 1 < args.beta:
        raise CosaError(f"--alpha {args.alpha} and --beta {args.beta}: need 1 + 7*alpha < beta so that a "
                        "disallowed category always costs more than any allowed mix")
    rows = read_jsonl(args.input, required=JUDGED_FIELDS)
    pairs, counts = build_pairs(rows, category_universe(args.categories), args.seed, args.alpha, args.beta)
    with ResumableWriter(args.output) as writer:
        for row in pairs:
            writer.write(row)
        counts["written_this_run"] = writer.written
        counts["total"] = len(writer.done)
    settings = {"categories": args.categories, "alpha": args.alpha, "beta": args.beta, "seed": args.seed}
    write_manifest(args.output, "pair", [args.input], settings, dict(counts))
    print(f"pair: {counts['pairs']} pairs from {counts['responses']} responses of {counts['prompts']} prompts in "
          f"{args.output} (ties skipped {counts['ties_skipped']}, chosen-with-disallowed dropped "
          f"{counts['chosen_disallowed_dropped']}, unjudged {counts['unjudged_skipped']}, prompts outside the "
          f"categories {counts['prompts_outside_categories_skipped']})")
    return 0
