"""Constrained verdicts over HTTP (json_schema, logprobs) against the local server, end to end."""
from __future__ import annotations

import json
import sqlite3

import pytest

from judging_helpers import cosalign_samples, cosapien_samples, write_judge
from cosa_eval.errors import CosaError
from cosa_eval.judging import load_judge
from cosa_eval.judging.engine import judge_samples
from cosa_eval.judging.judge import sample_item
from cosa_eval.taxonomy import ALL_CATEGORIES


def _samples(rows, configs):
    return cosalign_samples(rows, 0, 3200)[::400] + cosapien_samples(configs)[:4]


def _run(tmp_path, cache_path, samples, name="local", **settings):
    return judge_samples(samples, load_judge(write_judge(tmp_path / "judges", name, **settings)),
                         cache_path=cache_path, progress=False)


def test_json_schema_gives_the_free_form_verdicts_in_one_call_each(judge_server, tmp_path, cache_path,
                                                                   cosalign_rows, cosapien_configs):
    samples = _samples(cosalign_rows, cosapien_configs)
    free = _run(tmp_path, cache_path, samples, "free")
    judge_server.reset()
    constrained = _run(tmp_path, cache_path, samples, "schema", verdict_format="json_schema")
    assert judge_server.request_count == 2 * len(samples)            # no cache sharing, no re-asks
    assert all(r.failure is None for r in constrained)
    assert [(r.rating, r.is_compliant, r.categories) for r in constrained] == \
           [(r.rating, r.is_compliant, r.categories) for r in free]
    formats = [r.body["response_format"] for r in judge_server.requests]
    schemas = [f["json_schema"]["schema"] for f in formats]
    assert all(f["type"] == "json_schema" and list(s["properties"])[0] == "rationale" for f, s in zip(formats, schemas))
    kinds = {tuple(s["properties"])[1] for s in schemas}
    assert kinds == {"rating", "verdict", ALL_CATEGORIES[0]}
    category_schema = next(s for s in schemas if ALL_CATEGORIES[0] in s["properties"])
    assert list(category_schema["properties"])[1:] == list(ALL_CATEGORIES)
    assert sqlite3.connect(cache_path).execute("select count(*) from answers").fetchone()[0] == 4 * len(samples)


def test_logprobs_give_expected_rating_p_yes_and_category_probabilities(judge_server, tmp_path, cache_path,
                                                                        cosalign_rows, cosapien_configs):
    samples = _samples(cosalign_rows, cosapien_configs)
    free = _run(tmp_path, cache_path, samples, "free")
    scored = _run(tmp_path, cache_path, samples, "logprobs", verdict_format="logprobs")
    assert all(r.failure is None for r in scored)
    expected = [(0.7 * k + 0.2 * ((k + 1) % 6)) / 0.9 for k in range(6)]   # the server's scripted mass
    for before, after in zip(free, scored):
        assert any(after.rating == pytest.approx(value, abs=1e-6) for value in expected)
        assert after.categories == before.categories
    bodies = [r.body for r in judge_server.requests if r.body.get("logprobs")]
    assert len(bodies) == 2 * len(samples) and all(b["top_logprobs"] == 10 for b in bodies)


def test_logprob_backend_records_the_probabilities(judge_server, tmp_path, cosalign_rows, cosapien_configs):
    import asyncio
    judge = load_judge(write_judge(tmp_path / "judges", verdict_format="logprobs"))
    sample = cosapien_samples(cosapien_configs)[0]
    category_sample = cosalign_samples(cosalign_rows, 0, 1)[0]
    requests = [judge.request("compliance", sample_item(sample)),
                judge.request("categories", sample_item(category_sample))]

    async def go():
        try:
            return await judge.backend().complete(requests)
        finally:
            await judge.backend().aclose()
    compliance, categories = asyncio.run(go())
    yes = compliance.choice_probs["YES"]
    assert yes == pytest.approx(0.8 / 0.95) or yes == pytest.approx(0.15 / 0.95)
    assert set(categories.extra["category_probs"]) == set(ALL_CATEGORIES)
    assert set(categories.extra["category_probs"].values()) <= {0.9, 0.1}
    labels = json.loads(categories.text)
    assert labels == {name: p > 0.5 for name, p in categories.extra["category_probs"].items()}


def test_a_server_without_json_schema_names_the_option(judge_server, tmp_path, cache_path, cosapien_configs):
    judge_server.set(unsupported=("json_schema",))
    samples = cosapien_samples(cosapien_configs)[:1]
    with pytest.raises(CosaError, match=r"rejected verdict_format json_schema \(HTTP 500.*set verdict_format: "
                                        r"free.*schema_style: json_object") as error:
        _run(tmp_path, cache_path, samples, verdict_format="json_schema")
    assert "\n" not in str(error.value)
    records = _run(tmp_path, cache_path, samples, "llama", verdict_format="json_schema",
                   backend_options={"schema_style": "json_object", "timeout_s": 5})
    assert records[0].failure is None and judge_server.requests[-1].body["response_format"]["type"] == "json_object"


def test_a_server_without_logprobs_says_so(judge_server, tmp_path, cache_path, cosapien_configs):
    judge_server.set(unsupported=("logprobs",))
    with pytest.raises(CosaError, match=r"returned no logprobs.*set verdict_format: json_schema") as error:
        _run(tmp_path, cache_path, cosapien_samples(cosapien_configs)[:1], verdict_format="logprobs")
    assert "\n" not in str(error.value)


def test_served_model_is_the_identity_and_a_wrong_name_is_refused(judge_server, tmp_path, monkeypatch):
    auto = load_judge(write_judge(tmp_path / "judges", "auto", model="auto"))
    assert auto.backend().identity() == {"endpoint": judge_server.base_url, "model": "judge-model"}
    wrong = load_judge(write_judge(tmp_path / "judges", "wrong", model="meta-llama/Llama-3.1-70B-Instruct"))
    with pytest.raises(CosaError, match=r"'meta-llama/Llama-3.1-70B-Instruct' is not served by .* \(it serves: "
                                        r"judge-model\); set model: to a served name, or model: auto"):
        wrong.check_ready()
    assert load_judge("openai-compatible").backend().identity()["model"] == "judge-model"


def test_auto_model_needs_a_reachable_server(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    with pytest.raises(CosaError, match=r"cannot read the served model .* set model: in the judge.yaml"):
        load_judge("openai-compatible").check_ready()


def test_gpt4o_refuses_a_foreign_base_url_unless_given_explicitly(judge_server, monkeypatch):
    with pytest.raises(CosaError, match=r"pins the OpenAI API, but OPENAI_BASE_URL=.*--judge-endpoint"):
        load_judge("gpt-4o").check_ready()
    judge = load_judge("gpt-4o")
    from cosa_eval.judging.registry import load_backend_class
    explicit = load_backend_class("openai")("gpt-4o", {}, concurrency=2, provider="openai",
                                            base_url=judge_server.base_url)
    explicit.check_ready()                          # the user chose this server: it judges, truthfully named
    assert explicit.identity() == {"endpoint": judge_server.base_url, "model": "judge-model"}
    assert judge.config.verdict_format == "free"
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert load_judge("gpt-4o").backend().identity() == {"endpoint": "https://api.openai.com/v1", "model": "gpt-4o-2024-08-06"}
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://acme.openai.azure.com")
    azure = load_backend_class("openai")("gpt-4o", {}, concurrency=2, azure_deployment="gpt4o-prod")
    assert azure.identity()["endpoint"] == "azure:https://acme.openai.azure.com deployment=gpt4o-prod"


def test_shipped_openai_compatible_defaults_to_constrained_and_gpt4o_to_free():
    assert load_judge("openai-compatible").config.verdict_format == "json_schema"
    assert load_judge("openai-compatible").config.model == "auto"
    assert load_judge("gpt-4o").config.verdict_format == "free"


def test_a_rationale_with_raw_newlines_is_still_the_verdict():
    from cosa_eval.judging.backends.base import JudgeRequest
    from cosa_eval.judging.backends.structured import structured_response
    request = JudgeRequest(key="k", messages=(), rubric="helpfulness", verdict="rating", verdict_format="json_schema")
    reply = structured_response(request, '{ "rationale": "1.5}\nThe answer is [[5]] good." ,"rating": 1}')
    assert reply.text == "1.5}\nThe answer is [ [5] ] good.\nRating: [[1]]"
