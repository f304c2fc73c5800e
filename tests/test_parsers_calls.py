"""Request/response call logs: per-provider usage semantics normalized to inclusive buckets,
wrapper metadata, family detection, rejected records and step ordering."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from costscope import load_steps
from costscope.errors import InputError
from costscope.parsers import openai as openai_family
from costscope.parsers.base import RecordError
from costscope.parsers.calls import record_row

DATA = Path(__file__).parent / "data" / "calls"
TOKENS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)


CHAT_USAGE = {"prompt_tokens": 1, "completion_tokens": 1}


def tokens(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in TOKENS}


def us(text: str) -> int:
    """Microseconds since the epoch of an ISO time (UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


# --- OpenAI -----------------------------------------------------------------------------------------------


def test_openai_chat_completions_prompt_includes_cached_and_completion_includes_reasoning() -> None:
    row = record_row(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1_759_312_800,
            "model": "o4-mini",
            "usage": {
                "prompt_tokens": 2006,
                "completion_tokens": 300,
                "total_tokens": 2306,
                "prompt_tokens_details": {"cached_tokens": 1920},
                "completion_tokens_details": {"reasoning_tokens": 256},
            },
        },
        None,
    )
    # prompt_tokens already contains the 1920 cached tokens: nothing is added or subtracted.
    assert tokens(row) == {
        "input_tokens": 2006,
        "cache_read_tokens": 1920,
        "cache_write_tokens": None,
        "cache_write_1h_tokens": None,
        "output_tokens": 300,  # reasoning is inside completion_tokens, not added on top
        "reasoning_tokens": 256,
    }
    assert row["provider"] == "openai"
    assert row["model"] == "o4-mini"
    assert row["record_id"] == "chatcmpl-1"
    assert row["usage_source"] == "reported"
    assert row["start"] == 1_759_312_800 * 1_000_000  # `created` (epoch seconds) when no wrapper time


def test_openai_responses_api_shape() -> None:
    row = record_row(
        {
            "id": "resp_1",
            "object": "response",
            "created_at": 1_759_312_800,
            "model": "gpt-5",
            "service_tier": "flex",
            "usage": {
                "input_tokens": 5000,
                "input_tokens_details": {"cached_tokens": 4096},
                "output_tokens": 900,
                "output_tokens_details": {"reasoning_tokens": 640},
                "total_tokens": 5900,
            },
        },
        None,
    )
    assert tokens(row) == {
        "input_tokens": 5000,
        "cache_read_tokens": 4096,
        "cache_write_tokens": None,
        "cache_write_1h_tokens": None,
        "output_tokens": 900,
        "reasoning_tokens": 640,
    }
    assert row["provider"] == "openai"
    assert row["service_tier"] == "flex"
    assert row["start"] == 1_759_312_800 * 1_000_000


def test_openai_responses_api_without_object_field_is_still_openai() -> None:
    # No "object" key: the *_details keys alone identify the OpenAI shape (input stays inclusive).
    row = record_row(
        {
            "model": "gpt-4.1",
            "usage": {"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 1024}, "output_tokens": 10},
        },
        None,
    )
    assert row["input_tokens"] == 1200
    assert row["cache_read_tokens"] == 1024


LITELLM_RESPONSE: dict[str, Any] = {
    "object": "chat.completion",
    "model": "claude-sonnet-4-5",
    "usage": {
        "prompt_tokens": 3000,
        "completion_tokens": 100,
        "prompt_tokens_details": {"cached_tokens": 1500},
        "cache_creation_input_tokens": 1200,
        "cache_read_input_tokens": 1500,
    },
}
LITELLM_TOKENS = {
    # OpenAI shape => prompt_tokens is the inclusive total; the creation tokens are a subset of it.
    "input_tokens": 3000,
    "cache_read_tokens": 1500,
    "cache_write_tokens": 1200,
    "cache_write_1h_tokens": None,
    "output_tokens": 100,
    "reasoning_tokens": None,
}


def test_litellm_openai_shape_with_top_level_cache_creation_is_a_cache_write_when_pinned() -> None:
    assert tokens(record_row(LITELLM_RESPONSE, openai_family)) == LITELLM_TOKENS


def test_litellm_openai_shape_with_top_level_cache_creation_is_a_cache_write() -> None:
    assert tokens(record_row(LITELLM_RESPONSE, None)) == LITELLM_TOKENS


def test_litellm_usage_without_object_key_is_openai() -> None:
    response = {"model": "claude-sonnet-4-5", "usage": dict(LITELLM_RESPONSE["usage"])}
    assert tokens(record_row(response, None)) == LITELLM_TOKENS


# --- Anthropic --------------------------------------------------------------------------------------------


def anthropic_message(usage: dict[str, Any], model: str = "claude-sonnet-4-5") -> dict[str, Any]:
    return {"id": "msg_01", "type": "message", "role": "assistant", "model": model, "usage": usage}


def test_anthropic_total_input_adds_cache_read_and_creation() -> None:
    row = record_row(
        anthropic_message(
            {
                "input_tokens": 12,
                "cache_read_input_tokens": 30_000,
                "cache_creation_input_tokens": 2_500,
                "output_tokens": 480,
            }
        ),
        None,
    )
    assert tokens(row) == {
        "input_tokens": 12 + 30_000 + 2_500,
        "cache_read_tokens": 30_000,
        "cache_write_tokens": 2_500,
        "cache_write_1h_tokens": None,  # no split given: every write is a 5m write
        "output_tokens": 480,
        "reasoning_tokens": None,
    }
    assert row["provider"] == "anthropic"
    assert row["record_id"] == "msg_01"


def test_anthropic_ttl_split_5m_and_1h() -> None:
    row = record_row(
        anthropic_message(
            {
                "input_tokens": 7,
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 3_000,
                "cache_creation": {"ephemeral_5m_input_tokens": 1_000, "ephemeral_1h_input_tokens": 2_000},
                "output_tokens": 50,
            }
        ),
        None,
    )
    assert row["input_tokens"] == 3_007
    assert row["cache_write_tokens"] == 3_000
    assert row["cache_write_1h_tokens"] == 2_000


def test_anthropic_split_alone_gives_the_write_total() -> None:
    row = record_row(
        anthropic_message(
            {
                "input_tokens": 5,
                "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 400},
                "output_tokens": 9,
            }
        ),
        None,
    )
    assert row["cache_write_tokens"] == 500
    assert row["cache_write_1h_tokens"] == 400
    assert row["input_tokens"] == 505


def test_anthropic_split_that_disagrees_with_creation_total_is_rejected() -> None:
    bad = anthropic_message(
        {
            "input_tokens": 7,
            "cache_creation_input_tokens": 3_000,
            "cache_creation": {"ephemeral_5m_input_tokens": 1_000, "ephemeral_1h_input_tokens": 1_000},
            "output_tokens": 50,
        }
    )
    with pytest.raises(RecordError, match="3000"):
        record_row(bad, None)


def test_anthropic_service_tier_is_read_from_usage() -> None:
    row = record_row(
        anthropic_message({"input_tokens": 10, "output_tokens": 2, "service_tier": "priority"}),
        None,
    )
    assert row["service_tier"] == "priority"


def test_bare_usage_without_cache_fields_on_claude_model_is_anthropic() -> None:
    row = record_row({"model": "claude-haiku-4-5", "usage": {"input_tokens": 10, "output_tokens": 2}}, None)
    assert row["provider"] == "anthropic"
    assert row["input_tokens"] == 10


# --- Gemini -----------------------------------------------------------------------------------------------


def test_gemini_prompt_includes_cached_tool_prompt_added_thoughts_added_to_output() -> None:
    row = record_row(
        {
            "modelVersion": "gemini-2.5-flash",
            "responseId": "abc",
            "createTime": "2025-10-01T12:00:00Z",
            "candidates": [{"content": {"parts": [{"text": "hi"}]}}],
            "usageMetadata": {
                "promptTokenCount": 10_000,
                "cachedContentTokenCount": 8_000,
                "toolUsePromptTokenCount": 200,
                "candidatesTokenCount": 500,
                "thoughtsTokenCount": 1_500,
                "totalTokenCount": 12_200,
            },
        },
        None,
    )
    assert tokens(row) == {
        "input_tokens": 10_000 + 200,  # prompt already includes the 8000 cached; tool-use prompt is extra
        "cache_read_tokens": 8_000,
        "cache_write_tokens": None,
        "cache_write_1h_tokens": None,
        "output_tokens": 500 + 1_500,  # thoughts are outside candidatesTokenCount
        "reasoning_tokens": 1_500,
    }
    assert row["provider"] == "google"
    assert row["model"] == "gemini-2.5-flash"
    assert row["record_id"] == "abc"
    assert row["start"] == us("2025-10-01T12:00:00Z")


def test_gemini_snake_case_usage_metadata() -> None:
    row = record_row(
        {
            "model_version": "gemini-2.5-pro",
            "usage_metadata": {
                "prompt_token_count": 4_000,
                "cached_content_token_count": 1_000,
                "tool_use_prompt_token_count": 50,
                "candidates_token_count": 300,
                "thoughts_token_count": 700,
            },
        },
        None,
    )
    assert row["model"] == "gemini-2.5-pro"
    assert row["input_tokens"] == 4_050
    assert row["cache_read_tokens"] == 1_000
    assert row["output_tokens"] == 1_000
    assert row["reasoning_tokens"] == 700
    assert row["provider"] == "google"


# --- wrappers ---------------------------------------------------------------------------------------------


def test_wrapper_aliases_session_user_latency() -> None:
    row = record_row(
        {
            "timestamp": "2025-10-01T10:00:00.250Z",
            "session_id": "sess-9",
            "user": "acme",
            "agent_name": "planner",
            "task": "plan",
            "latency_ms": 1500,
            "call_id": "c-1",
            "parent_span_id": "p-0",
            "metadata": {"env": "prod", "attempt": 2},
            "request": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            "response": {"object": "chat.completion", "usage": {"prompt_tokens": 10, "completion_tokens": 3}},
        },
        None,
    )
    start = us("2025-10-01T10:00:00.250Z")
    assert row["trace_id"] == "sess-9"
    assert row["tenant"] == "acme"
    assert row["agent"] == "planner"
    assert row["operation"] == "plan"
    assert row["span_id"] == "c-1"
    assert row["parent_id"] == "p-0"
    assert row["start"] == start
    assert row["end"] == start + 1_500_000
    assert row["model"] == "gpt-4o"  # from the request when the response has none
    assert row["request_hash"] is not None
    assert dict(row["tags"]) == {"env": "prod", "attempt": "2"}


def test_wrapper_conversation_id_and_explicit_end() -> None:
    row = record_row(
        {
            "start_time": "2025-10-01T10:00:00Z",
            "end_time": "2025-10-01T10:00:02Z",
            "latency_ms": 99_999,  # an explicit end wins over a duration
            "conversation_id": "conv-1",
            "response": anthropic_message({"input_tokens": 1, "output_tokens": 1}),
        },
        None,
    )
    assert row["trace_id"] == "conv-1"
    assert row["end"] == us("2025-10-01T10:00:02Z")


def test_request_hash_ignores_key_order_and_differs_on_content() -> None:
    response = {"object": "chat.completion", "model": "gpt-4o", "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    a = record_row({"request": {"model": "gpt-4o", "temperature": 0}, "response": response}, None)
    b = record_row({"request": {"temperature": 0, "model": "gpt-4o"}, "response": response}, None)
    c = record_row({"request": {"temperature": 1, "model": "gpt-4o"}, "response": response}, None)
    assert a["request_hash"] == b["request_hash"] != c["request_hash"]


def test_bare_object_has_no_wrapper_fields() -> None:
    row = record_row(
        {
            "object": "chat.completion",
            "model": "gpt-4o",
            "user": "x",
            "usage": {"prompt_tokens": 5, "completion_tokens": 1},
        },
        None,
    )
    # A bare response's own keys are not wrapper metadata (OpenAI's "user" is not a tenant here).
    assert row["tenant"] is None
    assert row["trace_id"] is None
    assert row["request_hash"] is None
    assert row["input_tokens"] == 5


def test_provider_from_wrapper_overrides_and_is_normalized() -> None:
    azure = record_row(
        {
            "provider": "Azure",
            "response": {"object": "chat.completion", "model": "gpt-4o", "usage": CHAT_USAGE},
        },
        None,
    )
    assert azure["provider"] == "azure"
    vertex = record_row(
        {"provider": "vertex_ai", "response": {"usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1}}},
        None,
    )
    assert vertex["provider"] == "google"


def test_openai_shape_from_non_openai_model_has_no_provider_guess() -> None:
    row = record_row(
        {"object": "chat.completion", "model": "llama-3-70b", "usage": {"prompt_tokens": 5, "completion_tokens": 1}},
        None,
    )
    assert row["provider"] is None


def test_wrapper_batch_flag_sets_batch_tier() -> None:
    row = record_row(
        {"batch": True, "response": anthropic_message({"input_tokens": 1, "output_tokens": 1})},
        None,
    )
    assert row["service_tier"] == "batch"


def test_error_response_without_usage_is_rejected() -> None:
    with pytest.raises(RecordError, match="not billed"):
        record_row({"response": {"error": {"message": "overloaded"}}}, None)


def test_record_without_usage_shape_is_rejected() -> None:
    with pytest.raises(RecordError, match="no usage"):
        record_row({"hello": "world"}, None)


def test_non_object_record_is_rejected() -> None:
    with pytest.raises(RecordError, match="JSON object"):
        record_row([1, 2, 3], None)


def test_mixed_file_detects_family_per_record() -> None:
    result = load_steps([str(DATA / "mixed_gateway.jsonl")])
    assert result.skips.total == 0
    rows = {r["agent"]: r for r in result.table.to_pylist()}
    # OpenAI: inclusive prompt.
    assert (rows["router"]["provider"], rows["router"]["input_tokens"], rows["router"]["cache_read_tokens"]) == (
        "openai",
        2006,
        1920,
    )
    # Anthropic: 50 + 4000 + 1000.
    assert (rows["coder"]["provider"], rows["coder"]["input_tokens"], rows["coder"]["cache_write_tokens"]) == (
        "anthropic",
        5050,
        1000,
    )
    # Gemini: thoughts added to candidates.
    assert (rows["reviewer"]["provider"], rows["reviewer"]["input_tokens"], rows["reviewer"]["output_tokens"]) == (
        "google",
        3000,
        500,
    )
    assert [r["step"] for r in result.table.to_pylist()] == [1, 2, 3]
    assert {r["trace_id"] for r in result.table.to_pylist()} == {"gw-1"}


def test_format_in_pins_one_family(jsonl_file: Any) -> None:
    # Anthropic-looking usage (cache_read_input_tokens): detected as Anthropic the tail is added to the reads...
    usage = {"input_tokens": 100, "cache_read_input_tokens": 60, "output_tokens": 5}
    record = {"model": "mystery-model", "usage": usage}
    path = jsonl_file([record])
    detected = load_steps([path]).table.to_pylist()[0]
    assert detected["input_tokens"] == 160
    assert detected["format"] == "anthropic"
    # ...but forced to OpenAI semantics input_tokens already includes the 60 cached tokens.
    forced = load_steps([path], format_in="openai").table.to_pylist()[0]
    assert forced["input_tokens"] == 100
    assert forced["cache_read_tokens"] == 60
    assert forced["format"] == "openai"


def test_format_in_unknown_name_is_an_input_error(jsonl_file: Any) -> None:
    path = jsonl_file([{"object": "chat.completion", "usage": {"prompt_tokens": 1, "completion_tokens": 1}}])
    with pytest.raises(InputError, match="unknown input format"):
        load_steps([path], format_in="nope")


# --- rejected records -------------------------------------------------------------------------------------

GOOD = {"object": "chat.completion", "model": "gpt-4o", "usage": {"prompt_tokens": 10, "completion_tokens": 2}}

BAD_RECORDS = [
    pytest.param(
        {"object": "chat.completion", "model": "gpt-4o", "usage": {"prompt_tokens": -1, "completion_tokens": 2}},
        "negative",
        id="negative-count",
    ),
    pytest.param(
        {"object": "chat.completion", "model": "gpt-4o", "usage": {"prompt_tokens": "12", "completion_tokens": 2}},
        "not a number",
        id="string-count",
    ),
    pytest.param(
        {"object": "chat.completion", "model": "gpt-4o", "usage": {"prompt_tokens": 10.5, "completion_tokens": 2}},
        "whole number",
        id="fractional-count",
    ),
    pytest.param(
        {
            "object": "chat.completion",
            "model": "gpt-4o",
            "usage": {"prompt_tokens": 100, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 101}},
        },
        "exceed the input",
        id="cached-over-prompt",
    ),
    pytest.param(
        {
            "object": "chat.completion",
            "model": "o3",
            "usage": {
                "prompt_tokens": 100,
                "completion_tokens": 20,
                "completion_tokens_details": {"reasoning_tokens": 21},
            },
        },
        "reasoning tokens",
        id="reasoning-over-output",
    ),
    pytest.param(
        {"usageMetadata": {"promptTokenCount": 10, "cachedContentTokenCount": 11, "candidatesTokenCount": 1}},
        "exceed the input",
        id="gemini-cached-over-prompt",
    ),
]


@pytest.mark.parametrize(("bad", "reason"), BAD_RECORDS)
def test_bad_record_is_skipped_with_file_and_line(jsonl_file: Any, bad: dict[str, Any], reason: str) -> None:
    path = jsonl_file([GOOD, bad, GOOD])
    result = load_steps([path])
    assert result.table.num_rows == 2
    assert sorted(result.table["line"].to_pylist()) == [1, 3]
    assert result.skips.total == 1
    assert len(result.skips.examples) == 1
    example = result.skips.examples[0]
    assert example.startswith(f"{path}:2: ")
    assert reason in example
    assert result.files[0].records == 3
    assert result.files[0].rows == 2


@pytest.mark.parametrize(("bad", "reason"), BAD_RECORDS)
def test_bad_record_in_strict_mode_raises_naming_file_and_line(
    jsonl_file: Any, bad: dict[str, Any], reason: str
) -> None:
    path = jsonl_file([GOOD, bad])
    with pytest.raises(InputError) as info:
        load_steps([path], strict=True)
    assert f"{path}:2" in str(info.value)
    assert reason in str(info.value)


def test_malformed_json_line_is_skipped_and_named(jsonl_file: Any) -> None:
    path = jsonl_file([GOOD, "", '{"object": "chat.completion", "usage": {', GOOD])
    result = load_steps([path])
    assert result.table.num_rows == 2
    # Blank line 2 is not a record; the broken one is line 3.
    assert result.skips.total == 1
    assert result.skips.examples[0].startswith(f"{path}:3: malformed JSON")
    with pytest.raises(InputError, match=rf"{path}:3"):
        load_steps([path], strict=True)


def test_skip_reasons_are_counted(jsonl_file: Any) -> None:
    negative = {"object": "chat.completion", "usage": {"prompt_tokens": -5, "completion_tokens": 1}}
    path = jsonl_file([negative, negative, GOOD, "not json"])
    result = load_steps([path])
    assert result.skips.total == 3
    assert result.table.num_rows == 1
    assert max(result.skips.counts.values()) == 2


# --- ordering ---------------------------------------------------------------------------------------------


def wrapped(trace: str | None, when: str, prompt: int) -> dict[str, Any]:
    record: dict[str, Any] = {
        "timestamp": when,
        "response": {
            "object": "chat.completion",
            "model": "gpt-4o",
            "usage": {"prompt_tokens": prompt, "completion_tokens": 1},
        },
    }
    if trace is not None:
        record["trace_id"] = trace
    return record


def test_steps_are_numbered_by_time_within_a_trace(jsonl_file: Any) -> None:
    path = jsonl_file(
        [
            wrapped("t1", "2025-10-01T10:00:30Z", 3),
            wrapped("t2", "2025-10-01T09:00:00Z", 20),
            wrapped("t1", "2025-10-01T10:00:00Z", 1),
            wrapped("t1", "2025-10-01T10:00:10Z", 2),
        ]
    )
    rows = load_steps([path]).table.to_pylist()
    t1 = [(r["step"], r["input_tokens"], r["line"]) for r in rows if r["trace_id"] == "t1"]
    assert t1 == [(1, 1, 3), (2, 2, 4), (3, 3, 1)]
    t2 = [(r["step"], r["input_tokens"]) for r in rows if r["trace_id"] == "t2"]
    assert t2 == [(1, 20)]


def test_calls_without_trace_get_source_line_ids(jsonl_file: Any) -> None:
    path = jsonl_file([wrapped(None, "2025-10-01T10:00:00Z", 1), GOOD, wrapped("t1", "2025-10-01T10:00:00Z", 1)])
    rows = load_steps([path]).table.to_pylist()
    ids = sorted(r["trace_id"] for r in rows)
    assert ids == sorted([f"{path}:1", f"{path}:2", "t1"])
    assert all(r["step"] == 1 for r in rows)


def test_an_object_field_of_the_wrong_type_is_not_a_crash(jsonl_file: Any) -> None:
    path = jsonl_file([{"": "x", "object": {"a": 1}}, {"object": ["chat.completion"], "usage": {"prompt_tokens": 1}}])
    result = load_steps([path], format_in="openai")
    assert result.skips.total + result.table.num_rows == 2
