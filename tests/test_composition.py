"""Composition, calibration, reconciliation and context carry over the priced step table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from costscope import api
from costscope.cli import app
from costscope.composition import analyze_composition, explode
from costscope.parsers.segments import request_segments
from costscope.tokens import tokenizer_for

SYSTEM = "You are a careful coding agent. Read files before editing them. " * 40
RESULT = "def handler(event):\n    return process(event)\n" * 200  # a big tool result re-read by later calls


def _trace(trace: str, steps: int, scale: float = 1.0, placeholder_at: int | None = None) -> list[dict[str, Any]]:
    tok = tokenizer_for("gpt-4o")
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Fix it."}]
    records = []
    for step in range(steps):
        request = {"model": "gpt-4o", "messages": list(messages)}
        recount = sum(
            s.constant + sum(tok.count(p) for p in (s.pieces or (s.text,)))
            for s in request_segments("openai", request, "gpt-4o")
        )
        prompt = 1 if step == placeholder_at else round(recount * scale)
        records.append(
            {
                "timestamp": f"2026-10-05T10:00:{step:02d}Z",
                "trace_id": trace,
                "agent": "coder",
                "request": request,
                "response": {
                    "id": f"{trace}-{step}",
                    "object": "chat.completion",
                    "model": "gpt-4o-2024-08-06",
                    "choices": [{"message": {"role": "assistant", "content": f"step {step}"}}],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": 3},
                },
            }
        )
        call = {"id": f"c{step}", "type": "function", "function": {"name": "read_file", "arguments": "{}"}}
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        content = RESULT if step == 0 else f"ok {step}"
        messages.append({"role": "tool", "tool_call_id": f"c{step}", "content": content})
    return records


def _write(tmp_path: Path, records: list[dict[str, Any]]) -> str:
    path = tmp_path / "calls.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


def test_calibrated_segments_sum_to_reported_input_and_dollars_to_input_cost(tmp_path: Path) -> None:
    path = _write(tmp_path, _trace("a", 6, scale=1.17))
    steps = api.load_priced_steps([path])
    x = explode(steps.table)
    is_input = x.kind != "output"
    per_call = np.bincount(x.parent[is_input], x.calibrated[is_input], minlength=x.calls.num_rows)
    assert per_call == pytest.approx(x.calls["input_tokens"].to_numpy())
    assert x.scale == pytest.approx(np.full(6, 1.17), rel=1e-3)
    dollars = np.bincount(x.parent[is_input], x.usd[is_input], minlength=x.calls.num_rows)
    assert dollars == pytest.approx(x.calls["cost_input"].to_numpy() + x.calls["cost_cache_read"].to_numpy())
    comp = analyze_composition(steps.table)
    assert comp is not None
    recon = comp.reconciliation[0]
    assert recon["model"] == "gpt-4o-2024-08-06" and recon["ratio_median"] == pytest.approx(1.17, rel=1e-3)
    assert comp.mismatches == []


def test_a_placeholder_usage_record_is_flagged_with_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, _trace("a", 6, placeholder_at=3))
    comp = analyze_composition(api.load_priced_steps([path]).table)
    assert comp is not None
    assert [(m["reason"], m["line"], m["reported_input_tokens"]) for m in comp.mismatches] == [
        ("placeholder_usage", 4, 1)
    ]
    assert comp.mismatches[0]["source"].endswith("calls.jsonl")
    assert comp.mismatches[0]["finding"] == "usage_mismatch"


def test_under_reported_usage_is_flagged(tmp_path: Path) -> None:
    records = _trace("a", 6)
    records[4]["response"]["usage"]["prompt_tokens"] //= 2  # e.g. an instrumentation that dropped cached tokens
    comp = analyze_composition(api.load_priced_steps([_write(tmp_path, records)]).table)
    assert comp is not None
    assert [(m["reason"], m["line"]) for m in comp.mismatches] == [("under_reported", 5)]


def test_a_tool_result_read_by_later_calls_costs_once_per_resend(tmp_path: Path) -> None:
    path = _write(tmp_path, _trace("a", 6) + _trace("b", 3))
    steps = api.load_priced_steps([path])
    comp = analyze_composition(steps.table, top=5)
    assert comp is not None
    result_tokens = tokenizer_for("gpt-4o").count(RESULT)
    item = next(i for i in comp.carry["top_items"] if i["kind"] == "tool_result" and i["tokens"] == result_tokens)
    assert item["tool"] == "read_file"
    assert item["resends"] == (6 - 2) + (3 - 2)  # sent first by step 2 of each trace, re-sent by every later step
    assert item["carried_tokens"] == item["resends"] * result_tokens
    system = next(i for i in comp.carry["by_kind"] if i["kind"] == "system")
    assert system["resends"] == (6 - 1) + (3 - 1)
    assert [r["tool"] for r in comp.carry["by_tool"]][0] == "read_file"
    assert comp.carry["by_agent"][0]["agent"] == "coder"


def test_identical_tool_results_are_separate_items(tmp_path: Path) -> None:
    records = _trace("a", 5)
    for r in records:  # every tool result is the same text: "ok"
        for m in r["request"]["messages"]:
            if m["role"] == "tool":
                m["content"] = "ok"
    comp = analyze_composition(api.load_priced_steps([_write(tmp_path, records)]).table)
    assert comp is not None
    tool = next(i for i in comp.carry["by_kind"] if i["kind"] == "tool_result")
    assert tool["resends"] == 3 + 2 + 1  # results of steps 1, 2, 3 re-sent by each later call


def test_composition_groups_and_shares(tmp_path: Path) -> None:
    path = _write(tmp_path, _trace("a", 4) + _trace("b", 2))
    comp = analyze_composition(api.load_priced_steps([path]).table, ["trace"])
    assert comp is not None
    assert [g["key"] for g in comp.groups] == [{"trace": "a"}, {"trace": "b"}]
    for group in [comp.overall, *comp.groups]:
        shares = [s["share"] for s in group["segments"] if s["kind"] != "output"]
        assert sum(shares) == pytest.approx(1.0)
        assert sum(s["tokens"] for s in group["segments"] if s["kind"] != "output") == pytest.approx(
            group["input_tokens"], abs=len(shares)
        )
    assert comp.dedup["ratio"] > 1


def test_analyze_json_gains_the_composition_summary(tmp_path: Path) -> None:
    report = api.analyze([_write(tmp_path, _trace("a", 4))]).to_dict()
    kinds = [s["kind"] for s in report["composition"]["segments"]]
    assert kinds == ["system", "history", "user", "tool_result", "framing", "output"]
    assert report["composition"]["tokenizers"] == ["cl100k_base (approximate)"]


def test_tokens_command(tmp_path: Path) -> None:
    path = _write(tmp_path, _trace("a", 6, placeholder_at=2))
    runner = CliRunner()
    result = runner.invoke(app, ["tokens", path, "--by", "agent", "--no-cache"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "Input composition" in result.stdout and "placeholder_usage" in result.stdout
    assert "read_file" in result.stdout
    as_json = runner.invoke(app, ["tokens", path, "--format", "json", "--no-cache"])
    data = json.loads(as_json.stdout)
    assert data["tokens_report_version"] == 1 and len(data["usage_mismatches"]) == 1
    markdown = runner.invoke(app, ["tokens", path, "--format", "markdown", "--no-cache"])
    assert markdown.stdout.startswith("## costscope tokens")


def test_tokens_without_content_is_a_usage_error(tmp_path: Path) -> None:
    record = {"object": "chat.completion", "model": "gpt-4o", "usage": {"prompt_tokens": 5, "completion_tokens": 1}}
    path = _write(tmp_path, [record])
    result = CliRunner().invoke(app, ["tokens", path, "--no-cache"])
    assert result.exit_code == 2
    assert "request content" in result.stderr
