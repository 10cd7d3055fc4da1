"""Seeded bootstrap confidence intervals for CoSA-Score, and paired comparison of two runs.

Resampling mirrors the metric: valid responses are resampled *within each config*, each config's
mean h·s is recomputed, then the unweighted mean over configs. Intervals are percentile intervals;
the seed, resample count and confidence are returned beside them so a figure can be reproduced.
"""
from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ..errors import CosaError
from ..types import JudgedRecord
from .metrics import COSALIGN_GROUPS, check_single_group, group_key, verdict

if TYPE_CHECKING:
    import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
DEFAULT_CONFIDENCE = 0.95
METHOD = "percentile bootstrap; valid responses resampled within each config, unweighted mean over configs"


def products(records: list[JudgedRecord], cascade_oracle: bool = False) -> dict[str, dict[str, float]]:
    """config_id -> {sample_id: h·s} over valid records."""
    table: dict[str, dict[str, float]] = defaultdict(dict)
    for record in records:
        if record.is_valid:
            h, _, safe = verdict(record, cascade_oracle)
            table[record.sample.config_id][record.sample.sample_id] = h if safe else -h
    return table


def _resample_means(values: "np.ndarray", rng: "np.random.Generator", n_resamples: int) -> "np.ndarray":
    """Means of ``n_resamples`` resamples (with replacement) of ``values``: shape (n_resamples,)."""
    picks = rng.integers(0, len(values), size=(n_resamples, len(values)))
    return values[picks].mean(axis=1)


def _interval(draws: "np.ndarray", confidence: float) -> dict[str, float]:
    import numpy as np

    alpha = (1 - confidence) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return {"low": float(low), "high": float(high)}


def _check_settings(n_resamples: int, confidence: float) -> None:
    if n_resamples < 10:
        raise CosaError(f"n_resamples is {n_resamples}; use at least 10 (1,000-2,000 is usual)")
    if not 0 < confidence < 1:
        raise CosaError(f"confidence is {confidence}; give a fraction such as 0.95")


def _group_draws(draws: dict[str, "np.ndarray"], groups: dict[str, str]) -> dict[str, "np.ndarray"]:
    """Unweighted mean over configs of the per-config draws: overall and cosalign seen/unseen."""
    import numpy as np

    out = {"overall": np.mean(np.stack(list(draws.values())), axis=0)}
    for group in COSALIGN_GROUPS:
        members = [draws[c] for c, g in groups.items() if g == group and c in draws]
        if members:
            out[group] = np.mean(np.stack(members), axis=0)
    return out


def bootstrap_ci(records: list[JudgedRecord], *, n_resamples: int = DEFAULT_RESAMPLES,
                 seed: int = DEFAULT_SEED, confidence: float = DEFAULT_CONFIDENCE,
                 cascade_oracle: bool = False) -> dict[str, Any]:
    """CoSA-Score intervals per config, ``overall`` and (cosalign_test) ``seen``/``unseen``/``all``."""
    import numpy as np

    records = list(records)
    check_single_group(records)
    _check_settings(n_resamples, confidence)
    rng = np.random.default_rng(seed)
    table = products(records, cascade_oracle)
    if not table:
        raise CosaError(f"no valid judged responses in {group_key(records[0])}; nothing to bootstrap")
    draws = {cid: _resample_means(np.fromiter(table[cid].values(), float), rng, n_resamples)
             for cid in sorted(table)}
    config_groups = {r.sample.config_id: r.sample.config_group for r in records}
    grouped = _group_draws(draws, config_groups)
    result: dict[str, Any] = {
        "method": METHOD, "n_resamples": n_resamples, "seed": seed, "confidence": confidence,
        "configs": {cid: _interval(d, confidence) for cid, d in draws.items()},
        "overall": _interval(grouped["overall"], confidence), "groups": {},
    }
    if records[0].sample.schema == "cosalign_test":
        result["groups"] = {g: _interval(grouped[g], confidence) for g in COSALIGN_GROUPS if g in grouped}
        result["groups"]["all"] = result["overall"]
    return result


def _check_comparable(records_a: list[JudgedRecord], records_b: list[JudgedRecord]) -> None:
    """Same benchmark/variant, judge, rubric hashes and prompt set, or a CosaError saying which differs."""
    check_single_group(records_a)
    check_single_group(records_b)
    a, b = records_a[0], records_b[0]
    if group_key(a) != group_key(b):
        raise CosaError(f"run A is {group_key(a)} but run B is {group_key(b)}; compare runs of one benchmark/variant")
    if a.judge != b.judge:
        raise CosaError(f"run A was judged by {a.judge!r} but run B by {b.judge!r}; "
                        "re-judge one run with the other's judge before comparing")
    if (a.rubric_hashes or {}) != (b.rubric_hashes or {}):
        raise CosaError(f"runs A and B were judged by {a.judge!r} with different rubric versions "
                        f"({a.rubric_hashes} vs {b.rubric_hashes}); re-judge both with the same rubrics")
    ids_a = {r.sample.sample_id for r in records_a}
    ids_b = {r.sample.sample_id for r in records_b}
    if ids_a != ids_b:
        only_a, only_b = sorted(ids_a - ids_b), sorted(ids_b - ids_a)
        example = (only_a or only_b)[0]
        raise CosaError(f"the runs' prompt sets differ ({len(only_a)} only in A, {len(only_b)} only in B, "
                        f"e.g. {example}); compare runs of the same tasks with the same --limit")


def _p_value(draws: "np.ndarray") -> float:
    """Two-sided bootstrap p-value for "no difference", with the +1 correction (never exactly 0)."""
    n = len(draws)
    below = (int((draws <= 0).sum()) + 1) / (n + 1)
    above = (int((draws >= 0).sum()) + 1) / (n + 1)
    return min(1.0, 2 * min(below, above))


def paired_difference(table_a: dict[str, dict[str, float]], table_b: dict[str, dict[str, float]], *,
                      n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                      confidence: float = DEFAULT_CONFIDENCE) -> dict[str, Any]:
    """Mean of A minus B over the items both hold (``config -> item -> h·s``), per config and as the
    unweighted mean over configs, with a paired-bootstrap CI and p-value. Pure: no judge or run checks."""
    import numpy as np

    _check_settings(n_resamples, confidence)
    rng = np.random.default_rng(seed)
    configs: dict[str, Any] = {}
    draws: dict[str, np.ndarray] = {}
    for cid in sorted(set(table_a) & set(table_b)):
        common = sorted(set(table_a[cid]) & set(table_b[cid]))
        if not common:
            continue
        xa = np.array([table_a[cid][s] for s in common])
        xb = np.array([table_b[cid][s] for s in common])
        draws[cid] = _resample_means(xa - xb, rng, n_resamples)
        configs[cid] = {"n_pairs": len(common), "score_a": float(xa.mean()), "score_b": float(xb.mean()),
                        "difference": float(xa.mean() - xb.mean()), **_ci(draws[cid], confidence)}
    if not configs:
        raise CosaError("no prompt is validly judged in both runs; nothing to compare")
    overall = np.mean(np.stack(list(draws.values())), axis=0)
    return {
        "n_pairs": sum(c["n_pairs"] for c in configs.values()),
        "score_a": float(np.mean([c["score_a"] for c in configs.values()])),
        "score_b": float(np.mean([c["score_b"] for c in configs.values()])),
        "difference": float(np.mean([c["difference"] for c in configs.values()])),
        **_ci(overall, confidence), "p_value": _p_value(overall),
        "method": "paired " + METHOD, "n_resamples": n_resamples, "seed": seed,
        "confidence": confidence, "configs": configs,
    }


def paired_compare(records_a: list[JudgedRecord], records_b: list[JudgedRecord], *,
                   n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                   confidence: float = DEFAULT_CONFIDENCE, cascade_oracle: bool = False) -> dict[str, Any]:
    """CoSA-Score of run A minus run B (one judge, same prompts) on the prompts valid in both."""
    records_a, records_b = list(records_a), list(records_b)
    _check_comparable(records_a, records_b)
    result = paired_difference(products(records_a, cascade_oracle), products(records_b, cascade_oracle),
                               n_resamples=n_resamples, seed=seed, confidence=confidence)
    first = records_a[0]
    return {"benchmark": first.sample.benchmark, "variant": first.sample.variant, "judge": first.judge,
            "n_prompts": len(records_a), "n_excluded": len(records_a) - result["n_pairs"], **result}


def _ci(draws: "np.ndarray", confidence: float) -> dict[str, float]:
    interval = _interval(draws, confidence)
    return {"ci_low": interval["low"], "ci_high": interval["high"]}
