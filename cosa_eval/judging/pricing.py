"""Token prices (USD per 1M tokens) and token estimates for dry runs."""
from __future__ import annotations

from typing import Any

# Public list prices at the time of writing; a judge.yaml ``prices:`` field overrides these.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-2024-08-06": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
}
# Provider batch APIs (OpenAI, Azure OpenAI) charge this share of the online price.
BATCH_DISCOUNT = 0.5
# Typical judge output length per rubric, for the dry-run estimate (a rationale plus the verdict).
EXPECTED_OUTPUT_TOKENS = {"helpfulness": 180, "compliance": 200, "categories": 320}
CHARS_PER_TOKEN = 4.0


def price_of(model: str, configured: tuple[float, float] | None) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens: the judge.yaml's, else the table's, else unknown."""
    return configured if configured is not None else PRICES.get(model)


def batch_prices(prices: tuple[float, float] | None) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens through a provider's Batch API."""
    return None if prices is None else (prices[0] * BATCH_DISCOUNT, prices[1] * BATCH_DISCOUNT)


def cost_usd(prices: tuple[float, float] | None, input_tokens: int, output_tokens: int) -> float:
    """Cost of one call; 0 when prices are unknown."""
    if prices is None:
        return 0.0
    return (input_tokens * prices[0] + output_tokens * prices[1]) / 1_000_000


def fill_cost(response: Any, prices: tuple[float, float] | None) -> None:
    """Price an answer from its tokens, unless its backend already did."""
    if not response.cost_usd and prices is not None:
        response.cost_usd = cost_usd(prices, response.input_tokens, response.output_tokens)


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters per token for English)."""
    return max(1, round(len(text) / CHARS_PER_TOKEN))
