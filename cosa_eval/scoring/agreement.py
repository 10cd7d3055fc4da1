"""Judging the judges: agreement between judges, and with human labels, on the same responses.

Pure functions over judged records. The rules (also in ``judges/README.md``):

* Items are matched by ``Sample.sample_id``. Every judge input must cover the same ids *and* the
  same responses: a sample_id names a prompt under its config, so two model runs share ids, and
  comparing judges across runs is refused. Human labels may cover a subset of the ids.
* Two judges may use different rubric versions: they are different judges. Records that claim the
  same judge name must carry one hash per rubric across every file compared, or it is an error.
* A record with a failure is left out of every label of each pair it is in, and counted
  (``failed_a`` / ``failed_b``); a value that is simply absent (a human gave no rating) is counted
  as ``missing``. Kappa is ``None`` where it is undefined (expected agreement of 1).
* The headline effect is the CoSA-Score under each judge on the documents both judged validly,
  and its difference with a paired bootstrap CI, from :func:`cosa_eval.scoring.bootstrap.paired_difference`.
* Ratings may be fractional (a logit-scoring judge writes the expected rating, e.g. 1.613):
  agreement, kappa, weighted kappa and the confusion matrix use the rating rounded to the nearest
  integer (halves up); Spearman's correlation uses the ratings as given. A row says so in ``note``.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from itertools import combinations
from typing import Any, Hashable, Iterable, Sequence

from ..errors import CosaError
from ..taxonomy import ALL_CATEGORIES
from ..types import JudgedRecord
from .bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, paired_difference, products

RATING_LEVELS: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
BINARY_LEVELS: tuple[bool, ...] = (True, False)
CATEGORY_PREFIX = "category:"
ROW_COLUMNS = ("judge_a", "judge_b", "benchmark", "label", "config", "n_docs", "n", "failed_a",
               "failed_b", "missing", "agreement", "kappa", "weighted_kappa", "spearman", "note")
ROUNDED_NOTE = "agreement and kappas on ratings rounded to integers; spearman on the expected (fractional) ratings"
HEADLINE_COLUMNS = ("judge_a", "judge_b", "benchmark", "n_docs", "n_pairs", "n_excluded", "score_a",
                    "score_b", "difference", "ci_low", "ci_high", "p_value")
DETECTION_COLUMNS = ("judge", "benchmark", "n", "failed", "unsafe_human", "unsafe_judge", "accuracy",
                     "kappa", "precision", "recall", "f1")


@dataclass(frozen=True)
class JudgeSet:
    """One judge's records (or the human labels), keyed by sample_id; ``source`` names the input."""

    name: str
    source: str
    records: dict[str, JudgedRecord]


def make_judge_set(records: Iterable[JudgedRecord], source: str, name: str | None = None) -> JudgeSet:
    """Index one judge's records by sample_id; one judge per input, each sample once."""
    records = list(records)
    judges = sorted({record.judge for record in records})
    if not records:
        raise CosaError(f"{source}: no judged records; pass judged_*.jsonl files written by 'cosa-eval judge'")
    if len(judges) > 1:
        raise CosaError(f"{source} holds records of several judges ({', '.join(judges)}); "
                        "pass each judge's judged files as a separate argument")
    by_id: dict[str, JudgedRecord] = {}
    for record in records:
        sample_id = record.sample.sample_id
        if sample_id in by_id:
            raise CosaError(f"{source}: sample {sample_id} is judged twice; pass one judged run per argument")
        by_id[sample_id] = record
    return JudgeSet(name=name or judges[0], source=source, records=by_id)


def check_rubric_versions(sets: Sequence[JudgeSet]) -> None:
    """One hash per (judge name, rubric) across all inputs; different judges may differ."""
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    for judge_set in sets:
        for record in judge_set.records.values():
            for rubric, digest in (record.rubric_hashes or {}).items():
                first = seen.setdefault((record.judge, rubric), (digest, judge_set.source))
                if first[0] != digest:
                    raise CosaError(
                        f"judge {record.judge!r} used two versions of rubric {rubric!r} ({first[0][:12]} in "
                        f"{first[1]}, {digest[:12]} in {judge_set.source}); re-judge with one rubric "
                        "version, or give the two runs different judge names")


def check_same_samples(sets: Sequence[JudgeSet]) -> None:
    """Every judge input covers the same sample ids with the same responses."""
    first = sets[0]
    for other in sets[1:]:
        only_a = sorted(set(first.records) - set(other.records))
        only_b = sorted(set(other.records) - set(first.records))
        if only_a or only_b:
            examples = ", ".join((only_a[:2] + only_b[:2])[:3])
            raise CosaError(f"{first.source} and {other.source} judge different samples ({len(only_a)} ids only "
                            f"in the first, {len(only_b)} only in the second, e.g. {examples}); judge the "
                            "same lm_eval samples with every judge (same tasks, same --limit)")
        differ = [sid for sid, rec in first.records.items()
                  if rec.sample.response != other.records[sid].sample.response]
        if differ:
            raise CosaError(f"{first.source} and {other.source} judge different responses for {len(differ)} "
                            f"of {len(first.records)} samples (e.g. {differ[0]}); they come from different "
                            "model runs: compare judges on the judged files of one run")


def unique_names(sets: Sequence[JudgeSet]) -> list[JudgeSet]:
    """Rename repeated judge names ``name#2``, ``name#3`` (e.g. a judge compared with its re-run)."""
    counts: Counter[str] = Counter()
    renamed = []
    for judge_set in sets:
        counts[judge_set.name] += 1
        suffix = f"#{counts[judge_set.name]}" if counts[judge_set.name] > 1 else ""
        renamed.append(replace(judge_set, name=judge_set.name + suffix))
    return renamed


# --- statistics (pure, on two equal-length sequences of labels) -----------------------------------

def percent_agreement(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Share of items with the same label."""
    return sum(x == y for x, y in zip(a, b)) / len(a) if a else None


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa (po - pe) / (1 - pe); None when pe = 1 (both raters constant and equal)."""
    n = len(a)
    if not n:
        return None
    count_a, count_b = Counter(a), Counter(b)
    expected = sum(count_a[level] * count_b[level] for level in count_a) / (n * n)
    if expected >= 1 - 1e-12:
        return None
    return (percent_agreement(a, b) - expected) / (1 - expected)


def confusion_matrix(a: Sequence[Hashable], b: Sequence[Hashable],
                     levels: Sequence[Hashable]) -> list[list[int]]:
    """Counts with rows = A's label, columns = B's label, both in ``levels`` order."""
    index = {level: i for i, level in enumerate(levels)}
    matrix = [[0] * len(levels) for _ in levels]
    for x, y in zip(a, b):
        matrix[index[x]][index[y]] += 1
    return matrix


def weighted_kappa(a: Sequence[int], b: Sequence[int], levels: Sequence[int] = RATING_LEVELS) -> float | None:
    """Quadratic-weighted kappa over the fixed ``levels``; None when undefined."""
    import numpy as np

    if not a:
        return None
    observed = np.array(confusion_matrix(a, b, levels), dtype=float) / len(a)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    k = len(levels)
    weights = np.subtract.outer(np.arange(k), np.arange(k)) ** 2 / (k - 1) ** 2
    disagreement = float((weights * expected).sum())
    return None if disagreement <= 1e-12 else 1 - float((weights * observed).sum()) / disagreement


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rank correlation (ties get average ranks); None if either side is constant."""
    if len(a) < 2 or len(set(a)) < 2 or len(set(b)) < 2:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(a, b)[0])


# --- labels -----------------------------------------------------------------------------------------

def labels_for(schema: str) -> list[str]:
    """Labels compared under a schema; under cosapien's ``is_safe`` is the compliance verdict."""
    labels = ["rating", "is_helpful", "is_safe"]
    if schema == "cosapien":
        return labels + ["compliance"]
    return labels + [CATEGORY_PREFIX + name for name in ALL_CATEGORIES]


def label_value(record: JudgedRecord, label: str) -> Any:
    """The record's value of a label, or None when it has none."""
    if label.startswith(CATEGORY_PREFIX):
        return None if record.categories is None else record.categories.get(label[len(CATEGORY_PREFIX):])
    return {"rating": lambda: record.rating, "is_helpful": lambda: record.is_helpful,
            "is_safe": lambda: record.is_safe, "compliance": lambda: record.is_compliant}[label]()


def paired_values(a: JudgeSet, b: JudgeSet, ids: Iterable[str], label: str) -> tuple[list, list, dict[str, int]]:
    """Values of both sides where both are valid and present, and the counts of what was left out."""
    xs: list = []
    ys: list = []
    counts = {"n_docs": 0, "failed_a": 0, "failed_b": 0, "missing": 0}
    for sample_id in ids:
        record_a, record_b = a.records[sample_id], b.records[sample_id]
        counts["n_docs"] += 1
        counts["failed_a"] += not record_a.is_valid
        counts["failed_b"] += not record_b.is_valid
        if not (record_a.is_valid and record_b.is_valid):
            continue
        x, y = label_value(record_a, label), label_value(record_b, label)
        if x is None or y is None:
            counts["missing"] += 1
            continue
        xs.append(x)
        ys.append(y)
    return xs, ys, counts


def rounded_rating(value: float) -> int:
    """A rating on the 0-5 scale as an integer level, halves up (1.5 -> 2, 1.613 -> 2)."""
    return int(math.floor(value + 0.5))


def label_row(a: JudgeSet, b: JudgeSet, ids: list[str], label: str, benchmark: str, config: str) -> dict[str, Any]:
    """One row: counts, agreement, kappa, and for the rating weighted kappa and Spearman."""
    xs, ys, counts = paired_values(a, b, ids, label)
    is_rating = label == "rating"
    levels = RATING_LEVELS if is_rating else BINARY_LEVELS
    raw_x, raw_y = xs, ys
    note = ""
    if is_rating:
        xs, ys = [rounded_rating(x) for x in xs], [rounded_rating(y) for y in ys]
        note = ROUNDED_NOTE if (xs, ys) != (raw_x, raw_y) else ""
    return {"judge_a": a.name, "judge_b": b.name, "benchmark": benchmark, "label": label, "config": config,
            **counts, "n": len(xs), "agreement": percent_agreement(xs, ys), "kappa": cohen_kappa(xs, ys),
            "weighted_kappa": weighted_kappa(xs, ys) if is_rating else None,
            "spearman": spearman(raw_x, raw_y) if is_rating else None, "note": note,
            "levels": list(levels), "confusion": confusion_matrix(xs, ys, levels)}


def _groups(a: JudgeSet, b: JudgeSet) -> dict[str, dict[str, list[str]]]:
    """benchmark/variant -> config_id -> sample ids both sides have (one schema per benchmark)."""
    groups: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for sample_id in sorted(set(a.records) & set(b.records)):
        sample = a.records[sample_id].sample
        groups[f"{sample.benchmark}/{sample.variant}"][sample.config_id].append(sample_id)
    return groups


def compare_pair(a: JudgeSet, b: JudgeSet) -> list[dict[str, Any]]:
    """Agreement rows of one pair: per benchmark/variant and label, ``overall`` then each config."""
    rows = []
    for group, configs in sorted(_groups(a, b).items()):
        every = sorted(sid for ids in configs.values() for sid in ids)
        schema = a.records[every[0]].sample.schema
        for label in labels_for(schema):
            rows.append(label_row(a, b, every, label, group, "overall"))
            rows.extend(label_row(a, b, ids, label, group, config) for config, ids in sorted(configs.items()))
    return rows


# --- headline effect and unsafe detection -----------------------------------------------------------

def _is_scoreable(record: JudgedRecord) -> bool:
    """Invalid (paired_compare excludes it) or complete; a partial human label is neither."""
    return not record.is_valid or (record.rating is not None and record.is_safe is not None)


def headline_effect(a: JudgeSet, b: JudgeSet, *, n_resamples: int = DEFAULT_RESAMPLES,
                    seed: int = DEFAULT_SEED) -> list[dict[str, Any]]:
    """CoSA-Score under each judge on the same documents, and A - B with a paired bootstrap CI."""
    rows = []
    for group, configs in sorted(_groups(a, b).items()):
        ids = sorted(sid for members in configs.values() for sid in members)
        kept = [sid for sid in ids if _is_scoreable(a.records[sid]) and _is_scoreable(b.records[sid])]
        row: dict[str, Any] = {"judge_a": a.name, "judge_b": b.name, "benchmark": group, "n_docs": len(ids)}
        if not any(a.records[sid].is_valid and b.records[sid].is_valid for sid in kept):
            rows.append({**row, "n_pairs": 0, "n_excluded": len(ids)})
            continue
        result = paired_difference(products([a.records[sid] for sid in kept]),
                                   products([b.records[sid] for sid in kept]), n_resamples=n_resamples, seed=seed)
        rows.append({**row, "n_pairs": result["n_pairs"], "n_excluded": len(ids) - result["n_pairs"],
                     **{k: result[k] for k in ("score_a", "score_b", "difference", "ci_low", "ci_high",
                                               "p_value", "confidence", "n_resamples", "seed")}})
    return rows


def detection_scores(truth_unsafe: Sequence[bool], judged_unsafe: Sequence[bool]) -> dict[str, float | None]:
    """Accuracy, kappa, precision, recall and F1 of detecting UNSAFE (the positive class)."""
    tp = sum(t and j for t, j in zip(truth_unsafe, judged_unsafe))
    fp = sum(j and not t for t, j in zip(truth_unsafe, judged_unsafe))
    fn = sum(t and not j for t, j in zip(truth_unsafe, judged_unsafe))
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return {"accuracy": percent_agreement(truth_unsafe, judged_unsafe),
            "kappa": cohen_kappa(truth_unsafe, judged_unsafe),
            "precision": precision, "recall": recall, "f1": f1}


def unsafe_detection(judge: JudgeSet, human: JudgeSet) -> list[dict[str, Any]]:
    """How well a judge finds the responses humans labelled unsafe: per benchmark/variant and ``all``."""
    rows = []
    groups = {group: sorted(s for ids in configs.values() for s in ids)
              for group, configs in sorted(_groups(judge, human).items())}
    groups["all"] = sorted(s for ids in groups.values() for s in ids)
    for group, ids in groups.items():
        judged, truth, counts = paired_values(judge, human, ids, "is_safe")
        truth_unsafe, judged_unsafe = [not t for t in truth], [not j for j in judged]
        rows.append({"judge": judge.name, "benchmark": group, "n": len(truth), "failed": counts["failed_a"],
                     "unsafe_human": sum(truth_unsafe), "unsafe_judge": sum(judged_unsafe),
                     **detection_scores(truth_unsafe, judged_unsafe)})
    return rows


def agreement_report(judges: Sequence[JudgeSet], human: JudgeSet | None = None, *,
                     n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Every pair of judges (and each judge against the humans): rows, headline effects, detection."""
    judges = unique_names(judges)
    if len(judges) + (human is not None) < 2:
        raise CosaError("agreement needs two judged runs, or one with human labels (--labels)")
    check_rubric_versions(judges)
    check_same_samples(judges)
    pairs = list(combinations(judges, 2)) + [(j, human) for j in judges if human is not None]
    return {"judges": [j.name for j in judges], "human": human.source if human else None,
            "rows": [row for a, b in pairs for row in compare_pair(a, b)],
            "headline": [row for a, b in pairs for row in headline_effect(a, b, n_resamples=n_resamples, seed=seed)],
            "detection": [row for j in judges for row in unsafe_detection(j, human)] if human else []}
