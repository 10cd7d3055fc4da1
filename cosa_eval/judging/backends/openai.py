"""Judge backend for the OpenAI API, Azure OpenAI, and any OpenAI-compatible server.

Keys come only from the environment (``OPENAI_API_KEY``, ``AZURE_OPENAI_API_KEY``) and are never
stored. The client's own retries are off; this backend retries 429/5xx/timeouts/connection errors
and malformed answers itself, with jittered exponential backoff that honours ``Retry-After``.
"""
from __future__ import annotations

import asyncio
import email.utils
import os
import random
import time
from typing import Any, ClassVar

from ...errors import CosaError
from .base import JudgeRequest, JudgeResponse

RETRY_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))
SAMPLING_KEYS = frozenset({"temperature", "top_p", "max_tokens", "max_completion_tokens", "seed",
                           "stop", "frequency_penalty", "presence_penalty"})
MAX_RETRY_AFTER_S = 300.0   # a server asking for longer is waited on only this long per attempt
NO_KEY = "no-key-needed"   # placeholder for local servers that accept any key; not a secret


class _Retry(Exception):
    """A failure worth another attempt; ``wait`` is the server's Retry-After, if any."""

    def __init__(self, detail: str, wait: float | None = None) -> None:
        super().__init__(detail)
        self.wait = wait


class _Final(Exception):
    """A failure that another attempt would repeat."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``retry-after`` (number or HTTP date)."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value.strip() else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


class OpenAIBackend:
    """Chat completions over HTTP with bounded concurrency and bounded, jittered retries."""

    name: ClassVar[str] = "openai"

    def __init__(self, model: str, sampling: dict[str, Any], *, concurrency: int = 16,
                 timeout_s: float = 120.0, max_retries: int = 6, backoff_base_s: float = 1.0,
                 backoff_max_s: float = 60.0, base_url: str | None = None, require_base_url: bool = False,
                 azure_endpoint: str | None = None, azure_deployment: str | None = None,
                 api_version: str | None = None) -> None:
        unknown = sorted(set(sampling) - SAMPLING_KEYS)
        if unknown:
            raise CosaError(f"sampling option {unknown[0]!r} is not supported by the openai backend; "
                            f"use {', '.join(sorted(SAMPLING_KEYS))}")
        self.model, self.sampling = model, dict(sampling)
        self.concurrency, self.timeout_s, self.max_retries = concurrency, float(timeout_s), int(max_retries)
        self.backoff_base_s, self.backoff_max_s = float(backoff_base_s), float(backoff_max_s)
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        self.require_base_url = require_base_url
        self.azure_endpoint = azure_endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT") or None
        self.azure_deployment = azure_deployment
        self.api_version = api_version or os.environ.get("OPENAI_API_VERSION") or "2024-10-21"
        self._loop: Any = None
        self._client: Any = None
        self._gate: asyncio.Semaphore | None = None

    def _api_key(self) -> str | None:
        if self.azure_endpoint:
            return os.environ.get("AZURE_OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY")
        return os.environ.get("OPENAI_API_KEY")

    def check_ready(self) -> None:
        """Raise ``CosaError`` naming the fix when the package, key or server URL is missing."""
        try:
            import openai  # noqa: F401
        except ImportError:
            raise CosaError("the openai judge backend needs the openai package: "
                            "pip install 'cosa-eval[api]'") from None
        if self.require_base_url and not self.base_url:
            raise CosaError("no OPENAI_BASE_URL: export OPENAI_BASE_URL=http://HOST:PORT/v1 for your "
                            "OpenAI-compatible server, or choose another judge with --judge/COSA_JUDGE")
        if not self._api_key() and not self.base_url:
            var = "AZURE_OPENAI_API_KEY" if self.azure_endpoint else "OPENAI_API_KEY"
            raise CosaError(f"no {var}: export it, choose another judge with --judge/COSA_JUDGE, or "
                            "run lm_eval with --predict_only --log_samples and judge later with "
                            "'cosa-eval judge'")

    def identity(self) -> dict[str, str]:
        """Where and what answers: the base URL (or Azure endpoint/deployment) and the model."""
        if self.azure_endpoint:
            return {"endpoint": f"{self.azure_endpoint}#{self.azure_deployment or self.model}", "model": self.model}
        return {"endpoint": self.base_url or "api.openai.com", "model": self.model}

    def _client_for_loop(self) -> Any:
        """One client and semaphore per event loop (an asyncio client cannot cross loops)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            import openai
            common = dict(api_key=self._api_key() or NO_KEY, max_retries=0, timeout=self.timeout_s)
            if self.azure_endpoint:
                self._client = openai.AsyncAzureOpenAI(azure_endpoint=self.azure_endpoint,
                                                       azure_deployment=self.azure_deployment,
                                                       api_version=self.api_version, **common)
            else:
                self._client = openai.AsyncOpenAI(base_url=self.base_url, **common)
            self._loop, self._gate = loop, asyncio.Semaphore(self.concurrency)
        return self._client

    async def complete(self, requests: list[JudgeRequest]) -> list[JudgeResponse]:
        """Answer every request concurrently, in order; failures come back typed, never raised."""
        client = self._client_for_loop()
        return list(await asyncio.gather(*(self._answer(client, request) for request in requests)))

    async def aclose(self) -> None:
        """Close this event loop's HTTP client (the engine calls it when a batch is done)."""
        if self._client is not None:
            await self._client.close()
        self._loop = self._client = self._gate = None

    def _scrub(self, text: str) -> str:
        """Remove any key material from an error detail before it can be stored."""
        for name in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY"):
            secret = os.environ.get(name)
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text[:300]

    def _delay(self, attempt: int, wait: float | None) -> float:
        if wait is not None:
            return min(wait, MAX_RETRY_AFTER_S) + random.uniform(0, 0.1 * self.backoff_base_s)
        return random.uniform(0, min(self.backoff_max_s, self.backoff_base_s * 2 ** attempt))

    async def _answer(self, client: Any, request: JudgeRequest) -> JudgeResponse:
        started, detail = time.monotonic(), ""
        assert self._gate is not None
        for attempt in range(self.max_retries + 1):
            try:
                async with self._gate:
                    response = await self._call(client, request)
                response.seconds = time.monotonic() - started
                return response
            except _Final as final:
                return JudgeResponse(failure=final.kind, detail=self._scrub(str(final)),
                                     seconds=time.monotonic() - started)
            except _Retry as retry:
                detail = str(retry)
                if attempt < self.max_retries:
                    await asyncio.sleep(self._delay(attempt, retry.wait))
        return JudgeResponse(failure="api_error", seconds=time.monotonic() - started,
                             detail=self._scrub(f"gave up after {self.max_retries + 1} attempts: {detail}"))

    async def _call(self, client: Any, request: JudgeRequest) -> JudgeResponse:
        """One HTTP attempt, classified into an answer, a retry or a final failure."""
        import openai
        try:
            completion = await client.chat.completions.create(
                model=self.model, messages=list(request.messages), **self.sampling)
        except openai.APITimeoutError:
            raise _Retry(f"timed out after {self.timeout_s:g}s") from None
        except openai.APIConnectionError as exc:
            raise _Retry(f"connection error ({exc})") from None
        except openai.APIStatusError as exc:
            raise _status_failure(exc, self.model) from None
        except (ValueError, TypeError, KeyError, openai.APIResponseValidationError) as exc:
            raise _Retry(f"malformed response ({type(exc).__name__})") from None
        return _response_of(completion)


def _status_failure(exc: Any, model: str) -> Exception:
    """429/5xx are retried (after Retry-After); a content-filter 400 is a judge refusal."""
    status = getattr(exc, "status_code", 0)
    body = str(getattr(exc, "body", "") or getattr(exc, "message", ""))
    if status in RETRY_STATUS:
        return _Retry(f"HTTP {status}", retry_after_seconds(getattr(exc.response, "headers", None)))
    if status in (401, 403):
        return CosaError(f"the judge server rejected the API key (HTTP {status}); check OPENAI_API_KEY "
                         "(or AZURE_OPENAI_API_KEY) and the server URL")
    if status == 404:
        return CosaError(f"the judge server answered HTTP 404 for model {model!r}; check the "
                         "judge.yaml model: and OPENAI_BASE_URL (GET /v1/models lists what it serves)")
    if status == 400 and "content_filter" in body.replace(" ", "_").lower():
        return _Final("judge_refused", "the judge's content filter blocked the request")
    return _Final("api_error", f"HTTP {status}: {body[:200]}")


def _response_of(completion: Any) -> JudgeResponse:
    """Classify a parsed completion: empty/odd answers are retried, length is truncated."""
    choices = getattr(completion, "choices", None)
    if not choices:
        raise _Retry("no choices in the response" if choices == [] else "malformed response")
    choice = choices[0]
    message = getattr(choice, "message", None)
    text = getattr(message, "content", None)
    usage = getattr(completion, "usage", None)
    tokens = dict(input_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                  output_tokens=getattr(usage, "completion_tokens", 0) or 0)
    if choice.finish_reason == "content_filter" or getattr(message, "refusal", None):
        return JudgeResponse(text=text, failure="judge_refused", detail="the judge refused "
                             f"({'content filter' if choice.finish_reason == 'content_filter' else 'refusal'})",
                             **tokens)
    if choice.finish_reason == "length":
        return JudgeResponse(text=text, failure="truncated", detail="the judge hit max_tokens before "
                             "its verdict; raise sampling.max_tokens", **tokens)
    if text is None:
        raise _Retry("the response has no message content")
    return JudgeResponse(text=text, **tokens)
