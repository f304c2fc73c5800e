"""Codex CLI rollouts: one call per distinct cumulative total, inclusive buckets, the model of the latest
turn_context, per-event time, forks counted once through record_id, and counted skips for the rest.

Prices used by hand below (genai-prices, per million tokens): gpt-5 $1.25 input / $0.125 cached / $10
output; gpt-5-mini $0.25 / $0.025 / $2; gpt-5.2 (gpt-5.2-codex maps to it) $1.75 / $0.175 / $14.
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costscope import AnalyzeOptions, analyze, load_steps
from costscope.io import InputFile
from costscope.parsers import detect
from costscope.parsers.codex import NOTE_DISAGREE, NOTE_NO_MODEL, CodexParser

DATA = Path(__file__).parent / "data" / "codex" / "sessions"
PARENT_ID = "019a3f10-5c2e-7d41-9b0a-3e8f2c6d1a01"
FORK_ID = "019a3f2b-11d4-7e02-8c5b-6a7d9e0f4b02"
PARENT = DATA / "2025" / "10" / "31" / f"rollout-2025-10-31T23-58-00-{PARENT_ID}.jsonl"
FORK = DATA / "2025" / "11" / "01" / f"rollout-2025-11-01T00-10-00-{FORK_ID}.jsonl"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
REAL = SHARED / "codex" / "rollout-crud.jsonl"

WriteJsonl = Callable[..., str]
TOKENS = ("input_tokens", "cache_read_tokens", "output_tokens", "reasoning_tokens")


def rows_of(paths: list[Path | str], kind: str = "llm") -> list[dict[str, Any]]:
    table = load_steps([str(p) for p in paths]).table
    rows = [r for r in table.to_pylist() if r["kind"] == kind]
    return sorted(rows, key=lambda r: (r["source"], r["line"]))


def tokens(row: dict[str, Any]) -> tuple[int, ...]:
    return tuple(row[name] for name in TOKENS)


# --- hand-written rollouts ----------------------------------------------------------------------------------
#
# PARENT (2025-10-31 23:58 -> 2025-11-01 00:00 UTC, cwd /home/dana/src/tidepool): an `info: null` token_count,
# then three calls each written twice, the model switched from gpt-5 to gpt-5-mini by a turn_context just
# after midnight (between call 2 and its second emission), and a last line cut off mid-write.
#   call 1 gpt-5      in 6,000 (cached 0)      out 400 (reasoning 256)  6000*1.25 + 400*10              = $0.011500
#   call 2 gpt-5      in 6,500 (cached 5,888)  out 300 (reasoning 64)   612*1.25 + 5888*0.125 + 300*10  = $0.004501
#   call 3 gpt-5-mini in 7,200 (cached 6,400)  out 120 (reasoning 32)   800*0.25 + 6400*0.025 + 120*2   = $0.000600
#   session: in 19,700, cached 12,288, out 820, reasoning 352                                             $0.016601
# FORK (2025-11-01 00:10, forked_from_id = PARENT): its own session_meta, then the parent's history copied in
# and re-stamped at 00:10:00 (cumulative totals included), then two calls of its own on gpt-5:
#   call A in 8,100 (cached 7,680) out 500 (reasoning 192)  420*1.25 + 7680*0.125 + 500*10 = $0.006485
#   call B in 8,400 (cached 8,192) out  90 (reasoning 0)    208*1.25 + 8192*0.125 +  90*10 = $0.002184
# Parent + fork, the copies counted once: 5 calls, in 36,200, cached 28,160, out 1,410, reasoning 544, $0.025270.

PARENT_CALLS = [(6000, 0, 400, 256), (6500, 5888, 300, 64), (7200, 6400, 120, 32)]
FORK_CALLS = [(8100, 7680, 500, 192), (8400, 8192, 90, 0)]


def test_each_call_is_counted_once_and_buckets_stay_inclusive() -> None:
    rows = rows_of([PARENT])
    # reasoning is inside output and cached inside input: nothing added, nothing subtracted
    assert [tokens(r) for r in rows] == PARENT_CALLS
    assert [r["model"] for r in rows] == ["gpt-5", "gpt-5", "gpt-5-mini"]
    assert [r["line"] for r in rows] == [8, 13, 19]  # first emission of each total; `info: null` (line 5) ignored
    assert {r["trace_id"] for r in rows} == {PARENT_ID}
    assert {(r["agent"], r["tenant"], r["provider"], r["format"]) for r in rows} == {
        ("codex_cli_rs", "tidepool", "openai", "codex")
    }
    assert [dict(r["tags"]) for r in rows] == [{"effort": "medium"}, {"effort": "medium"}, {"effort": "low"}]
    assert [r["record_id"] for r in rows] == [
        f"codex:{PARENT_ID}:6000:0:400:256",
        f"codex:{PARENT_ID}:12500:5888:700:320",
        f"codex:{PARENT_ID}:19700:12288:820:352",
    ]


def test_parent_dollars_match_the_hand_computation() -> None:
    totals = analyze([str(PARENT)]).totals
    assert (totals["calls"], totals["input_tokens"], totals["cache_read_tokens"]) == (3, 19_700, 12_288)
    assert (totals["output_tokens"], totals["reasoning_tokens"]) == (820, 352)
    assert totals["cost_usd"] == pytest.approx(0.016601, abs=1e-12)


def test_a_session_crossing_midnight_is_bucketed_by_each_event_time() -> None:
    groups = analyze([str(PARENT)], AnalyzeOptions(by=("day",))).groups
    by_day = {g["key"]["day"]: (g["calls"], round(g["cost_usd"], 9)) for g in groups}
    assert by_day == {"2025-10-31": (2, 0.016001), "2025-11-01": (1, 0.0006)}


def test_a_truncated_last_line_is_a_counted_skip_with_its_place() -> None:
    loaded = load_steps([str(PARENT)])
    assert loaded.files[0].records == 21  # every non-blank line, used or not
    assert loaded.skips.total == 1
    assert loaded.skips.examples == [f"{PARENT}:21: malformed JSON (unexpected end of data)"]


def test_tool_calls_become_tool_rows_without_usage() -> None:
    tools = rows_of([PARENT], kind="tool")
    assert [(r["tool"], r["line"], r["record_id"]) for r in tools] == [
        ("shell", 7, f"codex-tool:{PARENT_ID}:call_tp_01"),
        ("apply_patch", 12, f"codex-tool:{PARENT_ID}:call_tp_02"),
    ]
    assert all(r["usage_source"] is None and r["input_tokens"] is None for r in tools)


def test_a_fork_replaying_its_parent_is_counted_once() -> None:
    fork_rows = rows_of([FORK])
    assert [tokens(r) for r in fork_rows] == PARENT_CALLS + FORK_CALLS  # the fork alone holds the whole history
    parent_ids = [r["record_id"] for r in rows_of([PARENT])]
    assert [r["record_id"] for r in fork_rows[:3]] == parent_ids  # the copies carry the parent's record ids
    assert all(r["record_id"].startswith(f"codex:{PARENT_ID}:") for r in fork_rows)  # lineage root

    report = analyze([str(DATA)])
    totals = report.totals
    assert totals["calls"] == 5  # not 8
    assert (totals["input_tokens"], totals["cache_read_tokens"]) == (36_200, 28_160)
    assert (totals["output_tokens"], totals["reasoning_tokens"]) == (1_410, 544)
    assert totals["cost_usd"] == pytest.approx(0.016601 + 0.006485 + 0.002184, abs=1e-12)
    assert report.inputs["duplicates_dropped"] == 5  # 3 calls + 2 tool calls copied from the parent


def test_replayed_calls_keep_the_parents_trace_and_time() -> None:
    groups = analyze([str(DATA)], AnalyzeOptions(by=("trace",))).groups
    assert {g["key"]["trace"]: g["calls"] for g in groups} == {PARENT_ID: 3, FORK_ID: 2}


# --- detection ----------------------------------------------------------------------------------------------


def test_detection_picks_codex_for_rollouts_only(tmp_path: Path) -> None:
    assert detect(InputFile(str(PARENT), PARENT)).name == "codex"
    parser = CodexParser()
    assert not parser.sniff(b'{"type":"assistant","message":{"id":"msg_1","usage":{"input_tokens":1}}}\n')
    assert not parser.sniff(b'{"id":"resp_1","object":"response","usage":{"input_tokens":1,"output_tokens":1}}\n')
    assert not parser.sniff(b'{"type":"session_meta","payload":"not an object"}\n')
    # a session_meta longer than the sniffed prefix is still recognized by its opening
    huge = {"timestamp": "2025-10-31T23:58:00Z", "type": "session_meta", "payload": {"id": "x", "notes": "y" * 70_000}}
    path = tmp_path / "rollout-huge.jsonl"
    path.write_text(json.dumps(huge, separators=(",", ":")) + "\n", encoding="utf-8")
    assert detect(InputFile(str(path), path)).name == "codex"


# --- inline rollouts for single behaviours ------------------------------------------------------------------


def meta(**payload: Any) -> dict[str, Any]:
    body = {"id": "sess-1", "cwd": "/srv/work/acme", "originator": "codex_exec", "model_provider": "openai"}
    return {"timestamp": "2025-12-01T09:00:00Z", "type": "session_meta", "payload": {**body, **payload}}


def turn(model: str | None = "gpt-5", at: str = "2025-12-01T09:00:01Z") -> dict[str, Any]:
    payload = {"cwd": "/srv/work/acme"} if model is None else {"cwd": "/srv/work/acme", "model": model}
    return {"timestamp": at, "type": "turn_context", "payload": payload}


def usage(i: Any, c: Any = 0, o: Any = 0, r: Any = 0) -> dict[str, Any]:
    return {"input_tokens": i, "cached_input_tokens": c, "output_tokens": o, "reasoning_output_tokens": r}


def count(
    total: dict[str, Any] | None, last: dict[str, Any] | None = None, at: str = "2025-12-01T09:00:02Z"
) -> dict[str, Any]:
    info = {k: v for k, v in (("total_token_usage", total), ("last_token_usage", last)) if v is not None}
    return {"timestamp": at, "type": "event_msg", "payload": {"type": "token_count", "info": info}}


def test_calls_without_a_model_stay_unpriced_and_are_noted(jsonl_file: WriteJsonl) -> None:
    # early-Sept-2025 builds write turn_context without `model`: the call is kept, its model is not guessed
    path = jsonl_file([meta(), turn(None), count(usage(5000, 0, 100), usage(5000, 0, 100))], "rollout-a.jsonl")
    loaded = load_steps([path])
    assert loaded.table["model"].to_pylist() == [None]
    assert loaded.notes[NOTE_NO_MODEL] == 1
    report = analyze([path])
    assert report.totals["priced_calls"] == 0 and report.totals["cost_usd"] is None
    assert [(u.model, u.calls) for u in report.unpriced] == [(None, 1)]


def test_a_counter_reset_starts_a_new_count(jsonl_file: WriteJsonl) -> None:
    lines = [
        meta(),
        turn(),
        count(usage(1000, 800, 100, 40), usage(1000, 800, 100, 40)),
        count(usage(0), usage(0)),  # an explicit zero: not a call
        count(usage(900, 700, 60, 20), usage(900, 700, 60, 20)),
    ]
    rows = rows_of([jsonl_file(lines, "rollout-b.jsonl")])
    assert [tokens(r) for r in rows] == [(1000, 800, 100, 40), (900, 700, 60, 20)]


def test_growth_of_the_total_wins_when_last_usage_disagrees(jsonl_file: WriteJsonl) -> None:
    # the total is Codex's running sum of last_token_usage: a gap means a call whose event was lost, and
    # the growth keeps the session equal to Codex's own total
    lines = [
        meta(),
        turn(),
        count(usage(1000, 0, 50), usage(1000, 0, 50)),
        count(usage(3500, 1000, 90), usage(1200, 1000, 20)),
    ]
    path = jsonl_file(lines, "rollout-c.jsonl")
    rows = rows_of([path])
    assert [tokens(r) for r in rows] == [(1000, 0, 50, 0), (2500, 1000, 40, 0)]
    assert load_steps([path]).notes[NOTE_DISAGREE] == 1


def test_totals_only_and_last_only_rollouts(jsonl_file: WriteJsonl) -> None:
    totals_only = [meta(), turn(), count(usage(100, 0, 10)), count(usage(100, 0, 10)), count(usage(250, 64, 30))]
    assert [tokens(r) for r in rows_of([jsonl_file(totals_only, "rollout-d.jsonl")])] == [
        (100, 0, 10, 0),
        (150, 64, 20, 0),
    ]
    last = usage(42, 2, 8, 1)
    last_only = [meta(), turn(), count(None, last), count(None, last), count(None, usage(7, 0, 3))]
    rows = rows_of([jsonl_file(last_only, "rollout-e.jsonl")])
    assert [tokens(r) for r in rows] == [(42, 2, 8, 1), (7, 0, 3, 0)]
    assert len({r["record_id"] for r in rows}) == 2


def test_a_fork_without_the_copied_history_takes_its_first_call_from_last_usage(jsonl_file: WriteJsonl) -> None:
    # the total includes the parent's 20,000 inherited tokens that this file does not hold
    lines = [
        meta(id="child", forked_from_id="parent"),
        turn(),
        count(usage(25000, 18000, 1100, 250), usage(5000, 2000, 200, 50)),
    ]
    rows = rows_of([jsonl_file(lines, "rollout-f.jsonl")])
    assert [tokens(r) for r in rows] == [(5000, 2000, 200, 50)]
    assert rows[0]["trace_id"] == "child" and rows[0]["record_id"] == "codex:parent:25000:18000:1100:250"


def test_tenant_and_agent_fallbacks(jsonl_file: WriteJsonl) -> None:
    lines = [
        meta(cwd="C:\\Users\\kim\\billing-api\\", originator=None, source="vscode"),
        turn(),
        count(usage(10, 0, 1)),
    ]
    (row,) = rows_of([jsonl_file(lines, "rollout-g.jsonl")])
    assert (row["tenant"], row["agent"]) == ("billing-api", "vscode")
    no_meta = [turn(), count(usage(10, 0, 1))]
    name = "rollout-2025-12-01T09-00-00-0199aaaa-bbbb-7ccc-8ddd-eeeeffff0000.jsonl"
    (row,) = rows_of([jsonl_file(no_meta, name)])
    assert (row["trace_id"], row["agent"], row["tenant"]) == ("0199aaaa-bbbb-7ccc-8ddd-eeeeffff0000", "codex", "acme")


def test_unusable_lines_are_counted_skips_and_every_line_is_a_record(jsonl_file: WriteJsonl) -> None:
    lines = [
        meta(),
        turn(),
        count(usage(100, 200, 10)),  # cached > input
        count(usage(100, 0, 10, 11)),  # reasoning > output
        count(usage(-5, 0, 10)),
        count(usage("100", 0, 10)),
        count(None, None),
        {"timestamp": "2025-12-01T09:00:03Z", "type": "event_msg", "payload": {"type": "token_count", "info": 7}},
        {"timestamp": "2025-12-01T09:00:03Z", "type": "telemetry", "payload": {}},
        {"timestamp": "2025-12-01T09:00:03Z", "type": "response_item", "payload": [1]},
        {"timestamp": 12, "type": "event_msg", "payload": {"type": "token_count", "info": {"total_token_usage": {}}}},
        {"timestamp": "2025-12-01T09:00:03Z", "type": "response_item", "payload": {"type": "function_call"}},
        "[1, 2]",
        "{not json",
        "",
        {"timestamp": "2025-12-01T09:00:04Z", "type": "compacted", "payload": {"message": "summary of the turns"}},
        {"timestamp": "2025-12-01T09:00:04Z", "type": "event_msg", "payload": {"type": "context_compacted"}},
        count(usage(300, 0, 30)),
    ]
    loaded = load_steps([jsonl_file(lines, "rollout-h.jsonl")])
    assert loaded.files[0].records == 17  # the blank line is not a record; compaction lines are understood
    assert loaded.skips.total == 12
    assert "total_token_usage: cached input (200) exceeds the input that contains it (100)" in loaded.skips.counts
    assert "total_token_usage: reasoning (11) exceeds the output that contains it (10)" in loaded.skips.counts
    assert "not a Codex rollout line (type 'telemetry')" in loaded.skips.counts
    # the skipped events never advanced the running total: the one good event is the first call
    assert [tokens(r) for r in loaded.table.to_pylist()] == [(300, 0, 30, 0)]


# --- the real rollout (shared fixture, read only when present) -----------------------------------------------


@pytest.mark.skipif(not REAL.exists(), reason="shared fixtures are not present")
def test_real_rollout_reproduces_the_ground_truth() -> None:
    report = analyze([str(REAL)])
    totals = report.totals
    assert totals["calls"] == 5  # 10 token_count events, one of them `info: null`
    assert (totals["input_tokens"], totals["cache_read_tokens"]) == (47_257, 44_160)
    assert (totals["output_tokens"], totals["reasoning_tokens"]) == (300, 64)
    # gpt-5.2-codex -> gpt-5.2: 3,097 uncached * $1.75 + 44,160 * $0.175 + 300 * $14 per MTok
    #   = $0.00541975 + $0.00772800 + $0.00420000 = $0.01734775
    assert totals["cost_usd"] == pytest.approx(0.01734775, abs=1e-12)
    assert report.inputs["records_read"] == 38 and report.inputs["records_skipped"] == 0
    tools = rows_of([REAL], kind="tool")
    assert [r["tool"] for r in tools] == ["exec_command", "exec_command", "apply_patch", "exec_command"]


# --- fuzz: mutated real-shaped lines never escape as exceptions ---------------------------------------------

BASE = [json.loads(line) for line in PARENT.read_text(encoding="utf-8").splitlines()[:-1]] + [
    json.loads(line) for line in FORK.read_text(encoding="utf-8").splitlines()
]
WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["123", "-1", "2025-13-45T99:00:00Z", ""]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield (*prefix, key)
        yield from paths(child, (*prefix, key))


def mutated(data: st.DataObject, obj: dict[str, Any]) -> bytes:
    op = data.draw(st.sampled_from(["keep", "drop", "retype", "retype", "truncate", "garbage"]))
    if op == "garbage":
        return data.draw(st.binary(max_size=60))
    if op in ("drop", "retype"):
        obj = copy.deepcopy(obj)
        *parents, key = data.draw(st.sampled_from(list(paths(obj))))
        container: Any = obj
        for step in parents:
            container = container[step]
        if op == "drop":
            del container[key]
        else:
            container[key] = data.draw(WRONG)
    raw = json.dumps(obj).encode()
    return raw[: data.draw(st.integers(0, len(raw) - 1))] if op == "truncate" else raw


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_fuzzed_rollouts_only_ever_produce_counted_skips(data: st.DataObject) -> None:
    picks = data.draw(st.lists(st.integers(0, len(BASE) - 1), min_size=1, max_size=25))
    body = [json.dumps(BASE[0]).encode()] + [mutated(data, BASE[i]) for i in picks]
    text = b"\n".join(body) + b"\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"rollout-2025-10-31T23-58-00-{PARENT_ID}.jsonl"
        path.write_bytes(text)
        loaded = load_steps([str(path)])
    lines = sum(1 for line in text.split(b"\n") if line.strip())
    assert loaded.files[0].format == "codex"
    assert loaded.files[0].records == lines
    assert loaded.skips.total <= lines
    for row in loaded.table.to_pylist():
        if row["kind"] == "llm":
            assert 0 <= row["cache_read_tokens"] <= row["input_tokens"]
            assert 0 <= row["reasoning_tokens"] <= row["output_tokens"]


@settings(max_examples=150, deadline=None)
@given(prefix=st.binary(max_size=200) | st.builds(lambda b: b'{"type":"session_meta","payload":' + b, st.binary()))
def test_sniffing_any_bytes_never_raises(prefix: bytes) -> None:
    assert CodexParser().sniff(prefix) in (True, False)
