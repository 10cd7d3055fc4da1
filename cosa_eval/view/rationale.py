"""Each verdict's judge text, read back from the judge cache.

Judged records hold verdicts, not the judge's words. The words are in the cache, under the key of
the request that asked for them: the judge (its judge.yaml, as recorded in ``judge_run.json``)
rebuilds each request from the record's prompt, response and config, with the identity recorded in
the record, and each re-ask adds the previous answer, so every attempt is found in turn.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import CosaError
from ..judging.cache import JudgeCache
from ..judging.judge import Judge, load_judge, safety_rubric, sample_item
from ..types import JudgedRecord
from .sources import Source

# sample_id -> rubric -> the judge's text of each attempt, in order
Texts = dict[str, dict[str, list[str]]]


def _judge_of(source: Source) -> Judge:
    """The judge as it ran: its recorded judge.yaml, else a shipped judge of that name."""
    recorded = source.manifest.get("judge_file")
    if recorded and Path(recorded).is_file():
        return load_judge(recorded)
    return load_judge(source.judge)


def _shown(response: Any) -> str:
    """An answer as a person reads it: its text, and its scores when it was scored over choices."""
    text = response.text or ""
    if response.choice_probs:
        scores = ", ".join(f"{choice}: {p:.3f}" for choice, p in sorted(response.choice_probs.items()))
        text = (text + "\n\n" if text else "") + f"[scored over choices: {scores}]"
    if response.failure:
        text = (text + "\n\n" if text else "") + f"[{response.failure}: {response.detail}]"
    return text


def _questions(judge: Judge, records: list[JudgedRecord]) -> list[tuple[str, str, dict, dict, int]]:
    """(sample_id, rubric, item, identity, attempts) of every verdict whose rubric is unchanged."""
    questions = []
    for record in records:
        identity = record.extra.get("judge_identity")
        if not isinstance(identity, dict):
            continue
        attempts = record.extra.get("attempts") or {}
        for rubric in ("helpfulness", safety_rubric(record.sample)):
            if judge.rubrics[rubric].hash == record.rubric_hashes.get(rubric):
                questions.append((record.sample.sample_id, rubric, sample_item(record.sample), identity,
                                  int(attempts.get(rubric, 1) or 1)))
    return questions


def read_texts(source: Source, cache: JudgeCache) -> Texts:
    """The cached judge texts of a source's verdicts; what cannot be found is noted on the source."""
    try:
        judge = _judge_of(source)
    except CosaError as error:
        source.notes.append(f"judge texts unavailable: {error}")
        return {}
    questions = _questions(judge, source.records)
    if len(questions) < 2 * len(source.records):
        source.notes.append("some judge texts unavailable: the judge's rubrics changed since this run, or "
                            "its records name no judge identity")
    texts: Texts = {}
    histories: list[tuple[str, ...]] = [() for _ in questions]
    pending = list(range(len(questions)))
    while pending:
        requests = {i: judge.request(questions[i][1], questions[i][2], histories[i], questions[i][3])
                    for i in pending}
        found = cache.get_many(request.key for request in requests.values())
        still = []
        for i, request in requests.items():
            sample_id, rubric, _item, _identity, attempts = questions[i]
            answer = found.get(request.key)
            if answer is None:
                continue
            texts.setdefault(sample_id, {}).setdefault(rubric, []).append(_shown(answer))
            histories[i] += (answer.text or "",)
            if len(histories[i]) < attempts:
                still.append(i)
        pending = still
    if questions and not texts:
        source.notes.append("no judge text of this run is in the cache given (--cache)")
    return texts


def read_all_texts(sources: list[Source], cache_path: Path) -> dict[int, Texts]:
    """Judge texts per source index; none (with a note) when the cache file does not exist."""
    if not cache_path.is_file():
        for source in sources:
            source.notes.append(f"no judge cache at {cache_path}; pass --cache FILE to show the judges' texts")
        return {}
    texts: dict[int, Texts] = {}
    with JudgeCache(cache_path) as cache:
        for index, source in enumerate(sources):
            if source.judge.startswith("jury("):
                source.notes.append("judge texts not shown for a jury (its records keep each member's verdicts, "
                                    "not the identity its texts are cached under)")
            else:
                texts[index] = read_texts(source, cache)
    return texts
