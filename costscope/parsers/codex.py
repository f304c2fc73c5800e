"""Codex CLI rollouts: `~/.codex/sessions/YYYY/MM/DD/rollout-<ts>-<uuid>.jsonl`.

Every line is `{timestamp, type, payload}` with `type` one of session_meta | turn_context |
response_item | event_msg | compacted. One row per LLM call, read from `event_msg` lines whose
`payload.type` is `token_count`:

- Codex writes each token_count twice (the first emission of a session has `info: null`), so an event
  is a new call only when its cumulative `total_token_usage` differs from the previous event's.
- The call's tokens are the growth of the cumulative total since the previous call. Codex keeps the
  total as the running sum of `last_token_usage`, so the two agree; where they do not (a call whose
  event line was lost or skipped), the growth keeps the session's sum equal to Codex's own total and
  the disagreement is noted. `last_token_usage` is used where the growth is undefined: the first call
  in a file (the total may include a parent's usage this file does not hold) and after a counter
  went down (a restarted count). Files with only `last_token_usage` use it directly.
- Buckets are already inclusive: `input_tokens` contains `cached_input_tokens` (and newer builds'
  `cache_write_input_tokens`), `output_tokens` contains `reasoning_output_tokens`. Nothing is added.
- Model: the latest `turn_context.payload.model`. Early-September-2025 builds write none: such calls
  keep a null model (listed as unpriced, never guessed) and are counted in the notes.
- trace_id: the first `session_meta.payload.id` (else the uuid in the file name); agent:
  `originator`, else `source`, else "codex"; tenant: the last path component of the session's `cwd`;
  provider: `model_provider`.
- Forked, resumed and spawned rollouts (`forked_from_id`, `source.subagent.thread_spawn`) begin with
  the parent's session_meta and history copied in, cumulative totals included, every line re-stamped
  with the fork time. A call's `record_id` is therefore built from what a copy keeps, the lineage root
  session (followed through the copied session_meta lines) and the cumulative total after the call,
  never from the time: the parent's row and the fork's copy share it and the global keep-last dedupe
  counts the call once. Limits: the copy kept is the last file read (usually the fork, so the call
  shows under the fork's trace at the fork time), and two forks of one session whose calls grow the
  total by exactly the same counts would share a record_id.
- `function_call`, `custom_tool_call` and `web_search_call` items become `kind="tool"` rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

import pyarrow as pa

from ..io import InputFile
from ..schema import Kind, UsageSource
from . import openai
from .base import ParseContext, RecordError, RowBuffer, first_object, text_or_none, timestamp_us, token_count

NAME = "codex"
LINE_TYPES = frozenset({"session_meta", "turn_context", "response_item", "event_msg", "compacted"})
TOOL_ITEMS = {"function_call": None, "custom_tool_call": None, "web_search_call": "web_search"}
"""Response items that are tool calls, with the tool name of those that carry none."""
NOTE_NO_MODEL = "codex calls without a model (early Sept 2025 builds): left unpriced"
NOTE_DISAGREE = "codex calls whose last_token_usage differs from the growth of total_token_usage (growth used)"

_SNIFF = re.compile(
    rb'\s*\{\s*"timestamp"\s*:\s*"[^"]*"\s*,\s*"type"\s*:\s*"(?:'
    + b"|".join(sorted(t.encode() for t in LINE_TYPES))
    + rb')"\s*,\s*"payload"\s*:\s*\{'
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True, slots=True)
class Counts:
    """One Codex usage object in inclusive buckets (tokens)."""

    input: int
    cached: int
    output: int
    reasoning: int
    cache_write: int | None = None

    def valid(self) -> bool:
        return self.cached + (self.cache_write or 0) <= self.input and self.reasoning <= self.output

    def minus(self, earlier: Counts) -> Counts | None:
        """The growth since `earlier`; None when any counter went down."""
        growth = Counts(
            self.input - earlier.input,
            self.cached - earlier.cached,
            self.output - earlier.output,
            self.reasoning - earlier.reasoning,
            None
            if self.cache_write is None and earlier.cache_write is None
            else (self.cache_write or 0) - (earlier.cache_write or 0),
        )
        values = (growth.input, growth.cached, growth.output, growth.reasoning, growth.cache_write or 0)
        return growth if min(values) >= 0 else None

    def is_zero(self) -> bool:
        return not (self.input or self.cached or self.output or self.reasoning or self.cache_write)

    def key(self) -> str:
        return f"{self.input}:{self.cached}:{self.output}:{self.reasoning}"


def _count(usage: dict[str, Any], key: str, name: str) -> int | None:
    return token_count(usage.get(key), f"{name}.{key}")


def usage_counts(value: Any, name: str) -> Counts | None:
    """A `total_token_usage` / `last_token_usage` object; None when absent; RecordError when unusable."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RecordError(f"{name} is not an object")
    input_tokens = _count(value, "input_tokens", name)
    output_tokens = _count(value, "output_tokens", name)
    if input_tokens is None or output_tokens is None:
        raise RecordError(f"{name} lacks input_tokens or output_tokens")
    counts = Counts(
        input_tokens,
        _count(value, "cached_input_tokens", name) or 0,
        output_tokens,
        _count(value, "reasoning_output_tokens", name) or 0,
        _count(value, "cache_write_input_tokens", name),
    )
    if counts.cached > counts.input:
        raise RecordError(f"{name}: cached input ({counts.cached}) exceeds the input that contains it ({counts.input})")
    if counts.cached + (counts.cache_write or 0) > counts.input:
        raise RecordError(f"{name}: cached and cache-write input exceed the input that contains them ({counts.input})")
    if counts.reasoning > counts.output:
        raise RecordError(
            f"{name}: reasoning ({counts.reasoning}) exceeds the output that contains it ({counts.output})"
        )
    return counts


def _payload(obj: dict[str, Any]) -> dict[str, Any]:
    payload = obj.get("payload")
    if not isinstance(payload, dict):
        raise RecordError(f"{obj.get('type')} line without a payload object")
    return payload


def _line_time(obj: dict[str, Any]) -> int | None:
    value = obj.get("timestamp")
    if value is not None and not isinstance(value, str):
        raise RecordError(f"timestamp is not an ISO-8601 string: {value!r}")
    return timestamp_us(value)


def _last_component(path: str | None) -> str | None:
    """The last component of a POSIX or Windows directory path (`/home/me/shop/` -> `shop`)."""
    if not path:
        return None
    name = (PureWindowsPath(path) if "\\" in path else PurePosixPath(path)).name
    return name or None


def _spawn_parent(source: Any) -> str | None:
    if not isinstance(source, dict):
        return None
    subagent = source.get("subagent")
    spawn = subagent.get("thread_spawn") if isinstance(subagent, dict) else None
    return text_or_none(spawn.get("parent_thread_id")) if isinstance(spawn, dict) else None


class Rollout:
    """The state of reading one rollout file: its session, the current model and the last total seen."""

    def __init__(self, source: str, ctx: ParseContext) -> None:
        self.source = source
        self.ctx = ctx
        match = _UUID.search(PurePosixPath(source.replace("\\", "/")).name)
        self.session: str = match.group(0) if match else source
        self.meta_seen = False
        self.parents: dict[str, str] = {}
        """Session id -> the session it was forked or spawned from, from every session_meta seen."""
        self.agent = "codex"
        self.tenant: str | None = None
        self.provider: str | None = None
        self.model: str | None = None
        self.effort: str | None = None
        self.previous_total: Counts | None = None
        self.previous_event: tuple[Counts | None, Counts | None] | None = None
        self.calls = 0

    def root(self) -> str:
        """The session the lineage started in: what a fork and its parent agree on."""
        session, seen = self.session, {self.session}
        while (parent := self.parents.get(session)) is not None and parent not in seen:
            session = parent
            seen.add(session)
        return session

    def line(self, obj: Any) -> dict[str, Any] | None:
        """The row a line yields (None for lines understood without one); RecordError when unusable."""
        if not isinstance(obj, dict):
            raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
        kind = obj.get("type")
        if not isinstance(kind, str) or kind not in LINE_TYPES:
            raise RecordError(f"not a Codex rollout line (type {kind!r})")
        payload = _payload(obj)
        item = payload.get("type")
        if kind == "session_meta":
            self.session_meta(payload)
        elif kind == "turn_context":
            self.turn_context(payload)
        elif kind == "event_msg" and item == "token_count":
            return self.token_count(payload, _line_time(obj))
        elif kind == "response_item" and isinstance(item, str) and item in TOOL_ITEMS:
            return self.tool_call(item, payload, _line_time(obj))
        return None

    def session_meta(self, payload: dict[str, Any]) -> None:
        session = text_or_none(payload.get("id"))
        parent = text_or_none(payload.get("forked_from_id")) or _spawn_parent(payload.get("source"))
        if self.meta_seen:  # a copied ancestor's meta: only its lineage matters
            if session is not None and parent is not None:
                self.parents.setdefault(session, parent)
            return
        self.meta_seen = True
        self.session = session or self.session
        if parent is not None:
            self.parents[self.session] = parent
        originator, source = payload.get("originator"), payload.get("source")
        self.agent = next((v for v in (originator, source) if isinstance(v, str) and v), "codex")
        cwd = payload.get("cwd")
        self.tenant = _last_component(cwd) if isinstance(cwd, str) else self.tenant
        provider = payload.get("model_provider")
        self.provider = provider.lower() if isinstance(provider, str) and provider else None

    def turn_context(self, payload: dict[str, Any]) -> None:
        self.model = text_or_none(payload.get("model"))
        effort = payload.get("effort")
        self.effort = effort if isinstance(effort, str) and effort else None
        cwd = payload.get("cwd")
        if self.tenant is None and isinstance(cwd, str):
            self.tenant = _last_component(cwd)

    def token_count(self, payload: dict[str, Any], start: int | None) -> dict[str, Any] | None:
        info = payload.get("info")
        if info is None:
            return None  # an emission carrying only rate limits
        if not isinstance(info, dict):
            raise RecordError("token_count info is not an object")
        total = usage_counts(info.get("total_token_usage"), "total_token_usage")
        last = usage_counts(info.get("last_token_usage"), "last_token_usage")
        if total is not None:
            if total == self.previous_total:
                return None  # the second emission of the same call
            usage = self.call_usage(total, last)
            self.previous_total = total
            key = total.key()
        elif last is not None:
            if self.previous_event == (None, last):
                return None  # the second emission of the same call
            usage = last
            key = f"call{self.calls}:{last.key()}"
        else:
            raise RecordError("token_count without total_token_usage or last_token_usage")
        self.previous_event = (total, last)
        if usage.is_zero():
            return None  # a counter reset to zero, not a call
        self.calls += 1
        if self.model is None:
            self.ctx.notes[NOTE_NO_MODEL] += 1
        return {
            **self.identity(start),
            "record_id": f"codex:{self.root()}:{key}",
            "kind": Kind.LLM.value,
            "input_tokens": usage.input,
            "cache_read_tokens": usage.cached,
            "cache_write_tokens": usage.cache_write,
            "output_tokens": usage.output,
            "reasoning_tokens": usage.reasoning,
            "usage_source": UsageSource.REPORTED.value,
        }

    def call_usage(self, total: Counts, last: Counts | None) -> Counts:
        """This call's tokens: the growth of the cumulative total, or `last` where growth is undefined."""
        if self.previous_total is None:
            return last or total
        growth = total.minus(self.previous_total)
        if growth is None:
            return last or total
        if not growth.valid():
            if last is None:
                raise RecordError("total_token_usage grew by more cached input than input")
            self.ctx.notes[NOTE_DISAGREE] += 1
            return last
        if last is not None and last != growth:
            self.ctx.notes[NOTE_DISAGREE] += 1
        return growth

    def tool_call(self, item: str, payload: dict[str, Any], start: int | None) -> dict[str, Any]:
        name = TOOL_ITEMS[item] or payload.get("name")
        if not isinstance(name, str) or not name:
            raise RecordError(f"{item} without a name")
        call_id = text_or_none(payload.get("call_id") or payload.get("id"))
        return {
            **self.identity(start),
            "record_id": f"codex-tool:{self.root()}:{call_id}" if call_id else None,
            "kind": Kind.TOOL.value,
            "tool": name,
        }

    def identity(self, start: int | None) -> dict[str, Any]:
        return {
            "trace_id": self.session,
            "agent": self.agent,
            "tenant": self.tenant,
            "start": start,
            "provider": self.provider or openai.provider_of(self.model),
            "model": self.model,
            "tags": [("effort", self.effort)] if self.effort else None,
        }


class CodexParser:
    name = NAME
    description = "Codex CLI rollout files (~/.codex/sessions/**/rollout-*.jsonl)"
    sniffs_first_lines = True
    """Its sniff reads only the first `base.SNIFF_LINES` lines (see `parsers.detect`)."""

    def sniff(self, prefix: bytes) -> bool:
        prefix = prefix.removeprefix(b"\xef\xbb\xbf")
        obj = first_object(prefix)
        if obj is not None:
            kind = obj.get("type")
            return isinstance(kind, str) and kind in LINE_TYPES and isinstance(obj.get("payload"), dict)
        # A session_meta line can outgrow the sniffed prefix (long base instructions): match its opening.
        return _SNIFF.match(prefix) is not None

    def parse(self, source: InputFile, ctx: ParseContext, *, forced: bool) -> Iterator[pa.RecordBatch]:
        buffer = RowBuffer(ctx.batch_rows)
        rollout = Rollout(source.name, ctx)
        for lineno, row in ctx.records_of(source, lambda obj, _: rollout.line(obj)):
            if row is None:
                continue
            row.update(source=source.name, line=lineno, format=NAME)
            if (batch := buffer.add(row)) is not None:
                yield batch
        if (batch := buffer.flush()) is not None:
            yield batch
