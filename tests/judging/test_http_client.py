"""Every judge call goes through one well-kept HTTP client: what a server may answer (framing, 1xx,
redirects, compression, proxies) behaves as that library does, and a key never leaves its origin."""
from __future__ import annotations

import threading
import time

import pytest

from judging_helpers import JUDGE_MODEL, SECRET_KEY
from openai_server import rubric_answer
from raw_http import RawServer, completion_bytes, gzipped, http_answer, self_signed
from test_judge_openai_backend import FAST, _complete, _requests
from cosa_eval.judging.backends.openai import OpenAIBackend


def _answer_within(backend: OpenAIBackend, seconds: float):
    """The backend's one answer, computed in a thread that must finish within ``seconds`` (a client
    spinning inside its event loop never lets a timeout fire, so the test cannot wait on it)."""
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(answers=_complete(backend, _requests(1))), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the call did not finish within {seconds} s"
    return box["answers"][0]


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
    answers = _complete(OpenAIBackend(JUDGE_MODEL, {}, concurrency=3, **FAST), _requests(12))
    expected = [rubric_answer([{"role": "user", "content": f"question {i}"}]) for i in range(12)]
    assert [a.text for a in answers] == expected
    assert judge_server.request_count == 12      # a connection the server closed is never a lost call


def test_a_bad_chunk_size_is_a_failed_call_within_the_timeout_never_a_hang():
    bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-ff\r\nhello\r\n0\r\n\r\n"
    with RawServer(lambda head, body: bad) as server:
        backend = OpenAIBackend(JUDGE_MODEL, {}, base_url=server.url, **{**FAST, "max_retries": 1})
        answer = _answer_within(backend, 10)
    assert answer.failure == "api_error" and "gave up after 2 attempts" in answer.detail


def test_an_informational_answer_before_the_answer_is_skipped_at_once():
    answer_bytes = b"HTTP/1.1 100 Continue\r\n\r\n" + http_answer(200, completion_bytes())
    with RawServer(lambda head, body: answer_bytes) as server:
        backend = OpenAIBackend(JUDGE_MODEL, {}, base_url=server.url, **{**FAST, "timeout_s": 5.0})
        started = time.monotonic()
        answer = _answer_within(backend, 10)
    assert answer.failure is None and answer.text == "Rating: [[4]]"
    assert time.monotonic() - started < 2.5           # not the 5 s timeout


def test_a_gzip_body_is_decoded():
    with RawServer(lambda head, body: gzipped(completion_bytes("Rating: [[2]]"))) as server:
        answer = _answer_within(OpenAIBackend(JUDGE_MODEL, {}, base_url=server.url, **FAST), 10)
    assert answer.failure is None and answer.text == "Rating: [[2]]"


def test_a_same_origin_redirect_is_followed_with_the_body(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    def reply(head: str, body: bytes) -> bytes:
        if head.startswith("POST /v1/chat/completions"):
            return http_answer(307, b"", "Location: /v2/chat/completions")
        return http_answer(200, completion_bytes(f"Rating: [[{len(body) % 6}]]"))
    with RawServer(reply) as server:
        answer = _answer_within(OpenAIBackend(JUDGE_MODEL, {}, base_url=server.url, **FAST), 10)
    posts = [head for head in server.heads if head.startswith("post")]
    assert answer.failure is None and posts[1].startswith("post /v2/chat/completions")
    assert f"authorization: bearer {SECRET_KEY.lower()}" in posts[1]


@pytest.mark.parametrize("azure", [False, True])
def test_a_redirect_to_another_origin_never_carries_the_key(monkeypatch, azure):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    with RawServer(lambda head, body: http_answer(200, completion_bytes() if head.startswith("POST")
                                                  else b'{"data": [{"id": "judge-model"}]}')) as other:
        target = other.url.removesuffix("/v1")
        with RawServer(lambda head, body: http_answer(307, b"", f"Location: {target}{head.split()[1]}")) as first:
            if azure:
                monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", first.url.removesuffix("/v1"))
                monkeypatch.setenv("AZURE_OPENAI_API_KEY", SECRET_KEY)
                backend = OpenAIBackend(JUDGE_MODEL, {}, azure_deployment="judge", **FAST)
            else:
                backend = OpenAIBackend(JUDGE_MODEL, {}, base_url=first.url, **FAST)
                backend.check_ready()                        # GET /models, redirected too
            answer = _answer_within(backend, 10)
    assert answer.failure is None and answer.text
    assert other.heads and all(SECRET_KEY.lower() not in head for head in other.heads)
    assert any(SECRET_KEY.lower() in head for head in first.heads)


def test_a_retry_after_that_is_not_a_number_is_still_retried(judge_server):
    judge_server.set(retry_after="soon, maybe", fault_rule=lambda number, body: "429" if number == 0 else None)
    [answer] = _complete(OpenAIBackend(JUDGE_MODEL, {}, **FAST), _requests(1))
    assert answer.failure is None and answer.text and judge_server.request_count == 2


def test_a_configured_proxy_is_honoured(judge_server, monkeypatch):
    proxy = judge_server.base_url.removesuffix("/v1")
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "")
    backend = OpenAIBackend(JUDGE_MODEL, {}, base_url="http://judge.invalid:9/v1", **FAST)
    backend.check_ready()
    [answer] = _complete(backend, _requests(1))
    assert answer.failure is None and answer.text
    assert judge_server.requests[0].path == "http://judge.invalid:9/v1/chat/completions"   # proxied



def test_tls_verifies_against_the_ca_store_the_user_names(tmp_path, monkeypatch):
    cert, context = self_signed(tmp_path)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with RawServer(lambda head, body: http_answer(200, completion_bytes()), tls=context) as server:
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        refused = _answer_within(OpenAIBackend(JUDGE_MODEL, {}, base_url=server.url, **FAST), 10)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        trusted = _answer_within(OpenAIBackend(JUDGE_MODEL, {}, base_url=server.url, **FAST), 10)
    assert refused.failure == "api_error" and "CERTIFICATE_VERIFY_FAILED" in refused.detail
    assert trusted.failure is None and trusted.text == "Rating: [[4]]"
