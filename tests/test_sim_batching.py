"""The batching policy: selected calls billed at the provider's batch rates, agent loops left alone, small calls with
a shared prompt grouped so the prompt is paid once.

Prices used in the hand computations (USD per million tokens, genai-prices 0.2.3):
gpt-4.1 $2 input / $0.50 cached / $8 output; batch rates in the price data from 2026-10-14: $1 / $0.50 / $4.
claude-sonnet-4-5 $3 input / $0.30 read / $3.75 5m write / $6 1h write / $15 output.
gemini-2.5-flash $0.30 input / $0.03 cached / $2.50 output.
simkit's T0 is 2026-10-01, before the price data's batch rates: there the price book applies the provider's batch
terms (costscope.batch_terms).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from simkit import call, cost, replay, segment

from costscope.price_file import ModelPriceSpec
from costscope.pricing import PriceBook
from costscope.simulate import batching
from costscope.simulate.engine import make_template, run_policies
from costscope.simulate.policy_file import Scenario, load_policy_file
from costscope.simulate.replay import Replay

DAY = 86_400
ROOT = Path(__file__).resolve().parents[1]


def run(rows: list[dict[str, Any]], book: PriceBook | None = None, **settings: Any) -> tuple[Replay, float, float]:
    """Apply batching alone through the engine; (replay state, cost before, cost after)."""
    r = replay(rows, book)
    before = cost(r.base)
    config = batching.Config.model_validate(settings)
    after_run = run_policies(make_template(r.base, r.book), Scenario("t", None, (("batching", config),), "t", {}), "t")
    batching.apply(config, r)
    return r, before, cost(after_run.table)


def selfhosted_book() -> PriceBook:
    """A private model at $1 input / $2 output per million tokens: no batch API, easy arithmetic."""
    rule = ModelPriceSpec.model_validate({"model": "acme", "provider": "selfhosted", "input": 1, "output": 2})
    return PriceBook(rules=[rule], rules_source="test-prices.yaml")


# ---------------------------------------------------------------------------------------------- discount


def test_single_call_openai_gets_the_batch_discount_on_input_and_output_not_on_cached_input() -> None:
    # before: 600 uncached x $2 + 400 cached x $0.50 + 100 out x $8 = 1200 + 200 + 800 = $2200e-6
    # after (OpenAI batch terms): 600 x $1 + 400 x $0.50 + 100 x $4 = 600 + 200 + 400 = $1200e-6
    r, before, after = run([call(cache_read_tokens=400)])
    assert before == pytest.approx(2200e-6)
    assert after == pytest.approx(1200e-6)
    assert r.calls["service_tier"].tolist() == ["batch"]
    priced = r.price()
    assert priced["price_ref"][0].as_py() == (
        "genai-prices 0.2.3: openai/gpt-4.1 [batch terms: openai 50% (cache reads 100%)]"
    )
    assert r.outcomes["batching"].details["batch_priced_by"] == {"price data": 0, "batch terms": 1}
    assert list(r.outcomes["batching"].details["batch_terms_used"]) == ["openai"]
    assert r.outcomes["batching"].risks["calls_batched_share"] == 1.0


def test_anthropic_batch_halves_everything_including_cache_reads_and_writes() -> None:
    # uncached 10000-6000-2000 = 2000 x $3 = 6000; reads 6000 x $0.30 = 1800; 5m writes 1500 x $3.75 = 5625;
    # 1h writes 500 x $6 = 3000; output 1000 x $15 = 15000: $31425e-6 before, exactly half after
    row = call(
        provider="anthropic",
        model="claude-sonnet-4-5",
        input_tokens=10_000,
        cache_read_tokens=6000,
        cache_write_tokens=2000,
        cache_write_1h_tokens=500,
        output_tokens=1000,
    )
    _, before, after = run([row])
    assert before == pytest.approx(31425e-6)
    assert after == pytest.approx(31425e-6 / 2)


def test_gemini_batch_keeps_the_cache_rate() -> None:
    # before: 500 x $0.30 + 500 x $0.03 + 100 x $2.50 = 150 + 15 + 250 = $415e-6
    # after: 500 x $0.15 + 500 x $0.03 (not halved) + 100 x $1.25 = 75 + 15 + 125 = $215e-6
    row = call(provider="google", model="gemini-2.5-flash", cache_read_tokens=500)
    _, before, after = run([row])
    assert before == pytest.approx(415e-6)
    assert after == pytest.approx(215e-6)


def test_where_the_price_data_has_batch_rates_they_are_used() -> None:
    # 2026-10-21: genai-prices' own batch rates for gpt-4.1: 1000 x $1 + 100 x $4 = $1400e-6
    r, before, after = run([call(start=20 * DAY)])
    assert before == pytest.approx(2800e-6)
    assert after == pytest.approx(1400e-6)
    assert r.price()["price_ref"][0].as_py() == "genai-prices 0.2.3: openai/gpt-4.1 [processing=batch]"
    assert r.outcomes["batching"].details["batch_priced_by"] == {"price data": 1, "batch terms": 0}


def test_rules_select_calls_and_others_keep_their_price() -> None:
    rows = [
        call(trace_id="a", operation="classify"),
        call(trace_id="b", operation="chat"),
    ]
    # only the classify call is batched: 1400 + 2800 (µ$)
    r, before, after = run(rows, when=[{"operation": "classify*"}])
    assert after == pytest.approx(4200e-6)
    assert r.calls["service_tier"].tolist() == ["batch", None]
    assert r.outcomes["batching"].details["calls_matched"] == 1


# ---------------------------------------------------------------------------------------------- agent loops


def loop_trace() -> list[dict[str, Any]]:
    """Two calls of one trace: the second re-sends the first exchange as history."""
    system, ask = segment("system", "sys", 200), segment("user", "ask", 800)
    return [
        call(segments=[system, ask], start=0),
        call(segments=[system, segment("history", "ask", 800), segment("user", "more", 100)], start=5),
    ]


def test_agent_loop_is_not_batched_by_default() -> None:
    r, before, after = run(loop_trace())
    assert after == before
    details = r.outcomes["batching"].details
    assert details["calls_skipped_agent_loop"] == 2
    assert details["calls_batched"] == 0
    assert r.calls["service_tier"].isna().all()


def test_agent_loop_is_batched_when_the_user_allows_it() -> None:
    r, before, after = run(loop_trace(), allow_agent_loops=True)
    assert after == pytest.approx(before / 2)  # no cache reads: OpenAI batch terms halve everything billed
    assert r.outcomes["batching"].risks["agent_loop_calls_batched"] == 2


def test_independent_calls_of_one_trace_are_not_a_loop_but_calls_without_content_are_assumed_to_be() -> None:
    system = segment("system", "sys", 200)
    fan_out = [call(segments=[system, segment("user", f"q{i}", 800)], start=i) for i in range(3)]
    r, _, after = run(fan_out)
    assert after == pytest.approx(3 * 1400e-6)
    unknown = [call(trace_id="u", start=i) for i in range(2)]
    r, before, after = run(unknown)
    assert after == before
    assert r.outcomes["batching"].details["calls_skipped_agent_loop"] == 2


# ---------------------------------------------------------------------------------------------- no batch API


def test_provider_without_batch_api_is_not_discounted_and_is_reported() -> None:
    rows = [call(provider="selfhosted", model="acme"), call(trace_id="t2")]
    r, before, after = run(rows, selfhosted_book())
    # acme 1000 x $1 + 100 x $2 = $1200e-6 unchanged; gpt-4.1 2800 -> 1400
    assert before == pytest.approx(1200e-6 + 2800e-6)
    assert after == pytest.approx(1200e-6 + 1400e-6)
    outcome = r.outcomes["batching"]
    assert outcome.details["no_batch_api_by_provider"] == {"selfhosted": 1}
    assert any("selfhosted: 1 call" in note for note in outcome.not_evaluated)
    assert r.calls["service_tier"].tolist() == [None, "batch"]


def test_calls_recorded_as_batch_are_left_alone() -> None:
    r, before, after = run([call(service_tier="batch", start=20 * DAY)])
    assert r.outcomes["batching"].details["calls_already_batch"] == 1
    assert r.outcomes["batching"].details["calls_batched"] == 0
    assert after == before == pytest.approx(1400e-6)


def test_recorded_batch_calls_without_batch_rates_in_the_price_data_are_already_billed_at_batch_terms() -> None:
    # at T0 the price data has no gpt-4.1 batch rates: the price book bills the recorded batch call at OpenAI's
    # batch terms ($1400e-6) before the policy runs, so only the other call's discount is a saving
    r, before, after = run([call(service_tier="batch"), call(trace_id="t2")])
    assert before == pytest.approx(1400e-6 + 2800e-6)
    assert after == pytest.approx(2 * 1400e-6)
    assert r.outcomes["batching"].details["calls_already_batch"] == 1
    assert r.outcomes["batching"].not_evaluated == []


# ---------------------------------------------------------------------------------------------- grouping


def small_calls(starts: list[float], scale: int = 1, **extra: Any) -> list[dict[str, Any]]:
    """Single-call traces on the selfhosted model: a 500-token system prompt and a 100-token item, 50 out."""
    return [
        call(
            trace_id=f"t{i}",
            provider="selfhosted",
            model="acme",
            segments=[segment("system", "sys", 500), segment("user", f"item{i}", 100)],
            input_tokens=600 * scale,
            output_tokens=50,
            start=s,
            **extra,
        )
        for i, s in enumerate(starts)
    ]


def test_grouping_pays_the_shared_prompt_once() -> None:
    # each call: 600 x $1 + 50 x $2 = $700e-6; grouped: 700 + 2 x (100 + 100) = $1100e-6
    r, before, after = run(small_calls([0, 1, 2]), selfhosted_book(), group_size=3)
    assert before == pytest.approx(2100e-6)
    assert after == pytest.approx(1100e-6)
    assert r.calls["input_tokens"].tolist() == [600, 100, 100]
    grouping = r.outcomes["batching"].details["grouping"]
    assert (grouping["groups"], grouping["calls_grouped"], grouping["requests_merged"]) == (1, 3, 2)
    assert grouping["input_tokens_removed"] == 1000


def test_grouping_bills_the_removed_prompt_at_the_calls_reported_scale_and_from_cache_reads_first() -> None:
    # reported input is twice the recount: the 500-token prompt is 1000 billed tokens; the follower's 700 cache
    # reads go first, then 300 uncached tokens
    rows = small_calls([0, 1], scale=2)
    rows[1]["cache_read_tokens"] = 700
    r, _, _ = run(rows, selfhosted_book(), group_size=2)
    assert r.calls["input_tokens"].tolist() == [1200, 200]
    assert r.calls["cache_read_tokens"].tolist() == [0, 0]


def test_grouping_respects_size_window_and_prompt() -> None:
    # group_size 2 over calls at 0, 10, 20 s: [0, 10] grouped, 20 alone; 4000 s is another window
    r, _, _ = run(small_calls([0, 10, 20, 4000]), selfhosted_book(), group_size=2, group_window_s=3600)
    assert r.calls["input_tokens"].tolist() == [600, 100, 600, 600]
    other_prompt = small_calls([0, 1])
    other_prompt[1]["segments"] = [segment("system", "other", 500), segment("user", "x", 100)]
    r, _, _ = run(other_prompt, selfhosted_book(), group_size=2)
    assert r.calls["input_tokens"].tolist() == [600, 600]


def test_calls_over_the_size_limit_or_without_content_are_not_grouped() -> None:
    rows = small_calls([0, 1, 2])
    rows[2]["segments"] = None
    # own tokens: 100 input + 50 output = 150 > 120
    r, _, _ = run(rows, selfhosted_book(), group_size=3, group_max_tokens=120)
    assert r.calls["input_tokens"].tolist() == [600, 600, 600]
    grouping = r.outcomes["batching"].details["grouping"]
    assert (grouping["calls_too_large"], grouping["calls_without_content"]) == (2, 1)
    assert any("logged no request content" in note for note in r.outcomes["batching"].not_evaluated)


def test_shared_prompt_identity_needs_the_same_segments_in_the_same_order() -> None:
    rows = [
        call(trace_id=str(i), segments=[segment(k, h, 10) for k, h in segs] + [segment("user", f"u{i}", 5)])
        for i, segs in enumerate(
            [
                [("tools", "a"), ("system", "b")],
                [("tools", "a"), ("system", "b")],
                [("system", "b"), ("tools", "a")],
                [("tools", "a")],
                [],
            ]
        )
    ]
    identity, tokens = batching._shared_prompt(replay(rows))
    assert identity[0] == identity[1] > 0
    assert len({int(identity[0]), int(identity[2]), int(identity[3])}) == 3
    assert identity[4] == 0
    assert tokens.tolist() == [20, 20, 20, 10, 0]


# ---------------------------------------------------------------------------------------------- file


def test_sample_policy_file_loads() -> None:
    scenario = load_policy_file(ROOT / "sample_traces" / "policies" / "batching.yaml")
    assert scenario.enabled == ["batching"]
    config = dict(scenario.policies)["batching"]
    assert isinstance(config, batching.BatchingConfig)


def test_unknown_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="group_sise"):
        batching.Config.model_validate({"group_sise": 3})
