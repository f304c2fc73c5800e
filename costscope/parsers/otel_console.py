"""OpenTelemetry SDK console dumps: what Python's `ConsoleSpanExporter` prints (`span.to_json()`).

Pretty-printed span objects one after another (not one per line, despite a `.jsonl` name):
`{name, context{trace_id, span_id}, kind: "SpanKind.X", parent_id, start_time, end_time, status,
attributes{flat, native values}, events, links, resource{attributes}}`, ids `0x`-prefixed hex, times
ISO-8601. Each span object is one record, its line the one where it starts. A span printed twice
(a start copy with `end_time: null`, then the ended copy) is kept once, the ended copy; a span that
never ended is kept with no end time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .base import RecordError
from .genai_attributes import text_value
from .spans import SkipFn, Span, SpanFileParser, flat_attributes, span_id, time_us

NAME = "otel-console"
_OPENS = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*[\[{]")
_CONTEXT = re.compile(rb'(?<!\\)"context"\s*:\s*\{')
_KIND = re.compile(rb'(?<!\\)"kind"\s*:\s*"SpanKind\.')
SNIFF_WINDOW = 16 * 1024


def looks_like_span_json(prefix: bytes, marker: re.Pattern[bytes]) -> bool:
    """A prefix opening a JSON object or array whose first span has a `context` object and `marker`."""
    head = prefix[:SNIFF_WINDOW]
    return _OPENS.match(head) is not None and bool(marker.search(head)) and bool(_CONTEXT.search(head))


def json_span(record: Any, line: int) -> Span:
    """A span printed as JSON with a `context` object (console and Phoenix exports share this shape)."""
    if not isinstance(record, dict):
        raise RecordError(f"expected a span object, got {type(record).__name__}")
    context = record.get("context")
    if not isinstance(context, dict):
        raise RecordError("span has no context object")
    return Span(
        line=line,
        trace_id=span_id(context.get("trace_id"), "context.trace_id"),
        span_id=span_id(context.get("span_id"), "context.span_id"),
        parent_id=span_id(record.get("parent_id"), "parent_id"),
        name=text_value(record.get("name"), "name"),
        start=time_us(record.get("start_time"), "start_time"),
        end=time_us(record.get("end_time"), "end_time"),
        attributes=flat_attributes(record.get("attributes")),
    )


class OtelConsoleParser(SpanFileParser):
    name = NAME
    description = "OpenTelemetry SDK ConsoleSpanExporter dumps (pretty-printed span.to_json() objects)"

    def sniff(self, prefix: bytes) -> bool:
        return looks_like_span_json(prefix, _KIND)

    def spans(self, record: Any, line: int, skip: SkipFn) -> Iterator[Span]:
        span = json_span(record, line)
        resource = record.get("resource")
        if isinstance(resource, dict):
            span.resource = flat_attributes(resource.get("attributes"), "resource.attributes")
        yield span
