"""What the local-model backends (transformers, vLLM) share: prompts, choice tokens, jobs, answers.

The request decides how it is answered:

* ``choices`` empty: generate the verdict as free text;
* ``choices`` set (e.g. "0".."5" or "YES"/"NO"): score them. The assistant turn is prefilled so that
  its next token *is* the verdict (``Rating: [[`` for helpfulness, ``[[`` otherwise) and the
  next-token scores of the choices are softmaxed into ``choice_probs``;
* ``choices`` set and ``verdict == "categories"`` (the judge sends ``("true", "false")``): each risk
  category is scored on its own prefill ``{"<category>":`` between the tokens `` true`` and
  `` false`` (the first choice means "present"); ``text`` is the JSON object
  ``{"<category>": true|false, ...}`` (true when p > 0.5) and ``extra["category_probs"]`` holds p.

A choice is represented by the first token it gets when appended to the prefilled prompt, so a
choice that splits ("YES" -> "Y", "ES") is still one token; two choices that share that token are a
setup error. Nothing here imports torch or transformers.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ...errors import CosaError
from ...taxonomy import ALL_CATEGORIES
from ..parsers import CHOICES
from .base import JudgeRequest, JudgeResponse

DEFAULT_PREFIX = "[["
ANSWER_PREFIXES: dict[str, str] = {"helpfulness": "Rating: [[", "compliance": "[["}
CATEGORY_PREFIX = '{{"{category}":'


@dataclass
class Job:
    """One model call planned for one request: generate from ``text``, or score its next token."""

    index: int                                 # position of the request in the batch
    text: str                                  # chat rendered with the generation prompt (+ prefix)
    choice_ids: dict[str, int] | None = None   # scoring: choice -> first token; None: generate
    label: str | None = None                   # the category this job scores, for categories


@dataclass
class JobResult:
    """What the model gave for one job: text, or raw scores of the choices' tokens."""

    text: str | None = None
    choice_scores: dict[str, float | None] | None = None   # logit or logprob; None = not returned
    failure: str | None = None
    detail: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    choice_mass: float | None = None           # probability the full vocabulary gave the choices


def render_chat(tokenizer: Any, messages: tuple[dict[str, str], ...], prefix: str = "") -> str:
    """The chat as the judge model sees it, ending with the assistant turn (and a prefilled prefix)."""
    text = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
    return text + prefix


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of a rendered chat; the BOS token is added only if the template did not write it."""
    bos = getattr(tokenizer, "bos_token", None)
    add_special = not (bos and text.startswith(bos))
    return list(tokenizer(text, add_special_tokens=add_special)["input_ids"])


def choice_token_ids(tokenizer: Any, text: str, choices: tuple[str, ...]) -> dict[str, int]:
    """Map each choice to the token that starts it right after ``text``; raise if two collide."""
    base = encode(tokenizer, text)
    ids: dict[str, int] = {}
    for choice in choices:
        full = encode(tokenizer, text + choice)
        if full[:len(base)] == base and len(full) > len(base):
            ids[choice] = full[len(base)]
        else:  # the choice merges with the prefix's last token: fall back to its own first token
            ids[choice] = tokenizer(choice, add_special_tokens=False)["input_ids"][0]
    by_token: dict[int, str] = {}
    for choice, token in ids.items():
        if token in by_token:
            raise CosaError(
                f"logit scoring: choices {by_token[token]!r} and {choice!r} start with the same token "
                f"of this judge's tokenizer; set logit_scoring: false or change the answer prefix")
        by_token[token] = choice
    return ids


def answer_prefix(rubric: str, overrides: dict[str, str] | None = None) -> str:
    """The text that prefills the assistant turn so its next token is the verdict."""
    prefixes = {**ANSWER_PREFIXES, **(overrides or {})}
    return prefixes.get(rubric, DEFAULT_PREFIX)


def check_choice_tokens(tokenizer: Any, prefixes: dict[str, str] | None = None) -> None:
    """Prove the shipped rubrics' choices map to distinct tokens of this tokenizer (CosaError if not)."""
    messages = ({"role": "user", "content": "Is this a test?"},)
    for rubric, verdict in (("helpfulness", "rating"), ("compliance", "yes_no")):
        text = render_chat(tokenizer, messages, answer_prefix(rubric, prefixes))
        choice_token_ids(tokenizer, text, CHOICES[verdict])
    category_text = render_chat(tokenizer, messages, CATEGORY_PREFIX.format(category=ALL_CATEGORIES[0]))
    choice_token_ids(tokenizer, category_text, tuple(" " + c for c in CHOICES["categories"]))


def plan_jobs(tokenizer: Any, requests: list[JudgeRequest], prefixes: dict[str, str] | None = None) -> list[Job]:
    """Turn requests into model calls: one per request, or one per risk category."""
    jobs: list[Job] = []
    for index, request in enumerate(requests):
        if request.choices and request.verdict == "categories":
            spaced = tuple(" " + c for c in request.choices)
            for category in ALL_CATEGORIES:
                text = render_chat(tokenizer, request.messages, CATEGORY_PREFIX.format(category=category))
                ids = choice_token_ids(tokenizer, text, spaced)
                jobs.append(Job(index, text, {c: ids[" " + c] for c in request.choices}, category))
        elif request.choices:
            text = render_chat(tokenizer, request.messages, answer_prefix(request.rubric, prefixes))
            jobs.append(Job(index, text, choice_token_ids(tokenizer, text, request.choices)))
        else:
            jobs.append(Job(index, render_chat(tokenizer, request.messages)))
    return jobs


def normalise(scores: dict[str, float | None]) -> dict[str, float] | None:
    """Softmax over the choices' logits (or logprobs); a choice with no score gets 0; None if none."""
    present = {c: s for c, s in scores.items() if s is not None}
    if not present:
        return None
    top = max(present.values())
    weights = {c: math.exp(s - top) for c, s in present.items()}
    total = sum(weights.values())
    return {c: weights.get(c, 0.0) / total for c in scores}


def _merge(results: list[JobResult]) -> JobResult:
    """Sum the token counts and times of the jobs of one request; keep the first failure."""
    failed = next((r for r in results if r.failure), None)
    return JobResult(failure=failed.failure if failed else None, detail=failed.detail if failed else "",
                     input_tokens=sum(r.input_tokens for r in results),
                     output_tokens=sum(r.output_tokens for r in results),
                     seconds=sum(r.seconds for r in results))


def _categories_response(jobs: list[Job], results: list[JobResult], merged: JobResult) -> JudgeResponse:
    """The JSON verdict over the risk categories, from one scoring per category."""
    probs: dict[str, float] = {}
    for job, result in zip(jobs, results):
        dist = normalise(result.choice_scores or {})
        if dist is None:
            return _response(merged, failure="unparseable",
                             detail=f"none of the choices among the top tokens for {job.label!r}")
        probs[str(job.label)] = dist[next(iter(job.choice_ids or dist))]   # the first choice: "present"
    text = json.dumps({category: p > 0.5 for category, p in probs.items()})
    return _response(merged, text=text, extra={"category_probs": probs})


def _response(merged: JobResult, **fields: Any) -> JudgeResponse:
    base = dict(failure=merged.failure, detail=merged.detail, input_tokens=merged.input_tokens,
                output_tokens=merged.output_tokens, seconds=merged.seconds)
    return JudgeResponse(**{**base, **fields})


def assemble(n_requests: int, jobs: list[Job], results: list[JobResult]) -> list[JudgeResponse]:
    """One response per request, in order, from the results of its jobs."""
    by_request: dict[int, list[tuple[Job, JobResult]]] = {i: [] for i in range(n_requests)}
    for job, result in zip(jobs, results):
        by_request[job.index].append((job, result))
    responses = []
    for pairs in by_request.values():
        own_jobs, own_results = [p[0] for p in pairs], [p[1] for p in pairs]
        merged, first = _merge(own_results), own_results[0]
        if merged.failure:
            responses.append(_response(merged, extra=({"partial_text": first.text} if first.text else {})))
        elif own_jobs[0].label is not None:
            responses.append(_categories_response(own_jobs, own_results, merged))
        elif own_jobs[0].choice_ids is not None:
            probs = normalise(first.choice_scores or {})
            if probs is None:
                responses.append(_response(merged, failure="unparseable",
                                           detail="none of the choices among the judge's top tokens"))
            else:
                extra = {} if first.choice_mass is None else {"choice_mass": first.choice_mass}
                responses.append(_response(merged, choice_probs=probs, extra=extra))
        else:
            responses.append(_response(merged, text=first.text))
    return responses


def check_options(options: dict[str, Any], known: tuple[str, ...], backend: str) -> None:
    """Reject an option this backend does not know, listing those it does."""
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise CosaError(f"{backend} backend: unknown option(s) {', '.join(unknown)}; "
                        f"available: {', '.join(known)}")


def local_identity(model: str, **details: str) -> dict[str, str]:
    """What answers a local judge: no server, the model as configured (+ e.g. the device)."""
    return {"endpoint": "local", "model": model, **details}
