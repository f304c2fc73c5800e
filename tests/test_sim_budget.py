"""The budget policy: per-trace caps stop a trace after the call that crosses them; tenant budgets alert, switch to
a cheaper model and block, each from the call after the level is crossed.

Prices used in the hand computations: two private models of a price file, `big` at $1 and `small` at $0.25 per
million input tokens (output free), so a call's cost is its input tokens x 1e-6 (or x 0.25e-6).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from simkit import call, cost, replay

from costscope.errors import ConfigError
from costscope.price_file import ModelPriceSpec
from costscope.pricing import PriceBook
from costscope.simulate import budget
from costscope.simulate.engine import make_template, run_policies
from costscope.simulate.policy_file import Scenario, load_policy_file
from costscope.simulate.registry import BY_NAME
from costscope.simulate.replay import Replay

ROOT = Path(__file__).resolve().parents[1]
DAY = 86_400


def book() -> PriceBook:
    rules = [
        ModelPriceSpec.model_validate({"model": name, "provider": "selfhosted", "input": price, "output": 0})
        for name, price in (("big", 1), ("small", "0.25"))
    ]
    return PriceBook(rules=rules, rules_source="test-prices.yaml")


def big(**fields: Any) -> dict[str, Any]:
    return call(**{"provider": "selfhosted", "model": "big", "output_tokens": 0, **fields})


def run(rows: list[dict[str, Any]], **settings: Any) -> tuple[Replay, Any]:
    """Apply the budget alone through the engine: (replay state after apply, the engine's run)."""
    r = replay(rows, book())
    config = budget.Config.model_validate(settings)
    result = run_policies(make_template(r.base, r.book), Scenario("t", None, (("budget", config),), "t", {}), "t")
    budget.apply(config, r)
    return r, result


def dropped(r: Replay) -> list[bool]:
    return (r.calls["dropped_by"] == "budget").tolist()


# ---------------------------------------------------------------------------------------------- per trace


def test_dollar_cap_makes_the_crossing_call_and_cuts_the_rest_of_the_trace() -> None:
    # trace a: four $0.001 calls, cap $0.0025: spent before each call 0, .001, .002 (< cap: made), .003 (cut)
    # trace b: two calls, $0.002 in all: never reaches the cap
    rows = [big(trace_id="a", start=i) for i in range(4)] + [big(trace_id="b", start=i) for i in range(2)]
    r, result = run(rows, per_trace={"max_usd": 0.0025})
    assert dropped(r) == [False, False, False, True, False, False]
    assert cost(result.table) == pytest.approx(0.005)
    details = r.outcomes["budget"].details["per_trace"]
    assert (details["traces"], details["traces_cut"], details["calls_cut"]) == (2, 1, 1)
    assert details["usd_cut"] == pytest.approx(0.001)
    assert details["usd_cut_share"] == pytest.approx(1 / 6)
    assert details["tokens_cut"] == 1000
    assert details["largest_cuts"] == [{"trace_id": "a", "calls_cut": 1, "usd_cut": pytest.approx(0.001)}]
    assert r.outcomes["budget"].risks["traces_cut"] == 1


def test_token_cap_counts_input_and_output_and_a_cap_reached_exactly_stops_the_trace() -> None:
    # 800 in + 200 out = 1000 tokens per call; cap 2000: before call 3 the trace has used exactly 2000 -> cut
    rows = [big(trace_id="a", input_tokens=800, output_tokens=200, start=i) for i in range(4)]
    r, result = run(rows, per_trace={"max_tokens": 2000})
    assert dropped(r) == [False, False, True, True]
    assert result.table.num_rows == 2
    assert r.outcomes["budget"].details["per_trace"]["tokens_cut_share"] == pytest.approx(0.5)


def test_trace_order_follows_start_times() -> None:
    # rows listed out of time order: the cap follows time, so the call at t=9 is the one cut
    rows = [big(trace_id="a", start=9), big(trace_id="a", start=0), big(trace_id="a", start=5)]
    r, _ = run(rows, per_trace={"max_tokens": 1500})
    assert dropped(r) == [True, False, False]


# ---------------------------------------------------------------------------------------------- tenants


def tenant_month() -> list[dict[str, Any]]:
    """15 calls of tenant acme, one a minute from T0 (2026-10-01 12:00 UTC), $0.0012 each on `big`, then one
    call in November."""
    rows = [big(trace_id=f"t{k}", tenant="acme", input_tokens=1200, start=60 * k) for k in range(1, 16)]
    return [*rows, big(trace_id="nov", tenant="acme", input_tokens=1200, start=31 * DAY)]


def test_tenant_budget_alerts_switch_and_block_at_the_right_calls() -> None:
    # budget $0.010. Spend after call k on `big`: 0.0012 k. 50% ($0.005): call 5 (0.0060); 80% ($0.008): call 7
    # (0.0084). From call 8 (spent before 0.0084 >= 0.008) calls go to `small` at $0.0003: after call 8 0.0087,
    # 9 0.0090, 10 0.0093, 11 0.0096 (95% = 0.0095 crossed), 12 0.0099, 13 0.0102 (100% crossed); from call 14
    # (spent before 0.0102 >= 0.010) calls are blocked. November starts afresh: its call stays on `big`.
    tenants = {"per_tenant": {"acme": 0.010}, "switch_to": "small", "switch_provider": "selfhosted"}
    r, result = run(tenant_month(), tenants=tenants)
    assert dropped(r) == [False] * 13 + [True, True, False]
    # blocked calls are never made: they keep the model they had
    assert r.calls["model"].tolist() == ["big"] * 7 + ["small"] * 6 + ["big"] * 3
    # after: 7 x 0.0012 + 6 x 0.0003 + November 0.0012 = 0.0084 + 0.0018 + 0.0012
    assert cost(result.table) == pytest.approx(0.0114)
    months = r.outcomes["budget"].details["tenants"]["months"]
    october = months[0]
    assert (october["tenant"], october["month"], october["budget_usd"]) == ("acme", "2026-10", 0.010)
    assert october["alerts"] == {
        "50%": "2026-10-01T12:05:00.000Z",
        "80%": "2026-10-01T12:07:00.000Z",
        "95%": "2026-10-01T12:11:00.000Z",
        "100%": "2026-10-01T12:13:00.000Z",
    }
    assert october["switched_from"] == "2026-10-01T12:08:00.000Z"
    assert october["blocked_from"] == "2026-10-01T12:14:00.000Z"
    assert (october["calls_switched"], october["calls_blocked"]) == (6, 2)
    assert october["spent_without_budget_usd"] == pytest.approx(0.018)
    assert october["spent_with_budget_usd"] == pytest.approx(0.0102)
    # November: one $0.0012 call is 12% of the budget: no alert, no switch
    assert months[1]["month"] == "2026-11"
    assert set(months[1]["alerts"].values()) == {None}
    assert months[1]["calls_switched"] == 0


def test_switch_lowers_later_costs_and_block_alone_drops_the_rest() -> None:
    # without a switch model: calls 1..9 made (spent before call 9 = 0.0096 < 0.010), call 10 onwards blocked
    r, result = run(tenant_month()[:15], tenants={"per_tenant": {"acme": 0.010}})
    assert dropped(r) == [False] * 9 + [True] * 6
    assert cost(result.table) == pytest.approx(9 * 0.0012)
    assert r.outcomes["budget"].risks["calls_blocked_share"] == pytest.approx(6 / 15)
    assert r.outcomes["budget"].risks["calls_switched_share"] == 0.0


def test_calls_without_tenant_or_budget_are_not_budgeted() -> None:
    rows = [big(trace_id="x", start=0), big(trace_id="y", tenant="other", start=1), *tenant_month()[:15]]
    r, _ = run(rows, tenants={"per_tenant": {"acme": 0.010}})
    assert dropped(r)[:2] == [False, False]
    assert [m["tenant"] for m in r.outcomes["budget"].details["tenants"]["months"]] == ["acme"]
    assert any("without a tenant" in note for note in r.outcomes["budget"].not_evaluated)


def test_default_budget_applies_to_every_named_tenant() -> None:
    rows = [big(trace_id=f"{t}{k}", tenant=t, input_tokens=1200, start=k) for t in ("a", "b") for k in range(3)]
    # $0.002 each month: spent before the third call 0.0024 >= 0.002 -> blocked, for both tenants
    r, _ = run(rows, tenants={"default_monthly_usd": 0.002})
    assert dropped(r) == [False, False, True] * 2


def test_a_budget_never_reached_saves_exactly_nothing() -> None:
    rows = tenant_month()
    r, result = run(rows, per_trace={"max_usd": 1.0}, tenants={"default_monthly_usd": 100.0, "switch_to": "small"})
    recorded = r.base
    assert result.table.num_rows == recorded.num_rows
    assert result.table["cost_total"].to_pylist() == recorded["cost_total"].to_pylist()
    assert result.table["model"].to_pylist() == recorded["model"].to_pylist()
    months = r.outcomes["budget"].details["tenants"]["months"]
    assert all(t is None for m in months for t in m["alerts"].values())
    assert r.outcomes["budget"].risks == {
        "calls_blocked_share": 0.0,
        "calls_switched_share": 0.0,
        "traces_cut": 0,
        "calls_cut_share": 0.0,
    }


def test_budget_sees_the_batch_discount_of_the_joint_replay() -> None:
    # gpt-4.1 1000 in / 100 out: $0.0028 a call, $0.0014 batched. Budget $0.005: alone, spent before call 3 is
    # 0.0056 -> blocked; after batching it is 0.0028 -> made (and call 4, 0.0042 before, too)
    rows = [call(trace_id=f"t{k}", tenant="acme", start=k) for k in range(4)]
    r = replay(rows)
    policies: tuple[tuple[str, Any], ...] = (
        ("batching", load_config("batching", {})),
        ("budget", load_config("budget", {"tenants": {"default_monthly_usd": 0.005}})),
    )
    alone = run_policies(make_template(r.base, r.book), Scenario("t", None, policies[1:], "t", {}), "t")
    joint = run_policies(make_template(r.base, r.book), Scenario("t", None, policies, "t", {}), "t")
    assert alone.table.num_rows == 2
    assert joint.table.num_rows == 4
    assert cost(joint.table) == pytest.approx(4 * 0.0014)


def load_config(name: str, settings: dict[str, Any]) -> Any:
    return BY_NAME[name].Config.model_validate(settings)


# ---------------------------------------------------------------------------------------------- settings


def test_an_unknown_switch_model_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="no price for switch_to model 'smal'"):
        run(tenant_month(), tenants={"per_tenant": {"acme": 0.010}, "switch_to": "smal"})


def test_settings_need_something_to_enforce() -> None:
    with pytest.raises(ValueError, match="per_trace, tenants"):
        budget.Config.model_validate({})
    with pytest.raises(ValueError, match="max_tokens, max_usd"):
        budget.Config.model_validate({"per_trace": {}})
    with pytest.raises(ValueError, match="default_monthly_usd, per_tenant"):
        budget.Config.model_validate({"tenants": {"switch_to": "small"}})


def test_sample_policy_file_loads() -> None:
    scenario = load_policy_file(ROOT / "sample_traces" / "policies" / "budget.yaml")
    assert scenario.enabled == ["budget"]
    assert isinstance(dict(scenario.policies)["budget"], budget.BudgetConfig)
