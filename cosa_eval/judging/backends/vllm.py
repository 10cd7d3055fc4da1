"""Local GPU judge through vLLM in-process: every pending request in ONE batched ``generate`` call.

Prompts are rendered with the model's own chat template exactly as the transformers backend renders
them (same answer prefixes, same choice-to-token mapping), then sent as token ids. Logit scoring
asks vLLM for one token with the top 20 logprobs and reads the choices' tokens there; a choice not
among them gets probability 0 after renormalising, and a request none of whose choices appear is an
``unparseable`` failure. vllm is an optional extra, imported only when this backend runs.
"""
from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from typing import Any, Callable, ClassVar

from ...errors import CosaError
from .base import JudgeRequest, JudgeResponse
from .transformers import Job, JobResult, assemble, check_options, encode, plan_jobs

TOP_LOGPROBS = 20
INSTALL_HINT = "pip install 'cosa-eval[vllm]' on a GPU machine"
_ENGINE_OPTIONS = ("tensor_parallel_size", "data_parallel_size", "gpu_memory_utilization", "max_model_len",
                   "dtype", "quantization", "download_dir", "seed")
_OPTIONS = _ENGINE_OPTIONS + ("llm_kwargs", "logit_scoring", "category_logits", "answer_prefixes",
                              "max_new_tokens")


def engine_kwargs(model: str, options: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM``: the options that are set, then ``llm_kwargs`` on top."""
    kwargs: dict[str, Any] = {"model": model}
    kwargs.update({k: options[k] for k in _ENGINE_OPTIONS if options.get(k) is not None})
    extra = options.get("llm_kwargs") or {}
    if not isinstance(extra, dict):
        raise CosaError(f"vllm backend: llm_kwargs must be a mapping of vllm.LLM arguments, got {extra!r}")
    kwargs.update(extra)
    return kwargs


def sampling_kwargs(job: Job, sampling: dict[str, Any], max_tokens: int) -> dict[str, Any]:
    """``SamplingParams`` arguments: one greedy token with logprobs to score, else the judge's sampling."""
    if job.choice_ids is not None:
        return {"temperature": 0.0, "max_tokens": 1, "logprobs": TOP_LOGPROBS}
    kwargs = {"temperature": float(sampling.get("temperature") or 0.0),
              "top_p": float(sampling.get("top_p") or 1.0), "max_tokens": max_tokens}
    if sampling.get("seed") is not None:
        kwargs["seed"] = int(sampling["seed"])
    return kwargs


def _logprob(value: Any) -> float:
    """A vLLM ``Logprob`` (or a bare float) as a float."""
    return float(getattr(value, "logprob", value))


def job_result(job: Job, output: Any) -> JobResult:
    """Map one vLLM ``RequestOutput`` to what the job asked for."""
    completion = output.outputs[0]
    counts = {"input_tokens": len(output.prompt_token_ids or ()), "output_tokens": len(completion.token_ids)}
    if job.choice_ids is not None:
        top = completion.logprobs[0] if completion.logprobs else {}
        scores = {c: (_logprob(top[t]) if t in top else None) for c, t in job.choice_ids.items()}
        return JobResult(choice_scores=scores, **counts)
    if completion.finish_reason == "length":
        return JobResult(text=completion.text, failure="truncated",
                         detail=f"no end of answer within max_tokens={len(completion.token_ids)}", **counts)
    return JobResult(text=completion.text.strip(), **counts)


def run_requests(llm: Any, make_params: Callable[..., Any], requests: list[JudgeRequest], *,
                 sampling: dict[str, Any], max_tokens: int, logit_scoring: bool, category_logits: bool,
                 prefixes: dict[str, str] | None = None) -> list[JudgeResponse]:
    """Plan, render and run every request in one ``llm.generate`` call, then assemble the responses."""
    tokenizer = llm.get_tokenizer()
    jobs = plan_jobs(tokenizer, requests, logit_scoring=logit_scoring, category_logits=category_logits,
                     prefixes=prefixes)
    if not jobs:
        return []
    prompts = [{"prompt_token_ids": encode(tokenizer, job.text)} for job in jobs]
    params = [make_params(**sampling_kwargs(job, sampling, max_tokens)) for job in jobs]
    started = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    share = (time.perf_counter() - started) / len(jobs)
    results = [job_result(job, output) for job, output in zip(jobs, outputs)]
    for result in results:
        result.seconds = share
    return assemble(len(requests), jobs, results)


class VLLMBackend:
    """Judge with ``vllm.LLM`` on the local GPU(s); options are passed to the engine."""

    name: ClassVar[str] = "vllm"

    def __init__(self, model: str, sampling: dict[str, Any], **options: Any) -> None:
        check_options(options, _OPTIONS, self.name)
        self.model_name = str(model)
        self.sampling = dict(sampling or {})
        self.engine_kwargs = engine_kwargs(self.model_name, options)
        max_tokens = options.get("max_new_tokens") or self.sampling.get("max_tokens") or 1024
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise CosaError(f"vllm backend: max_tokens must be a positive integer, got {max_tokens!r}")
        self.max_tokens = max_tokens
        self.logit_scoring = bool(options.get("logit_scoring", False))
        self.category_logits = bool(options.get("category_logits", True))
        self.prefixes = dict(options.get("answer_prefixes") or {})
        self._llm: Any = None
        self._lock = threading.Lock()

    def check_ready(self) -> None:
        """vllm must be importable and a CUDA device visible."""
        if importlib.util.find_spec("vllm") is None:
            raise CosaError(f"vllm backend: vllm is not installed; {INSTALL_HINT} "
                            "(or use the transformers backend)")
        import torch
        if not torch.cuda.is_available():
            raise CosaError("vllm backend: no CUDA device is visible; run it on a GPU machine "
                            "or use the transformers backend")

    async def complete(self, requests: list[JudgeRequest]) -> list[JudgeResponse]:
        """Answer every request in order; the engine runs in a worker thread."""
        return await asyncio.to_thread(self._complete_sync, list(requests))

    def _complete_sync(self, requests: list[JudgeRequest]) -> list[JudgeResponse]:
        with self._lock:
            llm = self._load()
            from vllm import SamplingParams
            return run_requests(llm, SamplingParams, requests, sampling=self.sampling,
                                max_tokens=self.max_tokens, logit_scoring=self.logit_scoring,
                                category_logits=self.category_logits, prefixes=self.prefixes)

    def _load(self) -> Any:
        if self._llm is None:
            try:
                from vllm import LLM
            except ImportError as exc:
                raise CosaError(f"vllm backend: cannot import vllm ({exc}); {INSTALL_HINT}") from exc
            self._llm = LLM(**self.engine_kwargs)
        return self._llm
