"""The engine against the real local server: verdicts, cache, re-asks, failures, budget, faults."""
from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3

import pytest

from judging_helpers import cosalign_samples, cosapien_samples, write_judge
from openai_server import Reply, rubric_answer
from cosa_eval.errors import CosaError
from cosa_eval.judging import estimate, judge_run, judge_samples, load_judge
from cosa_eval.judging.judge import sample_item
from cosa_eval.judging.rubric import parse_output


def _expected(judge, sample):
    """What rubric_answer says for this sample, parsed: the verdicts the engine must report."""
    return {rubric: parse_output(rubric, rubric_answer(list(judge.messages(rubric, sample_item(sample))))).value
            for rubric in judge.rubric_hashes(sample)}


def _verdicts(records):
    return [(r.rating, r.is_compliant, r.categories, r.failure) for r in records]


def test_verdicts_match_the_judge_and_carry_hashes(judge_server, judge_yaml, cache_path,
                                                   cosalign_rows, cosapien_configs):
    judge = load_judge(judge_yaml)
    samples = cosalign_samples(cosalign_rows, 0, 30) + cosapien_samples(cosapien_configs)
    records = judge_samples(samples, judge, progress=False)
    assert [r.sample for r in records] == samples
    for record in records:
        want = _expected(judge, record.sample)
        assert record.failure is None
        assert record.rating == want["helpfulness"]
        if record.sample.benchmark == "cosapien":
            assert record.is_compliant == want["compliance"] and record.categories is None
        else:
            assert record.categories == want["categories"] and record.is_compliant is None
        assert record.rubric_hashes == judge.rubric_hashes(record.sample)
        assert record.extra["cost_usd"] > 0 and record.extra["input_tokens"] > 0
    keys = {judge.request(rubric, sample_item(s)).key for s in samples for rubric in judge.rubric_hashes(s)}
    assert len(keys) < 2 * len(samples)          # cosapien helpfulness never sees the config: shared
    assert judge_server.completions == len(keys)
    assert cache_path.exists()


def test_cached_rerun_sends_nothing_and_needs_no_key(judge_server, judge_yaml, cache_path,
                                                     cosalign_rows, monkeypatch):
    samples = cosalign_samples(cosalign_rows, 100, 40)
    first = judge_run(samples, load_judge(judge_yaml), progress=False)
    assert first.stats.sent == judge_server.request_count == 80
    judge_server.reset()
    monkeypatch.delenv("OPENAI_API_KEY")         # the server stays: it is part of every key
    second = judge_run(samples, load_judge(judge_yaml), progress=False)
    assert judge_server.request_count == 0
    assert second.stats.sent == 0 and second.stats.cached == 80 and second.stats.cost_usd == 0
    assert _verdicts(second.records) == _verdicts(first.records)
    assert [r.to_dict() for r in second.records] == [r.to_dict() for r in first.records]


def test_cache_key_ignores_timeouts_retries_and_concurrency(judge_server, tmp_path, cache_path,
                                                            cosalign_rows):
    samples = cosalign_samples(cosalign_rows, 0, 5)
    judge_samples(samples, load_judge(write_judge(tmp_path, "a")), progress=False)
    other = write_judge(tmp_path, "b", concurrency=2, backend_options={"timeout_s": 9, "max_retries": 1})
    judge_server.reset()
    judge_samples(samples, load_judge(other), progress=False)
    assert judge_server.request_count == 0
    changed = write_judge(tmp_path, "c", sampling={"temperature": 0.5, "max_tokens": 256})
    judge_samples(samples, load_judge(changed), progress=False)
    assert judge_server.request_count == 10


async def _complete_one(backend, request):
    try:
        return await backend.complete([request])
    finally:
        await backend.aclose()


def test_cache_keys_stay_the_hash_of_the_whole_request_and_the_call_sends_those_messages(
        judge_server, judge_yaml, cache_path, cosapien_configs):
    judge = load_judge(judge_yaml)
    judge.check_ready()
    item = {**sample_item(cosapien_samples(cosapien_configs)[0]), "response": "Voilà — «quoted» ünïcode"}
    for rubric, history in (("helpfulness", ()), ("compliance", ("not a verdict",))):
        request = judge.request(rubric, item, history)
        whole = dict(backend=judge.config.backend, identity=judge.identity(), sampling=judge.config.sampling,
                     rubric=judge.rubrics[rubric].hash, messages=request.messages, choices=(),
                     verdict_format="free", scoring=False, attempt=len(history))
        blob = json.dumps(whole, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        assert request.key == hashlib.sha256(blob.encode("utf-8")).hexdigest()   # older caches still hit
        asyncio.run(_complete_one(judge.backend(), request))
        assert judge_server.requests[-1].body["messages"] == list(request.messages)


def test_unparseable_answer_is_reasked_with_a_new_key(judge_server, judge_yaml, cache_path,
                                                      cosalign_rows):
    judge_server.set(answer=lambda m: "Let me think about it." if len(m) == 1 else rubric_answer(m))
    samples = cosalign_samples(cosalign_rows, 0, 4)
    run = judge_run(samples, load_judge(judge_yaml), progress=False)
    assert all(r.is_valid for r in run.records)
    assert all(r.extra["attempts"] == {"helpfulness": 2, "categories": 2} for r in run.records)
    assert judge_server.request_count == 16 and run.stats.reasked == 8
    reask = [r.body for r in judge_server.requests if len(r.body["messages"]) == 3]
    assert reask and reask[0]["messages"][1] == {"role": "assistant", "content": "Let me think about it."}
    with sqlite3.connect(cache_path) as db:
        assert db.execute("SELECT COUNT(DISTINCT key) FROM answers").fetchone()[0] == 16


def test_persistent_garbage_is_a_failure_never_a_grade(judge_server, judge_yaml, cache_path,
                                                       cosalign_rows):
    judge_server.set(answer=lambda m: "The answer seems fine overall, maybe a 3 or a 4.")
    records = judge_samples(cosalign_samples(cosalign_rows, 0, 3), load_judge(judge_yaml), progress=False)
    assert judge_server.request_count == 3 * 2 * 3          # first try + 2 re-asks per judgment
    for record in records:
        assert record.failure == "unparseable" and record.rating is None and record.categories is None
        assert record.s is None and record.h is None
        assert "helpfulness:" in record.failure_detail and "categories:" in record.failure_detail
        assert record.extra["raw"]["helpfulness"].startswith("The answer seems fine")


@pytest.mark.parametrize("reply, kind", [
    (Reply("I'm sorry, but I can't help with evaluating this content."), "unparseable"),   # words: no API signal
    (Reply("The response walks through the steps and", "length"), "truncated"),
    (Reply(None, "content_filter"), "judge_refused"),
])
def test_typed_failures(judge_server, judge_yaml, cache_path, cosalign_rows, reply, kind):
    judge_server.set(answer=lambda m: reply)
    records = judge_samples(cosalign_samples(cosalign_rows, 0, 2), load_judge(judge_yaml), progress=False)
    assert {r.failure for r in records} == {kind}
    assert all(r.rating is None for r in records)


def test_budget_stops_sending_and_keeps_answers(judge_server, tmp_path, cache_path, cosalign_rows):
    judge = load_judge(write_judge(tmp_path, concurrency=1, prices={"input": 1000.0, "output": 1000.0}))
    samples = cosalign_samples(cosalign_rows, 0, 20)
    run = judge_run(samples, judge, max_cost=5.0, progress=False)
    kinds = [r.failure for r in run.records]
    assert "budget_exceeded" in kinds and None in kinds
    assert judge_server.request_count == run.stats.sent < 40
    assert run.stats.cost_usd >= 5.0
    judge_server.reset()
    rerun = judge_run(samples, judge, progress=False)     # no budget: only the rest is sent
    assert judge_server.request_count == 40 - run.stats.sent
    assert all(r.is_valid for r in rerun.records)


def test_budget_needs_prices(tmp_path, cosalign_rows):
    judge = load_judge(write_judge(tmp_path, model="some-unpriced-model", prices=None))
    with pytest.raises(CosaError, match="prices"):
        judge_run(cosalign_samples(cosalign_rows, 0, 1), judge, max_cost=1.0)


def test_dry_run_calls_nothing(judge_server, judge_yaml, cache_path, cosalign_rows):
    samples = cosalign_samples(cosalign_rows, 0, 10)
    judge = load_judge(judge_yaml)
    assert "20 calls to make" in estimate(samples, judge).summary()
    assert judge_server.request_count == 0 and not cache_path.exists()
    judge_samples(samples[:4], judge, progress=False)
    guess = estimate(samples, judge)
    assert (guess.calls, guess.cached) == (12, 8)
    assert guess.input_tokens > 12 * 300 and guess.cost_usd and guess.cost_usd > 0


def test_no_key_fails_before_any_call(monkeypatch, cache_path, cosalign_rows):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    judge = load_judge("gpt-4o")
    with pytest.raises(CosaError, match="^no OPENAI_API_KEY: export it$"):     # callers add their own fix
        judge.check_ready()
    with pytest.raises(CosaError, match="no OPENAI_API_KEY"):
        judge_samples(cosalign_samples(cosalign_rows, 0, 1), judge, progress=False)
    with pytest.raises(CosaError, match="OPENAI_BASE_URL"):
        load_judge("openai-compatible").check_ready()


def test_faults_change_nothing_but_the_request_count(judge_server, judge_yaml, tmp_path,
                                                     cosalign_rows):
    samples = cosalign_samples(cosalign_rows, 0, 3200)[::16]     # 200 docs across all 8 configs
    judge = load_judge(judge_yaml)
    clean_run = judge_run(samples, judge, cache_path=tmp_path / "clean.sqlite", progress=False)
    clean = clean_run.records
    judge_server.reset()
    judge_server.set(fault_rate=0.2, timeout_sleep_s=0.8)
    faulty = judge_run(samples, judge, cache_path=tmp_path / "faulty.sqlite", progress=False)
    assert sum(judge_server.faults.values()) > 40 and len(judge_server.faults) == 6
    assert all(r.is_valid for r in faulty.records)
    assert _verdicts(faulty.records) == _verdicts(clean)
    assert judge_server.request_count > faulty.stats.sent == clean_run.stats.sent


def test_works_inside_a_running_event_loop_and_stored_answers_reparse(judge_server, judge_yaml, cache_path,
                                                                      cosalign_rows):
    import asyncio

    from cosa_eval.judging import JudgeCache
    samples = cosalign_samples(cosalign_rows, 0, 3)

    async def inside():                      # e.g. a notebook: judging must not need its own loop
        return judge_samples(samples, load_judge(judge_yaml), progress=False)

    records = asyncio.run(inside())
    assert all(r.is_valid for r in records)
    with JudgeCache(cache_path) as cache:
        stored = list(cache.items())
    assert len(stored) == 6
    assert all(parse_output(rubric, answer.text).is_valid for _, rubric, answer in stored)
