"""The fast path of the Claude Code parser gives the reference path's table, value for value, or gives up.

The reference (`claude_code`, line by line) is the specification; `claude_fast` must agree with it on every
file it accepts: hand-written fixtures, the shared real recordings and generated logs with repeated lines,
growing output, out-of-order times, tool uses and results, sidechains and logged costs.
"""

from __future__ import annotations

import json
import random
import shutil
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from costscope import ingest
from costscope.io import InputFile
from costscope.parsers import claude_code, claude_fast
from costscope.parsers.base import ParseContext, Skips
from costscope.parsers.claude_fast import parse_fast

DATA = Path(__file__).parent / "data" / "claude_code"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "claude_code"


NATIVE = claude_fast._scan is not None
"""Whether the compiled scanner is built (it is wherever the install had a C compiler)."""


@contextmanager
def _reader(native: bool) -> Iterator[None]:
    """The fast path with the compiled scanner (native) or with its Python loop."""
    built = claude_fast._scan
    claude_fast._scan = built if native else None
    try:
        yield
    finally:
        claude_fast._scan = built


def _parse(path: Path, *, fast: bool) -> ingest.FileResult:
    claude_code.FAST_PATH = fast
    claude_code._agent_types_of.cache_clear()
    try:
        return ingest.parse_file(InputFile(str(path), path), "claude-code", strict=False)
    finally:
        claude_code.FAST_PATH = True


def _both(path: Path) -> tuple[ingest.FileResult, ingest.FileResult]:
    """(reference, fast) results; the fast path's with the Python loop, and the same with the scanner."""
    reference = _parse(path, fast=False)
    with _reader(native=False):
        fast = _parse(path, fast=True)
    if NATIVE:
        _same(fast, _parse(path, fast=True))
    return reference, fast


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


def _accepted(path: Path, *, native: bool = NATIVE) -> bool:
    with _reader(native):
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
                name = rng.choice(["Bash", "Read", "", None])
                content.append({"type": "tool_use", "id": tool_id, "name": name, "input": {}})
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
        # times of the right form that name no time: Arrow cannot read them, the reference path skips their lines
        '{"type": "assistant", "timestamp": "2026-02-30T10:00:00.000Z", "message": {"id": "m"}}',
        '{"type": "assistant", "timestamp": "0000-01-01T10:00:00.000Z", "message": {"id": "m"}}',
        '{"type": "assistant", "timestamp": "2026-01-01T24:00:00.000Z", "message": {"id": "m"}}',
        '{"type": "user", "timestamp": "2026-01-01T10:60:00.000Z", "message": {"content": [{"type": "tool_result", '
        '"tool_use_id": "toolu_1"}]}}',
        # a subagent's call inside a progress line with no agent id: a row only the reference path makes
        '{"type": "progress", "data": {"type": "agent_progress", "message": {"type": "assistant", "message": '
        '{"id": "m9", "usage": {"input_tokens": 1, ' + usage + "}}}}}",
    ]:
        damaged = tmp_path / "p" / "damaged.jsonl"
        damaged.write_bytes((clean.read_text() + damage + "\n").encode("utf-8", "surrogateescape"))
        assert not _accepted(damaged)
        _same(*_both(damaged))


# ---- the compiled scanner against the Python loop it replaces


def _read_both(data: bytes) -> tuple[tuple[Any, ...] | None, tuple[Any, ...] | None]:
    """What the Python loop and the scanner read of `data`: (counts, columns) each, or None for giving up."""
    results = []
    for native in (False, True):
        cols = claude_fast._Columns()
        source = InputFile("mem.jsonl", None, data)
        read = claude_fast._read_native(source, cols, claude_fast._scan) if native else claude_fast._read(source, cols)
        if native and read is not None:
            cols.lines.lists(cols.scanned())  # what the scanner holds in C, as the Python loop's lists
        results.append(None if read is None else (read, repr(cols.scanned())))
    return results[0], results[1]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
_ODD_TEXT = st.sampled_from(["", "é", "a\\u00e9", "😀", "tool_use", "tool_result", "assistant", "agent_progress"])
_ODD_VALUES = st.sampled_from([-1, 0, 1.0, 1e3, 2**40, 2**40 + 1, 10**30, "5", True, None, [], {}, "x"])


def _paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*at, index))


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _mutated(record: Any, data: st.DataObject) -> bytes:
    """A record with one value replaced, one key repeated or one byte put in, written as JSON (sometimes with its
    non-ASCII escaped, which makes surrogate pairs of emoji)."""
    how = data.draw(st.sampled_from(["value", "odd value", "odd text", "repeat key", "byte", "none"]))
    paths = [p for p in _paths(record) if p]
    if how == "odd text":  # in place of a text: the values read are texts
        paths = [p for p in paths if isinstance(_at(record, p), str)]
    if how in ("value", "odd value", "odd text") and paths:
        path = data.draw(st.sampled_from(paths))
        holder = record
        for step in path[:-1]:
            holder = holder[step]
        new = data.draw(_JSON if how == "value" else _ODD_VALUES if how == "odd value" else _ODD_TEXT)
        holder[path[-1]] = new
    raw = json.dumps(record, ensure_ascii=data.draw(st.booleans())).encode()
    if how == "repeat key" and raw.startswith(b"{"):
        key = data.draw(st.sampled_from(["type", "message", "requestId", "timestamp", "data", "other"]))
        raw = b'{"' + key.encode() + b'": ' + json.dumps(data.draw(_JSON)).encode() + b", " + raw[1:]
    elif how == "byte":
        at = data.draw(st.integers(0, len(raw)))
        raw = (
            raw[:at]
            + data.draw(st.sampled_from([b"\xff", b"\xc3", b"\x01", b"\\", b'"', b"}", b" ", b"\r"]))
            + raw[at:]
        )
    return raw


@pytest.mark.skipif(not NATIVE, reason="the compiled scanner is not built (no C compiler at install)")
@settings(max_examples=400, deadline=None)
@given(seed=st.integers(0, 10**9), data=st.data())
def test_the_scanner_reads_what_the_python_loop_reads(seed: int, data: st.DataObject) -> None:
    """Real-shaped lines with one value of another type, text or number, a repeated key or a stray byte: the
    scanner gives up, or reads exactly what the Python loop reads (it may give up where the loop does not: escaped
    text in a field read, a repeated key, an escaped surrogate, a number past 1e99)."""
    records = [*_session(seed), *_linking_session(seed)]
    lines = [json.dumps(r).encode() for r in records]
    for _ in range(data.draw(st.integers(1, 3))):
        k = data.draw(st.integers(0, len(lines) - 1))
        lines[k] = _mutated(records[k], data)
    loop, native = _read_both(b"\n".join(lines) + b"\n")
    event("both read it" if native else "both gave up" if loop is None else "only the scanner gave up")
    if native is not None:
        assert native == loop
    else:
        assert loop is None or _stricter(b"\n".join(lines))


def _stricter(data: bytes) -> bool:
    """Whether `data` holds what the scanner alone gives up on."""
    repeated = any(len(keys) != len(set(keys)) for line in data.splitlines() for keys in _object_keys(line))
    return repeated or b"\\" in data or b"e+" in data or b"e-" in data or b"e1" in data or b"E" in data


def _object_keys(line: bytes) -> Iterator[list[str]]:
    found: list[list[str]] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        found.append([key for key, _ in items])
        return dict(items)

    try:
        json.loads(line, object_pairs_hook=pairs)
    except ValueError:
        return iter([])
    return iter(found)


@pytest.mark.skipif(not NATIVE, reason="the compiled scanner is not built (no C compiler at install)")
def test_the_scanner_gives_up_on_what_it_is_not_sure_of() -> None:
    usage = (
        '"usage": {"input_tokens": 1, "output_tokens": 2, "cache_read_input_tokens": 0, '
        '"cache_creation_input_tokens": 0}'
    )
    good = '{"type": "assistant", "requestId": "r", "message": {"id": "m", "model": "claude-x", ' + usage + "}}"
    loop, native = _read_both(good.encode() + b"\n")
    assert native is not None and native == loop
    for line in [
        good.replace('"id": "m"', '"id": "\\u006d"'),  # an escape in a value read
        good.replace('"requestId"', '"request\\u0049d"'),  # an escape in a key
        good.replace('"model"', '"x": "\\ud83d\\ude00", "model"'),  # a surrogate pair, even unread
        good.replace('"requestId": "r"', '"requestId": "r", "requestId": "s"'),  # a field given twice
        good.replace('"model"', '"x": 1e100, "model"'),  # a number that could overflow a double
        good.replace('"model"', '"x": ' + "[" * 201 + "]" * 201 + ', "model"'),  # deeper than the scanner goes
    ]:
        loop, native = _read_both(line.encode() + b"\n")
        assert native is None, line
    # the Python loop reads most of these; both give the reference path the ones it must judge
    loop, native = _read_both(good.replace('"output_tokens": 2', '"output_tokens": 2.5').encode())
    assert loop is None and native is None


def test_the_scanner_is_built_where_a_c_compiler_is() -> None:
    """The install builds the scanner when it can; a failed build would pass every other test, only slower."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}): the Python path reads Claude Code logs")
    assert NATIVE, "costscope.parsers._claude_scan is not built: reinstall (pip install -e .) and read its errors"


def test_threads_parsing_at_once_each_get_their_own_rows(tmp_path: Path) -> None:
    """The scanner holds merged rows per thread: files parsed by several threads at once give the rows of a serial
    parse."""
    from concurrent.futures import ThreadPoolExecutor

    paths = []
    for seed in range(12):
        path = tmp_path / "proj" / f"s{seed}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(record) + "\n" for record in _session(seed)))
        paths.append(path)

    def parse(path: Path) -> ingest.FileResult:
        return ingest.parse_file(InputFile(str(path), path), "claude-code", strict=False)

    serial = [parse(p) for p in paths]
    for _ in range(3):
        with ThreadPoolExecutor(max_workers=4) as pool:
            threaded = list(pool.map(parse, paths))
        for one, other in zip(serial, threaded, strict=True):
            assert one.table.equals(other.table)


def test_texts_that_are_empty_read_the_same_either_way(tmp_path: Path) -> None:
    """An empty service tier is a value (""), not a null, also when it is the only text of the file."""
    path = tmp_path / "p" / "s.jsonl"
    path.parent.mkdir()
    usage = {"input_tokens": 1, "output_tokens": 2, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
    line = {"type": "assistant", "message": {"usage": {**usage, "service_tier": ""}}}
    path.write_text(json.dumps(line) + "\n")
    assert _accepted(path)
    reference, fast = _both(path)
    _same(reference, fast)
    assert reference.table.column("service_tier").to_pylist() == [""]
