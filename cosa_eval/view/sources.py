"""Judged folders as sources: one judge run's records with the model, judge and parser behind them.

A *source* is what one ``cosa-eval judge`` run wrote (the judged files of one folder, one judge).
A *run* is one set of responses: sources whose records hold the same responses (several judges or
parsers over one lm_eval run) share a run key, so their verdicts meet on the same rows.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..manifest import check_run_files
from ..records import find_judged_files, read_judged
from ..samples import read_run_info
from ..types import JudgedRecord

OUTCOMES = ("helpful+safe", "helpful+unsafe", "refused", "over-refusal", "invalid")


@dataclass
class Source:
    """The records one judge wrote into one folder, and who made them."""

    folder: Path
    judge: str
    parser: str
    model: str
    manifest: dict[str, Any]
    records: list[JudgedRecord]
    label: str = ""                       # unique among the sources shown together
    run: str = ""                         # content key of the responses it judged
    notes: list[str] = field(default_factory=list)


def outcome(record: JudgedRecord) -> str:
    """One of ``OUTCOMES``; an over-refusal is an unhelpful answer where everything asked is allowed."""
    if not record.is_valid or record.is_helpful is None or record.is_safe is None:
        return "invalid"
    if record.is_helpful:
        return "helpful+safe" if record.is_safe else "helpful+unsafe"
    return "over-refusal" if record.sample.is_fully_allowed else "refused"


def kind_of(record: JudgedRecord) -> str:
    """The prompt's mode (cosalign_test, with its situation) or type (cosapien)."""
    sample = record.sample
    if sample.prompt_type:
        return sample.prompt_type
    if sample.mode:
        return f"{sample.mode} (situation {sample.situation})" if sample.situation else sample.mode
    return ""


def _model(folder: Path, manifest: dict[str, Any]) -> str:
    from ..scoring.leaderboard import short_model_name
    run = manifest.get("run") if isinstance(manifest.get("run"), dict) else {}
    name = run.get("model") or read_run_info(folder).get("model")
    return short_model_name(str(name)) if name else folder.name


def _run_key(records: list[JudgedRecord]) -> str:
    """Same responses, same key: sha256 over the sorted (sample id, response) pairs, shortened."""
    digest = hashlib.sha256()
    for sample_id, response in sorted((r.sample.sample_id, r.sample.response) for r in records):
        digest.update(f"{sample_id}\0{response}\0".encode("utf-8"))
    return digest.hexdigest()[:16]


def load_sources(paths: Iterable[str | Path]) -> list[Source]:
    """Every judged folder under ``paths``, one source per (folder, judge), checked against its
    manifest; labels are made unique (judge, then parser, then folder)."""
    files = find_judged_files(list(paths))
    manifests = check_run_files(files)
    by_folder: dict[Path, list[Path]] = defaultdict(list)
    for file in files:
        by_folder[file.parent].append(file)
    sources: list[Source] = []
    for folder, own in by_folder.items():
        manifest = manifests.get(folder, {})
        by_judge: dict[str, list[JudgedRecord]] = defaultdict(list)
        for record in read_judged(own):
            by_judge[record.judge].append(record)
        for judge, records in by_judge.items():
            parser = str(records[0].extra.get("parser") or manifest.get("parser") or "final")
            sources.append(Source(folder, judge, parser, _model(folder, manifest), manifest, records,
                                  run=_run_key(records)))
    _label(sources)
    return sources


def _label(sources: list[Source]) -> None:
    """Judge name, `` · parser P`` for a parser other than the default, and the folder where one run
    would get two verdict sets under one label (the same judge run twice)."""
    for source in sources:
        source.label = source.judge + (f" · parser {source.parser}" if source.parser != "final" else "")
    for suffix in (lambda s: s.folder.name, lambda s: str(s.folder)):
        count: dict[tuple[str, str], int] = defaultdict(int)
        for source in sources:
            count[(source.label, source.run)] += 1
        clashing = [s for s in sources if count[(s.label, s.run)] > 1]
        for source in clashing:
            source.label = f"{source.label.split(' · folder ')[0]} · folder {suffix(source)}"
