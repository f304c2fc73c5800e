"""Gemini `generateContent` responses (`usageMetadata`, camelCase or the SDKs' snake_case).

`promptTokenCount` INCLUDES `cachedContentTokenCount`; `toolUsePromptTokenCount` is input outside it;
`thoughtsTokenCount` is output OUTSIDE `candidatesTokenCount` and is billed at the output rate.
"""

from __future__ import annotations

from typing import Any

from .base import token_count
from .usage import Usage, add_counts

FAMILY = "gemini"


def _metadata(response: dict[str, Any]) -> dict[str, Any] | None:
    meta = response.get("usageMetadata", response.get("usage_metadata"))
    return meta if isinstance(meta, dict) else None


def looks_like(response: dict[str, Any]) -> bool:
    return _metadata(response) is not None or "candidates" in response


def _count(meta: dict[str, Any], camel: str, snake: str) -> int | None:
    return token_count(meta.get(camel, meta.get(snake)), camel)


def extract_usage(response: dict[str, Any]) -> Usage | None:
    meta = _metadata(response)
    if meta is None:
        return None
    prompt = _count(meta, "promptTokenCount", "prompt_token_count")
    tool_prompt = _count(meta, "toolUsePromptTokenCount", "tool_use_prompt_token_count")
    candidates = _count(meta, "candidatesTokenCount", "candidates_token_count")
    thoughts = _count(meta, "thoughtsTokenCount", "thoughts_token_count")
    return Usage(
        input_tokens=add_counts(prompt, tool_prompt),
        output_tokens=add_counts(candidates, thoughts),
        cache_read_tokens=_count(meta, "cachedContentTokenCount", "cached_content_token_count"),
        reasoning_tokens=thoughts,
    )


def provider_of(model: str | None) -> str | None:
    return "google"


def created(response: dict[str, Any]) -> Any:
    return response.get("createTime", response.get("create_time"))


def service_tier(response: dict[str, Any]) -> str | None:
    return None
