"""How an HTTP judge's failures are classified: retried, final, or a one-line setup error."""
from __future__ import annotations

import email.utils
import time
from typing import Any

from ...errors import CosaError, redact

RETRY_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))
OVERLOAD_STATUS = frozenset({429, 503})
DETAIL_CHARS = 300
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "logprobs", "grammar")


class Retryable(Exception):
    """A failure worth another attempt; ``wait`` is the server's Retry-After, if any;
    ``overload`` says the server is saturated (the in-flight limit backs off)."""

    def __init__(self, detail: str, wait: float | None = None, *, overload: bool = False) -> None:
        super().__init__(detail)
        self.wait, self.overload = wait, overload


class FinalFailure(Exception):
    """A failure that another attempt would repeat."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def scrub(text: str) -> str:
    """An error detail to store: key material masked FIRST (``errors.redact``), then cut to length."""
    return redact(text)[:DETAIL_CHARS]


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
        pass
    try:                                    # an HTTP date; anything else: no hint, back off as usual
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def status_failure(status: int, body: str, headers: Any, model: str, verdict_format: str) -> Exception:
    """An HTTP error answer classified: 429/5xx are retried (after Retry-After); a content-filter
    400 is a judge refusal; a rejected constrained-output field is a setup error naming the option
    to turn off."""
    rejected = verdict_format != "free" and any(word in body.lower() for word in _FORMAT_WORDS)
    if status in (400, 422, 500) and rejected:         # llama-cpp-python answers 500 for a bad field
        fix = ("set verdict_format: free (or json_schema) in the judge.yaml" if verdict_format == "logprobs"
               else "set verdict_format: free in the judge.yaml, or backend_options.schema_style: "
               "json_object for servers that take {type: json_object, schema} (llama-cpp-python)")
        return CosaError(f"the judge server rejected verdict_format {verdict_format} (HTTP {status}: "
                         f"{' '.join(scrub(body).split())[:160]}); {fix}")
    if status in RETRY_STATUS:
        return Retryable(f"HTTP {status}", retry_after_seconds(headers),
                      overload=status in OVERLOAD_STATUS or status >= 500)
    if status in (401, 403):
        return CosaError(f"the judge server rejected the API key (HTTP {status}); check OPENAI_API_KEY "
                         "(or AZURE_OPENAI_API_KEY) and the server URL")
    if status == 404:
        return CosaError(f"the judge server answered HTTP 404 for model {model!r}; check the "
                         "judge.yaml model: and OPENAI_BASE_URL (GET /v1/models lists what it serves)")
    if status == 400 and "content_filter" in body.replace(" ", "_").lower():
        return FinalFailure("judge_refused", "the judge's content filter blocked the request")
    return FinalFailure("api_error", f"HTTP {status}: {body}")
