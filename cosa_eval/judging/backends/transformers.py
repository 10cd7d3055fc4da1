"""Local judge through transformers, on CPU or GPU: greedy generation, or choice scoring.

What a request asks for (free text, scored choices, scored categories) and how prompts and choices
map to tokens is shared with the vLLM backend (``backends/local.py``). Scoring reuses work: in one
batch of requests, the tokens all of them start with (the rubric's head) are encoded once, each
request's own part once on top of that KV-cache, and a categories request's 8 short suffixes
(``{"<category>":``) are scored on a copy of its cache, so only the suffix tokens are new work.
"""
from __future__ import annotations

import asyncio
import copy
import inspect
import threading
import time
from typing import Any, Callable, ClassVar

from ...errors import CosaError
from .base import JudgeRequest, JudgeResponse
from .local import Job, JobResult, assemble, check_choice_tokens, check_options, encode, local_identity, plan_jobs

_OPTIONS = ("device", "dtype", "batch_size", "max_new_tokens", "gguf_file", "answer_prefixes")
_DTYPES = ("auto", "float32", "bfloat16", "float16")


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CosaError(f"transformers backend: {what} must be a positive integer, got {value!r}")
    return value


def _auto_dtype(device: str) -> str:
    """bf16 where the hardware does it natively (3x faster than fp32 on an AVX512-BF16 CPU), else fp32/fp16."""
    import torch
    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            flags = set(cpuinfo.read().split())
    except OSError:
        return "float32"
    return "bfloat16" if flags & {"avx512_bf16", "amx_bf16"} else "float32"


def common_prefix(sequences: list[list[int]]) -> int:
    """How many leading tokens all sequences share."""
    shortest = min(len(s) for s in sequences)
    for k in range(shortest):
        token = sequences[0][k]
        if any(s[k] != token for s in sequences):
            return k
    return shortest


def split_shared(groups: list[list[list[int]]]) -> tuple[int, list[int]]:
    """Where the batch's shared head ends, and where each request's own shared part ends.

    ``groups[r]`` holds the token ids of request r's jobs. A request with several jobs keeps at
    least one token of each job for its suffix; the batch head keeps at least one token of each
    request for its middle, so every step has a last position to read.
    """
    own = [common_prefix(seqs) if len(seqs) == 1 else min(common_prefix(seqs), min(map(len, seqs)) - 1)
           for seqs in groups]
    head = min(common_prefix([seqs[0][:n] for seqs, n in zip(groups, own)]), min(own) - 1)
    return max(head, 0), own


def scoring_batches(jobs: list[Job], rubrics: list[str], batch_size: int) -> list[list[list[int]]]:
    """Scoring jobs grouped by request, in batches of ``batch_size`` requests with as many jobs each.

    Requests of one rubric and similar length share a batch: a longer shared head, less padding.
    """
    by_request: dict[int, list[int]] = {}
    for i, job in enumerate(jobs):
        if job.choice_ids is not None:
            by_request.setdefault(job.index, []).append(i)
    order = sorted(by_request.values(), key=lambda g: (len(g), rubrics[jobs[g[0]].index], len(jobs[g[0]].text)))
    batches: list[list[list[int]]] = []
    for group in order:
        if batches and len(batches[-1]) < batch_size and len(batches[-1][0]) == len(group):
            batches[-1].append(group)
        else:
            batches.append([group])
    return batches


class TransformersBackend:
    """Judge with a local model through transformers (``AutoModelForCausalLM``), CPU or GPU."""

    name: ClassVar[str] = "transformers"

    def __init__(self, model: str, sampling: dict[str, Any], *, concurrency: int, **options: Any) -> None:
        check_options(options, _OPTIONS, self.name)
        self.model_name = str(model)
        self.sampling = dict(sampling or {})
        self.device = str(options.get("device", "auto"))
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise CosaError(f"transformers backend: device must be auto, cpu or cuda, got {self.device!r}")
        self.dtype = str(options.get("dtype", "auto"))
        if self.dtype not in _DTYPES:
            raise CosaError(f"transformers backend: dtype must be one of {', '.join(_DTYPES)}, got {self.dtype!r}")
        self.batch_size = _positive_int(options.get("batch_size", 8), "batch_size")   # concurrency: one model
        self.max_new_tokens = _positive_int(
            options.get("max_new_tokens") or self.sampling.get("max_tokens") or 1024, "max_new_tokens")
        self.gguf_file = options.get("gguf_file")
        self.prefixes = dict(options.get("answer_prefixes") or {})
        self._tokenizer: Any = None
        self._model: Any = None
        self._cache_argument = "cache"
        self._last_logits_only: dict[str, int] = {}
        self._lock = threading.Lock()

    def check_ready(self) -> None:
        """Import transformers, load the tokenizer and the model's config, and prove the standard choices
        map to distinct tokens."""
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError as exc:
            raise CosaError(f"transformers backend needs torch and transformers ({exc}); "
                            "pip install 'cosa-eval[hf]'") from exc
        check_choice_tokens(self._load_tokenizer(), self.prefixes)
        from transformers import AutoConfig
        try:
            AutoConfig.from_pretrained(self.model_name, **self._file_kwargs())
        except (OSError, ValueError) as exc:
            raise CosaError(f"transformers backend: cannot load the model config of {self.model_name!r} "
                            f"({str(exc).splitlines()[0]}); give a local model folder or a cached hub id") from exc

    def identity(self) -> dict[str, str]:
        """No server: the model folder or hub id (with its GGUF file, if one is set)."""
        return local_identity(f"{self.model_name}/{self.gguf_file}" if self.gguf_file else self.model_name)

    async def complete(self, requests: list[JudgeRequest]) -> list[JudgeResponse]:
        """Answer every request in order; the model runs in a worker thread."""
        return await asyncio.to_thread(self._complete_sync, list(requests))

    async def aclose(self) -> None:
        """Nothing is bound to the event loop; the model stays loaded for the next batch."""

    # -- loading ---------------------------------------------------------------------------------

    def _load_tokenizer(self) -> Any:
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            from ...hub import loadable_model
            if not self.gguf_file:                 # offline, a hub id would be retried for over a minute
                self.model_name = loadable_model(self.model_name, "transformers judge")
            try:
                tokenizer = AutoTokenizer.from_pretrained(self.model_name, **self._file_kwargs())
            except (OSError, ValueError) as exc:
                raise CosaError(f"transformers backend: cannot load the tokenizer of {self.model_name!r} "
                                f"({str(exc).splitlines()[0]}); give a local folder or a cached hub id") from exc
            if not getattr(tokenizer, "chat_template", None):
                raise CosaError(f"transformers backend: {self.model_name!r} has no chat template; "
                                "use an instruction-tuned judge model")
            tokenizer.padding_side = "left"
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            self._tokenizer = tokenizer
        return self._tokenizer

    def _file_kwargs(self) -> dict[str, Any]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}

    def _load_model(self) -> Any:
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM
            device = self.device
            if device == "auto":
                device = "cuda" if torch.cuda.is_available() else "cpu"
            dtype = self.dtype if self.dtype != "auto" else _auto_dtype(device)
            model = AutoModelForCausalLM.from_pretrained(
                self.model_name, dtype=getattr(torch, dtype), **self._file_kwargs())
            self._model = model.to(device).eval()
            accepts = inspect.signature(self._model.forward).parameters
            self._cache_argument = "cache" if "cache" in accepts else "past_key_values"   # before transformers 5
            self._last_logits_only = {"logits_to_keep": 1} if "logits_to_keep" in accepts else {}   # saves the LM head
        return self._model

    # -- running ---------------------------------------------------------------------------------

    def _complete_sync(self, requests: list[JudgeRequest]) -> list[JudgeResponse]:
        with self._lock:
            tokenizer = self._load_tokenizer()
            self._load_model()
            jobs = plan_jobs(tokenizer, requests, self.prefixes)
            results: list[JobResult | None] = [None] * len(jobs)
            for batch in scoring_batches(jobs, [r.rubric for r in requests], self.batch_size):
                flat = [i for group in batch for i in group]
                scored = self._run_batch(lambda b=batch: self._score_requests([[jobs[i] for i in g] for g in b]),
                                         len(flat))
                for i, result in zip(flat, scored):
                    results[i] = result
            free = sorted((i for i, job in enumerate(jobs) if job.choice_ids is None), key=lambda i: len(jobs[i].text))
            for start in range(0, len(free), self.batch_size):   # similar lengths share a batch: less padding
                batch_ids = free[start:start + self.batch_size]
                generated = self._run_batch(lambda b=batch_ids: self._generate_batch([jobs[i] for i in b]),
                                            len(batch_ids))
                for i, result in zip(batch_ids, generated):
                    results[i] = result
        done = [r for r in results if r is not None]
        assert len(done) == len(jobs), "every planned job must have a result"
        return assemble(len(requests), jobs, done)

    @staticmethod
    def _run_batch(run: Callable[[], list[JobResult]], n_results: int) -> list[JobResult]:
        """Run one batch, timing it; a model error fails this batch's requests, not the run."""
        started = time.perf_counter()
        try:
            results = run()
        except (RuntimeError, ValueError) as exc:
            detail = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            results = [JobResult(failure="api_error", detail=detail) for _ in range(n_results)]
        share = (time.perf_counter() - started) / n_results
        for result in results:
            result.seconds = share
        return results

    def _score_requests(self, groups: list[list[Job]]) -> list[JobResult]:
        """Score every job of these requests (all with as many jobs) on shared KV-caches."""
        import torch
        from transformers import DynamicCache
        ids = [[encode(self._tokenizer, job.text) for job in group] for group in groups]
        head, own = split_shared(ids)
        rows, device, cache = len(groups), self._model.device, DynamicCache()
        with torch.inference_mode():
            if head:   # encoded once, then shared by every row
                nothing = torch.zeros((1, 0), dtype=torch.long, device=device)
                self._extend(cache, nothing, nothing.new_zeros(1), [ids[0][0][:head]])
                cache.batch_repeat_interleave(rows)
            mask = torch.ones((rows, head), dtype=torch.long, device=device)
            lengths = torch.full((rows,), head, dtype=torch.long, device=device)
            logits, mask, lengths = self._extend(cache, mask, lengths, [seqs[0][head:n] for seqs, n in zip(ids, own)])
            per_job = [logits] if len(groups[0]) == 1 else [   # each suffix on its own copy of the cache
                self._extend(copy.deepcopy(cache), mask, lengths, [seqs[k][n:] for seqs, n in zip(ids, own)])[0]
                for k in range(len(groups[0]))]
        return [self._choice_result(job, per_job[k][r], len(ids[r][k]))
                for r, group in enumerate(groups) for k, job in enumerate(group)]

    def _extend(self, cache: Any, past_mask: Any, lengths: Any, segments: list[list[int]]) -> tuple[Any, Any, Any]:
        """Run ``segments`` (one per row, left-padded) on top of ``cache``, which grows in place.

        Returns the last position's logits, the attention mask and the row lengths so far.
        """
        import torch
        device = self._model.device
        width = max(len(s) for s in segments)
        pad = self._tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(s)) + s for s in segments], device=device)
        own_mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in segments], device=device)
        positions = lengths[:, None] + (own_mask.cumsum(-1) - 1).clamp(min=0)
        mask = torch.cat([past_mask, own_mask], dim=1)
        output = self._model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True,
                             **{self._cache_argument: cache}, **self._last_logits_only)
        return output.logits[:, -1, :].float(), mask, lengths + own_mask.sum(-1)

    @staticmethod
    def _choice_result(job: Job, logits: Any, input_tokens: int) -> JobResult:
        """The choices' logits at the last position, and how much of the vocabulary they hold."""
        import torch
        choice_ids = job.choice_ids or {}
        scores = {c: float(logits[t]) for c, t in choice_ids.items()}
        picked = logits[torch.tensor(list(choice_ids.values()), device=logits.device)]
        mass = float(torch.exp(torch.logsumexp(picked, dim=0) - torch.logsumexp(logits, dim=0)))
        return JobResult(choice_scores=scores, input_tokens=input_tokens, output_tokens=1, choice_mass=mass)

    def _generate_batch(self, jobs: list[Job]) -> list[JobResult]:
        """Batched generation; a row that never reaches an end token is a truncated failure."""
        import torch
        tokenizer = self._tokenizer
        bos = getattr(tokenizer, "bos_token", None)
        inputs = tokenizer([job.text for job in jobs], add_special_tokens=not (bos and jobs[0].text.startswith(bos)),
                           padding=True, return_tensors="pt").to(self._model.device)
        eos_ids = self._eos_ids()
        temperature = float(self.sampling.get("temperature") or 0.0)
        sampling = ({"do_sample": True, "temperature": temperature,
                     "top_p": float(self.sampling.get("top_p") or 1.0)} if temperature > 0
                    else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None})
        with torch.inference_mode():
            output = self._model.generate(**inputs, max_new_tokens=self.max_new_tokens, eos_token_id=eos_ids,
                                          pad_token_id=tokenizer.pad_token_id, **sampling)
        new_tokens = output[:, inputs["input_ids"].shape[1]:].tolist()
        return [self._decode(row, int(inputs["attention_mask"][i].sum()), eos_ids)
                for i, row in enumerate(new_tokens)]

    def _decode(self, tokens: list[int], input_tokens: int, eos_ids: list[int]) -> JobResult:
        end = next((k for k, token in enumerate(tokens) if token in eos_ids), None)
        if end is None:
            text = self._tokenizer.decode(tokens, skip_special_tokens=True)
            return JobResult(text=text, failure="truncated", input_tokens=input_tokens, output_tokens=len(tokens),
                             detail=f"no end of answer within max_new_tokens={self.max_new_tokens}")
        text = self._tokenizer.decode(tokens[:end], skip_special_tokens=True)
        return JobResult(text=text.strip(), input_tokens=input_tokens, output_tokens=end + 1)

    def _eos_ids(self) -> list[int]:
        """The model's end tokens plus the tokenizer's, without touching the model's own config."""
        configured = getattr(self._model.generation_config, "eos_token_id", None)
        ids = [*configured] if isinstance(configured, (list, tuple)) else [configured]
        return sorted({int(i) for i in [*ids, self._tokenizer.eos_token_id] if i is not None})
