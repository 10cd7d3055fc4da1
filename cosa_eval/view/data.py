"""The explorer's data: one row per response (a run's answer to one prompt under one config), each
with every source's verdict, plus the groups where verdicts disagree."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from ..taxonomy import ALL_CATEGORIES
from ..types import JudgedRecord
from .rationale import Texts
from .sources import OUTCOMES, Source, kind_of, outcome

DISAGREEMENT_KINDS = ("judges", "parsers", "jury", "runs")


def _flagged(categories: dict[str, bool] | None) -> list[str] | None:
    return None if categories is None else [name for name, present in categories.items() if present]


def _members(record: JudgedRecord) -> dict[str, dict[str, Any]]:
    """A jury's member verdicts, each with its own outcome."""
    verdicts = (record.extra.get("jury") or {}).get("verdicts") or {}
    members = {}
    for name, given in verdicts.items():
        member = JudgedRecord(sample=record.sample, judge=name, rubric_hashes={}, rating=given.get("rating"),
                              is_compliant=given.get("is_compliant"), categories=given.get("categories"),
                              failure=given.get("failure"), failure_detail=given.get("failure_detail") or "")
        members[name] = {"rating": member.rating, "compliant": member.is_compliant,
                         "flagged": _flagged(member.categories), "is_safe": member.is_safe,
                         "outcome": outcome(member), "failure": member.failure}
    return members


def verdict(record: JudgedRecord, texts: dict[str, list[str]]) -> dict[str, Any]:
    """What one judge said about one response, with its texts (rubric -> attempts)."""
    found: dict[str, Any] = {
        "rating": record.rating, "compliant": record.is_compliant, "flagged": _flagged(record.categories),
        "violated": list(record.violated_categories), "is_safe": record.is_safe,
        "is_helpful": record.is_helpful, "outcome": outcome(record), "failure": record.failure,
        "failure_detail": record.failure_detail, "attempts": dict(record.extra.get("attempts") or {}),
        "parsers_disagree": list(record.extra.get("parsers_disagree") or []), "texts": texts,
        "raw": {k: v for k, v in (record.extra.get("raw") or {}).items() if isinstance(v, str)},
    }
    if record.extra.get("jury"):
        found["members"] = _members(record)
    return found


def build(sources: list[Source], texts: dict[int, Texts], title: str) -> dict[str, Any]:
    """The page's JSON: sources, runs, configs (each text once), rows and disagreements."""
    configs: dict[str, int] = {}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for index, source in enumerate(sources):
        own = texts.get(index, {})
        for record in source.records:
            sample = record.sample
            key = (source.run, sample.sample_id)
            if key not in rows:
                rows[key] = {
                    "id": len(rows), "run": source.run, "model": source.model, "sample_id": sample.sample_id,
                    "benchmark": sample.benchmark, "variant": sample.variant, "task": sample.task,
                    "config_id": sample.config_id, "config_group": sample.config_group, "kind": kind_of(record),
                    "doc_id": sample.doc_id, "schema": sample.schema, "prompt": sample.prompt,
                    "response": sample.response, "config": configs.setdefault(sample.config, len(configs)),
                    "allowed": list(sample.allowed_categories), "fully_allowed": sample.is_fully_allowed,
                    "v": {}}
            rows[key]["v"][source.label] = verdict(record, own.get(sample.sample_id, {}))
    listed = list(rows.values())
    return {"title": title, "outcomes": list(OUTCOMES), "categories": list(ALL_CATEGORIES),
            "kinds": list(DISAGREEMENT_KINDS), "sources": [_source(s) for s in sources],
            "runs": _runs(sources), "configs": list(configs), "rows": listed,
            "disagreements": disagreements(listed, {s.label: s for s in sources})}


def _source(source: Source) -> dict[str, Any]:
    return {"label": source.label, "judge": source.judge, "parser": source.parser, "model": source.model,
            "folder": str(source.folder), "run": source.run, "n": len(source.records), "notes": source.notes,
            "judge_file": str(source.manifest.get("judge_file") or "")}


def _runs(sources: list[Source]) -> list[dict[str, Any]]:
    """One entry per run; a model with several runs gets ``#2``, ``#3`` after its name."""
    runs: dict[str, dict[str, Any]] = {}
    for source in sources:
        runs.setdefault(source.run, {"key": source.run, "model": source.model, "n": len(source.records)})
    per_model: dict[str, int] = defaultdict(int)
    for run in runs.values():
        per_model[run["model"]] += 1
        run["label"] = run["model"] + (f" #{per_model[run['model']]}" if per_model[run["model"]] > 1 else "")
    return list(runs.values())


def _verdict_key(verdict: dict[str, Any]) -> tuple[str, Any]:
    return verdict["outcome"], verdict["is_safe"]


def _row_kinds(row: dict[str, Any], sources: dict[str, Source]) -> set[str]:
    """Disagreements within one response: between sources (judges or parsers) and jury members."""
    kinds: set[str] = set()
    labels = list(row["v"])
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            if _verdict_key(row["v"][a]) == _verdict_key(row["v"][b]):
                continue
            if sources[a].judge == sources[b].judge:
                kinds.add("parsers")
            elif sources[a].parser == sources[b].parser:      # a pair differing in both says nothing new
                kinds.add("judges")
    for verdict_ in row["v"].values():
        if len({_verdict_key(m) for m in verdict_.get("members", {}).values()}) > 1:
            kinds.add("jury")
    return kinds


def disagreements(rows: list[dict[str, Any]], sources: dict[str, Source]) -> list[dict[str, Any]]:
    """Per prompt (sample id), where verdicts differ: between judges or parsers on one response,
    between a jury's members, or between runs' responses under the same judge."""
    by_sample: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_sample[row["sample_id"]].append(row)
    found = []
    for sample_id, group in by_sample.items():
        kinds = set().union(*(_row_kinds(row, sources) for row in group))
        for label in {label for row in group for label in row["v"]}:
            if len({_verdict_key(row["v"][label]) for row in group if label in row["v"]}) > 1:
                kinds.add("runs")
        if kinds:
            found.append({"sample_id": sample_id, "kinds": [k for k in DISAGREEMENT_KINDS if k in kinds],
                          "rows": [row["id"] for row in group]})
    return found
