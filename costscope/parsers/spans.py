"""Span trees, shared by the OpenTelemetry formats (OTLP/JSON, console dump, Phoenix export).

A file is read whole before any row is made, because what a span is depends on its relatives:
- a span with usage and no usage-bearing descendant is one LLM call (`kind = llm`);
- a span with usage above other usage-bearing spans (an `invoke_agent`, AGENT or CHAIN span whose usage
  repeats its children's) is a roll-up: an `agent` row that keeps its usage but is never summed;
- a model-call span (chat, text_completion, generate_content, embeddings; OpenInference LLM, EMBEDDING)
  without usage and without a model-call descendant is a call of unknown usage (never zero);
- tool spans (`execute_tool`, TOOL) are `tool` rows named in `tool`, agent spans (`invoke_agent`, AGENT)
  are `agent` rows; other spans (chains, retrievers, HTTP) structure the tree but give no row.

Context is inherited down the tree. `agent` is the span's own `gen_ai.agent.name`/`agent.name`, else the
nearest agent ancestor's (an agent span without a name: its `gen_ai.agent.id`, else the name in its span
name `invoke_agent {name}`). `trace_id` is the conversation (`gen_ai.conversation.id`, else `session.id`)
of the span or its nearest ancestor, else of any span of the same OTel trace, else the OTel trace id:
a conversation spans many OTel traces (one per turn) and is what a cost per run means. `tenant` is the
first of `tenant.id`, `user.id`, `enduser.id` found on the span, its ancestors, then the resource.
A span exported twice (the console exporter's start and end copies) is kept once, preferring the
copy that has ended; ids are lowercase hex.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from ..io import InputFile, ReadError, iter_lines
from ..schema import Kind, UsageSource
from .base import ParseContext, RecordError, RowBuffer, Skips, timestamp_us
from .genai_attributes import TENANT, Role, SpanAttributes, read_attributes, text_value
from .otel_json import json_records, read_text

Key = tuple[str, str]
SkipFn = Callable[[int, str], None]
_HEX = re.compile(r"[0-9a-fA-F]+")
_TIME_LIMIT_US = 1 << 62


@dataclass(slots=True)
class Span:
    """One span as read, before its relatives are known. Times are µs since the epoch (UTC)."""

    line: int
    trace_id: str | None
    span_id: str | None
    parent_id: str | None
    name: str | None
    start: int | None
    end: int | None
    attributes: dict[str, Any]
    resource: dict[str, Any] = field(default_factory=dict)
    kind: str | None = None
    """An OpenInference span kind given outside the attributes (Phoenix's `span_kind`)."""


def span_id(value: Any, name: str) -> str | None:
    """A trace or span id as lowercase hex, from hex (`0x` allowed) or base64 (protobuf's JSON mapping).

    An all-zero id is no id (OTLP's root parent); any other text is kept as given.
    """
    text = text_value(value, name)
    if text is None:
        return None
    prefixed = text[:2] in ("0x", "0X")
    bare = text[2:] if prefixed else text
    if _HEX.fullmatch(bare) and (prefixed or len(bare) in (16, 32)):
        hexid = bare.lower()
    elif len(text) in (12, 24):
        try:
            raw = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            return text
        if len(raw) not in (8, 16):
            return text
        hexid = raw.hex()
    else:
        return text
    return None if hexid.strip("0") == "" else hexid


def time_us(value: Any, name: str) -> int | None:
    """An ISO-8601 time or epoch number as µs (see `timestamp_us`), refusing values no clock gives."""
    if isinstance(value, float) and not math.isfinite(value):
        raise RecordError(f"{name} is not a time: {value!r}")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1 << 63:
        raise RecordError(f"{name} is out of range: {value}")
    try:
        micros = timestamp_us(value)
    except RecordError as exc:
        raise RecordError(f"{name}: {exc}") from None
    if micros is not None and abs(micros) >= _TIME_LIMIT_US:
        raise RecordError(f"{name} is out of range: {value!r:.40}")
    return micros


def flat_attributes(value: Any, name: str = "attributes") -> dict[str, Any]:
    """A flat attribute dict; nested objects (some exports nest `llm.token_count`) become dotted keys."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError(f"{name} is not an object")
    if not any(isinstance(v, dict) for v in value.values()):
        return value
    flat: dict[str, Any] = {}
    stack: list[tuple[str, dict[str, Any], int]] = [("", value, 0)]
    while stack:
        prefix, obj, depth = stack.pop()
        for key, item in obj.items():
            if isinstance(item, dict) and depth < 8:
                stack.append((f"{prefix}{key}.", item, depth + 1))
            else:
                flat[f"{prefix}{key}"] = item
    return flat


@dataclass(frozen=True, slots=True)
class _Context:
    """What a span inherits: nearest agent, conversation and tenant values."""

    agent: str | None = None
    conversation: str | None = None
    tenant: tuple[str | None, ...] = (None,) * len(TENANT)

    def under(self, own: _Context) -> _Context:
        return _Context(
            own.agent or self.agent,
            own.conversation or self.conversation,
            tuple(o or p for o, p in zip(own.tenant, self.tenant, strict=True)),
        )


def _named(span_name: str | None, operation: str) -> str | None:
    """The name in a semconv span name (`invoke_agent planner` -> `planner`); a bare operation names nothing."""
    if span_name is None or span_name == operation:
        return None
    return span_name.removeprefix(operation + " ") or None


def _resource_text(resource: dict[str, Any], key: str) -> str | None:
    value = resource.get(key)
    return value if isinstance(value, str) and value else None


class SpanTree:
    """The spans of one file, kept once per (trace id, span id); `rows()` classifies them."""

    def __init__(self, source: str, fmt: str, ctx: ParseContext) -> None:
        self.source = source
        self.format = fmt
        self.ctx = ctx
        self.spans: dict[Key, Span] = {}
        self.facts: dict[Key, SpanAttributes] = {}
        self._anonymous = 0

    def add(self, span: Span) -> None:
        """Keep a span (its attributes read now, so a bad one is skipped in file order)."""
        try:
            facts = read_attributes(span.attributes, span.kind)
        except RecordError as exc:
            self.ctx.skips.skip(self.source, span.line, str(exc))
            return
        if span.span_id is None:
            self._anonymous += 1
            key = ("\0", str(self._anonymous))
        else:
            key = (span.trace_id or "", span.span_id)
            previous = self.spans.get(key)
            if previous is not None:
                self.ctx.notes["spans exported twice (kept once)"] += 1
                if previous.end is not None and span.end is None:
                    return
        self.spans[key] = span
        self.facts[key] = facts

    def rows(self) -> list[dict[str, Any]]:
        facts = self.facts
        parent = self._parents(facts)
        usage_below = _ancestors(parent, (k for k, f in facts.items() if f.has_usage))
        call_below = _ancestors(parent, (k for k, f in facts.items() if f.role is Role.LLM))
        contexts = _contexts(parent, {k: self._own_context(self.spans[k], f) for k, f in facts.items()})
        by_trace: dict[str, str] = {}
        for key, context in contexts.items():
            trace_id = self.spans[key].trace_id
            if context.conversation is not None and trace_id is not None:
                by_trace.setdefault(trace_id, context.conversation)
        rows = []
        for key, f in facts.items():
            row = self._row(self.spans[key], f, contexts[key], key in usage_below, key in call_below, by_trace)
            if row is not None:
                rows.append(row)
        return rows

    def _parents(self, facts: dict[Key, SpanAttributes]) -> dict[Key, Key]:
        """Child -> parent among the readable spans, with any cycle cut (a damaged file must not loop)."""
        parent: dict[Key, Key] = {}
        for key in facts:
            span = self.spans[key]
            if span.parent_id is not None and (up := (span.trace_id or "", span.parent_id)) != key and up in facts:
                parent[key] = up
        done: dict[Key, bool] = {}
        for key in facts:
            path: list[Key] = []
            node: Key | None = key
            while node is not None and node not in done:
                done[node] = False
                path.append(node)
                node = parent.get(node)
            if node is not None and done[node] is False:
                del parent[path[-1]]
            for visited in path:
                done[visited] = True
        return parent

    @staticmethod
    def _own_context(span: Span, f: SpanAttributes) -> _Context:
        agent = f.agent
        if agent is None and f.role is Role.AGENT:
            agent = f.agent_id or _named(span.name, "invoke_agent")
        return _Context(agent, f.conversation_id, f.tenant)

    def _row(
        self,
        span: Span,
        f: SpanAttributes,
        context: _Context,
        has_usage_below: bool,
        has_call_below: bool,
        by_trace: dict[str, str],
    ) -> dict[str, Any] | None:
        classified = classify(f, has_usage_below, has_call_below)
        if classified is None:
            return None
        kind, keep_usage = classified
        notes = self.ctx.notes
        if kind is Kind.LLM and not keep_usage:
            notes["calls without usage"] += 1
        if kind is not Kind.LLM and f.has_usage:
            notes["roll-up spans not summed"] += 1
        if keep_usage:
            for repair in f.repairs:
                notes[repair] += 1
        tenant = next(
            (v for i, key in enumerate(TENANT) if (v := context.tenant[i] or _resource_text(span.resource, key))),
            None,
        )
        tool = (f.tool or _named(span.name, "execute_tool")) if f.role is Role.TOOL else f.tool
        tags = [("span.name", span.name)] if span.name else []
        if service := _resource_text(span.resource, "service.name"):
            tags.append(("service.name", service))
        trace_id = context.conversation or (by_trace.get(span.trace_id) if span.trace_id else None) or span.trace_id
        row: dict[str, Any] = {
            "source": self.source,
            "line": span.line,
            "format": self.format,
            "record_id": f.response_id if kind is Kind.LLM else None,
            "trace_id": trace_id,
            "span_id": span.span_id,
            "parent_id": span.parent_id,
            "kind": kind.value,
            "agent": context.agent,
            "tenant": tenant,
            "operation": f.operation,
            "tool": tool,
            "tags": sorted(tags) or None,
            "start": span.start,
            "end": span.end,
            "provider": f.provider,
            "model": f.model,
            "service_tier": f.service_tier,
            "reported_cost_usd": f.reported_cost_usd,
        }
        if keep_usage and f.usage is not None:
            row.update(f.usage.columns())
            row["usage_source"] = UsageSource.REPORTED.value
        return row


def classify(f: SpanAttributes, has_usage_below: bool, has_call_below: bool) -> tuple[Kind, bool] | None:
    """The row kind of a span and whether its usage goes on the row; None for a span that gives no row."""
    if f.has_usage and not has_usage_below:
        return Kind.LLM, True
    if f.role is Role.TOOL:
        return Kind.TOOL, False
    if f.has_usage or f.role is Role.AGENT:
        return Kind.AGENT, f.has_usage
    if f.role is Role.LLM and not has_call_below:
        return Kind.LLM, False
    return None


def _ancestors(parent: dict[Key, Key], keys: Iterable[Key]) -> set[Key]:
    """Every proper ancestor of `keys` (each span walked up once)."""
    marked: set[Key] = set()
    for key in keys:
        node = parent.get(key)
        while node is not None and node not in marked:
            marked.add(node)
            node = parent.get(node)
    return marked


def _contexts(parent: dict[Key, Key], own: dict[Key, _Context]) -> dict[Key, _Context]:
    """Each span's inherited context, computed once per span from the root down."""
    memo: dict[Key, _Context] = {}
    for key in own:
        chain: list[Key] = []
        node: Key | None = key
        while node is not None and node not in memo:
            chain.append(node)
            node = parent.get(node)
        context = memo[node] if node is not None else _Context()
        for link in reversed(chain):
            context = context.under(own[link])
            memo[link] = context
    return memo


class SpanFileParser(ABC):
    """A span format: subclasses sniff and turn one JSON record into spans. JSON Lines are read line by line
    (`_streamed`), anything else whole.

    Each top-level JSON value (or element of a top-level array) is one record, counted once; a record
    or span that cannot be used is a counted skip at the line where its record starts.
    """

    name: str
    description: str

    @abstractmethod
    def sniff(self, prefix: bytes) -> bool: ...

    @abstractmethod
    def spans(self, record: Any, line: int, skip: SkipFn) -> Iterator[Span]:
        """The spans of one record; `skip(line, reason)` reports a bad span, RecordError a bad record."""

    def parse(self, source: InputFile, ctx: ParseContext, *, forced: bool) -> Iterator[pa.RecordBatch]:
        tree = self._streamed(source, ctx)
        if tree is None:
            tree = self._whole(source, ctx)
        yield from batches_of(tree, ctx)

    def _whole(self, source: InputFile, ctx: ParseContext) -> SpanTree:
        """Any JSON layout (pretty-printed documents, arrays, damaged parts): the text read whole."""
        tree = SpanTree(source.name, self.name, ctx)

        def skip(line: int, reason: str) -> None:
            ctx.skips.skip(source.name, line, reason)

        for record in json_records(read_text(source, ctx)):
            ctx.records[source.name] += 1
            if record.error is not None:
                skip(record.line, record.error)
                continue
            try:
                for span in self.spans(record.value, record.line, skip):
                    tree.add(span)
            except RecordError as exc:
                skip(record.line, str(exc))
        return tree

    def _streamed(self, source: InputFile, ctx: ParseContext) -> SpanTree | None:
        """JSON Lines, one JSON value per line (what exporters write), read line by line: memory holds the spans,
        never the file's text. None as soon as a line is not a whole JSON value (or the file cannot be read to
        its end): the whole-text reader then reads the file from the start, so nothing counted here stands."""
        local = ParseContext(skips=_SkipLog(), batch_rows=ctx.batch_rows)
        tree = SpanTree(source.name, self.name, local)
        log = local.skips
        assert isinstance(log, _SkipLog)
        failed: list[ReadError] = []
        records = 0
        for line, raw in iter_lines(source, failed.append):
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return None
            for item in value if isinstance(value, list) else [value]:
                records += 1
                try:
                    for span in self.spans(item, line, log.at):
                        tree.add(span)
                except RecordError as exc:
                    log.at(line, str(exc))
        if failed:
            return None
        ctx.records[source.name] += records
        for where, line, reason in log.log:
            ctx.skips.skip(where or source.name, line, reason)
        ctx.notes.update(local.notes)
        tree.ctx = ctx
        return tree


class _SkipLog(Skips):
    """Skips kept in order, to be told to the real ledger only if the streamed read stands."""

    def __init__(self) -> None:
        super().__init__(strict=False)
        self.log: list[tuple[str | None, int, str]] = []

    def skip(self, source: str, line: int, reason: str) -> None:
        self.log.append((source, line, reason))

    def at(self, line: int, reason: str) -> None:
        self.log.append((None, line, reason))


def batches_of(tree: SpanTree, ctx: ParseContext) -> Iterator[pa.RecordBatch]:
    """The rows of a file's span tree as STEP_SCHEMA batches."""
    buffer = RowBuffer(ctx.batch_rows)
    for row in tree.rows():
        if (batch := buffer.add(row)) is not None:
            yield batch
    if (batch := buffer.flush()) is not None:
        yield batch
