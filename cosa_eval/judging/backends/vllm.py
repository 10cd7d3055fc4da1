"""Local GPU judge through vLLM in-process, with automatic prefix caching.

Prompts and jobs come from ``backends/local.py`` exactly as for the transformers backend (same
answer prefixes, same choice-to-token mapping, one job per risk category), sent as token ids.
A scored job asks vLLM for one token with the top 20 logprobs and reads its choices' tokens there;
a choice not among them gets probability 0 after renormalising, and a request none of whose
choices appear is an ``unparseable`` failure.

Prefix caching only reuses blocks that an earlier *step* computed, so the jobs go in three waves:
one job per rubric (caches the rubric's head), then one job per request (caches each request's
own part), then the rest (the category suffixes, all in one batch). vllm is an optional extra,
imported only when this backend runs.
"""
from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from typing import Any, Callable, ClassVar

from ...errors import CosaError
from .base import JudgeRequest, JudgeResponse
from .local import Job, JobResult, assemble, check_options, encode, local_identity, plan_jobs

TOP_LOGPROBS = 20
INSTALL_HINT = "pip install 'cosa-eval[vllm]' on a GPU machine"
_ENGINE_OPTIONS = ("tensor_parallel_size", "data_parallel_size", "gpu_memory_utilization", "max_model_len",
                   "dtype", "quantization", "download_dir", "seed", "enable_prefix_caching")
_OPTIONS = _ENGINE_OPTIONS + ("llm_kwargs", "answer_prefixes", "max_new_tokens")


def engine_kwargs(model: str, options: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM``: prefix caching on, the options that are set, ``llm_kwargs`` on top."""
    kwargs: dict[str, Any] = {"model": model, "enable_prefix_caching": True}
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


def waves(jobs: list[Job], rubrics: list[str]) -> list[list[int]]:
    """Job indices in three waves: first job of each rubric, first of each request, the rest."""
    first_of_rubric: dict[str, int] = {}
    first_of_request: dict[int, int] = {}
    for i, job in enumerate(jobs):
        first_of_rubric.setdefault(rubrics[job.index], i)
        first_of_request.setdefault(job.index, i)
    one = sorted(first_of_rubric.values())
    two = sorted(set(first_of_request.values()) - set(one))
    rest = sorted(set(range(len(jobs))) - set(one) - set(two))
    return [wave for wave in (one, two, rest) if wave]


def run_requests(llm: Any, make_params: Callable[..., Any], requests: list[JudgeRequest], *,
                 sampling: dict[str, Any], max_tokens: int, prefixes: dict[str, str] | None = None
                 ) -> list[JudgeResponse]:
    """Plan and render every request, run the jobs in waves of ``llm.generate``, assemble the responses."""
    tokenizer = llm.get_tokenizer()
    jobs = plan_jobs(tokenizer, requests, prefixes)
    results: list[JobResult | None] = [None] * len(jobs)
    for wave in waves(jobs, [r.rubric for r in requests]):
        prompts = [{"prompt_token_ids": encode(tokenizer, jobs[i].text)} for i in wave]
        params = [make_params(**sampling_kwargs(jobs[i], sampling, max_tokens)) for i in wave]
        started = time.perf_counter()
        outputs = llm.generate(prompts, params, use_tqdm=False)
        share = (time.perf_counter() - started) / len(wave)
        for i, output in zip(wave, outputs):
            results[i] = job_result(jobs[i], output)
            results[i].seconds = share
    return assemble(len(requests), jobs, [r for r in results if r is not None])


class VLLMBackend:
    """Judge with ``vllm.LLM`` on the local GPU(s); options are passed to the engine."""

    name: ClassVar[str] = "vllm"

    def __init__(self, model: str, sampling: dict[str, Any], *, concurrency: int, **options: Any) -> None:
        check_options(options, _OPTIONS, self.name)
        self.model_name = str(model)
        self.sampling = dict(sampling or {})
        self.engine_kwargs = engine_kwargs(self.model_name, options)   # concurrency: vLLM batches itself
        max_tokens = options.get("max_new_tokens") or self.sampling.get("max_tokens") or 1024
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise CosaError(f"vllm backend: max_tokens must be a positive integer, got {max_tokens!r}")
        self.max_tokens = max_tokens
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

    def identity(self) -> dict[str, str]:
        """No server: the model as configured."""
        return local_identity(self.model_name)

    async def complete(self, requests: list[JudgeRequest]) -> list[JudgeResponse]:
        """Answer every request in order; the engine runs in a worker thread."""
        return await asyncio.to_thread(self._complete_sync, list(requests))

    async def aclose(self) -> None:
        """Nothing is bound to the event loop; the engine stays up for the next batch."""

    def _complete_sync(self, requests: list[JudgeRequest]) -> list[JudgeResponse]:
        with self._lock:
            llm = self._load()
            from vllm import SamplingParams
            return run_requests(llm, SamplingParams, requests, sampling=self.sampling,
                                max_tokens=self.max_tokens, prefixes=self.prefixes)

    def _load(self) -> Any:
        if self._llm is None:
            try:
                from vllm import LLM
            except ImportError as exc:
                raise CosaError(f"vllm backend: cannot import vllm ({exc}); {INSTALL_HINT}") from exc
            self._llm = LLM(**self.engine_kwargs)
        return self._llm
