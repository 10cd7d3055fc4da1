"""Judge backend for the OpenAI API, Azure OpenAI, and any OpenAI-compatible server.

Keys come only from the environment (``OPENAI_API_KEY``, ``AZURE_OPENAI_API_KEY``) and are never
stored. The client's own retries are off; this backend retries 429/5xx/timeouts/connection errors,
malformed and empty answers itself, with jittered exponential backoff that honours ``Retry-After``.
Calls in flight follow :class:`~.pacing.AdaptiveLimit` (start low, ramp up, back off on overload).

Every call's JSON body is built once, and answers are read as plain JSON (no response models). To a
plain-``http://`` server (a local vLLM, llama.cpp, SGLang or Ollama) calls go over :mod:`.wire`, a
lean keep-alive connection pool, with the URL and headers the official client would send; HTTPS,
proxies and Azure go through the official client's ``post``. Both classify answers the same way.
"""
from __future__ import annotations

import asyncio
import functools
import importlib
import json
import os
import random
import time
from typing import Any, ClassVar

from ...errors import CosaError
from .base import JudgeRequest, JudgeResponse
from .http_errors import OPENAI_URL, _Final, _Retry, retry_after_seconds, scrub, status_failure
from .pacing import AdaptiveLimit
from .served import ServedModel
from .structured import VERDICT_KINDS, logprob_response, response_format, structured_response
from .wire import Wire, WireError, usable

__all__ = ["OpenAIBackend", "retry_after_seconds"]
SAMPLING_KEYS = frozenset({"temperature", "top_p", "max_tokens", "max_completion_tokens", "seed",
                           "stop", "frequency_penalty", "presence_penalty"})
MAX_RETRY_AFTER_S = 300.0   # a server asking for longer is waited on only this long per attempt
NO_KEY = "no-key-needed"   # placeholder for local servers that accept any key; not a secret
SCHEMA_STYLES = ("json_schema", "json_object")
POOL_CONNECTIONS = 8        # keep-alive connections per HTTP client (see _client_for_loop)


class OpenAIBackend:
    """Chat completions over HTTP with adaptive, bounded concurrency and bounded, jittered retries."""

    name: ClassVar[str] = "openai"

    def __init__(self, model: str, sampling: dict[str, Any], *, concurrency: int = 16,
                 timeout_s: float = 120.0, max_retries: int = 6, backoff_base_s: float = 1.0,
                 backoff_max_s: float = 60.0, base_url: str | None = None, require_base_url: bool = False,
                 provider: str = "", azure_endpoint: str | None = None, azure_deployment: str | None = None,
                 api_version: str | None = None, start_concurrency: int | None = None,
                 rationale_chars: int = 400, top_logprobs: int = 10, schema_style: str = "json_schema") -> None:
        unknown = sorted(set(sampling) - SAMPLING_KEYS)
        if unknown:
            raise CosaError(f"sampling option {unknown[0]!r} is not supported by the openai backend; "
                            f"use {', '.join(sorted(SAMPLING_KEYS))}")
        if schema_style not in SCHEMA_STYLES:
            raise CosaError(f"backend_options.schema_style must be one of {', '.join(SCHEMA_STYLES)}, "
                            f"got {schema_style!r}")
        self.model, self.sampling = model, dict(sampling)
        self.concurrency = int(concurrency)
        self.start_concurrency = int(start_concurrency or concurrency)    # no ramp unless asked for
        self.timeout_s, self.max_retries = float(timeout_s), int(max_retries)
        self.backoff_base_s, self.backoff_max_s = float(backoff_base_s), float(backoff_max_s)
        self.rationale_chars, self.top_logprobs, self.schema_style = rationale_chars, top_logprobs, schema_style
        self.explicit_base_url = base_url is not None
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        self.require_base_url, self.provider = require_base_url, provider
        self.azure_endpoint = azure_endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT") or None
        self.azure_deployment = azure_deployment
        self.api_version = api_version or os.environ.get("OPENAI_API_VERSION") or "2024-10-21"
        self._served = ServedModel(model, self.base_url if not self.azure_endpoint else None,
                                   self._api_key, self.timeout_s, endpoint_given=self.explicit_base_url)
        self._heads: dict[tuple[str, str, str], tuple[dict[str, Any], bytes]] = {}   # body without messages
        self._loop: Any = None
        self._clients: list[Any] = []
        self._loads: list[int] = []
        self.over_wire = not self.azure_endpoint and usable(self.base_url)   # else the official client
        self._wire: Wire | None = None
        self._target: tuple[str, dict[str, str]] | None = None
        self._gate: AdaptiveLimit | None = None

    def _api_key(self) -> str | None:
        if self.azure_endpoint:
            return os.environ.get("AZURE_OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY")
        return os.environ.get("OPENAI_API_KEY")

    def _check_endpoint(self) -> None:
        """A judge pinned to the OpenAI API refuses a foreign OPENAI_BASE_URL it was not given."""
        if self.provider == "openai" and self.base_url and not self.explicit_base_url \
                and self.base_url.rstrip("/") != OPENAI_URL:
            raise CosaError(f"this judge pins the OpenAI API, but OPENAI_BASE_URL={self.base_url} points "
                            "elsewhere; unset OPENAI_BASE_URL, pass --judge-endpoint URL to judge with that "
                            "server under this judge's name, or use --judge openai-compatible")

    def check_ready(self) -> None:
        """Raise ``CosaError`` naming the fix when the package, key, server or model is wrong."""
        try:
            import openai  # noqa: F401
        except ImportError:
            raise CosaError("the openai judge backend needs the openai package: "
                            "pip install 'cosa-eval[api]'") from None
        self._check_endpoint()
        if self.require_base_url and not self.base_url:
            raise CosaError("no OPENAI_BASE_URL: export OPENAI_BASE_URL=http://HOST:PORT/v1 for your "
                            "OpenAI-compatible server, or choose another judge with --judge/COSA_JUDGE")
        if not self._api_key() and not self.base_url:
            var = "AZURE_OPENAI_API_KEY" if self.azure_endpoint else "OPENAI_API_KEY"
            raise CosaError(f"no {var}: export it, choose another judge with --judge/COSA_JUDGE, or "
                            "run lm_eval with --predict_only --log_samples and judge later with "
                            "'cosa-eval judge'")
        self._served.resolve()
        if self.over_wire:
            self._wire_target()          # built once, before any judging

    def identity(self) -> dict[str, str]:
        """Where and what really answers: endpoint (base URL, Azure deployment, OpenAI) and model."""
        self._check_endpoint()
        if self.azure_endpoint:
            endpoint = f"azure:{self.azure_endpoint.rstrip('/')} deployment={self.azure_deployment or self.model}"
        else:
            endpoint = (self.base_url or OPENAI_URL).rstrip("/")
        return {"endpoint": endpoint, "model": self._served.resolve()}

    def _client_for_loop(self) -> None:
        """The wire or the clients, and the in-flight limit, for this event loop (asyncio
        connections cannot cross loops).

        On the official path calls are spread over several clients of at most ``POOL_CONNECTIONS``
        keep-alive connections each: httpx scans its whole pool on every request and every
        response, so small pools cost far less CPU per call than one large one."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        maximum = min(self.concurrency, self._served.slots or self.concurrency)
        if self.over_wire:
            self._wire = Wire(*self._wire_target(), self.timeout_s)
        else:
            pools, verify = -(-maximum // POOL_CONNECTIONS), _tls_context()
            self._clients = [self._new_client(-(-maximum // pools), verify) for _ in range(pools)]
            self._loads = [0] * pools
        self._loop, self._gate = loop, AdaptiveLimit(maximum, self.start_concurrency)

    def _wire_target(self) -> tuple[str, dict[str, str]]:
        """The URL and headers (auth included) the official client would send, read once from a
        client that never sends (hence no TLS context for it)."""
        if self._target is not None:
            return self._target
        import openai
        client = openai.AsyncOpenAI(base_url=self.base_url, api_key=self._api_key() or NO_KEY, max_retries=0,
                                    http_client=openai.DefaultAsyncHttpxClient(verify=False))
        headers = {name: value for name, value in {**client.default_headers, **client.auth_headers}.items()
                   if isinstance(value, str)}
        self._target = f"{str(client.base_url).rstrip('/')}/chat/completions", headers
        return self._target

    def _new_client(self, connections: int, verify: Any) -> Any:
        import openai
        httpx = http_library()
        http = openai.DefaultAsyncHttpxClient(
            timeout=httpx.Timeout(self.timeout_s), verify=verify,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections,
                                keepalive_expiry=30))
        common = dict(api_key=self._api_key() or NO_KEY, max_retries=0, timeout=self.timeout_s,
                      http_client=http)
        if self.azure_endpoint:
            return openai.AsyncAzureOpenAI(azure_endpoint=self.azure_endpoint,
                                           azure_deployment=self.azure_deployment,
                                           api_version=self.api_version, **common)
        return openai.AsyncOpenAI(base_url=self.base_url, **common)

    async def complete(self, requests: list[JudgeRequest]) -> list[JudgeResponse]:
        """Answer every request concurrently, in order; failures come back typed, never raised."""
        model = self._served.resolve()
        self._client_for_loop()
        answers = [self._answer(r, *self._body(model, r)) for r in requests]
        return [await answers[0]] if len(answers) == 1 else list(await asyncio.gather(*answers))

    async def aclose(self) -> None:
        """Close this event loop's HTTP clients (the engine calls it when a batch is done)."""
        for client in self._clients:
            await client.close()
        if self._wire is not None:
            await self._wire.aclose()
        self._loop, self._clients, self._wire, self._gate = None, [], None, None

    def _body(self, model: str, request: JudgeRequest) -> tuple[str, bytes | dict[str, Any]]:
        """The verdict format used and the call's JSON body, serialised once for all its attempts
        (a dict only where Azure routes by the body's model, never over the wire); the fields other
        than the messages are encoded once per model and verdict format."""
        mode = request.verdict_format if request.verdict in VERDICT_KINDS else "free"
        head = (model, mode, request.verdict)
        if head not in self._heads:
            fields: dict[str, Any] = {"model": model, **self.sampling}
            if mode != "free":
                fields["response_format"] = response_format(request.verdict, self.rationale_chars,
                                                            self.schema_style)
            if mode == "logprobs":
                fields["logprobs"], fields["top_logprobs"] = True, self.top_logprobs
            text = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
            self._heads[head] = fields, f'{text[:-1]},"messages":'.encode("utf-8")
        fields, prefix = self._heads[head]
        if self.azure_endpoint and not self.azure_deployment:
            return mode, {**fields, "messages": list(request.messages)}
        messages = json.dumps(request.messages, ensure_ascii=False, separators=(",", ":"))
        return mode, prefix + messages.encode("utf-8") + b"}"

    def _delay(self, attempt: int, wait: float | None) -> float:
        if wait is not None:
            return min(wait, MAX_RETRY_AFTER_S) + random.uniform(0, 0.1 * self.backoff_base_s)
        return random.uniform(0, min(self.backoff_max_s, self.backoff_base_s * 2 ** attempt))

    async def _answer(self, request: JudgeRequest, mode: str, body: bytes | dict[str, Any]) -> JudgeResponse:
        started, detail = time.monotonic(), ""
        gate = self._gate
        assert gate is not None
        for attempt in range(self.max_retries + 1):
            epoch, outcome, wait = await gate.acquire(), "other", None
            try:
                response = await self._call(body, request, mode)
                outcome = "answered"
                response.seconds = time.monotonic() - started
                return response
            except _Final as final:
                return JudgeResponse(failure=final.kind, detail=scrub(str(final)),
                                     seconds=time.monotonic() - started)
            except _Retry as retry:
                outcome = "overloaded" if retry.overload else "other"
                detail, wait = str(retry), retry.wait
            finally:
                gate.release(epoch, overloaded=outcome == "overloaded", answered=outcome == "answered")
            if attempt < self.max_retries:
                await asyncio.sleep(self._delay(attempt, wait))
        return JudgeResponse(failure="api_error", seconds=time.monotonic() - started,
                             detail=scrub(f"gave up after {self.max_retries + 1} attempts: {detail}"))

    async def _call(self, body: bytes | dict[str, Any], request: JudgeRequest, mode: str) -> JudgeResponse:
        """One HTTP attempt, classified into an answer, a retry or a final failure."""
        content = await (self._over_wire(body, mode) if self.over_wire else self._over_client(body, mode))
        try:
            data = json.loads(content)
        except (ValueError, TypeError) as exc:
            raise _Retry(f"malformed response ({type(exc).__name__})") from None
        return _response_of(data, request, mode)

    async def _over_wire(self, body: bytes | dict[str, Any], mode: str) -> bytes:
        assert self._wire is not None and isinstance(body, bytes)
        try:
            answer = await self._wire.post(body)
        except asyncio.TimeoutError:
            raise _Retry(f"timed out after {self.timeout_s:g}s", overload=True) from None
        except WireError as exc:
            raise _Retry(f"connection error ({exc})", overload=True) from None
        if answer.status >= 300:
            raise status_failure(answer.status, answer.body.decode("utf-8", "replace"), answer.headers,
                                 self.model, mode) from None
        return answer.body

    async def _over_client(self, body: bytes | dict[str, Any], mode: str) -> bytes:
        """One call through the least busy official client (it has a free connection)."""
        import openai
        loads = self._loads
        pool = loads.index(min(loads))
        loads[pool] += 1
        try:
            raw = await self._clients[pool].post("/chat/completions", body=body, cast_to=http_library().Response)
            return raw.content
        except openai.APITimeoutError:
            raise _Retry(f"timed out after {self.timeout_s:g}s", overload=True) from None
        except openai.APIConnectionError as exc:
            raise _Retry(f"connection error ({exc})", overload=True) from None
        except openai.APIStatusError as exc:
            raise status_failure(exc.status_code, str(exc.body or exc.message), exc.response.headers,
                                 self.model, mode) from None
        finally:
            loads[pool] -= 1


@functools.lru_cache(maxsize=1)
def http_library() -> Any:
    """The HTTP package the installed openai client is built on (httpx; httpx2 for openai 3)."""
    import openai
    base = next(c for c in openai.DefaultAsyncHttpxClient.__mro__ if c.__name__ == "AsyncClient")
    return importlib.import_module(base.__module__.split(".")[0])


def _tls_context() -> Any:
    """One TLS context (certifi's CA bundle, as httpx uses) shared by the clients: loading the CA
    bundle costs ~50 ms of CPU per client otherwise."""
    import ssl
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def _response_of(data: Any, request: JudgeRequest, mode: str) -> JudgeResponse:
    """Classify a completion: empty/odd answers are retried, length is truncated."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise _Retry("no choices in the response" if choices == [] else "malformed response")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    text, finish = message.get("content"), choice.get("finish_reason")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    tokens = dict(input_tokens=int(usage.get("prompt_tokens") or 0),
                  output_tokens=int(usage.get("completion_tokens") or 0))
    if finish == "content_filter" or message.get("refusal"):
        kind = "content filter" if finish == "content_filter" else "refusal"
        return JudgeResponse(text=text, failure="judge_refused", detail=f"the judge refused ({kind})", **tokens)
    if finish == "length":
        return JudgeResponse(text=text, failure="truncated", detail="the judge hit max_tokens before "
                             "its verdict; raise sampling.max_tokens", **tokens)
    if not isinstance(text, str) or not text.strip():
        raise _Retry("the response has no message content")
    if mode == "free":
        return JudgeResponse(text=text, **tokens)
    if mode == "json_schema":
        return structured_response(request, text, **tokens)
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list) or not content:
        raise CosaError("the judge server returned no logprobs; it does not support them: set "
                        "verdict_format: json_schema (or free) in the judge.yaml")
    return logprob_response(request, text, content, **tokens)
