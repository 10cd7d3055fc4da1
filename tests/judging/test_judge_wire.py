"""The lean HTTP/1.1 wire to plain-http servers: framing, keep-alive, and the same failures as the
official client's path (which HTTPS, proxies and Azure take)."""
from __future__ import annotations

import pytest

from judging_helpers import JUDGE_MODEL, SECRET_KEY
from openai_server import rubric_answer
from test_judge_openai_backend import FAST, _complete, _requests
from cosa_eval.errors import CosaError
from cosa_eval.judging.backends.openai import OpenAIBackend
from cosa_eval.judging.backends.wire import usable


def test_plain_http_calls_keep_their_connections_and_the_clients_headers(judge_server):
    answers = _complete(OpenAIBackend(JUDGE_MODEL, {}, concurrency=4, **FAST), _requests(40))
    assert all(a.failure is None and a.text for a in answers)
    seen = judge_server.requests
    assert len(seen) == 40 and len({r.port for r in seen}) <= 4        # kept alive, 4 at most
    assert seen[0].headers["authorization"] == f"Bearer {SECRET_KEY}"
    assert seen[0].headers["user-agent"].startswith("AsyncOpenAI/Python")
    assert seen[0].path == "/v1/chat/completions"


@pytest.mark.parametrize("framing", ["chunked", "close", "drop"])
def test_every_framing_a_server_may_use_is_read_whole_and_sent_once(judge_server, framing):
    judge_server.set(framing=framing)
    backend = OpenAIBackend(JUDGE_MODEL, {}, concurrency=3, **FAST)
    answers = _complete(backend, _requests(12))
    expected = [rubric_answer([{"role": "user", "content": f"question {i}"}]) for i in range(12)]
    assert [a.text for a in answers] == expected
    assert judge_server.request_count == 12      # a connection the server closed is never a lost call


def _outcome(backend: OpenAIBackend) -> tuple:
    try:
        [answer] = _complete(backend, _requests(1))
    except CosaError as exc:
        return ("error", str(exc).split(";")[0])
    return (answer.failure, answer.text)


@pytest.mark.parametrize("first", ["429", "500", "malformed", "empty", "content_filter", "401"])
def test_the_wire_and_the_official_client_classify_answers_alike(judge_server, monkeypatch, first):
    outcomes = []
    for route in ("wire", "official client"):
        judge_server.reset()
        judge_server.set(fault_rule=lambda number, body: first if number == 0 else None)
        if route == "official client":             # Azure always goes through the official client
            monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", judge_server.base_url.removesuffix("/v1"))
            monkeypatch.setenv("AZURE_OPENAI_API_KEY", SECRET_KEY)
        outcomes.append((_outcome(OpenAIBackend(JUDGE_MODEL, {}, azure_deployment="judge", **FAST)),
                         judge_server.request_count))
    assert outcomes[0] == outcomes[1], outcomes
    assert "/openai/deployments/judge/" in judge_server.requests[0].path      # the second went via Azure


def test_a_configured_proxy_is_honoured_through_the_official_client(judge_server, monkeypatch):
    proxy = judge_server.base_url.removesuffix("/v1")
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "")
    backend = OpenAIBackend(JUDGE_MODEL, {}, base_url="http://judge.invalid:9/v1", **FAST)
    backend.check_ready()
    [answer] = _complete(backend, _requests(1))
    assert answer.failure is None and answer.text
    assert judge_server.requests[0].path == "http://judge.invalid:9/v1/chat/completions"   # proxied


def test_which_urls_take_the_wire(monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert usable("http://127.0.0.1:8000/v1") and usable("http://gpu-box:8000/v1")
    assert not usable("https://api.openai.com/v1") and not usable(None)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    assert not usable("http://gpu-box:8000/v1")
    monkeypatch.setenv("NO_PROXY", "gpu-box")
    assert usable("http://gpu-box:8000/v1")
