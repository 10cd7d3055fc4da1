"""A local data dir's split files: duplicate rows and bad bytes are one-line errors naming file and row."""
from __future__ import annotations

import json

import pytest

from cosa_eval.data import load_docs
from cosa_eval.errors import CosaError


def _split(tmp_path, lines: list[bytes]):
    folder = tmp_path / "cosapien"
    folder.mkdir(parents=True)
    (folder / "film_production.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return tmp_path


def _row(prompt: str) -> bytes:
    return json.dumps({"prompt": prompt, "scenario": "cfg", "type": "allowed"}).encode()


def test_a_duplicate_row_would_count_twice_so_it_is_refused(tmp_path):
    root = _split(tmp_path, [_row("a"), _row("b"), _row("a")])
    with pytest.raises(CosaError, match=r"film_production.jsonl: row 3 repeats the prompt of row 1; delete one"):
        load_docs("cosapien", "film_production", data_dir=root)


@pytest.mark.parametrize("raw, message", [
    (b"\xff\xfe\x00binary", r"line 2: not UTF-8 text"),
    (b'{"prompt": "\\ud800", "scenario": "cfg", "type": "allowed"}', r"line 2: holds a lone UTF-16 surrogate"),
])
def test_bad_bytes_in_a_split(tmp_path, raw, message):
    root = _split(tmp_path, [_row("a"), raw])
    with pytest.raises(CosaError, match=message):
        load_docs("cosapien", "film_production", data_dir=root)
