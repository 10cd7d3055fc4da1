"""The lean HTTP/1.1 wire to plain-http servers: framing, keep-alive, and the same failures as the
official client's path (which HTTPS, proxies and Azure take)."""
from __future__ import annotations

import asyncio
import re
import threading

import pytest

from judging_helpers import JUDGE_MODEL, SECRET_KEY
from openai_server import rubric_answer
from test_judge_openai_backend import FAST, _complete, _requests
from cosa_eval.errors import CosaError
from cosa_eval.judging.backends.openai import OpenAIBackend
from cosa_eval.judging.backends.wire import Wire, WireError, usable


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



def _serve_raw(answers: list[bytes], dribble: bool):
    """A raw TCP server that answers the requests on each connection with ``answers`` in turn,
    byte by byte when ``dribble``; returns (url, connections accepted, stop)."""
    accepted, ready, box = [], threading.Event(), {}

    async def handle(reader, writer):
        accepted.append(1)
        for answer in answers:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = re.search(rb"content-length: *(\d+)", head, re.I)
            await reader.readexactly(int(length.group(1)))
            for piece in ([answer[i:i + 1] for i in range(len(answer))] if dribble else [answer]):
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0)
        writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        box.update(port=server.sockets[0].getsockname()[1], loop=asyncio.get_running_loop(), stop=asyncio.Event())
        ready.set()
        async with server:
            await box["stop"].wait()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    ready.wait()

    def stop():
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join()
    return f"http://127.0.0.1:{box['port']}/v1/chat/completions", accepted, stop


def _post_all(url: str, times: int) -> list:
    async def go():
        wire = Wire(url, {"Authorization": "Bearer x"}, timeout_s=5)
        try:
            return [await wire.post(b'{"n": %d}' % i) for i in range(times)]
        finally:
            await wire.aclose()
    return asyncio.run(go())


def test_answers_arriving_byte_by_byte_are_read_whole_on_one_connection():
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n")
    sized = b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\nX-A: b\r\n\r\ndone"
    url, accepted, stop = _serve_raw([chunked, sized], dribble=True)
    try:
        first, second = _post_all(url, 2)
    finally:
        stop()
    assert (first.status, first.body) == (200, b"hello, world")
    assert (second.status, second.body, second.headers["x-a"]) == (201, b"done", "b")
    assert len(accepted) == 1                                    # kept alive between the two


def test_bytes_past_the_answer_retire_the_connection_and_bad_framing_is_a_wire_error():
    url, accepted, stop = _serve_raw([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokXX"] * 2, dribble=False)
    try:
        answers = _post_all(url, 2)
    finally:
        stop()
    assert [a.body for a in answers] == [b"ok", b"ok"] and len(accepted) == 2
    for garbage in (b"SMTP ready\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",
                    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"):
        url, _accepted, stop = _serve_raw([garbage], dribble=False)
        try:
            with pytest.raises(WireError):
                _post_all(url, 1)
        finally:
            stop()
