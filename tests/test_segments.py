"""Request bodies split into segments (system, tools, history, user, tool_result, framing, output) and counted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_tokens import COOKBOOK_MESSAGES, COOKBOOK_TOOL_MESSAGES, COOKBOOK_TOOLS

from costscope import tokens
from costscope.parsers.segments import Recount, Segment, request_segments, response_segments
from costscope.steps import load_steps


def counted(family: str, request: dict[str, Any], model: str = "gpt-4-0613") -> list[dict[str, Any]]:
    row: dict[str, Any] = {"model": model, "usage_source": "reported"}
    recount = Recount(tokens.CountMemo())
    recount.add(row, request_segments(family, request, model))
    recount.flush()
    segments: list[dict[str, Any]] = row["segments"]
    return segments


def test_cookbook_request_splits_into_segments_that_sum_to_its_count() -> None:
    segments = counted("openai", {"model": "gpt-4-0613", "messages": COOKBOOK_MESSAGES})
    assert [s["kind"] for s in segments] == ["system"] * 5 + ["user", "framing"]
    assert sum(s["tokens"] for s in segments) == 129


def test_cookbook_tools_request_sums_to_105() -> None:
    segments = counted(
        "openai", {"model": "gpt-4", "messages": COOKBOOK_TOOL_MESSAGES, "tools": COOKBOOK_TOOLS}, "gpt-4"
    )
    assert [s["kind"] for s in segments] == ["tools", "system", "user", "framing"]
    assert sum(s["tokens"] for s in segments) == 105


def test_a_synthetic_agent_step_has_the_known_segments_and_sums_exactly() -> None:
    tok = tokens.tokenizer_for("gpt-4")
    system, task, plan = "You are a coding agent.", "Fix the failing test in parser.py.", "Let me look."
    result, new_result = "def parse(x):\n    return x\n" * 20, "1 failed, 12 passed"
    request = {
        "model": "gpt-4",
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": task},
            {
                "role": "assistant",
                "content": plan,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "read", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": result},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c2", "type": "function", "function": {"name": "test", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c2", "content": new_result},
        ],
    }
    segments = counted("openai", request, "gpt-4")
    shape = [(s["kind"], s["tool"]) for s in segments]
    assert shape == [
        ("system", None),
        ("history", None),
        ("history", None),
        ("history", "read"),
        ("tool_result", "read"),
        ("history", "test"),
        ("tool_result", "test"),
        ("framing", None),
    ]
    texts = [system, task, plan, "read{}", result, "test{}", new_result]
    framing = 3 * 6 + 3 + sum(tok.count(r) for r in ("system", "user", "assistant", "tool", "assistant", "tool"))
    assert [s["tokens"] for s in segments] == [tok.count(t) for t in texts] + [framing]
    assert [s["chars"] for s in segments[:-1]] == [len(t) for t in texts]


def test_anthropic_blocks_and_tool_names() -> None:
    request = {
        "system": [{"type": "text", "text": "Be brief."}],
        "tools": [{"name": "lookup", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "Where is order 7?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "lookup", "input": {"n": 7}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "shipped"}]},
        ],
    }
    kinds = [(s.kind, s.tool) for s in request_segments("anthropic", request, "claude-sonnet-4-5")]
    assert kinds == [
        ("tools", None),
        ("system", None),
        ("history", None),
        ("history", "lookup"),
        ("tool_result", "lookup"),
        ("framing", None),
    ]
    out = response_segments("anthropic", {"content": [{"type": "text", "text": "It shipped."}]})
    assert [(s.kind, s.text) for s in out] == [("output", "It shipped.")]


def test_responses_api_and_gemini_shapes() -> None:
    responses = {
        "instructions": "Answer in French.",
        "input": [
            {"role": "user", "content": "Hi"},
            {"type": "function_call", "call_id": "a", "name": "clock", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "a", "output": "12:00"},
        ],
    }
    kinds = [(s.kind, s.tool) for s in request_segments("openai", responses, "gpt-4.1")]
    assert kinds == [
        ("system", None),
        ("history", None),
        ("history", "clock"),
        ("tool_result", "clock"),
        ("framing", None),
    ]
    gemini = {
        "systemInstruction": {"parts": [{"text": "Classify."}]},
        "contents": [{"role": "user", "parts": [{"text": "I love it"}]}],
    }
    assert [s.kind for s in request_segments("gemini", gemini, "gemini-2.5-flash")] == ["system", "user", "framing"]


def test_same_text_has_the_same_hash_in_every_call() -> None:
    a, b = Segment("system", "same"), Segment("tool_result", "same")
    assert a.key == b.key and len(a.key) == 16
    assert Segment("system", "other").key != a.key


def _agent_trace(steps: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Chat requests of one agent trace: every call re-sends the system prompt and the whole history."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are an agent. " * 30}]
    requests = []
    for i, (user, tool_output) in enumerate(steps):
        messages.append({"role": "user", "content": user})
        requests.append({"model": "gpt-4", "messages": list(messages)})
        call = {"id": f"c{i}", "type": "function", "function": {"name": "run", "arguments": "{}"}}
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        messages.append({"role": "tool", "tool_call_id": f"c{i}", "content": tool_output})
    return requests


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=60), st.text(max_size=200)), min_size=1, max_size=12))
def test_hash_dedup_gives_the_same_counts_as_a_naive_recount(steps: list[tuple[str, str]]) -> None:
    tok = tokens.tokenizer_for("gpt-4")
    recount = Recount(tokens.CountMemo())
    rows: list[dict[str, Any]] = []
    naive: list[list[int]] = []
    for request in _agent_trace(steps):
        segments = request_segments("openai", request, "gpt-4")
        naive.append([s.constant + sum(tok.count(p) for p in (s.pieces or (s.text,))) for s in segments])
        row: dict[str, Any] = {"model": "gpt-4", "usage_source": "reported"}
        rows.append(row)
        recount.add(row, segments)
    recount.flush()
    assert [[s["tokens"] for s in row["segments"]] for row in rows] == naive
    distinct = {s["hash"] for row in rows for s in row["segments"]}
    assert recount.memo.texts_counted <= len(distinct) + 20  # + framing roles
    assert recount.memo.lookups == sum(len(r["segments"]) for r in rows)


def test_missing_usage_is_billed_from_the_recount(tmp_path: Path) -> None:
    record = {
        "trace_id": "t",
        "request": {"model": "gpt-4", "messages": COOKBOOK_MESSAGES},
        "response": {
            "object": "chat.completion",
            "model": "gpt-4-0613",
            "choices": [{"message": {"role": "assistant", "content": "We're out of time."}}],
        },
    }
    path = tmp_path / "calls.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    row = load_steps([str(path)]).table.to_pylist()[0]
    assert row["usage_source"] == "recounted"
    assert row["input_tokens"] == 129
    assert row["output_tokens"] == tokens.tokenizer_for("gpt-4").count("We're out of time.")
    assert row["tokenizer"] == "cl100k_base"
    assert row["segments"][-1]["kind"] == "output"


def test_segments_round_trip_through_native_jsonl(tmp_path: Path) -> None:
    from costscope.api import write_steps

    record = {
        "request": {"model": "gpt-4", "messages": COOKBOOK_MESSAGES},
        "response": {"object": "chat.completion", "model": "gpt-4", "usage": {"prompt_tokens": 129}},
    }
    source = tmp_path / "calls.jsonl"
    source.write_text(json.dumps(record) + "\n", encoding="utf-8")
    table = load_steps([str(source)]).table
    out = tmp_path / "steps.jsonl"
    write_steps(table, str(out))
    again = load_steps([str(out)]).table
    assert again["segments"].to_pylist() == table["segments"].to_pylist()
    assert again["tokenizer"].to_pylist() == ["cl100k_base"]
