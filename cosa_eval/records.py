"""Judged files: one checked ``JudgedRecord.to_dict()`` per line (``judged_<task>.jsonl``).

Every row read is validated (types, ranges, allowed failure kinds); a bad one is a one-line
``CosaError`` naming the file, line and field. Which run wrote a folder's judged files is in its
run manifest (``manifest.py``).
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Callable, Iterable

from .atomic import write_texts
from .errors import CosaError
from .jsonl import iter_jsonl
from .taxonomy import ALL_CATEGORIES
from .types import COSAPIEN_TYPES, FAILURE_KINDS, SCHEMAS, VARIANTS, JudgedRecord

JUDGED_GLOB = "judged_*.jsonl"
_FIX = "re-run 'cosa-eval judge' to rewrite it"
_SURROGATE = re.compile("[\ud800-\udfff]")


def judged_file_name(task: str) -> str:
    """File name of the judged records of one lm_eval task."""
    return f"judged_{task}.jsonl"


def judged_text(path: Path, records: Iterable[JudgedRecord]) -> str:
    """The jsonl text of records bound for ``path``; a lone UTF-16 surrogate (text no UTF-8 file can
    hold) is refused, naming the record."""
    lines = []
    for record in records:
        line = json.dumps(record.to_dict(), ensure_ascii=False)
        if _SURROGATE.search(line):
            raise CosaError(f"{path}: record {record.sample.sample_id!r} holds a lone UTF-16 surrogate, which is "
                            "not Unicode text and cannot be written; remove it from the input")
        lines.append(line + "\n")
    return "".join(lines)


def write_judged(path: str | Path, records: Iterable[JudgedRecord]) -> Path:
    """Write records as jsonl, all or nothing (a temporary replaces ``path``)."""
    path = Path(path)
    write_texts({path: judged_text(path, records)})
    return path


def find_judged_files(paths: Iterable[str | Path]) -> list[Path]:
    """``judged_*.jsonl`` files given directly or found under folders."""
    paths = list(paths)
    found: list[Path] = []
    for given in map(Path, paths):
        if not given.exists():
            raise CosaError(f"{given} does not exist; pass judged_*.jsonl files or the --output "
                            "folder of 'cosa-eval judge'")
        found.extend([given] if given.is_file() else sorted(given.rglob(JUDGED_GLOB)))
    if not found:
        where = ", ".join(map(str, paths)) or "(no paths given)"
        raise CosaError(f"no judged_*.jsonl under {where}; run 'cosa-eval judge SAMPLES --output DIR' first")
    return found


# --- validation ------------------------------------------------------------------------------------

def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_rating(value: Any) -> bool:
    return (value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                              and math.isfinite(value) and 0 <= value <= 5))


def _is_categories(value: Any) -> bool:
    return value is None or (isinstance(value, dict) and set(value) == set(ALL_CATEGORIES)
                             and all(isinstance(v, bool) for v in value.values()))


def _is_hashes(value: Any) -> bool:
    return isinstance(value, dict) and all(_is_text(k) and _is_text(v) for k, v in value.items())


# field -> (check, what it must be); optional fields may be absent (their default is used).
_REQUIRED: dict[str, tuple[Callable[[Any], bool], str]] = {
    "task": (_is_text, "a string"), "benchmark": (lambda v: _is_text(v) and bool(v), "a non-empty string"),
    "variant": (lambda v: v in VARIANTS, f"one of {', '.join(VARIANTS)}"),
    "config_id": (_is_text, "a string"), "config_group": (_is_text, "a string"),
    "doc_id": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "prompt": (_is_text, "a string"), "config": (_is_text, "a string"), "response": (_is_text, "a string"),
    "judge": (lambda v: _is_text(v) and bool(v), "a non-empty string"),
    "rubric_hashes": (_is_hashes, "an object of rubric name -> hash"),
}
_OPTIONAL: dict[str, tuple[Callable[[Any], bool], str]] = {
    "schema": (lambda v: v in SCHEMAS, f"one of {', '.join(SCHEMAS)}"),
    "prompt_type": (lambda v: v is None or v in COSAPIEN_TYPES, f"null or one of {', '.join(COSAPIEN_TYPES)}"),
    "situation": (lambda v: v is None or v in (1, 2, 3) and _is_int(v), "null or 1, 2, 3"),
    "mode": (lambda v: v is None or _is_text(v), "null or a string"),
    "allowed_categories": (lambda v: isinstance(v, list) and all(c in ALL_CATEGORIES for c in v),
                           "a list of risk category names"),
    "rating": (_is_rating, "null or a number from 0 to 5"),
    "is_compliant": (lambda v: v is None or isinstance(v, bool), "null, true or false"),
    "categories": (_is_categories, "null or an object mapping each of the 8 risk categories to true/false"),
    "failure": (lambda v: v is None or v in FAILURE_KINDS, f"null or one of {', '.join(FAILURE_KINDS)}"),
    "failure_detail": (_is_text, "a string"),
    "extra": (lambda v: isinstance(v, dict), "an object"),
}


def _schema_of(row: dict[str, Any], where: str) -> str:
    """The declared schema; judged files written before it was recorded name a shipped benchmark."""
    if "schema" in row:
        return row["schema"]
    if row.get("benchmark") in SCHEMAS:
        return row["benchmark"]
    raise CosaError(f"{where}: field 'schema' is missing and benchmark {row.get('benchmark')!r} is not a "
                    f"shipped one; {_FIX} with this cosa-eval version")


def record_from_row(row: dict[str, Any], where: str) -> JudgedRecord:
    """A checked record from one parsed judged line; a bad field is a one-line ``CosaError``."""
    for name, (check, what) in _REQUIRED.items():
        if name not in row:
            raise CosaError(f"{where}: field {name!r} is missing; not a judged record ({_FIX})")
        if not check(row[name]):
            raise CosaError(f"{where}: field {name!r} is {row[name]!r}, not {what}; {_FIX}")
    for name, (check, what) in _OPTIONAL.items():
        if name in row and not check(row[name]):
            shown = repr(row[name])
            raise CosaError(f"{where}: field {name!r} is {shown[:80]}{'...' if len(shown) > 80 else ''}, "
                            f"not {what}; {_FIX}")
    record = JudgedRecord.from_dict({**row, "schema": _schema_of(row, where)})
    if "sample_id" in row and row["sample_id"] != record.sample.sample_id:
        raise CosaError(f"{where}: field 'sample_id' is {row['sample_id']!r} but the record's fields say "
                        f"{record.sample.sample_id!r}; {_FIX}")
    return record


def read_judged(paths: Iterable[str | Path] | str | Path) -> list[JudgedRecord]:
    """Every judged record in the given files or folders, checked, in file then line order."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    records: list[JudgedRecord] = []
    for path in find_judged_files(list(paths)):
        records.extend(record_from_row(row, f"{path}: line {number}")
                       for number, row in iter_jsonl(path, fix=_FIX))
    return records
