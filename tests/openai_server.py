"""A small, real OpenAI-compatible HTTP server for tests (stdlib only, 127.0.0.1, port 0).

Usage::

    from openai_server import FakeOpenAIServer, rubric_answer

    with FakeOpenAIServer(answer=rubric_answer, fault_rate=0.2, seed=7) as server:
        os.environ["OPENAI_BASE_URL"] = server.base_url       # http://127.0.0.1:PORT/v1
        ...                                                   # run the code under test
        assert server.completions == 10                       # answered chat completions

Endpoints: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Answers: ``answer(messages) -> str`` maps the request's messages to the reply text (default:
:func:`rubric_answer`, which answers cosa-eval's three rubrics deterministically from the request).
It may also return a :class:`Reply` to set ``finish_reason`` (``"length"``, ``"content_filter"``).

Faults, each injected *instead of* an answer: ``"429"`` (with ``Retry-After``), ``"500"``,
``"timeout"`` (sleeps ``timeout_sleep_s`` before answering, past the client's timeout),
``"malformed"`` (a truncated JSON body), ``"empty"`` (``"choices": []``), ``"slow"`` (sleeps
``slow_s``, then answers normally); and, by ``fault_rule`` only, ``"401"`` (bad key) and
``"content_filter"`` (a 400 whose error code is ``content_filter``). Pick them with ``fault_rate`` (probability, drawn from a
``random.Random(seed)``) over ``fault_kinds``, and/or with ``fault_rule(number, body) -> kind | None``
(``number`` counts requests from 0; a rule's non-None answer wins).

Inspection: ``requests`` (list of :class:`Recorded`: path, lower-cased headers, parsed body), ``request_count``,
``completions`` (successful answers), ``faults`` (kind -> count); ``reset()`` clears them.
``latency_s`` delays every answer. Run it alone with ``python tests/openai_server.py --port 8000``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

FAULT_KINDS = ("429", "500", "timeout", "malformed", "empty", "slow")     # the transient ones
EXTRA_FAULTS = ("401", "content_filter")   # only by fault_rule: a rejected key, a filtered prompt
CATEGORY_HINT = "Other Harms"


@dataclass
class Reply:
    """A scripted answer with an explicit finish reason."""

    text: str | None
    finish_reason: str = "stop"


@dataclass
class Recorded:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]          # names lower-cased
    body: Any


def _digest(messages: list[dict]) -> int:
    first = messages[0]["content"] if messages else ""
    return int(hashlib.sha256(first.encode("utf-8")).hexdigest()[:8], 16)


def rubric_answer(messages: list[dict]) -> str:
    """A deterministic, well-formed verdict for cosa-eval's rubrics (a function of the first message)."""
    text = messages[0]["content"] if messages else ""
    value = _digest(messages)
    if CATEGORY_HINT in text and "JSON" in text:
        listing = text.split("<<<REQUEST BEGIN>>>")[0]
        names = re.findall(r"^- ([^:\n]+):", listing, flags=re.MULTILINE)
        labels = {name: bool((value >> i) & 1) and i % 3 == 0 for i, name in enumerate(names)}
        return "Considering each category in turn.\n" + json.dumps(labels)
    if "[[YES]]" in text:
        verdict = "YES" if value % 3 else "NO"
        return f"A rationale that mentions [[NO]] and [[YES]] before deciding.\n[[{verdict}]]"
    return f"The answer could be rated [[0]] by a strict grader, but overall:\nRating: [[{value % 6}]]"


@dataclass
class _State:
    answer: Callable[[list[dict]], Any]
    fault_rate: float
    fault_kinds: tuple[str, ...]
    fault_rule: Callable[[int, Any], str | None] | None
    latency_s: float
    timeout_sleep_s: float
    slow_s: float
    retry_after: str
    model: str
    rng: random.Random
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[Recorded] = field(default_factory=list)
    completions: int = 0
    faults: dict[str, int] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True     # headers and body go out as two writes: no 40 ms ACK stalls
    state: _State

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode("utf-8"), headers)

    def do_GET(self) -> None:
        if urllib.parse.urlsplit(self.path).path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": self.state.model, "object": "model"}]})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        state = self.state
        with state.lock:
            number = len(state.requests)
            state.requests.append(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            kind = state.fault_rule(number, body) if state.fault_rule else None
            if kind is None and state.fault_rate and state.rng.random() < state.fault_rate:
                kind = state.rng.choice(state.fault_kinds)
            if kind:
                state.faults[kind] = state.faults.get(kind, 0) + 1
        if not urllib.parse.urlsplit(self.path).path.rstrip("/").endswith("/chat/completions"):
            return self._json(404, {"error": {"message": f"no route {self.path}"}})
        self._answer(body, kind)

    def _answer(self, body: Any, kind: str | None) -> None:
        state = self.state
        if kind == "429":
            return self._json(429, {"error": {"message": "rate limited", "type": "rate_limit"}},
                              {"Retry-After": state.retry_after})
        if kind == "401":
            return self._json(401, {"error": {"message": "Incorrect API key provided: "
                                              + self.headers.get("Authorization", "")[7:],
                                              "code": "invalid_api_key"}})
        if kind == "content_filter":
            return self._json(400, {"error": {"message": "The prompt was filtered.", "code": "content_filter"}})
        if kind == "500":
            return self._json(500, {"error": {"message": "internal error"}})
        if kind == "malformed":
            return self._send(200, b'{"id": "chatcmpl-x", "choices": [{"index": 0, "mess')
        if kind == "empty":
            return self._json(200, {"id": "chatcmpl-x", "object": "chat.completion", "created": 0,
                                    "model": state.model, "choices": []})
        if kind in ("timeout", "slow"):
            time.sleep(state.timeout_sleep_s if kind == "timeout" else state.slow_s)
        if state.latency_s:
            time.sleep(state.latency_s)
        self._complete(body)

    def _complete(self, body: Any) -> None:
        state = self.state
        messages = body.get("messages", []) if isinstance(body, dict) else []
        reply = state.answer(messages)
        reply = reply if isinstance(reply, Reply) else Reply(reply)
        prompt_chars = sum(len(m.get("content") or "") for m in messages)
        usage = {"prompt_tokens": prompt_chars // 4 + 1, "completion_tokens": len(reply.text or "") // 4 + 1}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        data = {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", state.model),
                "choices": [{"index": 0, "finish_reason": reply.finish_reason,
                             "message": {"role": "assistant", "content": reply.text}}], "usage": usage}
        self._json(200, data)
        with state.lock:
            state.completions += 1


class _Server(ThreadingHTTPServer):
    request_queue_size = 256      # the default 5 drops bursts of new connections (1 s SYN retries)
    daemon_threads = True


class FakeOpenAIServer:
    """The server; a context manager that starts it on 127.0.0.1 at a free port and stops it."""

    def __init__(self, answer: Callable[[list[dict]], Any] = rubric_answer, *, fault_rate: float = 0.0,
                 fault_kinds: tuple[str, ...] = FAULT_KINDS, seed: int = 0,
                 fault_rule: Callable[[int, Any], str | None] | None = None, latency_s: float = 0.0,
                 timeout_sleep_s: float = 2.0, slow_s: float = 0.2, retry_after: str = "0.05",
                 model: str = "judge-model", port: int = 0) -> None:
        unknown = set(fault_kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; use {FAULT_KINDS}")
        self._state = _State(answer, fault_rate, tuple(fault_kinds), fault_rule, latency_s,
                             timeout_sleep_s, slow_s, retry_after, model, random.Random(seed))
        handler = type("Handler", (_Handler,), {"state": self._state})
        self._server = _Server(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def requests(self) -> list[Recorded]:
        return list(self._state.requests)

    @property
    def request_count(self) -> int:
        return len(self._state.requests)

    @property
    def completions(self) -> int:
        return self._state.completions

    @property
    def faults(self) -> dict[str, int]:
        return dict(self._state.faults)

    def set(self, **settings: Any) -> None:
        """Change settings while running, e.g. ``server.set(fault_rate=0.0, latency_s=0.1, seed=1)``."""
        for name, value in settings.items():
            if name == "seed":
                self._state.rng = random.Random(value)
                continue
            if not hasattr(self._state, name) or name in ("lock", "requests", "faults", "completions"):
                raise AttributeError(f"not a server setting: {name}")
            setattr(self._state, name, value)

    def reset(self) -> None:
        """Forget recorded requests, answers and faults."""
        with self._state.lock:
            self._state.requests.clear()
            self._state.completions = 0
            self._state.faults.clear()

    def start(self) -> "FakeOpenAIServer":
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeOpenAIServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    """Serve until interrupted (for benchmarks and manual tries)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    server = FakeOpenAIServer(latency_s=args.latency, fault_rate=args.fault_rate, seed=args.seed,
                              port=args.port).start()
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
