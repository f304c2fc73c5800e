"""Phoenix (Arize) span exports: a JSON array of spans carrying OpenInference attributes.

`[{name, context{trace_id, span_id}, span_kind, parent_id, start_time, end_time, status_code,
attributes{flat}}]` (JSON Lines of the same objects are read too). `span_kind` (LLM, CHAIN, TOOL,
AGENT, EMBEDDING, …) stands in for `openinference.span.kind` when the attributes lack it; nested
attribute objects are flattened to dotted keys. Each span object is one record, its line the one where
it starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .genai_attributes import text_value
from .otel_console import json_span, looks_like_span_json
from .spans import SkipFn, Span, SpanFileParser

NAME = "phoenix"
_SPAN_KIND = re.compile(rb'(?<!\\)"span_kind"\s*:')


class PhoenixParser(SpanFileParser):
    name = NAME
    description = "Phoenix (Arize) span exports: JSON arrays of spans with OpenInference attributes"

    def sniff(self, prefix: bytes) -> bool:
        return looks_like_span_json(prefix, _SPAN_KIND)

    def spans(self, record: Any, line: int, skip: SkipFn) -> Iterator[Span]:
        span = json_span(record, line)
        span.kind = text_value(record.get("span_kind"), "span_kind")
        yield span
