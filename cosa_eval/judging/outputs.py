"""A judge run's output folder: ``judged_<task>.jsonl`` per task, ``scores.json``, ``judge_run.json``.

Written the same way by ``cosa-eval judge`` and by judging inside an lm_eval run.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..atomic import write_texts
from ..manifest import SCORES, write_manifest
from ..records import judged_file_name, judged_text
from ..snapshots import answered_by, snapshot_label
from ..types import JudgedRecord


def write_run_outputs(output: Path, records: list[JudgedRecord], manifest: dict[str, Any],
                      extra_scores: dict[str, Any]) -> dict[str, Any]:
    """Judged files per task, scores.json (with ``extra_scores`` and the judge snapshot in each
    group), then the manifest listing what was written and which snapshots answered; returns the scores.

    Everything is computed (scored) before the first byte is written, and the judged files and
    scores.json are replaced together, so a refusal or a full disk leaves the folder as it was."""
    from ..scoring.metrics import score_groups
    by_task: dict[str, list[JudgedRecord]] = defaultdict(list)
    for record in records:
        by_task[record.sample.task].append(record)
    answered = answered_by(records)
    extra_scores = {**extra_scores, "judge_snapshot": snapshot_label(answered)}
    manifest = {**manifest, "answered_by": answered, "is_mixed_judge": len(answered) > 1}
    scores = {key: {**score, **extra_scores} for key, score in score_groups(records).items()}
    texts = {output / judged_file_name(task): judged_text(output / judged_file_name(task), own)
             for task, own in sorted(by_task.items())}
    write_texts({**texts, output / SCORES: json.dumps(scores, indent=2, ensure_ascii=False) + "\n"})
    write_manifest(output, manifest, texts)
    return scores
