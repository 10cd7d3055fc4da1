"""A judge backend that answers every rubric from the request alone (for plugin tests)."""
from __future__ import annotations

import json
from typing import Any, ClassVar

from cosa_eval.judging.backends.base import JudgeRequest, JudgeResponse
from cosa_eval.taxonomy import ALL_CATEGORIES

ANSWERS = {"rating": "Echo says: Rating: [[3]]", "yes_no": "Echo says: [[YES]]",
           "categories": json.dumps({name: name == "Violence" for name in ALL_CATEGORIES})}


class EchoBackend:
    """Rates every response 3, answers YES, and flags only Violence."""

    name: ClassVar[str] = "echo"

    def __init__(self, model: str, sampling: dict[str, Any], *, concurrency: int, **options: Any) -> None:
        self.model, self.sampling, self.concurrency, self.options = model, sampling, concurrency, options
        self.closed = 0

    def check_ready(self) -> None:
        """Always ready: no key, no package."""

    def identity(self) -> dict[str, str]:
        """Answers come from this process."""
        return {"endpoint": "local", "model": self.model}

    async def complete(self, requests: list[JudgeRequest]) -> list[JudgeResponse]:
        """One canned, well-formed verdict per request, by the verdict it asks for."""
        return [JudgeResponse(text=ANSWERS[r.verdict], input_tokens=10, output_tokens=5) for r in requests]

    async def aclose(self) -> None:
        """Nothing to release; counted so tests can see the engine called it."""
        self.closed += 1
