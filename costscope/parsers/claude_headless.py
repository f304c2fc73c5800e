"""Claude Code headless output: `claude -p --output-format stream-json --verbose` (one event per line:
`system` init, `assistant`, `user`, `result`; appended logs hold many sessions) and `--output-format json`
(one `result` object, or with `--verbose` an array of the events; possibly pretty-printed).

Calls come from `assistant` events, whose lines repeat `usage` per content block: one row per
`message.id` (the line with the most output wins). `record_id` is `"<message.id>:<request_id>"` when the
build writes a request id, else the message id. Session = `session_id` (snake_case here) = trace; events
with a `parent_tool_use_id` belong to a subagent (its Task/Agent `subagent_type` when resolvable).

`result` is a summary of the same calls and is never added to them: it becomes a `kind="rollup"` row
carrying `total_cost_usd` (older builds: `cost_usd`) as `reported_cost_usd`. Assistant events may carry
placeholder `output_tokens`; their rows are kept as reported, and a session whose result reports more
output is counted in the run notes. A session with a result but no assistant event (plain `json` output)
has no per-call record: its calls are read from the result instead, one row per model of `modelUsage`
when it names several, else one row from `result.usage` (tagged `usage_from=result`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..io import UTF8_BOM, InputFile, iter_lines
from ..schema import Kind
from . import anthropic
from .base import (
    ParseContext,
    Piece,
    RecordError,
    first_key,
    prefix_objects,
    text_or_none,
    timestamp_us,
    token_count,
)
from .claude_code import (
    SYNTHETIC_MODEL,
    FileRows,
    call_row,
    json_error,
    load,
    reported_columns,
    reported_cost,
    tool_results,
    tool_uses,
    usage_columns,
)
from .usage import Usage, add_counts

NAME = "claude-stream-json"
EVENT_TYPES = frozenset({"system", "assistant", "user", "result", "stream_event"})
_RESULT_MARK = re.compile(rb'"type"\s*:\s*"result"|"subtype"\s*:\s*"init"')
_SESSION_MARK = re.compile(rb'"session_id"\s*:')
_FROM_RESULT = [("usage_from", "result")]


def looks_like_headless(obj: dict[str, Any]) -> bool:
    kind = obj.get("type")
    if "session_id" not in obj:
        return False
    if kind == "system":
        return obj.get("subtype") == "init"
    if kind == "result":
        return True
    return kind in ("assistant", "user") and "parent_tool_use_id" in obj


def _document(data: bytes) -> list[Any] | None:
    """The records of a whole-file JSON document (an object or an array of them), or None."""
    try:
        doc = load(data)
    except orjson.JSONDecodeError:
        return None
    if isinstance(doc, dict):
        return [doc]
    return doc if isinstance(doc, list) else None


def _opens_document(raw: bytes) -> bool:
    return raw.strip().removeprefix(UTF8_BOM).lstrip()[:1] in (b"{", b"[")


@dataclass
class _RunState:
    source: InputFile
    ctx: ParseContext
    rows: FileRows = field(default_factory=FileRows)
    task_types: dict[str, str] = field(default_factory=dict)
    models: dict[str | None, str] = field(default_factory=dict)
    """Session id -> model named by its init event."""
    open_calls: dict[str | None, dict[str, None]] = field(default_factory=dict)
    """Session id -> slots of its calls read since its last result."""

    def record(self, obj: Any, lineno: int) -> None:
        if not isinstance(obj, dict):
            raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
        kind = obj.get("type")
        if not isinstance(kind, str):
            raise RecordError("not a Claude Code headless event (no type)")
        session = text_or_none(obj.get("session_id"))
        if kind == "system" and obj.get("subtype") == "init":
            model = text_or_none(obj.get("model"))
            if model is not None:
                self.models[session] = model
        elif kind == "assistant":
            self.assistant(obj, lineno, session)
        elif kind == "user":
            self.user(obj)
        elif kind == "result":
            self.result(obj, lineno, session)
        elif kind not in EVENT_TYPES:
            self.ctx.notes["claude-stream-json: events of an unknown type (no row)"] += 1

    def base(self, lineno: int) -> dict[str, Any]:
        return {"source": self.source.name, "line": lineno, "format": NAME}

    def assistant(self, obj: dict[str, Any], lineno: int, session: str | None) -> None:
        message = obj.get("message")
        if not isinstance(message, dict):
            raise RecordError("assistant event without a message object")
        if message.get("model") == SYNTHETIC_MODEL:
            self.ctx.notes["claude-stream-json: <synthetic> placeholder messages (not calls)"] += 1
            return
        message_id = text_or_none(message.get("id"))
        request_id = text_or_none(first_key(obj, ("request_id", "requestId")))
        key = message_id if message_id is None or request_id is None else f"{message_id}:{request_id}"
        row = call_row(message, record_key=key, trace_id=session, start=timestamp_us(obj.get("timestamp")))
        tools = tool_uses(message)
        parent = text_or_none(obj.get("parent_tool_use_id"))
        row.update(self.base(lineno))
        row["agent"] = "main" if parent is None else self.task_types.get(parent, "subagent")
        row["tags"] = None if parent is None else [("sidechain", "true")]
        if row["model"] is None:
            row["model"] = self.models.get(session)
        slot = self.rows.offer_message(message_id, row, tools, self.task_types)
        self.open_calls.setdefault(session, {})[slot] = None

    def user(self, obj: dict[str, Any]) -> None:
        message = obj.get("message")
        if isinstance(message, dict) and (ids := tool_results(message)):
            end = timestamp_us(obj.get("timestamp"))
            for tool_id in ids:
                self.rows.end_tool(tool_id, end)

    def result(self, obj: dict[str, Any], lineno: int, session: str | None) -> None:
        cost = reported_cost(first_key(obj, ("total_cost_usd", "cost_usd")), "total_cost_usd")
        start = timestamp_us(obj.get("timestamp"))
        slots = self.open_calls.get(session)
        calls = [] if slots else self.result_calls(obj, session, start)
        output = _output_or_none(obj) if slots else None
        for row in calls:
            row.update(self.base(lineno))
            self.rows.add(row)
        if slots:
            per_message = sum(self.rows.rows[s].get("output_tokens") or 0 for s in slots)
            if output is not None and output > per_message:
                self.ctx.notes["claude-stream-json: sessions whose result reports more output than its events"] += 1
        self.open_calls.pop(session, None)
        if cost is not None:
            subtype = obj.get("subtype")
            rollup: dict[str, Any] = {
                "kind": Kind.ROLLUP.value,
                "trace_id": session,
                "start": start,
                "reported_cost_usd": cost,
                "tags": [("subtype", subtype)] if isinstance(subtype, str) else None,
            }
            self.rows.add({**rollup, **self.base(lineno)})

    def result_calls(self, obj: dict[str, Any], session: str | None, start: int | None) -> list[dict[str, Any]]:
        """Rows for a session known only from its result: per model of `modelUsage` when it names several."""
        per_model = obj.get("modelUsage")
        models = per_model if isinstance(per_model, dict) else {}
        common = {"trace_id": session, "kind": Kind.LLM.value, "start": start, "agent": "main", "tags": _FROM_RESULT}
        common["provider"] = anthropic.FAMILY
        if len(models) > 1:
            return [
                {**common, "model": str(model), **reported_columns(_model_usage(usage))}
                for model, usage in models.items()
            ]
        columns = usage_columns(obj)
        if not columns:
            return []
        model = next(iter(models), None) or self.models.get(session)
        return [{**common, "model": model, "service_tier": anthropic.service_tier(obj), **columns}]


def _output_or_none(result: dict[str, Any]) -> int | None:
    """The run's output tokens from `result.usage`, for a comparison only: unusable means unknown."""
    try:
        return usage_columns(result).get("output_tokens")
    except RecordError:
        return None


def _model_usage(entry: Any) -> Usage:
    """Usage of one `modelUsage` entry (camelCase, Anthropic semantics: inputTokens is uncached only)."""
    if not isinstance(entry, dict):
        raise RecordError("modelUsage entry is not an object")
    uncached = token_count(entry.get("inputTokens"), "modelUsage.inputTokens")
    read = token_count(entry.get("cacheReadInputTokens"), "modelUsage.cacheReadInputTokens")
    write = token_count(entry.get("cacheCreationInputTokens"), "modelUsage.cacheCreationInputTokens")
    return Usage(
        input_tokens=add_counts(uncached, read, write),
        output_tokens=token_count(entry.get("outputTokens"), "modelUsage.outputTokens"),
        cache_read_tokens=read,
        cache_write_tokens=write,
    )


class ClaudeHeadlessParser:
    name = NAME
    description = "Claude Code headless output (claude -p --output-format stream-json --verbose, or json)"

    def sniff(self, prefix: bytes) -> bool:
        objects = list(prefix_objects(prefix))
        if objects:  # any of the first events: newer builds may emit hook events before `init`
            return any(looks_like_headless(obj) for obj in objects)
        if not _opens_document(prefix):
            return False
        records = _document(prefix)
        if records is not None:
            return bool(records) and isinstance(records[0], dict) and looks_like_headless(records[0])
        return bool(_SESSION_MARK.search(prefix)) and bool(_RESULT_MARK.search(prefix))

    def parse(self, source: InputFile, ctx: ParseContext, *, forced: bool) -> Iterator[Piece]:
        state = _RunState(source, ctx)
        first = True
        for lineno, raw in iter_lines(source, ctx.read_error):
            if first:
                first = False
                if _opens_document(raw) and not _parses(raw):
                    records = _document(b"\n".join(line for _, line in iter_lines(source, ctx.read_error)))
                    if records is not None:
                        for obj in records:
                            self._read(state, obj, lineno)
                        break
            self._read_line(state, raw, lineno)
        if state.rows.merged:
            ctx.notes["claude-stream-json: repeated events of one message merged"] += state.rows.merged
        if state.rows.rows:
            yield list(state.rows.rows.values())

    def _read_line(self, state: _RunState, raw: bytes, lineno: int) -> None:
        try:
            obj = load(raw)
        except orjson.JSONDecodeError as exc:
            state.ctx.records[state.source.name] += 1
            state.ctx.skips.skip(state.source.name, lineno, json_error(exc))
            return
        self._read(state, obj, lineno)

    def _read(self, state: _RunState, obj: Any, lineno: int) -> None:
        state.ctx.records[state.source.name] += 1
        try:
            state.record(obj, lineno)
        except RecordError as exc:
            state.ctx.skips.skip(state.source.name, lineno, str(exc))


def _parses(raw: bytes) -> bool:
    try:
        load(raw)
    except orjson.JSONDecodeError:
        return False
    return True
