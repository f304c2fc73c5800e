"""OTLP/JSON traces: the collector's `file` exporter and the SDKs' OTLP file exporters.

A file is JSON Lines of `ExportTraceServiceRequest` objects (`resourceSpans[].scopeSpans[].spans[]`),
or one such object (often pretty-printed) or an array of them; each request is one record. Values
follow protobuf's JSON mapping, loosely as emitters do: `intValue` is a string or a number, `doubleValue`
may be `"NaN"`, ids are lowercase hex or base64 (normalized to hex), times are decimal strings of
nanoseconds, and field names may be camelCase or the proto's snake_case. Attributes are read by
`genai_attributes` (GenAI or OpenInference), the tree by `spans`. Skips point at the line where the
span's export request starts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from .base import RecordError
from .genai_attributes import MAX_INT64, text_value
from .spans import SkipFn, Span, SpanFileParser, span_id

NAME = "otlp-json"
_SNIFF = re.compile(rb'\A(?:\xef\xbb\xbf)?\s*(?:\[\s*)?\{\s*"(?:resourceSpans|resource_spans)"\s*:')
_MAX_DEPTH = 16


def _field(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(f"{name} is not a list")
    return value


def _int(value: Any, key: str) -> int:
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise RecordError(f"attribute {key}: intValue is not an integer: {value!r:.40}") from None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise RecordError(f"attribute {key}: intValue is not an integer: {value!r:.40}")


def _double(value: Any, key: str) -> float:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise RecordError(f"attribute {key}: doubleValue is not a number: {value!r:.40}") from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise RecordError(f"attribute {key}: doubleValue is not a number: {value!r:.40}")


def _typed(value: Any, key: str, kind: type, what: str) -> Any:
    if not isinstance(value, kind):
        raise RecordError(f"attribute {key}: {what} is not a {kind.__name__}")
    return value


def _array(value: Any, key: str, depth: int) -> list[Any]:
    values = _field(value, "values", "values") if isinstance(value, dict) else None
    return [any_value(item, key, depth + 1) for item in _list(values, f"attribute {key}: arrayValue.values")]


def _kvlist(value: Any, key: str, depth: int) -> dict[str, Any]:
    values = _field(value, "values", "values") if isinstance(value, dict) else None
    return key_values(_list(values, f"attribute {key}: kvlistValue.values"), depth + 1)


_SCALARS: tuple[tuple[str, str, Callable[[Any, str], Any]], ...] = (
    ("stringValue", "string_value", lambda v, k: _typed(v, k, str, "stringValue")),
    ("intValue", "int_value", _int),
    ("doubleValue", "double_value", _double),
    ("boolValue", "bool_value", lambda v, k: _typed(v, k, bool, "boolValue")),
    ("bytesValue", "bytes_value", lambda v, k: _typed(v, k, str, "bytesValue")),
)


def any_value(value: Any, key: str, depth: int = 0) -> Any:
    """An OTLP `AnyValue` as a plain Python value; None for an empty one."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RecordError(f"attribute {key}: value is not an OTLP AnyValue")
    if depth > _MAX_DEPTH:
        raise RecordError(f"attribute {key}: value nested too deeply")
    for camel, snake, convert in _SCALARS:
        if camel in value or snake in value:
            return convert(_field(value, camel, snake), key)
    if "arrayValue" in value or "array_value" in value:
        return _array(_field(value, "arrayValue", "array_value"), key, depth)
    if "kvlistValue" in value or "kvlist_value" in value:
        return _kvlist(_field(value, "kvlistValue", "kvlist_value"), key, depth)
    return None


def key_values(items: list[Any], depth: int = 0) -> dict[str, Any]:
    """OTLP `KeyValue[]` as a flat dict (a repeated key: the last one wins)."""
    out: dict[str, Any] = {}
    for item in items:
        key = item.get("key") if isinstance(item, dict) else None
        if not isinstance(key, str):
            raise RecordError("attribute without a string key")
        out[key] = any_value(item.get("value"), key, depth)
    return out


def nanos_us(value: Any, name: str) -> int | None:
    """Nanoseconds since the epoch (decimal string or number) as µs; None when absent or zero."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        nanos = int(value)
    elif isinstance(value, float) and value.is_integer():
        nanos = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        nanos = value
    else:
        raise RecordError(f"{name} is not a count of nanoseconds: {value!r:.40}")
    if nanos < 0 or nanos > MAX_INT64:
        raise RecordError(f"{name} is out of range: {nanos}")
    return nanos // 1000 if nanos else None


def _span(raw: Any, resource: dict[str, Any], line: int) -> Span:
    if not isinstance(raw, dict):
        raise RecordError("span is not an object")
    attributes = key_values(_list(raw.get("attributes"), "span attributes"))
    return Span(
        line=line,
        trace_id=span_id(_field(raw, "traceId", "trace_id"), "traceId"),
        span_id=span_id(_field(raw, "spanId", "span_id"), "spanId"),
        parent_id=span_id(_field(raw, "parentSpanId", "parent_span_id"), "parentSpanId"),
        name=text_value(raw.get("name"), "name"),
        start=nanos_us(_field(raw, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano"),
        end=nanos_us(_field(raw, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano"),
        attributes=attributes,
        resource=resource,
    )


def _resource(entry: Any) -> tuple[dict[str, Any], list[Any]]:
    if not isinstance(entry, dict):
        raise RecordError("resourceSpans entry is not an object")
    resource = entry.get("resource")
    attributes = resource.get("attributes") if isinstance(resource, dict) else None
    scopes = _field(entry, "scopeSpans", "scope_spans")
    if scopes is None:
        scopes = _field(entry, "instrumentationLibrarySpans", "instrumentation_library_spans")
    return key_values(_list(attributes, "resource attributes")), _list(scopes, "scopeSpans")


class OtlpJsonParser(SpanFileParser):
    name = NAME
    description = "OpenTelemetry OTLP/JSON traces (collector/SDK file exporter), GenAI or OpenInference spans"

    def sniff(self, prefix: bytes) -> bool:
        return _SNIFF.match(prefix) is not None

    def spans(self, record: Any, line: int, skip: SkipFn) -> Iterator[Span]:
        if not isinstance(record, dict):
            raise RecordError(f"expected an ExportTraceServiceRequest object, got {type(record).__name__}")
        entries = _field(record, "resourceSpans", "resource_spans")
        if not isinstance(entries, list):
            raise RecordError("no resourceSpans list (not an OTLP trace export)")
        for entry in entries:
            try:
                resource, scopes = _resource(entry)
            except RecordError as exc:
                skip(line, str(exc))
                continue
            for scope in scopes:
                if not isinstance(scope, dict) or not isinstance(raw_spans := scope.get("spans", []), list):
                    skip(line, "scopeSpans entry has no spans list")
                    continue
                for raw in raw_spans:
                    try:
                        yield _span(raw, resource, line)
                    except RecordError as exc:
                        skip(line, str(exc))
