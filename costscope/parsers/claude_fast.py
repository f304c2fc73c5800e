"""The fast path of the Claude Code parser: a clean log file read into columns, merged in one pass per file.

`claude_code` holds the reference semantics, line by line, as row dicts. This module reads the same lines into
plain column lists (no dict per row; the rows of a chunk of files become Arrow at once) and merges them in one
pass: the row of one (`message.id`, `requestId`) is its last line with the most output, starting at the earliest
line that was the most output so far; a `tool_use` block gives a tool row at its first line, ended by the first
later `tool_result` that is not before it. The rows come in the reference order (the calls, then the tools, each in
order of first appearance), so the table is the reference table, value for value.

Two implementations of the reading and merging, one behaviour:
- `_claude_scan` (C, built at install where a C compiler is): blocks of lines are scanned without building
  anything for the bytes not read, into C records of the calls, tool uses and tool results (`Lines`: no Python
  object per line), and merged (a C hash table per file for the call keys and tool ids) into rows held as Arrow
  buffers for a whole chunk of files (`_Held`; a file's piece is a `Slice` of them), a third of the time of the
  Python path or less;
- otherwise `_read` decodes each line into typed records (`claude_records`, msgspec: the fields not read are
  skipped, not built) and `_table` merges them.
The tests hold both to the reference path and to each other.

It covers the shape Claude Code writes (record types newer than this parser are counted, as the reference does)
and gives up (returns None) on anything else: a malformed line, a record without a type, a read error, a value of
an unexpected type, a usage that the full check must judge, a timestamp not in JavaScript's `toISOString` form
(`YYYY-MM-DDTHH:MM:SS.sssZ`), or a subagent call embedded in a progress line with no subagent file to read it
from. The caller then parses the file with the reference path, which explains every skip. The scanner gives up on
a little more (an escaped text where a value is read, a repeated key, an escaped surrogate, a number past 1e99 or
nesting past 200 levels): files Claude Code does not write.

One known difference of the Python path: a number too large for a double (`1e999`) in a field neither path reads
is skipped by its decoder, while the reference path's JSON parser rejects the line (JavaScript's `JSON.stringify`,
which writes these logs, never writes one). The scanner gives such a file to the reference path.
"""

from __future__ import annotations

import os
import re
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import pyarrow as pa

from ..io import InputFile, ReadError, iter_blocks, iter_lines
from ..schema import STEP_SCHEMA, Kind, UsageSource, nulls
from .base import Columns, Slice
from .claude_records import (
    Message,
    Progress,
    ProgressCall,
    ProgressMessage,
    TaskInput,
    ToolUseResult,
    Usage,
    decode_line,
)

if TYPE_CHECKING:
    from .claude_code import _FileState

try:
    from ._claude_scan import Lines as _Lines
    from ._claude_scan import Rows as _Rows
    from ._claude_scan import merge as _merge
    from ._claude_scan import scan as _scan
except ImportError:  # not built (no C compiler at install): the Python loop reads the lines, `_table` merges them
    _scan = _merge = _Rows = _Lines = None

_ISO_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
"""The timestamps Claude Code writes (JavaScript's `toISOString`): of one width, so they compare as times do.
ASCII digits only (`\\d` would take any script's digits, which Arrow cannot read as a time)."""
_EPOCH = "1970-01-01T00:00:00.000Z"
_TAGS_SIDECHAIN = [("sidechain", "true")]


class _GiveUp(Exception):
    pass


class _Columns:
    """One list per field of the assistant lines kept, and of the tool uses and tool results seen."""

    def __init__(self) -> None:
        self.line: list[int] = []
        self.message_id: list[str | None] = []
        self.request_id: list[str | None] = []
        self.model: list[str | None] = []
        self.session: list[str | None] = []
        self.agent_id: list[str | None] = []
        """The line's `agentId` (None when empty), named into `agent` by `_table` (by the scanner's merge itself)."""
        self.agent: list[str] = []
        self.sidechain: list[bool] = []
        self.cost: list[float | None] = []
        self.timestamp: list[str | None] = []
        self.tier: list[str | None] = []
        self.tokens: list[tuple[int, int, int, int | None, int] | None] = []
        """(uncached input, cache read, cache write, 1h write, output) or None without usage."""
        self.tool_at: list[int] = []
        """Index (into the lists above) of the line holding each tool use."""
        self.tool_id: list[str] = []
        self.tool_name: list[str | None] = []
        self.result_line: list[int] = []
        self.result_id: list[str] = []
        self.result_time: list[str | None] = []
        self.links: list[tuple[str, str]] = []
        """(agentId, id of the tool call that started the agent), in line order (see `claude_code.collect_links`)."""
        self.tasks: list[tuple[str, str]] = []
        """(tool call id, subagent type) of each Task/Agent call naming the type of subagent it starts."""
        self.progress_agents: list[str] = []
        """The agentId of each progress line copying a subagent's call (a copy only if its subagent file exists)."""
        self.lines: Any = None
        """What the compiled scanner read (a `_claude_scan.Lines`), in place of the lists above but the last three:
        its calls, tool uses and results stay in C until merged (`lines.lists(cols.scanned())` fills the lists)."""

    def rare(self) -> tuple[list[Any], ...]:
        """The lists the compiled scanner appends to (what `parse_fast` itself reads), in its order."""
        return self.links, self.tasks, self.progress_agents

    def scanned(self) -> tuple[list[Any], ...]:
        """The lists `_read` appends to, in the order of `_claude_scan.Lines.lists` (the last three: `rare`)."""
        return (
            self.line,
            self.message_id,
            self.request_id,
            self.model,
            self.session,
            self.agent_id,
            self.sidechain,
            self.cost,
            self.timestamp,
            self.tier,
            self.tokens,
            self.tool_at,
            self.tool_id,
            self.tool_name,
            self.result_line,
            self.result_id,
            self.result_time,
            self.links,
            self.tasks,
            self.progress_agents,
        )


def _tokens(usage: Usage) -> tuple[int, int, int, int | None, int]:
    write = usage.cache_creation_input_tokens
    write_1h = None
    split = usage.cache_creation
    if split is not None:
        five, write_1h = split.ephemeral_5m_input_tokens, split.ephemeral_1h_input_tokens
        if five is None and write_1h is None:
            raise _GiveUp
        if (five or 0) + (write_1h or 0) != write:
            raise _GiveUp
    return usage.input_tokens, usage.cache_read_input_tokens, write, write_1h, usage.output_tokens


def parse_fast(state: _FileState) -> tuple[Columns | Slice | None, int, Counter[str]] | None:
    """(rows, records read, notes) of a clean file, or None when the reference path must read it."""
    from .claude_code import NOTE_PROGRESS_COPY, NOTE_UNKNOWN_TYPE, linked_types

    cols = _Columns()
    read = _read_native(state.source, cols, _scan) if _scan is not None else _read(state.source, cols)
    if read is None:
        return None
    records, synthetic, unknown = read
    notes: Counter[str] = Counter()
    if synthetic:
        notes["claude-code: <synthetic> placeholder messages (not calls)"] += synthetic
    for agent_id in dict.fromkeys(cols.progress_agents):
        if not state.subagent_file_exists(agent_id):
            return None  # an embedded call that becomes a row: left to the reference path
    if cols.progress_agents:
        notes[NOTE_PROGRESS_COPY] += len(cols.progress_agents)
    if unknown:
        notes[NOTE_UNKNOWN_TYPE] += unknown  # record types newer than this parser: no row, as in the reference
    try:
        table = _merged(state, cols, notes) if _scan is not None else _table(state, cols, notes)
    except _GiveUp:
        return None
    identity = file_identity(state.source.path)
    if identity is not None:
        task_types = dict(cols.tasks)  # what the session says of its subagents (see `claude_code.collect_links`)
        agent_tool: dict[str, str] = {}
        for agent_id, tool_id in cols.links:
            agent_tool.setdefault(agent_id, tool_id)
        remember_links(identity, linked_types(task_types, agent_tool))
    return table, records, notes


Scan = Callable[[bytes | memoryview, int, Any, tuple[list[Any], ...]], tuple[int, int, int, int] | None]


def _read_native(source: InputFile, cols: _Columns, scan: Scan) -> tuple[int, int, int] | None:
    """(records, `<synthetic>` messages, records of unknown types) read by the compiled scanner into `cols`."""
    cols.lines = lines = _Lines()
    rare = cols.rare()
    lineno = source.first_line - 1
    records = synthetic = unknown = 0
    try:
        for block in iter_blocks(source):
            counted = scan(block, lineno, lines, rare)
            if counted is None:
                return None
            lineno = counted[0]
            records += counted[1]
            synthetic += counted[2]
            unknown += counted[3]
    except (OSError, EOFError):
        return None  # the reference path reports where the file stopped being readable
    return records, synthetic, unknown


def _read(source: InputFile, cols: _Columns) -> tuple[int, int, int] | None:
    """What `_read_native` reads, line by line in Python: the path where the scanner is not built."""
    from .claude_code import SYNTHETIC_MODEL, started_type

    records = synthetic = unknown = 0
    failed: list[ReadError] = []
    line_numbers, tool_at, tool_id_of, tool_name_of = cols.line, cols.tool_at, cols.tool_id, cols.tool_name
    for lineno, raw in iter_lines(source, failed.append):
        records += 1
        try:
            if not raw.isascii():
                raw.decode()  # msgspec does not check the UTF-8 of the strings it skips; the reference does
            record = decode_line(raw)
        except (UnicodeDecodeError, msgspec.DecodeError, RecursionError):  # msgspec raises RecursionError
            return None  # past ~1,000 levels of nesting
        kind = record.type
        message = record.message
        if kind == "assistant":
            if type(message) is not Message:
                return None
            content = message.content
            if type(content) is list:
                for block in content:  # the subagent types its Task/Agent calls start
                    if type(block.input) is TaskInput and block.id is not None:
                        subagent = started_type(block.name, block.input.subagent_type)
                        if subagent is not None:
                            cols.tasks.append((block.id, subagent))
            model = message.model
            if model == SYNTHETIC_MODEL:
                synthetic += 1
                continue
            usage = message.usage
            if usage is None:
                cols.tokens.append(None)
                cols.tier.append(None)
            else:
                try:
                    cols.tokens.append(_tokens(usage))
                except _GiveUp:
                    return None
                tier = usage.service_tier
                cols.tier.append(tier if type(tier) is str else None)
            line_numbers.append(lineno)
            cols.message_id.append(message.id or None)
            cols.request_id.append(record.requestId or None)
            cols.model.append(model or None)
            cols.session.append(record.sessionId or None)
            cols.agent_id.append(record.agentId or None)
            cols.sidechain.append(record.isSidechain is True)
            cols.cost.append(record.costUSD)
            cols.timestamp.append(record.timestamp or None)
            if type(content) is list:
                for block in content:
                    if block.type == "tool_use" and block.id:
                        tool_at.append(len(line_numbers) - 1)
                        tool_id_of.append(block.id)
                        tool_name_of.append(block.name or None)
        elif kind == "user":
            if type(message) is not Message or type(content := message.content) is not list:
                continue
            ids = [
                block.tool_use_id
                for block in content
                if block.type == "tool_result" and type(block.tool_use_id) is str and block.tool_use_id
            ]
            if not ids:
                continue
            stamp = record.timestamp or None
            for tool_id in ids:
                cols.result_line.append(len(line_numbers))
                cols.result_id.append(tool_id)
                cols.result_time.append(stamp)
            result = record.toolUseResult
            if type(result) is ToolUseResult and type(result.agentId) is str:
                cols.links.append((result.agentId, ids[0]))
        elif kind == "progress":
            data = record.data
            if type(data) is not Progress:
                continue
            if type(data.agentId) is str and type(record.parentToolUseID) is str:
                cols.links.append((data.agentId, record.parentToolUseID))
            copy = _progress(data)
            if copy is False:
                return None
            if copy:
                cols.progress_agents.append(data.agentId)
        elif kind is None:
            return None  # the reference path explains it as a skip
        elif kind not in _KNOWN:
            unknown += 1
    return None if failed else (records, synthetic, unknown)


_KNOWN = frozenset({"system", "summary", "file-history-snapshot", "queue-operation", "assistant", "user", "progress"})


_REMEMBERED: dict[tuple[str, int, int], dict[str, str]] = {}
_REMEMBER_AT_MOST = 1024


def file_identity(path: Path | None) -> tuple[str, int, int] | None:
    """(absolute path, mtime_ns, size) of a file, the key under which its subagent links are remembered."""
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return os.path.abspath(path), stat.st_mtime_ns, stat.st_size


def remember_links(identity: tuple[str, int, int], agent_types: dict[str, str]) -> None:
    """Keep a parsed session's subagent types, so that its subagent files need not read it again."""
    if len(_REMEMBERED) >= _REMEMBER_AT_MOST:
        _REMEMBERED.clear()
    _REMEMBERED[identity] = agent_types


def remembered_links(identity: tuple[str, int, int]) -> dict[str, str] | None:
    return _REMEMBERED.get(identity)


def _progress(data: Progress) -> bool | None:
    """What the reference path makes of a progress line: None for none of its business (not a subagent's call
    with usage: hooks, a subagent's prompts and tool results), True for a subagent's call (a copy when the
    subagent's file exists, which the caller checks), False for one without an agentId (left to the reference
    path)."""
    if data.type != "agent_progress":
        return None
    inner = data.message
    if type(inner) is not ProgressMessage or inner.type != "assistant":
        return None
    message = inner.message
    if type(message) is not ProgressCall or type(message.usage) is not dict:
        return None
    agent_id = data.agentId
    return type(agent_id) is str and bool(agent_id)


def _table(state: _FileState, cols: _Columns, notes: Counter[str]) -> Columns | None:
    name = state.agent_name
    cols.agent = [
        name(agent_id, session) if agent_id else "sidechain" if sidechain else "main"
        for agent_id, session, sidechain in zip(cols.agent_id, cols.session, cols.sidechain, strict=True)
    ]
    _check_times(cols.timestamp)
    stamps = cols.timestamp
    # call slots, one per key: [most output so far, line index held, earliest start of the held lines, first line]
    calls: dict[Any, list[Any]] = {}
    merged = 0
    triples = zip(cols.message_id, cols.request_id, cols.tokens, strict=True)
    for i, (message_id, request_id, tokens) in enumerate(triples):
        key: Any = i if message_id is None else message_id if request_id is None else f"{message_id}:{request_id}"
        output = tokens[4] if tokens is not None else 0
        begin = stamps[i]
        held = calls.get(key)
        if held is None:
            calls[key] = [output, i, begin, i]
            continue
        merged += 1
        if output >= held[0]:
            held[0], held[1] = output, i
            if begin is not None and (held[2] is None or begin < held[2]):
                held[2] = begin
    if merged:
        notes["claude-code: repeated lines of one response merged"] += merged

    tool_first: dict[str, int] = {}
    for t, tool_id in enumerate(cols.tool_id):
        tool_first.setdefault(tool_id, t)
    tool_end: dict[str, str] = {}
    _check_times(cols.result_time)  # every result's, as the reference reads each (an unmatched one too)
    if cols.result_id and tool_first:
        for at, tool_id, end in zip(cols.result_line, cols.result_id, cols.result_time, strict=True):
            first = tool_first.get(tool_id)
            if first is None or tool_id in tool_end or end is None or cols.tool_at[first] >= at:
                continue
            begin = stamps[cols.tool_at[first]]
            # as the reference: a tool without a start (or starting at 0 µs) ends at its result
            if (begin if begin is not None and begin != _EPOCH else end) <= end:
                tool_end[tool_id] = end

    # the reference order: the calls, then the tools, each in order of first appearance
    held_calls = list(calls.values())
    tools = list(tool_first.values())
    if not held_calls and not tools:
        return None
    return _columns(state, cols, held_calls, tools, tool_end)


def _merged(state: _FileState, cols: _Columns, notes: Counter[str]) -> Slice | None:
    """`_table` done by the compiled module, for the lists its scanner read: the rows go to this thread's held rows
    (`_Held.current`) as Arrow buffers, and the file's piece is its slice of them."""
    held = _Held.current()
    try:
        done = _merge(cols.lines, state.agent_name, "main", "sidechain", held.rows, state.source.name, state.tenant)
    except OverflowError:  # one file with more than 2 GiB of ids and names: the reference path reads it
        raise _GiveUp from None
    if done is None:
        raise _GiveUp
    merged, start, stop = done
    if merged:
        notes["claude-code: repeated lines of one response merged"] += merged
    return Slice(held, start, stop) if stop > start else None


class _Held:
    """The rows merged since the last `batch` (an epoch) by one thread; a file's piece is a slice of its epoch's
    rows. `batch` takes the rows asked for, in the order asked (one copy, in C), and the next file starts a new
    epoch."""

    def __init__(self, rows: Any) -> None:
        self.rows = rows
        self.taken = False

    @staticmethod
    def current() -> _Held:
        held: _Held | None = getattr(_THREAD, "held", None)
        if held is None or held.taken or held.rows.text_bytes() > EPOCH_TEXT_BYTES:
            held = _THREAD.held = _Held(_Rows())
        return held

    def batch(self, ranges: list[tuple[int, int]]) -> pa.RecordBatch:
        if self.taken:
            raise RuntimeError("the rows of these files were made into a batch already")
        self.taken = True
        count, parts = self.rows.take(ranges)
        return _batch(count, parts)


EPOCH_TEXT_BYTES = 1 << 30
"""An epoch whose largest text column passed this starts anew: Arrow's string offsets hold up to 2 GiB."""

_THREAD = threading.local()
"""Each thread's current `_Held` (threads that parse at once do not share one)."""


def _batch(count: int, parts: dict[str, tuple[bytes | None, bytes, bytes | None]]) -> pa.RecordBatch:
    """A STEP_SCHEMA batch of the buffers `Rows.take` gives."""
    arrays = []
    for f in STEP_SCHEMA:
        part = parts.get(f.name)
        if f.name == "tags":
            arrays.append(_sidechain_tags(np.frombuffer(parts["sidechain"][1], dtype=np.bool_)))
        elif part is None:
            arrays.append(nulls(count, f.type))
        else:
            valid, data, offsets = part
            buffers = [None if valid is None else pa.py_buffer(valid)]
            buffers += [pa.py_buffer(offsets)] if offsets is not None else []
            arrays.append(pa.Array.from_buffers(f.type, count, [*buffers, pa.py_buffer(data)]))
    return pa.RecordBatch.from_arrays(arrays, schema=STEP_SCHEMA)


def _sidechain_tags(sidechain: np.ndarray) -> pa.Array:
    """`tags` of rows: `{"sidechain": "true"}` where `sidechain`, else null (as `_TAGS_SIDECHAIN` converts)."""
    offsets = np.zeros(len(sidechain) + 1, dtype=np.int32)
    np.cumsum(sidechain, out=offsets[1:])
    first = pa.array(np.zeros(int(offsets[-1]), dtype=np.int32))  # each sidechain row's one entry
    ((key, item),) = _TAGS_SIDECHAIN
    keys, items = pa.array([key]).take(first), pa.array([item]).take(first)
    tags = pa.MapArray.from_arrays(pa.array(offsets), keys, items, mask=pa.array(~sidechain))
    return tags.cast(STEP_SCHEMA.field("tags").type)


def _constants(state: _FileState, values: dict[str, list[Any]]) -> Columns:
    """The rows with the columns of one value per file (source, format, tenant), in the order of `_columns`."""
    rows = len(values["line"])
    return Columns(
        {
            "source": [state.source.name] * rows,
            "format": ["claude-code"] * rows,
            "tenant": [state.tenant] * rows,
            **values,
        },
        rows,
        iso_times=("start", "end"),
    )


def _check_times(values: list[str | None]) -> None:
    match = _ISO_UTC.fullmatch
    if not all(v is None or (match(v) and _real_time(v)) for v in values):
        raise _GiveUp


def _real_time(text: str) -> bool:
    """Whether an ISO time of the right form names a real time (2026-02-30 does not): Arrow would fail on it."""
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _columns(
    state: _FileState,
    cols: _Columns,
    held_calls: list[list[Any]],
    tools: list[int],
    tool_end: dict[str, str],
) -> Columns:
    """Call rows then tool rows, column by column."""
    chosen = [held[1] for held in held_calls]
    at = [cols.tool_at[t] for t in tools]
    tokens = [cols.tokens[i] for i in chosen]
    ids = [cols.tool_id[t] for t in tools]
    no_tools = [None] * len(tools)

    def both(call_values: list[Any], tool_values: list[Any]) -> list[Any]:
        return call_values + tool_values

    def token(position: int) -> list[Any]:
        return [u[position] if u is not None else None for u in tokens]

    values: dict[str, list[Any]] = {
        "line": both([cols.line[i] for i in chosen], [cols.line[i] for i in at]),
        "record_id": both(
            [
                None
                if cols.message_id[i] is None
                else cols.message_id[i]
                if cols.request_id[i] is None
                else f"{cols.message_id[i]}:{cols.request_id[i]}"
                for i in chosen
            ],
            ids,
        ),
        "trace_id": both([cols.session[i] for i in chosen], [cols.session[i] for i in at]),
        "span_id": both([cols.message_id[i] for i in chosen], ids),
        "parent_id": both([None] * len(chosen), [cols.message_id[i] for i in at]),
        "kind": both([_LLM] * len(chosen), [_TOOL] * len(tools)),
        "agent": both([cols.agent[i] for i in chosen], [cols.agent[i] for i in at]),
        "tool": both([None] * len(chosen), [cols.tool_name[t] for t in tools]),
        "tags": both(
            [_TAGS_SIDECHAIN if cols.sidechain[i] else None for i in chosen],
            [_TAGS_SIDECHAIN if cols.sidechain[i] else None for i in at],
        ),
        "start": both([held[2] for held in held_calls], [cols.timestamp[i] for i in at]),
        "end": both([None] * len(chosen), [tool_end.get(tool_id) for tool_id in ids]),
        "provider": both(["anthropic"] * len(chosen), no_tools),
        "model": both([cols.model[i] for i in chosen], no_tools),
        "service_tier": both([t if type(t := cols.tier[i]) is str else None for i in chosen], no_tools),
        "input_tokens": both([u[0] + u[1] + u[2] if u is not None else None for u in tokens], no_tools),
        "cache_read_tokens": both(token(1), no_tools),
        "cache_write_tokens": both(token(2), no_tools),
        "cache_write_1h_tokens": both(token(3), no_tools),
        "output_tokens": both(token(4), no_tools),
        "usage_source": both([_REPORTED if u is not None else None for u in tokens], no_tools),
        "reported_cost_usd": both([cols.cost[i] for i in chosen], no_tools),
    }
    return _constants(state, values)


_LLM, _TOOL = Kind.LLM.value, Kind.TOOL.value
_REPORTED = UsageSource.REPORTED.value
