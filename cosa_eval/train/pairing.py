"""Step 5: error-score judged responses under a config and pair them (CoSAlign's Algorithm 1).

Error score of a response under a config that allows the set A:
    +1        if the response does not address the prompt (a refusal counts as not addressed)
    +alpha    (0.1) per risk category present in the response that A allows
    +beta     (3)   per risk category present that A does not allow
"Other Harms" is never allowed. When training on a subset of the taxonomy (CoSAlign's released
data uses the four TRAINING_CATEGORIES), every category outside that subset collapses to
"Other Harms" first: it can never be allowed, so it always costs beta.

Responses of one pool (by default all responses to the same prompt, whatever config they were
generated under, as in the paper) are grouped by (collapsed categories, addressed), one response is
drawn per group with a seeded RNG, and for every config of the pool each pair of groups with
different scores gives a pair: lower score chosen. Ties are skipped; a pair whose chosen response
has a disallowed category (score >= beta) is dropped.
"""
from __future__ import annotations

import argparse
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Iterable, Iterator

from ..errors import CosaError
from ..taxonomy import OTHER_HARMS, RISK_CATEGORIES, TRAINING_CATEGORIES
from .files import ResumableWriter, read_jsonl, stable_id, write_manifest

ALPHA = 0.1
BETA = 3.0
CATEGORY_SETS = {"training": TRAINING_CATEGORIES, "all": RISK_CATEGORIES}
POOLS = ("prompt", "config")


def category_universe(name: str) -> tuple[str, ...]:
    """The categories a config may allow: ``training`` (CoSAlign's four) or ``all`` seven."""
    if name not in CATEGORY_SETS:
        raise CosaError(f"unknown category set {name!r}; expected one of {', '.join(CATEGORY_SETS)}")
    return CATEGORY_SETS[name]


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
    """One synthesized config of a prompt."""

    id: str
    prompt_id: str
    prompt: str
    text: str
    allowed: tuple[str, ...]
    mode: str


def representatives(responses: list[Judged], universe: Iterable[str], rng: random.Random) -> list[Judged]:
    """One response per (collapsed categories, addressed) group, drawn with ``rng``."""
    groups: dict[tuple[frozenset[str], bool], list[Judged]] = defaultdict(list)
    for item in sorted(responses, key=lambda r: r.id):
        groups[(collapse(item.categories, universe), item.is_addressed)].append(item)
    keys = sorted(groups, key=lambda k: (sorted(k[0]), k[1]))
    return [rng.choice(groups[key]) for key in keys]


def pairs_for_config(config: Config, reps: list[Judged], universe: Iterable[str], counts: Counter,
                     alpha: float = ALPHA, beta: float = BETA) -> Iterator[tuple[Judged, Judged, float, float]]:
    """(chosen, rejected, chosen score, rejected score) for every scorable pair of groups."""
    universe = tuple(universe)
    scored = [(error_score(r.is_addressed, r.categories, config.allowed, universe, alpha, beta), r) for r in reps]
    for (score_a, a), (score_b, b) in combinations(scored, 2):
        if score_a == score_b:
            counts["ties_skipped"] += 1
            continue
        (cs, chosen), (rs, rejected) = sorted([(score_a, a), (score_b, b)], key=lambda t: t[0])
        if has_disallowed(chosen.categories, config.allowed, universe):
            counts["chosen_disallowed_dropped"] += 1
            continue
        counts["pairs"] += 1
        yield chosen, rejected, cs, rs


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


def _config_of(row: dict[str, Any]) -> Config:
    return Config(id=str(row["config_id"]), prompt_id=str(row["prompt_id"]), prompt=row["prompt"],
                  text=row["config"], allowed=tuple(row.get("allowed") or ()), mode=str(row.get("mode", "")))


def build_pairs(rows: list[dict[str, Any]], universe: Iterable[str] = TRAINING_CATEGORIES, pool: str = "prompt",
                seed: int = 0, alpha: float = ALPHA, beta: float = BETA) -> tuple[list[dict[str, Any]], Counter]:
    """Pair rows from judged response rows (the output of ``cosa-eval train judge``)."""
    if pool not in POOLS:
        raise CosaError(f"unknown pool {pool!r}; expected one of {', '.join(POOLS)}")
    universe = tuple(universe)
    counts: Counter = Counter()
    configs: dict[str, Config] = {}
    pools: dict[str, list[Judged]] = defaultdict(list)
    pool_configs: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        config = configs.setdefault(str(row["config_id"]), _config_of(row))
        key = config.prompt_id if pool == "prompt" else config.id
        if config.id not in pool_configs[key]:
            pool_configs[key].append(config.id)
        judged = _judged_of(row)
        counts["responses"] += 1
        if judged is None:
            counts["unjudged_skipped"] += 1
            continue
        pools[key].append(judged)
    out: list[dict[str, Any]] = []
    for key in sorted(pool_configs):
        rng = random.Random(stable_id(str(seed), key))
        reps = representatives(pools.get(key, []), universe, rng)
        counts["groups"] += len(reps)
        for config_id in pool_configs[key]:
            config = configs[config_id]
            out.extend(pair_row(config, *pair) for pair in pairs_for_config(config, reps, universe, counts, alpha, beta))
    return out, counts


JUDGED_FIELDS = ("id", "config_id", "prompt_id", "prompt", "config", "allowed", "response")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="judged responses (output of 'train judge'), jsonl")
    parser.add_argument("--output", required=True, help="preference pairs jsonl to write or resume")
    parser.add_argument("--categories", choices=sorted(CATEGORY_SETS), default="training",
                        help="training categories; others collapse to Other Harms (default: %(default)s)")
    parser.add_argument("--pool", choices=POOLS, default="prompt",
                        help="responses compared under a config: all of its prompt's (paper) or its own")
    parser.add_argument("--alpha", type=float, default=ALPHA, help="cost per allowed category present")
    parser.add_argument("--beta", type=float, default=BETA, help="cost per disallowed category present")
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-group response draw")


def main(args: argparse.Namespace) -> int:
    if not 0 <= args.alpha * len(RISK_CATEGORIES) + 1 < args.beta:
        raise CosaError(f"--alpha {args.alpha} and --beta {args.beta}: need 1 + 7*alpha < beta so that a "
                        "disallowed category always costs more than any allowed mix")
    rows = read_jsonl(args.input, required=JUDGED_FIELDS)
    pairs, counts = build_pairs(rows, category_universe(args.categories), args.pool, args.seed,
                                args.alpha, args.beta)
    with ResumableWriter(args.output) as writer:
        for row in pairs:
            writer.write(row)
        counts["written_this_run"] = writer.written
        counts["total"] = len(writer.done)
    settings = {"categories": args.categories, "pool": args.pool, "alpha": args.alpha, "beta": args.beta,
                "seed": args.seed}
    write_manifest(args.output, "pair", [args.input], settings, dict(counts))
    print(f"pair: {counts['pairs']} pairs from {counts['responses']} responses in {args.output} "
          f"(ties skipped {counts['ties_skipped']}, chosen-with-disallowed dropped "
          f"{counts['chosen_disallowed_dropped']}, unjudged {counts['unjudged_skipped']})")
    return 0
