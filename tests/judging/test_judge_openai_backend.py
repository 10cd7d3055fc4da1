"""The OpenAI backend against the local server: retries, Retry-After, concurrency, typed failures."""
from __future__ import annotations

import asyncio
import threading
import time

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


def test_bounded_concurrency(judge_server):
    lock, live, peak = threading.Lock(), [0], [0]

    def slow_answer(messages):
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        time.sleep(0.05)
        with lock:
            live[0] -= 1
        return rubric_answer(messages)

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
