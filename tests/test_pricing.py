"""Dollars from list prices, checked against hand arithmetic (USD per million tokens) and genai-prices."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from genai_prices import Usage, data_snapshot
from genai_prices import types as gp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costscope import AnalyzeOptions, analyze, load_priced_steps, pricing
from costscope.batch_terms import BATCH_TERMS
from costscope.errors import ConfigError
from costscope.pricing import PriceBook, Rate, _key_codes, price_table
from costscope.schema import COST_COLUMNS, STEP_SCHEMA, batch_from_rows

MTOK = 1_000_000
WHEN = "2025-10-01T12:00:00Z"


def close(actual: float | None, expected: float) -> bool:
    return actual is not None and math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-15)


def openai_call(model: str, prompt: int, cached: int, completion: int, when: str = WHEN, **extra: Any) -> dict:
    return {
        "timestamp": when,
        **extra,
        "response": {
            "object": "chat.completion",
            "model": model,
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "prompt_tokens_details": {"cached_tokens": cached},
            },
        },
    }


def claude_call(
    uncached: int, read: int, write_5m: int, write_1h: int, output: int, model: str = "claude-sonnet-4-5"
) -> dict:
    return {
        "timestamp": WHEN,
        "response": {
            "type": "message",
            "model": model,
            "usage": {
                "input_tokens": uncached,
                "cache_read_input_tokens": read,
                "cache_creation_input_tokens": write_5m + write_1h,
                "cache_creation": {"ephemeral_5m_input_tokens": write_5m, "ephemeral_1h_input_tokens": write_1h},
                "output_tokens": output,
            },
        },
    }


def totals(path: str, prices: str | None = None) -> dict[str, Any]:
    return analyze([path], AnalyzeOptions(prices=prices)).totals


def rows(path: str, prices: str | None = None) -> list[dict[str, Any]]:
    return load_priced_steps([path], AnalyzeOptions(prices=prices)).table.to_pylist()


# --- list prices ------------------------------------------------------------------------------------------


def test_gpt_4o_cached_input(jsonl_file: Any) -> None:
    # gpt-4o: $2.50 input, $1.25 cached input, $10 output per MTok.
    # prompt 2006 includes cached 1920 -> uncached 86.
    #   86 * 2.50 = 215;  1920 * 1.25 = 2400;  300 * 10 = 3000  -> 5615 / 1e6 = $0.005615
    t = totals(jsonl_file([openai_call("gpt-4o", 2006, 1920, 300)]))
    assert close(t["cost_input_usd"], 86 * 2.5 / MTOK)
    assert close(t["cost_cache_read_usd"], 1920 * 1.25 / MTOK)
    assert close(t["cost_cache_write_usd"], 0.0)
    assert close(t["cost_output_usd"], 300 * 10 / MTOK)
    assert close(t["cost_usd"], (86 * 2.5 + 1920 * 1.25 + 300 * 10) / MTOK)
    assert close(t["cost_usd"], 0.005615)
    # Without the cache the 1920 tokens would have cost 1920 * (2.50 - 1.25) more.
    assert close(t["cache_saved_usd"], 1920 * 1.25 / MTOK)
    assert t["priced_calls"] == 1


def test_claude_sonnet_4_5_5m_and_1h_writes(jsonl_file: Any) -> None:
    # claude-sonnet-4-5: $3 input, $3.75 5m write, $6 1h write, $0.30 read, $15 output.
    # uncached 100 * 3     =   300
    # read  10000 * 0.30   =  3000
    # 5m     1500 * 3.75   =  5625
    # 1h      500 * 6      =  3000
    # out     400 * 15     =  6000
    # total                = 17925 -> $0.017925
    t = totals(jsonl_file([claude_call(100, 10_000, 1_500, 500, 400)]))
    assert t["input_tokens"] == 12_100
    assert t["uncached_input_tokens"] == 100
    assert close(t["cost_input_usd"], 300 / MTOK)
    assert close(t["cost_cache_read_usd"], 3000 / MTOK)
    assert close(t["cost_cache_write_usd"], (5625 + 3000) / MTOK)
    assert close(t["cost_output_usd"], 6000 / MTOK)
    assert close(t["cost_usd"], 0.017925)


def test_claude_call_with_cache_tokens_is_never_billed_twice(jsonl_file: Any) -> None:
    # input_tokens=20 is Anthropic's uncached tail; 50000 read + 8000 written (all 5m, no split).
    # Right:  20*3 + 50000*0.30 + 8000*3.75 + 1000*15 = 60 + 15000 + 30000 + 15000 = 60060 -> $0.06006
    # Wrong (cache tokens also billed as input): + 58000*3 = 174000 more.
    record = {
        "timestamp": WHEN,
        "response": {
            "type": "message",
            "model": "claude-sonnet-4-5",
            "usage": {
                "input_tokens": 20,
                "cache_read_input_tokens": 50_000,
                "cache_creation_input_tokens": 8_000,
                "output_tokens": 1_000,
            },
        },
    }
    (row,) = rows(jsonl_file([record]))
    assert close(row["cost_input"], 20 * 3 / MTOK)
    assert close(row["cost_total"], 60_060 / MTOK)
    parts = row["cost_input"] + row["cost_cache_read"] + row["cost_cache_write"] + row["cost_output"]
    assert close(row["cost_total"], parts)
    # Without the cache all 58020 input tokens at $3: saved = 58000*3 - 15000 - 30000 = 129000.
    assert close(row["cost_cache_saved"], 129_000 / MTOK)


def test_claude_over_200k_input_bills_every_token_at_the_long_context_tier(jsonl_file: Any) -> None:
    # total input = 50001 + 100000 + 30000 + 20000 = 200001 > 200000 -> all tokens at the >200k rates:
    # 50001 * 6    = 300006
    # 100000 * 0.60 =  60000
    # 30000 * 7.50 = 225000
    # 20000 * 12   = 240000
    # 1000 * 22.50 =  22500
    # total        = 847506 -> $0.847506
    (row,) = rows(jsonl_file([claude_call(50_001, 100_000, 30_000, 20_000, 1_000)]))
    assert row["input_tokens"] == 200_001
    assert close(row["cost_input"], 300_006 / MTOK)
    assert close(row["cost_cache_read"], 60_000 / MTOK)
    assert close(row["cost_cache_write"], 465_000 / MTOK)
    assert close(row["cost_output"], 22_500 / MTOK)
    assert close(row["cost_total"], 0.847506)


def test_claude_at_exactly_200k_input_stays_at_base_prices(jsonl_file: Any) -> None:
    # total input = 50000 + 100000 + 30000 + 20000 = 200000, not above the threshold -> base rates:
    # 50000*3 + 100000*0.30 + 30000*3.75 + 20000*6 + 1000*15
    # = 150000 + 30000 + 112500 + 120000 + 15000 = 427500 -> $0.4275
    (row,) = rows(jsonl_file([claude_call(50_000, 100_000, 30_000, 20_000, 1_000)]))
    assert row["input_tokens"] == 200_000
    assert close(row["cost_total"], 0.4275)


def test_long_context_tier_is_per_request_not_per_day(jsonl_file: Any) -> None:
    # Two 150k requests on the same day: each is below the threshold, so both stay at base.
    # each: 150000*3 + 100*15 = 451500 -> two: 903000
    t = totals(jsonl_file([claude_call(150_000, 0, 0, 0, 100), claude_call(150_000, 0, 0, 0, 100)]))
    assert close(t["cost_usd"], 903_000 / MTOK)


def test_gemini_flash_thinking_tokens_at_output_rate(jsonl_file: Any) -> None:
    # gemini-2.5-flash: $0.30 input, $0.03 cached, $2.50 output (thinking included).
    # input = prompt 10000 (incl. 8000 cached) + tool-use prompt 200 = 10200 -> uncached 2200
    # 2200 * 0.30 = 660; 8000 * 0.03 = 240; output (500 + 1500 thoughts) * 2.50 = 5000
    # total 5900 -> $0.0059
    record = {
        "timestamp": WHEN,
        "response": {
            "modelVersion": "gemini-2.5-flash",
            "usageMetadata": {
                "promptTokenCount": 10_000,
                "cachedContentTokenCount": 8_000,
                "toolUsePromptTokenCount": 200,
                "candidatesTokenCount": 500,
                "thoughtsTokenCount": 1_500,
            },
        },
    }
    t = totals(jsonl_file([record]))
    assert close(t["cost_input_usd"], 660 / MTOK)
    assert close(t["cost_cache_read_usd"], 240 / MTOK)
    assert close(t["cost_output_usd"], 5000 / MTOK)
    assert close(t["cost_usd"], 0.0059)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        # before the 2025-06-10 cut: $10 in / $40 out -> 1000*10 + 500*40 = 30000 -> $0.03
        ("2025-06-01T12:00:00Z", 0.03),
        ("2025-06-09T23:59:00Z", 0.03),
        # from 2025-06-10: $2 in / $8 out -> 1000*2 + 500*8 = 6000 -> $0.006
        ("2025-06-10T00:01:00Z", 0.006),
        ("2025-09-01T12:00:00Z", 0.006),
    ],
)
def test_o3_dated_prices(jsonl_file: Any, when: str, expected: float) -> None:
    t = totals(jsonl_file([openai_call("o3", 1000, 0, 500, when=when)]))
    assert close(t["cost_usd"], expected)


def test_o3_calls_on_both_sides_of_the_cut_in_one_file(jsonl_file: Any) -> None:
    # 0.03 + 0.006 (see above): each call priced at its own timestamp.
    path = jsonl_file([openai_call("o3", 1000, 0, 500, when="2025-06-01T12:00:00Z"), openai_call("o3", 1000, 0, 500)])
    assert close(totals(path)["cost_usd"], 0.036)
    assert len({r["price_ref"] for r in rows(path)}) == 2


def test_gpt_3_5_turbo_without_cache_price_bills_cached_tokens_as_input(jsonl_file: Any) -> None:
    # gpt-3.5-turbo: $0.50 in, $1.50 out, no cached price -> 2000 * 0.5 + 100 * 1.5 = 1150
    t = totals(jsonl_file([openai_call("gpt-3.5-turbo", 2000, 1024, 100)]))
    assert close(t["cost_usd"], 1150 / MTOK)


# --- recorded batch calls --------------------------------------------------------------------------------
# genai-prices 0.2.3 has batch rates only from 2026-10-14: before that, the provider's batch terms apply.

BEFORE_BATCH_RATES = "2026-10-01T12:00:00Z"
WITH_BATCH_RATES = "2026-10-20T12:00:00Z"


def batch_call(when: str, response: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": when, "batch": True, "response": response}


def gemini_response(model: str, prompt: int, cached: int, candidates: int) -> dict[str, Any]:
    usage = {"promptTokenCount": prompt, "cachedContentTokenCount": cached, "candidatesTokenCount": candidates}
    return {"modelVersion": model, "usageMetadata": usage}


def test_anthropic_batch_call_before_batch_rates_is_half_price_cache_included(jsonl_file: Any) -> None:
    # claude-sonnet-4-5 standard: uncached 100 x 3 + read 10000 x 0.30 + 5m 1500 x 3.75 + 1h 500 x 6 + out 400 x 15
    # = 300 + 3000 + 5625 + 3000 + 6000 = 17925; Message Batches: every component at 50% -> 8962.5
    record = batch_call(BEFORE_BATCH_RATES, claude_call(100, 10_000, 1_500, 500, 400)["response"])
    (row,) = rows(jsonl_file([record]))
    assert row["service_tier"] == "batch"
    assert close(row["cost_input"], 150 / MTOK)
    assert close(row["cost_cache_read"], 1500 / MTOK)
    assert close(row["cost_cache_write"], (2812.5 + 1500) / MTOK)
    assert close(row["cost_output"], 3000 / MTOK)
    assert close(row["cost_total"], 8962.5 / MTOK)
    assert row["price_ref"] == "genai-prices 0.2.3: anthropic/claude-sonnet-4-5 [batch terms: anthropic 50%]"


def test_openai_batch_call_before_batch_rates_keeps_the_cached_input_rate(jsonl_file: Any) -> None:
    # gpt-4.1: $2 input, $0.50 cached, $8 output. Batch API: 600 x 1 + 400 x 0.50 (not halved) + 100 x 4 = 1200
    record = openai_call("gpt-4.1", 1000, 400, 100, when=BEFORE_BATCH_RATES, batch=True)
    (row,) = rows(jsonl_file([record]))
    assert close(row["cost_input"], 600 / MTOK)
    assert close(row["cost_cache_read"], 200 / MTOK)
    assert close(row["cost_output"], 400 / MTOK)
    assert close(row["cost_total"], 1200 / MTOK)
    assert row["price_ref"] == "genai-prices 0.2.3: openai/gpt-4.1 [batch terms: openai 50% (cache reads 100%)]"


def test_gemini_batch_call_before_batch_rates_keeps_the_cache_rate(jsonl_file: Any) -> None:
    # gemini-2.5-flash: $0.30 input, $0.03 cached, $2.50 output. Batch Mode: 600 x 0.15 + 400 x 0.03 + 100 x 1.25
    # = 90 + 12 + 125 = 227
    record = batch_call(BEFORE_BATCH_RATES, gemini_response("gemini-2.5-flash", 1000, 400, 100))
    (row,) = rows(jsonl_file([record]))
    assert close(row["cost_input"], 90 / MTOK)
    assert close(row["cost_cache_read"], 12 / MTOK)
    assert close(row["cost_output"], 125 / MTOK)
    assert close(row["cost_total"], 227 / MTOK)
    assert (
        row["price_ref"] == "genai-prices 0.2.3: google/gemini-2.5-flash [batch terms: google 50% (cache reads 100%)]"
    )


def test_batch_call_with_batch_rates_in_the_price_data_uses_them(jsonl_file: Any) -> None:
    # gemini-3.5-flash-lite: $0.30 input, $0.03 cached, $2.50 output. From 2026-10-14 genai-prices has its batch
    # rates $0.15 / $0.02 / $1.25 (a cache rate the batch terms would not give): 600 x 0.15 + 400 x 0.02 + 100 x 1.25
    # = 90 + 8 + 125 = 223; before that date, the terms: 90 + 400 x 0.03 + 125 = 227
    response = gemini_response("gemini-3.5-flash-lite", 1000, 400, 100)
    before, after = rows(jsonl_file([batch_call(BEFORE_BATCH_RATES, response), batch_call(WITH_BATCH_RATES, response)]))
    assert close(before["cost_total"], 227 / MTOK)
    assert close(after["cost_cache_read"], 8 / MTOK)
    assert close(after["cost_total"], 223 / MTOK)
    assert after["price_ref"] == "genai-prices 0.2.3: google/gemini-3.5-flash-lite [processing=batch]"
    # a model whose batch rates equal the terms: the price data's rates are used, and named
    (openai,) = rows(jsonl_file([openai_call("gpt-4.1", 1000, 400, 100, when=WITH_BATCH_RATES, batch=True)]))
    assert close(openai["cost_total"], 1200 / MTOK)
    assert openai["price_ref"] == "genai-prices 0.2.3: openai/gpt-4.1 [processing=batch]"


def test_batch_terms_apply_on_top_of_price_file_rates_but_not_to_providers_without_terms(
    jsonl_file: Any, tmp_path: Path
) -> None:
    prices = write_prices(
        tmp_path,
        "version: 1\nmodels:\n  - model: gpt-4.1\n    input: 4\n    output: 10\n"
        "  - model: house-llm\n    provider: selfhosted\n    input: 1\n    output: 2\n",
    )
    house = openai_call("house-llm", 1000, 0, 100, when=BEFORE_BATCH_RATES, batch=True, provider="selfhosted")
    negotiated = openai_call("gpt-4.1", 1000, 0, 100, when=WITH_BATCH_RATES, batch=True)
    house_row, negotiated_row = rows(jsonl_file([house, negotiated]), prices)
    assert close(house_row["cost_total"], (1000 * 1 + 100 * 2) / MTOK)  # no known batch terms: standard rates
    assert close(negotiated_row["cost_total"], (1000 * 2 + 100 * 5) / MTOK)
    assert negotiated_row["price_ref"].endswith("[batch terms: openai 50% (cache reads 100%)]")


# --- unknown models ---------------------------------------------------------------------------------------


def test_unknown_model_has_null_cost_and_is_listed(jsonl_file: Any) -> None:
    path = jsonl_file([openai_call("zz-private-llm-7", 1000, 0, 10), openai_call("gpt-4o", 1000, 0, 10)])
    report = analyze([path])
    by_model = {r["model"]: r for r in load_priced_steps([path]).table.to_pylist()}
    assert by_model["zz-private-llm-7"]["cost_total"] is None
    assert by_model["zz-private-llm-7"]["price_ref"] is None
    assert by_model["gpt-4o"]["cost_total"] is not None
    # gpt-4o alone: 1000 * 2.5 + 10 * 10 = 2600
    assert close(report.totals["cost_usd"], 2600 / MTOK)
    assert report.totals["priced_calls"] == 1
    (unpriced,) = report.unpriced
    assert unpriced.model == "zz-private-llm-7"
    assert unpriced.calls == 1
    assert unpriced.input_tokens == 1000
    assert unpriced.hint and "--prices" in unpriced.hint


def test_only_unknown_models_give_null_total_not_zero(jsonl_file: Any) -> None:
    report = analyze([jsonl_file([openai_call("zz-private-llm-7", 1000, 0, 10)])])
    assert report.totals["cost_usd"] is None
    assert report.totals["calls"] == 1
    assert report.totals["priced_calls"] == 0


def test_near_miss_model_name_gets_did_you_mean(jsonl_file: Any) -> None:
    record = claude_call(10, 0, 0, 0, 10, model="claude-sonet-4-5")
    report = analyze([jsonl_file([record])])
    (unpriced,) = report.unpriced
    assert unpriced.model == "claude-sonet-4-5"
    assert unpriced.hint is not None
    assert unpriced.hint.startswith("did you mean claude-sonnet-4-5?")
    assert report.totals["cost_usd"] is None


def test_call_without_usage_has_null_cost(jsonl_file: Any) -> None:
    record = {"timestamp": WHEN, "model": "gpt-4o", "response": {"object": "chat.completion", "model": "gpt-4o"}}
    (row,) = rows(jsonl_file([record]))
    assert row["usage_source"] is None
    assert row["cost_total"] is None


# --- --prices files ---------------------------------------------------------------------------------------


def write_prices(tmp_path: Path, text: str, name: str = "prices.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_price_file_self_hosted_model(jsonl_file: Any, tmp_path: Path) -> None:
    prices = write_prices(
        tmp_path,
        "version: 1\nmodels:\n  - model: llama-3-70b-local\n    input: 0.40\n    output: 1.20\n    cache_read: 0.05\n",
    )
    # uncached 1000 * 0.40 = 400; cached 3000 * 0.05 = 150; output 500 * 1.20 = 600 -> 1150
    path = jsonl_file([openai_call("llama-3-70b-local", 4000, 3000, 500)])
    report = analyze([path], AnalyzeOptions(prices=prices))
    assert close(report.totals["cost_usd"], 1150 / MTOK)
    assert report.unpriced == []
    (row,) = rows(path, prices)
    assert "prices.yaml" in row["price_ref"]


def test_price_file_discount_on_list_price(jsonl_file: Any, tmp_path: Path) -> None:
    prices = write_prices(tmp_path, "version: 1\nmodels:\n  - model: gpt-4o\n    discount: 15%\n")
    # list: 86*2.5 + 1920*1.25 + 300*10 = 5615; with 15% off: 5615 * 0.85 = 4772.75
    path = jsonl_file([openai_call("gpt-4o", 2006, 1920, 300), openai_call("gpt-4o-mini", 1000, 0, 0)])
    by_model = {r["model"]: r for r in rows(path, prices)}
    assert close(by_model["gpt-4o"]["cost_total"], 4772.75 / MTOK)
    assert close(by_model["gpt-4o"]["cost_cache_read"], 1920 * 1.25 * 0.85 / MTOK)
    assert "-15%" in by_model["gpt-4o"]["price_ref"]
    # the rule does not touch other models: gpt-4o-mini 1000 * 0.15 = 150
    assert close(by_model["gpt-4o-mini"]["cost_total"], 150 / MTOK)


def test_price_file_discount_keeps_long_context_tiers(jsonl_file: Any, tmp_path: Path) -> None:
    prices = write_prices(tmp_path, "version: 1\nmodels:\n  - model: claude-sonnet-*\n    discount: 0.5\n")
    # 847506 at list (see the >200k test) -> half: 423753
    (row,) = rows(jsonl_file([claude_call(50_001, 100_000, 30_000, 20_000, 1_000)]), prices)
    assert close(row["cost_total"], 423_753 / MTOK)


def test_price_file_from_until_bounds_are_inclusive_days(jsonl_file: Any, tmp_path: Path) -> None:
    prices = write_prices(
        tmp_path,
        "version: 1\n"
        "models:\n"
        "  - model: acme-large\n"
        "    input: 1\n"
        "    output: 2\n"
        "    from: 2025-06-01\n"
        "    until: 2025-06-30\n",
    )
    path = jsonl_file(
        [
            openai_call("acme-large", 1000, 0, 1000, when="2025-05-31T23:59:00Z", trace_id="before"),
            openai_call("acme-large", 1000, 0, 1000, when="2025-06-01T00:00:00Z", trace_id="first"),
            openai_call("acme-large", 1000, 0, 1000, when="2025-06-30T23:59:00Z", trace_id="last"),
            openai_call("acme-large", 1000, 0, 1000, when="2025-07-01T00:00:00Z", trace_id="after"),
        ]
    )
    by_trace = {r["trace_id"]: r for r in rows(path, prices)}
    # inside the range: 1000*1 + 1000*2 = 3000; outside: no price at all (null, not 0)
    assert close(by_trace["first"]["cost_total"], 3000 / MTOK)
    assert close(by_trace["last"]["cost_total"], 3000 / MTOK)
    assert by_trace["before"]["cost_total"] is None
    assert by_trace["after"]["cost_total"] is None


def test_price_file_date_ranges_with_distinct_patterns(jsonl_file: Any, tmp_path: Path) -> None:
    prices = write_prices(
        tmp_path,
        "version: 1\n"
        "models:\n"
        "  - model: acme-large\n"
        "    input: 1\n"
        "    output: 2\n"
        "    until: 2025-06-30\n"
        "  - model: acme-*\n"
        "    input: 3\n"
        "    output: 4\n"
        "    from: 2025-07-01\n",
    )
    path = jsonl_file(
        [
            openai_call("acme-large", 1000, 0, 1000, when="2025-06-30T23:00:00Z", trace_id="a"),  # 1000+2000
            openai_call("acme-large", 1000, 0, 1000, when="2025-07-01T01:00:00Z", trace_id="b"),  # 3000+4000
        ]
    )
    by_trace = {r["trace_id"]: r for r in rows(path, prices)}
    assert close(by_trace["a"]["cost_total"], 3000 / MTOK)
    assert close(by_trace["b"]["cost_total"], 7000 / MTOK)


def test_price_file_date_ranges_same_model(jsonl_file: Any, tmp_path: Path) -> None:
    prices = write_prices(
        tmp_path,
        "version: 1\n"
        "models:\n"
        "  - model: acme-*\n"
        "    input: 1\n"
        "    output: 2\n"
        "    until: 2025-06-30\n"
        "  - model: acme-*\n"
        "    input: 3\n"
        "    output: 4\n"
        "    from: 2025-07-01\n",
    )
    path = jsonl_file(
        [
            openai_call("acme-large", 1000, 0, 1000, when="2025-06-30T23:00:00Z", trace_id="a"),  # 1000+2000
            openai_call("acme-large", 1000, 0, 1000, when="2025-07-01T01:00:00Z", trace_id="b"),  # 3000+4000
        ]
    )
    by_trace = {r["trace_id"]: r for r in rows(path, prices)}
    assert close(by_trace["a"]["cost_total"], 3000 / MTOK)
    assert close(by_trace["b"]["cost_total"], 7000 / MTOK)


def test_price_file_dated_rule_does_not_match_undated_calls(jsonl_file: Any, tmp_path: Path) -> None:
    prices = write_prices(
        tmp_path, "version: 1\nmodels:\n  - model: acme-x\n    input: 1\n    output: 2\n    from: 2025-01-01\n"
    )
    undated = {"response": {"object": "chat.completion", "model": "acme-x", "usage": {"prompt_tokens": 1}}}
    report = analyze([jsonl_file([undated])], AnalyzeOptions(prices=prices))
    assert report.totals["cost_usd"] is None
    assert [u.model for u in report.unpriced] == ["acme-x"]


def test_price_file_tiers(jsonl_file: Any, tmp_path: Path) -> None:
    prices = write_prices(
        tmp_path,
        "version: 1\n"
        "models:\n"
        "  - model: big-ctx\n"
        "    input: 1\n"
        "    output: 2\n"
        "    tiers:\n"
        "      - above: 1000\n"
        "        input: 10\n"
        "        output: 20\n",
    )
    path = jsonl_file(
        [
            openai_call("big-ctx", 1000, 0, 10, trace_id="at"),  # 1000*1 + 10*2 = 1020
            openai_call("big-ctx", 1001, 0, 10, trace_id="over"),  # 1001*10 + 10*20 = 10210
        ]
    )
    by_trace = {r["trace_id"]: r for r in rows(path, prices)}
    assert close(by_trace["at"]["cost_total"], 1020 / MTOK)
    assert close(by_trace["over"]["cost_total"], 10_210 / MTOK)


def test_price_file_unknown_key_names_file_and_line(jsonl_file: Any, tmp_path: Path) -> None:
    prices = write_prices(
        tmp_path,
        "version: 1\nmodels:\n  - model: llama-local\n    input: 1\n    output: 2\n    cache_reed: 0.1\n",
        name="my-prices.yaml",
    )
    path = jsonl_file([openai_call("llama-local", 10, 0, 1)])
    with pytest.raises(ConfigError) as info:
        analyze([path], AnalyzeOptions(prices=prices))
    message = str(info.value)
    assert "my-prices.yaml:6" in message
    assert "cache_reed" in message
    assert "unknown key" in message


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("version: 1\nmodels:\n  - model: x\n    input: 1\n", 3),  # output missing
        ("version: 1\nmodels:\n  - model: x\n    input: -1\n    output: 1\n", 4),  # negative price
        ("version: 1\nmodels:\n  - model: x\n    discount: 150%\n", 4),  # discount >= 100%
        ("version: 2\n", 1),
        ("version: 1\nmodels: [\n", 3),  # invalid YAML
    ],
)
def test_price_file_invalid_values_name_the_line(tmp_path: Path, text: str, line: int) -> None:
    prices = write_prices(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"prices\.yaml:{line}\b"):
        PriceBook.from_file(prices)


def test_price_file_empty_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="empty"):
        PriceBook.from_file(write_prices(tmp_path, ""))


def test_unused_price_rule_is_reported(jsonl_file: Any, tmp_path: Path) -> None:
    prices = write_prices(tmp_path, "version: 1\nmodels:\n  - model: gpt-4oo\n    discount: 10%\n")
    report = analyze([jsonl_file([openai_call("gpt-4o", 10, 0, 1)])], AnalyzeOptions(prices=prices))
    assert any("gpt-4oo" in w and "matched no call" in w for w in report.warnings)


# --- agreement with genai-prices -------------------------------------------------------------------------

MODELS = [
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5"),
    ("openai", "gpt-4o"),
    ("openai", "gpt-5"),
    ("google", "gemini-2.5-pro"),
    ("openai", "gpt-3.5-turbo"),
]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = datetime(2024, 6, 1, tzinfo=UTC)
T1 = datetime(2027, 3, 1, tzinfo=UTC)  # past genai-prices' dated flex/priority/batch variants (2026-10)
# costscope's service_tier value -> genai-prices price_context
TIERS: dict[str | None, dict[str, str] | None] = {
    None: None,
    "default": None,
    "flex": {"service_tier": "flex"},
    "priority": {"service_tier": "priority"},
    "batch": {"processing": "batch"},
}


@st.composite
def usages(draw: st.DrawFn, tiers: tuple[str | None, ...] = (None,)) -> dict[str, Any]:
    provider, model = draw(st.sampled_from(MODELS))
    cache_read = draw(st.integers(0, 250_000))
    cache_write = draw(st.integers(0, 60_000))
    uncached = draw(st.integers(0, 150_000))
    output = draw(st.integers(0, 40_000))
    when = draw(st.datetimes(min_value=T0.replace(tzinfo=None), max_value=T1.replace(tzinfo=None))).replace(tzinfo=UTC)
    return {
        "provider": provider,
        "model": model,
        "service_tier": draw(st.sampled_from(tiers)),
        "when": when,
        "input_tokens": uncached + cache_read + cache_write,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
        "cache_write_1h_tokens": draw(st.integers(0, cache_write)),
        "output_tokens": output,
        "reasoning_tokens": draw(st.integers(0, output)),
    }


def table_of(calls: list[dict[str, Any]]) -> pa.Table:
    rows = []
    for i, call in enumerate(calls, 1):
        delta = call["when"] - EPOCH
        row = {
            **call,
            "source": "gen.jsonl",
            "line": i,
            "kind": "llm",
            "usage_source": "reported",
            "start": (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds,
        }
        rows.append(row)
    return pa.Table.from_batches([batch_from_rows(rows)], schema=STEP_SCHEMA)


BATCH_KEYS = {
    "input_mtok": "input",
    "cache_read_mtok": "cache_read",
    "cache_write_mtok": "cache_write",
    "cache_write_1h_mtok": "cache_write",
    "output_mtok": "output",
}


def scaled(value: Any, factor: Decimal) -> Any:
    if isinstance(value, gp.TieredPrices):
        return gp.TieredPrices(value.base * factor, [gp.Tier(t.start, t.price * factor) for t in value.tiers])
    return value * factor if isinstance(value, Decimal) else value


def genai_price(call: dict[str, Any]) -> Decimal:
    """genai-prices' own calculation; a batch call at a date it has no batch rates for is billed at the standard
    rates times the provider's batch terms (the price book's documented fallback)."""
    _, info = data_snapshot.get_snapshot().find_provider_model(call["model"], None, call["provider"], None)
    prices = info.get_prices(call["when"], TIERS[call["service_tier"]])  # type: ignore[arg-type]
    terms = BATCH_TERMS.get(call["provider"]) if call["service_tier"] == "batch" else None
    if terms is not None and prices == info.get_prices(call["when"]):
        factors = {key: terms.factor(component) for key, component in BATCH_KEYS.items()}
        prices = gp.ModelPrice(**{k: scaled(v, factors.get(k, Decimal(1))) for k, v in prices.__dict__.items()})
    usage = Usage(
        input_tokens=call["input_tokens"],
        cache_read_tokens=call["cache_read_tokens"],
        cache_write_tokens=call["cache_write_tokens"],
        cache_write_1h_tokens=call["cache_write_1h_tokens"],
        output_tokens=call["output_tokens"],
    )
    return prices.calc_price(usage)["total_price"]


def check_against_genai_prices(calls: list[dict[str, Any]]) -> None:
    priced = price_table(table_of(calls), PriceBook())
    out = priced.table.to_pylist()
    assert priced.unpriced == []
    for call, row in zip(calls, out, strict=True):
        expected = genai_price(call)
        assert math.isclose(row["cost_total"], float(expected), rel_tol=1e-9, abs_tol=1e-12), (call, row)
        # (cost_cache_saved may be negative: a 5m/1h write costs more than plain input)
        for name in COST_COLUMNS:
            assert row[name] >= 0, (name, call, row)
        parts = row["cost_input"] + row["cost_cache_read"] + row["cost_cache_write"] + row["cost_output"]
        assert math.isclose(row["cost_total"], parts, rel_tol=1e-12, abs_tol=1e-15)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(usages(), min_size=1, max_size=12))
def test_vectorized_costs_match_genai_prices(calls: list[dict[str, Any]]) -> None:
    check_against_genai_prices(calls)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(usages(tiers=tuple(TIERS)))
def test_service_tier_prices_match_genai_prices_one_call(call: dict[str, Any]) -> None:
    check_against_genai_prices([call])


def test_service_tier_variant_across_its_start_date_in_one_table() -> None:
    # gpt-4o priority: standard $10 output before the variant's start date in genai-prices 0.2.3, $17 after.
    base = {
        "provider": "openai",
        "model": "gpt-4o",
        "service_tier": "priority",
        "input_tokens": 0,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "cache_write_1h_tokens": 0,
        "output_tokens": 1_000_000,
    }
    check_against_genai_prices([{**base, "when": T0}, {**base, "when": T1}])


def test_undated_calls_are_priced_at_latest_prices_and_counted() -> None:
    call = {
        "provider": "openai",
        "model": "o3",
        "when": T0,
        "input_tokens": 1000,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "cache_write_1h_tokens": 0,
        "output_tokens": 500,
    }
    table = table_of([call])
    table = table.set_column(
        table.schema.get_field_index("start"), "start", pa.nulls(1, STEP_SCHEMA.field("start").type)
    )
    result = price_table(table, PriceBook())
    # latest o3 price: 1000*2 + 500*8 = 6000
    assert close(result.table["cost_total"][0].as_py(), 6000 / MTOK)
    assert result.undated_calls == 1


def test_pricing_many_days_resolves_each_day() -> None:
    # One o3 call per day around the cut: days before 2025-06-10 cost 0.03, from then on 0.006.
    base = {"provider": "openai", "model": "o3", "input_tokens": 1000, "output_tokens": 500}
    days = [datetime(2025, 6, 5, 18, tzinfo=UTC) + timedelta(days=d) for d in range(10)]
    table = table_of([{**base, "when": d} for d in days])
    costs = price_table(table, PriceBook()).table["cost_total"].to_pylist()
    expected = [0.03 if d.date() < datetime(2025, 6, 10).date() else 0.006 for d in days]
    assert all(close(c, e) for c, e in zip(costs, expected, strict=True)), costs


def test_a_discount_rule_does_not_hide_a_later_rule_for_a_model_without_list_price(tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "version: 1\nmodels:\n  - model: '*'\n    discount: 10%\n  - model: house-llm\n    input: 1\n    output: 2\n",
        encoding="utf-8",
    )
    book = PriceBook.from_file(prices)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    house = book.resolve(None, "house-llm", None, when)
    assert house is not None and house.rates["input"] == Rate(Decimal(1))
    gpt = book.resolve("openai", "gpt-4o", None, when)
    assert gpt is not None and gpt.rates["input"] == Rate(Decimal("2.25"))
    assert book.unused_rules() == []


PRICE_KEYS = ("provider", "model", "service_tier")
_NAMES = st.one_of(st.none(), st.sampled_from(["a", "b", "", "a\x1fb", "\x00"]))


@given(st.lists(st.tuples(_NAMES, _NAMES, _NAMES), max_size=40))
def test_key_codes_number_each_distinct_triple_in_order_of_first_appearance(
    rows: list[tuple[str | None, str | None, str | None]],
) -> None:
    table = pa.table({name: pa.array([row[k] for row in rows], pa.string()) for k, name in enumerate(PRICE_KEYS)})
    codes, triples = _key_codes(table)
    assert [triples[c] for c in codes.tolist()] == rows
    assert triples == list(dict.fromkeys(rows))


def test_costs_priced_in_blocks_are_those_priced_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        {
            "source": "t.jsonl",
            "line": i,
            "kind": "llm" if i % 3 else "tool",
            "provider": "anthropic" if i % 3 else None,
            "model": ["claude-sonnet-4-5", "claude-haiku-4-5", "no-such-model"][i % 3] if i % 3 else None,
            "start": 1_759_320_000_000_000 + i * 60_000_000,
            "input_tokens": 1000 * i if i % 3 else None,
            "cache_read_tokens": 10 * i if i % 3 else None,
            "output_tokens": i if i % 3 else None,
            "usage_source": "reported" if i % 3 else None,
        }
        for i in range(50)
    ]
    table = pa.Table.from_batches([batch_from_rows(rows)], schema=STEP_SCHEMA)
    at_once = price_table(table, PriceBook())
    monkeypatch.setattr(pricing, "PRICE_BLOCK_ROWS", 7)
    in_blocks = price_table(table, PriceBook())
    assert in_blocks.table.column("cost_total").num_chunks == 1  # one chunk, as the input table has
    assert in_blocks.table.combine_chunks().equals(at_once.table.combine_chunks())
    assert in_blocks.unpriced == at_once.unpriced and in_blocks.entries == at_once.entries


def test_a_run_of_calls_is_priced_alone_and_the_rest_stays_null() -> None:
    calls = [
        {"kind": "llm", "provider": "anthropic", "model": "claude-sonnet-4-5", "usage_source": "reported"},
        {"kind": "llm", "provider": "anthropic", "model": "no-such-model", "usage_source": "reported"},
        {"kind": "llm", "provider": "anthropic", "model": "claude-haiku-4-5"},  # no usage: no cost, not listed
    ]
    rows = [
        {"source": "t.jsonl", "line": i, "start": 1_759_320_000_000_000, "input_tokens": 100, "output_tokens": 10} | row
        for i, row in enumerate([{"kind": "tool"}, *calls, {"kind": "tool"}, {"kind": "agent"}])
    ]
    table = pa.Table.from_batches([batch_from_rows(rows)], schema=STEP_SCHEMA)
    ran = price_table(table, PriceBook())
    scattered = price_table(table.take([1, 0, 2, 3, 4, 5]), PriceBook())  # the calls not in one run
    assert ran.table["cost_total"].num_chunks == 3
    assert ran.table.take([1, 0, 2, 3, 4, 5]).combine_chunks().equals(scattered.table.combine_chunks())
    assert ran.unpriced == scattered.unpriced and [u.model for u in ran.unpriced] == ["no-such-model"]
    assert ran.table["cost_total"].to_pylist()[0] is None and ran.table["cost_total"].to_pylist()[1] > 0
