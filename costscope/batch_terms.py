"""What each provider's batch API charges, as multipliers of its standard rates.

genai-prices 0.2.3 lists batch rates for many models only from 2026-10-14. A call sent through a batch API
(`service_tier` "batch") at a date the price data has no batch rates for is billed at its standard rates times
these terms (exact Decimal), so that `analyze` and `simulate` price recorded and replayed batch calls alike.
Checked against the providers' docs (PROVIDERS.md §4): platform.claude.com/docs/en/build-with-claude/batch-processing,
platform.openai.com/docs/guides/batch, developers.googleblog.com/scale-your-ai-workloads-batch-mode-gemini-api
(launched 2025-07-07).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .pricing import Rate

BATCH_TIER = "batch"
"""The `service_tier` of a call sent through a batch API."""


@dataclass(frozen=True)
class BatchTerms:
    """One provider's batch discount per rate component (1 = the standard rate is kept)."""

    provider: str
    input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    output: Decimal
    source: str

    def factor(self, component: str) -> Decimal:
        """The multiplier of a rate component; 1h writes follow the writes, per-request fees are kept."""
        if component == "requests":
            return Decimal(1)
        value: Decimal = getattr(self, "cache_write" if component == "cache_write_1h" else component)
        return value

    def describe(self) -> str:
        """`anthropic 50%`, or `openai 50% (cache reads 100%)` where a component differs from the input's."""
        text = f"{self.provider} {_percent(self.input)}"
        others = [
            f"{label} {_percent(factor)}"
            for label, factor in (
                ("cache reads", self.cache_read),
                ("cache writes", self.cache_write),
                ("output", self.output),
            )
            if factor != self.input
        ]
        return text + (f" ({', '.join(others)})" if others else "")

    def scale(self, rates: dict[str, Rate | None]) -> dict[str, Rate | None]:
        """The rates of a batch call; a component without its own rate keeps falling back (to the scaled input
        or write rate), as the provider bills it."""
        return {c: (r.scaled(self.factor(c)) if r is not None else None) for c, r in rates.items()}


def _percent(factor: Decimal) -> str:
    return f"{(factor * 100).normalize():f}%"


HALF, FULL = Decimal("0.5"), Decimal(1)
BATCH_TERMS: dict[str, BatchTerms] = {
    terms.provider: terms
    for terms in (
        BatchTerms(
            "anthropic",
            HALF,
            HALF,
            HALF,
            HALF,
            "Anthropic Message Batches: all usage at 50%, cache reads and writes included",
        ),
        BatchTerms(
            "openai",
            HALF,
            FULL,
            HALF,
            HALF,
            "OpenAI Batch API: 50% off input and output (cached input kept at its own rate)",
        ),
        BatchTerms(
            "google",
            HALF,
            FULL,
            HALF,
            HALF,
            "Gemini Batch Mode: 50% off input and output, the cache rate is not halved",
        ),
    )
}
"""Providers with a batch API costscope knows the terms of. OpenAI's per-model batch cached-input rates vary, so
cache reads keep their standard rate there (a conservative saving). Gemini bills cache writes as input."""


def batch_terms(provider: str | None, service_tier: str | None) -> BatchTerms | None:
    """The terms a call of this provider and tier is billed at when the price data has no batch rates for it."""
    if service_tier != BATCH_TIER or provider is None:
        return None
    return BATCH_TERMS.get(provider)
