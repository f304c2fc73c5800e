"""Techniques interact: the joint replay is not the sum of the parts (hand-computed)."""

from __future__ import annotations

import pytest
from simkit import call, cost, segment, table

from costscope.pricing import PriceBook
from costscope.simulate.engine import make_template, simulate_scenario
from costscope.simulate.policy_file import PolicyFileModel, _scenario

BOOK = PriceBook.from_file(None)
IN, OUT = 2 / 1e6, 8 / 1e6  # gpt-4.1, USD per token (genai-prices 0.2.3)


def _trace() -> list[dict]:
    """A tool result of 5,000 tokens read at step 2 and re-sent at step 3 (recount = reported: scale 1)."""
    system, result = segment("system", "sys", 1000), segment("tool_result", "r", 5000, tool="grep")
    reply = segment("history", "h", 100)
    return [
        call(start=0, input_tokens=1100, segments=[system, segment("user", "u", 100)]),
        call(start=10, input_tokens=6100, segments=[system, result, reply]),
        call(start=20, input_tokens=6200, segments=[system, result, reply, segment("user", "u2", 100)]),
    ]


def test_truncation_then_compression_is_not_the_sum_of_the_parts() -> None:
    raw = {
        "version": 1,
        "truncation": {"max_tokens": 1000, "marker_tokens": 0},
        "compression": {"trigger_tokens": 5000, "keep_last": 1, "summary_tokens": 200, "summary_prompt_tokens": 0},
    }
    scenario = _scenario(PolicyFileModel.model_validate(raw), "interaction.yaml", raw)
    recorded = table(_trace(), BOOK)
    result = simulate_scenario(make_template(recorded, BOOK), scenario)
    before = cost(recorded)
    assert before == pytest.approx((1100 + 6100 + 6200) * IN + 300 * OUT)
    truncation, compression, joint = (row["saved_usd"] for row in result.rows)
    # truncation alone: the result keeps 1,000 of 5,000 tokens in steps 2 and 3
    assert truncation == pytest.approx(2 * 4000 * IN)
    # compression alone: step 2 (6,100 > 5,000) summarizes the result into 200 tokens, keeps the last turn;
    # steps 2 and 3 each send 4,800 tokens fewer; the summarizer reads 5,000 and writes 200 on gpt-4.1
    assert compression == pytest.approx(2 * 4800 * IN - (5000 * IN + 200 * OUT))
    # jointly: after truncation step 2 sends 2,100 tokens, under the budget: nothing is left to compress
    assert joint == pytest.approx(truncation)
    assert joint != pytest.approx(truncation + compression)
    assert [row["calls_added"] for row in result.rows] == [{}, {"compression": 1}, {}]
