"""Findings: each detector fires on a hand-made trace with hand-computed dollars, and stays quiet where it must.

Prices (genai-prices 0.2.3, USD per million tokens): gpt-4.1 $2 in / $0.50 cache read / $8 out; gpt-4.1-mini
$0.40 / $0.10 / $1.60; claude-sonnet-4-5 $3 in / $0.30 read / $3.75 5-minute write / $15 out.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from simkit import call, segment, table

from costscope.findings import Finding, FindOptions, find_in_table
from costscope.findings import context_bloat as bloat
from costscope.findings import frontier_overuse as frontier
from costscope.findings import oversized_tool_results as oversized
from costscope.findings import redundant_calls as redundant
from costscope.findings import runaway_traces as runaway
from costscope.findings import uncached_prefix as prefix
from costscope.findings.runaway_traces import round_up
from costscope.pricing import PriceBook
from costscope.render.findings import NONE_FOUND, findings_markdown, findings_table

BOOK = PriceBook.from_file(None)
IN, READ, OUT = 2e-6, 0.5e-6, 8e-6
MINI_IN, MINI_OUT = 0.4e-6, 1.6e-6


def numbered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with `line` = their position in the list (1-based), as in a file."""
    return [{**row, "line": i} for i, row in enumerate(rows, start=1)]


def run(rows: list[dict[str, Any]], kind: str, **options: Any) -> list[Finding]:
    opts = FindOptions(kinds=(kind,), min_share=0.0, **options)
    return find_in_table(table(numbered(rows), BOOK), BOOK, opts)


def only(rows: list[dict[str, Any]], kind: str, **options: Any) -> Finding:
    found = run(rows, kind, **options)
    assert [f.kind for f in found] == [kind]
    orjson.dumps(found[0].to_dict())  # JSON-serializable: no numpy scalars left in figures
    return found[0]


# ---------------------------------------------------------------- redundant calls


def test_redundant_calls_prices_the_repeats_within_the_window() -> None:
    rows = [
        call(trace_id="a", step=1, request_hash="h1", start=0),
        call(trace_id="b", step=1, request_hash="h1", start=100),  # repeat: 100 s after the first
        call(trace_id="c", step=1, request_hash="h1", start=5000),  # 4900 s after the last: outside the hour
        call(trace_id="d", step=1, request_hash="h2", start=110),
    ]
    f = only(rows, "redundant_calls")
    assert f.usd_at_stake == pytest.approx(1000 * IN + 100 * OUT)  # the one repeat: $0.0028
    assert f.calls == 1 and f.traces == 1
    assert f.evidence == ("test.jsonl:2 b#1 (repeats test.jsonl:1)",)
    assert f.policy == {"response_cache": {"mode": "exact", "scope": "tenant", "ttl": "1h"}}


def test_redundant_calls_count_from_the_call_that_stored_the_response() -> None:
    # a chain 0, 3000, 6000 s: the entry stored at 0 serves 3000 but has expired at 6000 (hits do not extend it)
    rows = [call(trace_id=t, step=1, request_hash="h", start=s) for t, s in (("a", 0), ("b", 3000), ("c", 6000))]
    assert only(rows, "redundant_calls").evidence == ("test.jsonl:2 b#1 (repeats test.jsonl:1)",)


def test_redundant_calls_stay_within_the_cache_scope() -> None:
    rows = [call(trace_id="a", tenant="x", request_hash="h"), call(trace_id="b", tenant="y", request_hash="h", start=5)]
    assert run(rows, "redundant_calls") == []
    shared = redundant.Params(scope="global")
    assert run(rows, "redundant_calls", redundant_calls=shared)[0].calls == 1


def test_redundant_calls_quiet_for_distinct_spaced_or_unlogged_requests() -> None:
    rows = [
        call(trace_id="a", request_hash="h1", start=0),
        call(trace_id="b", request_hash="h1", start=7200),  # two hours later
        call(trace_id="c", request_hash="h2", start=10),
        call(trace_id="d", start=20),
        call(trace_id="e", start=30),  # no request body logged: not comparable
    ]
    assert run(rows, "redundant_calls") == []
    assert run(rows, "redundant_calls", redundant_calls=redundant.Params(window_seconds=10_000))[0].calls == 1


# ---------------------------------------------------------------- uncached prefix


def _prefixed(start: float, n: int, model: str = "claude-sonnet-4-5", read: int = 0, system: str = "S") -> dict:
    segs = [segment("tools", "T", 200), segment("system", system, 1800), segment("user", f"U{n}", 100)]
    return call(
        trace_id=f"t{n}",
        step=1,
        provider="anthropic",
        model=model,
        input_tokens=2100,
        cache_read_tokens=read,
        segments=segs,
        start=start,
    )


def test_uncached_prefix_counts_hits_within_ttl_and_write_premiums() -> None:
    rows = [_prefixed(0, 1), _prefixed(60, 2), _prefixed(1000, 3)]
    f = only(rows, "uncached_prefix")
    # call 2 starts 60 s after call 1: 2,000 prefix tokens read at $0.30 instead of $3; calls 1 and 3 write them
    # at $3.75 instead of $3
    assert f.usd_at_stake == pytest.approx(2000 * (3 - 0.3) / 1e6 - 2 * 2000 * (3.75 - 3) / 1e6)
    assert f.figures["would_hit_calls"] == 1 and f.calls == 3
    assert f.evidence[0] == "test.jsonl:2 t2#1 (2,000 prefix tokens, cache hit)"


@pytest.mark.parametrize(
    "rows",
    [
        [_prefixed(0, 1, read=2000), _prefixed(60, 2, read=2000)],  # already read from the cache
        [_prefixed(0, 1, model="claude-haiku-4-5"), _prefixed(60, 2, model="claude-haiku-4-5")],  # < 4,096 tokens
        [_prefixed(0, 1), _prefixed(600, 2), _prefixed(1200, 3)],  # never within 5 minutes: writes never pay off
        [_prefixed(0, 1, system="S1"), _prefixed(60, 2, system="S2")],  # different system prompts
    ],
    ids=["cached", "below-minimum", "spaced", "different"],
)
def test_uncached_prefix_quiet(rows: list[dict[str, Any]]) -> None:
    assert run(rows, "uncached_prefix") == []


# ---------------------------------------------------------------- oversized tool results


def _tool_trace(result_tokens: int) -> list[dict[str, Any]]:
    first = [segment("system", "S", 100), segment("user", "U", 50), segment("tool_result", "R", result_tokens, "read")]
    second = [*first, segment("history", "A", 20), segment("user", "U2", 30)]
    size = 150 + result_tokens
    return [
        call(step=1, input_tokens=size, segments=first, start=0),
        call(step=2, input_tokens=size + 50, cache_read_tokens=size, segments=second, start=10),
    ]


def test_oversized_tool_results_prices_the_excess_where_it_was_billed() -> None:
    f = only(_tool_trace(3000), "oversized_tool_results")
    excess = 3000 - 1000 - 10
    # call 1 pays the excess as plain input; call 2 re-sends it inside its cache read
    assert f.usd_at_stake == pytest.approx(excess * IN + excess * READ)
    assert f.figures["results"] == 1 and f.figures["segments"] == 2
    assert f.evidence == ("test.jsonl:1 t1#1 (read, 3,000 tokens)",)
    assert f.policy == {"truncation": {"max_tokens": 1000}}


def test_oversized_tool_results_quiet_at_or_under_the_cap() -> None:
    assert run(_tool_trace(1010), "oversized_tool_results") == []  # within the cap plus the note
    assert run(_tool_trace(900), "oversized_tool_results") == []
    lower = oversized.Params(max_tokens=800)
    assert run(_tool_trace(900), "oversized_tool_results", oversized_tool_results=lower)[0].usd_at_stake > 0


# ---------------------------------------------------------------- context bloat


def _growing(system_tokens: int = 100, calls: int = 5) -> list[dict[str, Any]]:
    rows = []
    for k in range(1, calls + 1):
        turns = [segment("history", f"H{j}", 500) for j in range(1, k)]
        segs = [segment("system", "S", system_tokens), *turns, segment("user", f"U{k}", 100)]
        rows.append(call(step=k, input_tokens=system_tokens + 500 * (k - 1) + 100, segments=segs, start=10 * k))
    return rows


SMALL = bloat.Params(trigger_tokens=1000, keep_last=1, summary_tokens=100, summary_prompt_tokens=0)


def test_context_bloat_prices_the_input_above_the_trigger_net_of_summaries() -> None:
    f = only(_growing(), "context_bloat", context_bloat=SMALL)
    # inputs 200, 700, 1200, 1700, 2200; calls 3-5 are over 1,000: min(input - 1000, older turns - 100) =
    # 200, 700, 1200 tokens at $2; each refill of the context pays one gpt-4.1-mini summary (1,000 in, 100 out):
    # base 1200 - 500 + 100 = 800, so 200 tokens are freed per summary and 3 summaries are needed
    removed = (200 + 700 + 1200) * IN
    summaries = 3 * (1000 * MINI_IN + 100 * MINI_OUT)
    assert f.usd_at_stake == pytest.approx(removed - summaries)
    assert f.figures["summaries"] == 3 and f.calls == 3 and f.traces == 1
    assert f.evidence[0].startswith("test.jsonl:5 t1#5 (2,200 input tokens")
    assert f.policy == {
        "compression": {
            "trigger_tokens": 1000,
            "keep_last": 1,
            "summary_tokens": 100,
            "summary_prompt_tokens": 0,
            "summarizer_model": "gpt-4.1-mini",
        }
    }


@pytest.mark.parametrize(
    "rows", [_growing(system_tokens=5000), _growing(calls=4)], ids=["history-share-low", "too-few-calls"]
)
def test_context_bloat_quiet(rows: list[dict[str, Any]]) -> None:
    assert run(rows, "context_bloat", context_bloat=SMALL) == []


def test_context_bloat_quiet_when_the_input_does_not_grow() -> None:
    flat = [
        call(step=k, input_tokens=2100, segments=[segment("system", "S", 100), segment("history", "H", 2000)])
        for k in range(1, 7)
    ]
    assert run(flat, "context_bloat", context_bloat=SMALL) == []


# ---------------------------------------------------------------- frontier overuse


def _group(n: int, model: str = "gpt-4.1", output: int = 50, agent: str = "router") -> list[dict[str, Any]]:
    return [
        call(trace_id=f"{agent}{i}", step=1, agent=agent, operation="route", model=model, output_tokens=output)
        for i in range(n)
    ]


def test_frontier_overuse_moves_the_short_calls_of_a_simple_group() -> None:
    rows = _group(5) + _group(1, output=1000)  # 5 of 6 short: a simple group; the long call stays
    f = only(rows, "frontier_overuse")
    cost, cheaper = 1000 * IN + 50 * OUT, 1000 * MINI_IN + 50 * MINI_OUT
    assert f.usd_at_stake == pytest.approx(5 * (0.9 * (cost - cheaper) - 0.1 * cheaper))
    assert f.calls == 5
    assert f.policy == {
        "routing": {
            "rules": [
                {
                    "name": "router / route to gpt-4.1-mini",
                    "when": {"agent": "router", "operation": "route", "model": "gpt-4.1", "output_tokens_max": 256},
                    "to": "gpt-4.1-mini",
                }
            ],
            "escalation_rate": 0.1,
        }
    }


@pytest.mark.parametrize(
    "rows",
    [_group(6, model="gpt-4.1-mini"), _group(3) + _group(3, output=1000), _group(4)],
    ids=["already-small", "mostly-long", "too-few"],
)
def test_frontier_overuse_quiet(rows: list[dict[str, Any]]) -> None:
    assert run(rows, "frontier_overuse") == []


def test_cheaper_model_table() -> None:
    assert frontier.cheaper_model("claude-sonnet-4-5-20250929") == "claude-haiku-4-5"
    assert frontier.cheaper_model("gpt-5-2025-08-07") == "gpt-5-mini"
    assert frontier.cheaper_model("gpt-5-mini") is None
    assert frontier.cheaper_model("acme-llama") is None


# ---------------------------------------------------------------- runaway traces


def test_runaway_trace_prices_what_a_cap_would_cut_and_suggests_it() -> None:
    rows = [call(trace_id=f"n{i}", step=1, operation="op", start=i) for i in range(9)]
    rows += [call(trace_id="big", step=k, operation="op", start=100 + k) for k in range(1, 11)]
    f = only(rows, "runaway_traces", runaway_traces=runaway.Params(cost_factor=2.5))
    each = 1000 * IN + 100 * OUT  # $0.0028; the population's median trace; cap 2.5 x = $0.007
    assert f.usd_at_stake == pytest.approx(10 * each - 3 * each)  # the 3rd call crosses the cap; 7 are cut
    assert f.figures["outlier_traces"] == 1 and f.figures["loop_traces"] == 0
    assert f.policy == {"budget": {"per_trace": {"max_usd": 0.007}}}
    assert f.evidence == ("test.jsonl:10 big#1 (trace $0.0280 vs cap $0.0070)",)


def _looping(tools: list[str]) -> list[dict[str, Any]]:
    """Call k re-sends the tool calls and results of calls 1..k-1 (each tool call identical for a tool)."""
    rows, history = [], [segment("user", "U", 100)]
    for k in range(1, len(tools) + 2):
        rows.append(
            call(
                trace_id="loop",
                step=k,
                input_tokens=sum(s["tokens"] for s in history),
                output_tokens=10,
                segments=list(history),
                start=k,
            )
        )
        if k <= len(tools):
            tool = tools[k - 1]
            history += [segment("history", f"C-{tool}", 20, tool), segment("tool_result", f"R-{tool}", 50, tool)]
    return rows


def test_runaway_traces_prices_the_calls_inside_a_tool_loop() -> None:
    f = only(_looping(["search"] * 4), "runaway_traces")
    # the search call arrives in calls 2, 3, 4 and 5; calls 3-5 (inputs 240, 310, 380) reacted to a repeat
    assert f.usd_at_stake == pytest.approx((240 + 310 + 380) * IN + 3 * 10 * OUT)
    assert f.calls == 3 and f.policy is None
    assert f.evidence == ("test.jsonl:3 loop#3 (loop: search ×4, trace $0.0028)",)


def test_runaway_traces_quiet_without_outliers_or_consecutive_repeats() -> None:
    uniform = [call(trace_id=f"n{i}", step=1, operation="op") for i in range(12)]
    assert run(uniform, "runaway_traces") == []
    assert run(_looping(["search", "read", "search", "read", "search"]), "runaway_traces") == []


def test_round_up_keeps_two_significant_digits() -> None:
    assert [round_up(v) for v in (0.1293, 0.007, 0.46018, 12.31)] == [0.13, 0.007, 0.47, 13.0]


# ---------------------------------------------------------------- usage mismatch


def test_usage_mismatch_prices_the_unconfirmed_input() -> None:
    text = [segment("user", "U", 2000)]
    rows = [call(input_tokens=2, segments=text), call(trace_id="t2", input_tokens=2000, segments=text)]
    f = only(rows, "usage_mismatch")
    assert f.usd_at_stake == pytest.approx((2000 - 2) * IN)  # a placeholder: 2 reported for 2,000 counted
    assert f.figures["by_reason"] == {"placeholder_usage": 1} and f.policy is None


def test_usage_mismatch_quiet_when_usage_agrees() -> None:
    assert run([call(input_tokens=2000, segments=[segment("user", "U", 2000)])], "usage_mismatch") == []


# ---------------------------------------------------------------- the whole list and its renderings


def test_findings_sorted_by_dollars_and_filtered_by_minimum() -> None:
    rows = _group(6) + [call(trace_id="a", request_hash="h", start=0), call(trace_id="b", request_hash="h", start=5)]
    kinds = ("frontier_overuse", "redundant_calls")
    found = find_in_table(table(rows, BOOK), BOOK, FindOptions(kinds=kinds, min_share=0.0))
    assert [f.kind for f in found] == ["frontier_overuse", "redundant_calls"]
    assert found[0].usd_at_stake > found[1].usd_at_stake
    higher = find_in_table(table(rows, BOOK), BOOK, FindOptions(kinds=kinds, min_usd=0.003))
    assert [f.kind for f in higher] == ["frontier_overuse"]


def test_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown finding kinds: leaks"):
        find_in_table(table([call()], BOOK), BOOK, FindOptions(kinds=("leaks",)))


def test_to_dict_carries_the_policy_as_yaml() -> None:
    f = only(_tool_trace(3000), "oversized_tool_results")
    d = f.to_dict()
    assert set(d) >= {"kind", "title", "usd_at_stake", "basis", "evidence", "detail", "policy", "policy_key"}
    assert d["policy"] == "truncation:\n  max_tokens: 1000\n" and d["policy_key"] == "truncation"
    assert d["evidence"] == list(f.evidence)


def test_renderers_show_each_finding_and_its_fix() -> None:
    f = only(_tool_trace(3000), "oversized_tool_results")
    text = findings_table([f], 80)
    assert "Oversized tool results re-sent in the context" in text and "Evidence: test.jsonl:1 t1#1" in text
    assert all(len(line) <= 80 for line in text.splitlines())
    markdown = "\n".join(findings_markdown([f]))
    assert "| 1 | Oversized tool results re-sent in the context |" in markdown
    assert "```yaml\ntruncation:\n  max_tokens: 1000\n```" in markdown
    assert findings_table([], 80) == NONE_FOUND + "\n"


def test_uncached_prefix_suggests_caching_for_the_providers_concerned() -> None:
    f = only([_prefixed(0, 1), _prefixed(60, 2)], "uncached_prefix")
    assert f.policy == {
        "prompt_cache": {"mode": "simulate", "scope": "global", "anthropic": {"ttl": "5m", "agents": "all"}}
    }
    lower = prefix.Params(model_minimums=(("claude-haiku-*", 1024),))
    rows = [_prefixed(0, 1, model="claude-haiku-4-5"), _prefixed(60, 2, model="claude-haiku-4-5")]
    assert run(rows, "uncached_prefix", uncached_prefix=lower)[0].figures["would_hit_calls"] == 1
