"""Judged files: one ``JudgedRecord.to_dict()`` per line (``judged_<task>.jsonl``)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from ..errors import CosaError
from ..jsonl import iter_jsonl
from ..types import JudgedRecord

JUDGED_GLOB = "judged_*.jsonl"


def judged_file_name(task: str) -> str:
    """File name of the judged records of one lm_eval task."""
    return f"judged_{task}.jsonl"


def write_judged(path: str | Path, records: Iterable[JudgedRecord]) -> Path:
    """Write records as jsonl atomically (a temp file renamed over ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def find_judged_files(paths: Iterable[str | Path]) -> list[Path]:
    """``judged_*.jsonl`` files given directly or found under folders."""
    found: list[Path] = []
    given_any = False
    for given in map(Path, paths):
        given_any = True
        if not given.exists():
            raise CosaError(f"{given} does not exist; pass judged_*.jsonl files or the --output "
                            "folder of 'cosa-eval judge'")
        found.extend([given] if given.is_file() else sorted(given.rglob(JUDGED_GLOB)))
    if not found:
        where = ", ".join(map(str, paths)) if given_any else "(no paths given)"
        raise CosaError(f"no judged_*.jsonl under {where}; run 'cosa-eval judge SAMPLES --output DIR' first")
    return found


def _record_of(row: dict, where: str) -> JudgedRecord:
    try:
        return JudgedRecord.from_dict(row)
    except (TypeError, KeyError) as exc:
        raise CosaError(f"{where}: not a judged record ({exc}); was it written by 'cosa-eval judge'?") from None


def read_judged(paths: Iterable[str | Path] | str | Path) -> list[JudgedRecord]:
    """Every judged record in the given files or folders, in file then line order."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    records: list[JudgedRecord] = []
    for path in find_judged_files(list(paths)):
        records.extend(_record_of(row, f"{path}: line {number}")
                       for number, row in iter_jsonl(path, fix="re-run 'cosa-eval judge' to rewrite it"))
    return records
