"""OpenHands event trajectories: one row per model response however many events carry it, litellm's
Anthropic usage in inclusive buckets, tool rows, llm_metrics claims, counted skips, and fuzzed documents."""

from __future__ import annotations

import copy
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costscope import AnalyzeOptions, load_priced_steps, load_steps
from costscope.io import InputFile
from costscope.parsers import detect
from costscope.parsers.openhands import OpenHandsParser

DATA = Path(__file__).parent / "data" / "openhands"
SPLIT = DATA / "split_calls.json"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
REAL = SHARED / "openhands" / "basic.json"
SONNET = "claude-3-5-sonnet-20241022"


def rows(path: Path | str, **kwargs: Any) -> list[dict[str, Any]]:
    return load_steps([str(path)], **kwargs).table.to_pylist()


def of_kind(table_rows: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in table_rows if r["kind"] == kind]


def write(tmp_path: Path, events: Any, name: str = "trajectory.json") -> str:
    path = tmp_path / name
    path.write_bytes(events if isinstance(events, bytes) else orjson.dumps(events, option=orjson.OPT_INDENT_2))
    return str(path)


def events() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = orjson.loads(SPLIT.read_bytes())
    return loaded


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# --- one row per response ---------------------------------------------------------------------------------


def test_a_response_on_two_actions_and_an_observation_is_one_call() -> None:
    # chatcmpl-split-aaa rides on events 2 and 3 (two tool calls of one response) and on 4 (an observation).
    result = load_steps([str(SPLIT)])
    calls = of_kind(result.table.to_pylist(), "llm")
    assert [c["record_id"] for c in calls] == ["chatcmpl-split-aaa", "chatcmpl-split-bbb"]
    assert [c["line"] for c in calls] == [3, 7]  # the first event carrying each response (1-based position)
    assert result.duplicates == []  # deduplicated in the parser, not left to the global pass
    assert result.files[0].format == "openhands"
    assert result.files[0].records == 7
    assert result.skips.total == 0


def test_litellm_anthropic_usage_keeps_cache_writes_out_of_plain_input() -> None:
    # prompt_tokens 2000 = uncached 100 + cache write 1500 + cache read 400 (litellm's Anthropic spelling).
    first, second = of_kind(rows(SPLIT), "llm")
    assert (first["input_tokens"], first["cache_read_tokens"], first["cache_write_tokens"]) == (2000, 400, 1500)
    assert first["output_tokens"] == 300
    assert (second["input_tokens"], second["cache_read_tokens"], second["cache_write_tokens"]) == (2600, 1900, 500)
    assert {c["provider"] for c in (first, second)} == {"anthropic"}
    assert {c["usage_source"] for c in (first, second)} == {"reported"}


def test_hand_priced_dollars_bill_writes_at_the_write_rate() -> None:
    # claude-3-5-sonnet: $3 in, $3.75 5m write, $0.30 read, $15 out (per million tokens).
    # aaa: 100*3 + 1500*3.75 + 400*0.30 + 300*15 = 300 + 5625 + 120 + 4500 = 10545 -> $0.010545
    # bbb: 200*3 +  500*3.75 + 1900*0.30 + 80*15 = 600 + 1875 + 570 + 1200 =  4245 -> $0.004245
    # total $0.014790 (billing the writes as plain input would give $0.013290)
    table = load_priced_steps([str(SPLIT)]).table
    costs = {r["record_id"]: r["cost_total"] for r in table.to_pylist() if r["kind"] == "llm"}
    assert costs["chatcmpl-split-aaa"] == pytest.approx(0.010545)
    assert costs["chatcmpl-split-bbb"] == pytest.approx(0.004245)
    assert sum(costs.values()) == pytest.approx(0.014790)


def test_naive_timestamps_are_utc_and_tool_rows_span_action_to_observation() -> None:
    tools = of_kind(rows(SPLIT), "tool")
    assert [(t["tool"], t["span_id"], t["parent_id"]) for t in tools] == [
        ("execute_bash", "toolu_grep_01", "chatcmpl-split-aaa"),
        ("str_replace_editor", "toolu_edit_02", "chatcmpl-split-aaa"),
        ("finish", "toolu_finish_03", "chatcmpl-split-bbb"),
    ]
    bash, edit, finish = tools
    assert bash["start"] == utc(2025, 3, 4, 10, 0, 5, 250000)
    assert bash["end"] == utc(2025, 3, 4, 10, 0, 7)  # observation 4 has cause 2
    assert edit["end"] == utc(2025, 3, 4, 10, 0, 5, 900000)  # observation 5 has cause 3
    assert finish["end"] is None  # nothing observed the finish action
    assert all(t["record_id"] is None and t["input_tokens"] is None for t in tools)
    assert dict(bash["tags"]) == {"action": "run"}


def test_agent_class_and_trace_from_the_file() -> None:
    table_rows = rows(SPLIT)
    assert {r["agent"] for r in table_rows} == {"CodeActAgent"}  # from the system event's args
    assert {r["trace_id"] for r in table_rows} == {"split_calls"}


def test_without_agent_class_the_agent_is_openhands_and_a_session_id_names_the_trace(tmp_path: Path) -> None:
    doc = events()[1:]
    doc[0]["session_id"] = "sess-42"
    table_rows = rows(write(tmp_path, doc))
    assert {r["agent"] for r in table_rows} == {"openhands"}
    assert {r["trace_id"] for r in table_rows} == {"sess-42"}


# --- llm_metrics claims -----------------------------------------------------------------------------------


def test_llm_metrics_give_a_rollup_and_per_call_claims() -> None:
    table_rows = rows(SPLIT)
    (rollup,) = of_kind(table_rows, "rollup")
    assert rollup["reported_cost_usd"] == pytest.approx(0.0147)  # the largest running total, never summed
    assert rollup["line"] == 7 and rollup["input_tokens"] is None
    assert dict(rollup["tags"])["accumulated_prompt_tokens"] == "4600"
    claims = {c["record_id"]: c["reported_cost_usd"] for c in of_kind(table_rows, "llm")}
    assert claims == {"chatcmpl-split-aaa": pytest.approx(0.0105), "chatcmpl-split-bbb": pytest.approx(0.0042)}


def test_report_compares_claims_with_computed_cost() -> None:
    from costscope import analyze

    reported = analyze([str(SPLIT)], AnalyzeOptions()).reported
    assert reported["rollups"] == 1
    assert reported["rollups_reported_usd"] == pytest.approx(0.0147)
    assert reported["rollups_computed_usd"] == pytest.approx(0.014790)
    assert reported["calls_with_reported_cost"] == 2


def test_unpaired_cost_ledger_claims_nothing_per_call(tmp_path: Path) -> None:
    doc = events()
    doc[6]["llm_metrics"]["costs"] = doc[6]["llm_metrics"]["costs"][:1]  # a call OpenHands could not price
    table_rows = rows(write(tmp_path, doc))
    assert all(c["reported_cost_usd"] is None for c in of_kind(table_rows, "llm"))
    assert len(of_kind(table_rows, "rollup")) == 1


def test_clean_snapshots_without_ledgers_still_give_the_rollup(tmp_path: Path) -> None:
    doc = events()
    for event in doc:
        if "llm_metrics" in event:
            event["llm_metrics"] = {"accumulated_cost": event["llm_metrics"]["accumulated_cost"]}
    table_rows = rows(write(tmp_path, doc))
    assert [r["reported_cost_usd"] for r in of_kind(table_rows, "rollup")] == [pytest.approx(0.0147)]
    assert all(c["reported_cost_usd"] is None for c in of_kind(table_rows, "llm"))


def test_no_llm_metrics_no_rollup(tmp_path: Path) -> None:
    doc = events()
    for event in doc:
        event.pop("llm_metrics", None)
    assert of_kind(rows(write(tmp_path, doc)), "rollup") == []


# --- odd but valid ----------------------------------------------------------------------------------------


def test_response_without_id_is_deduplicated_by_content(tmp_path: Path) -> None:
    doc = events()
    for event in doc[2:5]:
        del event["tool_call_metadata"]["model_response"]["id"]
    # event 2 carries the full response, events 3 and 4 the same shorter copy (no choices): two contents
    calls = of_kind(rows(write(tmp_path, doc)), "llm")
    assert [c["record_id"] for c in calls] == [None, None, "chatcmpl-split-bbb"]
    assert [c["line"] for c in calls] == [3, 4, 7]


def test_response_without_usage_is_a_call_with_unknown_cost(tmp_path: Path) -> None:
    doc = events()
    for event in doc[2:5]:
        del event["tool_call_metadata"]["model_response"]["usage"]
    result = load_steps([write(tmp_path, doc)])
    first = of_kind(result.table.to_pylist(), "llm")[0]
    assert first["usage_source"] is None and first["input_tokens"] is None
    assert result.notes["calls without usage"] == 1


def test_model_with_litellm_prefix_is_split_for_pricing(tmp_path: Path) -> None:
    doc = events()
    doc[6]["tool_call_metadata"]["model_response"]["model"] = "anthropic/claude-3-5-sonnet-20241022"
    call = of_kind(rows(write(tmp_path, doc)), "llm")[1]
    assert (call["provider"], call["model"]) == ("anthropic", SONNET)
    assert dict(call["tags"]) == {"model_logged": "anthropic/claude-3-5-sonnet-20241022"}


# --- bad records ------------------------------------------------------------------------------------------


def test_bad_events_are_counted_skips_with_their_position(tmp_path: Path) -> None:
    doc: list[Any] = events()
    doc[1] = "not an event"
    doc[5]["timestamp"] = "yesterday-ish"
    doc[6]["tool_call_metadata"]["model_response"]["usage"]["prompt_tokens_details"]["cached_tokens"] = 9999
    doc.append({"id": 7, "source": "agent", "action": "run", "tool_call_metadata": ["not", "an", "object"]})
    path = write(tmp_path, doc)
    result = load_steps([path])
    assert result.files[0].records == 8
    assert result.skips.total == 4
    where = [example.removeprefix(path + ":").split(":")[0] for example in result.skips.examples]
    assert where == ["2", "6", "7", "8"]
    assert any("cache tokens" in reason for reason in result.skips.counts)
    calls = of_kind(result.table.to_pylist(), "llm")
    assert [c["record_id"] for c in calls] == ["chatcmpl-split-aaa"]


def test_a_file_that_is_not_json_is_one_counted_skip(tmp_path: Path) -> None:
    text = SPLIT.read_bytes()[:1500]  # sniffs as OpenHands, then ends mid-document
    result = load_steps([write(tmp_path, text)])
    assert result.files[0].format == "openhands"
    assert result.files[0].records == 1 and result.table.num_rows == 0
    assert result.skips.total == 1
    assert next(iter(result.skips.counts)).startswith("not a valid JSON document")


def test_forced_on_an_object_is_one_counted_skip(tmp_path: Path) -> None:
    result = load_steps([write(tmp_path, {"events": []})], format_in="openhands")
    assert result.skips.counts == {"expected a JSON array, got dict": 1}


def test_strict_mode_raises_on_the_first_bad_event(tmp_path: Path) -> None:
    from costscope.errors import InputError

    doc: list[Any] = events()
    doc[2] = 42
    with pytest.raises(InputError, match=r":3: event is not a JSON object"):
        load_steps([write(tmp_path, doc)], strict=True)


# --- sniffing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    [
        SPLIT.read_bytes()[:400],  # pretty-printed: the first line is just "["
        orjson.dumps(events())[:300],  # one line
        b'\xef\xbb\xbf[\n {"id": 0, "timestamp": "2025-01-01T00:00:00", "source": "user", "action": "message"',
        b'[{"observation": "run", "source": "agent", "content": "ok"}]',
    ],
)
def test_sniff_accepts_event_arrays(prefix: bytes) -> None:
    assert OpenHandsParser().sniff(prefix)


@pytest.mark.parametrize(
    "prefix",
    [
        b'{"id": "chatcmpl-1", "object": "chat.completion", "usage": {"prompt_tokens": 1}}\n',
        b'[{"name": "span", "context": {"trace_id": "0x1"}, "attributes": {}}]',
        b'{"environment": "main", "trajectory": [], "history": []}',
        b"[1, 2, 3]",
        b"",
        b"not json at all",
    ],
)
def test_sniff_rejects_other_documents(prefix: bytes) -> None:
    assert not OpenHandsParser().sniff(prefix)


def test_registry_detects_openhands_before_call_logs() -> None:
    assert detect(InputFile(name=str(SPLIT), path=SPLIT)).name == "openhands"


# --- the real trajectory (shared fixtures, skipped when absent) ------------------------------------------


@pytest.mark.skipif(not REAL.exists(), reason="shared fixtures not present")
def test_real_basic_trajectory_matches_ground_truth() -> None:
    # 3 events carry 2 unique responses; prompt 8,132 = uncached 10 + write 4,640 + read 3,482; output 1,312.
    # 10*3 + 4640*3.75 + 3482*0.30 + 1312*15 = 30 + 17400 + 1044.6 + 19680 = 38154.6 -> $0.038155
    priced = load_priced_steps([str(REAL)])
    calls = [r for r in priced.table.to_pylist() if r["kind"] == "llm"]
    assert len(calls) == 2
    assert sum(c["input_tokens"] for c in calls) == 8132
    assert sum(c["cache_write_tokens"] for c in calls) == 4640
    assert sum(c["cache_read_tokens"] for c in calls) == 3482
    assert sum(c["output_tokens"] for c in calls) == 1312
    assert round(sum(c["cost_total"] for c in calls), 6) == pytest.approx(0.038155)
    assert [r["tool"] for r in priced.table.to_pylist() if r["kind"] == "tool"] == ["str_replace_editor", "finish"]
    assert priced.load.skips.total == 0 and priced.load.files[0].records == 4


# --- fuzzing ----------------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


def _mutate(doc: Any, path: tuple[Any, ...], replacement: Any, delete: bool) -> Any:
    if not path:
        return replacement
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return doc


BASE = events()
BASE_PATHS = _paths(BASE)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(st.integers(min_value=0, max_value=len(BASE_PATHS) - 1), JSON_VALUES, st.booleans()),
        min_size=1,
        max_size=4,
    ),
    cut=st.none() | st.integers(min_value=0, max_value=4000),
)
def test_mutated_trajectories_never_raise_only_skip(edits: list[tuple[int, Any, bool]], cut: int | None) -> None:
    doc = copy.deepcopy(BASE)
    for index, replacement, delete in edits:
        paths = _paths(doc)
        path = paths[index % len(paths)]
        doc = _mutate(doc, path, replacement, delete and bool(path))
    data = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    if cut is not None:
        data = data[:cut]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.json"
        path.write_bytes(data)
        result = load_steps([str(path)], format_in="openhands")
    table_rows = result.table.to_pylist()
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, list):
        assert result.files[0].records == len(parsed)
    elif data.strip():
        assert (result.files[0].records, result.skips.total, len(table_rows)) == (1, 1, 0)
    llm_ids = [r["record_id"] for r in table_rows if r["kind"] == "llm" and r["record_id"] is not None]
    assert len(llm_ids) == len(set(llm_ids))
    for r in table_rows:
        assert r["kind"] in {"llm", "tool", "rollup"}
        if r["input_tokens"] is not None:
            assert (r["cache_read_tokens"] or 0) + (r["cache_write_tokens"] or 0) <= r["input_tokens"]
