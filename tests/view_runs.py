"""Tiny judged runs for the explorer tests: two models, two judges, two parsers, one shared cache.

``build_runs(root, configs, cosalign_rows)`` judges through two local OpenAI-compatible servers
(``openai_server.py``) that answer the same questions differently, so judges disagree; re-reading
judge alpha with the reference parser makes the parsers disagree (no new calls); model-b's responses
differ from model-a's, so runs disagree. model-a holds an XSS sample and a 2 MB response.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from judging.judging_helpers import (SECRET_KEY, cosalign_samples, cosapien_samples, judge_settings, write_judge,
                                     write_samples_file)
from openai_server import FakeOpenAIServer, rubric_answer
from cosa_eval.cli import main
from cosa_eval.judging.cli import EXIT_UNJUDGED
from cosa_eval.types import Sample

XSS = ("</script><script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"
       "<b>bold</b> {{ config }} ${7*7} <!-- c --> &amp; \u2028 end")
HUGE_CHARS = 2_000_000


UNREADABLE = "UNREADABLE-MARK"     # judge alpha never gives a readable rating for this response
LATE = "LATE-MARK"                 # ... and gives one only when re-asked for this one


def alpha_answer(messages: list[dict]) -> str:
    """Judge alpha: ``rubric_answer``, except the marked responses' ratings."""
    first = messages[0]["content"]
    if "Rating: [[" in rubric_answer(messages) and (UNREADABLE in first or (LATE in first and len(messages) == 1)):
        return "I would rather not put a number on this one."
    return rubric_answer(messages)


def contrary_answer(messages: list[dict]) -> str:
    """Judge beta: the rating shifted by one, YES and NO swapped, the same categories."""
    answer = rubric_answer(messages)
    if "Rating: [[" in answer:
        value = int(answer.rsplit("[[", 1)[1][0])
        return answer.rsplit("[[", 1)[0] + f"[[{(value + 1) % 6}]]"
    if answer.endswith("[[YES]]"):
        return answer[: -len("[[YES]]")] + "[[NO]]"
    if answer.endswith("[[NO]]"):
        return answer[: -len("[[NO]]")] + "[[YES]]"
    return answer


def special_samples(base: Sample) -> list[Sample]:
    """A response carrying markup and scripts, one of megabytes, one judge alpha cannot rate and one
    it rates only when re-asked."""
    xss = dataclasses.replace(base, doc_id=90, prompt="<i>prompt</i> " + XSS, response=XSS,
                              config=base.config + "\n<style>body{display:none}</style>")
    huge = dataclasses.replace(base, doc_id=91, prompt="Write a very long story.",
                               response=("A long story line. " * (HUGE_CHARS // 19 + 1))[:HUGE_CHARS])
    unreadable = dataclasses.replace(base, doc_id=92, response=f"An answer alpha cannot rate. {UNREADABLE}")
    late = dataclasses.replace(base, doc_id=93, response=f"An answer alpha rates when asked again. {LATE}")
    return [xss, huge, unreadable, late]


def _write_model(folder: Path, model: str, samples: list[Sample]) -> Path:
    write_samples_file(folder, samples)
    (folder / "results_2026-01-01T00-00-00.000000.json").write_text(json.dumps(
        {"model_name": model, "config": {"model_args": f"pretrained={model}"}, "lm_eval_version": "0.4.9",
         "date": 1767225600.0}), encoding="utf-8")
    return folder


def _judge(samples: Path, judge: Path, output: Path, *extra: str) -> None:
    assert main(["judge", str(samples), "--judge", str(judge), "--output", str(output), "--no-progress",
                 *extra]) in (0, EXIT_UNJUDGED)


def build_runs(root: Path, configs: dict[str, str], cosalign_rows: list[dict]) -> dict[str, Path]:
    """Judged folders ``a-alpha``, ``a-beta``, ``a-alpha-reference``, ``b-alpha``, ``a-jury`` (alpha and
    gamma, which answers as beta does) and the cache."""
    a_samples = cosapien_samples(dict(sorted(configs.items())[:2])) + cosalign_samples(cosalign_rows, 0, 3200)[::800]
    a_samples += special_samples(a_samples[0])
    b_samples = [dataclasses.replace(s, response=s.response + " (model b)") for s in a_samples[:8]]
    a = _write_model(root / "samples" / "model-a", "org/model-a", a_samples)
    b = _write_model(root / "samples" / "model-b", "org/model-b", b_samples)
    alpha = write_judge(root / "judges", "alpha")
    beta = write_judge(root / "judges", "beta")
    cache = root / "cache" / "judge_cache.sqlite"
    saved = {k: os.environ.get(k) for k in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "COSA_CACHE_DIR")}
    out = {name: root / "judged" / name for name in ("a-alpha", "a-beta", "a-alpha-reference", "b-alpha", "a-jury")}
    try:
        with FakeOpenAIServer(alpha_answer, model="judge-model") as first, \
                FakeOpenAIServer(contrary_answer, model="judge-model") as second:
            os.environ.update(OPENAI_BASE_URL=first.base_url, OPENAI_API_KEY=SECRET_KEY,
                              COSA_CACHE_DIR=str(cache.parent))
            _judge(a, alpha, out["a-alpha"])
            _judge(a, beta, out["a-beta"], "--judge-endpoint", second.base_url)
            _judge(a, alpha, out["a-alpha-reference"], "--parser", "reference")
            _judge(b, alpha, out["b-alpha"])
            options = {**judge_settings()["backend_options"], "base_url": second.base_url}
            gamma = write_judge(root / "judges", "gamma", backend_options=options)    # beta's answers, by yaml
            assert main(["judge", str(a), "--judge", str(alpha), "--judge", str(gamma), "--output",
                         str(out["a-jury"]), "--no-progress"]) in (0, EXIT_UNJUDGED)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return {**out, "cache": cache}
