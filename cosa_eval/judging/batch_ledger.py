"""The ledger of provider batches, kept in the judge cache: which keys went into which file and batch.

A batch is recorded with its keys, under this run's lease, *before* anything is uploaded; its file id
once uploaded, its batch id once created. Keys in the ledger are never claimed by another run
(online or batch), so no key goes out twice. A killed run's batches are adopted by the next run
(a dead owner, or a lease run out) and collected; a batch leaves the ledger once its answers are
in the cache (a run killed in between imports them again, the same answers).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .cache import JudgeCache, _chunks, _is_alive


@dataclass
class LedgerBatch:
    """One batch as recorded: its keys, and the provider's file and batch ids once known."""

    id: int
    created: float
    keys: list[str] = field(default_factory=list)
    file_id: str | None = None
    batch_id: str | None = None


class BatchLedger:
    """Reads and writes the ``batches`` and ``batch_keys`` tables of one open cache."""

    def __init__(self, cache: JudgeCache) -> None:
        self.cache = cache

    def record(self, keys: list[str]) -> LedgerBatch:
        """A new batch of keys this run has claimed (their claims end: the ledger holds them now)."""
        now, owner = time.time(), self.cache.owner
        with self.cache._transaction("record a batch") as db:
            number = db.execute("INSERT INTO batches (owner, expires, created) VALUES (?,?,?)",
                                (owner, now + self.cache.lease_s, now)).lastrowid
            db.executemany("INSERT INTO batch_keys (key, batch) VALUES (?,?)", [(key, number) for key in keys])
            db.executemany("DELETE FROM claims WHERE key = ? AND owner = ?", [(key, owner) for key in keys])
        return LedgerBatch(int(number or 0), now, list(keys))

    def note(self, batch: LedgerBatch, *, file_id: str | None = None, batch_id: str | None = None) -> None:
        """Record the uploaded file's id or the created batch's id (committed at once)."""
        batch.file_id, batch.batch_id = file_id or batch.file_id, batch_id or batch.batch_id
        with self.cache._transaction("record a batch"):
            self.cache._db.execute("UPDATE batches SET file_id = ?, batch_id = ? WHERE id = ?",
                                   (batch.file_id, batch.batch_id, batch.id))

    def adopt(self, keys: list[str]) -> tuple[list[LedgerBatch], set[str]]:
        """The batches holding any of ``keys`` that are now this run's (its own, and those of dead
        or expired runs, taken over), and the keys in batches a live run still holds."""
        now, owner = time.time(), self.cache.owner
        mine: list[LedgerBatch] = []
        held: set[str] = set()
        with self.cache._transaction("adopt batches") as db:
            numbers: set[int] = set()
            for chunk, marks in _chunks(keys):
                numbers.update(row[0] for row in db.execute(
                    f"SELECT DISTINCT batch FROM batch_keys WHERE key IN ({marks})", chunk))
            for number in sorted(numbers):
                row = db.execute("SELECT owner, expires, file_id, batch_id, created FROM batches WHERE id = ?",
                                 (number,)).fetchone()
                batch_keys = [r[0] for r in db.execute("SELECT key FROM batch_keys WHERE batch = ?", (number,))]
                if row is None:              # keys left by a batch forgotten half-way: free again
                    db.execute("DELETE FROM batch_keys WHERE batch = ?", (number,))
                    continue
                holder, expires, file_id, batch_id, created = row
                if holder != owner and expires > now and _is_alive(holder):
                    held.update(batch_keys)
                    continue
                db.execute("UPDATE batches SET owner = ?, expires = ? WHERE id = ?",
                           (owner, now + self.cache.lease_s, number))
                mine.append(LedgerBatch(number, created, batch_keys, file_id, batch_id))
        return mine, held

    def holding(self, keys: list[str]) -> set[str]:
        """Those of ``keys`` that are in a batch of the ledger."""
        found: set[str] = set()
        with self.cache._guard("read"):
            for chunk, marks in _chunks(keys):
                found.update(r[0] for r in self.cache._db.execute(
                    f"SELECT key FROM batch_keys WHERE key IN ({marks})", chunk))
        return found

    def forget(self, batch: LedgerBatch) -> None:
        """The batch is collected (its answers stored) or was never sent: its keys are free again."""
        with self.cache._transaction("forget a batch") as db:
            db.execute("DELETE FROM batch_keys WHERE batch = ?", (batch.id,))
            db.execute("DELETE FROM batches WHERE id = ?", (batch.id,))
