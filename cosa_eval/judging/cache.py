"""A persistent, content-addressed store of judge answers (SQLite in WAL mode).

The key is a hash of what determines the judge's output (backend, model, sampling, rubric hash,
messages, attempt) and never of timeouts, retries or concurrency. Every answer is committed as it
arrives, so a killed run loses nothing. Raw text is stored, so outputs can be re-parsed for free.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from .. import CACHE_ENV, cache_dir
from ..errors import CosaError
from .backends.base import JudgeResponse

CACHE_FILE = "judge_cache.sqlite"
# Failures worth keeping: the same request would fail the same way. api_error is always retried.
CACHED_FAILURES = frozenset({"truncated", "judge_refused"})
_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    rubric TEXT NOT NULL,
    text TEXT,
    choice_probs TEXT,
    failure TEXT,
    detail TEXT NOT NULL DEFAULT '',
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    seconds REAL NOT NULL DEFAULT 0,
    created REAL NOT NULL
)"""
_COLUMNS = "key, rubric, text, choice_probs, failure, detail, input_tokens, output_tokens, cost_usd, seconds"
_CHUNK = 500


def default_cache_path() -> Path:
    """``$COSA_CACHE_DIR/judge_cache.sqlite``, else ``~/.cache/cosa-eval/judge_cache.sqlite``."""
    return cache_dir() / CACHE_FILE


def request_key(**identity: Any) -> str:
    """sha256 of a canonical JSON of everything that determines a judge output."""
    blob = json.dumps(identity, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def is_cacheable(response: JudgeResponse) -> bool:
    """An answer, or a failure that a retry would repeat."""
    if response.failure is None:
        return response.text is not None or bool(response.choice_probs)
    return response.failure in CACHED_FAILURES


class JudgeCache:
    """SQLite store of judge answers keyed by request hash; safe to share between processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise CosaError(f"judge cache {self.path}: cannot open ({exc}); pass --cache PATH "
                            f"or set {CACHE_ENV} to a writable folder") from None

    def get_many(self, keys: Iterable[str]) -> dict[str, JudgeResponse]:
        """Stored answers for the keys that have one."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, JudgeResponse] = {}
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i:i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(f"SELECT {_COLUMNS} FROM answers WHERE key IN ({marks})", chunk):
                found[row[0]] = _response_of(row)
        return found

    def put(self, key: str, rubric: str, response: JudgeResponse) -> bool:
        """Store one answer and commit at once; returns False for an uncacheable failure."""
        if not is_cacheable(response):
            return False
        probs = json.dumps(response.choice_probs) if response.choice_probs else None
        self._db.execute(
            f"INSERT OR REPLACE INTO answers ({_COLUMNS}, created) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (key, rubric, response.text, probs, response.failure, response.detail, response.input_tokens,
             response.output_tokens, response.cost_usd, response.seconds, time.time()))
        return True

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def items(self) -> Iterator[tuple[str, str, JudgeResponse]]:
        """Every stored (key, rubric, answer), e.g. to re-parse with a newer parser."""
        for row in self._db.execute(f"SELECT {_COLUMNS} FROM answers ORDER BY created"):
            yield row[0], row[1], _response_of(row)

    def close(self) -> None:
        """Close the database (every answer is already committed)."""
        self._db.close()

    def __enter__(self) -> "JudgeCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _response_of(row: tuple) -> JudgeResponse:
    _key, _rubric, text, probs, failure, detail, tokens_in, tokens_out, cost, seconds = row
    return JudgeResponse(text=text, choice_probs=json.loads(probs) if probs else None, failure=failure,
                         detail=detail, input_tokens=tokens_in, output_tokens=tokens_out,
                         cost_usd=cost, seconds=seconds, extra={"cached": True})
