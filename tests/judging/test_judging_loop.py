"""The one judging loop against the local server: one cache row per question whoever asks it,
re-asks that never repeat, empty answers retried, refusals only from the API, the endpoint in every
key and record, and the reference parser replayed from the same cached texts."""
from __future__ import annotations

import argparse
import json
import sqlite3

import pytest

from judging_helpers import cosalign_samples, cosapien_samples
from openai_server import FakeOpenAIServer, rubric_answer
from cosa_eval.errors import CosaError
from cosa_eval.judging import judge_run, load_judge
from cosa_eval.judging.engine import JudgeSession
from cosa_eval.judging.judge import sample_item
from cosa_eval.judging.rubric import RUBRICS, parse_output
from cosa_eval.train import cli as train_cli


def _rows(cache_path) -> int:
    with sqlite3.connect(cache_path) as db:
        return db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]


def test_an_evaluation_and_a_training_step_share_one_cache_row(judge_server, judge_yaml, cache_path,
                                                             cosalign_rows, tmp_path):
    samples = cosalign_samples(cosalign_rows, 0, 6)
    judge_run(samples, load_judge(judge_yaml), progress=False)
    rows_after_eval = _rows(cache_path)
    responses = tmp_path / "responses.jsonl"
    responses.write_text("".join(json.dumps({
        "id": f"r{i}", "config_id": s.config_id, "prompt_id": f"p{i}", "prompt": s.prompt, "config": s.config,
        "allowed": list(s.allowed_categories), "response": s.response}) + "\n" for i, s in enumerate(samples)))
    judge_server.reset()
    parser = argparse.ArgumentParser()
    train_cli.add_arguments(parser)
    args = parser.parse_args(["judge", "--input", str(responses), "--output", str(tmp_path / "judged.jsonl"),
                              "--judge", str(judge_yaml)])
    assert train_cli.main(args) == 0
    asked = [r.body["messages"][0]["content"] for r in judge_server.requests]
    assert len(asked) == len(samples) and all("fully answers a user's request" in text for text in asked)
    assert _rows(cache_path) == rows_after_eval + len(samples)      # only the addressed questions are new


def test_reasks_never_repeat_a_paid_call(judge_server, judge_yaml, cache_path, cosalign_rows):
    judge_server.set(answer=lambda m: "The answer seems fine overall, maybe a 3 or a 4.")
    run = judge_run(cosalign_samples(cosalign_rows, 0, 2), load_judge(judge_yaml), progress=False)
    assert {r.failure for r in run.records} == {"unparseable"}
    bodies = [json.dumps(r.body["messages"]) for r in judge_server.requests]
    assert len(bodies) == 2 * 2 * 3 and len(set(bodies)) == len(bodies)       # 3 attempts, all different
    reasks = {r.body["messages"][-1]["content"] for r in judge_server.requests if len(r.body["messages"]) > 1}
    assert len(reasks) == 4           # helpfulness and categories, each a first and a stricter re-ask


def test_a_refusal_in_words_is_reasked_not_a_judge_refusal(judge_server, judge_yaml, cache_path,
                                                         cosalign_rows):
    refusal = "The answer refuses: I'm sorry, but I can't help with that. I cannot rate this."
    judge_server.set(answer=lambda m: refusal if len(m) == 1 else rubric_answer(m))
    run = judge_run(cosalign_samples(cosalign_rows, 0, 3), load_judge(judge_yaml), progress=False)
    assert all(r.is_valid for r in run.records) and run.stats.reasked == 6


@pytest.mark.parametrize("empty", ["", "   \n\t"])
def test_an_empty_answer_is_a_transport_failure_retried_next_run(judge_server, judge_yaml, cache_path,
                                                                cosalign_rows, empty):
    samples = cosalign_samples(cosalign_rows, 0, 3)
    judge_server.set(answer=lambda m: empty)
    first = judge_run(samples, load_judge(judge_yaml), progress=False)
    assert {r.failure for r in first.records} == {"api_error"} and first.stats.reasked == 0
    assert _rows(cache_path) == 0
    judge_server.set(answer=rubric_answer)
    judge_server.reset()
    second = judge_run(samples, load_judge(judge_yaml), progress=False)
    assert all(r.is_valid for r in second.records) and judge_server.request_count == 6


def test_the_endpoint_is_in_every_key_and_record(judge_server, judge_yaml, cache_path, cosalign_rows):
    samples = cosalign_samples(cosalign_rows, 0, 3)
    first = judge_run(samples, load_judge(judge_yaml), progress=False)
    assert {r.extra["judge_endpoint"] for r in first.records} == {judge_server.base_url}
    assert all(r.extra["judge_identity"]["model"] == "judge-model" for r in first.records)
    with FakeOpenAIServer(model="judge-model") as other:
        second = judge_run(samples, load_judge(judge_yaml, endpoint=other.base_url), progress=False)
        assert other.request_count == 6 and second.stats.cached == 0      # another server: asked anew
    assert {r.extra["judge_endpoint"] for r in second.records} == {other.base_url}


def test_cache_key_holds_verdict_format_and_choices_follow_the_table(judge_yaml, monkeypatch):
    import dataclasses
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    judge = load_judge(judge_yaml)
    item = {"prompt": "p", "response": "r", "config": "c"}
    free = {name: judge.request(name, item) for name in RUBRICS}
    assert all(r.choices == () and r.verdict == RUBRICS[n].verdict for n, r in free.items())
    judge.config = dataclasses.replace(judge.config, verdict_format="logprobs")
    scored = {name: judge.request(name, item) for name in RUBRICS}
    assert scored["helpfulness"].choices == tuple("012345") and scored["addressed"].choices == ("YES", "NO")
    assert scored["categories"].choices == ("true", "false") and scored["categories"].verdict == "categories"
    assert all(scored[n].key != free[n].key and scored[n].verdict_format == "logprobs" for n in RUBRICS)
    judge.config = dataclasses.replace(judge.config, verdict_format="free", parser="reference", reasks=0)
    assert {n: judge.request(n, item).key for n in RUBRICS} == {n: r.key for n, r in free.items()}


def test_reference_parser_replays_the_cached_texts(judge_server, judge_yaml, cache_path, cosalign_rows,
                                                   cosapien_configs):
    samples = cosalign_samples(cosalign_rows, 0, 20) + cosapien_samples(cosapien_configs)
    default = judge_run(samples, load_judge(judge_yaml), progress=False)
    judge_server.reset()
    judge = load_judge(judge_yaml, parser="reference")
    reference = judge_run(samples, judge, progress=False)
    assert judge_server.request_count == 0                      # same cached texts, no new calls
    disagreements = 0
    for a, b in zip(default.records, reference.records):
        texts = {rubric: rubric_answer(list(judge.messages(rubric, sample_item(a.sample))))
                 for rubric in judge.rubric_hashes(a.sample)}
        want = {rubric: parse_output(rubric, text, parser="reference").value for rubric, text in texts.items()}
        assert b.rating == want["helpfulness"] == 0                   # rubric_answer mentions [[0]] first
        if a.sample.benchmark == "cosapien":
            assert b.is_compliant is want["compliance"] is False        # it always mentions [[NO]]
        else:
            assert b.categories == want["categories"] == a.categories
        assert a.extra["parser"] == "final" and b.extra["parser"] == "reference"
        disagreements += sum(parse_output(r, t).value != want[r] for r, t in texts.items())
    assert default.stats.parser == "final" and reference.stats.parser == "reference"
    assert reference.stats.parser_disagreements == default.stats.parser_disagreements == disagreements > 0


def test_unknown_parser_and_rubric_are_one_line_errors(judge_yaml):
    with pytest.raises(CosaError, match="unknown parser 'paper'; choose final, reference"):
        load_judge(judge_yaml, parser="paper")
    with pytest.raises(CosaError, match="unknown rubric 'tone'"):
        with JudgeSession(load_judge(judge_yaml), cache_path=judge_yaml.parent / "c.sqlite") as session:
            session.judge.request("tone", {"prompt": "p"})


def test_every_rubric_in_the_table_has_a_fenced_template_and_distinct_reasks():
    from cosa_eval.judging.config import shipped_rubric
    for name, spec in RUBRICS.items():
        text = shipped_rubric(name).read_text(encoding="utf-8")
        assert text.count("{{ fence }}") == 3 and all(f"{{{{ {v} | neutralise }}}}" in text for v in spec.quoted)
        assert len(set(spec.reasks)) == len(spec.reasks) >= 2
