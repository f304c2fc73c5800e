"""Inclusive token usage of one call, checked for the combinations no provider can report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import RecordError


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one call in inclusive buckets (see `costscope.schema`). None means not reported."""

    input_tokens: int | None
    output_tokens: int | None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    cache_write_1h_tokens: int | None = None
    reasoning_tokens: int | None = None

    def __post_init__(self) -> None:
        total_input = self.input_tokens or 0
        read = self.cache_read_tokens or 0
        write = self.cache_write_tokens or 0
        if read + write > total_input:
            raise RecordError(
                f"cache tokens (read {read} + write {write}) exceed the input tokens that contain them ({total_input})"
            )
        if (self.cache_write_1h_tokens or 0) > write:
            raise RecordError(f"1h cache writes ({self.cache_write_1h_tokens}) exceed all cache writes ({write})")
        if (self.reasoning_tokens or 0) > (self.output_tokens or 0):
            raise RecordError(
                f"reasoning tokens ({self.reasoning_tokens}) exceed the output tokens that contain them "
                f"({self.output_tokens})"
            )

    @property
    def reported(self) -> bool:
        return self.input_tokens is not None or self.output_tokens is not None

    def columns(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cache_write_1h_tokens": self.cache_write_1h_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


def add_counts(*values: int | None) -> int | None:
    """Sum of the reported parts; None when none of them was reported."""
    present = [v for v in values if v is not None]
    return sum(present) if present else None
