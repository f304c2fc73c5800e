"""Invariants of the replay over generated traces: a policy file that changes nothing saves exactly nothing,
and no projection has a negative cost."""

from __future__ import annotations

from typing import Any

import pyarrow.compute as pc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simkit import call, segment, table

from costscope.pricing import PriceBook
from costscope.simulate.engine import make_template, simulate_scenario
from costscope.simulate.policy_file import Scenario

BOOK = PriceBook.from_file(None)
MODELS = [
    ("openai", "gpt-4.1"),
    ("openai", "gpt-4.1-mini"),
    ("anthropic", "claude-sonnet-4-5"),
    ("google", "gemini-2.5-flash"),
    ("selfhosted", "not-a-known-model"),
]


@st.composite
def traces(draw: st.DrawFn) -> list[dict[str, Any]]:
    """1-4 traces of 1-6 calls; later calls re-send the earlier calls' segments (a growing context)."""
    rows: list[dict[str, Any]] = []
    for t in range(draw(st.integers(1, 4))):
        provider, model = draw(st.sampled_from(MODELS))
        context: list[dict[str, Any]] = [segment("system", f"sys{t % 2}", draw(st.integers(0, 3000)))]
        clock = draw(st.integers(0, 3600))
        for i in range(draw(st.integers(1, 6))):
            new = segment(
                draw(st.sampled_from(["user", "tool_result"])), f"t{t}c{i}", draw(st.integers(1, 5000)), tool="grep"
            )
            context = [*context, new]
            recount = sum(s["tokens"] for s in context)
            inp = max(1, round(recount * draw(st.floats(0.8, 1.3))))
            read = draw(st.integers(0, inp))
            write = draw(st.integers(0, inp - read))
            out = draw(st.integers(0, 4000))
            clock += draw(st.integers(1, 600))
            rows.append(
                call(
                    trace_id=f"t{t}",
                    tenant=draw(st.sampled_from(["a", "b", None])),
                    agent=draw(st.sampled_from(["planner", "coder"])),
                    provider=provider,
                    model=model,
                    input_tokens=inp,
                    cache_read_tokens=read,
                    cache_write_tokens=write,
                    cache_write_1h_tokens=draw(st.integers(0, write)),
                    output_tokens=out,
                    reasoning_tokens=draw(st.integers(0, out)),
                    start=clock,
                    end=clock + draw(st.integers(1, 60)),
                    segments=[dict(s) for s in context] if draw(st.booleans()) else None,
                    request_hash=f"h{draw(st.integers(0, 3))}",
                )
            )
    return rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traces())
def test_a_policy_file_enabling_nothing_saves_exactly_nothing(rows: list[dict[str, Any]]) -> None:
    recorded = table(rows, BOOK)
    result = simulate_scenario(make_template(recorded, BOOK), Scenario("none", None, (), "none.yaml", {}))
    projected = result.joint.table
    assert projected.num_rows == recorded.num_rows
    for name in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "cost_total"):
        assert projected[name].to_pylist() == recorded[name].to_pylist()
    assert projected["price_ref"].to_pylist() == recorded["price_ref"].to_pylist()
    assert pc.min(projected["cost_total"]).as_py() is None or pc.min(projected["cost_total"]).as_py() >= 0
