"""OpenTelemetry ingest: OTLP/JSON, console dumps and Phoenix exports, through the shared span tree.

Dollars in comments are list prices at the fixtures' dates (October 2025), confirmed with genai-prices
`calc_price`: gpt-4o-2024-08-06 $2.50 in / $1.25 cached / $10 out; gpt-4o-mini $0.15 / $0.60;
o4-mini $1.10 / $0.275 cached / $4.40 out; claude-sonnet-4-5 $3 / $0.30 read / $3.75 5m write / $15 out;
claude-haiku-4-5 $1 / $0.10 read / $1.25 write / $5 out (per million tokens).
"""

from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from costscope import load_steps
from costscope.api import load_priced_steps
from costscope.errors import InputError
from costscope.io import InputFile
from costscope.parsers import detect
from costscope.parsers.base import RecordError
from costscope.parsers.genai_attributes import Role, read_attributes
from costscope.parsers.otel_json import json_records
from costscope.parsers.spans import span_id

DATA = Path(__file__).parent / "data" / "otel"
TRACE = "5b8efff798038103d269b633813fc60c"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def rows_of(path: str | Path, **kwargs: Any) -> list[dict[str, Any]]:
    return load_steps([str(path)], **kwargs).table.to_pylist()


def by_span(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["span_id"]: r for r in rows}


def calls(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["kind"] == "llm"]


def total(rows: list[dict[str, Any]], column: str) -> int:
    return sum(r[column] or 0 for r in calls(rows))


def priced_total(path: str | Path) -> float:
    table = load_priced_steps([str(path)]).table
    costs = zip(table["cost_total"].to_pylist(), table["kind"].to_pylist(), strict=True)
    return round(sum(cost for cost, kind in costs if kind == "llm"), 9)


# --- OTLP builders for inline traces -----------------------------------------------------------------------


def any_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    return {"stringValue": value}


def otlp_span(
    span: str, attributes: dict[str, Any], parent: str | None = None, trace: str = TRACE, name: str = "span"
) -> dict[str, Any]:
    return {
        "traceId": trace,
        "spanId": span,
        "parentSpanId": parent or "",
        "name": name,
        "kind": 1,
        "startTimeUnixNano": "1759312800000000000",
        "endTimeUnixNano": "1759312801000000000",
        "attributes": [{"key": k, "value": any_value(v)} for k, v in attributes.items()],
    }


def otlp_request(*spans: dict[str, Any], resource: dict[str, Any] | None = None) -> dict[str, Any]:
    attrs = [{"key": k, "value": any_value(v)} for k, v in (resource or {}).items()]
    return {"resourceSpans": [{"resource": {"attributes": attrs}, "scopeSpans": [{"scope": {}, "spans": list(spans)}]}]}


def chat(tokens_in: int, tokens_out: int, **extra: Any) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": tokens_in,
        "gen_ai.usage.output_tokens": tokens_out,
        **extra,
    }


def agent(name: str, **extra: Any) -> dict[str, Any]:
    return {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name, **extra}


@pytest.fixture
def write(tmp_path: Path) -> Any:
    def write(records: list[Any] | str, name: str = "trace.jsonl") -> str:
        """A whole text, or one record per line (a `str` record is written verbatim)."""
        path = tmp_path / name
        if isinstance(records, str):
            path.write_text(records, encoding="utf-8")
        else:
            path.write_bytes(b"".join((r.encode() if isinstance(r, str) else orjson.dumps(r)) + b"\n" for r in records))
        return str(path)

    return write


# --- fixtures: one trap each -------------------------------------------------------------------------------


def test_agent_rollup_equal_to_its_chat_children_is_not_double_counted() -> None:
    result = load_steps([str(DATA / "rollup_agent.jsonl")])
    rows = result.table.to_pylist()
    assert result.skips.total == 0
    assert (result.files[0].format, result.files[0].records, result.files[0].rows) == ("otlp-json", 2, 4)
    spans = by_span(rows)
    # The invoke_agent span repeats 1200+2000 input, 1024+1536 cached, 150+300 output: an agent row, never summed.
    rollup = spans["a1a1a1a1a1a1a1a1"]
    assert (rollup["kind"], rollup["input_tokens"], rollup["output_tokens"]) == ("agent", 3200, 450)
    assert [r["span_id"] for r in calls(rows)] == ["c1c1c1c1c1c1c1c1", "c2c2c2c2c2c2c2c2"]
    assert (total(rows, "input_tokens"), total(rows, "cache_read_tokens"), total(rows, "output_tokens")) == (
        3200,
        2560,
        450,
    )
    # intValue "1200" (a string, as proto3 JSON says) is the number 1200, not concatenated text.
    assert spans["c1c1c1c1c1c1c1c1"]["input_tokens"] == 1200
    tool = spans["d1d1d1d1d1d1d1d1"]
    assert (tool["kind"], tool["tool"], tool["input_tokens"]) == ("tool", "search_flights", None)
    # Children were exported (line 1) before their parent (line 2): context is still inherited.
    assert {(r["trace_id"], r["agent"], r["tenant"]) for r in rows} == {("conv-42", "planner", "acme")}
    assert spans["c2c2c2c2c2c2c2c2"]["line"] == 1 and rollup["line"] == 2
    assert spans["c1c1c1c1c1c1c1c1"]["model"] == "gpt-4o-2024-08-06"  # response model, not request
    assert spans["c1c1c1c1c1c1c1c1"]["record_id"] == "chatcmpl-trip-1"
    assert spans["c1c1c1c1c1c1c1c1"]["start"] == utc("2025-10-01T10:00:01Z")
    assert result.notes["roll-up spans not summed"] == 1
    # chat 1: 176 uncached x $2.50 + 1024 x $1.25 + 150 x $10 = $0.00322
    # chat 2: 464 x $2.50 + 1536 x $1.25 + 300 x $10 = $0.00608 -> $0.0093 (the roll-up would double it)
    assert priced_total(DATA / "rollup_agent.jsonl") == pytest.approx(0.0093)


def test_deprecated_vendor_and_hybrid_names_with_base64_ids() -> None:
    result = load_steps([str(DATA / "legacy_names.json")])
    assert result.skips.total == 0
    assert (result.files[0].format, result.files[0].records) == ("otlp-json", 1)
    spans = by_span(result.table.to_pylist())
    # base64 ids ("t61rcWkgMzE=") become the lowercase hex the spec uses.
    anthropic = spans["b7ad6b7169203331"]
    # gen_ai.usage.prompt_tokens 12 is Anthropic's raw uncached tail: smaller than cache_read_input_tokens, so
    # input = 12 + 30000 + 2500 = 32512. $: 12 x $3 + 30000 x $0.30 + 2500 x $3.75 + 480 x $15 = $0.025611
    assert (anthropic["input_tokens"], anthropic["cache_read_tokens"], anthropic["cache_write_tokens"]) == (
        32512,
        30000,
        2500,
    )
    assert (anthropic["output_tokens"], anthropic["provider"], anthropic["model"]) == (
        480,
        "anthropic",
        "claude-sonnet-4-5-20250929",
    )
    assert (anthropic["trace_id"], anthropic["tenant"]) == ("ticket-981", "u-17")
    assert result.notes["input tokens excluded cache tokens (added back)"] == 1
    # Sentry's input_tokens.cached: 5000 already includes the 4096 cached; reasoning 640 is inside 900.
    # $: 904 x $1.10 + 4096 x $0.275 + 900 x $4.40 = $0.0060808
    o4 = spans["00f067aa0ba902b7"]
    assert (o4["input_tokens"], o4["cache_read_tokens"], o4["output_tokens"], o4["reasoning_tokens"]) == (
        5000,
        4096,
        900,
        640,
    )
    assert o4["trace_id"] == "ticket-981"  # a sibling's session id names the whole OTel trace
    assert o4["tenant"] is None  # user.id is inherited from ancestors only
    # Traceloop's legacy llm.usage.*: 800 x $0.15 + 50 x $0.60 = $0.00015; total_tokens is ignored.
    legacy = spans["1f2e3d4c5b6a7988"]
    assert (legacy["kind"], legacy["input_tokens"], legacy["output_tokens"], legacy["model"]) == (
        "llm",
        800,
        50,
        "gpt-4o-mini",
    )
    # Hybrid: gen_ai.usage.* AND llm.token_count.* both say 1000/100: read once, not 2000/200.
    # $: 1000 x $0.15 + 100 x $0.60 = $0.00021, equal to the instrumentor's llm.cost.total.
    hybrid = spans["2a3b4c5d6e7f8091"]
    assert (hybrid["input_tokens"], hybrid["output_tokens"], hybrid["reported_cost_usd"]) == (1000, 100, 0.00021)
    assert hybrid["trace_id"] == "7d1c3a4e5f60718293a4b5c6d7e8f901"  # no conversation: the OTel trace id
    assert priced_total(DATA / "legacy_names.json") == pytest.approx(0.025611 + 0.0060808 + 0.00015 + 0.00021)


def test_console_dump_double_print_and_never_ended_span() -> None:
    result = load_steps([str(DATA / "console_dump.jsonl")])
    rows = result.table.to_pylist()
    assert result.skips.total == 0
    # Five printed objects, four spans: chat 0x2222… was printed at start (no end, no usage) and at end.
    assert (result.files[0].format, result.files[0].records, result.files[0].rows) == ("otel-console", 5, 4)
    assert result.notes["spans exported twice (kept once)"] == 1
    spans = by_span(rows)
    first = spans["2222222222222222"]
    assert (first["input_tokens"], first["cache_read_tokens"], first["cache_write_tokens"]) == (4200, 3000, 1000)
    assert first["end"] == utc("2025-10-03T14:00:03.4Z")
    assert first["line"] == 62  # the ended copy, where its object starts
    never_ended = spans["1111111111111111"]
    assert (never_ended["kind"], never_ended["agent"], never_ended["end"]) == ("agent", "researcher", None)
    assert spans["3333333333333333"]["tool"] == "fetch_url"
    # the calls first, then the other spans; steps count all of a trace's spans in time order
    assert [(r["kind"], r["line"], r["step"]) for r in rows] == [
        ("llm", 62, 2),
        ("llm", 131, 4),
        ("agent", 1, 1),
        ("tool", 100, 3),
    ]
    assert {(r["trace_id"], r["tenant"], r["agent"]) for r in rows} == {
        ("4bf92f3577b34da6a3ce929d0e0e4736", "globex", "researcher")
    }
    # A: 200 x $1 + 3000 x $0.10 + 1000 x $1.25 + 350 x $5 = $0.0035
    # B: 1400 x $1 + 4000 x $0.10 + 500 x $5 = $0.0043
    assert priced_total(DATA / "console_dump.jsonl") == pytest.approx(0.0078)


def test_phoenix_export_chain_rollup_tools_and_session() -> None:
    result = load_steps([str(DATA / "phoenix_spans.json")])
    rows = result.table.to_pylist()
    assert result.skips.total == 0
    assert (result.files[0].format, result.files[0].records, result.files[0].rows) == ("phoenix", 6, 5)
    spans = by_span(rows)
    assert spans["aa00000000000001"]["kind"] == "agent"  # AGENT span, no usage
    chain = spans["aa00000000000002"]  # CHAIN repeating its two LLM children: not summed
    assert (chain["kind"], chain["input_tokens"], chain["agent"]) == ("agent", 25000, "support_agent")
    assert "aa00000000000003" not in spans  # a retriever gives no row
    assert spans["aa00000000000005"]["tool"] == "lookup_order"
    first, second = spans["aa00000000000004"], spans["aa00000000000006"]
    # llm.token_count.prompt already includes cache read + write (12000 = 200 + 11000 + 800).
    assert (first["input_tokens"], first["cache_read_tokens"], first["cache_write_tokens"]) == (12000, 11000, 800)
    assert (second["output_tokens"], second["reasoning_tokens"]) == (400, 128)
    assert first["reported_cost_usd"] == 0.0159
    assert {(r["trace_id"], r["tenant"], r["agent"]) for r in rows} == {("sess-7", "cust-9", "support_agent")}
    assert [(r["kind"], r["line"], r["step"]) for r in rows] == [
        ("llm", 64, 3),
        ("llm", 111, 5),
        ("agent", 2, 1),
        ("agent", 23, 2),
        ("tool", 91, 4),
    ]
    # 200 x $3 + 11000 x $0.30 + 800 x $3.75 + 600 x $15 = $0.0159
    # 1200 x $3 + 11800 x $0.30 + 400 x $15 = $0.01314
    assert priced_total(DATA / "phoenix_spans.json") == pytest.approx(0.02904)


# --- detection ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("rollup_agent.jsonl", "otlp-json"),
        ("legacy_names.json", "otlp-json"),
        ("console_dump.jsonl", "otel-console"),
        ("phoenix_spans.json", "phoenix"),
    ],
)
def test_each_fixture_is_sniffed(name: str, fmt: str) -> None:
    assert detect(InputFile(name=name, path=DATA / name)).name == fmt


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ('[{"resourceSpans": []}]', "otlp-json"),
        ('{"resource_spans": []}\n', "otlp-json"),
        ('{"name": "x", "context": {"span_id": "0x2"}, "kind": "SpanKind.CLIENT"}\n', "otel-console"),
        ('{"name": "x", "context": {"trace_id": "a", "span_id": "b"}, "span_kind": "LLM"}\n', "phoenix"),
    ],
)
def test_compact_variants_are_sniffed(text: str, fmt: str) -> None:
    assert detect(InputFile(name="x", data=text.encode())).name == fmt


def test_call_log_mentioning_span_words_is_not_taken_for_spans() -> None:
    content = '\\"context\\": {\\"x\\": 1}, \\"kind\\": \\"SpanKind.CLIENT\\", \\"span_kind\\": 1, resourceSpans'
    line = (
        '{"object": "chat.completion", "model": "gpt-4o", "usage": {"prompt_tokens": 1, "completion_tokens": 1},'
        f' "choices": [{{"message": {{"content": "{content}"}}}}]}}\n'
    )
    assert detect(InputFile(name="x", data=line.encode())).name == "openai"


# --- attributes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        pytest.param(
            {"gen_ai.usage.prompt_tokens": 10, "gen_ai.usage.completion_tokens": 2}, (10, None, None, 2, None), id="old"
        ),
        pytest.param(
            {"gen_ai.usage.input_tokens": 100, "gen_ai.usage.cache_read_input_tokens": 60},
            (100, 60, None, None, None),
            id="traceloop-read",
        ),
        pytest.param(
            {"gen_ai.usage.input_tokens": 100, "gen_ai.usage.cached_input_tokens": 60, "gen_ai.usage.output_tokens": 1},
            (100, 60, None, 1, None),
            id="cached-input",
        ),
        pytest.param(
            {
                "gen_ai.usage.input_tokens": 100,
                "gen_ai.usage.cache_creation.input_tokens": 30,
                "gen_ai.usage.output_tokens": 9,
                "gen_ai.usage.reasoning.output_tokens": 4,
            },
            (100, None, 30, 9, 4),
            id="current",
        ),
        pytest.param(
            {"llm.usage.prompt_tokens": 7, "llm.usage.completion_tokens": 3, "llm.usage.cache_read_input_tokens": 5},
            (7, 5, None, 3, None),
            id="llm-usage",
        ),
        pytest.param(
            {
                "llm.token_count.prompt": 32321,
                "llm.token_count.prompt_details.cache_read": 31559,
                "llm.token_count.prompt_details.cache_write": 760,
                "llm.token_count.completion": 50,
                "llm.token_count.completion_details.reasoning": 20,
            },
            (32321, 31559, 760, 50, 20),
            id="openinference",
        ),
        pytest.param(
            {"gen_ai.usage.input_tokens": "577", "gen_ai.usage.output_tokens": 3.0},
            (577, None, None, 3, None),
            id="text",
        ),
    ],
)
def test_usage_spellings(attrs: dict[str, Any], expected: tuple[int | None, ...]) -> None:
    usage = read_attributes(attrs).usage
    assert usage is not None
    got = (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens, usage.output_tokens)
    assert (*got, usage.reasoning_tokens) == expected


def test_current_name_wins_over_deprecated_and_they_are_never_added() -> None:
    usage = read_attributes({"gen_ai.usage.input_tokens": 50, "gen_ai.usage.prompt_tokens": 40}).usage
    assert usage is not None and usage.input_tokens == 50


def test_hybrid_span_reads_openinference_only() -> None:
    facts = read_attributes(
        {
            "gen_ai.usage.input_tokens": 12,  # raw Anthropic tail in the GenAI family...
            "gen_ai.usage.cache_read.input_tokens": 900,
            "gen_ai.usage.output_tokens": 5,
            "llm.token_count.prompt": 912,  # ...inclusive in OpenInference: one family, never both
            "llm.token_count.prompt_details.cache_read": 900,
            "llm.token_count.completion": 5,
            "gen_ai.request.model": "claude-haiku-4-5",
            "llm.model_name": "claude-haiku-4-5-20251001",
        }
    )
    assert facts.family == "openinference"
    assert facts.usage is not None and (facts.usage.input_tokens, facts.usage.output_tokens) == (912, 5)
    assert facts.model == "claude-haiku-4-5-20251001"
    assert facts.repairs == ()


def test_anthropic_raw_input_is_repaired_in_either_family() -> None:
    # input 40 < read 1000 + write 200: input cannot include them, so it is the uncached tail: 40 + 1200.
    genai = read_attributes(
        {
            "gen_ai.usage.input_tokens": 40,
            "gen_ai.usage.cache_read.input_tokens": 1000,
            "gen_ai.usage.cache_creation.input_tokens": 200,
            "gen_ai.usage.output_tokens": 1,
        }
    )
    assert genai.usage is not None and genai.usage.input_tokens == 1240
    assert genai.repairs == ("input tokens excluded cache tokens (added back)",)
    oi = read_attributes({"llm.token_count.prompt": 3, "llm.token_count.prompt_details.cache_read": 10})
    assert oi.usage is not None and oi.usage.input_tokens == 13
    # When input >= read + write it is taken as inclusive (semconv), nothing added.
    fine = read_attributes({"gen_ai.usage.input_tokens": 1200, "gen_ai.usage.cache_read.input_tokens": 1000})
    assert fine.usage is not None and fine.usage.input_tokens == 1200 and fine.repairs == ()


def test_reasoning_outside_output_is_added() -> None:
    facts = read_attributes({"gen_ai.usage.output_tokens": 100, "gen_ai.usage.reasoning.output_tokens": 300})
    assert facts.usage is not None and (facts.usage.output_tokens, facts.usage.reasoning_tokens) == (400, 300)


@pytest.mark.parametrize(
    ("attrs", "provider"),
    [
        ({"gen_ai.provider.name": "gcp.vertex_ai", "gen_ai.system": "openai"}, "google"),
        ({"gen_ai.system": "aws.bedrock"}, "aws"),
        ({"gen_ai.provider.name": "azure.ai.openai"}, "azure"),
        ({"gen_ai.system": "Anthropic"}, "anthropic"),
        ({"llm.provider": "azure", "llm.system": "openai", "llm.model_name": "gpt-4o"}, "azure"),
        ({"llm.system": "mistralai", "llm.model_name": "mistral-large"}, "mistral"),
    ],
)
def test_provider_names_map_to_price_ids(attrs: dict[str, Any], provider: str) -> None:
    assert read_attributes(attrs).provider == provider


@pytest.mark.parametrize(
    ("attrs", "kind", "role"),
    [
        ({"gen_ai.operation.name": "generate_content"}, None, Role.LLM),
        ({"gen_ai.operation.name": "embeddings"}, None, Role.LLM),
        ({"gen_ai.operation.name": "execute_tool"}, None, Role.TOOL),
        ({"openinference.span.kind": "EMBEDDING"}, None, Role.LLM),
        ({}, "AGENT", Role.AGENT),
        ({"openinference.span.kind": "RETRIEVER"}, None, Role.OTHER),
        ({"llm.request.type": "completion"}, None, Role.LLM),
    ],
)
def test_roles(attrs: dict[str, Any], kind: str | None, role: Role) -> None:
    assert read_attributes(attrs, kind).role is role


@pytest.mark.parametrize(
    ("attrs", "reason"),
    [
        ({"gen_ai.usage.input_tokens": -1}, "negative"),
        ({"gen_ai.usage.input_tokens": 1.5}, "whole number"),
        ({"gen_ai.usage.input_tokens": "many"}, "whole number"),
        ({"gen_ai.usage.output_tokens": 2**64}, "too large"),
        ({"llm.cost.total": -0.5}, "non-negative"),
        ({"gen_ai.request.model": ["a"]}, "not text"),
    ],
)
def test_unusable_attributes_raise(attrs: dict[str, Any], reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        read_attributes(attrs)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5B8EFFF798038103D269B633813FC60C", "5b8efff798038103d269b633813fc60c"),
        ("0x00f067aa0ba902b7", "00f067aa0ba902b7"),
        ("AQEBAQEBAQEBAQEBAQEBAQ==", "01010101010101010101010101010101"),
        ("AAAAAAAAAAA=", None),
        ("0000000000000000", None),
        ("", None),
        ("run-7f3a", "run-7f3a"),
    ],
)
def test_ids_are_normalized_to_lowercase_hex(value: str, expected: str | None) -> None:
    assert span_id(value, "spanId") == expected


# --- whole-file JSON reading -------------------------------------------------------------------------------


def test_json_records_reads_lines_pretty_objects_and_arrays() -> None:
    text = '{"a": 1}\n{\n  "b": [\n    2\n  ]\n}\n\n[\n  {"c": 3},\n  {"d": 4}\n]\n'
    found = [(r.line, r.value) for r in json_records(text)]
    assert found == [(1, {"a": 1}), (2, {"b": [2]}), (9, {"c": 3}), (10, {"d": 4})]


def test_json_records_resumes_after_a_damaged_element() -> None:
    text = '[\n  {\n    "a": 1,\n    "b": \n  },\n  {\n    "c": 3\n  }\n]\n{"d": 4}\n'
    found = [(r.line, r.value, r.error) for r in json_records(text)]
    assert found[0][0] == 2 and found[0][2] is not None and found[0][2].startswith("malformed JSON")
    assert found[1:] == [(6, {"c": 3}, None), (10, {"d": 4}, None)]


def test_json_records_truncated_file_is_one_bad_record() -> None:
    found = list(json_records('{"a": 1}\n{"b": [1, 2'))
    assert [(r.line, r.value) for r in found] == [(1, {"a": 1}), (2, None)]
    assert found[1].error is not None


# --- the span tree -----------------------------------------------------------------------------------------


def test_nearest_agent_wins_for_nested_agents(write: Any) -> None:
    path = write(
        [
            otlp_request(
                otlp_span("0000000000000001", agent("boss", **{"gen_ai.conversation.id": "c1"})),
                otlp_span("0000000000000002", chat(10, 1), parent="0000000000000001"),
                otlp_span("0000000000000003", {"gen_ai.operation.name": "execute_tool"}, "0000000000000001", name="t"),
                otlp_span("0000000000000004", agent("helper"), parent="0000000000000003"),
                otlp_span("0000000000000005", chat(20, 2), parent="0000000000000004"),
            )
        ]
    )
    spans = by_span(rows_of(path))
    assert spans["0000000000000002"]["agent"] == "boss"
    assert spans["0000000000000005"]["agent"] == "helper"
    assert spans["0000000000000003"]["tool"] == "t"  # no tool name attribute: the span name
    assert {r["trace_id"] for r in spans.values()} == {"c1"}


def test_agent_name_from_span_name_and_agent_span_with_own_usage_is_a_call(write: Any) -> None:
    # Only the agent span reports usage (no chat spans recorded): it is the call, counted once.
    attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.usage.input_tokens": 70, "gen_ai.usage.output_tokens": 7}
    path = write([otlp_request(otlp_span("0000000000000001", attrs, name="invoke_agent triage"))])
    (row,) = rows_of(path)
    assert (row["kind"], row["agent"], row["input_tokens"]) == ("llm", "triage", 70)


def test_agent_span_without_a_name_falls_back_to_its_id_never_to_the_bare_operation(write: Any) -> None:
    bare = {"gen_ai.operation.name": "invoke_agent"}
    path = write(
        [
            otlp_request(
                otlp_span("0000000000000001", bare, name="invoke_agent"),
                otlp_span("0000000000000002", chat(1, 1), parent="0000000000000001"),
                otlp_span("0000000000000003", dict(bare, **{"gen_ai.agent.id": "asst_9"}), name="invoke_agent"),
                otlp_span("0000000000000004", chat(1, 1), parent="0000000000000003"),
            )
        ]
    )
    spans = by_span(rows_of(path))
    assert spans["0000000000000002"]["agent"] is None
    assert spans["0000000000000004"]["agent"] == "asst_9"


def test_model_call_without_usage_is_unknown_not_zero(write: Any) -> None:
    no_usage = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
    path = write(
        [
            otlp_request(
                # A framework wrapper span and the client span under it, neither with usage: one call.
                otlp_span("0000000000000001", {"openinference.span.kind": "LLM"}),
                otlp_span("0000000000000002", no_usage, parent="0000000000000001"),
            )
        ]
    )
    result = load_steps([path])
    (row,) = result.table.to_pylist()
    assert (row["span_id"], row["kind"], row["input_tokens"], row["usage_source"]) == (
        "0000000000000002",
        "llm",
        None,
        None,
    )
    assert result.notes["calls without usage"] == 1


def test_wrapper_llm_span_repeating_its_client_span_is_counted_once(write: Any) -> None:
    path = write(
        [
            otlp_request(
                otlp_span("0000000000000001", {"openinference.span.kind": "LLM", "llm.token_count.prompt": 500}),
                otlp_span("0000000000000002", chat(500, 20), parent="0000000000000001"),
            )
        ]
    )
    rows = rows_of(path)
    assert total(rows, "input_tokens") == 500
    assert by_span(rows)["0000000000000001"]["kind"] == "agent"


def test_parent_cycles_and_orphans_do_not_hang(write: Any) -> None:
    path = write(
        [
            otlp_request(
                otlp_span("0000000000000001", chat(1, 1), parent="0000000000000002"),
                otlp_span("0000000000000002", chat(2, 1), parent="0000000000000001"),
                otlp_span("0000000000000003", chat(3, 1), parent="0000000000000003"),
                otlp_span("0000000000000004", chat(4, 1), parent="00000000000000ff"),
            )
        ]
    )
    rows = rows_of(path)
    assert len(rows) == 4
    assert by_span(rows)["0000000000000004"]["kind"] == "llm"  # parent not in the file: still a call


def test_tenant_priority_span_then_resource_then_user(write: Any) -> None:
    resource = {"service.namespace": "shop", "tenant.id": "from-resource"}
    path = write(
        [
            otlp_request(
                otlp_span("0000000000000001", chat(1, 1, **{"user.id": "u1"})),
                otlp_span("0000000000000002", chat(1, 1, **{"tenant.id": "from-span"})),
                resource=resource,
            ),
            otlp_request(otlp_span("0000000000000003", chat(1, 1, **{"user.id": "u3"}), trace="0" * 31 + "1")),
            otlp_request(otlp_span("0000000000000004", chat(1, 1), trace="0" * 31 + "2"), resource={"x": "y"}),
        ]
    )
    spans = by_span(rows_of(path))
    assert spans["0000000000000001"]["tenant"] == "from-resource"  # tenant.id beats user.id
    assert spans["0000000000000002"]["tenant"] == "from-span"
    assert spans["0000000000000003"]["tenant"] == "u3"
    assert spans["0000000000000004"]["tenant"] is None  # service.namespace is not a tenant


def test_span_exported_twice_keeps_the_ended_copy(write: Any) -> None:
    ended = otlp_span("0000000000000001", chat(9, 9))
    started = dict(otlp_span("0000000000000001", {"gen_ai.operation.name": "chat"}), endTimeUnixNano="0")
    path = write([otlp_request(ended), otlp_request(started)])
    (row,) = rows_of(path)
    assert (row["input_tokens"], row["line"]) == (9, 1)


def test_nanosecond_times_are_exact_microseconds(write: Any) -> None:
    span = dict(otlp_span("0000000000000001", chat(1, 1)), startTimeUnixNano="1759312800123456789")
    (row,) = rows_of(write([otlp_request(span)]))
    assert row["start"] == utc("2025-10-01T10:00:00.123456Z")


def test_reported_cost_from_genai_vendor_attribute(write: Any) -> None:
    (row,) = rows_of(write([otlp_request(otlp_span("0000000000000001", chat(1, 1, **{"gen_ai.usage.cost": 0.5})))]))
    assert row["reported_cost_usd"] == 0.5


# --- skips, records and strict mode ------------------------------------------------------------------------


def test_bad_span_is_a_counted_skip_at_its_request_line(write: Any) -> None:
    good = otlp_request(otlp_span("0000000000000001", chat(10, 1)))
    bad = otlp_request(
        otlp_span("0000000000000002", chat(10, 1)),
        otlp_span("0000000000000003", chat(-5, 1)),
        {"spanId": ["x"]},
    )
    path = write([good, "not json", bad, [1, 2], {"resourceSpans": "nope"}])
    result = load_steps([path], format_in="otlp-json")
    assert sorted(r["span_id"] for r in result.table.to_pylist()) == ["0000000000000001", "0000000000000002"]
    # records: 3 lines + the two elements of the array on line 4 + line 5
    assert result.files[0].records == 6
    assert result.skips.total == 6
    examples = "\n".join(result.skips.examples)
    assert f"{path}:2: malformed JSON" in examples
    assert f"{path}:3: gen_ai.usage.input_tokens is negative: -5" in examples
    assert f"{path}:3: spanId is not text" in examples
    assert f"{path}:4: expected an ExportTraceServiceRequest object, got int" in examples


def test_strict_mode_stops_at_the_first_bad_span(write: Any) -> None:
    path = write([otlp_request(otlp_span("0000000000000001", chat(10, 1, **{"gen_ai.usage.output_tokens": "x"})))])
    with pytest.raises(InputError, match=rf"{path}:1: gen_ai.usage.output_tokens"):
        load_steps([path], strict=True)


def test_console_damaged_object_costs_one_skip(write: Any) -> None:
    lines = (DATA / "console_dump.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    lines[40] = '        "gen_ai.usage.input_tokens": ,\n'  # inside the object starting on line 31
    path = write("".join(lines), name="console.jsonl")
    result = load_steps([path])
    assert result.files[0].records == 5
    assert result.skips.examples == [f"{path}:31: malformed JSON (Expecting value)"]
    assert len(result.table) == 4  # the ended copy of the same span is still there


def test_phoenix_non_object_elements_are_skipped(write: Any) -> None:
    spans = orjson.loads((DATA / "phoenix_spans.json").read_bytes())
    path = write(orjson.dumps([spans[3], 42, {"name": "no context"}]).decode(), name="px.json")
    result = load_steps([path], format_in="phoenix")
    assert result.files[0].records == 3
    assert sorted(result.skips.counts) == ["expected a span object, got int", "span has no context object"]
    assert len(result.table) == 1


def test_gzipped_console_dump(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl.gz"
    path.write_bytes(gzip.compress((DATA / "console_dump.jsonl").read_bytes()))
    assert len(rows_of(path)) == 4
