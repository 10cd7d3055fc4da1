"""A small, real OpenAI-compatible HTTP server for tests (stdlib only, 127.0.0.1, port 0).

Usage::

    from openai_server import FakeOpenAIServer, rubric_answer

    with FakeOpenAIServer(answer=rubric_answer, fault_rate=0.2, seed=7) as server:
        os.environ["OPENAI_BASE_URL"] = server.base_url       # http://127.0.0.1:PORT/v1
        ...                                                   # run the code under test
        assert server.completions == 10                       # answered chat completions

Endpoints: ``POST /v1/chat/completions``, the Batch API (``/v1/files``, ``/v1/batches``: see
``batch_api.py``; ``server.batch`` holds its state) and ``GET /v1/models`` (lists ``models``, default just
``model``; like llama.cpp, any requested name is answered).

Answers: ``answer(messages) -> str`` maps the request's messages to the reply text (default:
:func:`rubric_answer`, which answers cosa-eval's three rubrics deterministically from the request).
It may also return a :class:`Reply` to set ``finish_reason`` (``"length"``, ``"content_filter"``).

Faults, each injected *instead of* an answer: ``"429"`` (with ``Retry-After``), ``"500"``,
``"timeout"`` (sleeps ``timeout_sleep_s`` before answering, past the client's timeout),
``"malformed"`` (a truncated JSON body), ``"empty"`` (``"choices": []``), ``"slow"`` (sleeps
``slow_s``, then answers normally); and, by ``fault_rule`` only, ``"401"`` (bad key) and
``"content_filter"`` (a 400 whose error code is ``content_filter``) and ``"418"`` (a status no client retries). Pick them with ``fault_rate`` (probability, drawn from a
``random.Random(seed)``) over ``fault_kinds``, and/or with ``fault_rule(number, body) -> kind | None``
(``number`` counts requests from 0; a rule's non-None answer wins).

Constrained output: a ``response_format`` JSON schema (OpenAI's ``json_schema`` form or the
``json_object`` + ``schema`` form) is answered with an object in that schema whose values are read
from the free-text answer; ``logprobs``/``top_logprobs`` add per-token logprobs, the verdict tokens
with scripted alternatives (rating k: 0.7 k, 0.2 k+1 mod 6, 0.1 junk; YES/NO: 0.8 / 0.15 / 0.05
junk; booleans: 0.9 / 0.1). ``unsupported`` lists what this server lacks: ``"json_schema"`` or
``"json_object"`` (answered with HTTP 500, as llama-cpp-python does), ``"logprobs"`` (silently left out). ``slots`` > 0 serves
llama.cpp's ``GET /props`` with ``total_slots``.

Inspection: ``requests`` (list of :class:`Recorded`: path, lower-cased headers, parsed body), ``request_count``,
``completions`` (successful answers), ``faults`` (kind -> count), ``gets`` (paths of GET requests,
which ``requests`` leaves out); ``reset()`` clears them.
``latency_s`` delays every answer. ``framing``: ``"length"`` (Content-Length, keep-alive),
``"chunked"`` (Transfer-Encoding: chunked), ``"close"`` (``Connection: close`` on every answer),
``"drop"`` (the connection closed after every answer without saying so, as an expired keep-alive).
``echo``: every answer and error body starts with the request line and headers as received (a
server that reflects credentials back, for redaction tests). ``snapshot``: the model name answers
report (default: the requested name, as a server that serves what it is asked for), and
``fingerprint`` their ``system_fingerprint``; ``set(snapshot=...)`` moves the judge mid-run. Run it alone with ``python tests/openai_server.py --port 8000``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from batch_api import BatchAPI

FAULT_KINDS = ("429", "500", "timeout", "malformed", "empty", "slow")     # the transient ones
EXTRA_FAULTS = ("401", "content_filter", "418")   # only by fault_rule: a rejected key, a filtered prompt, an odd status
CATEGORY_HINT = "Other Harms"
FINGERPRINT = "fp_test0001"


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
    port: int = 0                    # the client's port: one per connection


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


def completion(model: str, messages: list[dict], reply: Reply, logprobs: dict | None = None,
               fingerprint: str = FINGERPRINT) -> dict:
    """A chat.completion answer carrying ``reply``, with token counts of ~4 characters each."""
    prompt_chars = sum(len(m.get("content") or "") for m in messages)
    usage = {"prompt_tokens": prompt_chars // 4 + 1, "completion_tokens": len(reply.text or "") // 4 + 1}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": model,
            "system_fingerprint": fingerprint, "choices": [{"index": 0, "finish_reason": reply.finish_reason,
                         "message": {"role": "assistant", "content": reply.text},
                         **({"logprobs": logprobs} if logprobs else {})}], "usage": usage}


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
    unsupported: tuple[str, ...] = ()
    slots: int = 0
    models: tuple[str, ...] = ()
    framing: str = "length"
    echo: bool = False
    snapshot: str = ""              # the model answers name; "" echoes the requested name
    fingerprint: str = FINGERPRINT
    batch: Any = None                   # the Batch API (batch_api.BatchAPI): /v1/files, /v1/batches
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[Recorded] = field(default_factory=list)
    completions: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    gets: list[str] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True     # headers and body go out as two writes: no 40 ms ACK stalls
    state: _State

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        framing = self.state.framing
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
            half = len(body) // 2
            body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:half], body[half:]) if part)
            body += b"0\r\n\r\n"
        else:
            self.send_header("Content-Length", str(len(body)))
        if framing == "close":
            self.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if framing in ("close", "drop"):
            self.close_connection = True       # "drop": closed without saying so (a stale keep-alive)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        if self.state.echo and status >= 400:
            data = {**data, "echo": self._echo()}
        self._send(status, json.dumps(data).encode("utf-8"), headers)

    def _echo(self) -> str:
        return f"{self.command} {self.path} {dict(self.headers.items())}"

    def _batch_api(self, raw: bytes = b"") -> bool:
        """Serve /v1/files and /v1/batches (not counted in ``requests``); False for other paths."""
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        if not path.startswith(("/v1/files", "/v1/batches")):
            return False
        status, data = self.state.batch.handle(self.command, path, self.headers, raw)
        if isinstance(data, bytes):
            self._send(status, data)
        else:
            self._json(status, data)
        return True

    def do_GET(self) -> None:
        if self._batch_api():
            return
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        with self.state.lock:
            self.state.gets.append(self.path)
        if path.endswith("/models"):
            served = self.state.models or (self.state.model,)
            self._json(200, {"object": "list", "data": [{"id": name, "object": "model"} for name in served]})
        elif path == "/props" and self.state.slots:
            self._json(200, {"total_slots": self.state.slots})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self._batch_api(raw):
            return
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        state = self.state
        with state.lock:
            number = len(state.requests)
            state.requests.append(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                                           self.client_address[1]))
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
        if kind == "418":
            return self._json(418, {"error": {"message": "I'm a teapot"}})
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
        reply = _reply(self.state, body)
        if self.state.echo and reply.text is not None:
            reply = Reply(f"I was sent {self._echo()}\n{reply.text}", reply.finish_reason)
        status, data = answer_completion(self.state, body, reply)
        if status == 200:
            with self.state.lock:       # counted before the answer leaves, so a client that has it sees the count
                self.state.completions += 1
        self._json(status, data)


def _reply(state: "_State", body: Any) -> Reply:
    reply = state.answer(body.get("messages", []) if isinstance(body, dict) else [])
    return reply if isinstance(reply, Reply) else Reply(reply)


def answer_completion(state: "_State", body: Any, reply: Reply | None = None) -> tuple[int, dict]:
    """(HTTP status, JSON body) of the chat completion this server gives for a request body (shared
    by ``/v1/chat/completions`` and the batch endpoints); ``reply`` defaults to ``state.answer``'s."""
    messages = body.get("messages", []) if isinstance(body, dict) else []
    reply = _reply(state, body) if reply is None else reply
    schema, kind = _schema_of(body)
    if kind in state.unsupported:
        return 500, {"error": {"message": f"validation error: response_format type {kind!r} is not supported"}}
    logprobs = None
    if schema is not None and reply.text is not None:
        pieces = _structured_pieces(reply.text, schema)
        reply = Reply("".join(text for text, _ in pieces), reply.finish_reason)
        if body.get("logprobs") and "logprobs" not in state.unsupported:
            logprobs = {"content": _logprob_tokens(pieces, int(body.get("top_logprobs") or 1))}
    model = state.snapshot or (body.get("model", state.model) if isinstance(body, dict) else state.model)
    return 200, completion(model, messages, reply, logprobs, state.fingerprint)


def batch_output_line(state: "_State", line: dict, number: int) -> dict:
    """The OpenAI batch *output* line answering one batch *input* line (``custom_id``, ``body``)."""
    status, data = answer_completion(state, line.get("body"))
    return {"id": f"batch_req_{number}", "custom_id": line.get("custom_id"),
            "response": {"status_code": status, "request_id": f"req_{number}", "body": data}, "error": None}


def _schema_of(body: Any) -> tuple[dict | None, str]:
    """The JSON schema a request asks its answer to follow, and the response_format type."""
    fmt = body.get("response_format") if isinstance(body, dict) else None
    if not isinstance(fmt, dict):
        return None, ""
    kind = str(fmt.get("type", ""))
    schema = (fmt.get("json_schema") or {}).get("schema") if kind == "json_schema" else fmt.get("schema")
    return (schema if isinstance(schema, dict) else None), kind


_WORDS = re.compile(r"\s*\S+")


def _structured_pieces(free_text: str, schema: dict) -> list[tuple[str, list[tuple[str, float]] | None]]:
    """The schema's object built from a free-text verdict, as tokens (text, scripted alternatives)."""
    ratings = re.findall(r"\[\[(\d)\]\]", free_text)
    verdicts = re.findall(r"\[\[(YES|NO)\]\]", free_text)
    brace = free_text.rfind("{")
    try:
        labels = json.loads(free_text[brace:]) if brace >= 0 else {}
    except json.JSONDecodeError:
        labels = {}
    pieces: list[tuple[str, list[tuple[str, float]] | None]] = [("{", None)]
    for number, (name, spec) in enumerate(schema.get("properties", {}).items()):
        pieces.append((("" if number == 0 else ", ") + json.dumps(name) + ":", None))
        if spec.get("type") == "string" and "enum" not in spec:
            words = _WORDS.findall(json.dumps(free_text.splitlines()[0] if free_text else "")[1:-1])
            pieces += [(' "', None)] + [(word, None) for word in words] + [('"', None)]
        elif spec.get("type") == "integer":
            k = int(ratings[-1]) if ratings else 0
            pieces.append((f" {k}", [(f" {k}", 0.7), (f" {(k + 1) % 6}", 0.2), (" x", 0.1)]))
        elif spec.get("type") == "string":
            value = verdicts[-1] if verdicts else "NO"
            other = "NO" if value == "YES" else "YES"
            pieces += [(f' "{value}', [(f' "{value}', 0.8), (f' "{other}', 0.15), (' "Maybe', 0.05)]), ('"', None)]
        else:
            flag = bool(labels.get(name, False)) if isinstance(labels, dict) else False
            pieces.append((f" {json.dumps(flag)}", [(f" {json.dumps(flag)}", 0.9), (f" {json.dumps(not flag)}", 0.1)]))
    return pieces + [("}", None)]


def _logprob_tokens(pieces: list[tuple[str, list[tuple[str, float]] | None]], top: int) -> list[dict]:
    """OpenAI's ``logprobs.content``: one entry per token with its ``top`` alternatives."""
    tokens = []
    for text, alternatives in pieces:
        ranked = alternatives or [(text, 1.0)]
        tokens.append({"token": text, "logprob": math.log(ranked[0][1]), "bytes": None,
                       "top_logprobs": [{"token": t, "logprob": math.log(p), "bytes": None}
                                        for t, p in ranked[:top]]})
    return tokens


class _Server(ThreadingHTTPServer):
    request_queue_size = 256      # the default 5 drops bursts of new connections (1 s SYN retries)
    daemon_threads = True


class FakeOpenAIServer:
    """The server; a context manager that starts it on 127.0.0.1 at a free port and stops it."""

    def __init__(self, answer: Callable[[list[dict]], Any] = rubric_answer, *, fault_rate: float = 0.0,
                 fault_kinds: tuple[str, ...] = FAULT_KINDS, seed: int = 0,
                 fault_rule: Callable[[int, Any], str | None] | None = None, latency_s: float = 0.0,
                 timeout_sleep_s: float = 2.0, slow_s: float = 0.2, retry_after: str = "0.05",
                 model: str = "judge-model", port: int = 0, unsupported: tuple[str, ...] = (),
                 slots: int = 0, models: tuple[str, ...] = (), framing: str = "length", echo: bool = False,
                 snapshot: str = "", fingerprint: str = FINGERPRINT) -> None:
        unknown = set(fault_kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; use {FAULT_KINDS}")
        self._state = _State(answer, fault_rate, tuple(fault_kinds), fault_rule, latency_s,
                             timeout_sleep_s, slow_s, retry_after, model, random.Random(seed),
                             tuple(unsupported), slots, tuple(models), framing, echo, snapshot, fingerprint)
        self.batch = self._state.batch = BatchAPI(lambda line, number: batch_output_line(self._state, line, number))
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
    def gets(self) -> list[str]:
        return list(self._state.gets)

    @property
    def faults(self) -> dict[str, int]:
        return dict(self._state.faults)

    def set(self, **settings: Any) -> None:
        """Change settings while running, e.g. ``server.set(fault_rate=0.0, latency_s=0.1, seed=1)``."""
        for name, value in settings.items():
            if name == "seed":
                self._state.rng = random.Random(value)
                continue
            if not hasattr(self._state, name) or name in ("lock", "requests", "faults", "completions", "gets"):
                raise AttributeError(f"not a server setting: {name}")
            setattr(self._state, name, value)

    def answer_offline(self, lines: list[dict]) -> list[dict]:
        """Batch output lines for batch input lines, answered as this server would, without HTTP
        (an engine elsewhere: ``vllm run-batch``, Ray); nothing is counted."""
        return [batch_output_line(self._state, line, number) for number, line in enumerate(lines)]

    def reset(self) -> None:
        """Forget recorded requests, answers and faults."""
        with self._state.lock:
            self._state.requests.clear()
            self._state.completions = 0
            self._state.faults.clear()
            self._state.gets.clear()

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
