"""The one judging loop, used inside lm_eval runs, by ``cosa-eval judge``, juries and training.

``JudgeSession.ask(rubric, items)`` is the only way a question reaches a judge: it renders each
item's request, keys it, takes cached answers, sends the rest in one concurrent batch, parses
them, and re-asks unreadable ones with the rubric's stricter re-ask turns. ``judge_run`` asks the
benchmark's two rubrics per sample (helpfulness, and compliance or categories by schema) in one
such call; every failure is recorded with its kind.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import CosaError
from ..types import JudgedRecord, Sample
from .backends.base import JudgeRequest, JudgeResponse
from .cache import JudgeCache, default_cache_path
from .judge import Judge, load_judge, safety_rubric, sample_item
from .parsers import Parsed
from .pricing import EXPECTED_OUTPUT_TOKENS, batch_prices, cost_usd, estimate_tokens
from .rubric import spec_of
from .sender import RunStats, Sender

_LOOKUP_CHUNK = 2000     # requests rendered and looked up at a time, so cached runs stay small


@dataclass
class Estimate:
    """A dry run's forecast: calls not in the cache, their tokens and cost (None = price unknown)."""

    judge: str
    judgments: int                        # responses: a judgment is one response's rubrics
    questions: int                        # rubric questions over all judgments
    cached: int                           # questions the cache answers
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    batch_cost_usd: float | None = None     # the same calls through a provider's Batch API

    def summary(self) -> str:
        """One line for the terminal."""
        cost = "unknown (no prices for this model)" if self.cost_usd is None else f"${self.cost_usd:.2f}"
        if self.batch_cost_usd is not None:
            cost += f" online, ${self.batch_cost_usd:.2f} with --batch"
        return (f"dry run with judge {self.judge}: {self.judgments} judgments ({self.questions} rubric "
                f"questions, {self.cached} of them cached), {self.calls} calls to make, ~{self.input_tokens:,} "
                f"input + ~{self.output_tokens:,} output tokens, estimated cost {cost} (re-asks not included)")


@dataclass
class JudgingRun:
    """Records in sample order, plus the run's accounting."""

    records: list[JudgedRecord]
    stats: RunStats


@dataclass(frozen=True)
class Verdict:
    """One question's outcome: the value (or typed failure) read with the judge's parser."""

    value: Any = None
    failure: str | None = None
    detail: str = ""
    attempts: int = 0
    raw: str | None = None                # the last answer's text when no verdict was read
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    parsers_disagree: bool = False        # the final and reference rules read the text differently
    answered_by: dict[str, str] | None = None   # the last answer's model and system_fingerprint, if reported

    @property
    def is_valid(self) -> bool:
        """A value was read (no failure)."""
        return self.failure is None


@dataclass
class _Job:
    """One question across its attempts; ``history`` holds the unreadable answers so far."""

    index: int
    rubric: str
    history: tuple[str, ...] = ()
    final: Parsed | None = None           # read with the final rules: decides re-asks
    reference: Parsed | None = None
    raw: str | None = None                # the last answer's text
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    answered_by: dict[str, str] | None = None


class JudgeSession:
    """One judge with its cache open; ``ask`` is the single judging loop."""

    def __init__(self, judge: Judge, *, cache_path: str | Path | None = None, max_cost: float | None = None,
                 progress: bool = True, batch: str | None = None) -> None:
        self.judge = judge
        self.stats = RunStats(parser=judge.config.parser)
        self.cache = JudgeCache(cache_path or default_cache_path())
        self._sender: Any = Sender(judge, self.cache, self.stats, max_cost, progress)
        if batch:                              # "wait" | "no-wait": the provider's Batch API
            from .batch import BatchSender
            self._sender = BatchSender(judge, self.cache, self.stats, max_cost, progress, wait=batch == "wait")

    def __enter__(self) -> "JudgeSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cache.close()

    def ask(self, rubric: str | Sequence[str], items: Sequence[Mapping[str, Any]]) -> list[Verdict]:
        """A verdict per item; ``rubric`` names the question for all items, or one per item."""
        rubrics = [rubric] * len(items) if isinstance(rubric, str) else list(rubric)
        if len(rubrics) != len(items):
            raise ValueError(f"{len(rubrics)} rubrics for {len(items)} items")
        self.judge.check_ready()               # the key holds what check_ready found answers
        identity = self.judge.identity()
        jobs = [_Job(index, name) for index, name in enumerate(rubrics)]
        self.stats.judgments += len(jobs)
        pending, reasks = jobs, self.judge.config.reasks
        for attempt in range(reasks + 1):
            if not pending:
                break
            misses, waiting = self._lookup(pending, items, identity)
            self.stats.cached += len(pending) - sum(len(group) for group in waiting.values())
            label = f"judging with {self.judge.name}" + (f" (re-ask {attempt})" if attempt else "")
            answers: list[tuple[JudgeRequest, JudgeResponse]] = []
            self._sender.send(misses, lambda request, response: answers.append((request, response)), label)
            for request, response in answers:   # parsed once the batch's event loop is done, so no answer
                for job in waiting[request.key]:  # stalls calls in flight (each parse reads <= 16 KiB anyway)
                    self._apply(job, response, items)
            pending = [job for job in pending if job.final is not None and job.final.failure == "unparseable"]
            if attempt < reasks:
                self.stats.reasked += len(pending)
                for job in pending:
                    job.history += (job.raw or "",)
        verdicts = [self._verdict(job) for job in jobs]
        self.stats.parser_disagreements += sum(v.parsers_disagree for v in verdicts)
        return verdicts

    def _lookup(self, jobs: list[_Job], items: Sequence[Mapping[str, Any]], identity: dict[str, str],
                ) -> tuple[list[JudgeRequest], dict[str, list[_Job]]]:
        """Apply cached answers chunk by chunk; return the distinct uncached requests and their jobs."""
        misses: list[JudgeRequest] = []
        waiting: dict[str, list[_Job]] = {}
        for start in range(0, len(jobs), _LOOKUP_CHUNK):
            chunk = [(job, self.judge.request(job.rubric, items[job.index], job.history, identity))
                     for job in jobs[start:start + _LOOKUP_CHUNK]]
            hits = self.cache.get_many(request.key for _, request in chunk)
            for job, request in chunk:
                hit = hits.get(request.key)
                if hit is not None:
                    self._apply(job, hit, items)
                    continue
                if request.key not in waiting:
                    misses.append(request)
                waiting.setdefault(request.key, []).append(job)
        return misses, waiting

    def _apply(self, job: _Job, response: JudgeResponse, items: Sequence[Mapping[str, Any]]) -> None:
        job.input_tokens += response.input_tokens
        job.output_tokens += response.output_tokens
        job.cost_usd += response.cost_usd
        if response.failure:
            job.final = job.reference = Parsed(failure=response.failure, detail=response.detail)
        else:
            spec, item = spec_of(job.rubric), items[job.index]
            quoted = self.judge.quoted(job.rubric, item)
            job.final = spec.parse(response.text, response.choice_probs, quoted, "final")
            job.reference = spec.parse(response.text, response.choice_probs, quoted, "reference")
        job.raw = response.text
        job.answered_by = ({"model": response.model, "system_fingerprint": response.system_fingerprint}
                           if response.model else None)

    def _verdict(self, job: _Job) -> Verdict:
        final = job.final or Parsed(failure="api_error", detail="no answer")
        reference = job.reference or final
        chosen = reference if self.judge.config.parser == "reference" else final
        return Verdict(value=chosen.value, failure=chosen.failure, detail=chosen.detail,
                       attempts=len(job.history) + 1, raw=job.raw if not chosen.is_valid else None,
                       input_tokens=job.input_tokens, output_tokens=job.output_tokens, cost_usd=job.cost_usd,
                       answered_by=job.answered_by, parsers_disagree=(final.value, final.failure) != (reference.value, reference.failure))


def _loaded(judge: Judge | str | Path) -> Judge:
    return load_judge(judge) if isinstance(judge, (str, Path)) else judge


def _questions(samples: list[Sample]) -> tuple[list[str], list[dict[str, str]]]:
    """The benchmark's two questions per sample: helpfulness, then the schema's safety rubric."""
    rubrics, items = [], []
    for sample in samples:
        item = sample_item(sample)
        rubrics += ["helpfulness", safety_rubric(sample)]
        items += [item, item]
    return rubrics, items


def estimate(samples: list[Sample], judge: Judge | str, *, cache_path: str | Path | None = None) -> Estimate:
    """Calls, tokens and cost a run would need, calling nothing (keys use the configured identity)."""
    judge = _loaded(judge)
    identity = judge.identity()
    rubrics, items = _questions(samples)
    requests = [judge.request(rubric, item, identity=identity) for rubric, item in zip(rubrics, items)]
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
    return Estimate(judge=judge.name, judgments=len(samples), questions=len(requests), cached=cached,
                    calls=len(todo), input_tokens=tokens_in, output_tokens=tokens_out,
                    cost_usd=None if prices is None else cost_usd(prices, tokens_in, tokens_out),
                    batch_cost_usd=None if prices is None else cost_usd(batch_prices(prices), tokens_in, tokens_out))


class _Collector:
    """Stands in for the sender: keeps the requests a run would send, and answers none."""

    def __init__(self) -> None:
        self.requests: list[JudgeRequest] = []

    def send(self, requests: list[JudgeRequest], done: Any, label: str) -> None:
        self.requests.extend(requests)


def pending_requests(samples: list[Sample], judge: Judge | str, *,
                     cache_path: str | Path | None = None) -> list[JudgeRequest]:
    """What a run would send next, sending nothing: the questions the cache cannot answer, and
    the re-asks of cached answers that could not be read."""
    judge = _loaded(judge)
    rubrics, items = _questions(samples)
    collector = _Collector()
    with JudgeSession(judge, cache_path=cache_path, progress=False) as session:
        session._sender = collector
        if items:
            session.ask(rubrics, items)
    return collector.requests


def _record(sample: Sample, verdicts: dict[str, Verdict], judge: Judge) -> JudgedRecord:
    """A judged record: verdict values, or the first failure with every failing rubric's detail."""
    values = {rubric: v.value for rubric, v in verdicts.items() if v.is_valid}
    failed = {rubric: v for rubric, v in verdicts.items() if not v.is_valid}
    identity = judge.identity()
    extra: dict[str, Any] = {
        "judge_backend": judge.config.backend, "judge_model": judge.config.model,
        "judge_endpoint": identity.get("endpoint", ""), "judge_identity": identity,
        "parser": judge.config.parser, "attempts": {rubric: v.attempts for rubric, v in verdicts.items()},
        "input_tokens": sum(v.input_tokens for v in verdicts.values()),
        "output_tokens": sum(v.output_tokens for v in verdicts.values()),
        "cost_usd": round(sum(v.cost_usd for v in verdicts.values()), 8),
    }
    answered = {rubric: v.answered_by for rubric, v in verdicts.items() if v.answered_by}
    if answered:
        extra["answered_by"] = answered
    disagree = [rubric for rubric, v in verdicts.items() if v.parsers_disagree]
    if disagree:
        extra["parsers_disagree"] = disagree
    if failed:
        extra["raw"] = {rubric: v.raw for rubric, v in failed.items()}
    return JudgedRecord(
        sample=sample, judge=judge.name, rubric_hashes=judge.rubric_hashes(sample),
        rating=values.get("helpfulness"), is_compliant=values.get("compliance"),
        categories=values.get("categories"),
        failure=next(iter(failed.values())).failure if failed else None,
        failure_detail="; ".join(f"{rubric}: {v.detail}" for rubric, v in failed.items()),
        extra=extra)


def judge_run(samples: list[Sample], judge: Judge | str, *, cache_path: str | Path | None = None,
              max_cost: float | None = None, progress: bool = True, batch: str | None = None) -> JudgingRun:
    """Judge samples; returns records in sample order and the run's accounting. ``batch``: "wait"
    or "no-wait" sends through the provider's Batch API (``batch.py``)."""
    judge = _loaded(judge)
    if max_cost is not None and judge.prices is None:
        raise CosaError(f"a cost budget needs token prices, but judge {judge.name} ({judge.config.model}) "
                        f"has none; add 'prices: {{input: USD, output: USD}}' per 1M tokens to {judge.config.path}")
    rubrics, items = _questions(samples)
    with JudgeSession(judge, cache_path=cache_path, max_cost=max_cost, progress=progress, batch=batch) as session:
        verdicts = session.ask(rubrics, items) if items else []
    records = [_record(sample, dict(zip(rubrics[2 * i:2 * i + 2], verdicts[2 * i:2 * i + 2])), judge)
               for i, sample in enumerate(samples)]
    for record in records:
        if record.failure:
            session.stats.failures[record.failure] = session.stats.failures.get(record.failure, 0) + 1
    return JudgingRun(records=records, stats=session.stats)


def judge_samples(samples: list[Sample], judge: Judge | str, *, cache_path: str | Path | None = None,
                  max_cost: float | None = None, progress: bool = True) -> list[JudgedRecord]:
    """Judge samples: the records of ``judge_run``."""
    return judge_run(samples, judge, cache_path=cache_path, max_cost=max_cost, progress=progress).records
