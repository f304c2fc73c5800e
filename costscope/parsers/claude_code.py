"""Claude Code project logs: `~/.claude/projects/<project>/<sessionId>.jsonl` and the subagent files
`<sessionId>/subagents/agent-<agentId>.jsonl` (older builds: `agent-<agentId>.jsonl` beside the session).

One row per LLM call. Claude Code writes one API response as several `assistant` lines (one per content
block), each repeating `usage` and often with growing `output_tokens`: the lines of one
(`message.id`, `requestId`) are merged into the one with the most output (ties: the later line).
`record_id` is `"<message.id>:<requestId>"`, so the global dedupe of `load_steps` also collapses the
copies a resumed session writes into its new file. Usage has Anthropic semantics (see `anthropic`).

Subagent calls are written twice: in the subagent's own file and embedded in the parent's `progress`
lines. The embedded copy is ignored when the subagent file exists beside the parent (it is read from
there), and becomes a row of that agent otherwise. `tool_use` blocks become `kind="tool"` rows ending at
the matching `tool_result`. Session = trace, project directory = tenant, agent = "main", the subagent
type named in the parent's Task/Agent call when it can be resolved, else the agentId.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from ..errors import CostscopeError
from ..io import UTF8_BOM, InputFile
from ..schema import Kind, UsageSource
from . import anthropic
from .base import ParseContext, Piece, RecordError, prefix_objects, text_or_none, timestamp_us
from .claude_fast import parse_fast, remembered_links
from .usage import Usage

NAME = "claude-code"
RECORD_TYPES = frozenset(
    {"user", "assistant", "system", "summary", "progress", "file-history-snapshot", "queue-operation"}
)
SYNTHETIC_MODEL = "<synthetic>"
NOTE_PROGRESS_COPY = "claude-code: progress lines copying a subagent call (read from its subagent file instead)"
NOTE_UNKNOWN_TYPE = "claude-code: records of an unknown type (no row)"
TASK_TOOLS = frozenset({"Task", "Agent"})
_SAFE_ID = re.compile(r"[\w.-]{1,200}")
FAST_PATH = True
"""Read clean files with `claude_fast` (the reference path below reads the rest); tests turn it off to compare."""


def load(raw: bytes) -> Any:
    """One JSON value from a line, tolerating a UTF-8 byte-order mark (orjson rejects it)."""
    return orjson.loads(raw[3:] if raw.startswith(UTF8_BOM) else raw)  # surrounding whitespace is fine


def json_error(exc: orjson.JSONDecodeError) -> str:
    return f"malformed JSON ({exc.args[0].split(':')[0]})"


def looks_like_project_log(obj: dict[str, Any]) -> bool:
    kind = obj.get("type")
    if kind not in RECORD_TYPES or "session_id" in obj:
        return False
    if kind == "summary":
        return "leafUuid" in obj
    if kind == "file-history-snapshot":
        return "snapshot" in obj
    return "sessionId" in obj or "parentUuid" in obj


def reported_cost(value: Any, name: str) -> float | None:
    """A cost the log claims (USD), or None; RecordError when it is not a non-negative number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise RecordError(f"{name} is not a non-negative number: {value!r}")
    return float(value)


def usage_columns(message: dict[str, Any]) -> dict[str, Any]:
    """Inclusive token columns of an Anthropic message (empty when it reports no usage)."""
    return reported_columns(anthropic.extract_usage(message))


def reported_columns(usage: Usage | None) -> dict[str, Any]:
    """The step-table token columns of a reported usage (empty when nothing is reported)."""
    if usage is None or not usage.reported:
        return {}
    return {**usage.columns(), "usage_source": UsageSource.REPORTED.value}


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


ToolUse = tuple[str, str | None, Any]


def tool_uses(message: dict[str, Any]) -> list[ToolUse]:
    """(id, name, input) of the message's `tool_use` blocks that carry an id."""
    out = []
    for block in _blocks(message):
        if block.get("type") == "tool_use":
            tool_id = text_or_none(block.get("id"))
            if tool_id is not None:
                out.append((tool_id, text_or_none(block.get("name")), block.get("input")))
    return out


def tool_results(message: dict[str, Any]) -> list[str]:
    """The `tool_use_id`s answered by a user message."""
    ids = []
    for block in _blocks(message):
        if block.get("type") == "tool_result":
            tool_id = block.get("tool_use_id")
            if isinstance(tool_id, str) and tool_id:
                ids.append(tool_id)
    return ids


def subagent_type(name: Any, tool_input: Any) -> str | None:
    """The `subagent_type` a Task/Agent tool call starts, if this is one."""
    return started_type(name, tool_input.get("subagent_type")) if isinstance(tool_input, dict) else None


def started_type(name: Any, kind: Any) -> str | None:
    """`kind` (its input's `subagent_type`) when a tool call named `name` starts a subagent of that type."""
    return kind if isinstance(name, str) and name in TASK_TOOLS and isinstance(kind, str) and kind else None


@dataclass
class FileRows:
    """The rows of one file: one per call key (most output wins, ties to the later line) and per tool use."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    merged: int = 0
    fingerprints: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    """call key -> what its held row was built from (see `repeat_of_held`)."""

    def offer_call(self, key: str | None, row: dict[str, Any]) -> str:
        """Hold the row of a call (`key` None: a call of its own); returns the slot it is held in."""
        if key is None:
            return self.add(row)
        slot = f"call:{key}"
        held = self.rows.get(slot)
        if held is None:
            self.rows[slot] = row
            return slot
        self.merged += 1
        if (row.get("output_tokens") or 0) >= (held.get("output_tokens") or 0):
            starts = [s for s in (held["start"], row["start"]) if s is not None]
            row["start"] = min(starts) if starts else None
            self.rows[slot] = row
        return slot

    def repeat_of_held(self, key: str, line: int, start: int | None, same: tuple[Any, ...]) -> bool:
        """True when the held row of `key` came from a line identical in everything a row is made of
        (`same`): the repeat then only moves the row to its later line (ties go to the later line), without
        building the row again — most responses are written as several such lines."""
        held = self.rows.get(f"call:{key}")
        if held is None or self.fingerprints.get(key) != same:
            return False
        self.merged += 1
        held["line"] = line
        if start is not None and (held["start"] is None or start < held["start"]):
            held["start"] = start
        return True

    def offer_message(
        self, key: str | None, row: dict[str, Any], tools: list[ToolUse], task_types: dict[str, str]
    ) -> str:
        """Hold a call row and a tool row per `tool_use` block (starting at this line's time); remember the
        subagent type of Task/Agent calls in `task_types`. Returns the call's slot."""
        uses = [tool_row(tool_id, name, row) for tool_id, name, _ in tools]
        slot = self.offer_call(key, row)
        for use in uses:
            self.offer_tool(use)
        for tool_id, name, tool_input in tools:
            if (kind := subagent_type(name, tool_input)) is not None:
                task_types[tool_id] = kind
        return slot

    def add(self, row: dict[str, Any]) -> str:
        """Hold a row that merges with nothing (a call without an id, a roll-up); returns its slot."""
        slot = f"row:{len(self.rows)}"
        self.rows[slot] = row
        return slot

    def in_order(self) -> list[dict[str, Any]]:
        """The rows: the calls (and rows that merge with nothing), then the tools, each in order of first
        appearance. (The step table orders rows by trace and time; this order only decides ties, where a line's call
        comes before its tools, which come in block order.)"""
        tools = [row for slot, row in self.rows.items() if slot.startswith("tool:")]
        return [row for slot, row in self.rows.items() if not slot.startswith("tool:")] + tools

    def offer_tool(self, row: dict[str, Any]) -> None:
        self.rows.setdefault(f"tool:{row['span_id']}", row)

    def end_tool(self, tool_id: str, end: int | None) -> None:
        row = self.rows.get(f"tool:{tool_id}")
        if row is not None and end is not None and row.get("end") is None and (row["start"] or end) <= end:
            row["end"] = end


def call_row(
    message: dict[str, Any], *, record_key: str | None, trace_id: str | None, start: int | None
) -> dict[str, Any]:
    """An LLM row from an Anthropic message object as Claude Code logs it (identity fields left to the caller)."""
    model = text_or_none(message.get("model"))
    row: dict[str, Any] = {
        "record_id": record_key,
        "trace_id": trace_id,
        "span_id": text_or_none(message.get("id")),
        "kind": Kind.LLM.value,
        "start": start,
        "provider": anthropic.FAMILY,
        "model": model,
        "service_tier": anthropic.service_tier(message),
    }
    row.update(usage_columns(message))
    return row


def tool_row(tool_id: str, name: str | None, call: dict[str, Any]) -> dict[str, Any]:
    """A tool row for one `tool_use` block of `call` (same trace, agent and time; no usage)."""
    keep = ("source", "line", "format", "trace_id", "agent", "tenant", "tags", "start")
    row = {k: call.get(k) for k in keep}
    row.update(kind=Kind.TOOL.value, tool=name, record_id=tool_id, span_id=tool_id, parent_id=call.get("span_id"))
    return row


def _safe_child(directory: Path, name: str) -> bool:
    try:
        return (directory / name).is_file()
    except OSError:
        return False


@lru_cache(maxsize=256)
def _agent_types_of(path: str, mtime_ns: int, size: int) -> dict[str, str]:
    """{agentId: subagent type} from a parent session file (links via progress lines and tool results)."""
    task_types: dict[str, str] = {}
    agent_tool: dict[str, str] = {}
    try:
        with InputFile(path, Path(path)).open() as fh:
            data = fh.read()
    except (CostscopeError, OSError, EOFError):
        return {}
    for raw in _lines_with(data, (b"subagent_type", b"agentId")):
        try:
            obj = load(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            collect_links(obj, task_types, agent_tool)
    return linked_types(task_types, agent_tool)


def linked_types(task_types: dict[str, str], agent_tool: dict[str, str]) -> dict[str, str]:
    """{agentId: subagent type}, from the Task calls' types and the call that started each agent."""
    return {agent: task_types[tool] for agent, tool in agent_tool.items() if tool in task_types}


def _lines_with(data: bytes, markers: tuple[bytes, ...]) -> list[bytes]:
    """The lines of `data` holding any of `markers`, in file order: found by searching for the markers, so the
    other lines (most of a session) are never split out or looked at."""
    spans: set[tuple[int, int]] = set()
    for marker in markers:
        at = data.find(marker)
        while at != -1:
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at)
            end = len(data) if end == -1 else end
            spans.add((start, end))
            at = data.find(marker, end)
    return [data[start:end] for start, end in sorted(spans)]


def collect_links(obj: dict[str, Any], task_types: dict[str, str], agent_tool: dict[str, str]) -> None:
    message = obj.get("message")
    kind = obj.get("type")
    if kind == "assistant" and isinstance(message, dict):
        for block in _blocks(message):
            tool_id, kind_name = block.get("id"), subagent_type(block.get("name"), block.get("input"))
            if isinstance(tool_id, str) and kind_name is not None:
                task_types[tool_id] = kind_name
    elif kind == "progress":
        data, tool_id = obj.get("data"), obj.get("parentToolUseID")
        if isinstance(data, dict) and isinstance(data.get("agentId"), str) and isinstance(tool_id, str):
            agent_tool.setdefault(data["agentId"], tool_id)
    elif kind == "user" and isinstance(message, dict):
        result = obj.get("toolUseResult")
        agent = result.get("agentId") if isinstance(result, dict) else None
        ids = tool_results(message)
        if isinstance(agent, str) and ids:
            agent_tool.setdefault(agent, ids[0])


def parent_agent_types(path: Path | None, session_id: str | None) -> dict[str, str]:
    """{agentId: subagent type} from the session file a subagent file belongs to, if it is on disk."""
    if path is None:
        return {}
    candidates = []
    if path.parent.name == "subagents":
        session_dir = path.parent.parent
        candidates.append(session_dir.parent / f"{session_dir.name}.jsonl")
    if session_id is not None and _SAFE_ID.fullmatch(session_id):
        candidates.append(path.parent / f"{session_id}.jsonl")
    for candidate in candidates:
        try:
            stat = candidate.stat()
        except OSError:
            continue
        if candidate.is_file() and candidate != path:
            known = remembered_links((os.path.abspath(candidate), stat.st_mtime_ns, stat.st_size))
            return known if known is not None else _agent_types_of(str(candidate), stat.st_mtime_ns, stat.st_size)
    return {}


def cache_dependencies(path: Path) -> list[Path]:
    """Other files a Claude Code file's rows depend on, for the parse cache key: the session's subagent
    directory (whether an embedded progress copy is read depends on its files) and, for a subagent file,
    its parent session (which names the agent)."""
    if path.parent.name == "subagents":
        session_dir = path.parent.parent
        return [session_dir.parent / f"{session_dir.name}.jsonl"]
    return [path.parent / path.name.split(".")[0] / "subagents"]


def tenant_of(path: Path | None) -> str | None:
    """The project directory name (`~/.claude/projects/<this>/...`), seen from a session or subagent file."""
    if path is None:
        return None
    directory = path.parent
    if directory.name == "subagents":
        directory = directory.parent.parent
    return directory.name or None


_CALL_MARKERS = (b'"assistant"', b'"progress"', b'"tool_use_id"')
_PLAIN_TYPES = tuple(
    f'"type":"{kind}"'.encode() for kind in ("user", "file-history-snapshot", "summary", "system", "queue-operation")
)


def needs_parsing(raw: bytes) -> bool:
    """The byte-level prefilter: False only for a line that can give no row and end no tool — a whole object
    (`{...}`) of a known record type, without an assistant message, a progress copy or a tool result. Such a
    line (most of a log's bytes are user prompts and tool output) is counted as read without JSON parsing;
    every other line is parsed, so a damaged or unknown line is still a counted skip or note."""
    if _CALL_MARKERS[0] in raw or _CALL_MARKERS[1] in raw or _CALL_MARKERS[2] in raw:
        return True
    if not raw.startswith(b'{"') or not raw.rstrip().endswith(b"}"):
        return True
    return not any(marker in raw for marker in _PLAIN_TYPES)


@dataclass
class _FileState:
    source: InputFile
    ctx: ParseContext
    tenant: str | None
    rows: FileRows = field(default_factory=FileRows)
    task_types: dict[str, str] = field(default_factory=dict)
    """tool_use id of a Task/Agent call -> subagent type."""
    agent_names: dict[str, str] = field(default_factory=dict)
    has_file: dict[str, bool] = field(default_factory=dict)

    def record(self, obj: Any, lineno: int) -> None:
        if not isinstance(obj, dict):
            raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
        kind = obj.get("type")
        if not isinstance(kind, str):
            raise RecordError("not a Claude Code record (no type)")
        if kind == "assistant":
            self.assistant(obj, lineno, agent=self.line_agent(obj))
        elif kind == "progress":
            self.progress(obj, lineno)
        elif kind == "user":
            self.user(obj)
        elif kind not in RECORD_TYPES:
            self.ctx.notes[NOTE_UNKNOWN_TYPE] += 1

    def line_agent(self, obj: dict[str, Any]) -> str:
        agent_id = text_or_none(obj.get("agentId"))
        if agent_id is not None:
            return self.agent_name(agent_id, text_or_none(obj.get("sessionId")))
        return "sidechain" if obj.get("isSidechain") is True else "main"

    def agent_name(self, agent_id: str, session_id: str | None) -> str:
        name = self.agent_names.get(agent_id)
        if name is None:
            name = parent_agent_types(self.source.path, session_id).get(agent_id, agent_id)
            self.agent_names[agent_id] = name
        return name

    def assistant(self, obj: dict[str, Any], lineno: int, *, agent: str) -> None:
        message = obj.get("message")
        if not isinstance(message, dict):
            raise RecordError("assistant record without a message object")
        if message.get("model") == SYNTHETIC_MODEL:
            self.ctx.notes["claude-code: <synthetic> placeholder messages (not calls)"] += 1
            return
        message_id = text_or_none(message.get("id"))
        request_id = text_or_none(obj.get("requestId"))
        key = None if message_id is None else message_id if request_id is None else f"{message_id}:{request_id}"
        tools = tool_uses(message)
        start = timestamp_us(obj.get("timestamp"))
        same = (
            message.get("usage"),
            message.get("model"),
            obj.get("sessionId"),
            obj.get("isSidechain"),
            obj.get("costUSD"),
            agent,
        )
        if key is not None and self.rows.repeat_of_held(key, lineno, start, same):
            at_this_line = {**self.rows.rows[f"call:{key}"], "start": start}
            for use in (tool_row(tool_id, name, at_this_line) for tool_id, name, _ in tools):
                self.rows.offer_tool(use)
            for tool_id, name, tool_input in tools:
                if (kind := subagent_type(name, tool_input)) is not None:
                    self.task_types[tool_id] = kind
            return
        row = call_row(
            message,
            record_key=key,
            trace_id=text_or_none(obj.get("sessionId")),
            start=start,
        )
        row.update(
            source=self.source.name,
            line=lineno,
            format=NAME,
            agent=agent,
            tenant=self.tenant,
            tags=[("sidechain", "true")] if obj.get("isSidechain") is True else None,
            reported_cost_usd=reported_cost(obj.get("costUSD"), "costUSD"),
        )
        self.rows.offer_message(key, row, tools, self.task_types)
        if key is not None and self.rows.rows.get(f"call:{key}") is row:
            self.rows.fingerprints[key] = same

    def progress(self, obj: dict[str, Any], lineno: int) -> None:
        data = obj.get("data")
        if not isinstance(data, dict) or data.get("type") != "agent_progress":
            return
        inner = data.get("message")
        if not isinstance(inner, dict) or inner.get("type") != "assistant":
            return
        message = inner.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("usage"), dict):
            return
        agent_id = text_or_none(data.get("agentId"))
        if agent_id is not None and self.subagent_file_exists(agent_id):
            self.ctx.notes[NOTE_PROGRESS_COPY] += 1
            return
        parent_tool = obj.get("parentToolUseID")
        agent = self.task_types.get(parent_tool) if isinstance(parent_tool, str) else None
        embedded = {
            "message": message,
            "requestId": inner.get("requestId"),
            "sessionId": inner.get("sessionId") or obj.get("sessionId"),
            "timestamp": inner.get("timestamp") or obj.get("timestamp"),
            "isSidechain": True,
        }
        self.assistant(embedded, lineno, agent=agent or agent_id or "subagent")

    def subagent_file_exists(self, agent_id: str) -> bool:
        path = self.source.path
        if path is None or not _SAFE_ID.fullmatch(agent_id):
            return False
        found = self.has_file.get(agent_id)
        if found is None:
            name = f"agent-{agent_id}.jsonl"
            found = _safe_child(path.parent / path.name.split(".")[0] / "subagents", name) or _safe_child(
                path.parent, name
            )
            self.has_file[agent_id] = found
        return found

    def user(self, obj: dict[str, Any]) -> None:
        message = obj.get("message")
        if not isinstance(message, dict):
            return
        ids = tool_results(message)
        if ids:
            end = timestamp_us(obj.get("timestamp"))
            for tool_id in ids:
                self.rows.end_tool(tool_id, end)


class ClaudeCodeParser:
    name = NAME
    description = "Claude Code project logs (~/.claude/projects/*/<session>.jsonl, incl. subagents/)"
    sniffs_first_lines = True
    """Its sniff reads only the first `base.SNIFF_LINES` lines (see `parsers.detect`)."""

    def sniff(self, prefix: bytes) -> bool:
        # Any of the first objects: newer builds may open a file with a record type this list lacks.
        return any(looks_like_project_log(obj) for obj in prefix_objects(prefix))

    def parse(self, source: InputFile, ctx: ParseContext, *, forced: bool) -> Iterator[Piece]:
        state = _FileState(source, ctx, tenant_of(source.path))
        if FAST_PATH:
            fast = parse_fast(state)
            if fast is not None:
                columns, records, notes = fast
                ctx.records[source.name] += records
                ctx.notes.update(notes)
                if columns is not None:
                    yield columns
                return
        for lineno, raw in ctx.lines(source):
            if not needs_parsing(raw):
                continue
            try:
                state.record(load(raw), lineno)
            except orjson.JSONDecodeError as exc:
                ctx.skips.skip(source.name, lineno, json_error(exc))
            except RecordError as exc:
                ctx.skips.skip(source.name, lineno, str(exc))
        if state.rows.merged:
            ctx.notes["claude-code: repeated lines of one response merged"] += state.rows.merged
        if state.rows.rows:
            yield state.rows.in_order()
