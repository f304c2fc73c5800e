"""OpenHands event trajectories: one JSON array of events (`save_trajectory_path`, the runtime's
`trajs/*.json`).

An event is `{id, timestamp, source, action | observation, message, args | extras, cause,
tool_call_metadata{function_name, tool_call_id, model_response, total_calls_in_response}, llm_metrics}`.
The litellm `model_response` that produced an action is attached to that action, to its observation and
to every action split from a multi-tool-call response, so there is one `llm` row per distinct
`model_response.id` (the first event carrying it; `record_id` = that id). Usage is OpenAI-shaped with
litellm's Anthropic spelling (`prompt_tokens` includes cache reads and writes, `cached_tokens` = reads,
`cache_creation_input_tokens` = writes), read by `openai.extract_usage`. Every action naming a function
becomes a `tool` row from the action to its observation. Timestamps are naive and taken as UTC.

Newer builds attach `llm_metrics` snapshots (running totals) to actions: the largest `accumulated_cost`
becomes one `rollup` row, and per-call `costs[]` become `reported_cost_usd` when they pair one-to-one
with `token_usages[]` (which name the response id). `line` is the event's 1-based position in the array.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from ..io import InputFile
from ..schema import Kind, UsageSource
from . import openai
from .base import ParseContext, RecordError, text_or_none, timestamp_us
from .jsondoc import (
    batches,
    checked_row,
    model_tags,
    non_negative,
    number_text,
    read_document,
    scan_keys,
    split_model,
    trace_stem,
)

NAME = "openhands"
AGENT = "openhands"
SESSION_KEYS = ("session_id", "sid", "conversation_id")


@dataclass
class _Metrics:
    """The llm_metrics snapshot with the largest running cost, and the fullest per-call ledger."""

    cost: float | None = None
    cost_line: int = 0
    cost_start: int | None = None
    usage_tags: list[tuple[str, str]] = field(default_factory=list)
    ledger: tuple[list[Any], list[Any]] = ([], [])

    def offer(self, metrics: Any, line: int, start: int | None) -> bool:
        """Take in one event's snapshot; False when it is not a readable llm_metrics object."""
        if not isinstance(metrics, dict):
            return False
        cost = non_negative(metrics.get("accumulated_cost"))
        if cost is not None and (self.cost is None or cost >= self.cost):
            self.cost, self.cost_line, self.cost_start = cost, line, start
            usage = metrics.get("accumulated_token_usage")
            self.usage_tags = []
            if isinstance(usage, dict):
                for key in ("prompt_tokens", "completion_tokens", "cache_read_tokens", "cache_write_tokens"):
                    if (text := number_text(usage.get(key))) is not None:
                        self.usage_tags.append((f"accumulated_{key}", text))
        costs, usages = metrics.get("costs"), metrics.get("token_usages")
        if isinstance(costs, list) and isinstance(usages, list) and len(usages) > len(self.ledger[1]):
            self.ledger = (costs, usages)
        return True

    def call_costs(self) -> dict[str, float]:
        """Reported cost per response id, only when `costs[i]` and `token_usages[i]` clearly pair up."""
        costs, usages = self.ledger
        if not usages or len(costs) != len(usages):
            return {}
        paired: dict[str, float] = {}
        repeated: set[str] = set()
        for cost, usage in zip(costs, usages, strict=True):
            if not isinstance(cost, dict) or not isinstance(usage, dict):
                return {}
            response_id, amount = usage.get("response_id"), non_negative(cost.get("cost"))
            models = (cost.get("model"), usage.get("model"))
            if not isinstance(response_id, str) or not response_id or amount is None:
                return {}
            if all(isinstance(m, str) and m for m in models) and models[0] != models[1]:
                return {}
            if response_id in paired:
                repeated.add(response_id)
            paired[response_id] = amount
        return {k: v for k, v in paired.items() if k not in repeated}


def _response_key(response: dict[str, Any]) -> tuple[str | None, str]:
    """(response id, dedupe key): the id, or a content hash for a response logged without one."""
    response_id = text_or_none(response.get("id"))
    if response_id is not None:
        return response_id, response_id
    digest = hashlib.blake2b(orjson.dumps(response, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()
    return None, "sha:" + digest


def _llm_row(response: dict[str, Any], response_id: str | None, start: int | None) -> dict[str, Any]:
    logged = text_or_none(response.get("model"))
    provider, model = split_model(logged)
    usage = openai.extract_usage(response)
    if start is None:
        start = timestamp_us(openai.created(response))
    row: dict[str, Any] = {
        "record_id": response_id,
        "kind": Kind.LLM.value,
        "start": start,
        "provider": provider,
        "model": model,
        "service_tier": openai.service_tier(response),
        "tags": model_tags(logged, model) or None,
    }
    if usage is not None and usage.reported:
        row.update(usage.columns())
        row["usage_source"] = UsageSource.REPORTED.value
    return row


def _tool_row(
    meta: dict[str, Any], event: dict[str, Any], response_id: str | None, start: int | None
) -> dict[str, Any]:
    action = event.get("action")
    return {
        "kind": Kind.TOOL.value,
        "tool": text_or_none(meta.get("function_name")),
        "span_id": text_or_none(meta.get("tool_call_id")),
        "parent_id": response_id,
        "start": start,
        "tags": [("action", action)] if isinstance(action, str) and action else None,
    }


def _ends(events: list[Any]) -> dict[Any, Any]:
    """The raw timestamp of the first observation caused by each action id."""
    ends: dict[Any, Any] = {}
    for event in events:
        if isinstance(event, dict) and "observation" in event:
            cause = event.get("cause")
            if isinstance(cause, int | str) and not isinstance(cause, bool) and cause not in ends:
                ends[cause] = event.get("timestamp")
    return ends


def _end_of(ends: dict[Any, Any], event_id: Any) -> int | None:
    if not isinstance(event_id, int | str) or isinstance(event_id, bool) or event_id not in ends:
        return None
    try:
        return timestamp_us(ends[event_id])
    except RecordError:
        return None


def _identity(events: list[Any], source: InputFile) -> tuple[str, str]:
    """(trace id, agent): a session id and agent class when an event names them, else file stem / openhands."""
    trace_id: str | None = None
    agent: str | None = None
    for event in events:
        if not isinstance(event, dict):
            continue
        if trace_id is None:
            trace_id = next((v for k in SESSION_KEYS if isinstance(v := event.get(k), str) and v), None)
        args = event.get("args")
        if agent is None and isinstance(args, dict) and isinstance(args.get("agent_class"), str):
            agent = args["agent_class"] or None
        if trace_id is not None and agent is not None:
            break
    return trace_id or trace_stem(source), agent or AGENT


class OpenHandsParser:
    name = NAME
    description = "OpenHands event trajectory (one JSON array of events)"

    def sniff(self, prefix: bytes) -> bool:
        root, keys = scan_keys(prefix, max_depth=2)
        if root != "[":
            return False
        return ("[]", "tool_call_metadata") in keys or (
            ("[]", "source") in keys and (("[]", "action") in keys or ("[]", "observation") in keys)
        )

    def parse(self, source: InputFile, ctx: ParseContext, *, forced: bool) -> Iterator[pa.RecordBatch]:
        events = read_document(source, ctx, "array")
        if events is None:
            return
        yield from batches(self.rows(events, source, ctx), ctx.batch_rows)

    def rows(self, events: list[Any], source: InputFile, ctx: ParseContext) -> list[dict[str, Any]]:
        trace_id, agent = _identity(events, source)
        ends = _ends(events)
        metrics = _Metrics()
        seen: set[str] = set()
        rows: list[dict[str, Any]] = []
        for line, event in enumerate(events, 1):
            ctx.records[source.name] += 1
            try:
                new = self.event_rows(event, seen, ends)
            except RecordError as exc:
                ctx.skips.skip(source.name, line, str(exc))
                continue
            if "llm_metrics" in event and not metrics.offer(event["llm_metrics"], line, new[0]):
                ctx.notes["openhands llm_metrics that are not objects (ignored)"] += 1
            for row in new[1]:
                row.update(source=source.name, line=line, format=NAME, trace_id=trace_id, agent=agent)
                if row["kind"] == Kind.LLM.value and row.get("usage_source") is None:
                    ctx.notes["calls without usage"] += 1
                rows.append(row)
        costs = metrics.call_costs()
        for row in rows:
            if row["kind"] == Kind.LLM.value and row.get("record_id") in costs:
                row["reported_cost_usd"] = costs[row["record_id"]]
        if metrics.cost is not None:
            rows.append(
                {
                    "source": source.name,
                    "line": metrics.cost_line,
                    "format": NAME,
                    "trace_id": trace_id,
                    "agent": agent,
                    "kind": Kind.ROLLUP.value,
                    "start": metrics.cost_start,
                    "reported_cost_usd": metrics.cost,
                    "tags": [("reported_by", "llm_metrics.accumulated_cost"), *metrics.usage_tags],
                }
            )
        return rows

    @staticmethod
    def event_rows(event: Any, seen: set[str], ends: dict[Any, Any]) -> tuple[int | None, list[dict[str, Any]]]:
        """(event time, new rows) of one event; the response it carries only if not seen before."""
        if not isinstance(event, dict):
            raise RecordError(f"event is not a JSON object, got {type(event).__name__}")
        start = timestamp_us(event.get("timestamp"))
        meta = event.get("tool_call_metadata")
        if meta is None:
            return start, []
        if not isinstance(meta, dict):
            raise RecordError("tool_call_metadata is not an object")
        response = meta.get("model_response")
        if response is not None and not isinstance(response, dict):
            raise RecordError("tool_call_metadata.model_response is not an object")
        rows: list[dict[str, Any]] = []
        response_id, key = _response_key(response) if response else (None, "")
        if response and key not in seen:
            rows.append(checked_row(_llm_row(response, response_id, start)))
        if "action" in event and meta.get("function_name") is not None:
            tool = _tool_row(meta, event, response_id, start)
            tool["end"] = _end_of(ends, event.get("id"))
            rows.append(checked_row(tool))
        if response:
            seen.add(key)
        return start, rows
