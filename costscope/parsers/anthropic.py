"""Anthropic Messages objects.

Anthropic's `input_tokens` is only the uncached tail after the last cache breakpoint: total input is
`input_tokens + cache_read_input_tokens + cache_creation_input_tokens`. Writes are split by TTL in
`cache_creation.ephemeral_5m_input_tokens` / `ephemeral_1h_input_tokens`; thinking is inside `output_tokens`.
"""

from __future__ import annotations

from typing import Any

from .base import RecordError, token_count
from .usage import Usage, add_counts

FAMILY = "anthropic"


def looks_like(response: dict[str, Any]) -> bool:
    if response.get("type") == "message":
        return True
    usage = response.get("usage")
    return isinstance(usage, dict) and (
        "cache_creation_input_tokens" in usage or "cache_read_input_tokens" in usage or "cache_creation" in usage
    )


def extract_usage(response: dict[str, Any]) -> Usage | None:
    usage = response.get("usage")
    if not isinstance(usage, dict):
        return None
    uncached = token_count(usage.get("input_tokens"), "input_tokens")
    read = token_count(usage.get("cache_read_input_tokens"), "cache_read_input_tokens")
    write = token_count(usage.get("cache_creation_input_tokens"), "cache_creation_input_tokens")
    split = usage.get("cache_creation")
    write_1h = None
    if isinstance(split, dict):
        write_5m = token_count(split.get("ephemeral_5m_input_tokens"), "cache_creation.ephemeral_5m_input_tokens")
        write_1h = token_count(split.get("ephemeral_1h_input_tokens"), "cache_creation.ephemeral_1h_input_tokens")
        split_total = add_counts(write_5m, write_1h)
        if write is None:
            write = split_total
        elif split_total is not None and split_total != write:
            raise RecordError(
                f"cache_creation_input_tokens ({write}) differs from the sum of its 5m/1h split ({split_total})"
            )
    return Usage(
        input_tokens=add_counts(uncached, read, write),
        output_tokens=token_count(usage.get("output_tokens"), "output_tokens"),
        cache_read_tokens=read,
        cache_write_tokens=write,
        cache_write_1h_tokens=write_1h,
    )


def provider_of(model: str | None) -> str | None:
    return FAMILY


def created(response: dict[str, Any]) -> Any:
    return None


def service_tier(response: dict[str, Any]) -> str | None:
    usage = response.get("usage")
    tier = usage.get("service_tier") if isinstance(usage, dict) else None
    return tier if isinstance(tier, str) else None
