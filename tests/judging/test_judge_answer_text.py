"""Judge answers are text before they reach the cache or a file: a lone surrogate is repaired."""
from __future__ import annotations

import asyncio
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from judging_helpers import JUDGE_MODEL, SECRET_KEY, cosapien_samples, write_judge, write_samples_file
from openai_server import FakeOpenAIServer, rubric_answer
from cosa_eval.cli import main
from cosa_eval.judging import judge_run, load_judge, read_judged
from cosa_eval.judging.backends.base import JudgeRequest, JudgeResponse
from cosa_eval.judging.cache import JudgeCache
from cosa_eval.judging.cli import EXIT_UNJUDGED
from cosa_eval.judging.sender import _complete, as_text


def surrogate_answers(messages: list[dict]) -> str:
    """Verdicts beside a lone surrogate and a pair split in two; compliance gets words only."""
    if "[[YES]]" in messages[0]["content"]:
        return "I cannot decide \ud800 on this one."
    return "A lone \ud800, a split pair \ud83d\ude00.\n" + rubric_answer(messages)


def test_a_lone_surrogate_is_repaired_and_the_run_completes(tmp_path, monkeypatch, cosapien_configs):
    samples = cosapien_samples(cosapien_configs)[:4]
    with FakeOpenAIServer(answer=surrogate_answers, model=JUDGE_MODEL) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
        run = judge_run(samples, load_judge(write_judge(tmp_path)), cache_path=tmp_path / "c.sqlite",
                        progress=False)
    assert all(record.rating is not None for record in run.records)
    assert {record.failure for record in run.records} == {"unparseable"}
    assert "I cannot decide \ufffd on this one." in run.records[0].extra["raw"].values()
    with JudgeCache(tmp_path / "c.sqlite") as cache:
        texts = [response.text for _key, _rubric, response in cache.items()]
    assert texts and all(text.encode("utf-8") for text in texts)
    assert any("A lone \ufffd, a split pair \U0001f600." in text for text in texts)


def test_the_cli_writes_a_judged_file_from_answers_with_surrogates(tmp_path, monkeypatch, cosapien_configs):
    write_samples_file(tmp_path / "run", cosapien_samples(cosapien_configs)[:3])
    monkeypatch.setenv("COSA_CACHE_DIR", str(tmp_path / "cache"))
    with FakeOpenAIServer(answer=surrogate_answers, model=JUDGE_MODEL) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
        status = main(["judge", str(tmp_path / "run"), "--judge", str(write_judge(tmp_path / "judges")),
                       "--output", str(tmp_path / "out"), "--no-progress"])
    assert status == EXIT_UNJUDGED                  # compliance had no verdict: unjudged, never a crash
    records = read_judged(tmp_path / "out")
    assert len(records) == 3 and all(r.rating is not None for r in records)
    raw = [json.loads(line)["extra"]["raw"] for path in (tmp_path / "out").glob("judged_*.jsonl")
           for line in path.read_text(encoding="utf-8").splitlines()]
    assert raw and all("\ufffd" in value for row in raw for value in row.values())


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec=None, exclude_categories=())))
def test_as_text_is_valid_unicode_and_keeps_valid_text(text):
    repaired = as_text(text)
    repaired.encode("utf-8")
    assert as_text(repaired) == repaired
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        assert "\ufffd" in repaired or len(repaired) < len(text)     # replaced, or a split pair joined
    else:
        assert repaired == text


class Scripted:
    """A third-party backend that answers with whatever it was given."""

    def __init__(self, responses: list[JudgeResponse]) -> None:
        self.responses = responses

    async def complete(self, requests: list[JudgeRequest]) -> list[JudgeResponse]:
        return self.responses


def test_a_backend_answer_that_is_not_text_is_an_api_error():
    request = JudgeRequest(key="k", messages=(), rubric="helpfulness")
    given_back = [JudgeResponse(text=b"Rating: [[3]]"), JudgeResponse(text="Rating: [[3]] \udfff"),
                  JudgeResponse(failure="truncated", detail=7)]
    answers = asyncio.run(_complete(Scripted(given_back), [request] * 3))
    assert [a.failure for a in answers] == ["api_error", None, "api_error"]
    assert answers[1].text == "Rating: [[3]] \ufffd" and "not a string" in answers[0].detail
