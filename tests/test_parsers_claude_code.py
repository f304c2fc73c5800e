"""Claude Code project logs: one row per (message.id, requestId) keeping the line with the most output,
subagent calls counted once (subagent file or progress copy), resumed copies collapsed by record_id,
Anthropic usage made inclusive, 5m/1h writes, legacy costUSD, tool rows, and counted skips for the rest.

Prices used by hand below (genai-prices, USD per million tokens):
  claude-sonnet-4-5 / claude-sonnet-4-0: $3 input, $3.75 5m write, $6 1h write, $0.30 read, $15 output
  claude-haiku-4-5:                      $1 input, $1.25 5m write, $2 1h write, $0.10 read, $5 output
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costscope import analyze, load_steps
from costscope.io import InputFile
from costscope.parsers import detect
from costscope.parsers.claude_code import NOTE_PROGRESS_COPY, ClaudeCodeParser
from costscope.parsers.claude_headless import ClaudeHeadlessParser

PROJECTS = Path(__file__).parent / "data" / "claude_code" / "projects"
SHOP = PROJECTS / "-home-dev-shop"
ALPHA = SHOP / "sess-alpha.jsonl"
SUBAGENT = SHOP / "sess-alpha" / "subagents" / "agent-rev01.jsonl"
BETA = SHOP / "sess-beta.jsonl"
LEGACY = PROJECTS / "-home-dev-legacy" / "sess-gamma.jsonl"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
REAL = SHARED / "claude_code" / "session-crud.jsonl"

WriteJsonl = Callable[..., str]

# --- the hand-written project `-home-dev-shop` ------------------------------------------------------------
#
# sess-alpha.jsonl (UTF-8 BOM, CRLF line endings, 16 lines): a snapshot, a prompt, then
#   msg_A1 (sonnet-4-5) written as 3 lines with output 5 -> 120 -> 180 (two Task calls: code-reviewer, Explore)
#     uncached 3, 5m write 2,000, read 10,000, out 180: 9 + 7,500 + 3,000 + 2,700 µ$             = $0.013209
#   progress copy of msg_R1 (agent rev01): ignored, its subagent file exists beside the session
#   progress copies of msg_E1 (agent exp02, haiku, no subagent file), output 2 -> 40: a row of "Explore"
#     uncached 6, 5m write 800, out 40: 6 + 1,000 + 200 µ$                                       = $0.001206
#   two tool results, a <synthetic> placeholder, a compact boundary, a prompt, then
#   msg_A2 (sonnet-4-5) 1h writes: uncached 1, write 3,000 (5m 1,000 + 1h 2,000), read 12,000, out 300
#     3 + 3,750 + 12,000 + 3,600 + 4,500 µ$                                                       = $0.023853
#   a Bash tool result and a summary line.
# sess-alpha/subagents/agent-rev01.jsonl (haiku, the code-reviewer):
#   msg_R1 2 lines, output 8 -> 95: uncached 10, 5m write 1,500, out 95: 10 + 1,875 + 475 µ$    = $0.002360
#   msg_R2: uncached 2, read 1,510, out 60: 2 + 151 + 300 µ$                                     = $0.000453
# sess-beta.jsonl (resumed from sess-alpha): the two last lines of msg_A1 copied verbatim, a prompt,
#   msg_B1 (sonnet-4-5): uncached 4, 5m write 500, read 15,000, out 250: 12 + 1,875 + 4,500 + 3,750 µ$
#                                                                                                 = $0.010137
#   and a last line cut off mid-write.
# Project: 6 calls, uncached 26, writes 7,800 (1h 2,000), reads 38,510, output 925,
#   input (inclusive) 26 + 7,800 + 38,510 = 46,336; cost 13,209 + 1,206 + 23,853 + 2,360 + 453 + 10,137 µ$
SHOP_COST = 0.051218
# --- `-home-dev-legacy` (Claude Code 1.0.3, costUSD on each line, no cache split) --------------------------
#   msg_L1 sonnet-4-0: uncached 20, write 1,000, out 50: 60 + 3,750 + 750 µ$ = $0.004560 (claims 0.0046)
#   msg_L2 (no requestId): uncached 5, read 1,000, out 10: 15 + 300 + 150 µ$ = $0.000465 (claims 0.00048)
LEGACY_COST = 0.005025
LEGACY_CLAIMED = 0.00508


def rows_of(paths: list[Path], kind: str = "llm") -> list[dict[str, Any]]:
    table = load_steps([str(p) for p in paths]).table
    return sorted((r for r in table.to_pylist() if r["kind"] == kind), key=lambda r: (r["source"], r["line"]))


def by_record(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["record_id"]: r for r in rows}


def non_blank_lines(data: bytes) -> int:
    """Lines `io.iter_lines` yields: split on LF, a BOM dropped from line 1, blank lines not counted."""
    lines = data.split(b"\n")
    if lines and lines[0].startswith(b"\xef\xbb\xbf"):
        lines[0] = lines[0][3:]
    return sum(1 for line in lines if line.strip())


def test_project_totals_match_the_hand_computation() -> None:
    report = analyze([str(SHOP)])
    totals = report.totals
    assert totals["calls"] == 6
    assert totals["uncached_input_tokens"] == 26
    assert totals["input_tokens"] == 46_336
    assert totals["cache_write_tokens"] == 7_800
    assert totals["cache_write_1h_tokens"] == 2_000
    assert totals["cache_read_tokens"] == 38_510
    assert totals["output_tokens"] == 925
    assert totals["cost_usd"] == pytest.approx(SHOP_COST, abs=1e-9)
    assert {f["format"] for f in report.inputs["files"]} == {"claude-code"}
    assert report.inputs["records_skipped"] == 1
    # msg_A1 and its two Task tool uses, copied into the resumed session, are each counted once.
    assert report.inputs["duplicates_dropped"] == 3


def test_a_response_written_as_several_lines_keeps_the_one_with_the_most_output() -> None:
    a1 = by_record(rows_of([ALPHA]))["msg_A1:req_A1"]
    assert a1["output_tokens"] == 180  # not 5 (first line) nor 305 (sum of the lines)
    assert a1["line"] == 5
    assert a1["start"].isoformat() == "2025-11-03T09:00:02+00:00"  # the first line's time
    assert (a1["input_tokens"], a1["cache_read_tokens"], a1["cache_write_tokens"]) == (12_003, 10_000, 2_000)
    assert a1["provider"] == "anthropic" and a1["service_tier"] == "standard"


def test_one_hour_writes_are_split_out_and_priced_at_twice_the_input_rate() -> None:
    a2 = by_record(rows_of([ALPHA]))["msg_A2:req_A2"]
    assert (a2["cache_write_tokens"], a2["cache_write_1h_tokens"]) == (3_000, 2_000)
    report = analyze([str(ALPHA)])
    # A1 + E1 + A2 (the R1 progress copy is left to the subagent file).
    assert report.totals["cost_usd"] == pytest.approx(0.013209 + 0.001206 + 0.023853, abs=1e-9)


def test_subagent_calls_are_read_from_the_subagent_file_not_from_progress_copies() -> None:
    loaded = load_steps([str(ALPHA)])
    calls = by_record([r for r in loaded.table.to_pylist() if r["kind"] == "llm"])
    assert "msg_R1:req_R1" not in calls
    assert loaded.notes[NOTE_PROGRESS_COPY] == 1
    explore = calls["msg_E1:req_E1"]  # no subagent file: the progress copy is the only record of the call
    assert (explore["agent"], explore["model"], explore["output_tokens"]) == (
        "Explore",
        "claude-haiku-4-5-20251001",
        40,
    )
    assert explore["tags"] == [("sidechain", "true")]


def test_progress_copies_become_rows_when_the_subagent_file_is_absent(tmp_path: Path) -> None:
    lone = tmp_path / "-home-dev-shop" / "sess-alpha.jsonl"
    lone.parent.mkdir()
    shutil.copy(ALPHA, lone)
    calls = by_record(rows_of([lone]))
    r1 = calls["msg_R1:req_R1"]
    assert (r1["agent"], r1["output_tokens"], r1["trace_id"]) == ("code-reviewer", 95, "sess-alpha")
    assert analyze([str(lone)]).totals["cost_usd"] == pytest.approx(0.013209 + 0.001206 + 0.023853 + 0.002360)


def test_subagent_file_rows_take_the_type_named_by_the_parents_task_call() -> None:
    rows = rows_of([SUBAGENT])
    assert [r["record_id"] for r in rows] == ["msg_R1:req_R1", "msg_R2:req_R2"]
    assert {r["agent"] for r in rows} == {"code-reviewer"}
    assert {r["trace_id"] for r in rows} == {"sess-alpha"}  # subagent files carry the parent's session
    assert {r["tenant"] for r in rows} == {"-home-dev-shop"}
    assert rows[0]["output_tokens"] == 95


def test_subagent_without_a_resolvable_parent_is_named_by_its_agent_id(tmp_path: Path) -> None:
    orphan = tmp_path / "proj" / "sess-x" / "subagents" / "agent-rev01.jsonl"
    orphan.parent.mkdir(parents=True)
    shutil.copy(SUBAGENT, orphan)
    assert {r["agent"] for r in rows_of([orphan])} == {"rev01"}


def test_a_resumed_session_copying_lines_is_counted_once() -> None:
    loaded = load_steps([str(ALPHA), str(BETA)])
    calls = [r for r in loaded.table.to_pylist() if r["kind"] == "llm"]
    assert sorted(r["record_id"] for r in calls) == ["msg_A1:req_A1", "msg_A2:req_A2", "msg_B1:req_B1", "msg_E1:req_E1"]
    assert len(loaded.duplicates) == 3
    assert by_record(calls)["msg_B1:req_B1"]["trace_id"] == "sess-beta"


def test_synthetic_messages_are_noted_not_skipped() -> None:
    loaded = load_steps([str(ALPHA)])
    assert loaded.skips.total == 0
    assert loaded.notes["claude-code: <synthetic> placeholder messages (not calls)"] == 1
    assert "<synthetic>" not in {r["model"] for r in loaded.table.to_pylist()}


def test_bom_and_crlf_are_read_and_every_line_is_one_record() -> None:
    data = ALPHA.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and data.count(b"\r\n") == 16  # the fixture keeps both traps
    assert isinstance(detect(InputFile(str(ALPHA), ALPHA)), ClaudeCodeParser)
    loaded = load_steps([str(ALPHA)])
    assert loaded.files[0].records == 16 == non_blank_lines(data)
    assert loaded.skips.total == 0


def test_a_truncated_last_line_is_a_counted_skip_with_its_place() -> None:
    loaded = load_steps([str(BETA)])
    assert loaded.files[0].records == 5
    assert loaded.skips.total == 1
    assert loaded.skips.examples == [f"{BETA}:5: malformed JSON (unexpected end of data)"]


def test_legacy_cost_usd_is_kept_as_the_reported_cost() -> None:
    rows = by_record(rows_of([LEGACY]))
    assert rows["msg_L1:req_L1"]["reported_cost_usd"] == 0.0046
    assert rows["msg_L2"]["reported_cost_usd"] == 0.00048  # no requestId: the message id alone
    report = analyze([str(LEGACY)])
    assert report.totals["cost_usd"] == pytest.approx(LEGACY_COST, abs=1e-9)
    assert report.reported["calls_reported_usd"] == pytest.approx(LEGACY_CLAIMED)
    assert report.reported["calls_computed_usd"] == pytest.approx(LEGACY_COST)
    assert {r["tenant"] for r in rows.values()} == {"-home-dev-legacy"}


def test_tool_uses_become_tool_rows_ending_at_their_result() -> None:
    tools = {r["record_id"]: r for r in rows_of([ALPHA, SUBAGENT], kind="tool")}
    assert {k: v["tool"] for k, v in tools.items()} == {
        "toolu_task1": "Task",
        "toolu_task2": "Task",
        "toolu_grep1": "Grep",
        "toolu_bash1": "Bash",
        "toolu_read1": "Read",
    }
    bash = tools["toolu_bash1"]
    assert (bash["start"].isoformat(), bash["end"].isoformat()) == (
        "2025-11-03T09:01:10+00:00",
        "2025-11-03T09:01:14+00:00",
    )
    assert tools["toolu_task2"]["start"].isoformat() == "2025-11-03T09:00:04+00:00"  # its own line's time
    assert tools["toolu_task1"]["end"].isoformat() == "2025-11-03T09:00:30+00:00"
    assert tools["toolu_read1"]["agent"] == "code-reviewer"
    assert all(t["input_tokens"] is None and t["usage_source"] is None for t in tools.values())


def test_unusable_lines_are_counted_skips_and_every_line_is_a_record(jsonl_file: WriteJsonl) -> None:
    good = json.loads(ALPHA.read_bytes().decode("utf-8-sig").splitlines()[4])
    split_mismatch = copy.deepcopy(good)
    split_mismatch["message"]["usage"]["cache_creation"]["ephemeral_1h_input_tokens"] = 7
    negative = copy.deepcopy(good)
    negative["message"]["usage"]["output_tokens"] = -3
    huge = copy.deepcopy(good)
    huge["message"]["usage"]["output_tokens"] = 2**50  # would overflow int64 sums: corrupt, not big
    far = json.dumps({**good, "timestamp": 10**30})  # beyond what a datetime can hold
    no_message = {**good, "message": "text"}
    untyped = {k: v for k, v in good.items() if k != "type"}
    path = jsonl_file(
        [good, split_mismatch, negative, huge, far, no_message, untyped, [1, 2], "{not json", {"type": "custom-title"}],
        name="proj/sess.jsonl",
    )
    loaded = load_steps([path], format_in="claude-code")
    assert loaded.files[0].records == 10
    assert loaded.skips.total == 8
    reasons = set(loaded.skips.counts)
    # The range checks live in `base` (shared by every parser): match their subject, not their wording.
    too_large = {r for r in reasons if r.startswith("output_tokens is") and "large" in r}
    out_of_range = {r for r in reasons if r.startswith("timestamp") and "range" in r}
    assert len(too_large) == len(out_of_range) == 1
    assert reasons - too_large - out_of_range == {
        "cache_creation_input_tokens (2000) differs from the sum of its 5m/1h split (2007)",
        "output_tokens is negative: -3",
        "assistant record without a message object",
        "not a Claude Code record (no type)",
        "expected a JSON object, got list",
        "malformed JSON (unexpected character, expected a string key)",
    }
    assert loaded.notes["claude-code: records of an unknown type (no row)"] == 1
    assert [r["kind"] for r in loaded.table.to_pylist()] == ["llm", "tool"]


def test_detection_picks_claude_code_for_project_logs_only(jsonl_file: WriteJsonl) -> None:
    parser = ClaudeCodeParser()
    for path in (ALPHA, SUBAGENT, BETA, LEGACY):
        assert isinstance(detect(InputFile(str(path), path)), ClaudeCodeParser)
    assert parser.sniff(b'{"type":"summary","summary":"x","leafUuid":"u1"}\n')
    assert parser.sniff(b'{"type":"queue-operation","operation":"enqueue","sessionId":"s"}\n')
    # A first line of a record type newer than this parser, then a known one.
    assert parser.sniff(b'{"type":"custom-title","customTitle":"x","sessionId":"s"}\n' + ALPHA.read_bytes()[:2000])
    others = [
        {"type": "system", "subtype": "init", "session_id": "s", "model": "claude-sonnet-4-5"},  # headless
        {"type": "assistant", "message": {}, "session_id": "s", "parent_tool_use_id": None, "uuid": "u"},
        {"id": "msg_1", "type": "message", "model": "claude-sonnet-4-5", "usage": {"input_tokens": 1}},
        {"timestamp": "2025-11-01T00:00:00Z", "type": "session_meta", "payload": {"id": "x"}},  # codex
        {"model": "claude-sonnet-4-5", "input_tokens": 1, "kind": "llm"},  # native
        {"type": "user", "message": {"content": "hi"}},  # no session or uuid link: not enough to claim it
    ]
    for obj in others:
        assert not parser.sniff((json.dumps(obj) + "\n").encode()), obj


@pytest.mark.skipif(not REAL.exists(), reason="shared fixtures are not present")
def test_real_session_reproduces_the_ground_truth() -> None:
    report = analyze([str(REAL)])
    totals = report.totals
    assert report.inputs["files"][0]["format"] == "claude-code"
    assert report.inputs["files"][0]["records"] == 27
    assert report.inputs["records_skipped"] == 0
    assert totals["calls"] == 10
    assert totals["uncached_input_tokens"] == 25
    assert totals["output_tokens"] == 1_508  # keep-first would give 904, summing every line 1,518
    assert totals["cache_write_tokens"] == 12_593
    assert totals["cache_write_1h_tokens"] == 0
    assert totals["cache_read_tokens"] == 148_958
    assert round(totals["cost_usd"], 6) == 0.114606


# --- fuzz -------------------------------------------------------------------------------------------------

BASE_RECORDS: list[Any] = [json.loads(line) for line in ALPHA.read_bytes().decode("utf-8-sig").splitlines()]
BASE_RECORDS += [json.loads(line) for line in SUBAGENT.read_text(encoding="utf-8").splitlines()]
ODD_VALUES = st.sampled_from(
    [None, -1, -0.5, 2**70, 2**63, 1e300, 3.5, "12", "", "<synthetic>", [], {}, True, [1, {"a": None}], "x" * 300]
)


def _slots(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON value, nested ones included."""
    found: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        for key, child in value.items():
            found.append((value, key))
            found.extend(_slots(child))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.append((value, index))
            found.extend(_slots(child))
    return found


@st.composite
def mutated(draw: st.DrawFn, bases: list[Any]) -> Any:
    record = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(0, 4))):
        slots = _slots(record)
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        if isinstance(container, dict) and draw(st.booleans()):
            del container[key]
        else:
            container[key] = copy.deepcopy(draw(ODD_VALUES))  # never mutate the shared constants
    return record


@st.composite
def damaged_line(draw: st.DrawFn, bases: list[Any]) -> bytes:
    raw = json.dumps(draw(mutated(bases))).encode()
    how = draw(st.sampled_from(["as is", "as is", "as is", "truncated", "garbage", "nested", "crlf", "blank"]))
    if how == "truncated":
        raw = raw[: draw(st.integers(0, max(0, len(raw) - 1)))]
    elif how == "garbage":
        raw = draw(st.binary(min_size=1, max_size=60)).replace(b"\n", b"")
    elif how == "nested":
        depth = draw(st.integers(100, 3000))
        # where a value of the wrong type is seen at once, and where a field no parser reads is skipped whole
        opening = draw(st.sampled_from([b'{"type":"assistant","message":', b'{"type":"user","sessionId":"s","x":']))
        raw = opening + b"[" * depth + b"]" * depth + b"}"
    elif how == "crlf":
        raw += b"\r"
    elif how == "blank":
        raw = b"   "
    return raw


def check_fuzzed_file(data: bytes, layout: str, format_in: str, records_expected: int | None = None) -> None:
    """Parse `data` written at `layout`: nothing escapes but counted skips, one record per non-blank line
    (or `records_expected`)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / layout
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        loaded = load_steps([str(path)], format_in=format_in)
        records = loaded.files[0].records
        if data.startswith(b"\x1f\x8b"):  # garbage opening with the gzip magic: a corrupt .gz, one counted skip
            assert loaded.skips.total >= 1
        else:
            assert records == (non_blank_lines(data) if records_expected is None else records_expected)
        assert loaded.skips.total <= records
        for row in loaded.table.to_pylist():
            assert row["kind"] in ("llm", "tool", "rollup")
            for name in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens"):
                assert row[name] is None or row[name] >= 0
            assert (row["cache_read_tokens"] or 0) + (row["cache_write_tokens"] or 0) <= (row["input_tokens"] or 0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(damaged_line(BASE_RECORDS), min_size=1, max_size=12),
    bom=st.booleans(),
    layout=st.sampled_from(["proj/sess-alpha.jsonl", "proj/sess-alpha/subagents/agent-rev01.jsonl"]),
)
def test_fuzzed_project_logs_only_ever_produce_counted_skips(lines: list[bytes], bom: bool, layout: str) -> None:
    data = (b"\xef\xbb\xbf" if bom else b"") + b"\n".join(lines) + b"\n"
    check_fuzzed_file(data, layout, "claude-code")


def test_headless_sniffer_does_not_claim_project_logs() -> None:
    assert not ClaudeHeadlessParser().sniff(ALPHA.read_bytes()[:4096])
