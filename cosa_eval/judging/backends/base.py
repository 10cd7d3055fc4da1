"""The one protocol every judge backend implements; backends are found via entry points.

A backend turns a batch of chat requests into completions. Everything else a judge needs
(cache, retries of unparseable output, parsing, budgets, progress) lives in the engine, so a
third-party backend is one small class registered under the ``cosa_eval.judges`` entry point group.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

ENTRY_POINT_GROUP = "cosa_eval.judges"


@dataclass(frozen=True)
class JudgeRequest:
    """One judge call: chat messages, plus the answers a logit-scoring backend may weigh."""

    key: str                                  # content hash; the engine's cache key
    messages: tuple[dict[str, str], ...]      # [{"role": "system"|"user", "content": ...}, ...]
    rubric: str                               # "helpfulness" | "compliance" | "categories"
    verdict: str = ""                         # "rating" | "yes_no" | "categories": the verdict asked for
    choices: tuple[str, ...] = ()             # e.g. ("0", ..., "5") or ("YES", "NO"); empty = free text
    verdict_format: str = "free"              # "free" | "json_schema" | "logprobs" (judge.yaml)


@dataclass
class JudgeResponse:
    """What came back for one request: text (or choice probabilities), or a typed failure."""

    text: str | None = None
    choice_probs: dict[str, float] | None = None   # logit scoring: normalised probability per choice
    failure: str | None = None                     # "api_error" | "truncated" | "judge_refused" ...
    detail: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """A judge backend. ``options`` come from the judge YAML's ``backend_options``."""

    name: ClassVar[str]

    def __init__(self, model: str, sampling: dict[str, Any], **options: Any) -> None: ...

    def check_ready(self) -> None:
        """Raise ``CosaError`` saying how to fix it if this backend cannot run (key, package)."""

    async def complete(self, requests: list[JudgeRequest]) -> list[JudgeResponse]:
        """Answer every request, in order; never raise for one request's failure."""
