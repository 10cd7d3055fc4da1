"""Which judge snapshot answered: the ``model`` and ``system_fingerprint`` the API reported.

Each judged record keeps them per rubric in ``extra["answered_by"]`` (rubrics whose backend did not
say are left out). A run's answers grouped by snapshot go into ``judge_run.json``; a run answered
by more than one snapshot (an alias that moved while a long-lived cache kept older answers) is
*mixed*, and the leaderboard refuses it unless told. System fingerprints (a snapshot's backend
configuration, which a provider changes often) are recorded but do not make a run mixed.
"""
from __future__ import annotations

from typing import Any, Iterable

from .types import JudgedRecord


def answered_by(records: Iterable[JudgedRecord]) -> dict[str, dict[str, Any]]:
    """Snapshot -> {"answers": count, "system_fingerprints": sorted list} over the records' answers."""
    found: dict[str, dict[str, Any]] = {}
    for record in records:
        answers = record.extra.get("answered_by") if isinstance(record.extra, dict) else None
        for answer in (answers or {}).values():
            if not isinstance(answer, dict) or not answer.get("model"):
                continue
            entry = found.setdefault(str(answer["model"]), {"answers": 0, "system_fingerprints": set()})
            entry["answers"] += 1
            if answer.get("system_fingerprint"):
                entry["system_fingerprints"].add(str(answer["system_fingerprint"]))
    return {model: {"answers": entry["answers"], "system_fingerprints": sorted(entry["system_fingerprints"])}
            for model, entry in sorted(found.items())}


def snapshot_label(answered: dict[str, dict[str, Any]]) -> str:
    """The snapshots that answered, joined by ``+`` ("" when no backend said)."""
    return "+".join(answered)


def snapshot_summary(answered: dict[str, dict[str, Any]]) -> str:
    """A phrase for a run's summary line."""
    if not answered:
        return "the judge did not report its snapshot"
    if len(answered) == 1:
        return f"answered by {next(iter(answered))}"
    counts = ", ".join(f"{model} ({entry['answers']})" for model, entry in answered.items())
    return f"answered by {len(answered)} snapshots, a mixed judge: {counts}"
