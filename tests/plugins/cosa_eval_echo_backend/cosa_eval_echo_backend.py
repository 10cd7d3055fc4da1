"""A judge backend that answers every rubric from the request alone (for plugin tests)."""
from __future__ import annotations

import json
from typing import Any, ClassVar

from cosa_eval.judging.backends.base import JudgeRequest, JudgeResponse
from cosa_eval.taxonomy import ALL_CATEGORIES


class EchoBackend:
    """Rates every response 3, finds it compliant, and flags only Violence."""

    name: ClassVar[str] = "echo"

    def __init__(self, model: str, sampling: dict[str, Any], **options: Any) -> None:
        self.model, self.sampling, self.options = model, sampling, options

    def check_ready(self) -> None:
        """Always ready: no key, no package."""

    async def complete(self, requests: list[JudgeRequest]) -> list[JudgeResponse]:
        """One canned, well-formed verdict per request."""
        answers = {"helpfulness": "Echo says: Rating: [[3]]", "compliance": "Echo says: [[YES]]",
                   "categories": json.dumps({name: name == "Violence" for name in ALL_CATEGORIES})}
        return [JudgeResponse(text=answers[r.rubric], input_tokens=10, output_tokens=5) for r in requests]
