"""Log-probabilities of responses under a model: the before/after figures of ``sft`` and ``dpo``.

A response's tokens are those the chat template adds after the generation prompt, exactly what
the trainers score. DPO's implicit reward margin of a pair under policy p and reference r is
beta * [(log p(chosen) - log r(chosen)) - (log p(rejected) - log r(rejected))], so with
``gap = log(chosen) - log(rejected)`` it is beta * (gap_policy - gap_reference).
"""
from __future__ import annotations

from typing import Any

Messages = list[dict[str, str]]


def _encode(tokenizer: Any, prompt: Messages, completion: Messages) -> tuple[list[int], int]:
    """Token ids of prompt + completion, and where the completion starts."""
    head = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(prompt + completion, tokenize=False)
    if not full.startswith(head):
        full = head + completion[0]["content"] + (tokenizer.eos_token or "")
    head_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    return full_ids, len(head_ids)


def completion_logps(model: Any, tokenizer: Any, prompts: list[Messages], completions: list[Messages],
                     batch_size: int = 8, max_length: int | None = None) -> list[tuple[float, int]]:
    """(summed log-prob, token count) of each completion given its prompt."""
    import torch
    results: list[tuple[float, int]] = []
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(prompts), batch_size):
        encoded = [_encode(tokenizer, p, c) for p, c in zip(prompts[start:start + batch_size],
                                                            completions[start:start + batch_size])]
        if max_length:
            encoded = [(ids[:max_length], cut) for ids, cut in encoded]
        width = max(len(ids) for ids, _ in encoded)
        ids = torch.full((len(encoded), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, (seq, _) in enumerate(encoded):
            ids[row, :len(seq)] = torch.tensor(seq)
            mask[row, :len(seq)] = 1
        with torch.no_grad():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        token_logp = logp.gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1).cpu()
        for row, (seq, cut) in enumerate(encoded):
            picked = token_logp[row, max(cut, 1) - 1:len(seq) - 1]
            results.append((float(picked.sum()), int(picked.numel())))
    model.train(was_training)
    return results


def pair_gaps(model: Any, tokenizer: Any, pairs: list[dict[str, Any]], max_length: int | None = None) -> list[float]:
    """log p(chosen) - log p(rejected) for each pair row."""
    prompts = [p["prompt"] for p in pairs]
    chosen = completion_logps(model, tokenizer, prompts, [p["chosen"] for p in pairs], max_length=max_length)
    rejected = completion_logps(model, tokenizer, prompts, [p["rejected"] for p in pairs], max_length=max_length)
    return [c[0] - r[0] for c, r in zip(chosen, rejected)]


def mean_nll(model: Any, tokenizer: Any, rows: list[dict[str, Any]], max_length: int | None = None) -> float:
    """Mean per-token negative log-likelihood of the ``completion`` of prompt-completion rows."""
    scored = completion_logps(model, tokenizer, [r["prompt"] for r in rows], [r["completion"] for r in rows],
                              max_length=max_length)
    tokens = sum(n for _, n in scored)
    return -sum(lp for lp, _ in scored) / max(tokens, 1)


def margin_summary(gaps_before: list[float], gaps_after: list[float], beta: float) -> dict[str, float]:
    """Mean DPO reward margin, reward accuracy and log-prob gaps, reference = the model before."""
    import math
    margins = [beta * (a - b) for a, b in zip(gaps_after, gaps_before)]
    n = max(len(margins), 1)
    return {
        "measured_pairs": len(margins),
        "reward_margin_before": 0.0,
        "reward_margin_after": sum(margins) / n,
        "reward_accuracy_after": sum(m > 0 for m in margins) / n,
        "dpo_loss_before": math.log(2.0),
        "dpo_loss_after": sum(math.log1p(math.exp(-m)) for m in margins) / n,
        "logp_gap_before": sum(gaps_before) / n,
        "logp_gap_after": sum(gaps_after) / n,
    }
