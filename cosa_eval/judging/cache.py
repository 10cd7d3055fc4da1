"""A persistent, content-addressed store of judge answers (SQLite in WAL mode).

The key is a hash of what determines the judge's output (backend, model, sampling, rubric hash,
messages, attempt) and never of timeouts, retries or concurrency. Every answer is committed as it
arrives (those arriving in one event-loop turn share a transaction), so a killed run loses nothing.
Raw text is stored, so outputs can be re-parsed for free.

Runs sharing one cache send each request once: a sender *claims* a key (a row in ``claims`` with
its owner and a lease, taken in one transaction) before sending it; another run that finds the key
claimed waits for the answer. A live owner renews its leases; a crashed owner's lease runs out and
the key may be taken over; a failure that is not cached releases the claim. Keys in a provider
batch (tables ``batches`` and ``batch_keys``, see ``batch_ledger.py``) are never claimed: their
answers come from the batch.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from .. import CACHE_ENV, cache_dir
from ..errors import CosaError
from .backends.base import JudgeResponse

CACHE_FILE = "judge_cache.sqlite"
# Failures worth keeping: the same request would fail the same way. api_error is always retried.
CACHED_FAILURES = frozenset({"truncated", "judge_refused"})
LEASE_S = 60.0            # a claim not renewed for this long belongs to a dead run: anyone may take it
_SCHEMA = ("""
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
    created REAL NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    system_fingerprint TEXT NOT NULL DEFAULT ''
)""", """
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires REAL NOT NULL
)""", """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    expires REAL NOT NULL,
    file_id TEXT,
    batch_id TEXT,
    created REAL NOT NULL
)""", """
CREATE TABLE IF NOT EXISTS batch_keys (
    key TEXT PRIMARY KEY,
    batch INTEGER NOT NULL
)""")
# Columns added since the first schema: a cache written before them gains them, empty, when opened.
_ADDED_COLUMNS = {"model": "TEXT NOT NULL DEFAULT ''", "system_fingerprint": "TEXT NOT NULL DEFAULT ''"}
_COLUMNS = ("key, rubric, text, choice_probs, failure, detail, input_tokens, output_tokens, cost_usd, seconds, "
            "model, system_fingerprint")
_MARKS = ",".join("?" * (_COLUMNS.count(",") + 2))      # the columns and ``created``
_CHUNK = 500
_DAMAGED = ("malformed", "not a database", "corrupt", "encrypted")


def default_cache_path() -> Path:
    """``$COSA_CACHE_DIR/judge_cache.sqlite``, else ``~/.cache/cosa-eval/judge_cache.sqlite``."""
    return cache_dir() / CACHE_FILE


def canonical(value: Any) -> str:
    """Canonical JSON (sorted keys, compact, non-ASCII kept): what cache keys hash."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class KeyFrame:
    """A cache key with one field left open: the sha256 of the canonical JSON of everything that
    determines a judge output, for any value of ``hole`` (given already ``canonical``). The same
    digest as encoding the whole at once; the fixed fields are encoded once, not once per request."""

    def __init__(self, hole: str, **identity: Any) -> None:
        before = {name: identity[name] for name in sorted(identity) if name < hole}
        after = {name: identity[name] for name in sorted(identity) if name > hole}
        self._before = "{" + (canonical(before)[1:-1] + "," if before else "") + canonical(hole) + ":"
        self._after = ("," + canonical(after)[1:-1] if after else "") + "}"

    def key(self, encoded: str) -> str:
        """The key when the open field's canonical JSON is ``encoded``."""
        return hashlib.sha256((self._before + encoded + self._after).encode("utf-8")).hexdigest()


def is_empty(response: JudgeResponse) -> bool:
    """An answer with no text and no scores: a transport failure, never an answer."""
    return response.failure is None and not response.choice_probs and not (response.text or "").strip()


def is_cacheable(response: JudgeResponse) -> bool:
    """An answer (not an empty one), or a failure that a retry would repeat."""
    if response.failure is None:
        return not is_empty(response)
    return response.failure in CACHED_FAILURES


def _stored(rows: Iterable[tuple]) -> Iterator[tuple[str, JudgeResponse]]:
    """(key, answer) of stored rows; an empty answer an older version stored counts as none."""
    for row in rows:
        response = _response_of(row)
        if not is_empty(response):
            yield row[0], response


def _chunks(keys: list[str]) -> Iterator[tuple[list[str], str]]:
    for i in range(0, len(keys), _CHUNK):
        chunk = keys[i:i + _CHUNK]
        yield chunk, ",".join("?" * len(chunk))


class JudgeCache:
    """SQLite store of judge answers keyed by request hash; safe to share between processes."""

    def __init__(self, path: str | Path, *, lease_s: float | None = None) -> None:
        self.path = Path(path).expanduser()
        self.lease_s = lease_s or LEASE_S
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        with self._guard("open"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._connect()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        with self._transaction("set up"):
            for statement in _SCHEMA:
                self._db.execute(statement)
            present = {row[1] for row in self._db.execute("PRAGMA table_info(answers)")}
            for name, kind in _ADDED_COLUMNS.items():
                if name not in present:
                    self._db.execute(f"ALTER TABLE answers ADD COLUMN {name} {kind}")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """SQLite errors as one-line CosaErrors that name the file and what to do."""
        try:
            yield
        except (sqlite3.DatabaseError, OSError) as exc:
            if isinstance(exc, sqlite3.DatabaseError) and any(word in str(exc).lower() for word in _DAMAGED):
                raise CosaError(
                    f"judge cache {self.path} is damaged ({exc}); move it aside (mv '{self.path}' "
                    f"'{self.path}.damaged') and re-run: its answers will be asked again") from None
            raise CosaError(f"judge cache {self.path}: cannot {action} ({exc}); use a writable local "
                            f"folder (set {CACHE_ENV}, or pass another cache file)") from None

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._guard(action):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def get_many(self, keys: Iterable[str]) -> dict[str, JudgeResponse]:
        """Stored answers for the keys that have one."""
        found: dict[str, JudgeResponse] = {}
        with self._guard("read"):
            for chunk, marks in _chunks(list(dict.fromkeys(keys))):
                rows = self._db.execute(f"SELECT {_COLUMNS} FROM answers WHERE key IN ({marks})", chunk)
                found.update(_stored(rows))
        return found

    def claim(self, keys: Iterable[str]) -> tuple[list[str], dict[str, JudgeResponse]]:
        """Claim every key nobody else holds a live lease on, in one transaction; returns the keys
        now ours and the answers stored meanwhile (keys in neither are another run's to answer)."""
        keys = list(dict.fromkeys(keys))
        answered: dict[str, JudgeResponse] = {}
        holders: dict[str, str] = {}
        batched: set[str] = set()          # in a provider batch: its answer comes from there
        now = time.time()
        with self._transaction("claim requests") as db:
            for chunk, marks in _chunks(keys):
                rows = db.execute(f"SELECT {_COLUMNS} FROM answers WHERE key IN ({marks})", chunk)
                answered.update(_stored(rows))
                holders.update(db.execute(
                    f"SELECT key, owner FROM claims WHERE key IN ({marks}) AND owner != ? AND expires > ?",
                    [*chunk, self.owner, now]))
                batched.update(row[0] for row in db.execute(f"SELECT key FROM batch_keys WHERE key IN ({marks})", chunk))
            alive = {owner: _is_alive(owner) for owner in set(holders.values())}
            held = {key for key, owner in holders.items() if alive[owner]} | batched
            mine = [key for key in keys if key not in answered and key not in held]
            db.executemany("INSERT OR REPLACE INTO claims (key, owner, expires) VALUES (?,?,?)",
                           [(key, self.owner, now + self.lease_s) for key in mine])
        return mine, answered

    def release(self, keys: Iterable[str]) -> None:
        """Give up this run's claims on keys it will not answer (another run may send them)."""
        with self._guard("release claims"):
            for chunk, marks in _chunks(list(keys)):
                self._db.execute(f"DELETE FROM claims WHERE owner = ? AND key IN ({marks})", [self.owner, *chunk])

    @contextmanager
    def leases_kept(self) -> Iterator[None]:
        """Renew this run's leases from a helper thread (own connection) while the block runs, so a
        slow call, or an event loop busy with a local model, never looks like a dead run."""
        stop = threading.Event()

        def renew() -> None:
            db = self._connect()
            try:
                while not stop.wait(self.lease_s / 4):
                    for table in ("claims", "batches"):
                        db.execute(f"UPDATE {table} SET expires = ? WHERE owner = ?",
                                   (time.time() + self.lease_s, self.owner))
            except sqlite3.Error:
                pass         # the main connection reports problems with the file; leases then run out
            finally:
                db.close()

        thread = threading.Thread(target=renew, name="cosa-cache-leases", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def put(self, key: str, rubric: str, response: JudgeResponse) -> bool:
        """Store one answer (see ``put_many``); False when it is not cacheable."""
        return self.put_many([(key, rubric, response)]) == 1

    def put_many(self, answers: list[tuple[str, str, JudgeResponse]]) -> int:
        """Store (key, rubric, answer)s in one transaction, committed at once, ending the claims on
        their keys; uncacheable failures are not stored and their claims are released. Returns the
        number stored."""
        kept = [is_cacheable(response) for _key, _rubric, response in answers]
        rows = [(key, rubric, response.text, json.dumps(response.choice_probs) if response.choice_probs else None,
                 response.failure, response.detail, response.input_tokens, response.output_tokens,
                 response.cost_usd, response.seconds, response.model, response.system_fingerprint, time.time())
                for (key, rubric, response), keep in zip(answers, kept) if keep]
        with self._transaction("store answers") as db:
            db.executemany(f"INSERT OR REPLACE INTO answers ({_COLUMNS}, created) VALUES ({_MARKS})",
                           rows)
            db.executemany("DELETE FROM claims WHERE key = ? AND (owner = ? OR ?)",    # stored: anyone's claim
                           [(key, self.owner, keep) for (key, _rubric, _response), keep in zip(answers, kept)])
        return len(rows)

    def __len__(self) -> int:
        with self._guard("read"):
            return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def items(self) -> Iterator[tuple[str, str, JudgeResponse]]:
        """Every stored (key, rubric, answer), e.g. to re-parse with a newer parser."""
        with self._guard("read"):
            for row in self._db.execute(f"SELECT {_COLUMNS} FROM answers ORDER BY created"):
                yield row[0], row[1], _response_of(row)

    def close(self) -> None:
        """Release this run's remaining claims and batches, and close (every answer is already committed)."""
        try:
            self._db.execute("DELETE FROM claims WHERE owner = ?", (self.owner,))
            self._db.execute("UPDATE batches SET expires = 0 WHERE owner = ?", (self.owner,))   # any run collects them
        except sqlite3.Error:
            pass             # a damaged or vanished file: the lease runs out on its own
        self._db.close()

    def __enter__(self) -> "JudgeCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_alive(owner: str) -> bool:
    """Whether a claim's owner may still be running: yes, unless it is a process of this host that
    has gone (killed, crashed), whose claims are then free at once instead of when the lease ends."""
    host, pid, _ = owner.rsplit(":", 2)
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # another user's live process
        return True
    return True


def _response_of(row: tuple) -> JudgeResponse:
    _key, _rubric, text, probs, failure, detail, tokens_in, tokens_out, cost, seconds, model, fingerprint = row
    return JudgeResponse(text=text, choice_probs=json.loads(probs) if probs else None, failure=failure,
                         detail=detail, input_tokens=tokens_in, output_tokens=tokens_out, cost_usd=cost,
                         seconds=seconds, model=model, system_fingerprint=fingerprint, extra={"cached": True})
