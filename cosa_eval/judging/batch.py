"""Provider batch mode (``cosa-eval judge --batch``): the OpenAI / Azure Batch API, the cache as ledger.

Stands in for the online sender: the requests the cache cannot answer are claimed, recorded in the
ledger (``batch_ledger.py``) and split into batch input files at the provider's limits (requests
and bytes per file); each line's ``custom_id`` is its cache key and its body the online body. A
file is uploaded and its id recorded; before a batch is created the provider's list is searched for
one already made from that file, so a run killed between create and record pays nothing twice. The
batches are polled (progress per batch on stderr); output and error files are read as online
answers are, stored in the cache, and the batch leaves the ledger. Expired, failed and cancelled
batches keep what completed; the rest comes back as ``api_error`` (a re-run resubmits it). The
engine's re-asks go out as a follow-up batch. ``wait=False`` (``--no-wait``) submits and raises
:class:`BatchesPending`; a re-run adopts the same batches and collects them. Calls go through the
one HTTP client (:mod:`.backends.http_client`), synchronously: this loop mostly waits.
"""
from __future__ import annotations

import json
import sys
import time
from typing import Any, Callable, Iterator

from ..errors import CosaError
from .backends.base import JudgeRequest, JudgeResponse
from .batch_ledger import BatchLedger, LedgerBatch
from .cache import JudgeCache
from .judge import Judge
from .offline import line_outcome, openai_format, request_line
from .pricing import batch_prices, fill_cost
from .sender import RunStats, estimated_cost

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
Done = Callable[[JudgeRequest, JudgeResponse], None]


class BatchesPending(Exception):
    """``--no-wait``: batches are at the provider, unfinished; a re-run collects them."""


class BatchSender:
    """The sender of ``JudgeSession`` in batch mode (same ``send`` contract as ``Sender``)."""

    def __init__(self, judge: Judge, cache: JudgeCache, stats: RunStats, max_cost: float | None,
                 progress: bool, *, wait: bool = True) -> None:
        self.judge, self.cache, self.stats, self.max_cost = judge, cache, stats, max_cost
        self.progress, self.wait = progress, wait
        self.ledger = BatchLedger(cache)
        self.reserved: dict[int, float] = {}        # ledger id -> estimated cost of a batch in flight
        self.shown: dict[str, str] = {}            # batch id -> last status shown

    def send(self, requests: list[JudgeRequest], done: Done, label: str) -> None:
        """Answer every request through batches, calling ``done`` as each answer is stored."""
        if not requests:
            return
        self.judge.check_ready()
        backend = openai_format(self.judge)
        client = backend.batch_client()
        todo = {r.key: r for r in requests}
        try:
            with self.cache.leases_kept():
                while todo:
                    if self._round(backend, client, todo, done) and todo:
                        time.sleep(backend.batch_poll_s)
        finally:
            client.close()

    def _round(self, backend: Any, client: Any, todo: dict[str, JudgeRequest], done: Done) -> bool:
        """Deliver what is answered, submit what is free, poll this run's batches once; True when
        something is still being answered."""
        for key, response in self.cache.get_many(list(todo)).items():
            self.stats.cached += 1
            done(todo.pop(key), response)
        mine, held = self.ledger.adopt(list(todo))
        taken = held.union(*(batch.keys for batch in mine))
        claimed, answered = self.cache.claim([key for key in todo if key not in taken])
        for key, response in answered.items():
            self.stats.cached += 1
            done(todo.pop(key), response)
        mine += self._plan(backend, [todo[key] for key in claimed], done, todo)
        running = [batch for batch in mine if not self._advance(backend, client, batch, todo, done)]
        if running and not self.wait:
            total = sum(len(batch.keys) for batch in running)
            raise BatchesPending(f"{total} requests are in {len(running)} provider batches still running; "
                                 "re-run the same command to collect them")
        return bool(running or held or todo)

    def _plan(self, backend: Any, requests: list[JudgeRequest], done: Done,
              todo: dict[str, JudgeRequest]) -> list[LedgerBatch]:
        """Record claimed requests as batches within the limits and the budget (at batch prices)."""
        planned = []
        for chunk in _split(backend, requests):
            cost = estimated_cost(self.judge, chunk, batch_prices(self.judge.prices)) if self.max_cost is not None else 0.0
            if self.max_cost is not None and self.stats.cost_usd + sum(self.reserved.values()) + cost > self.max_cost:
                self.cache.release(r.key for r in chunk)
                for request in chunk:
                    done(todo.pop(request.key), JudgeResponse(
                        failure="budget_exceeded", detail=f"budget of ${self.max_cost:.2f} reserved before this "
                        "batch was submitted"))
                continue
            batch = self.ledger.record([r.key for r in chunk])
            self.reserved[batch.id] = cost
            planned.append(batch)
        return planned

    def _advance(self, backend: Any, client: Any, batch: LedgerBatch, todo: dict[str, JudgeRequest],
                 done: Done) -> bool:
        """Upload, create or poll a batch, one step each as needed; True once it is collected."""
        if batch.file_id is None:
            if any(key not in todo for key in batch.keys):     # another run's requests, never sent: free them
                self.ledger.forget(batch)
                return True
            content = b"".join(_line(backend, todo[key]) for key in batch.keys)
            uploaded = client.files.create(file=("cosa-eval-batch.jsonl", content), purpose="batch")
            self.ledger.note(batch, file_id=uploaded.id)
        if batch.batch_id is None:
            made = _made_from(client, batch) or client.batches.create(
                input_file_id=batch.file_id, endpoint=backend.batch_url, completion_window="24h",
                metadata={"cosa_eval_ledger": str(batch.id)})
            self.ledger.note(batch, batch_id=made.id)
        info = client.batches.retrieve(batch.batch_id)
        self._show(info)
        if info.status not in TERMINAL:
            return False
        self._collect(backend, client, batch, info, todo, done)
        return True

    def _collect(self, backend: Any, client: Any, batch: LedgerBatch, info: Any,
                 todo: dict[str, JudgeRequest], done: Done) -> None:
        """Store a finished batch's answers, forget it, deliver every key of this run in it."""
        prices = batch_prices(self.judge.prices)
        answers: dict[str, JudgeResponse] = {}
        for file_id in (info.output_file_id, info.error_file_id):
            for number, row in _rows(client, file_id):
                key = row.get("custom_id")
                if key in todo and key in batch.keys:
                    status, body = line_outcome(row, f"batch {info.id} file {file_id}: line {number}")
                    answers[key] = backend.read_answer(todo[key], status, body)
                    fill_cost(answers[key], prices)
        why = _why_not_run(info)
        for key in batch.keys:
            if key in todo and key not in answers:
                answers[key] = JudgeResponse(failure="api_error", detail=why)
        self.cache.put_many([(key, todo[key].rubric, response) for key, response in answers.items()])
        self.ledger.forget(batch)
        self.reserved.pop(batch.id, None)
        for key, response in answers.items():
            self.stats.sent += 1
            self.stats.input_tokens += response.input_tokens
            self.stats.output_tokens += response.output_tokens
            self.stats.cost_usd += response.cost_usd
            done(todo.pop(key), response)

    def _show(self, info: Any) -> None:
        counts = getattr(info, "request_counts", None)
        text = info.status + (f" ({counts.completed}/{counts.total} done)" if counts else "")
        if self.progress and self.shown.get(info.id) != text:
            print(f"batch {info.id}: {text}", file=sys.stderr, flush=True)
        self.shown[info.id] = text


def _line(backend: Any, request: JudgeRequest) -> bytes:
    return (json.dumps(request_line(backend, request), ensure_ascii=False) + "\n").encode("utf-8")


def _split(backend: Any, requests: list[JudgeRequest]) -> Iterator[list[JudgeRequest]]:
    """Chunks of at most ``batch_max_requests`` requests and ``batch_max_bytes`` bytes each."""
    chunk: list[JudgeRequest] = []
    size = 0
    for request in requests:
        length = len(_line(backend, request))
        if length > backend.batch_max_bytes:
            raise CosaError(f"one request is {length:,} bytes, over the batch file limit of "
                            f"{backend.batch_max_bytes:,} (backend_options.batch_max_bytes); judge it online")
        if chunk and (len(chunk) >= backend.batch_max_requests or size + length > backend.batch_max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(request)
        size += length
    if chunk:
        yield chunk


def _made_from(client: Any, batch: LedgerBatch) -> Any:
    """A provider batch already created from this batch's file (by a run killed before recording it)."""
    for made in client.batches.list(limit=100):
        if made.created_at < batch.created - 3600:      # newest first: older ones cannot be ours
            return None
        if made.input_file_id == batch.file_id:
            return made
    return None


def _rows(client: Any, file_id: str | None) -> Iterator[tuple[int, dict[str, Any]]]:
    if not file_id:
        return
    for number, text in enumerate(client.files.content(file_id).content.decode("utf-8").splitlines(), 1):
        if text.strip():
            try:
                row = json.loads(text)
            except ValueError:
                raise CosaError(f"batch file {file_id}: line {number} is not JSON; the provider's output is "
                                "damaged: re-run to collect it again") from None
            yield number, row if isinstance(row, dict) else {}


def _why_not_run(info: Any) -> str:
    errors = getattr(info, "errors", None)
    data = getattr(errors, "data", None) or []
    said = "; ".join(str(getattr(e, "message", "")) for e in data if getattr(e, "message", ""))
    return (f"batch {info.id} {info.status} before this request was answered"
            + (f" ({said[:200]})" if said else "") + "; re-run to resubmit it")
