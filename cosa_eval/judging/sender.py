"""Sending judge requests: bounded concurrency, cache claims, a cost budget, a progress bar.

The engine's ``JudgeSession`` decides *what* to ask; this module only gets answers for requests
that are not cached yet, claiming each key first so runs sharing one cache send it once.
"""
from __future__ import annotations

import asyncio
import dataclasses
import math
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, TypeVar

from ..errors import CosaError
from .backends.base import JudgeRequest, JudgeResponse
from .cache import JudgeCache, is_empty
from .judge import Judge
from .pricing import EXPECTED_OUTPUT_TOKENS, cost_usd, estimate_tokens, fill_cost

T = TypeVar("T")
R = TypeVar("R")
_POLL_S = 0.2            # how often a run waiting on another run's claims looks for their answers
_QUIET_S = 10.0          # no answer for this long: say what the run is waiting for
_CHECK_S = 1.0           # how often the run looks whether answers have stopped


@dataclass
class RunStats:
    """What one engine run did: calls sent and reused, tokens and money spent now, parsing."""

    judgments: int = 0
    sent: int = 0
    unanswered: int = 0                   # of the sent calls, those with no answer after the backend's retries
    cached: int = 0
    reasked: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)
    parser: str = "final"                 # the rules the verdicts were read with
    parser_disagreements: int = 0         # verdicts the final and reference rules read differently


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


class _PerTurn:
    """Runs ``work(items)`` once per event-loop turn for everything submitted during that turn, so
    calls finishing together share one cache transaction instead of one each."""

    def __init__(self, work: Callable[[list], R]) -> None:
        self.work = work
        self.items: list = []
        self.futures: list[asyncio.Future] = []

    def submit(self, items: list) -> "asyncio.Future[R]":
        """A future of ``work``'s result over this turn's items (these among them)."""
        future = asyncio.get_running_loop().create_future()
        if not self.futures:
            asyncio.get_running_loop().call_soon(self._run)
        self.items.extend(items)
        self.futures.append(future)
        return future

    def _run(self) -> None:
        items, futures, self.items, self.futures = self.items, self.futures, [], []
        try:
            result = self.work(items)
        except BaseException as exc:  # handed to every submitter
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
            return
        for future in futures:
            if not future.done():
                future.set_result(result)


class Sender:
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
        self.in_flight = 0                    # calls handed to the backend, not answered yet
        self.last_answer = time.monotonic()
        self._claims, self._stores = _PerTurn(cache.claim), _PerTurn(cache.put_many)

    def _account(self, response: JudgeResponse) -> None:
        fill_cost(response, self.judge.prices)
        self.stats.input_tokens += response.input_tokens
        self.stats.output_tokens += response.output_tokens
        self.stats.cost_usd += response.cost_usd

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

    async def _take(self, requests: list[JudgeRequest], done: Callable, bar: Any) -> list[JudgeRequest]:
        """Claim requests: deliver those answered meanwhile, queue those another run holds,
        return those now ours to send."""
        mine, answered = await self._claims.submit([r.key for r in requests])
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
        cost = estimated_cost(self.judge, chunk, self.judge.prices) if self.max_cost is not None else 0.0
        if await self._reserve(cost, settled):
            self.in_flight += len(chunk)
            try:
                responses = await _complete(backend, chunk)
                self.stats.sent += len(chunk)
                self.stats.unanswered += sum(r.failure == "api_error" for r in responses)
                self.last_answer = time.monotonic()
                for response in responses:
                    self._account(response)
                await self._stores.submit([(r.key, r.rubric, a) for r, a in zip(chunk, responses)])
            finally:
                self.in_flight -= len(chunk)
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

    async def _drain(self, backend: Any, queue: deque, settled: asyncio.Condition, done: Callable, bar: Any,
                     *, claimed: bool = False) -> None:
        """One of ``concurrency`` workers: take the next batch, claim it (unless it already is
        ours) and send what is ours, until the queue is empty."""
        while queue:
            chunk = queue.popleft()
            mine = chunk if claimed else await self._take(chunk, done, bar)
            if mine:
                await self._send(backend, mine, settled, done, bar)

    async def _all(self, requests: list[JudgeRequest], done: Callable, bar: Any) -> None:
        backend = self.judge.backend()
        size, settled = self.judge.config.batch_size, asyncio.Condition()
        self.waiting = []

        async def drain(items: list[JudgeRequest], claimed: bool = False) -> None:
            queue = deque(items[i:i + size] for i in range(0, len(items), size))
            await asyncio.gather(*(self._drain(backend, queue, settled, done, bar, claimed=claimed)
                                   for _ in range(min(self.judge.concurrency, len(queue)))))

        watch = asyncio.ensure_future(self._say_what_is_awaited(bar))
        try:
            with self.cache.leases_kept():
                await drain(requests)
                _refuse_batched(self.cache, self.waiting)
                while self.waiting:      # another run's keys: wait for its answers, or take them over
                    bar.set_postfix_str(f"{len(self.waiting)} being answered by another run", refresh=False)
                    await asyncio.sleep(_POLL_S)
                    held, self.waiting = self.waiting, []
                    await drain(await self._take(held, done, bar), claimed=True)
        finally:
            watch.cancel()
            await backend.aclose()

    async def _say_what_is_awaited(self, bar: Any) -> None:
        """While calls get no answer (a server down, the backend retrying with backoff), say so: on the
        progress bar, or without one in a line every minute."""
        endpoint = self.judge.identity().get("endpoint") or self.judge.name
        said = -math.inf
        while True:
            await asyncio.sleep(_CHECK_S)
            quiet = time.monotonic() - self.last_answer
            if not self.in_flight or quiet < _QUIET_S:
                continue
            text = (f"waiting for {self.in_flight} answer{'s' * (self.in_flight > 1)} from {endpoint}: none for "
                    f"{quiet:.0f} s (the backend retries unreachable or failing servers with backoff)")
            if not bar.disable:
                bar.set_postfix_str(text)
            elif time.monotonic() - said >= 60:
                print(f"cosa-eval: {text}", file=sys.stderr, flush=True)
                said = time.monotonic()

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


def _refuse_batched(cache: JudgeCache, waiting: list[JudgeRequest]) -> None:
    """Keys in a provider batch are answered by that batch, which only a --batch run collects."""
    from .batch_ledger import BatchLedger
    batched = BatchLedger(cache).holding([r.key for r in waiting]) if waiting else set()
    if batched:
        raise CosaError(f"{len(batched)} of these requests are in provider batches not yet collected; re-run "
                        "with --batch to collect them (they are never sent twice)")


def estimated_cost(judge: Judge, chunk: list[JudgeRequest], prices: tuple[float, float] | None) -> float:
    """What a chunk may cost at ``prices``: its estimated input tokens, and output up to ``max_tokens``."""
    cap = judge.config.sampling.get("max_tokens")
    return sum(cost_usd(prices, estimate_tokens("".join(m["content"] for m in r.messages)),
                        1 if r.choices else cap or EXPECTED_OUTPUT_TOKENS.get(r.rubric, 320))
               for r in chunk)


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
    return [_as_answer(r) for r in responses]


def _as_answer(response: JudgeResponse) -> JudgeResponse:
    """The answer as text any file or database holds; an empty or non-text one is api_error."""
    if not isinstance(response.text, (str, type(None))) or not isinstance(response.detail, str):
        return JudgeResponse(failure="api_error", detail="backend returned an answer whose text or detail "
                             "is not a string")
    if is_empty(response):
        return _as_transport_failure(response)
    return dataclasses.replace(response, text=as_text(response.text), detail=as_text(response.detail))


def as_text(value: str | None) -> str | None:
    """Valid Unicode text: a lone UTF-16 surrogate (which no UTF-8 file or SQLite text can hold)
    becomes U+FFFD, and a pair split in two code points is joined."""
    if value is None or value.isascii():
        return value
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _as_transport_failure(response: JudgeResponse) -> JudgeResponse:
    return JudgeResponse(failure="api_error", detail="the judge returned an empty answer",
                         input_tokens=response.input_tokens, output_tokens=response.output_tokens,
                         cost_usd=response.cost_usd, seconds=response.seconds)
