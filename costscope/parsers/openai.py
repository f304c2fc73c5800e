"""OpenAI Chat Completions and Responses API objects.

`prompt_tokens` / `input_tokens` INCLUDE `cached_tokens`; `completion_tokens` / `output_tokens` INCLUDE
`reasoning_tokens`. GPT-5.6+ reports `cache_write_tokens` inside the input details. litellm's
OpenAI-shaped responses for Anthropic models add `cache_creation_input_tokens` (inside `prompt_tokens`).
"""

from __future__ import annotations

from typing import Any

from .base import token_count
from .usage import Usage

FAMILY = "openai"
_OBJECTS = {"chat.completion", "chat.completion.chunk", "response", "text_completion"}


def looks_like(response: dict[str, Any]) -> bool:
    kind = response.get("object")
    if isinstance(kind, str) and kind in _OBJECTS:
        return True
    usage = response.get("usage")
    return isinstance(usage, dict) and (
        "prompt_tokens" in usage or "input_tokens_details" in usage or "output_tokens_details" in usage
    )


def _details(usage: dict[str, Any], key: str) -> dict[str, Any]:
    value = usage.get(key)
    return value if isinstance(value, dict) else {}


def extract_usage(response: dict[str, Any]) -> Usage | None:
    usage = response.get("usage")
    if not isinstance(usage, dict):
        return None
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        input_name, output_name = "prompt_tokens", "completion_tokens"
        in_details = _details(usage, "prompt_tokens_details")
        out_details = _details(usage, "completion_tokens_details")
    else:
        input_name, output_name = "input_tokens", "output_tokens"
        in_details = _details(usage, "input_tokens_details")
        out_details = _details(usage, "output_tokens_details")
    cache_read = token_count(in_details.get("cached_tokens"), f"{input_name}_details.cached_tokens")
    if cache_read is None:
        cache_read = token_count(usage.get("cache_read_input_tokens"), "cache_read_input_tokens")
    cache_write = token_count(in_details.get("cache_write_tokens"), f"{input_name}_details.cache_write_tokens")
    if cache_write is None:
        cache_write = token_count(usage.get("cache_creation_input_tokens"), "cache_creation_input_tokens")
    return Usage(
        input_tokens=token_count(usage.get(input_name), input_name),
        output_tokens=token_count(usage.get(output_name), output_name),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=token_count(out_details.get("reasoning_tokens"), f"{output_name}_details.reasoning_tokens"),
    )


_OPENAI_PREFIXES = ("gpt-", "o1", "o3", "o4", "chatgpt-", "codex-", "text-embedding-", "davinci", "babbage", "ft:gpt")


def provider_of(model: str | None) -> str | None:
    """OpenAI's response shape is spoken by many other servers: only OpenAI model names imply OpenAI."""
    return FAMILY if model is not None and model.lower().startswith(_OPENAI_PREFIXES) else None


def created(response: dict[str, Any]) -> Any:
    return response.get("created") if response.get("created") is not None else response.get("created_at")


def service_tier(response: dict[str, Any]) -> str | None:
    tier = response.get("service_tier")
    return tier if isinstance(tier, str) else None
