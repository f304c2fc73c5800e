"""Review findings: each test exposes a confirmed defect and is expected to fail until it is fixed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import genai_prices
import pytest
from genai_prices import types as gp

import costscope
from costscope.api import AnalyzeOptions, load_priced_steps
from costscope.composition import analyze_composition
from costscope.errors import ConfigError
from costscope.pricing import PriceBook
from costscope.steps import Filters

WriteJsonl = Callable[..., Any]


def test_duplicate_response_id_keeps_the_copy_with_usage(jsonl_file: WriteJsonl) -> None:
    chunk = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1767225600, "model": "gpt-4o"}
    path = jsonl_file(
        [
            {**chunk, "choices": [{"index": 0, "delta": {"content": "Hel"}}], "usage": None},
            {**chunk, "choices": [{"index": 0, "delta": {"content": "lo"}}], "usage": None},
            {**chunk, "choices": [], "usage": {"prompt_tokens": 1_000_000, "completion_tokens": 2}},
        ]
    )
    report = costscope.analyze([path])
    assert report.totals["calls"] == 1
    assert report.totals["input_tokens"] == 1_000_000
    assert report.totals["cost_usd"] == pytest.approx(2.5 + 2 * 10 / 1e6)


def test_cost_per_trace_distribution_ignores_fully_unpriced_traces(jsonl_file: WriteJsonl) -> None:
    path = jsonl_file(
        [
            {
                "timestamp": "2026-01-01T10:00:00Z",
                "trace_id": "A",
                "response": {
                    "id": "a1",
                    "object": "chat.completion",
                    "model": "gpt-4o",
                    "usage": {"prompt_tokens": 1_000_000, "completion_tokens": 0},
                },
            },
            {
                "timestamp": "2026-01-01T10:00:00Z",
                "trace_id": "B",
                "response": {
                    "id": "b1",
                    "object": "chat.completion",
                    "model": "mystery-llm",
                    "usage": {"prompt_tokens": 1_000_000, "completion_tokens": 0},
                },
            },
        ]
    )
    report = costscope.analyze([path])
    assert report.totals["cost_usd"] == pytest.approx(2.5)
    assert report.traces["mean_usd"] == pytest.approx(2.5)
    assert report.traces["p50_usd"] == pytest.approx(2.5)


def test_composition_of_calls_with_only_output_segments_does_not_crash(jsonl_file: WriteJsonl) -> None:
    path = jsonl_file(
        [
            {
                "timestamp": "2026-01-01T00:00:00Z",
                "request": {"model": "gpt-4o", "messages": []},
                "response": {
                    "id": "x1",
                    "object": "chat.completion",
                    "model": "gpt-4o",
                    "choices": [{"message": {"role": "assistant", "content": "hello"}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 2},
                },
            }
        ]
    )
    steps = load_priced_steps([path])
    composition = analyze_composition(steps.table)
    assert composition is not None
    report = costscope.analyze([path])
    assert report.totals["calls"] == 1


def test_non_numeric_price_in_price_file_is_a_config_error(tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("version: 1\nmodels:\n  - model: gpt-4o\n    input: abc\n    output: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        PriceBook.from_file(prices)


def test_per_request_fee_is_billed_like_genai_prices(jsonl_file: WriteJsonl) -> None:
    path = jsonl_file(
        [
            {
                "timestamp": "2026-01-01T10:00:00Z",
                "provider": "perplexity",
                "response": {
                    "id": "p1",
                    "object": "chat.completion",
                    "model": "sonar",
                    "usage": {"prompt_tokens": 1000, "completion_tokens": 100},
                },
            }
        ]
    )
    steps = load_priced_steps([path])
    cost = steps.table["cost_total"][0].as_py()
    expected = genai_prices.calc_price(
        gp.Usage(input_tokens=1000, output_tokens=100),
        "sonar",
        provider_id="perplexity",
        genai_request_timestamp=datetime(2026, 1, 1, 10, tzinfo=UTC),
    ).total_price
    assert cost is not None
    assert cost == pytest.approx(float(expected))


def test_recounted_usage_warning_respects_filters(jsonl_file: WriteJsonl) -> None:
    path = jsonl_file(
        [
            {
                "timestamp": "2026-01-01T10:00:00Z",
                "request": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello there"}]},
                "response": {
                    "id": "r1",
                    "object": "chat.completion",
                    "model": "gpt-4o",
                    "choices": [{"message": {"role": "assistant", "content": "hi"}}],
                },
            },
            {
                "timestamp": "2026-02-01T10:00:00Z",
                "response": {
                    "id": "r2",
                    "object": "chat.completion",
                    "model": "gpt-4o",
                    "usage": {"prompt_tokens": 10, "completion_tokens": 2},
                },
            },
        ]
    )
    report = costscope.analyze([path], AnalyzeOptions(filters=Filters(since="2026-01-15")))
    assert report.totals["calls"] == 1
    assert not any("recount" in w for w in report.warnings)
