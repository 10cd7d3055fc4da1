"""Reading jsonl files with errors that name the file and line (one reader for every stage).

Every failure of the file itself (unreadable, not UTF-8, binary, bad JSON, a lone UTF-16 surrogate
that no UTF-8 file or database can hold) is a one-line ``CosaError`` naming the file and line.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from .errors import CosaError

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _decode(path: Path, number: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CosaError(f"{path}: line {number}: not UTF-8 text (byte {exc.start + 1}); is it a binary "
                        "file? give a UTF-8 jsonl file") from None


def _check_text(path: Path, number: int, line: str, row: Any) -> None:
    """Reject lone surrogates (``"\\ud800"``): valid JSON, but not text anything can store."""
    if not _SURROGATE_ESCAPE.search(line):
        return
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise CosaError(f"{path}: line {number}: holds a lone UTF-16 surrogate escape (e.g. \\ud800), "
                        "which is not Unicode text; remove or replace it") from None


def iter_jsonl(path: str | Path, fix: str = "fix or delete the line") -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-empty line; a bad line is a one-line ``CosaError``."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise CosaError(f"{path}: cannot be read ({exc.strerror or exc}); pass a readable jsonl file") from None
    with handle:
        for number, raw in enumerate(handle, 1):
            line = _decode(path, number, raw)
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                raise CosaError(f"{path}: line {number}: not valid JSON ({reason}); {fix}") from None
            if not isinstance(row, dict):
                raise CosaError(f"{path}: line {number}: expected a JSON object, got {type(row).__name__}")
            _check_text(path, number, line, row)
            yield number, row


def text_field(row: dict[str, Any], name: str, where: str) -> str:
    """A required non-empty string field of a row (``where`` names file and row)."""
    value = row.get(name)
    if not isinstance(value, str) or not value.strip():
        raise CosaError(f"{where}: field {name!r} must be a non-empty string, got {str(value)[:60]!r}")
    return value
