"""Local judge through transformers, on CPU or GPU: greedy generation, or logit scoring.

Logit scoring reads the verdict off one forward pass instead of generating a rationale. The
assistant turn is prefilled so that the next token *is* the verdict:

* helpfulness (choices "0".."5"): the prompt ends with ``Rating: [[`` and the next-token logits of
  the six digits are softmaxed into ``choice_probs``;
* compliance (choices "YES"/"NO") and any other rubric with choices: the prompt ends with ``[[``;
* categories (no choices): each of the 8 risk categories is scored on its own prefill
  ``{"<category>":``, between the tokens `` true`` and `` false``; the response ``text`` is the JSON
  object ``{"<category>": true|false, ...}`` (true when p(true) > 0.5) and
  ``extra["category_probs"]`` holds p(true) per category.

A choice is represented by the first token it gets when appended to the prefilled prompt, so a
choice that splits ("YES" -> "Y", "ES") is still one token; two choices that share that token are a
setup error. The prompt rendering and choice mapping here are shared with the vLLM backend.
"""
from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from ...errors import CosaError
from ...taxonomy import ALL_CATEGORIES
from .base import JudgeRequest, JudgeResponse

DEFAULT_PREFIX = "[["
ANSWER_PREFIXES: dict[str, str] = {"helpfulness": "Rating: [[", "compliance": "[["}
CATEGORY_PREFIX = '{{"{category}":'
CATEGORY_CHOICES = (" true", " false")
# Choice sets the shipped rubrics use; check_ready() proves each maps to distinct tokens.
STANDARD_CHOICES: dict[str, tuple[str, ...]] = {
    "helpfulness": tuple(str(k) for k in range(6)), "compliance": ("YES", "NO")}
_OPTIONS = ("device", "dtype", "batch_size", "max_new_tokens", "gguf_file", "logit_scoring",
            "category_logits", "answer_prefixes")
_DTYPES = ("auto", "float32", "bfloat16", "float16")


# --- prompt rendering and choice scoring (shared with the vLLM backend) -------------------------

@dataclass
class Job:
    """One model call planned for one request: generate from ``text``, or score its next token."""

    index: int                                 # position of the request in the batch
    text: str                                  # chat rendered with the generation prompt (+ prefix)
    choice_ids: dict[str, int] | None = None   # logit scoring: choice -> first token; None: generate
    label: str | None = None                   # the category this job scores, for categories


@dataclass
class JobResult:
    """What the model gave for one job: text, or raw scores of the choices' tokens."""

    text: str | None = None
    choice_scores: dict[str, float | None] | None = None   # logit or logprob; None = not returned
    failure: str | None = None
    detail: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    choice_mass: float | None = None           # probability the full vocabulary gave the choices


def render_chat(tokenizer: Any, messages: tuple[dict[str, str], ...], prefix: str = "") -> str:
    """The chat as the judge model sees it, ending with the assistant turn (and a prefilled prefix)."""
    text = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
    return text + prefix


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of a rendered chat; the BOS token is added only if the template did not write it."""
    bos = getattr(tokenizer, "bos_token", None)
    add_special = not (bos and text.startswith(bos))
    return list(tokenizer(text, add_special_tokens=add_special)["input_ids"])


def choice_token_ids(tokenizer: Any, text: str, choices: tuple[str, ...]) -> dict[str, int]:
    """Map each choice to the token that starts it right after ``text``; raise if two collide."""
    base = encode(tokenizer, text)
    ids: dict[str, int] = {}
    for choice in choices:
        full = encode(tokenizer, text + choice)
        if full[:len(base)] == base and len(full) > len(base):
            ids[choice] = full[len(base)]
        else:  # the choice merges with the prefix's last token: fall back to its own first token
            ids[choice] = tokenizer(choice, add_special_tokens=False)["input_ids"][0]
    by_token: dict[int, str] = {}
    for choice, token in ids.items():
        if token in by_token:
            raise CosaError(
                f"logit scoring: choices {by_token[token]!r} and {choice!r} start with the same token "
                f"of this judge's tokenizer; set logit_scoring: false or change the answer prefix")
        by_token[token] = choice
    return ids


def answer_prefix(rubric: str, overrides: dict[str, str] | None = None) -> str:
    """The text that prefills the assistant turn so its next token is the verdict."""
    prefixes = {**ANSWER_PREFIXES, **(overrides or {})}
    return prefixes.get(rubric, DEFAULT_PREFIX)


def plan_jobs(tokenizer: Any, requests: list[JudgeRequest], *, logit_scoring: bool,
              category_logits: bool, prefixes: dict[str, str] | None = None) -> list[Job]:
    """Turn requests into model calls: one per request, or one per risk category."""
    jobs: list[Job] = []
    for index, request in enumerate(requests):
        if logit_scoring and request.choices:
            text = render_chat(tokenizer, request.messages, answer_prefix(request.rubric, prefixes))
            jobs.append(Job(index, text, choice_token_ids(tokenizer, text, request.choices)))
        elif logit_scoring and category_logits and request.rubric == "categories":
            for category in ALL_CATEGORIES:
                text = render_chat(tokenizer, request.messages, CATEGORY_PREFIX.format(category=category))
                jobs.append(Job(index, text, choice_token_ids(tokenizer, text, CATEGORY_CHOICES), category))
        else:
            jobs.append(Job(index, render_chat(tokenizer, request.messages)))
    return jobs


def normalise(scores: dict[str, float | None]) -> dict[str, float] | None:
    """Softmax over the choices' logits (or logprobs); a choice with no score gets 0; None if none."""
    present = {c: s for c, s in scores.items() if s is not None}
    if not present:
        return None
    top = max(present.values())
    weights = {c: math.exp(s - top) for c, s in present.items()}
    total = sum(weights.values())
    return {c: weights.get(c, 0.0) / total for c in scores}


def _merge(results: list[JobResult]) -> JobResult:
    """Sum the token counts and times of the jobs of one request; keep the first failure."""
    failed = next((r for r in results if r.failure), None)
    return JobResult(failure=failed.failure if failed else None, detail=failed.detail if failed else "",
                     input_tokens=sum(r.input_tokens for r in results),
                     output_tokens=sum(r.output_tokens for r in results),
                     seconds=sum(r.seconds for r in results))


def _categories_response(jobs: list[Job], results: list[JobResult], merged: JobResult) -> JudgeResponse:
    """The JSON verdict over the risk categories, from one true/false scoring per category."""
    probs: dict[str, float] = {}
    for job, result in zip(jobs, results):
        dist = normalise(result.choice_scores or {})
        if dist is None:
            return _response(merged, failure="unparseable",
                             detail=f"neither ' true' nor ' false' among the top tokens for {job.label!r}")
        probs[str(job.label)] = dist[CATEGORY_CHOICES[0]]
    text = json.dumps({category: p > 0.5 for category, p in probs.items()})
    return _response(merged, text=text, extra={"category_probs": probs})


def _response(merged: JobResult, **fields: Any) -> JudgeResponse:
    base = dict(failure=merged.failure, detail=merged.detail, input_tokens=merged.input_tokens,
                output_tokens=merged.output_tokens, seconds=merged.seconds)
    return JudgeResponse(**{**base, **fields})


def assemble(n_requests: int, jobs: list[Job], results: list[JobResult]) -> list[JudgeResponse]:
    """One response per request, in order, from the results of its jobs."""
    by_request: dict[int, list[tuple[Job, JobResult]]] = {i: [] for i in range(n_requests)}
    for job, result in zip(jobs, results):
        by_request[job.index].append((job, result))
    responses = []
    for pairs in by_request.values():
        own_jobs, own_results = [p[0] for p in pairs], [p[1] for p in pairs]
        merged, first = _merge(own_results), own_results[0]
        if merged.failure:
            responses.append(_response(merged, extra=({"partial_text": first.text} if first.text else {})))
        elif own_jobs[0].label is not None:
            responses.append(_categories_response(own_jobs, own_results, merged))
        elif own_jobs[0].choice_ids is not None:
            probs = normalise(first.choice_scores or {})
            if probs is None:
                responses.append(_response(merged, failure="unparseable",
                                           detail="none of the choices among the judge's top tokens"))
            else:
                extra = {} if first.choice_mass is None else {"choice_mass": first.choice_mass}
                responses.append(_response(merged, choice_probs=probs, extra=extra))
        else:
            responses.append(_response(merged, text=first.text))
    return responses


def check_options(options: dict[str, Any], known: tuple[str, ...], backend: str) -> None:
    """Reject an option this backend does not know, listing those it does."""
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise CosaError(f"{backend} backend: unknown option(s) {', '.join(unknown)}; "
                        f"available: {', '.join(known)}")


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


# --- the backend ------------------------------------------------------------------------------------

class TransformersBackend:
    """Judge with a local model through transformers (``AutoModelForCausalLM``), CPU or GPU."""

    name: ClassVar[str] = "transformers"

    def __init__(self, model: str, sampling: dict[str, Any], **options: Any) -> None:
        check_options(options, _OPTIONS, self.name)
        self.model_name = str(model)
        self.sampling = dict(sampling or {})
        self.device = str(options.get("device", "auto"))
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise CosaError(f"transformers backend: device must be auto, cpu or cuda, got {self.device!r}")
        self.dtype = str(options.get("dtype", "auto"))
        if self.dtype not in _DTYPES:
            raise CosaError(f"transformers backend: dtype must be one of {', '.join(_DTYPES)}, got {self.dtype!r}")
        self.batch_size = _positive_int(options.get("batch_size", 8), "batch_size")
        self.max_new_tokens = _positive_int(
            options.get("max_new_tokens") or self.sampling.get("max_tokens") or 1024, "max_new_tokens")
        self.gguf_file = options.get("gguf_file")
        self.logit_scoring = bool(options.get("logit_scoring", False))
        self.category_logits = bool(options.get("category_logits", True))
        self.prefixes = dict(options.get("answer_prefixes") or {})
        self._tokenizer: Any = None
        self._model: Any = None
        self._lock = threading.Lock()

    def check_ready(self) -> None:
        """Import transformers, load the tokenizer and prove the standard choices map to distinct tokens."""
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError as exc:
            raise CosaError(f"transformers backend needs torch and transformers ({exc}); "
                            "pip install 'cosa-eval[hf]'") from exc
        tokenizer = self._load_tokenizer()
        if self.logit_scoring:
            messages = ({"role": "user", "content": "Is this a test?"},)
            for rubric, choices in STANDARD_CHOICES.items():
                choice_token_ids(tokenizer, render_chat(tokenizer, messages, answer_prefix(rubric, self.prefixes)),
                                 choices)
            choice_token_ids(tokenizer, render_chat(tokenizer, messages, CATEGORY_PREFIX.format(
                category=ALL_CATEGORIES[0])), CATEGORY_CHOICES)

    async def complete(self, requests: list[JudgeRequest]) -> list[JudgeResponse]:
        """Answer every request in order; the model runs in a worker thread."""
        return await asyncio.to_thread(self._complete_sync, list(requests))

    # -- loading ---------------------------------------------------------------------------------

    def _load_tokenizer(self) -> Any:
        if self._tokenizer is None:
            from transformers import AutoTokenizer
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
        return self._model

    # -- running ---------------------------------------------------------------------------------

    def _complete_sync(self, requests: list[JudgeRequest]) -> list[JudgeResponse]:
        with self._lock:
            tokenizer = self._load_tokenizer()
            self._load_model()
            jobs = plan_jobs(tokenizer, requests, logit_scoring=self.logit_scoring,
                             category_logits=self.category_logits, prefixes=self.prefixes)
            results: list[JobResult | None] = [None] * len(jobs)
            for is_scoring in (True, False):
                chosen = [i for i, job in enumerate(jobs) if (job.choice_ids is not None) == is_scoring]
                chosen.sort(key=lambda i: len(jobs[i].text))   # similar lengths share a batch: less padding
                for start in range(0, len(chosen), self.batch_size):
                    batch = chosen[start:start + self.batch_size]
                    run = self._score_batch if is_scoring else self._generate_batch
                    for i, result in zip(batch, self._run_batch(run, [jobs[i] for i in batch])):
                        results[i] = result
        done = [r for r in results if r is not None]
        assert len(done) == len(jobs), "every planned job must have a result"
        return assemble(len(requests), jobs, done)

    def _run_batch(self, run: Any, jobs: list[Job]) -> list[JobResult]:
        """Run one batch, timing it; a model error fails this batch's requests, not the run."""
        started = time.perf_counter()
        try:
            results = run(jobs)
        except (RuntimeError, ValueError) as exc:
            detail = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            results = [JobResult(failure="api_error", detail=detail) for _ in jobs]
        share = (time.perf_counter() - started) / len(jobs)
        for result in results:
            result.seconds = share
        return results

    def _inputs(self, jobs: list[Job]) -> Any:
        tokenizer = self._tokenizer
        bos = getattr(tokenizer, "bos_token", None)
        add_special = not (bos and jobs[0].text.startswith(bos))
        batch = tokenizer([job.text for job in jobs], add_special_tokens=add_special, padding=True,
                          return_tensors="pt")
        return batch.to(self._model.device)

    def _score_batch(self, jobs: list[Job]) -> list[JobResult]:
        """One forward pass; the last position's logits, read at each job's choice tokens."""
        import torch
        inputs = self._inputs(jobs)
        mask = inputs["attention_mask"]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)   # left padding: absolute-position models need this
        with torch.inference_mode():
            logits = self._model(input_ids=inputs["input_ids"], attention_mask=mask, position_ids=positions,
                                 use_cache=False, **self._last_logits_only()).logits[:, -1, :].float()
        log_total = torch.logsumexp(logits, dim=-1)
        results = []
        for row, job in enumerate(jobs):
            scores = {c: float(logits[row, t]) for c, t in (job.choice_ids or {}).items()}
            ids = torch.tensor(list((job.choice_ids or {}).values()), device=logits.device)
            mass = float(torch.exp(torch.logsumexp(logits[row, ids], dim=0) - log_total[row]))
            results.append(JobResult(choice_scores=scores, input_tokens=int(mask[row].sum()),
                                     output_tokens=1, choice_mass=mass))
        return results

    def _last_logits_only(self) -> dict[str, int]:
        """Ask for the last position's logits only, where the model supports it (saves the LM head)."""
        import inspect
        accepts = "logits_to_keep" in inspect.signature(self._model.forward).parameters
        return {"logits_to_keep": 1} if accepts else {}

    def _generate_batch(self, jobs: list[Job]) -> list[JobResult]:
        """Batched generation; a row that never reaches an end token is a truncated failure."""
        import torch
        inputs = self._inputs(jobs)
        eos_ids = self._eos_ids()
        temperature = float(self.sampling.get("temperature") or 0.0)
        sampling = ({"do_sample": True, "temperature": temperature,
                     "top_p": float(self.sampling.get("top_p") or 1.0)} if temperature > 0
                    else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None})
        with torch.inference_mode():
            output = self._model.generate(**inputs, max_new_tokens=self.max_new_tokens, eos_token_id=eos_ids,
                                          pad_token_id=self._tokenizer.pad_token_id, **sampling)
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
        configured = getattr(self._model.generation_config, "eos_token_id", None)
        ids = configured if isinstance(configured, list) else [configured]
        ids.append(self._tokenizer.eos_token_id)
        return sorted({int(i) for i in ids if i is not None})
