"""What a leaderboard row may claim: does it cover its whole benchmark, and does its judge tell answers apart.

A row is *partial* when lm_eval cut the run (``--limit``, ``--samples``) or when it holds fewer
configs or documents than its benchmark declares (the hub benchmarks: 5 x 40 and 8 x 400; the
project's other tasks: their task YAMLs and the documents lm_eval loaded). ``leaderboard add``
refuses such a run unless asked, and every view marks the row. A judge whose helpfulness ratings
all sit within a narrow band does not tell answers apart; its rows carry that mark too.
"""
from __future__ import annotations

from typing import Any

from ..data import COSALIGN_TEST_SPLITS, COSAPIEN_SPLITS, HUB_DOCS_PER_CONFIG
from ..types import JudgedRecord
from .notice import is_degenerate

HUB_CONFIGS = {"cosapien": set(COSAPIEN_SPLITS), "cosalign_test": set(sum(COSALIGN_TEST_SPLITS.values(), ()))}


def declared_configs(benchmark: str, variant: str) -> set[str]:
    """The configs a benchmark declares: the hub's, else those of the shipped task YAMLs (empty: unknown)."""
    if benchmark in HUB_CONFIGS:
        return HUB_CONFIGS[benchmark]
    from ..task_catalog import catalog
    return {entry.config_id for entry in catalog().values()
            if entry.benchmark == benchmark and entry.variant == variant}


def partial_reason(records: list[JudgedRecord], lm_eval: dict[str, Any]) -> str:
    """Why the records of one row do not cover their benchmark ("" when they do). ``lm_eval`` is the
    run's results file as :func:`cosa_eval.samples.read_run_info` reads it (limit, n_samples)."""
    first = records[0].sample
    reasons = []
    counts = [count for task, count in (lm_eval.get("n_samples") or {}).items()
              if task in {record.sample.task for record in records}]
    limit = lm_eval.get("limit")
    if limit is not None:                     # lm_eval records --limit 2 as 2.0
        reasons.append(f"lm_eval --limit {int(limit) if isinstance(limit, float) and limit.is_integer() else limit}")
    elif any(count.get("effective", 0) < count.get("original", 0) for count in counts):
        reasons.append(f"lm_eval --samples kept {sum(c.get('effective', 0) for c in counts)} of "
                       f"{sum(c.get('original', 0) for c in counts)} documents")
    configs = {record.sample.config_id for record in records}
    declared = declared_configs(first.benchmark, first.variant)
    if declared - configs:
        reasons.append(f"{len(declared & configs)} of {len(declared)} configs")
    per_config = HUB_DOCS_PER_CONFIG.get(first.benchmark)
    expected = per_config * len(declared) if per_config else sum(c.get("original", 0) for c in counts)
    documents = len({record.sample.sample_id for record in records})
    if documents < expected:
        reasons.append(f"{documents} of {expected} documents")
    return "; ".join(reasons)


def judge_caveat(records: list[JudgedRecord]) -> str:
    """A warning when every helpfulness rating of the row lies within a narrow band ("" otherwise)."""
    ratings = [record.rating for record in records if record.rating is not None]
    if not is_degenerate(ratings):
        return ""
    return f"every rating within {max(ratings) - min(ratings):.2f}: the judge does not tell answers apart"


def marks(row: dict[str, str], *, short: bool = False) -> str:
    """The row's marks as shown beside its model name: `` [partial: ...; judge ...]`` ("" for none)."""
    found = []
    if row.get("partial"):
        found.append("partial" if short else f"partial: {row['partial']}")
    if row.get("judge_caveat"):
        found.append("judge cannot tell answers apart" if short else row["judge_caveat"])
    return f" [{'; '.join(found)}]" if found else ""
