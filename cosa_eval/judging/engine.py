"""The one judging engine, used inside lm_eval runs and by ``cosa-eval judge`` alike.

Per sample it asks the helpfulness rubric and the safety rubric (compliance for cosapien,
categories for cosalign_test). Cached answers are reused; the rest go to the backend in one
concurrent batch; unparseable answers are re-asked; every failure is recorded with its kind.
"""
from __future__ import annotations

import asyncio
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar

from ..errors import CosaError
from ..types import JudgedRecord, Sample
from .backends.base import JudgeRequest, JudgeResponse
from .cache import JudgeCache, default_cache_path
from .judge import Judge, load_judge, safety_rubric
from .parsers import Parsed, parse_output
from .pricing import EXPECTED_OUTPUT_TOKENS, cost_usd, estimate_tokens

T = TypeVar("T")
_LOOKUP_CHUNK = 2000     # jobs rendered and looked up at a time, so cached runs stay small
_POLL_S = 0.2            # how often a run waiting on another run's claims looks for their answers


@dataclass
class _Job:
    """One rubric for one sample, across its attempts."""

    index: int
    rubric: str
    attempt: int = 0
    response: JudgeResponse | None = None
    parsed: Parsed | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class RunStats:
    """What one engine run did: calls sent and reused, tokens and money spent now."""

    judgments: int = 0
    sent: int = 0
    cached: int = 0
    reasked: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)


@dataclass
class Estimate:
    """A dry run's forecast: calls not in the cache, their tokens and cost (None = price unknown)."""

    judge: str
    judgments: int
    cached: int
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None

    def summary(self) -> str:
        """One line for the terminal."""
        cost = "unknown (no prices for this model)" if self.cost_usd is None else f"${self.cost_usd:.2f}"
        return (f"dry run with judge {self.judge}: {self.judgments} judgments, {self.cached} cached, "
                f"{self.calls} calls to make, ~{self.input_tokens:,} input + ~{self.output_tokens:,} "
                f"output tokens, estimated cost {cost} (re-asks not included)")


@dataclass
class JudgingRun:
    """Records in sample order, plus the run's accounting."""

    records: list[JudgedRecord]
    stats: RunStats


def _jobs(samples: list[Sample]) -> list[_Job]:
    return [_Job(index=index, rubric=rubric) for index, sample in enumerate(samples)
            for rubric in ("helpfulness", safety_rubric(sample))]


def _request(judge: Judge, job: _Job, samples: list[Sample]) -> JudgeRequest:
    """The job's request at its current attempt (rendered on demand: prompts are not kept)."""
    previous = job.response.text if job.response else None
    base = judge.messages(job.rubric, samples[job.index])
    return judge.request(job.rubric, base, job.attempt, previous)


def _run_coroutine(factory: Callable[[], Awaitable[T]]) -> T:
    """``asyncio.run``, or in a helper thread when the caller already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = asyncio.run(factory())
        except BaseException as exc:  # handed to the caller's thread below
            box["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def estimate(samples: list[Sample], judge: Judge | str, *, cache_path: str | Path | None = None) -> Estimate:
    """Calls, tokens and cost a run would need, calling nothing."""
    judge = load_judge(judge) if isinstance(judge, (str, Path)) else judge
    requests = [_request(judge, job, samples) for job in _jobs(samples)]
    path = Path(cache_path) if cache_path else default_cache_path()
    hits: dict[str, JudgeResponse] = {}
    if path.exists():
        with JudgeCache(path) as cache:
            hits = cache.get_many(r.key for r in requests)
    todo = list({r.key: r for r in requests if r.key not in hits}.values())    # identical ones go once
    tokens_in = sum(estimate_tokens("".join(m["content"] for m in r.messages)) for r in todo)
    tokens_out = sum(1 if r.choices else EXPECTED_OUTPUT_TOKENS[r.rubric] for r in todo)
    prices = judge.prices
    cached = sum(r.key in hits for r in requests)
    return Estimate(judge=judge.name, judgments=len(requests), cached=cached,
                    calls=len(todo), input_tokens=tokens_in, output_tokens=tokens_out,
                    cost_usd=None if prices is None else cost_usd(prices, tokens_in, tokens_out))


class _Sender:
    """Sends requests through the backend with bounded concurrency, a budget and a progress bar.

    Each key is claimed in the cache before it is sent, so runs sharing one cache send it once (a
    run waits for the keys another run holds, and takes over those it gives up or leaves with a dead
    lease). A budget reserves each call's estimated cost before sending, so calls in flight cannot
    overshoot it by more than one call.
    """

    def __init__(self, judge: Judge, cache: JudgeCache, stats: RunStats, max_cost: float | None,
                 progress: bool) -> None:
        if max_cost is not None and not max_cost >= 0:       # also NaN, which no spend ever reaches
            raise CosaError(f"the cost budget must be a number of USD >= 0, got {max_cost}")
        self.judge, self.cache, self.stats, self.max_cost = judge, cache, stats, max_cost
        self.progress = progress
        self.is_ready = False
        self.reserved = 0.0                   # estimated cost of the calls in flight
        self.waiting: list[JudgeRequest] = []  # claimed by another run: its answer is awaited

    def _account(self, response: JudgeResponse) -> None:
        if not response.cost_usd and self.judge.prices is not None:
            response.cost_usd = cost_usd(self.judge.prices, response.input_tokens, response.output_tokens)
        self.stats.input_tokens += response.input_tokens
        self.stats.output_tokens += response.output_tokens
        self.stats.cost_usd += response.cost_usd

    def _estimate(self, chunk: list[JudgeRequest]) -> float:
        """What a chunk may cost: its estimated input tokens, and output up to ``max_tokens``."""
        cap = self.judge.config.sampling.get("max_tokens")
        return sum(cost_usd(self.judge.prices, estimate_tokens("".join(m["content"] for m in r.messages)),
                            1 if r.choices else cap or EXPECTED_OUTPUT_TOKENS.get(r.rubric, 320))
                   for r in chunk)

    async def _reserve(self, cost: float, settled: asyncio.Condition) -> bool:
        """Wait until the budget has room beside the calls in flight, then reserve ``cost``;
        False once the budget is spent."""
        if self.max_cost is None:
            return True
        async with settled:
            while self.stats.cost_usd + self.reserved >= self.max_cost:
                if self.stats.cost_usd >= self.max_cost:
                    return False
                await settled.wait()
            self.reserved += cost
            return True

    def _take(self, requests: list[JudgeRequest], done: Callable, bar: Any) -> list[JudgeRequest]:
        """Claim requests: deliver those answered meanwhile, queue those another run holds,
        return those now ours to send."""
        mine, answered = self.cache.claim(r.key for r in requests)
        ours = set(mine)
        for request in requests:
            if request.key in answered:
                self.stats.cached += 1
                done(request, answered[request.key])
                bar.update(1)
            elif request.key not in ours:
                self.waiting.append(request)
        return [r for r in requests if r.key in ours]

    async def _send(self, backend: Any, chunk: list[JudgeRequest], settled: asyncio.Condition,
                    done: Callable[[JudgeRequest, JudgeResponse], None], bar: Any) -> None:
        """Send claimed requests within the budget; cache, account and deliver each answer."""
        cost = self._estimate(chunk) if self.max_cost is not None else 0.0
        if await self._reserve(cost, settled):
            try:
                responses = await _complete(backend, chunk)
                self.stats.sent += len(chunk)
                for request, response in zip(chunk, responses):
                    self._account(response)
                    self.cache.put(request.key, request.rubric, response)    # releases the claim
            finally:
                async with settled:
                    self.reserved -= cost
                    settled.notify_all()
        else:
            detail = f"budget of ${self.max_cost:.2f} spent before this call was sent"
            responses = [JudgeResponse(failure="budget_exceeded", detail=detail) for _ in chunk]
            self.cache.release(r.key for r in chunk)
        for request, response in zip(chunk, responses):
            done(request, response)
        bar.update(len(chunk))

    async def _chunk(self, backend: Any, chunk: list[JudgeRequest], gate: asyncio.Semaphore,
                     settled: asyncio.Condition, done: Callable, bar: Any, *, claimed: bool = False) -> None:
        async with gate:
            mine = chunk if claimed else self._take(chunk, done, bar)
            if mine:
                await self._send(backend, mine, settled, done, bar)

    async def _all(self, requests: list[JudgeRequest], done: Callable, bar: Any) -> None:
        backend = self.judge.backend()
        size = self.judge.config.batch_size
        gate, settled = asyncio.Semaphore(self.judge.concurrency), asyncio.Condition()
        self.waiting = []

        def batches(items: list[JudgeRequest]) -> list[list[JudgeRequest]]:
            return [items[i:i + size] for i in range(0, len(items), size)]

        try:
            with self.cache.leases_kept():
                await asyncio.gather(*(self._chunk(backend, c, gate, settled, done, bar) for c in batches(requests)))
                while self.waiting:      # another run's keys: wait for its answers, or take them over
                    bar.set_postfix_str(f"{len(self.waiting)} being answered by another run", refresh=False)
                    await asyncio.sleep(_POLL_S)
                    held, self.waiting = self.waiting, []
                    freed = self._take(held, done, bar)
                    await asyncio.gather(*(self._chunk(backend, c, gate, settled, done, bar, claimed=True)
                                           for c in batches(freed)))
        finally:
            closer = getattr(backend, "aclose", None)      # optional: release per-loop clients
            if closer is not None:
                await closer()

    def send(self, requests: list[JudgeRequest], done: Callable[[JudgeRequest, JudgeResponse], None],
             label: str) -> None:
        """Answer every request, calling ``done`` as each answer arrives (after caching it)."""
        if not requests:
            return
        if not self.is_ready:
            self.judge.check_ready()
            self.is_ready = True
        from tqdm.auto import tqdm
        with tqdm(total=len(requests), desc=label, unit="call", disable=not self.progress,
                  file=sys.stderr, dynamic_ncols=True) as bar:
            _run_coroutine(lambda: self._all(requests, done, bar))


def answer_requests(judge: Judge, cache: JudgeCache, requests: list[JudgeRequest], *, label: str,
                    progress: bool = True, stats: RunStats | None = None) -> dict[str, JudgeResponse]:
    """Answers by key to any rubric requests (e.g. the training pipeline's): cached ones first,
    the rest sent once each through the judge's backend and cached as they arrive."""
    stats = stats if stats is not None else RunStats()
    unique = list({r.key: r for r in requests}.values())
    answers = cache.get_many(r.key for r in unique)
    stats.cached += len(answers)
    missing = [r for r in unique if r.key not in answers]
    _Sender(judge, cache, stats, None, progress).send(
        missing, lambda request, response: answers.__setitem__(request.key, response), label)
    return answers


async def _complete(backend: Any, chunk: list[JudgeRequest]) -> list[JudgeResponse]:
    """The backend's answers; a backend that raises or miscounts becomes api_error, not a crash."""
    try:
        responses = await backend.complete(chunk)
    except CosaError:
        raise
    except Exception as exc:  # a third-party backend broke its "never raise" promise
        return [JudgeResponse(failure="api_error", detail=f"backend raised {type(exc).__name__}: {exc}")
                for _ in chunk]
    if not isinstance(responses, list) or len(responses) != len(chunk):
        got = len(responses) if isinstance(responses, list) else type(responses).__name__
        return [JudgeResponse(failure="api_error", detail=f"backend returned {got} answers for "
                              f"{len(chunk)} requests") for _ in chunk]
    return responses


def _apply(job: _Job, response: JudgeResponse) -> None:
    job.input_tokens += response.input_tokens
    job.output_tokens += response.output_tokens
    job.cost_usd += response.cost_usd
    if response.failure:
        job.parsed = Parsed(failure=response.failure, detail=response.detail)
    else:
        job.parsed = parse_output(job.rubric, response.text, response.choice_probs)
    job.response = None if job.parsed.is_valid else response     # kept for a re-ask or the record


def _lookup(jobs: list[_Job], judge: Judge, cache: JudgeCache, samples: list[Sample],
            ) -> tuple[list[JudgeRequest], dict[str, list[_Job]]]:
    """Apply cached answers chunk by chunk; return the distinct uncached requests and their jobs."""
    misses: list[JudgeRequest] = []
    waiting: dict[str, list[_Job]] = {}
    for start in range(0, len(jobs), _LOOKUP_CHUNK):
        chunk = [(job, _request(judge, job, samples)) for job in jobs[start:start + _LOOKUP_CHUNK]]
        hits = cache.get_many(request.key for _, request in chunk)
        for job, request in chunk:
            if request.key in hits:
                _apply(job, hits[request.key])
                continue
            if request.key not in waiting:
                misses.append(request)
            waiting.setdefault(request.key, []).append(job)
    return misses, waiting


def _run_rounds(jobs: list[_Job], judge: Judge, cache: JudgeCache, sender: _Sender,
                samples: list[Sample]) -> None:
    """First attempts, then re-asks of unparseable answers; identical requests are sent once."""
    stats, pending = sender.stats, jobs
    for attempt in range(judge.config.reasks + 1):
        if not pending:
            break
        for job in pending:
            job.attempt = attempt
        misses, waiting = _lookup(pending, judge, cache, samples)
        stats.cached += len(pending) - sum(len(group) for group in waiting.values())
        label = f"judging with {judge.name}" + (f" (re-ask {attempt})" if attempt else "")
        sender.send(misses, lambda req, resp: [_apply(j, resp) for j in waiting[req.key]], label)
        pending = [j for j in pending if j.parsed is not None and j.parsed.failure == "unparseable"]
        if attempt < judge.config.reasks:
            stats.reasked += len(pending)


def _record(sample: Sample, jobs: list[_Job], judge: Judge) -> JudgedRecord:
    """A judged record: verdict values, or the first failure with every failing rubric's detail."""
    values = {job.rubric: job.parsed.value for job in jobs if job.parsed and job.parsed.is_valid}
    failed = [job for job in jobs if job.parsed is None or not job.parsed.is_valid]
    extra: dict[str, Any] = {
        "judge_backend": judge.config.backend, "judge_model": judge.config.model,
        "attempts": {job.rubric: job.attempt + 1 for job in jobs},
        "input_tokens": sum(j.input_tokens for j in jobs), "output_tokens": sum(j.output_tokens for j in jobs),
        "cost_usd": round(sum(j.cost_usd for j in jobs), 8),
    }
    if failed:
        extra["raw"] = {j.rubric: j.response.text if j.response else None for j in failed}
    return JudgedRecord(
        sample=sample, judge=judge.name, rubric_hashes=judge.rubric_hashes(sample),
        rating=values.get("helpfulness"), is_compliant=values.get("compliance"),
        categories=values.get("categories"),
        failure=failed[0].parsed.failure if failed and failed[0].parsed else ("api_error" if failed else None),
        failure_detail="; ".join(f"{j.rubric}: {j.parsed.detail if j.parsed else 'no answer'}" for j in failed),
        extra=extra)


def judge_run(samples: list[Sample], judge: Judge | str, *, cache_path: str | Path | None = None,
              max_cost: float | None = None, progress: bool = True) -> JudgingRun:
    """Judge samples; returns records in sample order and the run's accounting."""
    judge = load_judge(judge) if isinstance(judge, (str, Path)) else judge
    if max_cost is not None and judge.prices is None:
        raise CosaError(f"a cost budget needs token prices, but judge {judge.name} ({judge.config.model}) "
                        f"has none; add 'prices: {{input: USD, output: USD}}' per 1M tokens to {judge.config.path}")
    if max_cost is not None and max_cost < 0:
        raise CosaError(f"the cost budget must be >= 0 USD, got {max_cost}")
    jobs = _jobs(samples)
    stats = RunStats(judgments=len(jobs))
    with JudgeCache(cache_path or default_cache_path()) as cache:
        _run_rounds(jobs, judge, cache, _Sender(judge, cache, stats, max_cost, progress), samples)
    per_sample: list[list[_Job]] = [[] for _ in samples]
    for job in jobs:
        per_sample[job.index].append(job)
    records = [_record(sample, own, judge) for sample, own in zip(samples, per_sample)]
    for record in records:
        if record.failure:
            stats.failures[record.failure] = stats.failures.get(record.failure, 0) + 1
    return JudgingRun(records=records, stats=stats)


def judge_samples(samples: list[Sample], judge: Judge | str, *, cache_path: str | Path | None = None,
                  max_cost: float | None = None, dry_run: bool = False,
                  progress: bool = True) -> list[JudgedRecord]:
    """Judge samples (the engine behind lm_eval runs and the CLI); a dry run prints an estimate
    on stderr and returns no records."""
    if dry_run:
        print(estimate(samples, judge, cache_path=cache_path).summary(), file=sys.stderr)
        return []
    return judge_run(samples, judge, cache_path=cache_path, max_cost=max_cost, progress=progress).records
