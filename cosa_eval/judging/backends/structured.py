"""Constrained verdicts over HTTP: the JSON schema per verdict kind, and reading its answer.

``json_schema``: the server is asked (OpenAI ``response_format``) for an object whose first field is
a short rationale and whose other fields are the verdict (an integer rating 0-5, ``"YES"``/``"NO"``,
or one boolean per risk category). The reply becomes the rubric's canonical verdict text, so the
standard parsers read it.

``logprobs``: the same constrained object, with the tokens' top logprobs; the probability of each
allowed answer is read at the token where the verdict value starts, giving the expected rating,
p(YES) and per-category p(true) exactly as logit scoring does locally (the engine maps
``choice_probs`` to a verdict with the shared ``parsers.parse_choice_probs``).
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

from ...taxonomy import ALL_CATEGORIES
from ..rubric import neutralise
from .base import JudgeRequest, JudgeResponse

VERDICT_KINDS = ("rating", "yes_no", "categories")
DEFAULT_CHOICES = {"rating": tuple("012345"), "yes_no": ("YES", "NO")}
BOOL_CHOICES = ("true", "false")
_FIELD = {"rating": "rating", "yes_no": "verdict"}
_TRIM = " \t\r\n\"'{}[],:"


def verdict_schema(verdict: str, rationale_chars: int) -> dict[str, Any]:
    """The JSON schema of one verdict kind, rationale first so the judge reasons before deciding."""
    properties: dict[str, Any] = {"rationale": {"type": "string", "maxLength": rationale_chars}}
    if verdict == "rating":
        properties["rating"] = {"type": "integer", "enum": list(range(6))}
    elif verdict == "yes_no":
        properties["verdict"] = {"type": "string", "enum": ["YES", "NO"]}
    else:
        properties.update({name: {"type": "boolean"} for name in ALL_CATEGORIES})
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


def response_format(verdict: str, rationale_chars: int, style: str) -> dict[str, Any]:
    """The ``response_format`` field: OpenAI's ``json_schema`` form, or ``json_object`` + schema."""
    schema = verdict_schema(verdict, rationale_chars)
    if style == "json_object":                       # llama-cpp-python's form
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": f"cosa_{verdict}", "schema": schema}}


def canonical_text(verdict: str, reply: Any) -> str | None:
    """The rubric's verdict text for a structured reply, or None when the reply does not fit."""
    if not isinstance(reply, dict) or not isinstance(reply.get("rationale", ""), str):
        return None
    rationale = neutralise(reply.get("rationale", "")).strip()
    if verdict == "rating":
        value = reply.get("rating")
        if isinstance(value, bool) or value not in range(6):
            return None
        return f"{rationale}\nRating: [[{value}]]"
    if verdict == "yes_no":
        value = reply.get("verdict")
        return f"{rationale}\n[[{value}]]" if value in ("YES", "NO") else None
    labels = {name: reply.get(name) for name in ALL_CATEGORIES}
    if not all(isinstance(flag, bool) for flag in labels.values()):
        return None
    return f"{rationale}\n{json.dumps(labels)}"


def structured_response(request: JudgeRequest, content: str, **fields: Any) -> JudgeResponse:
    """A JSON-schema reply turned into canonical verdict text; the raw JSON goes in ``extra``."""
    try:
        reply = json.loads(content, strict=False)     # raw newlines in the rationale are common
    except (ValueError, RecursionError):              # not JSON, or nested past any schema
        reply = None
    text = canonical_text(request.verdict, reply)
    if text is None:      # not the schema: hand the raw text to the parser (unparseable -> re-ask)
        return JudgeResponse(text=content, extra={"structured": content}, **fields)
    return JudgeResponse(text=text, extra={"structured": content}, **fields)


def _value_start(content: str, name: str) -> int | None:
    """Character offset where the value of the last ``"name":`` in the JSON text begins."""
    matches = list(re.finditer(r'"' + re.escape(name) + r'"\s*+:\s*+"?', content))
    return matches[-1].end() if matches else None


def _text_of(token: Any) -> str:
    """A token's text; anything a server sent that is not a token object with text is empty."""
    text = token.get("token") if isinstance(token, dict) else None
    return text if isinstance(text, str) else ""


def _token_at(tokens: list[Any], offset: int) -> tuple[dict[str, Any], str] | None:
    """The token covering character ``offset`` and the part of it that comes before ``offset``."""
    position = 0
    for token in tokens:
        text = _text_of(token)
        if position <= offset < position + len(text):
            return token, text[:offset - position]
        position += len(text)
    return None


def _choice_mass(token: dict[str, Any], before: str, choices: tuple[str, ...]) -> dict[str, float]:
    """Probability of each choice among the token's alternatives (an alternative naming a unique
    prefix of one choice counts for it, e.g. "Y" for YES); choices never seen get nothing."""
    listed = token.get("top_logprobs")
    alternatives = {_text_of(alt): alt.get("logprob") for alt in (listed if isinstance(listed, list) else [])
                    if isinstance(alt, dict)}
    alternatives.setdefault(_text_of(token), token.get("logprob"))
    lead = before.strip(_TRIM)
    mass: dict[str, float] = {}
    for text, logprob in alternatives.items():
        if not isinstance(logprob, (int, float)) or isinstance(logprob, bool):
            continue
        core = text.strip(_TRIM)
        if lead and core.startswith(lead):
            core = core[len(lead):].strip(_TRIM)
        owners = [c for c in choices if core and c.lower().startswith(core.lower())]
        if len(owners) == 1:           # a log-probability is at most 0; more is a server's error
            mass[owners[0]] = mass.get(owners[0], 0.0) + math.exp(min(logprob, 0.0))
    return mass


def _probs_at(tokens: list[Any], content: str, name: str,
              choices: tuple[str, ...]) -> dict[str, float] | None:
    """Normalised probabilities of ``choices`` at the value of field ``name``; None if unreadable."""
    start = _value_start(content, name)
    found = None if start is None else _token_at(tokens, start)
    if found is None:
        return None
    mass = _choice_mass(found[0], found[1], choices)
    total = sum(mass.values())
    return {c: mass.get(c, 0.0) / total for c in choices} if total > 0 else None


def logprob_response(request: JudgeRequest, content: str, tokens: list[Any],
                     **fields: Any) -> JudgeResponse:
    """Verdict probabilities read off the constrained reply's tokens (the shared choice mapping)."""
    base = structured_response(request, content, **fields)
    if request.verdict == "categories":
        probs: dict[str, float] = {}
        for name in ALL_CATEGORIES:
            dist = _probs_at(tokens, content, name, BOOL_CHOICES)
            if dist is None:
                return _unreadable(base, f"no true/false logprobs at category {name!r}")
            probs[name] = round(dist["true"], 6)
        text = json.dumps({name: p > 0.5 for name, p in probs.items()})
        return JudgeResponse(**{**base.__dict__, "text": text,
                                "extra": {**base.extra, "category_probs": probs}})
    choices = request.choices or DEFAULT_CHOICES[request.verdict]
    probs_or_none = _probs_at(tokens, content, _FIELD[request.verdict], choices)
    if probs_or_none is None:
        return _unreadable(base, f"none of {', '.join(choices)} among the top logprobs at the verdict")
    return JudgeResponse(**{**base.__dict__, "choice_probs": probs_or_none})


def _unreadable(base: JudgeResponse, detail: str) -> JudgeResponse:
    return JudgeResponse(**{**base.__dict__, "text": None, "failure": "unparseable", "detail": detail,
                            "extra": {**base.extra, "partial_text": base.text}})
