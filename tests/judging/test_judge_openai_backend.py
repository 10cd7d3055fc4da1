"""The OpenAI backend against the local server: retries, Retry-After, concurrency, typed failures."""
from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable

import pytest

from judging_helpers import JUDGE_MODEL, SECRET_KEY
from openai_server import rubric_answer
from cosa_eval.errors import CosaError
from cosa_eval.judging.backends.base import JudgeRequest
from cosa_eval.judging.backends.openai import OpenAIBackend, retry_after_seconds

FAST = dict(timeout_s=0.5, max_retries=3, backoff_base_s=0.01, backoff_max_s=0.05)


def _requests(count: int) -> list[JudgeRequest]:
    return [JudgeRequest(key=str(i), rubric="helpfulness",
                         messages=({"role": "user", "content": f"question {i}"},)) for i in range(count)]


def _complete(backend: OpenAIBackend, requests: list[JudgeRequest]):
    async def go():
        try:
            return await backend.complete(requests)
        finally:
            await backend.aclose()
    return asyncio.run(go())


def test_retry_after_is_honoured(judge_server):
    judge_server.set(retry_after="0.4", fault_rule=lambda number, body: "429" if number == 0 else None)
    started = time.monotonic()
    [answer] = _complete(OpenAIBackend(JUDGE_MODEL, {}, **FAST), _requests(1))
    assert answer.failure is None and answer.text and judge_server.request_count == 2
    assert time.monotonic() - started >= 0.4


def _counting_answer(seconds: float) -> tuple[Callable[[Any], str], list[int]]:
    """A slow rubric answer that records the most calls in flight at once (``peak[0]``)."""
    lock, live, peak = threading.Lock(), [0], [0]

    def slow_answer(messages):
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        time.sleep(seconds)
        with lock:
            live[0] -= 1
        return rubric_answer(messages)

    return slow_answer, peak


def test_bounded_concurrency(judge_server):
    slow_answer, peak = _counting_answer(0.05)
    judge_server.set(answer=slow_answer)
    answers = _complete(OpenAIBackend(JUDGE_MODEL, {}, concurrency=3, **FAST), _requests(12))
    assert all(a.text for a in answers) and peak[0] == 3


@pytest.mark.parametrize("kind", ["500", "malformed", "empty", "timeout"])
def test_persistent_fault_becomes_api_error_after_bounded_retries(judge_server, kind):
    judge_server.set(fault_rule=lambda number, body: kind, timeout_sleep_s=0.7)
    [answer] = _complete(OpenAIBackend(JUDGE_MODEL, {}, **FAST), _requests(1))
    assert answer.failure == "api_error" and "gave up after 4 attempts" in answer.detail
    assert judge_server.request_count == 4


def test_rejected_key_stops_the_run_without_echoing_it(judge_server):
    judge_server.set(fault_rule=lambda number, body: "401")
    with pytest.raises(CosaError, match="rejected the API key") as error:
        _complete(OpenAIBackend(JUDGE_MODEL, {}, **FAST), _requests(3))
    assert SECRET_KEY not in str(error.value)


def test_content_filter_is_a_judge_refusal(judge_server):
    judge_server.set(fault_rule=lambda number, body: "content_filter")
    [answer] = _complete(OpenAIBackend(JUDGE_MODEL, {}, **FAST), _requests(1))
    assert answer.failure == "judge_refused" and judge_server.request_count == 1


def test_unknown_sampling_option_is_named():
    with pytest.raises(CosaError, match="sampling option 'temprature'"):
        OpenAIBackend(JUDGE_MODEL, {"temprature": 0})


def test_azure_client_is_used_when_endpoint_is_set(judge_server, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", judge_server.base_url.removesuffix("/v1"))
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", SECRET_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL")
    [answer] = _complete(OpenAIBackend(JUDGE_MODEL, {}, azure_deployment="judge", **FAST), _requests(1))
    assert answer.text and "/openai/deployments/judge/chat/completions" in judge_server.requests[0].path
    assert judge_server.requests[0].headers.get("api-key") == SECRET_KEY


def test_retry_after_header_forms():
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "3"}) == 3
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0
    assert retry_after_seconds({}) is None


@pytest.mark.parametrize("content", ["", "   \n\t "])
def test_empty_content_is_retried_never_an_answer(judge_server, content):
    calls = []
    judge_server.set(answer=lambda messages: content if not calls.append(1) and len(calls) == 1
                     else rubric_answer(messages))
    [answer] = _complete(OpenAIBackend(JUDGE_MODEL, {}, **FAST), _requests(1))
    assert answer.failure is None and answer.text.strip() and judge_server.request_count == 2


def test_error_detail_is_masked_before_it_is_cut():
    import cosa_eval.judging.backends.http_errors as http_errors
    text = "x" * 290 + " key " + SECRET_KEY + " and Bearer " + "abc123secret"
    scrubbed = http_errors.scrub(text)
    assert SECRET_KEY[:10] not in scrubbed and len(scrubbed) <= 300
    assert "abc123secret" not in http_errors.scrub("Authorization: Bearer abc123secret")


def test_in_flight_calls_start_low_and_ramp_up(judge_server):
    lock, live, seen = threading.Lock(), [0], []

    def slow_answer(messages):
        with lock:
            live[0] += 1
            seen.append(live[0])
        time.sleep(0.05)
        with lock:
            live[0] -= 1
        return rubric_answer(messages)

    judge_server.set(answer=slow_answer)
    backend = OpenAIBackend(JUDGE_MODEL, {}, concurrency=16, start_concurrency=2, **FAST)

    async def go():
        try:
            return await backend.complete(_requests(120)), backend._gate.peak, backend._gate.limit
        finally:
            await backend.aclose()
    answers, peak, limit = asyncio.run(go())
    assert all(a.text for a in answers)
    assert max(seen[:2]) <= 2 and max(seen) <= 16 and peak == 16 and limit == 16


def test_timeouts_halve_the_calls_in_flight(judge_server):
    judge_server.set(fault_rule=lambda number, body: "timeout" if number < 8 else None, timeout_sleep_s=0.7)
    backend = OpenAIBackend(JUDGE_MODEL, {}, concurrency=8, start_concurrency=8, **FAST)

    async def go():
        try:
            result = await backend.complete(_requests(8))
            return result, backend._gate.backoffs, backend._gate.threshold
        finally:
            await backend.aclose()
    answers, backoffs, threshold = asyncio.run(go())
    assert all(a.text for a in answers) and backoffs >= 1 and threshold <= 4


def test_server_slots_cap_the_calls_in_flight(judge_server):
    judge_server.set(slots=1)
    slow_answer, peak = _counting_answer(0.02)
    judge_server.set(answer=slow_answer)
    answers = _complete(OpenAIBackend(JUDGE_MODEL, {}, concurrency=8, **FAST), _requests(10))
    assert all(a.text for a in answers) and peak[0] == 1 and "/props" in judge_server.gets


def test_adaptive_limit_backs_off_once_per_round():
    from cosa_eval.judging.backends.pacing import AdaptiveLimit

    async def go():
        gate = AdaptiveLimit(maximum=32, start=2)
        epochs = [await gate.acquire() for _ in range(2)]
        for epoch in epochs:
            gate.release(epoch)
        grown = gate.limit
        epochs = [await gate.acquire() for _ in range(4)]
        for epoch in epochs:
            gate.release(epoch, overloaded=True)
        return grown, gate.limit, gate.backoffs
    assert asyncio.run(go()) == (4, 2, 1)
