"""The vLLM judge backend: request -> prompt/SamplingParams translation and result mapping here; the
real engine end to end only where vLLM and a GPU are present."""
from __future__ import annotations

import asyncio
import importlib.util
import json
from types import SimpleNamespace

import pytest

from cosa_eval.errors import CosaError
from cosa_eval.judging.backends.base import Backend, JudgeRequest
from cosa_eval.judging.backends.transformers import Job, encode, render_chat
from cosa_eval.judging.backends.vllm import (
    TOP_LOGPROBS, VLLMBackend, engine_kwargs, job_result, run_requests, sampling_kwargs)
from cosa_eval.taxonomy import ALL_CATEGORIES

RATINGS = tuple(str(k) for k in range(6))


def request(text: str, rubric: str = "helpfulness", choices: tuple[str, ...] = RATINGS) -> JudgeRequest:
    return JudgeRequest(key=text, rubric=rubric, choices=choices,
                        messages=({"role": "system", "content": "Judge fairly."}, {"role": "user", "content": text}))


def completion(text: str = "", token_ids=(1, 2), finish_reason: str = "stop", logprobs=None):
    """The shape of a vLLM ``RequestOutput`` (only the fields the backend reads)."""
    return SimpleNamespace(prompt_token_ids=[5, 6, 7], outputs=[SimpleNamespace(
        text=text, token_ids=list(token_ids), finish_reason=finish_reason, logprobs=logprobs)])


def test_backend_follows_the_protocol():
    backend = VLLMBackend("some/model", {"temperature": 0})
    assert isinstance(backend, Backend) and backend.name == "vllm"


def test_engine_options_pass_through():
    kwargs = engine_kwargs("m", {"tensor_parallel_size": 2, "gpu_memory_utilization": 0.8, "max_model_len": 4096,
                                 "dtype": "bfloat16", "quantization": None, "download_dir": "/d",
                                 "data_parallel_size": 2, "llm_kwargs": {"enforce_eager": True, "max_model_len": 2048}})
    assert kwargs == {"model": "m", "tensor_parallel_size": 2, "gpu_memory_utilization": 0.8,
                      "max_model_len": 2048, "dtype": "bfloat16", "download_dir": "/d",
                      "data_parallel_size": 2, "enforce_eager": True}
    with pytest.raises(CosaError, match="llm_kwargs must be a mapping"):
        engine_kwargs("m", {"llm_kwargs": "enforce_eager"})
    with pytest.raises(CosaError, match="unknown option"):
        VLLMBackend("m", {}, tensor_parallel=2)


def test_sampling_params_for_generation_and_scoring():
    sampling = {"temperature": 0.7, "top_p": 0.9, "seed": 3}
    assert sampling_kwargs(Job(0, "t"), sampling, 512) == {"temperature": 0.7, "top_p": 0.9, "max_tokens": 512,
                                                             "seed": 3}
    assert sampling_kwargs(Job(0, "t", {"YES": 1, "NO": 2}), sampling, 512) == {
        "temperature": 0.0, "max_tokens": 1, "logprobs": TOP_LOGPROBS}


def test_logprobs_map_to_choice_scores_missing_ones_stay_none():
    job = Job(0, "t", {"YES": 11, "NO": 12})
    logprob = SimpleNamespace(logprob=-0.5, rank=1, decoded_token="YES")
    result = job_result(job, completion(token_ids=[11], logprobs=[{11: logprob, 99: -3.0}]))
    assert result.choice_scores == {"YES": -0.5, "NO": None}
    assert (result.input_tokens, result.output_tokens) == (3, 1)


def test_finish_by_length_is_truncated():
    result = job_result(Job(0, "t"), completion("half an ans", token_ids=range(8), finish_reason="length"))
    assert result.failure == "truncated" and "max_tokens=8" in result.detail
    assert job_result(Job(0, "t"), completion("  done.  ")).text == "done."


class RecordingLLM:
    """Stands in for ``vllm.LLM``: a real tokenizer, and scripted outputs per kind of prompt."""

    def __init__(self, tokenizer, top: dict):
        self.tokenizer, self.top, self.calls = tokenizer, top, []

    def get_tokenizer(self):
        return self.tokenizer

    def generate(self, prompts, params, use_tqdm=True):
        self.calls.append((prompts, params))
        return [completion(token_ids=[1], logprobs=[self.top]) if p.get("logprobs") else completion("fine [[5]]")
                for p in params]


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_all_requests_go_in_one_generate_call(tiny_tokenizer):
    ids = {s: tiny_tokenizer(s, add_special_tokens=False)["input_ids"][0] for s in ("YES", "NO", "3", " true")}
    llm = RecordingLLM(tiny_tokenizer, {ids["YES"]: -0.2, ids["3"]: -1.0, ids[" true"]: -0.1})
    requests = [request("rate me"), request("comply?", "compliance", ("YES", "NO")),
                request("free text", "free", ()), request("harms?", "categories", ())]
    responses = run_requests(llm, dict, requests, sampling={"temperature": 0}, max_tokens=64,
                             logit_scoring=True, category_logits=True)
    [(prompts, params)] = llm.calls
    assert len(prompts) == 3 + len(ALL_CATEGORIES)
    expected_text = render_chat(tiny_tokenizer, requests[0].messages, "Rating: [[")
    assert prompts[0] == {"prompt_token_ids": encode(tiny_tokenizer, expected_text)}
    assert params[2] == {"temperature": 0.0, "top_p": 1.0, "max_tokens": 64}
    assert responses[0].choice_probs["3"] == pytest.approx(1.0) and responses[0].choice_probs["0"] == 0.0
    assert responses[1].choice_probs == pytest.approx({"YES": 1.0, "NO": 0.0})
    assert responses[2].text == "fine [[5]]" and responses[2].choice_probs is None
    assert json.loads(responses[3].text) == {c: True for c in ALL_CATEGORIES}


def test_no_choice_among_the_top_logprobs_is_unparseable(tiny_tokenizer):
    llm = RecordingLLM(tiny_tokenizer, {0: -0.01})
    [response] = run_requests(llm, dict, [request("rate me")], sampling={}, max_tokens=8,
                              logit_scoring=True, category_logits=True)
    assert response.failure == "unparseable" and response.choice_probs is None
    assert "none of the choices" in response.detail


def test_check_ready_says_what_is_missing():
    backend = VLLMBackend("m", {})
    if importlib.util.find_spec("vllm") is None:
        with pytest.raises(CosaError, match=r"pip install 'cosa-eval\[vllm\]' on a GPU machine"):
            backend.check_ready()
    else:
        import torch
        if not torch.cuda.is_available():
            with pytest.raises(CosaError, match="no CUDA device"):
                backend.check_ready()


def test_vllm_end_to_end_on_a_gpu():
    pytest.importorskip("vllm", reason="needs vLLM and a GPU")
    import torch
    if not torch.cuda.is_available():
        pytest.skip("needs vLLM and a GPU")
    from cosa_eval.smollm2 import smollm2_path
    backend = VLLMBackend(str(smollm2_path()), {"temperature": 0, "max_tokens": 40}, logit_scoring=True,
                          gpu_memory_utilization=0.3, max_model_len=2048, dtype="bfloat16")
    backend.check_ready()
    requests = [JudgeRequest(key="q", rubric="free", messages=({"role": "user", "content":
                                                               "What is the capital of France?"},)),
                request("Question: What is 2+2?\nResponse: 4."),
                request("Prompt: hi\nResponse: hello", "compliance", ("YES", "NO"))]
    answer, rating, verdict = asyncio.run(backend.complete(requests))
    assert "Paris" in answer.text and answer.output_tokens > 0
    for response, req in ((rating, requests[1]), (verdict, requests[2])):
        assert set(response.choice_probs) == set(req.choices)
        assert sum(response.choice_probs.values()) == pytest.approx(1.0)
