"""Claude Code headless output (`claude -p --output-format stream-json --verbose`, or `json`): one row per
assistant message id, subagent events named by their Task call, the `result` kept as a roll-up that is
never added to its calls, appended sessions, and whole-document (pretty-printed) results.

Prices used by hand below (genai-prices, USD per million tokens):
  claude-sonnet-4-5: $3 input, $3.75 5m write, $6 1h write, $0.30 read, $15 output
  claude-haiku-4-5:  $1 input, $1.25 5m write, $2 1h write, $0.10 read, $5 output
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_parsers_claude_code import check_fuzzed_file, damaged_line, non_blank_lines

from costscope import analyze, load_steps
from costscope.io import InputFile
from costscope.parsers import detect
from costscope.parsers.claude_code import ClaudeCodeParser
from costscope.parsers.claude_headless import ClaudeHeadlessParser

DATA = Path(__file__).parent / "data" / "claude_headless"
STREAM = DATA / "stream.jsonl"
RESULT = DATA / "result.json"
VERBOSE = DATA / "verbose.json"

WriteJsonl = Callable[..., str]

# stream.jsonl: two sessions appended to one log.
# run-1 (init model sonnet-4-5):
#   msg_H1 written twice (text, then a Task call to a "Plan" subagent), placeholder output 2 on both lines:
#     uncached 3, writes 1,200 (5m 200 + 1h 1,000), read 4,000, out 2: 9 + 750 + 6,000 + 1,200 + 30 µ$ = $0.007989
#   msg_H2 (haiku, parent_tool_use_id = the Task call): uncached 5, read 900, out 30: 5 + 90 + 150 µ$ = $0.000245
#   msg_H3: uncached 2, 5m write 150, read 5,200, out 20: 6 + 562.5 + 1,560 + 300 µ$                 = $0.0024285
#   result: total_cost_usd 0.0123, usage output 410 (> 2 + 30 + 20: the placeholders) -> a roll-up row only
# run-2 (killed: no result): msg_H4 uncached 1, read 4,000, out 12: 3 + 1,200 + 180 µ$               = $0.001383
#   and a last line cut off mid-write.
# Log: 4 calls, uncached 11, writes 1,350 (1h 1,000), reads 14,100, output 64, $0.0120455.
STREAM_COST = 0.0120455
RUN1_COMPUTED = 0.0106625
# result.json (`--output-format json`, pretty-printed, CRLF): run-3 has no assistant events, so its one
# call is read from result.usage (model from modelUsage): uncached 4, 5m write 2,500, read 8,000, out 600:
#   12 + 9,375 + 2,400 + 9,000 µ$ = $0.020787 (the result claims $0.021)
RESULT_COST = 0.020787
# verbose.json (`--output-format json --verbose`: an array of the events, older `cost_usd`): msg_V1 haiku
#   uncached 2, read 3,000, out 40: 2 + 300 + 200 µ$ = $0.000502 (claims $0.0005)


def rows_of(path: Path | str, kind: str | None = None) -> list[dict[str, Any]]:
    rows = load_steps([str(path)]).table.to_pylist()
    return sorted((r for r in rows if kind is None or r["kind"] == kind), key=lambda r: (r["line"], r["kind"]))


def test_stream_totals_match_the_hand_computation() -> None:
    report = analyze([str(STREAM)])
    totals = report.totals
    assert report.inputs["files"][0]["format"] == "claude-stream-json"
    assert report.inputs["files"][0]["records"] == 10
    assert totals["calls"] == 4
    assert totals["uncached_input_tokens"] == 11
    assert totals["cache_write_tokens"] == 1_350
    assert totals["cache_write_1h_tokens"] == 1_000
    assert totals["cache_read_tokens"] == 14_100
    assert totals["output_tokens"] == 64  # the result's 410 is never added to its calls
    assert totals["cost_usd"] == pytest.approx(STREAM_COST, abs=1e-9)


def test_the_result_is_a_rollup_compared_with_its_sessions_calls() -> None:
    report = analyze([str(STREAM)])
    assert report.reported["rollups"] == 1
    assert report.reported["rollups_reported_usd"] == pytest.approx(0.0123)
    assert report.reported["rollups_computed_usd"] == pytest.approx(RUN1_COMPUTED, abs=1e-9)
    (rollup,) = rows_of(STREAM, "rollup")
    assert (rollup["trace_id"], rollup["input_tokens"], rollup["output_tokens"]) == ("run-1", None, None)
    assert rollup["tags"] == [("subtype", "success")]


def test_placeholder_output_is_kept_as_reported_and_noted() -> None:
    loaded = load_steps([str(STREAM)])
    assert loaded.notes["claude-stream-json: sessions whose result reports more output than its events"] == 1
    assert loaded.notes["claude-stream-json: repeated events of one message merged"] == 1


def test_calls_are_one_per_message_with_session_agent_and_model() -> None:
    calls = {r["record_id"]: r for r in rows_of(STREAM, "llm")}
    assert sorted(calls) == ["msg_H1", "msg_H2", "msg_H3", "msg_H4"]
    assert calls["msg_H1"]["line"] == 3  # the later of two equal lines
    assert (calls["msg_H2"]["agent"], calls["msg_H2"]["tags"]) == ("Plan", [("sidechain", "true")])
    assert {r["agent"] for k, r in calls.items() if k != "msg_H2"} == {"main"}
    assert {k: r["trace_id"] for k, r in calls.items()} == {
        "msg_H1": "run-1",
        "msg_H2": "run-1",
        "msg_H3": "run-1",
        "msg_H4": "run-2",
    }
    assert calls["msg_H2"]["model"] == "claude-haiku-4-5-20251001"
    (task,) = rows_of(STREAM, "tool")
    assert (task["tool"], task["trace_id"], task["parent_id"]) == ("Task", "run-1", "msg_H1")


def test_a_killed_run_and_a_truncated_line() -> None:
    loaded = load_steps([str(STREAM)])
    assert loaded.skips.examples == [f"{STREAM}:10: malformed JSON (unexpected end of data)"]
    assert loaded.files[0].records == 10 == non_blank_lines(STREAM.read_bytes())


def test_a_pretty_printed_json_result_is_read_whole() -> None:
    assert RESULT.read_bytes().count(b"\r\n") > 10  # pretty-printed with CRLF line endings
    assert isinstance(detect(InputFile(str(RESULT), RESULT)), ClaudeHeadlessParser)
    report = analyze([str(RESULT)])
    assert report.inputs["files"][0]["records"] == 1
    assert report.inputs["records_skipped"] == 0
    assert report.totals["calls"] == 1
    assert (report.totals["cache_write_tokens"], report.totals["output_tokens"]) == (2_500, 600)
    assert report.totals["cost_usd"] == pytest.approx(RESULT_COST, abs=1e-9)
    assert report.reported["rollups_reported_usd"] == pytest.approx(0.021)
    (call,) = rows_of(RESULT, "llm")
    assert (call["model"], call["tags"], call["record_id"]) == (
        "claude-sonnet-4-5-20250929",
        [("usage_from", "result")],
        None,
    )


def test_a_verbose_json_array_of_events() -> None:
    assert isinstance(detect(InputFile(str(VERBOSE), VERBOSE)), ClaudeHeadlessParser)
    report = analyze([str(VERBOSE)])
    assert report.inputs["files"][0]["records"] == 3
    assert report.totals["calls"] == 1  # from the assistant event; the result only as a roll-up
    assert report.totals["cost_usd"] == pytest.approx(0.000502, abs=1e-9)
    assert report.reported["rollups_reported_usd"] == pytest.approx(0.0005)  # older builds: cost_usd


def test_a_result_naming_several_models_gives_one_call_per_model(jsonl_file: WriteJsonl) -> None:
    result = {
        "type": "result",
        "subtype": "success",
        "session_id": "run-5",
        "total_cost_usd": 0.05,
        "usage": {"input_tokens": 9, "cache_read_input_tokens": 1_000, "output_tokens": 1_100},
        "modelUsage": {
            # sonnet: uncached 7, read 1,000, write 0, out 1,000: 21 + 300 + 15,000 µ$ = $0.015321
            "claude-sonnet-4-5-20250929": {"inputTokens": 7, "outputTokens": 1_000, "cacheReadInputTokens": 1_000},
            # haiku side call: uncached 2,000, write 100, out 100: 2,000 + 125 + 500 µ$ = $0.002625
            "claude-haiku-4-5-20251001": {"inputTokens": 2_000, "outputTokens": 100, "cacheCreationInputTokens": 100},
        },
    }
    path = jsonl_file([result])
    calls = rows_of(path, "llm")
    assert {c["model"]: c["input_tokens"] for c in calls} == {
        "claude-sonnet-4-5-20250929": 1_007,
        "claude-haiku-4-5-20251001": 2_100,
    }
    assert analyze([path]).totals["cost_usd"] == pytest.approx(0.015321 + 0.002625, abs=1e-9)


def test_unusable_events_are_counted_skips(jsonl_file: WriteJsonl) -> None:
    lines = STREAM.read_text(encoding="utf-8").splitlines()
    good = json.loads(lines[1])
    bad_usage = json.loads(lines[1])
    bad_usage["message"]["usage"]["cache_read_input_tokens"] = "4000"
    bad_cost = json.loads(lines[6])
    bad_cost["total_cost_usd"] = -1
    path = jsonl_file(
        [json.loads(lines[0]), good, bad_usage, bad_cost, {"type": "assistant"}, 7, {"type": "stream_event"}]
    )
    loaded = load_steps([path])
    assert loaded.files[0].format == "claude-stream-json"
    assert loaded.files[0].records == 7
    assert dict(loaded.skips.counts) == {
        "cache_read_input_tokens is not a number: '4000'": 1,
        "total_cost_usd is not a non-negative number: -1": 1,
        "assistant event without a message object": 1,
        "expected a JSON object, got int": 1,
    }


def test_messages_without_an_id_are_calls_of_their_own(tmp_path: Path) -> None:
    usage = {"input_tokens": 1, "output_tokens": 2}
    events = [
        {"type": "system", "subtype": "init", "session_id": "s", "model": "claude-haiku-4-5"},
        {"type": "assistant", "message": {"usage": usage}, "parent_tool_use_id": None, "session_id": "s"},
        {"type": "assistant", "message": {"usage": usage}, "parent_tool_use_id": None, "session_id": "s"},
    ]
    path = tmp_path / "array.json"
    path.write_bytes(orjson.dumps(events, option=orjson.OPT_INDENT_2))  # one document: every event on "line" 1
    calls = rows_of(path, "llm")
    assert [(c["model"], c["output_tokens"], c["record_id"]) for c in calls] == [("claude-haiku-4-5", 2, None)] * 2


def test_detection_is_unambiguous_between_the_two_claude_formats() -> None:
    headless = ClaudeHeadlessParser()
    for path in (STREAM, RESULT, VERBOSE):
        assert isinstance(detect(InputFile(str(path), path)), ClaudeHeadlessParser)
        assert not ClaudeCodeParser().sniff(path.read_bytes())
    assert headless.sniff(b'{"type":"result","subtype":"success","session_id":"s","total_cost_usd":0.1}\n')
    hook_first = b'{"type":"system","subtype":"hook_response","session_id":"s","uuid":"u"}\n'
    assert headless.sniff(hook_first + STREAM.read_bytes())
    others = [
        {"type": "system", "subtype": "compact_boundary", "sessionId": "s", "uuid": "u"},  # project log
        {"type": "system", "subtype": "other", "session_id": "s"},
        {"type": "assistant", "session_id": "s"},  # no parent_tool_use_id: not enough
        {"id": "msg_1", "type": "message", "model": "claude-sonnet-4-5", "usage": {"input_tokens": 1}},
        {"session_id": "s", "response": {"id": "x", "usage": {"input_tokens": 1}}},  # a wrapped call log
    ]
    for obj in others:
        assert not headless.sniff(orjson.dumps(obj) + b"\n"), obj
    big = b'{\n  "type": "result",\n  "session_id": "s",\n  "result": "' + b"x" * 70_000
    assert headless.sniff(big[:65_536])  # a pretty result larger than the sniffed prefix


# --- fuzz -------------------------------------------------------------------------------------------------

BASE_EVENTS: list[Any] = [json.loads(line) for line in STREAM.read_text(encoding="utf-8").splitlines()[:9]]


def expected_records(data: bytes) -> int:
    """Records the parser reads: the objects of a whole-file document, else one per non-blank line."""
    lines = [line for line in data.removeprefix(b"\xef\xbb\xbf").split(b"\n") if line.strip()]
    if lines and lines[0].strip()[:1] in (b"{", b"["):
        try:
            orjson.loads(lines[0])
        except orjson.JSONDecodeError:
            try:
                doc = orjson.loads(b"".join(lines))
            except orjson.JSONDecodeError:
                doc = None
            if isinstance(doc, dict):
                return 1
            if isinstance(doc, list):
                return len(doc)
    return non_blank_lines(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(damaged_line(BASE_EVENTS), min_size=1, max_size=12), pretty=st.booleans())
def test_fuzzed_headless_logs_only_ever_produce_counted_skips(lines: list[bytes], pretty: bool) -> None:
    data = b"\n".join(lines) + b"\n"
    if pretty:  # a whole document: the events as a pretty-printed array (a damaged one falls back to lines)
        try:
            data = json.dumps([json.loads(line) for line in lines], indent=2).encode()
        except (ValueError, RecursionError):
            data = b"[\n" + data
    check_fuzzed_file(data, "run.jsonl", "claude-stream-json", expected_records(data))
