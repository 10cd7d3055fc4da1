"""Read the judge's FINAL verdict from its output: a value, or a typed failure, never a default."""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

from ..taxonomy import ALL_CATEGORIES


@dataclass(frozen=True)
class Parsed:
    """A verdict value, or a failure kind from ``types.FAILURE_KINDS`` with a detail."""

    value: Any = None
    failure: str | None = None
    detail: str = ""

    @property
    def is_valid(self) -> bool:
        """A value was read (no failure)."""
        return self.failure is None


_RATING_BRACKETS = re.compile(r"\[\[\s*([+-]?\d+(?:\.\d+)?)\s*\]\]")
_RATING_LINE = re.compile(r"rating\s*[:=]\s*\**\s*\[?\s*([+-]?\d+(?:\.\d+)?)\s*\]?", re.IGNORECASE)
_YES_NO = re.compile(r"\[\[\s*(yes|no)\s*\]\]", re.IGNORECASE)
_REFUSAL = re.compile(
    r"\b(i\s*(?:am|'m)\s+(?:sorry|unable)|i\s+(?:can(?:no|'|’)?t|won(?:'|’)t|will\s+not|must\s+decline)\s+"
    r"(?:help|assist|comply|provide|evaluate|rate|do\s+that|engage|continue|fulfil)|as\s+an\s+ai\b.*\bcannot)",
    re.IGNORECASE)
_SNIPPET = 80


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET else "..." + flat[-_SNIPPET:]


def _no_verdict(text: str, expected: str) -> Parsed:
    """Failure for an output with no verdict: a judge refusal, or plain unparseable."""
    if not text.strip():
        return Parsed(failure="unparseable", detail="empty judge output")
    if _REFUSAL.search(text):
        return Parsed(failure="judge_refused", detail=f"judge declined: {_snippet(text)!r}")
    return Parsed(failure="unparseable", detail=f"no {expected} in {_snippet(text)!r}")


def parse_rating(text: str) -> Parsed:
    """The last ``[[k]]`` or ``Rating: k`` in the output, k an integer 0-5."""
    matches = [(m.start(), m.group(1)) for m in _RATING_BRACKETS.finditer(text)]
    matches += [(m.start(), m.group(1)) for m in _RATING_LINE.finditer(text)]
    if not matches:
        return _no_verdict(text, "'Rating: [[k]]'")
    raw = max(matches)[1]
    if not re.fullmatch(r"[0-5]", raw.lstrip("+")):
        return Parsed(failure="unparseable", detail=f"final rating {raw!r} is not an integer 0-5")
    return Parsed(value=int(raw.lstrip("+")))


def parse_compliance(text: str) -> Parsed:
    """The last ``[[YES]]`` / ``[[NO]]``: True when the response complies with the config."""
    matches = list(_YES_NO.finditer(text))
    if not matches:
        return _no_verdict(text, "[[YES]]/[[NO]]")
    return Parsed(value=matches[-1].group(1).lower() == "yes")


def _object_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every balanced ``{...}`` span, latest start first."""
    spans = []
    for start in (i for i in range(len(text) - 1, -1, -1) if text[i] == "{"):
        depth, quote, escaped = 0, "", False
        for end in range(start, len(text)):
            char = text[end]
            if quote:
                if char == quote and not escaped:
                    quote = ""
                escaped = not escaped and char == "\\"
                continue
            if char in "\"'":
                quote = char
            elif char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    spans.append((start, end + 1))
                    break
    return spans


def _load_object(snippet: str) -> dict | None:
    """A dict from JSON, or from Python-literal style (single quotes, True/False)."""
    try:
        value = json.loads(snippet)
    except json.JSONDecodeError:
        pythonic = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", snippet))
        pythonic = re.sub(r"\bnull\b", "None", pythonic)
        try:
            value = ast.literal_eval(pythonic)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    return value if isinstance(value, dict) else None


_TRUE = {True, 1, "true", "yes", "present", "1"}
_FALSE = {False, 0, "false", "no", "absent", "0"}


def _as_bool(value: Any) -> bool | None:
    key = value.strip().lower() if isinstance(value, str) else value
    if isinstance(key, float):
        return None
    return True if key in _TRUE else False if key in _FALSE else None


def _categories_of(found: dict) -> tuple[dict[str, bool] | None, str]:
    """Map every category to a bool, matching names case- and space-insensitively."""
    wanted = {" ".join(name.lower().split()): name for name in ALL_CATEGORIES}
    labels: dict[str, bool] = {}
    for key, value in found.items():
        name = wanted.get(" ".join(str(key).lower().split()))
        if name is None:
            continue
        flag = _as_bool(value)
        if flag is None:
            return None, f"category {name!r} has value {value!r}, not true/false"
        labels[name] = flag
    missing = [name for name in ALL_CATEGORIES if name not in labels]
    if missing:
        return None, f"the JSON object lacks {len(missing)} categories, e.g. {missing[0]!r}"
    return {name: labels[name] for name in ALL_CATEGORIES}, ""


def parse_categories(text: str) -> Parsed:
    """The last JSON object that labels the categories: ``{category: true|false, ...}``."""
    problem = ""
    for start, end in _object_spans(text):
        found = _load_object(text[start:end])
        if found is None:
            continue
        labels, why = _categories_of(found)
        if labels is not None:
            return Parsed(value=labels)
        problem = problem or why
    if problem:
        return Parsed(failure="unparseable", detail=problem)
    return _no_verdict(text, "JSON object of categories")


PARSERS = {"helpfulness": parse_rating, "compliance": parse_compliance, "categories": parse_categories}
# The answers a logit-scoring backend weighs, per rubric (categories are always free text).
CHOICES = {"helpfulness": tuple("012345"), "compliance": ("YES", "NO")}


def parse_choice_probs(rubric: str, probs: dict[str, float]) -> Parsed:
    """A logit-scoring verdict: the expected rating over 0-5, or YES when p(YES) > p(NO)."""
    allowed = CHOICES.get(rubric, ())
    scored = {k: v for k, v in probs.items() if k in allowed}
    total = sum(scored.values())
    if not scored or total <= 0:
        return Parsed(failure="unparseable", detail=f"no probability for any of {', '.join(allowed)}")
    if rubric == "helpfulness":
        return Parsed(value=round(sum(int(k) * p for k, p in scored.items()) / total, 6))
    return Parsed(value=scored.get("YES", 0.0) > scored.get("NO", 0.0))


def parse_output(rubric: str, text: str | None, choice_probs: dict[str, float] | None = None) -> Parsed:
    """Parse one judge answer of the given rubric (text, or choice probabilities)."""
    if choice_probs:
        return parse_choice_probs(rubric, choice_probs)
    return PARSERS[rubric](text or "")
