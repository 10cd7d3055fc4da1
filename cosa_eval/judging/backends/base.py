"""The whole backend contract: what every judge backend implements, one hook per method.

A backend turns a batch of chat requests into completions. Everything else a judge needs
(cache, re-asks of unparseable output, parsing, budgets, progress) lives in the engine, so a
third-party backend is one small class registered under the ``cosa_eval.judges`` entry point group.
The engine always passes ``concurrency``, calls ``check_ready`` before the first request and
``aclose`` after every batch; a backend learns whether to score choices from ``request.choices``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

ENTRY_POINT_GROUP = "cosa_eval.judges"


@dataclass(frozen=True)
class JudgeRequest:
    """One judge call: chat messages, the verdict they ask for, and the answers to score, if any."""

    key: str                                  # content hash; the engine's cache key
    messages: tuple[dict[str, str], ...]      # [{"role": "system"|"user"|"assistant", "content": ...}, ...]
    rubric: str                               # e.g. "helpfulness", "compliance", "categories", "addressed"
    verdict: str = "rating"                   # "rating" | "yes_no" | "categories"
    choices: tuple[str, ...] = ()             # non-empty: score these answers ("0".."5", "YES"/"NO")
    verdict_format: str = "free"              # "free" | "json_schema" | "logprobs" (judge.yaml)


@dataclass
class JudgeResponse:
    """What came back for one request: text (or choice probabilities), or a typed failure."""

    text: str | None = None
    choice_probs: dict[str, float] | None = None   # scoring: normalised probability per choice
    failure: str | None = None                     # "api_error" | "truncated" | "judge_refused" ...
    detail: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    model: str = ""                                # the snapshot the API says answered ("" = not told)
    system_fingerprint: str = ""                   # its backend configuration, as the API reports it
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """A judge backend. ``options`` come from the judge YAML's ``backend_options``."""

    name: ClassVar[str]

    def __init__(self, model: str, sampling: dict[str, Any], *, concurrency: int, **options: Any) -> None:
        """Store the settings; load nothing heavy and call nothing yet."""

    def check_ready(self) -> None:
        """Raise ``CosaError`` saying how to fix it if this backend cannot run (key, package, server)."""

    def identity(self) -> dict[str, str]:
        """``{"endpoint": ..., "model": ...}`` of what really answers (configured values before check_ready)."""

    async def complete(self, requests: list[JudgeRequest]) -> list[JudgeResponse]:
        """Answer every request, in order; never raise for one request's failure."""

    async def aclose(self) -> None:
        """Release what this event loop's batch held (clients, connections)."""
