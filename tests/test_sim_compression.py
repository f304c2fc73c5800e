"""The compression policy: over budget, older turns become a summary that later calls carry instead of them.

Prices used in the hand computations (per million tokens): gpt-4.1 $2.00 in / $8.00 out, gpt-4.1-mini $0.40 / $1.60.
The trace (recount = reported, scale 1), turns being history and tool-result parts:
  c1: sys 200 + user u1 100                                             = 300
  c2: sys + u1 100 + a1 50 + r1 400                                     = 750
  c3: sys + u1 + a1 + r1 + a2 50 + r2 400                               = 1200
  c4: sys + u1 + a1 + r1 + a2 + r2 + a3 50 + user u4 100                = 1350
  c5: sys + u1 + a1 + r1 + a2 + r2 + a3 + u4 100 + a4 50 + r5 300      = 1700
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from simkit import call, cost, replay, segment

from costscope.simulate import compression, truncation
from costscope.simulate.policy_file import load_policy_file
from costscope.simulate.replay import Replay

IN, OUT = 2.00e-6, 8.00e-6
MINI_IN, MINI_OUT = 0.40e-6, 1.60e-6
SYS = segment("system", "sys", 200)
U1, A1, R1 = (
    segment("history", "u1", 100),
    segment("history", "a1", 50, "grep"),
    segment("tool_result", "r1", 400, "grep"),
)
A2, R2 = segment("history", "a2", 50, "grep"), segment("tool_result", "r2", 400, "grep")
A3, U4, A4 = segment("history", "a3", 50), segment("history", "u4", 100), segment("history", "a4", 50, "grep")
R5 = segment("tool_result", "r5", 300, "grep")
PROMPTS = [
    [SYS, segment("user", "u1", 100)],
    [SYS, U1, A1, R1],
    [SYS, U1, A1, R1, A2, R2],
    [SYS, U1, A1, R1, A2, R2, A3, segment("user", "u4", 100)],
    [SYS, U1, A1, R1, A2, R2, A3, U4, A4, R5],
]
RECORDED = [300, 750, 1200, 1350, 1700]
SETTINGS: dict[str, Any] = {"trigger_tokens": 1000, "keep_last": 2, "summary_tokens": 100, "summary_prompt_tokens": 50}


def trace(trace_id: str = "t1", prompts: list[list[dict[str, Any]]] = PROMPTS, **extra: Any) -> list[dict[str, Any]]:
    return [
        call(trace_id=trace_id, segments=p, input_tokens=sum(s["tokens"] for s in p), start=i, **extra)
        for i, p in enumerate(prompts)
    ]


def run(rows: list[dict[str, Any]], **settings: Any) -> Replay:
    r = replay(rows)
    compression.apply(compression.Config(**{**SETTINGS, **settings}), r)
    return r


def recorded_inputs(r: Replay) -> list[float]:
    calls = r.calls[r.calls["added_by"] == ""]
    return calls["input_tokens"].tolist()


def summarizers(r: Replay) -> list[dict[str, Any]]:
    added = r.calls[r.calls["added_by"] == "compression"]
    columns = ["origin", "model", "operation", "input_tokens", "output_tokens"]
    return added[columns].to_dict("records")  # type: ignore[no-any-return]


def test_over_budget_keeps_last_turns_and_later_calls_carry_the_summary() -> None:
    r = run(trace())
    # c3 (1200 > 1000): keep a2, r2; summarize u1+a1+r1 = 550 -> 200 + 100 + 50 + 400 = 750
    # c4 carries the summary, not u1/a1/r1: 200 + 100 + a2 50 + r2 400 + a3 50 + u4 100 = 900 (under budget)
    # c5 = 200 + 100 + 50 + 400 + 50 + 100 + 50 + 300 = 1250 > 1000: keep a4, r5; summarize a2+r2+a3+u4 = 600
    #      plus the previous summary 100 -> 200 + 100 + 50 + 300 = 650
    assert recorded_inputs(r) == [300, 750, 750, 900, 650]
    assert summarizers(r) == [
        {"origin": 2, "model": "gpt-4.1", "operation": "summarize", "input_tokens": 550 + 50, "output_tokens": 100},
        {"origin": 4, "model": "gpt-4.1", "operation": "summarize", "input_tokens": 700 + 50, "output_tokens": 100},
    ]
    after = r.price()
    # before: 5300 in + 500 out; after: 3350 in + 500 out + summarizers 1350 in + 200 out
    assert cost(r.base) == pytest.approx(5300 * IN + 500 * OUT)
    assert cost(after) == pytest.approx(3350 * IN + 500 * OUT + 1350 * IN + 200 * OUT)
    assert after["operation"].to_pylist()[-2:] == ["summarize", "summarize"]
    outcome = r.outcomes["compression"]
    # removed originals: c3 550, c4 550, c5 550 + 600 = 2250; summaries added: 3 × 100
    assert outcome.risks["context_removed_share"] == pytest.approx(2250 / 5300)
    assert outcome.risks["context_removed_share_affected"] == pytest.approx(2250 / (1200 + 1350 + 1700))
    assert outcome.risks["calls_affected_share"] == pytest.approx(3 / 5)
    assert outcome.details["summaries_made"] == 2
    assert outcome.details["summarizer_input_tokens"] == 1350
    assert outcome.details["input_tokens_removed"] == 2250
    assert outcome.details["summary_input_tokens_added"] == 300
    assert outcome.details["calls_still_over_budget"] == 0


def test_triggers_only_when_strictly_over_budget() -> None:
    r = run(trace(), trigger_tokens=1200)
    # c3 is exactly 1200: not over. c4 (1350): turns u1 a1 r1 a2 r2 a3 (u4 is its new user input, never a turn);
    # keep r2, a3; summarize u1+a1+r1+a2 = 600 -> 200 + 100 + 400 + 50 + 100 = 850
    # c5 = 200 + 100 + r2 400 + a3 50 + u4 100 + a4 50 + r5 300 = 1200: not over
    assert recorded_inputs(r) == [300, 750, 1200, 850, 1200]
    assert [(s["origin"], s["input_tokens"]) for s in summarizers(r)] == [(3, 650)]


def test_a_budget_never_reached_saves_exactly_zero() -> None:
    r = run(trace(cache_read_tokens=100), trigger_tokens=1700)
    assert cost(r.price()) == cost(r.base)
    assert summarizers(r) == []
    assert r.outcomes["compression"].risks["context_removed_share"] == 0
    assert r.outcomes["compression"].details["summaries_made"] == 0


def test_summarizer_is_priced_on_its_own_model() -> None:
    r = run(trace(), summarizer_model="gpt-4.1-mini")
    assert [s["model"] for s in summarizers(r)] == ["gpt-4.1-mini", "gpt-4.1-mini"]
    assert cost(r.price()) == pytest.approx(3350 * IN + 500 * OUT + 1350 * MINI_IN + 200 * MINI_OUT)


def test_other_traces_and_unrelated_calls_do_not_carry_the_summary() -> None:
    # t2 re-sends the same contents (same hashes) but stays under budget; a sub-agent call in t1 after the
    # compression re-sends none of the summarized turns
    sub = call(trace_id="t1", segments=[SYS, segment("user", "sub", 100)], input_tokens=300, start=3.5)
    rows = trace()
    rows.insert(4, sub)
    rows += trace("t2", PROMPTS[:2])
    r = run(rows)
    assert recorded_inputs(r) == [300, 750, 750, 900, 300, 650, 300, 750]


def test_a_call_carrying_two_summaries_folds_both_into_its_own() -> None:
    x1, x2, x3 = (segment("history", f"x{i}", t) for i, t in ((1, 400), (2, 400), (3, 100)))
    y1, y2, y3 = (segment("history", f"y{i}", t) for i, t in ((1, 400), (2, 400), (3, 100)))
    z, w = segment("history", "z", 50), segment("user", "w", 50)
    prompts = [[SYS, x1, x2, x3], [SYS, y1, y2, y3], [SYS, x1, y1, x2, y2, z], [SYS, x1, y1, x2, y2, z, w]]
    r = run(trace(prompts=prompts))
    # c1 1100: summary A of x1 -> 200 + 100 + 400 + 100 = 800; c2 likewise, summary B of y1 -> 800
    # c3 carries A and B: 200 + x2 400 + y2 400 + z 50 + 2 * 100 = 1250 > 1000: keep y2, z; summarize x2 with A and
    #    B (400 + 200 = 600) into C -> 200 + 100 + 400 + 50 = 750
    # c4 carries only C (x1, y1, x2 all folded in): 200 + 100 + y2 400 + z 50 + w 50 = 800
    assert recorded_inputs(r) == [800, 800, 750, 800]
    assert [(s["origin"], s["input_tokens"]) for s in summarizers(r)] == [(0, 450), (1, 450), (2, 650)]
    assert r.outcomes["compression"].details["summary_input_tokens_added"] == 400


def test_not_compressible_when_the_summary_would_not_shrink_the_call() -> None:
    # system 1200 alone is over budget; the older turns (60) are smaller than the summary (100)
    prompts = [[segment("system", "big", 1200), segment("history", "h1", 30), segment("history", "h2", 30)]]
    prompts.append([*prompts[0], segment("history", "h3", 30), segment("history", "h4", 30)])
    r = run(trace(prompts=prompts))
    # keep_last 2: call 1 has no older turn; call 2's older turns h1+h2 = 60 <= 100: neither is compressed
    assert recorded_inputs(r) == [1260, 1320]
    assert summarizers(r) == []
    assert r.outcomes["compression"].details["calls_over_budget_not_compressible"] == 2
    r = run(trace(prompts=prompts), keep_last=1, summary_tokens=50)
    # call 1: h1 30 <= 50, not compressible; call 2: h1+h2+h3 = 90 > 50 -> 1200 + 50 + h4 30 = 1280, still over
    assert recorded_inputs(r) == [1260, 1280]
    assert [(s["origin"], s["input_tokens"], s["output_tokens"]) for s in summarizers(r)] == [(1, 90 + 50, 50)]
    details = r.outcomes["compression"].details
    assert (details["calls_over_budget_not_compressible"], details["calls_still_over_budget"]) == (1, 1)


def test_calls_without_content_are_reported_and_kept() -> None:
    rows = [*trace(), call(trace_id="t1", input_tokens=5000, start=9)]
    r = run(rows)
    assert recorded_inputs(r)[-1] == 5000
    (note,) = r.outcomes["compression"].not_evaluated
    assert note.startswith("1 of 6 calls (")
    assert "logged no request content" in note


def test_no_content_at_all_changes_nothing() -> None:
    r = run([call(input_tokens=50_000), call(input_tokens=60_000, start=1)])
    assert recorded_inputs(r) == [50_000, 60_000]
    assert summarizers(r) == []
    assert r.outcomes["compression"].not_evaluated[0].startswith("2 of 2 calls (100.0% of recorded spend)")


def test_cache_columns_keep_their_share_of_the_rebuilt_input() -> None:
    rows = trace()
    rows[3]["cache_read_tokens"] = 675
    r = run(rows)
    # c4: 1350 -> 900 (1350 - 550 removed + 100 summary); 675 cached = half of it -> 450
    assert r.calls["cache_read_tokens"].tolist()[3] == pytest.approx(450)


def test_compresses_what_truncation_left() -> None:
    r = replay(trace())
    truncation.apply(truncation.Config(max_tokens=300, marker_tokens=0), r)
    compression.apply(compression.Config(**SETTINGS), r)
    # r1, r2 capped at 300: c3 = 200+100+50+300+50+300 = 1000, not over; c4 = 1150: keep r2, a3, summarize
    # u1+a1+r1+a2 = 500 -> 750; c5 = 200+100+300+50+100+50+300 = 1100: keep a4, r5, summarize r2+a3+u4 = 450
    # (+100 previous summary) -> 200+100+50+300 = 650
    assert recorded_inputs(r) == [300, 650, 1000, 750, 650]
    assert [(s["origin"], s["input_tokens"]) for s in summarizers(r)] == [(3, 550), (4, 600)]
    # compression's own removal: c4 500, c5 500 + 450
    assert r.outcomes["compression"].risks["context_removed_share"] == pytest.approx(1450 / 5300)


def test_sample_policy_file_loads() -> None:
    scenario = load_policy_file(Path(__file__).parent.parent / "sample_traces" / "policies" / "compression.yaml")
    assert scenario.enabled == ["compression"]


def reference(prompts: list[list[dict[str, Any]]], trigger: int, keep: int, size: int) -> tuple[list[int], list[int]]:
    """The policy spelled out call by call for one trace (scale 1): inputs, and summarized tokens per summary."""
    holder: dict[str, int] = {}  # content -> summary that took it in
    merged: dict[int, int] = {}  # summary -> summary that folded it in

    def current(summary: int) -> int:
        while summary in merged:
            summary = merged[summary]
        return summary

    inputs, summarized_per_summary = [], []
    for i, prompt in enumerate(prompts):
        carried = {current(holder[s["hash"]]) for s in prompt if s["hash"] in holder}
        active = [s for s in prompt if s["hash"] not in holder]
        context = sum(s["tokens"] for s in active) + size * len(carried)
        if context > trigger:
            turns = [s for s in active if s["kind"] in ("history", "tool_result")]
            older = turns[:-keep]
            summarized = sum(s["tokens"] for s in older) + size * len(carried)
            if older and summarized > size:
                for summary in carried:
                    merged[summary] = i
                for s in older:
                    holder[s["hash"]] = i
                summarized_per_summary.append(summarized)
                context, carried = context - summarized + size, {i}
        inputs.append(context)
    return inputs, summarized_per_summary


def random_trace(rng: random.Random, calls: int) -> list[list[dict[str, Any]]]:
    """An agent loop (history grows by a tool call and its result each step) with sub-agent calls that re-send
    only part of it; contents are named per position, so different traces share names (and hashes)."""
    history: list[dict[str, Any]] = []
    prompts = []
    for step in range(calls):
        new = [
            segment("history", f"call{step}", rng.randint(5, 60), "grep"),
            segment("tool_result", f"result{step}", rng.randint(50, 900), "grep"),
        ]
        if rng.random() < 0.2 and history:
            part = history[: rng.randint(0, len(history))]
            prompts.append([SYS, *part, segment("user", f"sub{step}", 40)])
            continue
        prompts.append([SYS, *history, *new])
        history += new
    return prompts


@pytest.mark.parametrize("seed", range(6))
def test_matches_the_call_by_call_reference(seed: int) -> None:
    rng = random.Random(seed)
    settings = {"trigger_tokens": rng.choice([1500, 3000, 6000]), "keep_last": rng.randint(1, 5)}
    settings["summary_tokens"] = rng.choice([50, 300])
    traces = [random_trace(rng, rng.randint(1, 30)) for _ in range(8)]
    rows = []
    for t, prompts in enumerate(traces):
        trace_id = None if len(prompts) == 1 else f"t{t}"
        rows += (
            trace(trace_id, prompts)
            if trace_id
            else [call(trace_id=None, segments=prompts[0], start=0, input_tokens=sum(s["tokens"] for s in prompts[0]))]
        )
    r = run(rows, **settings)
    expected_inputs, expected_summaries = [], []
    for prompts in traces:
        inputs, summaries = reference(
            prompts, settings["trigger_tokens"], settings["keep_last"], settings["summary_tokens"]
        )
        expected_inputs += inputs
        expected_summaries += summaries
    assert recorded_inputs(r) == pytest.approx(expected_inputs)
    assert [s["input_tokens"] - 50 for s in summarizers(r)] == pytest.approx(expected_summaries)
    assert r.outcomes["compression"].details["summaries_made"] == len(expected_summaries)
