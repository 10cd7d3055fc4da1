"""Offline engines, one format: pending judge requests out as OpenAI batch input, answers back in.

``--export-requests FILE`` writes each request the cache cannot answer yet as
``{"custom_id": <cache key>, "method": "POST", "url": "/v1/chat/completions", "body": <the online
body>}``, the input format of the OpenAI and Azure Batch APIs, ``vllm run-batch`` and Ray Data.
``--import-answers FILE`` reads their *output* lines into the cache after checking every line: a
malformed line, an unknown or repeated ``custom_id``, or an answer from another model than its
request asked for is one error naming the line, and nothing is imported. A normal re-run then
judges from the cache; the re-asks it still needs are what the next export holds.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Container, Mapping

from ..errors import CosaError
from .backends.base import JudgeRequest, JudgeResponse
from .cache import JudgeCache, default_cache_path
from .engine import pending_requests
from .judge import Judge
from .pricing import fill_cost

_FIX = "import the output file your engine wrote for an --export-requests file of these samples and judge"


def openai_format(judge: Judge) -> Any:
    """The judge's backend, which must build OpenAI request bodies and read their answers."""
    backend = judge.backend()
    if not hasattr(backend, "request_body"):
        raise CosaError(f"judge {judge.name} uses backend {judge.config.backend!r}, which has no OpenAI request "
                        "format; export and import with a judge whose backend is 'openai' (e.g. openai-compatible)")
    return backend


def request_line(backend: Any, request: JudgeRequest) -> dict[str, Any]:
    """A batch input line: the cache key as ``custom_id``, the online call's body as ``body``."""
    return {"custom_id": request.key, "method": "POST", "url": backend.batch_url, "body": backend.request_body(request)}


def export_requests(samples: list, judge: Judge, path: Path, cache_path: Path | None) -> int:
    """Write the run's pending requests to ``path`` (atomically); returns how many."""
    backend = openai_format(judge)
    lines = [request_line(backend, r) for r in pending_requests(samples, judge, cache_path=cache_path)]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    os.replace(tmp, path)
    return len(lines)


def line_outcome(row: dict[str, Any], where: str) -> tuple[int | None, dict[str, Any]]:
    """(HTTP status, body) of an output line; (None, error) when the engine reports an error."""
    response, error = row.get("response"), row.get("error")
    if response is None and isinstance(error, dict):
        return None, error
    if not isinstance(response, dict):
        raise CosaError(f"{where}: field 'response' must be an object (or 'error' one); {_FIX}")
    status, body = response.get("status_code"), response.get("body")
    if not isinstance(status, int) or isinstance(status, bool):
        raise CosaError(f"{where}: field 'response.status_code' must be an integer, got {str(status)[:40]!r}; {_FIX}")
    if not isinstance(body, dict):
        raise CosaError(f"{where}: field 'response.body' must be an object; {_FIX}")
    return status, body


def _check_model(body: Mapping[str, Any], asked: Any, where: str) -> None:
    """An answer names the model its request asked for, or a dated snapshot of it."""
    told = body.get("model")
    if isinstance(told, str) and isinstance(asked, str) and told != asked and not told.startswith(asked + "-"):
        raise CosaError(f"{where}: the answer does not match its request: answered by model {told[:80]!r}, the "
                        f"request asked for {asked!r}; {_FIX}")


def read_answers(path: Path, bodies: Mapping[str, Mapping[str, Any]],
                 answered: Container[str]) -> list[tuple[str, int | None, dict[str, Any]]]:
    """(custom_id, status, body) of every line answering a request in ``bodies`` (custom_id -> the
    request body), checked whole first; lines for keys already ``answered`` are skipped."""
    from ..jsonl import iter_jsonl
    seen: dict[str, int] = {}
    found: list[tuple[str, int | None, dict[str, Any]]] = []
    for number, row in iter_jsonl(path, fix=_FIX):
        where = f"{path}: line {number}"
        key = row.get("custom_id")
        if not isinstance(key, str):
            raise CosaError(f"{where}: field 'custom_id' must be a string (the cache key of an exported request); {_FIX}")
        if key in seen:
            raise CosaError(f"{where}: duplicate custom_id {key[:16]!r}... (also on line {seen[key]}); keep one "
                            "answer per request")
        seen[key] = number
        status, body = line_outcome(row, where)
        if key in bodies:
            if status == 200:
                _check_model(body, bodies[key].get("model"), where)
            found.append((key, status, body))
        elif key not in answered:
            raise CosaError(f"{where}: unknown custom_id {key[:16]!r}...: no pending request of this run has that "
                            f"key; {_FIX}")
    return found


class _Stored:
    """Keys the cache holds an answer for (``in``), looked up one at a time."""

    def __init__(self, cache: JudgeCache) -> None:
        self.cache = cache

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(self.cache.get_many([key]))


def import_answers(samples: list, judge: Judge, path: Path, cache_path: Path | None) -> tuple[int, int]:
    """Store the answers of an output file in one transaction once every line is checked;
    returns (answers stored, lines that failed and stay pending)."""
    requests = {r.key: r for r in pending_requests(samples, judge, cache_path=cache_path)}
    backend = openai_format(judge)
    bodies = {key: backend.request_body(request) for key, request in requests.items()}
    with JudgeCache(cache_path or default_cache_path()) as cache:
        answers = read_answers(path, bodies, _Stored(cache))
        responses: list[tuple[str, str, JudgeResponse]] = []
        for key, status, body in answers:
            response = backend.read_answer(requests[key], status, body)
            fill_cost(response, judge.prices)
            responses.append((key, requests[key].rubric, response))
        stored = cache.put_many(responses)
    return stored, len(answers) - stored


def main_offline(args: Any, judge: Judge, samples: list) -> int:
    """``--export-requests FILE`` or ``--import-answers FILE``: one of them, then a line saying what next."""
    if args.export_requests and args.import_answers:
        raise CosaError("--export-requests and --import-answers are two steps; run them one at a time")
    if args.export_requests:
        count = export_requests(samples, judge, args.export_requests, args.cache)
        print(f"wrote {count} pending requests to {args.export_requests} (OpenAI batch input format); answer "
              "them (vllm run-batch, Ray Data, a Batch API), then import the output with --import-answers",
              file=sys.stderr)
        return 0
    stored, failed = import_answers(samples, judge, args.import_answers, args.cache)
    print(f"imported {stored} answers from {args.import_answers} ({failed} failed and stay pending); re-run "
          "without --import-answers to judge from the cache, or --export-requests for what is left", file=sys.stderr)
    return 0
