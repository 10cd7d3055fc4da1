"""Step 3: generate several responses per (config, prompt), the config as the system message.

Three generators share one call, ``generate(conversations, n) -> n texts per conversation``:
``transformers`` (a local model, batched, left-padded), ``openai`` (any OpenAI-compatible server;
``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` come from the environment only) and ``vllm`` (in-process,
optional, imported only when chosen). One output row per (config, sample index); a re-run
generates only the rows still missing. Greedy decoding (temperature 0) gives one response per
config, so ``--num-responses`` above 1 needs a temperature above 0.
"""
from __future__ import annotations

import argparse
import os
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from ..errors import CosaError
from .files import ResumableWriter, batched, progress, read_jsonl, write_manifest

BACKENDS = ("transformers", "openai", "vllm")
CONFIG_FIELDS = ("id", "config_id", "prompt_id", "prompt", "config", "allowed")


@dataclass(frozen=True)
class Sampling:
    """Decoding settings, validated once."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 1024
    num_responses: int = 1

    def __post_init__(self) -> None:
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise CosaError(f"temperature {self.temperature} must be >= 0 and top_p {self.top_p} in (0, 1]")
        if self.max_new_tokens < 1 or self.num_responses < 1:
            raise CosaError(f"max_new_tokens {self.max_new_tokens} and num_responses {self.num_responses} "
                            "must be at least 1")
        if self.num_responses > 1 and self.temperature == 0:
            raise CosaError(f"--num-responses {self.num_responses} with greedy decoding gives identical "
                            "responses; pass --temperature 1 --top-p 0.95 (the paper's best-of-n preset)")


class Generator(Protocol):
    def generate(self, conversations: list[list[dict[str, str]]], n: int) -> list[list[str]]: ...


def messages_of(row: dict[str, Any]) -> list[dict[str, str]]:
    return [{"role": "system", "content": row["config"]}, {"role": "user", "content": row["prompt"]}]


class TransformersGenerator:
    """A local causal LM through ``transformers.generate`` (CPU or GPU)."""

    def __init__(self, model: str, sampling: Sampling, dtype: str = "auto", seed: int = 0) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
        set_seed(seed)
        self.torch = torch
        self.sampling = sampling
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        if self.tokenizer.chat_template is None:
            raise CosaError(f"{model} has no chat template; the config must go in a system message, so use "
                            "an instruction-tuned model (or set tokenizer.chat_template)")
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=dtype).to(device).eval()

    def generate(self, conversations: list[list[dict[str, str]]], n: int) -> list[list[str]]:
        texts = [self.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
                 for c in conversations]
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        batch = batch.to(self.model.device)
        sampled = self.sampling.temperature > 0
        options: dict[str, Any] = {"do_sample": sampled, "max_new_tokens": self.sampling.max_new_tokens,
                                   "num_return_sequences": n, "pad_token_id": self.tokenizer.pad_token_id}
        if sampled:
            options.update(temperature=self.sampling.temperature, top_p=self.sampling.top_p)
        else:
            options.update(temperature=None, top_p=None, top_k=None)
        with self.torch.no_grad():
            out = self.model.generate(**batch, **options)
        new = out[:, batch["input_ids"].shape[1]:]
        decoded = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return [[decoded[i * n + k].strip() for k in range(n)] for i in range(len(conversations))]


class OpenAIGenerator:
    """Any OpenAI-compatible chat endpoint; base URL and key from the environment only."""

    def __init__(self, model: str, sampling: Sampling, concurrency: int = 8) -> None:
        try:
            import openai
        except ImportError:
            raise CosaError("the openai generator needs the openai package: pip install 'cosa-eval[api]'") from None
        if not os.environ.get("OPENAI_API_KEY"):
            raise CosaError("OPENAI_API_KEY is not set; export it (any value for a local server) and "
                            "OPENAI_BASE_URL for a non-OpenAI endpoint")
        self.client = openai.OpenAI(max_retries=5)
        self.model = model
        self.sampling = sampling
        self.concurrency = concurrency

    def _one(self, messages: list[dict[str, str]], n: int) -> list[str]:
        reply = self.client.chat.completions.create(
            model=self.model, messages=messages, n=n, temperature=self.sampling.temperature,
            top_p=self.sampling.top_p, max_tokens=self.sampling.max_new_tokens)
        texts = [choice.message.content or "" for choice in reply.choices]
        while len(texts) < n:  # servers that ignore n: ask again for the rest
            texts.append(self._one(messages, 1)[0])
        return texts[:n]

    def generate(self, conversations: list[list[dict[str, str]]], n: int) -> list[list[str]]:
        from concurrent.futures import ThreadPoolExecutor
        import openai
        try:
            with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
                return list(pool.map(lambda c: self._one(c, n), conversations))
        except openai.OpenAIError as exc:
            raise CosaError(f"generation request failed ({type(exc).__name__}: {str(exc)[:200]}); rows done "
                            "so far are kept, re-run to resume") from None


class VLLMGenerator:
    """vLLM in-process (GPU); optional, imported only when chosen."""

    def __init__(self, model: str, sampling: Sampling, **engine: Any) -> None:
        try:
            from vllm import LLM, SamplingParams
        except ImportError:
            raise CosaError("the vllm generator needs vLLM on a GPU machine: pip install 'cosa-eval[vllm]'") from None
        self.llm = LLM(model=model, **engine)
        self.params = SamplingParams
        self.sampling = sampling

    def generate(self, conversations: list[list[dict[str, str]]], n: int) -> list[list[str]]:
        params = self.params(n=n, temperature=self.sampling.temperature, top_p=self.sampling.top_p,
                             max_tokens=self.sampling.max_new_tokens)
        outputs = self.llm.chat(conversations, params, use_tqdm=False)
        return [[c.text.strip() for c in out.outputs] for out in outputs]


def make_generator(backend: str, model: str, sampling: Sampling, concurrency: int = 8, seed: int = 0) -> Generator:
    if backend == "transformers":
        return TransformersGenerator(model, sampling, seed=seed)
    if backend == "openai":
        return OpenAIGenerator(model, sampling, concurrency)
    if backend == "vllm":
        return VLLMGenerator(model, sampling)
    raise CosaError(f"unknown generator backend {backend!r}; expected one of {', '.join(BACKENDS)}")


def response_id(config_id: str, index: int) -> str:
    return f"{config_id}#{index}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="configs (output of 'train synthesize'), jsonl")
    parser.add_argument("--output", required=True, help="responses jsonl to write or resume")
    parser.add_argument("--backend", choices=BACKENDS, default="transformers")
    parser.add_argument("--model", required=True, help="model folder or hub id (transformers, vllm) or API model name")
    parser.add_argument("--num-responses", type=int, default=1, help="responses per config (default: 1)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=8, help="configs per generate call")
    parser.add_argument("--concurrency", type=int, default=8, help="parallel requests (openai backend)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (transformers backend)")


def main(args: argparse.Namespace) -> int:
    sampling = Sampling(args.temperature, args.top_p, args.max_new_tokens, args.num_responses)
    if args.batch_size < 1 or args.concurrency < 1:
        raise CosaError(f"--batch-size {args.batch_size} and --concurrency {args.concurrency} must be at least 1")
    rows = read_jsonl(args.input, required=CONFIG_FIELDS)
    counts: Counter = Counter()
    with ResumableWriter(args.output) as writer:
        todo = [r for r in rows if not all(writer.is_done(response_id(r["id"], k))
                                           for k in range(sampling.num_responses))]
        if todo:
            generator = make_generator(args.backend, args.model, sampling, args.concurrency, args.seed)
            for batch in progress(list(batched(todo, args.batch_size)), -(-len(todo) // args.batch_size),
                                  "generate", unit="batch"):
                texts = generator.generate([messages_of(r) for r in batch], sampling.num_responses)
                for row, responses in zip(batch, texts):
                    for index, text in enumerate(responses):
                        clean = {k: v for k, v in row.items() if k not in ("_row", "seed")}
                        writer.write({**clean, "id": response_id(row["id"], index), "sample_index": index,
                                      "response": text,
                                      "generator": {"backend": args.backend, "model": args.model,
                                                    **asdict(sampling)}})
        counts.update(configs=len(rows), written_this_run=writer.written, total=len(writer.done))
    settings = {"backend": args.backend, "model": args.model, **asdict(sampling), "batch_size": args.batch_size,
                "seed": args.seed}
    write_manifest(args.output, "generate", [args.input], settings, dict(counts))
    print(f"generate: {counts['total']} responses for {len(rows)} configs in {args.output} "
          f"({writer.written} new)")
    return 0
