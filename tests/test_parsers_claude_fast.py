"""The fast path of the Claude Code parser gives the reference path's table, value for value, or gives up.

The reference (`claude_code`, line by line) is the specification; `claude_fast` must agree with it on every
file it accepts: hand-written fixtures, the shared real recordings and generated logs with repeated lines,
growing output, out-of-order times, tool uses and results, sidechains and logged costs.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costscope import ingest
from costscope.io import InputFile
from costscope.parsers import claude_code
from costscope.parsers.base import ParseContext, Skips
from costscope.parsers.claude_fast import parse_fast

DATA = Path(__file__).parent / "data" / "claude_code"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "claude_code"


def _both(path: Path) -> tuple[ingest.FileResult, ingest.FileResult]:
    results = []
    for fast in (False, True):
        claude_code.FAST_PATH = fast
        claude_code._agent_types_of.cache_clear()
        try:
            results.append(ingest.parse_file(InputFile(str(path), path), "claude-code", strict=False))
        finally:
            claude_code.FAST_PATH = True
    return results[0], results[1]


def _same(reference: ingest.FileResult, fast: ingest.FileResult) -> None:
    assert fast.table.equals(reference.table), _first_difference(reference, fast)
    assert (fast.records, fast.notes, fast.skip_counts, fast.skip_examples) == (
        reference.records,
        reference.notes,
        reference.skip_counts,
        reference.skip_examples,
    )


def _first_difference(reference: ingest.FileResult, fast: ingest.FileResult) -> str:
    if reference.table.num_rows != fast.table.num_rows:
        return f"rows {reference.table.num_rows} != {fast.table.num_rows}"
    for name in reference.table.column_names:
        a, b = reference.table[name].to_pylist(), fast.table[name].to_pylist()
        if a != b:
            row = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
            return f"{name}[{row}]: {a[row]!r} != {b[row]!r}"
    return "schema"


def _accepted(path: Path) -> bool:
    state = claude_code._FileState(InputFile(str(path), path), ParseContext(Skips()), claude_code.tenant_of(path))
    return parse_fast(state) is not None


def _logs(root: Path) -> list[Path]:
    return sorted(root.rglob("*.jsonl")) if root.is_dir() else []


@pytest.mark.parametrize("path", _logs(DATA), ids=lambda p: p.name)
def test_fixtures_read_the_same_either_way(path: Path) -> None:
    _same(*_both(path))


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared fixtures are not beside the checkout")
def test_shared_recordings_read_the_same_either_way() -> None:
    for path in _logs(SHARED):
        _same(*_both(path))


def _stamp(rng: random.Random) -> str:
    seconds = rng.randrange(0, 400)
    return f"2026-03-0{1 + seconds // 200}T10:{(seconds // 60) % 60:02d}:{seconds % 60:02d}.{rng.randrange(1000):03d}Z"


def _session(seed: int) -> Iterator[dict[str, Any]]:
    """A clean-shaped session: responses written over several lines with growing (or shrinking) output, tool uses
    and their results (some before their use, some never), lines without ids, sidechains and logged costs."""
    rng = random.Random(seed)
    tools: list[str] = []
    for n in range(rng.randrange(1, 25)):
        kind = rng.random()
        if kind < 0.65:
            message_id = rng.choice([f"msg_{rng.randrange(6)}", None]) if rng.random() < 0.9 else None
            content: list[dict[str, Any]] = [{"type": "text", "text": "ok"}]
            for _ in range(rng.randrange(0, 3)):
                tool_id = f"toolu_{rng.randrange(8)}"
                tools.append(tool_id)
                content.append({"type": "tool_use", "id": tool_id, "name": rng.choice(["Bash", "Read"]), "input": {}})
            write_1h = rng.randrange(0, 50)
            usage: dict[str, Any] = {
                "input_tokens": rng.randrange(0, 20),
                "cache_creation_input_tokens": write_1h + 7,
                "cache_read_input_tokens": rng.randrange(0, 1000),
                "output_tokens": rng.randrange(0, 40),
                "cache_creation": {"ephemeral_5m_input_tokens": 7, "ephemeral_1h_input_tokens": write_1h},
                "service_tier": rng.choice(["standard", None]),
            }
            record: dict[str, Any] = {
                "type": "assistant",
                "sessionId": "sess-1",
                "isSidechain": rng.random() < 0.2,
                "requestId": rng.choice([f"req_{rng.randrange(3)}", None]),
                "timestamp": rng.choice([_stamp(rng), _stamp(rng), None]),
                "message": {
                    "id": message_id,
                    "model": rng.choice(["claude-sonnet-4-5-20250929", "<synthetic>"]),
                    "type": "message",
                    "role": "assistant",
                    "content": content,
                    "usage": usage,
                },
            }
            if rng.random() < 0.1:
                record["costUSD"] = rng.choice([0, 0.25, 3])
            if rng.random() < 0.1:
                del record["message"]["usage"]
            yield record
        elif kind < 0.9 and tools:
            yield {
                "type": "user",
                "sessionId": "sess-1",
                "timestamp": rng.choice([_stamp(rng), None]),
                "message": {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": rng.choice([*tools, "toolu_other"]), "content": "x" * n}
                    ],
                },
            }
        elif kind < 0.95:
            # a subagent's line copied into the session: a call (read from its file when that exists), or a prompt
            inner_type = rng.choice(["assistant", "user"])
            inner: dict[str, Any] = {"id": f"msg_sub{rng.randrange(4)}", "model": "claude-haiku-4-5-20251001"}
            if inner_type == "assistant" or rng.random() < 0.3:  # a prompt never counts, even with a usage
                inner["usage"] = {
                    "input_tokens": 3,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 9,
                    "output_tokens": rng.randrange(1, 9),
                }
            yield {
                "type": "progress",
                "sessionId": "sess-1",
                "timestamp": _stamp(rng),
                "parentToolUseID": rng.choice(tools or ["toolu_0"]),
                "data": {
                    "type": "agent_progress",
                    "agentId": rng.choice(["sub1", "sub1", "sub2"]),
                    "message": {"type": inner_type, "requestId": "req_s", "timestamp": _stamp(rng), "message": inner},
                },
            }
        else:
            yield rng.choice(
                [
                    {
                        "type": "user",
                        "sessionId": "sess-1",
                        "timestamp": _stamp(rng),
                        "message": {"role": "user", "content": "hi"},
                    },
                    {"type": "system", "subtype": "compact_boundary", "sessionId": "sess-1"},
                    {"type": "file-history-snapshot", "messageId": "m", "snapshot": {}},
                    {"type": "attachment", "sessionId": "sess-1", "attachment": {"kind": "new in a later version"}},
                ]
            )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**9))
def test_generated_sessions_read_the_same_either_way(seed: int, tmp_path: Path) -> None:
    path = tmp_path / "proj" / f"s{seed}.jsonl"
    subagents = path.parent / f"s{seed}" / "subagents"
    subagents.mkdir(parents=True, exist_ok=True)
    (subagents / "agent-sub1.jsonl").write_text("")  # sub1's calls are read from its file, sub2's from the copies
    path.write_text("".join(json.dumps(record) + "\n" for record in _session(seed)))
    _same(*_both(path))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**9), data=st.data())
def test_damaged_sessions_read_the_same_either_way(seed: int, data: st.DataObject, tmp_path: Path) -> None:
    """One line of a generated session damaged: cut short, a stray byte (often invalid UTF-8), a control character
    or a deep nesting put anywhere in it. The fast path gives up or agrees; it never accepts what the reference
    reports as a skip."""
    lines = [json.dumps(record).encode() for record in _session(seed)]
    k = data.draw(st.integers(0, len(lines) - 1))
    raw = lines[k]
    how = data.draw(st.sampled_from(["cut", "byte", "byte in a string", "nest"]))
    if how == "byte in a string":  # just after a quote: inside a key or value, which a decoder may skip unread
        at = data.draw(st.sampled_from([i + 1 for i, c in enumerate(raw) if c == ord('"')]))
    else:
        at = data.draw(st.integers(0, len(raw)))
    if how == "cut":
        raw = raw[:at]
    elif how.startswith("byte"):
        raw = raw[:at] + data.draw(st.sampled_from([b"\xff", b"\xc3", b"\x01", b"\xef\xbb\xbf", b'"', b"}"])) + raw[at:]
    else:
        depth = data.draw(st.integers(900, 1100))
        raw = raw[:at] + b"[" * depth + b"]" * depth + raw[at:]
    lines[k] = raw
    path = tmp_path / "proj" / f"s{seed}.jsonl"
    subagents = path.parent / f"s{seed}" / "subagents"
    subagents.mkdir(parents=True, exist_ok=True)
    (subagents / "agent-sub1.jsonl").write_text("")
    path.write_bytes(b"\n".join(lines) + b"\n")
    _same(*_both(path))


def _linking_session(seed: int) -> Iterator[dict[str, Any]]:
    """Task/Agent calls starting subagents, and the lines that tie each agent to its call: a tool result naming
    the agent (`toolUseResult`, an object or not) and progress lines of every shape (`data` an object or not)."""
    rng = random.Random(seed)
    calls: list[str] = []
    for n in range(rng.randrange(1, 20)):
        kind = rng.random()
        stamp = _stamp(rng)
        if kind < 0.35:
            tool_id = f"toolu_{n}"
            calls.append(tool_id)
            name = rng.choice(["Task", "Agent", "Bash"])
            tool_input = rng.choice([{"subagent_type": rng.choice(["Explore", "Plan", ""])}, {"prompt": "x"}, "x", 3])
            yield {
                "type": "assistant",
                "sessionId": "s",
                "requestId": f"req_{n}",
                "timestamp": stamp,
                "message": {
                    "id": f"msg_{n}",
                    "model": "claude-sonnet-4-5-20250929",
                    "content": [{"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}],
                    "usage": {
                        "input_tokens": 1,
                        "output_tokens": 2,
                        "cache_read_input_tokens": 0,
                        "cache_creation_input_tokens": 0,
                    },
                },
            }
        elif kind < 0.65 and calls:
            record: dict[str, Any] = {
                "type": "user",
                "sessionId": "s",
                "timestamp": stamp,
                "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": rng.choice(calls)}]},
            }
            record["toolUseResult"] = rng.choice(
                [{"agentId": rng.choice(["a1", "a2", "a3"]), "content": [{"type": "text"}]}, "done", [1], 7, None]
            )
            yield record
        else:
            yield {
                "type": "progress",
                "sessionId": "s",
                "timestamp": stamp,
                "parentToolUseID": rng.choice([*calls, None]),
                "data": rng.choice(
                    [
                        {"type": "agent_progress", "agentId": rng.choice(["a1", "a2", "a3"]), "message": "text"},
                        {"type": "hook_progress", "hookName": "h", "message": {"type": "user", "message": 3}},
                        {"type": "bash_progress", "output": "ok"},
                        "a string",
                        [1, 2],
                    ]
                ),
            }


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**9))
def test_a_session_tells_its_subagents_types_the_same_either_way(seed: int, tmp_path: Path) -> None:
    from costscope.parsers import claude_fast

    path = tmp_path / "p" / f"s{seed}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in _linking_session(seed)))
    assert _accepted(path)  # and it remembered the links it read
    identity = claude_fast.file_identity(path)
    assert identity is not None
    stat = path.stat()
    assert claude_fast.remembered_links(identity) == claude_code._agent_types_of(
        str(path), stat.st_mtime_ns, stat.st_size
    )
    _same(*_both(path))


def test_the_fast_path_takes_clean_files_and_leaves_the_rest(tmp_path: Path) -> None:
    clean = tmp_path / "p" / "clean.jsonl"
    clean.parent.mkdir()
    clean.write_text("".join(json.dumps(record) + "\n" for record in _session(3)))
    assert _accepted(clean)
    # a message that is not an object, where no call is read from it: read as the reference does, without giving up
    tolerated = tmp_path / "p" / "tolerated.jsonl"
    extra = [
        {"type": "system", "sessionId": "sess-1", "message": "conversation compacted"},
        {"type": "user", "sessionId": "sess-1", "message": ["a", "list"]},
        {"type": "queue-operation", "message": 7},
    ]
    tolerated.write_text(clean.read_text() + "".join(json.dumps(record) + "\n" for record in extra))
    assert _accepted(tolerated)
    _same(*_both(tolerated))
    usage = '"output_tokens": 1, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0'
    for damage in [
        # invalid UTF-8 in a string no parser reads (msgspec skips it unchecked)
        '{"type": "assistant", "message": {"id": "m9", "content": [{"type": "text", "text": "\udcff"}]}}',
        '{"type": "assistant", "message": {"id": "m"',
        '{"type": 7}',
        "[1, 2]",
        # values of a type or range the typed decoding does not take
        '{"type": "assistant", "message": {"id": "m", "usage": {"input_tokens": true, ' + usage + "}}}",
        '{"type": "assistant", "message": {"id": "m", "usage": {"input_tokens": 2.0, ' + usage + "}}}",
        '{"type": "assistant", "message": {"id": "m", "usage": {' + usage + "}}}",
        '{"type": "assistant", "costUSD": -1, "message": {"id": "m"}}',
        '{"type": "assistant", "message": {"id": "m", "content": [{"type": "tool_use", "id": 5}]}}',
        # nesting deeper than the decoders go, in a field nobody reads
        '{"type": "user", "x": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"type": "user", "x": ' + "[" * 1010 + "]" * 1010 + "}",  # deeper than msgspec goes, not orjson
        # times not in toISOString form: other digits than ASCII, a line break inside
        '{"type": "assistant", "timestamp": "\u0662\u0660\u0662\u0666-03-01T10:00:00.000Z", "message": {"id": "m"}}',
        '{"type": "assistant", "timestamp": "2026-03-01T10:00:00.000Z\\n", "message": {"id": "m"}}',
        # a subagent's call inside a progress line with no agent id: a row only the reference path makes
        '{"type": "progress", "data": {"type": "agent_progress", "message": {"type": "assistant", "message": '
        '{"id": "m9", "usage": {"input_tokens": 1, ' + usage + "}}}}}",
    ]:
        damaged = tmp_path / "p" / "damaged.jsonl"
        damaged.write_bytes((clean.read_text() + damage + "\n").encode("utf-8", "surrogateescape"))
        assert not _accepted(damaged)
        _same(*_both(damaged))
