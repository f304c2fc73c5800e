"""The truncation policy: tool results capped once, the saving carried by every later call that re-sends them.

Prices used in the hand computations: gpt-4.1 $2.00 input / $8.00 output per million tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from simkit import call, cost, replay, segment

from costscope.simulate import truncation
from costscope.simulate.policy_file import load_policy_file
from costscope.simulate.replay import Replay

IN, OUT = 2.00e-6, 8.00e-6
SYSTEM = segment("system", "sys", 100)
FRAMING = segment("framing", "frame", 10)


def agent_trace(scale: int = 1, **extra: Any) -> list[dict[str, Any]]:
    """Three calls: a 3000-token read_file result at call 2, re-sent at call 3 next to an 800-token grep result.

    Inputs (recount): 100+50+10 = 160; 100+50+20+3000+10 = 3180; 3180+20+800 = 4000; reported = recount × scale.
    """
    calls = [
        [SYSTEM, segment("user", "ask", 50), FRAMING],
        [
            SYSTEM,
            segment("history", "ask", 50),
            segment("history", "call-r1", 20, "read_file"),
            segment("tool_result", "r1", 3000, "read_file"),
            FRAMING,
        ],
        [
            SYSTEM,
            segment("history", "ask", 50),
            segment("history", "call-r1", 20, "read_file"),
            segment("tool_result", "r1", 3000, "read_file"),
            segment("history", "call-r2", 20, "grep"),
            segment("tool_result", "r2", 800, "grep"),
            FRAMING,
        ],
    ]
    return [
        call(segments=segs, input_tokens=scale * sum(s["tokens"] for s in segs), start=i, **extra)
        for i, segs in enumerate(calls)
    ]


def run(rows: list[dict[str, Any]], **settings: Any) -> Replay:
    r = replay(rows)
    truncation.apply(truncation.Config(**settings), r)
    return r


def inputs(r: Replay) -> list[float]:
    return r.calls["input_tokens"].tolist()


def test_cap_propagates_to_every_later_call_resending_the_result() -> None:
    r = run(agent_trace(), max_tokens=1000, marker_tokens=10)
    # r1: 3000 -> 1000 + 10 marker = 1010, 1990 removed in calls 2 and 3; r2 (800) is under the cap
    assert inputs(r) == [160, 3180 - 1990, 4000 - 1990]
    seg = r.segments()
    assert seg.loc[seg["hash"] == seg.loc[seg["kind"] == "tool_result", "hash"].iloc[0], "kept"].tolist() == [
        1010,
        1010,
    ]
    before = cost(r.base)
    assert before - cost(r.price()) == pytest.approx(2 * 1990 * IN)
    risks = r.outcomes["truncation"].risks
    assert risks["context_removed_share"] == pytest.approx(3980 / (160 + 3180 + 4000))
    assert risks["context_removed_share_affected"] == pytest.approx(3980 / (3180 + 4000))
    assert risks["calls_affected_share"] == pytest.approx(2 / 3)
    details = r.outcomes["truncation"].details
    assert details["results_truncated"] == 1
    assert details["segments_truncated"] == 2
    assert details["input_tokens_removed"] == 3980
    assert details["by_tool"] == [
        {
            "tool": "read_file",
            "keep": "head_tail",
            "results_truncated": 1,
            "segments_truncated": 2,
            "recount_tokens_removed": 3980.0,
        }
    ]
    assert r.outcomes["truncation"].not_evaluated == []


def test_saving_is_billed_at_the_calls_reported_to_recounted_ratio() -> None:
    r = run(agent_trace(scale=2), max_tokens=1000, marker_tokens=10)
    # reported input is twice the recount: 1990 recounted tokens removed = 3980 billed
    assert inputs(r) == [320, 6360 - 3980, 8000 - 3980]


def test_per_tool_rules_first_match_wins_and_null_never_truncates() -> None:
    rules = [
        {"match": "read_*", "max_tokens": None},
        {"match": "gr?p", "max_tokens": 300, "keep": "tail"},
        {"match": "grep", "max_tokens": 1},
    ]
    r = run(agent_trace(), max_tokens=100, marker_tokens=10, tools=rules)
    # read_file uncapped; grep capped by the first matching rule: 800 -> 310, call 3 only
    assert inputs(r) == [160, 3180, 4000 - 490]
    assert r.outcomes["truncation"].details["by_tool"][0]["keep"] == "tail"


def test_marker_never_makes_a_result_longer() -> None:
    r = run(agent_trace(), max_tokens=795, marker_tokens=10)
    # grep's 800 tokens are under 795 + 10: kept whole; r1 3000 -> 805
    assert inputs(r) == [160, 3180 - 2195, 4000 - 2195]
    assert r.outcomes["truncation"].details["results_truncated"] == 1


def test_calls_without_content_are_untouched_and_reported_with_their_spend() -> None:
    rows = [*agent_trace(), call(input_tokens=5000, start=9)]
    r = run(rows, max_tokens=1000)
    assert inputs(r) == [160, 1190, 2010, 5000]
    # spend share of the content-less call: (5000*2 + 100*8) / ((160+3180+4000+5000)*2 + 4*100*8) = 10800/27880
    (note,) = r.outcomes["truncation"].not_evaluated
    assert note.startswith("1 of 4 calls (38.7% of recorded spend) logged no request content")
    # the shares are over the calls that could be evaluated
    assert r.outcomes["truncation"].risks["context_removed_share"] == pytest.approx(3980 / 7340)


def test_no_tool_results_says_so_and_saves_nothing() -> None:
    rows = [call(segments=[SYSTEM, segment("user", "q", 900)], input_tokens=1000)]
    r = run(rows, max_tokens=10)
    assert r.outcomes["truncation"].not_evaluated == [
        "no tool results in the logged request content: nothing to truncate"
    ]
    assert cost(r.price()) == cost(r.base)


def test_no_content_at_all_says_why_and_changes_nothing() -> None:
    r = run([call(), call(start=1)], max_tokens=10)
    assert r.outcomes["truncation"].not_evaluated == [
        "2 of 2 calls (100.0% of recorded spend) logged no request content: their tool results cannot be "
        "truncated; they are projected as recorded",
        "no tool results in the logged request content: nothing to truncate",
    ]
    assert cost(r.price()) == cost(r.base)


def test_a_cap_above_every_result_saves_exactly_zero() -> None:
    r = run(agent_trace(cache_read_tokens=100), max_tokens=5000)
    assert cost(r.price()) == cost(r.base)
    assert not r.calls["content_changed"].any()
    assert r.outcomes["truncation"].risks["context_removed_share"] == 0


def test_cache_reads_shrink_in_proportion() -> None:
    rows = agent_trace()
    rows[2]["cache_read_tokens"] = 2000
    r = run(rows, max_tokens=1000)
    # call 3: 4000 -> 2010 input, so its 2000 cached tokens -> 2000 * 2010/4000 = 1005
    assert r.calls["cache_read_tokens"].tolist()[2] == pytest.approx(1005)
    assert r.price()["cache_read_tokens"].to_pylist()[2] == 1005


def test_settings_are_strict() -> None:
    with pytest.raises(ValueError):
        truncation.Config(max_tokens=0)
    with pytest.raises(ValueError):
        truncation.Config(max_tokens="100")
    with pytest.raises(ValueError):
        truncation.Config(tools=[{"match": "x", "max_tokens": 10, "extra": 1}])


def test_sample_policy_file_loads() -> None:
    scenario = load_policy_file(Path(__file__).parent.parent / "sample_traces" / "policies" / "truncation.yaml")
    assert scenario.enabled == ["truncation"]
