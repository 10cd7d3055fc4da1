"""Judge backend for the OpenAI API, Azure OpenAI, and any OpenAI-compatible server.

Keys come only from the environment (``OPENAI_API_KEY``, ``AZURE_OPENAI_API_KEY``) and are never
stored. Every call goes through the official client (:mod:`.http_client`), with its own retries
off: this backend retries 429/5xx/timeouts/connection errors, malformed and empty answers itself,
with jittered exponential backoff that honours ``Retry-After``, and caps each attempt at
``timeout_s`` in all. Calls in flight follow :class:`~.pacing.AdaptiveLimit` (start low, ramp up,
back off on overload). Answers are read as plain JSON (no response models), and any credential a
server echoes is masked before the answer goes anywhere.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import time
from typing import Any, Callable, ClassVar

from ...errors import CosaError
from ...redaction import public_url, redactor, remember_url
from .base import JudgeRequest, JudgeResponse
from .http_client import OPENAI_URL, http_library, make_client
from .http_errors import FinalFailure, Retryable, retry_after_seconds, scrub, status_failure
from .pacing import AdaptiveLimit
from .served import ServedModel
from .structured import VERDICT_KINDS, logprob_response, response_format, structured_response

__all__ = ["OpenAIBackend", "retry_after_seconds"]
SAMPLING_KEYS = frozenset({"temperature", "top_p", "max_tokens", "max_completion_tokens", "seed",
                           "stop", "frequency_penalty", "presence_penalty"})
MAX_RETRY_AFTER_S = 300.0   # a server asking for longer is waited on only this long per attempt
SCHEMA_STYLES = ("json_schema", "json_object")


class OpenAIBackend:
    """Chat completions over HTTP with adaptive, bounded concurrency and bounded, jittered retries."""

    name: ClassVar[str] = "openai"

    def __init__(self, model: str, sampling: dict[str, Any], *, concurrency: int = 16,
                 timeout_s: float = 120.0, max_retries: int = 6, backoff_base_s: float = 1.0,
                 backoff_max_s: float = 60.0, base_url: str | None = None, require_base_url: bool = False,
                 provider: str = "", azure_endpoint: str | None = None, azure_deployment: str | None = None,
                 api_version: str | None = None, start_concurrency: int | None = None,
                 rationale_chars: int = 400, top_logprobs: int = 10, schema_style: str = "json_schema",
                 batch_max_requests: int = 50_000, batch_max_bytes: int = 200 * 2**20,
                 batch_poll_s: float = 30.0) -> None:
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
        remember_url(self.base_url)
        remember_url(self.azure_endpoint)
        # --batch: the provider's limits per input file, and how often a batch is polled
        self.batch_max_requests, self.batch_max_bytes = int(batch_max_requests), int(batch_max_bytes)
        self.batch_poll_s = float(batch_poll_s)
        self.batch_url = "/chat/completions" if self.azure_endpoint else "/v1/chat/completions"
        self._served = ServedModel(model, self.base_url if not self.azure_endpoint else None,
                                   self._api_key, self.timeout_s, endpoint_given=self.explicit_base_url)
        self._loop: Any = None
        self._client: Any = None
        self._redact: Any = None
        self._gate: AdaptiveLimit | None = None

    def _api_key(self) -> str | None:
        if self.azure_endpoint:
            return os.environ.get("AZURE_OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY")
        return os.environ.get("OPENAI_API_KEY")

    def _check_endpoint(self) -> None:
        """A judge pinned to the OpenAI API refuses a foreign OPENAI_BASE_URL it was not given."""
        if self.provider == "openai" and self.base_url and not self.explicit_base_url \
                and self.base_url.rstrip("/") != OPENAI_URL:
            raise CosaError(f"this judge pins the OpenAI API, but OPENAI_BASE_URL={public_url(self.base_url)} points "
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
                            "OpenAI-compatible server")
        if not self._api_key() and not self.base_url:
            var = "AZURE_OPENAI_API_KEY" if self.azure_endpoint else "OPENAI_API_KEY"
            raise CosaError(f"no {var}: export it")
        self._served.resolve()

    def identity(self) -> dict[str, str]:
        """Where and what really answers: endpoint (base URL, Azure deployment, OpenAI) and model."""
        self._check_endpoint()
        if self.azure_endpoint:
            endpoint = f"azure:{public_url(self.azure_endpoint).rstrip('/')} deployment={self.azure_deployment or self.model}"
        else:
            endpoint = public_url(self.base_url or OPENAI_URL).rstrip("/")
        return {"endpoint": endpoint, "model": self._served.resolve()}

    def _azure(self) -> dict[str, str | None] | None:
        if not self.azure_endpoint:
            return None
        return {"azure_endpoint": self.azure_endpoint, "azure_deployment": self.azure_deployment,
                "api_version": self.api_version}

    def batch_client(self) -> Any:
        """A synchronous client for the Files and Batches endpoints (``--batch``)."""
        return make_client(base_url=self.base_url, api_key=self._api_key(), timeout_s=self.timeout_s,
                           connections=2, azure=self._azure(), is_async=False)

    def _client_for_loop(self) -> None:
        """The client and the in-flight limit for this event loop (connections cannot cross loops)."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        maximum = min(self.concurrency, self._served.slots or self.concurrency)
        self._client = make_client(base_url=self.base_url, api_key=self._api_key(), timeout_s=self.timeout_s,
                                   connections=maximum, azure=self._azure())
        self._loop, self._gate = loop, AdaptiveLimit(maximum, self.start_concurrency)
        self._redact = redactor()          # a server may echo a credential: masked before it is kept

    async def complete(self, requests: list[JudgeRequest]) -> list[JudgeResponse]:
        """Answer every request concurrently, in order; failures come back typed, never raised."""
        model = self._served.resolve()
        self._client_for_loop()
        answers = [self._answer(r, *self._body(model, r)) for r in requests]
        return [await answers[0]] if len(answers) == 1 else list(await asyncio.gather(*answers))

    async def aclose(self) -> None:
        """Close this event loop's HTTP client (the engine calls it when a batch is done)."""
        if self._client is not None:
            await self._client.close()
        self._loop, self._client, self._gate, self._redact = None, None, None, None

    def request_body(self, request: JudgeRequest) -> dict[str, Any]:
        """The JSON body of the online call for ``request`` (batch input files carry exactly this)."""
        return self._body(self._served.resolve(), request)[1]

    def read_answer(self, request: JudgeRequest, status: int | None, body: dict[str, Any]) -> JudgeResponse:
        """An answer that came back another way (a batch output line's status and body, or its
        error object when ``status`` is None), read as an online answer is; never raises."""
        mode, mask = _mode(request), self._redact or redactor()
        try:
            if status is None:
                raise Retryable(f"the engine reported an error: {json.dumps(body)}")
            if status != 200:
                raise status_failure(status, mask(json.dumps(body)), None, self.model, mode)
            return _response_of(body, request, mode, mask)
        except FinalFailure as final:
            return JudgeResponse(failure=final.kind, detail=scrub(str(final)))
        except (Retryable, CosaError) as exc:
            return JudgeResponse(failure="api_error", detail=scrub(str(exc)))

    def _body(self, model: str, request: JudgeRequest) -> tuple[str, dict[str, Any]]:
        """The verdict format used and the call's JSON body."""
        mode = _mode(request)
        body: dict[str, Any] = {"model": model, **self.sampling}
        if mode != "free":
            body["response_format"] = response_format(request.verdict, self.rationale_chars, self.schema_style)
        if mode == "logprobs":
            body["logprobs"], body["top_logprobs"] = True, self.top_logprobs
        body["messages"] = list(request.messages)
        return mode, body

    def _delay(self, attempt: int, wait: float | None) -> float:
        if wait is not None:
            return min(wait, MAX_RETRY_AFTER_S) + random.uniform(0, 0.1 * self.backoff_base_s)
        return random.uniform(0, min(self.backoff_max_s, self.backoff_base_s * 2 ** attempt))

    async def _answer(self, request: JudgeRequest, mode: str, body: dict[str, Any]) -> JudgeResponse:
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
            except FinalFailure as final:
                return JudgeResponse(failure=final.kind, detail=scrub(str(final)),
                                     seconds=time.monotonic() - started)
            except Retryable as retry:
                outcome = "overloaded" if retry.overload else "other"
                detail, wait = str(retry), retry.wait
            finally:
                gate.release(epoch, overloaded=outcome == "overloaded", answered=outcome == "answered")
            if attempt < self.max_retries:
                await asyncio.sleep(self._delay(attempt, wait))
        return JudgeResponse(failure="api_error", seconds=time.monotonic() - started,
                             detail=scrub(f"gave up after {self.max_retries + 1} attempts: {detail}"))

    async def _post(self, body: dict[str, Any]) -> Any:
        """POST a completion within ``timeout_s`` in all (httpx's own timeouts bound each read, not
        their sum); ``asyncio.timeout`` where it exists, as ``wait_for`` costs a task per call. The body
        goes as JSON bytes, which the client neither deep-copies nor re-encodes (0.3 ms less CPU per call)."""
        routed = bool(self.azure_endpoint and not self.azure_deployment)   # Azure reads the dict's model
        payload = body if routed else json.dumps(body, ensure_ascii=False).encode("utf-8")
        call = self._client.post("/chat/completions", body=payload, cast_to=http_library().Response)
        if not hasattr(asyncio, "timeout"):                  # Python 3.10
            return await asyncio.wait_for(call, self.timeout_s)
        async with asyncio.timeout(self.timeout_s):
            return await call

    async def _call(self, body: dict[str, Any], request: JudgeRequest, mode: str) -> JudgeResponse:
        """One HTTP attempt, classified into an answer, a retry or a final failure."""
        import openai
        try:
            raw = await self._post(body)
        except (openai.APITimeoutError, asyncio.TimeoutError):
            raise Retryable(f"timed out after {self.timeout_s:g}s", overload=True) from None
        except openai.APIConnectionError as exc:
            raise Retryable(f"connection error ({exc.__cause__ or exc})", overload=True) from None
        except openai.APIStatusError as exc:
            raise status_failure(exc.status_code, self._redact(exc.response.text), exc.response.headers,
                                 self.model, mode) from None
        try:
            data = json.loads(raw.content)
        except (ValueError, TypeError) as exc:
            raise Retryable(f"malformed response ({type(exc).__name__})") from None
        return _response_of(data, request, mode, self._redact)


def _mode(request: JudgeRequest) -> str:
    """The verdict format a request is asked and read in."""
    return request.verdict_format if request.verdict in VERDICT_KINDS else "free"


def _response_of(data: Any, request: JudgeRequest, mode: str, redact: Callable[[str], str]) -> JudgeResponse:
    """Classify a completion: empty/odd answers are retried, length is truncated."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise Retryable("no choices in the response" if choices == [] else "malformed response")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    text, finish = message.get("content"), choice.get("finish_reason")
    text = redact(text) if isinstance(text, str) else text
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    tokens = dict(input_tokens=_count(usage.get("prompt_tokens")), output_tokens=_count(usage.get("completion_tokens")),
                  model=_name(data.get("model"), redact),
                  system_fingerprint=_name(data.get("system_fingerprint"), redact))
    if finish == "content_filter" or message.get("refusal"):
        kind = "content filter" if finish == "content_filter" else "refusal"
        return JudgeResponse(text=text, failure="judge_refused", detail=f"the judge refused ({kind})", **tokens)
    if finish == "length":
        return JudgeResponse(text=text, failure="truncated", detail="the judge hit max_tokens before "
                             "its verdict; raise sampling.max_tokens", **tokens)
    if not isinstance(text, str) or not text.strip():
        raise Retryable("the response has no message content")
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


def _name(value: Any, redact: Callable[[str], str]) -> str:
    """A name the server reported (model, fingerprint): masked, at most 200 characters; else ""."""
    return redact(value)[:200] if isinstance(value, str) else ""


def _count(value: Any) -> int:
    """A token count as the server reported it; anything but a whole number counts as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
