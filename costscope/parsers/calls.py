"""Request/response JSON Lines: a bare provider response per line, or one wrapped with its request.

Wrapped form: `{"timestamp", "trace_id"|"session_id"|"conversation_id", "agent", "tenant"|"user",
"operation", "provider", "request": {...}, "response": {...}}` (aliases below). The usage semantics come
from the response's shape (OpenAI, Anthropic or Gemini), detected per record so that a gateway log mixing
providers is read correctly; `--format-in openai|anthropic|gemini` pins one family for every record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import orjson
import pyarrow as pa

from ..io import InputFile
from ..schema import Kind, UsageSource
from . import anthropic, gemini, openai
from .base import ParseContext, RecordError, RowBuffer, first_key, first_object, text_or_none, timestamp_us
from .segments import Recount, Segment, all_segments

FAMILIES: dict[str, ModuleType] = {"anthropic": anthropic, "gemini": gemini, "openai": openai}
DETECTION_ORDER = (gemini, openai, anthropic)
"""OpenAI's markers (`object`, `prompt_tokens`, `*_tokens_details`) come first: litellm's OpenAI-shaped
responses for Claude also carry Anthropic's `cache_creation_input_tokens`."""

TIMESTAMP_KEYS = ("timestamp", "start", "start_time", "started_at", "ts", "time", "created_at", "request_time")
END_KEYS = ("end_timestamp", "end", "end_time", "ended_at", "completed_at", "response_time")
DURATION_MS_KEYS = ("latency_ms", "duration_ms", "elapsed_ms")
TRACE_KEYS = ("trace_id", "session_id", "conversation_id", "thread_id", "run_id", "traceId", "sessionId")
SPAN_KEYS = ("span_id", "call_id", "request_id", "spanId")
PARENT_KEYS = ("parent_id", "parent_span_id", "parentSpanId")
AGENT_KEYS = ("agent", "agent_name", "agent_id", "assistant")
TENANT_KEYS = ("tenant", "tenant_id", "user", "user_id", "customer", "customer_id", "org", "org_id", "team")
OPERATION_KEYS = ("operation", "task", "operation_name", "step_name", "name")
REQUEST_KEYS = ("request", "req", "request_body")
RESPONSE_KEYS = ("response", "resp", "response_body")
TAG_KEYS = ("tags", "metadata", "labels")

WRAPPER_FIELDS: dict[str, tuple[str, ...]] = {
    "start": TIMESTAMP_KEYS,
    "end": END_KEYS,
    "duration_ms": DURATION_MS_KEYS,
    "trace_id": TRACE_KEYS,
    "span_id": SPAN_KEYS,
    "parent_id": PARENT_KEYS,
    "agent": AGENT_KEYS,
    "tenant": TENANT_KEYS,
    "operation": OPERATION_KEYS,
    "tags": TAG_KEYS,
    "provider": ("provider",),
    "service_tier": ("service_tier",),
    "model": ("model",),
    "batch": ("batch",),
}
_ALIASES = {key: (name, rank) for name, keys in WRAPPER_FIELDS.items() for rank, key in enumerate(keys)}


def wrapper_fields(meta: dict[str, Any]) -> dict[str, Any]:
    """The wrapper's metadata by field name, each from its highest-priority alias present (one pass)."""
    found: dict[str, tuple[int, Any]] = {}
    for key, value in meta.items():
        hit = _ALIASES.get(key)
        if hit is None or value is None:
            continue
        name, rank = hit
        previous = found.get(name)
        if previous is None or rank < previous[0]:
            found[name] = (rank, value)
    return {name: value for name, (_, value) in found.items()}


PROVIDER_ALIASES = {"gemini": "google", "vertex": "google", "vertex_ai": "google", "gcp.gemini": "google"}


def _request_hash(request: Any) -> str | None:
    if not isinstance(request, dict) or not request:
        return None
    return hashlib.blake2b(orjson.dumps(request, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


def _tags(value: Any) -> list[tuple[str, str]] | None:
    if not isinstance(value, dict) or not value:
        return None
    return sorted(
        (str(k), v if isinstance(v, str) else orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode())
        for k, v in value.items()
    )


def split_record(obj: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any]]:
    """(wrapper metadata, request or None, response) of one record."""
    response = first_key(obj, RESPONSE_KEYS)
    if isinstance(response, dict):
        request = first_key(obj, REQUEST_KEYS)
        return obj, request if isinstance(request, dict) else None, response
    return {}, None, obj


def detect_family(response: dict[str, Any], model: str | None) -> ModuleType | None:
    for family in DETECTION_ORDER:
        if family.looks_like(response):
            return family
    if isinstance(response.get("usage"), dict):
        # Bare {input_tokens, output_tokens} without cache fields reads the same in every family.
        return anthropic if (model or "").startswith("claude") else openai
    return None


def _model(response: dict[str, Any], request: dict[str, Any] | None, meta: dict[str, Any]) -> str | None:
    model = first_key(response, ("model", "modelVersion", "model_version"))
    if model is None and request is not None:
        model = request.get("model")
    if model is None:
        model = meta.get("model")
    return text_or_none(model)


def record_row(obj: Any, forced: ModuleType | None) -> dict[str, Any]:
    """One step-table row from one record; RecordError says why a record is unusable."""
    return record_with_content(obj, forced)[0]


def record_with_content(obj: Any, forced: ModuleType | None) -> tuple[dict[str, Any], list[Segment]]:
    """One step-table row from one record and its content segments (see `segments`), not counted yet."""
    if not isinstance(obj, dict):
        raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
    wrapper, request, response = split_record(obj)
    if wrapper and response.get("error") is not None and "usage" not in response:
        raise RecordError("error response without usage (not billed)")
    meta = wrapper_fields(wrapper)
    model = _model(response, request, meta)
    family = forced or detect_family(response, model)
    if family is None:
        raise RecordError("no usage object found (not an OpenAI, Anthropic or Gemini response)")
    usage = family.extract_usage(response)
    provider = text_or_none(meta.get("provider")) or family.provider_of(model)
    if provider is not None:
        provider = PROVIDER_ALIASES.get(provider.lower(), provider.lower())
    start = timestamp_us(meta.get("start"))
    if start is None:
        start = timestamp_us(family.created(response))
    end = timestamp_us(meta.get("end"))
    duration = meta.get("duration_ms")
    if end is None and start is not None and isinstance(duration, int | float) and not isinstance(duration, bool):
        end = start + round(duration * 1000)
    record_id = text_or_none(first_key(response, ("id", "responseId", "response_id")))
    service_tier = family.service_tier(response) or text_or_none(meta.get("service_tier"))
    if meta.get("batch") is True:
        service_tier = "batch"
    row: dict[str, Any] = {
        "record_id": record_id,
        "trace_id": text_or_none(meta.get("trace_id")),
        "span_id": text_or_none(meta.get("span_id")),
        "parent_id": text_or_none(meta.get("parent_id")),
        "kind": Kind.LLM.value,
        "agent": text_or_none(meta.get("agent")),
        "tenant": text_or_none(meta.get("tenant")),
        "operation": text_or_none(meta.get("operation")),
        "tags": _tags(meta.get("tags")),
        "start": start,
        "end": end,
        "provider": provider,
        "model": model,
        "service_tier": service_tier,
        "request_hash": _request_hash(request),
        "reported_cost_usd": None,
    }
    if usage is not None and usage.reported:
        row.update(usage.columns())
        row["usage_source"] = UsageSource.REPORTED.value
    return row, all_segments(family.FAMILY, request, response, model)


class CallLogParser:
    """Parser of request/response JSON Lines whose first record has the shape of `family`."""

    splittable = True
    """Each line stands alone, so a big file may be parsed in parts in parallel."""

    def __init__(self, family: ModuleType, description: str) -> None:
        self.family = family
        self.name = family.FAMILY
        self.description = description

    def sniff(self, prefix: bytes) -> bool:
        obj = first_object(prefix)
        if obj is None:
            return False
        _, request, response = split_record(obj)
        return detect_family(response, _model(response, request, obj)) is self.family

    def parse(self, source: InputFile, ctx: ParseContext, *, forced: bool) -> Iterator[pa.RecordBatch]:
        buffer = RowBuffer(ctx.batch_rows)
        recount = Recount()
        pinned = self.family if forced else None
        for lineno, (row, segments) in ctx.records_of(source, lambda obj, _: record_with_content(obj, pinned)):
            row["source"] = source.name
            row["line"] = lineno
            row["format"] = self.name
            for ready in recount.add(row, segments):
                yield from self._emit(ready, buffer, ctx)
        for ready in recount.flush():
            yield from self._emit(ready, buffer, ctx)
        if (batch := buffer.flush()) is not None:
            yield batch

    @staticmethod
    def _emit(row: dict[str, Any], buffer: RowBuffer, ctx: ParseContext) -> Iterator[pa.RecordBatch]:
        if row.get("usage_source") is None:
            ctx.notes["calls without usage"] += 1
        elif row["usage_source"] == UsageSource.RECOUNTED.value:
            ctx.notes["calls with recounted usage"] += 1
        if (batch := buffer.add(row)) is not None:
            yield batch
