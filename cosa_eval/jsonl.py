"""Reading jsonl files with errors that name the file and line (one reader for every stage)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from .errors import CosaError


def iter_jsonl(path: str | Path, fix: str = "fix or delete the line") -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-empty line; a bad line is a one-line ``CosaError``."""
    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CosaError(f"{path}: line {number}: not valid JSON ({exc.msg}); {fix}") from None
            if not isinstance(row, dict):
                raise CosaError(f"{path}: line {number}: expected a JSON object, got {type(row).__name__}")
            yield number, row
