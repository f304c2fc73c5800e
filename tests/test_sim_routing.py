"""The routing policy: which calls move (first matching rule), what they cost on the target, escalation re-runs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pytest
from simkit import call, cost, replay, segment

from costscope.errors import ConfigError
from costscope.pricing import UNDATED_PRICE_TIME, PriceBook
from costscope.simulate import routing
from costscope.simulate.policy_file import load_policy_file
from costscope.simulate.replay import Replay

MTOK = 1_000_000


def config(*rules: dict[str, Any], **settings: Any) -> routing.RoutingConfig:
    return routing.RoutingConfig.model_validate({"rules": list(rules), **settings})


def routed(rows: list[dict[str, Any]], *rules: dict[str, Any], **settings: Any) -> Replay:
    r = replay(rows)
    routing.apply(config(*rules, **settings), r)
    return r


def models(r: Replay) -> list[str]:
    return [str(m) for m in r.calls["model"]]


def close(actual: float, expected: float) -> bool:
    return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-15)


# --- money -----------------------------------------------------------------------------------------------


def test_list_prices_the_hand_computations_use() -> None:
    book = PriceBook()
    big = book.resolve("openai", "gpt-4.1", None, UNDATED_PRICE_TIME)
    mini = book.resolve("openai", "gpt-4.1-mini", None, UNDATED_PRICE_TIME)
    assert big is not None and mini is not None
    assert [float(big.rate(c).base) for c in ("input", "cache_read", "output")] == [2.0, 0.5, 8.0]
    assert [float(mini.rate(c).base) for c in ("input", "cache_read", "output")] == [0.4, 0.1, 1.6]


def test_a_routed_trace_costs_the_target_prices_with_the_same_tokens() -> None:
    rows = [
        call(),  # 1000 in / 100 out
        call(input_tokens=3000, cache_read_tokens=2000, output_tokens=200, start=10),
    ]
    r = routed(rows, {"when": {"model": "gpt-4.1"}, "to": "gpt-4.1-mini"})
    # before, gpt-4.1 ($2 in, $0.50 cached, $8 out per MTok):
    #   1000*2 + 100*8 = 2800;  1000*2 + 2000*0.5 + 200*8 = 4600   -> 7400 / 1e6
    assert close(cost(r.base), 7400 / MTOK)
    # after, gpt-4.1-mini ($0.40, $0.10, $1.60), same o200k tokenizer so the same tokens and cache share:
    #   1000*0.4 + 100*1.6 = 560;  1000*0.4 + 2000*0.1 + 200*1.6 = 920   -> 1480 / 1e6
    priced = r.price()
    assert close(cost(priced), 1480 / MTOK)
    assert priced["input_tokens"].to_pylist() == [1000, 3000]
    assert priced["cache_read_tokens"].to_pylist() == [0, 2000]
    assert priced["provider"].to_pylist() == ["openai", "openai"]
    outcome = r.outcomes["routing"]
    assert outcome.risks == {"calls_routed_share": 1.0, "spend_routed_share": 1.0, "escalated_calls": 0}
    assert outcome.details["rules"][0]["from_models"] == {"gpt-4.1": 2}
    assert any("keep their input tokens" in a for a in outcome.assumptions)
    json.dumps(outcome.details)


def test_spend_share_is_the_recorded_cost_of_the_routed_calls() -> None:
    rows = [call(agent="a"), call(agent="b", input_tokens=3000, output_tokens=300, start=5)]
    r = routed(rows, {"when": {"agent": "a"}, "to": "gpt-4.1-mini"})
    # a: 1000*2 + 100*8 = 2800;  b: 3000*2 + 300*8 = 8400  -> 2800 / 11200 = 0.25
    assert r.outcomes["routing"].risks["spend_routed_share"] == pytest.approx(0.25)
    assert r.outcomes["routing"].risks["calls_routed_share"] == pytest.approx(0.5)


def test_a_rule_matching_nothing_saves_exactly_zero() -> None:
    rows = [call(), call(input_tokens=5000, cache_read_tokens=4000, start=3, agent="x")]
    r = routed(rows, {"when": {"agent": "nobody"}, "to": "gpt-4.1-mini"}, escalation_rate=1.0)
    assert cost(r.price()) == cost(r.base)
    assert r.price()["model"].to_pylist() == ["gpt-4.1", "gpt-4.1"]
    assert r.outcomes["routing"].risks == {"calls_routed_share": 0.0, "spend_routed_share": 0.0, "escalated_calls": 0}
    assert r.outcomes["routing"].assumptions == []


def test_calls_already_on_the_target_are_matched_but_not_moved_nor_escalated() -> None:
    rows = [call(model="gpt-4.1-mini-2025-04-14"), call(model="gpt-4.1", start=2)]
    r = routed(rows, {"to": "gpt-4.1-mini"}, escalation_rate=1.0)
    rule = r.outcomes["routing"].details["rules"][0]
    assert (rule["calls_matched"], rule["calls_routed"], rule["calls_already_on_target"]) == (2, 1, 1)
    assert len(r.calls) == 3  # one escalation re-run, of the moved call only
    assert models(r) == ["gpt-4.1-mini-2025-04-14", "gpt-4.1-mini", "gpt-4.1"]


# --- rules -----------------------------------------------------------------------------------------------


def test_first_matching_rule_wins() -> None:
    rows = [call(agent="triage"), call(agent="worker", start=1)]
    r = routed(
        rows,
        {"name": "triage", "when": {"agent": "triage"}, "to": "gpt-4.1-nano"},
        {"name": "everything", "to": "gpt-4.1-mini"},
    )
    assert models(r) == ["gpt-4.1-nano", "gpt-4.1-mini"]
    rules = r.outcomes["routing"].details["rules"]
    assert [(x["rule"], x["calls_matched"]) for x in rules] == [("triage", 1), ("everything", 1)]


def trace_rows() -> list[dict[str, Any]]:
    """Two traces of mixed calls; the comment on each row is its position in its trace."""
    return [
        call(trace_id="t1", agent="triage", operation="support", tenant="acme", prompt_text="Please REFUND me!"),  # 1
        call(trace_id="t1", agent="agent-7", operation="support", input_tokens=4000, output_tokens=20, start=1),  # 2
        call(trace_id="t1", agent="agent-7", operation="support", prompt_text="ok, thanks", start=2),  # 3
        call(trace_id="t2", agent="triage", operation="sales", tenant="globex", prompt_text="we were refunded"),  # 1
        call(trace_id="t2", agent="writer", operation="sales", model="gpt-4o", input_tokens=800, start=1),  # 2
    ]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ({"agent": "triage"}, [0, 3]),
        ({"agent": ["agent-*", "writer"]}, [1, 2, 4]),
        ({"operation": "sales"}, [3, 4]),
        ({"tenant": "acme"}, [0]),
        ({"model": "gpt-4o*"}, [4]),
        ({"step_min": 2}, [1, 2, 4]),
        ({"step_max": 1}, [0, 3]),
        ({"step_min": 2, "step_max": 2}, [1, 4]),
        ({"input_tokens_min": 1000}, [0, 1, 2, 3]),
        ({"input_tokens_max": 999}, [4]),
        ({"input_tokens_min": 1001, "input_tokens_max": 4000}, [1]),
        ({"output_tokens_max": 20}, [1]),
        ({"output_tokens_min": 21}, [0, 2, 3, 4]),
        # whole word, any case: "REFUND" matches, "refunded" does not; the tool turn (no prompt) inherits it
        ({"keywords": ["refund"]}, [0, 1]),
        ({"keywords": ["refund"], "keywords_in": "task"}, [0, 1, 2]),
        ({"keywords": ["refund", "thanks"], "keywords_in": "either"}, [0, 1, 2]),
        ({"keywords": ["refunded"], "keywords_in": "task"}, [3, 4]),
        ({"agent": "agent-7", "keywords": ["thanks"]}, [2]),
    ],
)
def test_each_condition_selects_its_calls(when: dict[str, Any], expected: list[int]) -> None:
    r = routed(trace_rows(), {"when": when, "to": "gpt-4.1-nano"})
    moved = [i for i, m in enumerate(models(r)) if m == "gpt-4.1-nano"]
    assert moved == expected


def test_keyword_phrases_match_across_whitespace_and_not_inside_words() -> None:
    rows = [
        call(prompt_text="I was charged\n twice for this"),
        call(prompt_text="overcharged twice", start=1, trace_id="t2"),
        call(prompt_text="c++ build fails", start=2, trace_id="t3"),
    ]
    r = routed(rows, {"when": {"keywords": ["charged twice", "C++"]}, "to": "gpt-4.1-nano"})
    assert models(r) == ["gpt-4.1-nano", "gpt-4.1", "gpt-4.1-nano"]


def test_position_counts_llm_calls_in_replay_order_not_the_step_column() -> None:
    # the step column may count tool spans too (here 1, 4, 9): position is the ordinal among the LLM calls
    rows = [call(step=1), call(step=4, start=1), call(step=9, start=2)]
    r = routed(rows, {"when": {"step_min": 2, "step_max": 2}, "to": "gpt-4.1-nano"})
    assert models(r) == ["gpt-4.1", "gpt-4.1-nano", "gpt-4.1"]


def test_only_live_calls_are_routed_and_added_calls_are_routed_too() -> None:
    r = replay([call(), call(start=1), call(start=2)])
    r.drop(np.array([True, False, False]), "response_cache")
    summary = r.calls.iloc[[2]].copy()
    summary["agent"] = "summarizer"
    r.add_calls(summary, "compression")
    routing.apply(config({"to": "gpt-4.1-nano"}), r)
    assert models(r) == ["gpt-4.1", "gpt-4.1-nano", "gpt-4.1-nano", "gpt-4.1-nano"]
    details = r.outcomes["routing"].details
    assert details["routed_calls_added_by_earlier_policies"] == 1
    # 3 live calls routed of 3 live; recorded spend routed: 2 of the 3 equal recorded calls
    assert r.outcomes["routing"].risks["calls_routed_share"] == 1.0
    assert r.outcomes["routing"].risks["spend_routed_share"] == pytest.approx(2 / 3)


# --- escalation ------------------------------------------------------------------------------------------


def test_escalated_calls_pay_the_routed_attempt_and_the_rerun_on_the_original_model() -> None:
    rows = [call(start=0, end=4)]
    r = routed(rows, {"to": "gpt-4.1-mini"}, escalation_rate=1.0)
    # routed attempt on gpt-4.1-mini: 1000*0.4 + 100*1.6 = 560; re-run on gpt-4.1: 1000*2 + 100*8 = 2800
    priced = r.price()
    assert priced["model"].to_pylist() == ["gpt-4.1-mini", "gpt-4.1"]
    assert close(cost(priced), (560 + 2800) / MTOK)
    assert r.calls["added_by"].tolist() == ["", "routing"]
    # the re-run starts when the recorded call ended and lasts as long (times in µs)
    assert r.calls["start"].iloc[1] == r.calls["end"].iloc[0]
    assert r.calls["end"].iloc[1] - r.calls["start"].iloc[1] == 4_000_000
    outcome = r.outcomes["routing"]
    assert outcome.risks["escalated_calls"] == 1
    assert outcome.details["escalation"] == {"calls_escalated": 1, "realized_rate": 1.0}


def test_escalation_is_deterministic_near_its_rate_and_monotone_in_it() -> None:
    rows = [call(trace_id=f"t{i}", line=i + 1) for i in range(5000)]
    chosen = {}
    for rate in (0.1, 0.3):
        runs = [routed(rows, {"to": "gpt-4.1-mini"}, escalation_rate=rate) for _ in range(2)]
        sets = [set(r.calls.loc[r.calls["added_by"] == "routing", "origin"]) for r in runs]
        assert sets[0] == sets[1]
        chosen[rate] = sets[0]
        realized = runs[0].outcomes["routing"].details["escalation"]["realized_rate"]
        assert abs(realized - rate) < 0.025  # 5000 draws: at 0.3 one standard deviation is 0.0065
    assert chosen[0.1] < chosen[0.3]


def test_a_rule_can_set_its_own_escalation_rate() -> None:
    rows = [call(agent="a"), call(agent="b", start=1)]
    r = routed(
        rows,
        {"when": {"agent": "a"}, "to": "gpt-4.1-mini", "escalation_rate": 0.0},
        {"when": {"agent": "b"}, "to": "gpt-4.1-mini"},
        escalation_rate=1.0,
    )
    assert [x["calls_escalated"] for x in r.outcomes["routing"].details["rules"]] == [0, 1]


# --- tokens ----------------------------------------------------------------------------------------------


def claude(**fields: Any) -> dict[str, Any]:
    return call(provider="anthropic", model="claude-sonnet-4-5", **fields)


def content(system: int, user: int) -> list[dict[str, Any]]:
    return [segment("system", f"s{system}", system), segment("user", f"u{user}", user)]


def test_input_is_retokenized_from_content_with_the_target_ratio_seen_in_the_data() -> None:
    rows = [
        # Claude: recounted 800 + 200 = 1000, reported 1150 -> scale 1.15
        claude(input_tokens=1150, output_tokens=100, segments=content(800, 200)),
        # gpt-4.1-mini in the data: recounted 1000, reported 980 -> its ratio 0.98
        call(model="gpt-4.1-mini", input_tokens=980, segments=content(700, 300), trace_id="t2"),
    ]
    r = routed(rows, {"when": {"model": "claude-*"}, "to": "gpt-4.1-mini"})
    priced = r.price()
    # input: 1000 recounted * 0.98 = 980;  output: 100 * 0.98 / 1.15 = 85.2 -> 85
    assert priced["input_tokens"].to_pylist() == [980, 980]
    assert priced["output_tokens"].to_pylist() == [85, 100]
    # gpt-4.1-mini: 980*0.4 + 85*1.6 = 392 + 136 = 528
    assert close(priced["cost_total"].to_pylist()[0], 528 / MTOK)
    tokenizer = r.outcomes["routing"].details["tokenizer"]
    assert tokenizer["calls_retokenized_from_content"] == 1
    assert tokenizer["ratios"]["gpt-4.1-mini"]["basis"] == "median over 1 calls in the data"


def test_within_a_tokenizer_family_input_is_kept_whatever_the_measured_scales() -> None:
    rows = [
        # gpt-4.1 with hidden tokens: recounted 1000, reported 1070 (scale 1.07)
        call(input_tokens=1070, segments=content(800, 200)),
        # gpt-4.1-mini seen at scale 0.98: same o200k tokenizer, so it must not re-scale the gpt-4.1 call
        call(model="gpt-4.1-mini", input_tokens=980, segments=content(700, 300), trace_id="t2"),
    ]
    r = routed(rows, {"when": {"model": "gpt-4.1"}, "to": "gpt-4.1-mini"})
    assert r.price()["input_tokens"].to_pylist() == [1070, 980]
    assert r.outcomes["routing"].details["tokenizer"]["calls_same_family"] == 1
    assert r.outcomes["routing"].details["tokenizer"]["ratios"] == {}


def test_without_content_recorded_input_is_scaled_by_documented_default_ratios() -> None:
    rows = [claude(input_tokens=1200, cache_read_tokens=600), call(trace_id="t2")]
    r = routed(
        rows,
        {"when": {"model": "claude-*"}, "to": "gpt-4.1-mini"},
        {"when": {"model": "gpt-4.1"}, "to": "claude-haiku-4-5"},
    )
    priced = r.price()
    # Claude (default 1.2 per cl100k token) -> o200k (default 1.0): 1200 * 1.0 / 1.2 = 1000, cache read 600 -> 500;
    # gpt-4.1 -> Claude Haiku: 1000 * 1.2 / 1.0 = 1200 in, 100 * 1.2 = 120 out
    assert priced["input_tokens"].to_pylist() == [1000, 1200]
    assert priced["cache_read_tokens"].to_pylist() == [500, 0]
    assert priced["output_tokens"].to_pylist() == [83, 120]  # 100 / 1.2 = 83.3
    assert priced["provider"].to_pylist() == ["openai", "anthropic"]
    outcome = r.outcomes["routing"]
    assert outcome.details["tokenizer"]["calls_scaled_by_model_ratio"] == 2
    assumed = [a for a in outcome.assumptions if a.startswith("Assumed")]
    assert any("1.20" in a and "claude-sonnet-4-5" in a for a in assumed)
    assert any("1.00" in a and "gpt-4.1" in a for a in assumed)


def test_configured_ratios_override_the_data_and_output_ratio_scales_the_answer() -> None:
    rows = [claude(input_tokens=1150, segments=content(800, 200))]
    r = routed(
        rows,
        {"to": "gpt-4.1-mini", "output_ratio": 0.5},
        input_token_ratios={"gpt-4.1*": 1.1, "claude-*": 1.25},
    )
    priced = r.price()
    # input from content: 1000 * 1.1 = 1100; output: 100 * 1.1 / 1.25 * 0.5 = 44
    assert priced["input_tokens"].to_pylist() == [1100]
    assert priced["output_tokens"].to_pylist() == [44]
    assert not [a for a in r.outcomes["routing"].assumptions if a.startswith("Assumed")]


# --- targets and settings --------------------------------------------------------------------------------


def test_an_unknown_target_model_is_a_config_error_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as err:
        routed([call()], {"when": {"agent": "nobody"}, "to": "gpt-4.1-minii"})
    assert "gpt-4.1-minii" in err.value.message
    assert err.value.hint is not None and "gpt-4.1-mini" in err.value.hint


def test_a_target_priced_only_by_the_price_file_takes_its_provider(tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "version: 1\nmodels:\n  - {model: house-llm, provider: selfhosted, input: 0.1, output: 0.2}\n", encoding="utf-8"
    )
    book = PriceBook.from_file(prices)
    r = replay([call()], book)
    routing.apply(config({"to": "house-llm"}), r)
    priced = r.price()
    assert priced["provider"].to_pylist() == ["selfhosted"]
    # 1000*0.1 + 100*0.2 = 120
    assert close(cost(priced), 120 / MTOK)


def test_routed_calls_the_target_has_no_price_for_at_their_date_are_listed_unpriced(tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "version: 1\nmodels:\n"
        "  - {model: house-llm, provider: selfhosted, input: 0.1, output: 0.2, until: 2026-09-30}\n",
        encoding="utf-8",
    )
    book = PriceBook.from_file(prices)
    two_days_before = -2 * 86_400
    r = replay([call(start=two_days_before), call(start=0, trace_id="t2")], book)
    routing.apply(config({"to": "house-llm"}), r)
    assert r.outcomes["routing"].details["unpriced_routed_calls"] == 1
    assert any("1 routed calls have no price" in n for n in r.outcomes["routing"].not_evaluated)
    # the first call is priced at the rule's rates (1000*0.1 + 100*0.2 = 120), the second is unpriced (null)
    assert r.price()["cost_total"].to_pylist() == [pytest.approx(120 / MTOK), None]
    # priced at none of its calls' dates nor at the latest prices: an error, not calls costing nothing
    with pytest.raises(ConfigError, match="no price for target model 'house-llm'"):
        routing.apply(config({"to": "house-llm"}), replay([call(start=0)], book))


def test_the_provider_named_in_the_data_wins_over_genai_prices() -> None:
    rows = [call(), call(provider="azure", model="gpt-4.1-mini", trace_id="t2")]
    r = routed(rows, {"when": {"model": "gpt-4.1"}, "to": "gpt-4.1-mini"})
    assert r.calls["provider"].tolist() == ["azure", "azure"]


def test_routing_on_recorded_output_length_is_flagged_as_an_upper_bound() -> None:
    r = routed([call()], {"name": "short", "when": {"output_tokens_max": 500}, "to": "gpt-4.1-mini"})
    assert any(a.startswith("short routes on the recorded output length") for a in r.outcomes["routing"].assumptions)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"rules": []}, "at least 1"),
        ({"rules": [{"to": "gpt-4.1-mini", "when": {"step_min": 3, "step_max": 2}}]}, "step_min (3) is above"),
        ({"rules": [{"to": "gpt-4.1-mini", "when": {"agents": "x"}}]}, "Extra inputs"),
        ({"rules": [{"to": "gpt-4.1-mini"}], "escalation_rate": 1.5}, "less than or equal to 1"),
        ({"rules": [{"to": "gpt-4.1-mini", "output_ratio": 0}]}, "greater than 0"),
        ({"rules": [{"to": "gpt-4.1-mini", "when": {"keywords_in": "body"}}]}, "last_user"),
    ],
)
def test_invalid_settings_are_rejected(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        routing.RoutingConfig.model_validate(settings)


def test_the_sample_policy_loads_and_saves_money_on_the_samples() -> None:
    from costscope import api
    from costscope.simulate.engine import make_template, run_policies

    scenario = load_policy_file("sample_traces/policies/routing.yaml")
    assert scenario.enabled == ["routing"]
    steps = api.load_priced_steps(["sample_traces/"])
    calls = steps.table.filter(pc.equal(steps.table["kind"], "llm"))
    run = run_policies(make_template(calls, steps.book), scenario, "joint")
    before, after = cost(calls), cost(run.table)
    assert 0 < after < before
    risks = run.outcomes["routing"].risks
    assert 0 < risks["calls_routed_share"] < 1 and 0 < risks["spend_routed_share"] < 1
    assert run.calls_added == {"routing": risks["escalated_calls"]}
    json.dumps(run.outcomes["routing"].details)
