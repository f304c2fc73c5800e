"""The prompt_cache policy on hand-made traces: every expected figure is computed in the comments.

Calls have no framing segment and report as input the sum of their segments, so the content scale is 1 and a
prefix's billed tokens are the plain sum of its segments' tokens.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pytest
from pydantic import ValidationError
from simkit import call, cost, replay, segment

from costscope import api
from costscope.simulate import prompt_cache, registry
from costscope.simulate.engine import make_template, run_policies
from costscope.simulate.policy_file import Scenario, load_policy_file
from costscope.simulate.replay import Replay

SONNET = "claude-sonnet-4-5-20250929"  # minimum 1,024; $3 in, $0.30 read, $3.75 5m write, $6 1h write, $15 out
HAIKU = "claude-haiku-4-5-20251001"  # minimum 4,096
FLASH = "gemini-2.5-flash"  # implicit minimum 2,048; explicit storage $1 per MTok-hour


def claude(start: float, segs: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """An Anthropic call whose reported input is the sum of its segments."""
    fields.setdefault("model", SONNET)
    return call(provider="anthropic", start=start, segments=segs, input_tokens=sum(s["tokens"] for s in segs), **fields)


def gpt(start: float, segs: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return call(start=start, segments=segs, input_tokens=sum(s["tokens"] for s in segs), **fields)


def config(**settings: Any) -> prompt_cache.PromptCacheConfig:
    return prompt_cache.PromptCacheConfig.model_validate(settings)


def run(rows: list[dict[str, Any]], **settings: Any) -> Replay:
    r = replay(rows)
    prompt_cache.apply(config(**settings), r)
    return r


def column(r: Replay, name: str) -> list[float]:
    return [round(float(v), 6) for v in r.calls[name]]


def system_only(ttl: str = "5m") -> dict[str, Any]:
    return {"anthropic": {"breakpoints": ["system"], "ttl": ttl}}


# ------------------------------------------------------------------ Anthropic


def test_a_prefix_below_the_minimum_never_caches() -> None:
    # Sonnet 4.5 caches from 1,024 tokens: a 1,000-token system prompt is never written nor read;
    # at 1,100 tokens the first call writes 1,100 and the second, 10 s later, reads them.
    small = [claude(t, [segment("system", "S", 1000), segment("user", f"U{t}", 20)]) for t in (0, 10)]
    r = run(small, **system_only())
    assert column(r, "cache_read_tokens") == [0, 0]
    assert column(r, "cache_write_tokens") == [0, 0]
    big = [claude(t, [segment("system", "S", 1100), segment("user", f"U{t}", 20)]) for t in (0, 10)]
    r = run(big, **system_only())
    assert column(r, "cache_write_tokens") == [1100, 0]
    assert column(r, "cache_read_tokens") == [0, 1100]


def test_the_minimum_is_per_model() -> None:
    # Haiku 4.5 needs 4,096 tokens: the same 3,000-token prefix caches on Sonnet 4.5 but not on Haiku.
    rows = [claude(t, [segment("system", "S", 3000), segment("user", f"U{t}", 20)], model=HAIKU) for t in (0, 10)]
    r = run(rows, **system_only())
    assert column(r, "cache_read_tokens") == [0, 0]
    assert column(r, "cache_write_tokens") == [0, 0]


def test_an_entry_expires_after_its_ttl_and_is_refreshed_by_a_hit() -> None:
    # 5-minute TTL. t=0 writes (lives until 300 s); t=240 reads and refreshes it to 540; t=480 reads (it would
    # have expired at 300 without the refresh) and refreshes to 780; t=1000 is past 780: written again.
    rows = [claude(t, [segment("system", "S", 2000), segment("user", f"U{t}", 10)]) for t in (0, 240, 480, 1000)]
    r = run(rows, **system_only())
    assert column(r, "cache_read_tokens") == [0, 2000, 2000, 0]
    assert column(r, "cache_write_tokens") == [2000, 0, 0, 2000]
    # the same calls with a 1-hour TTL: only the first writes
    r = run(rows, **system_only("1h"))
    assert column(r, "cache_read_tokens") == [0, 2000, 2000, 2000]
    assert column(r, "cache_write_1h_tokens") == [2000, 0, 0, 0]


def test_parallel_calls_do_not_see_each_others_writes() -> None:
    # A (0-30 s) and B (1-31 s) run together: B cannot read what A is writing, both pay the write.
    # C starts at 40 s, after both ended: it reads.
    segs = [segment("system", "S", 2000), segment("user", "U", 10)]
    rows = [
        claude(0, segs, end=30, trace_id="a"),
        claude(1, segs, end=31, trace_id="b"),
        claude(40, segs, end=50, trace_id="c"),
    ]
    r = run(rows, **system_only())
    assert column(r, "cache_write_tokens") == [2000, 2000, 0]
    assert column(r, "cache_read_tokens") == [0, 0, 2000]


def test_5m_and_1h_writes_are_priced_differently() -> None:
    # A 2,000-token write on Sonnet 4.5: 5m at $3.75/MTok = $0.0075, 1h at $6/MTok = $0.012.
    rows = [claude(0, [segment("system", "S", 2000)])]
    five, hour = run(rows, **system_only("5m")), run(rows, **system_only("1h"))
    assert column(five, "cache_write_1h_tokens") == [0]
    assert column(hour, "cache_write_1h_tokens") == [2000]
    assert five.price()["cost_cache_write"].to_pylist() == pytest.approx([0.0075])
    assert hour.price()["cost_cache_write"].to_pylist() == pytest.approx([0.012])


def test_recorded_ttl_follows_each_traces_recorded_writes() -> None:
    # Trace h recorded a 1-hour write, trace f did not: at 400 s (past 5 minutes) only h's entry is alive.
    def rows(trace: str, wrote_1h: int) -> list[dict[str, Any]]:
        segs = [segment("system", f"S{trace}", 2000), segment("user", "U", 10)]
        first = claude(0, segs, trace_id=trace, cache_write_tokens=2000, cache_write_1h_tokens=wrote_1h)
        return [first, claude(400, segs, trace_id=trace)]

    r = run(rows("h", 2000) + rows("f", 0), **system_only("recorded"))
    assert column(r, "cache_read_tokens") == [0, 2000, 0, 0]
    assert column(r, "cache_write_1h_tokens") == [2000, 0, 0, 0]


def test_the_agent_loop_reads_the_previous_call_through_the_lookback() -> None:
    # Breakpoints on the system prompt and the last message. c1 writes tools+system+user = 2,100 (entries at
    # 2,000 and 2,100). c2 = c1 + A1 (50) + R1 (2,000): the last breakpoint (4,150) finds c1's entry two blocks
    # back: read 2,100, write 4,150 - 2,100 = 2,050. c3 adds A2 (50) + R2 (300): read 4,150, write 350.
    r = run(agent_loop(), anthropic={"breakpoints": ["system", "last_message"], "ttl": "5m"})
    assert column(r, "cache_read_tokens") == [0, 2100, 4150]
    assert column(r, "cache_write_tokens") == [2100, 2050, 350]


def test_the_lookback_stops_20_blocks_before_a_breakpoint() -> None:
    # Only a last_message breakpoint. c1 = system (2,000) + user: entry at its 2nd block. c2 appends n blocks of
    # 10 tokens: its breakpoint sits n blocks after c1's entry; it is found for n = 20, not for n = 21.
    def rows(n: int) -> list[dict[str, Any]]:
        first = [segment("system", "S", 2000), segment("user", "U", 10)]
        more = [segment("history", f"H{i}", 10) for i in range(n)]
        return [claude(0, first), claude(10, first + more)]

    last = {"anthropic": {"breakpoints": ["last_message"], "ttl": "5m"}}
    assert column(run(rows(20), **last), "cache_read_tokens") == [0, 2010]
    assert column(run(rows(21), **last), "cache_read_tokens") == [0, 0]


def test_a_routed_call_finds_a_cold_cache() -> None:
    # c2 moved to Opus 4.1 (an earlier policy routed it): c1's Sonnet entry is not readable there.
    rows = [claude(t, [segment("system", "S", 2000), segment("user", f"U{t}", 10)]) for t in (0, 10)]
    r = replay(rows)
    r.calls.loc[1, "model"] = "claude-opus-4-1-20250805"
    prompt_cache.apply(config(**system_only()), r)
    assert column(r, "cache_read_tokens") == [0, 0]
    assert column(r, "cache_write_tokens") == [2000, 2000]
    changes = r.outcomes["prompt_cache"].details["prefix_changes"]
    assert (changes["calls_routed"], changes["calls_losing_cache_reads"]) == (1, 1)


# ------------------------------------------------------------------ OpenAI and Gemini


def test_openai_caches_automatically_only_from_1024_tokens() -> None:
    # c2 re-sends c1's whole prompt then 80 new tokens. c1 = 1,300 tokens: the shared 1,300 are read in
    # 128-token steps: 1,280. With c1 = 1,000 tokens the shared prefix is below 1,024: nothing read.
    def rows(system: int) -> list[dict[str, Any]]:
        first = [segment("system", "S", system), segment("user", "U1", 100)]
        return [gpt(0, first), gpt(10, [*first, segment("history", "A1", 50), segment("user", "U2", 30)])]

    assert column(run(rows(1200)), "cache_read_tokens") == [0, 1280]
    assert column(run(rows(900)), "cache_read_tokens") == [0, 0]
    assert column(run(rows(1200)), "cache_write_tokens") == [0, 0]  # gpt-4.1 writes for free


def test_openai_retention_window_and_its_24h_option() -> None:
    # 30 minutes between the calls: evicted from memory (5 idle minutes), kept with 24h retention.
    rows = [gpt(t, [segment("system", "S", 2000), segment("user", f"U{t}", 10)]) for t in (0, 1800)]
    assert column(run(rows), "cache_read_tokens") == [0, 0]
    assert column(run(rows, openai={"retention": "24h"}), "cache_read_tokens") == [0, 1920]  # 2,000 -> 1,920


def test_in_memory_retention_lasts_one_hour_at_most() -> None:
    # A prefix used every 4 minutes from 0 to 64 minutes: kept alive by use, but evicted when an hour old;
    # the call at 60 minutes writes it again, the one at 64 reads it.
    rows = [gpt(60 * m, [segment("system", "S", 2000), segment("user", f"U{m}", 10)]) for m in range(0, 65, 4)]
    reads = column(run(rows), "cache_read_tokens")
    assert reads == [0] + [1920] * 14 + [0, 1920]


def test_openai_parallel_calls_do_not_read_each_other() -> None:
    # Same 2,000-token prefix: b starts while a runs (0-20 s), c after a ended: only c reads (1,920 in steps).
    segs = [segment("system", "S", 2000), segment("user", "U", 10)]
    rows = [gpt(0, segs, end=20, trace_id="a"), gpt(5, segs, end=25, trace_id="b"), gpt(30, segs, trace_id="c")]
    assert column(run(rows), "cache_read_tokens") == [0, 0, 1920]


def test_older_openai_models_do_not_cache() -> None:
    first = [segment("system", "S", 2000), segment("user", "U", 10)]
    r = run([gpt(t, first, model="gpt-4-0613") for t in (0, 10)])
    assert column(r, "cache_read_tokens") == [0, 0]


def test_gemini_implicit_caching_has_a_per_model_minimum() -> None:
    # Gemini 2.5 Flash caches implicitly from 2,048 tokens: 2,000 never, 2,100 read in full (no 128 steps).
    def rows(system: int) -> list[dict[str, Any]]:
        segs = [segment("system", "S", system), segment("user", "U", 10)]
        return [gpt(t, segs, provider="google", model=FLASH) for t in (0, 10)]

    assert column(run(rows(2000)), "cache_read_tokens") == [0, 0]
    assert column(run(rows(2100)), "cache_read_tokens") == [0, 2110]


def test_gemini_explicit_cache_is_read_and_its_storage_reported() -> None:
    # Calls 10 minutes apart (the implicit cache, 5 minutes, has lapsed). The explicit cache of the 5,000-token
    # system prompt is created by the first call and read by the second; it is stored from 0 until 10 min + 60
    # min TTL: 5,000 tokens x 70/60 h = 5,833.33 token-hours x $1/MTok-hour = $0.00583.
    rows = [
        gpt(t, [segment("system", "S", 5000), segment("user", f"U{t}", 10)], provider="google", model=FLASH)
        for t in (0, 600)
    ]
    r = run(rows, gemini={"explicit": True})
    assert column(r, "cache_read_tokens") == [0, 5000]
    storage = r.outcomes["prompt_cache"].details["gemini_explicit"]
    assert storage["token_hours"] == pytest.approx(5000 * 70 / 60)
    assert storage["storage_usd"] == pytest.approx(5000 * 70 / 60 / 1e6)


# ------------------------------------------------------------------ settings


def test_scope_tenant_separates_the_caches_of_tenants() -> None:
    segs = [segment("system", "S", 2000), segment("user", "U", 10)]
    rows = [claude(0, segs, tenant="acme", trace_id="a"), claude(10, segs, tenant="globex", trace_id="b")]
    assert column(run(rows, **system_only()), "cache_read_tokens") == [0, 2000]
    assert column(run(rows, scope="tenant", **system_only()), "cache_read_tokens") == [0, 0]


def test_stable_system_shares_the_system_prompts_of_one_agent() -> None:
    # Two tickets whose system prompts differ (a ticket id inside): no hit; treated as stable: the second reads.
    rows = [
        claude(t, [segment("system", f"S{t}", 2000), segment("user", f"U{t}", 10)], agent="support", trace_id=f"t{t}")
        for t in (0, 10)
    ]
    assert column(run(rows, **system_only()), "cache_read_tokens") == [0, 0]
    assert column(run(rows, stable_system=True, **system_only()), "cache_read_tokens") == [0, 2000]


def test_mode_off_turns_every_cache_read_and_write_into_input() -> None:
    rows = [claude(0, [segment("system", "S", 2000)], cache_read_tokens=1500, cache_write_tokens=500)]
    r = run(rows, mode="off")
    assert column(r, "cache_read_tokens") == [0]
    assert column(r, "cache_write_tokens") == [0]
    assert column(r, "input_tokens") == [2000]


def test_calls_without_content_keep_their_recorded_cache() -> None:
    rows = [call(start=0, input_tokens=3000, cache_read_tokens=2048), claude(5, [segment("system", "S", 2000)])]
    r = run(rows, **system_only())
    assert column(r, "cache_read_tokens") == [2048, 0]
    assert any("without logged content" in s for s in r.outcomes["prompt_cache"].not_evaluated)


def test_settings_are_validated() -> None:
    with pytest.raises(ValidationError):
        config(anthropic={"breakpoints": ["system", "system"]})
    with pytest.raises(ValidationError):
        config(anthropic={"ttl": "10m"})
    with pytest.raises(ValidationError):
        config(cache="yes")


def test_the_example_policy_file_loads() -> None:
    scenario = load_policy_file("sample_traces/policies/prompt-cache.yaml")
    settings = dict(scenario.policies)["prompt_cache"]
    assert settings.anthropic.breakpoints == ["system"]
    assert settings.anthropic.agents == "recorded"


# ------------------------------------------------------------------ interactions (joint replay)


def agent_loop() -> list[dict[str, Any]]:
    tools, system, u1 = segment("tools", "T", 500), segment("system", "S", 1500), segment("user", "U1", 100)
    a1, r1 = segment("history", "A1", 50), segment("tool_result", "R1", 2000, tool="read")
    a2, r2 = segment("history", "A2", 50), segment("tool_result", "R2", 300, tool="read")
    u1h = segment("history", "U1", 100)
    return [
        claude(0, [tools, system, u1]),
        claude(10, [tools, system, u1h, a1, r1]),
        claude(20, [tools, system, u1h, a1, r1, a2, r2]),
    ]


def summarize_third_call(config: Any, replay: Replay) -> None:
    """A stand-in compression: the third call's U1, A1, R1 (2,150 tokens) become a 200-token summary."""
    seg = replay.segments()
    replay.segments().loc[(seg["call"] == 2) & seg["pos"].isin([2, 3, 4]), "kept"] = 0.0
    replay.sync_content()
    replay.calls.loc[2, "input_tokens"] += 200


def test_compression_that_breaks_a_warm_cache_loses_money_in_the_joint_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    # Cache alone (see the agent-loop test), c3: input 4,500 = read 4,150 + write 350:
    #   4,150 x $0.30 + 350 x $3.75 = $0.0025575 (+ output 100 x $15 = $0.0015).
    # Compressed c3: tools + system + summary (200) + A2 + R2 = 2,550 tokens, a new prefix after the system
    # prompt: read 2,000 (the system entry), write 550: 2,000 x $0.30 + 550 x $3.75 = $0.0026625.
    # The joint replay costs $0.000105 more than caching alone: compression loses money here.
    monkeypatch.setitem(registry.BY_NAME, "compression", SimpleNamespace(apply=summarize_third_call))
    cache = ("prompt_cache", config(anthropic={"breakpoints": ["system", "last_message"], "ttl": "5m"}))
    template = replay(agent_loop())
    alone = run_policies(template, Scenario("s", None, (cache,), "s.yaml", {}), "prompt_cache")
    joint = run_policies(template, Scenario("s", None, (("compression", None), cache), "s.yaml", {}), "joint")
    assert joint.table["cache_read_tokens"].to_pylist() == [0, 2100, 2000]
    assert joint.table["cache_write_tokens"].to_pylist() == [2100, 2050, 550]
    assert cost(joint.table) - cost(alone.table) == pytest.approx(0.0026625 - 0.0025575)
    changes = joint.outcomes["prompt_cache"].details["prefix_changes"]
    # c3 as recorded: $0.0135 uncached, $0.0025575 cached -> caching saved $0.0109425;
    # compressed: $0.00765 uncached, $0.0026625 cached -> $0.0049875; lost $0.005955 against $0.00585 removed.
    assert changes["calls"] == 1
    assert changes["usd_cache_saving_unchanged"] == pytest.approx(0.0109425)
    assert changes["usd_cache_saving"] == pytest.approx(0.0049875)
    assert changes["usd_cache_saving_lost"] == pytest.approx(0.005955)
    assert changes["usd_saved_by_changes_uncached"] == pytest.approx(0.00585)
    assert "net loss" in changes["explanation"]


def test_a_summary_that_stays_the_same_keeps_the_cache_warm() -> None:
    # Calls 3 and 4 both replace U1, A1, R1 by the same summary: the 4th reads the 3rd's prefix.
    # c4 = c3 + A3 (50) + R3 (100). Compressed c3 = 2,550 (see above); c4 = 2,700: read 2,550, write 150.
    rows = agent_loop()
    rows.append(claude(30, [*rows[2]["segments"], segment("history", "A3", 50), segment("tool_result", "R3", 100)]))
    r = replay(rows)
    seg = r.segments()
    r.segments().loc[seg["call"].isin([2, 3]) & seg["pos"].isin([2, 3, 4]), "kept"] = 0.0
    r.sync_content()
    r.calls.loc[[2, 3], "input_tokens"] += 200
    prompt_cache.apply(config(anthropic={"breakpoints": ["system", "last_message"], "ttl": "5m"}), r)
    assert column(r, "cache_read_tokens") == [0, 2100, 2000, 2550]
    assert column(r, "cache_write_tokens") == [2100, 2050, 550, 150]


def test_truncated_content_is_new_content() -> None:
    # An earlier policy cuts R1 to 500 tokens in c3 only: c3's prefix differs from c2's after U1 + A1, so the
    # lookback finds c1's entry (2,100) but not c2's: read 2,100; c3 = 500+1500+100+50+500+50+300 = 3,000,
    # write 3,000 - 2,100 = 900.
    r = replay(agent_loop())
    seg = r.segments()
    r.segments().loc[(seg["call"] == 2) & (seg["pos"] == 4), "kept"] = 500.0
    r.sync_content()
    prompt_cache.apply(config(anthropic={"breakpoints": ["system", "last_message"], "ttl": "5m"}), r)
    assert column(r, "cache_read_tokens") == [0, 2100, 2100]
    assert column(r, "cache_write_tokens") == [2100, 2050, 900]


def test_cache_never_exceeds_input_on_the_samples() -> None:
    steps = api.load_priced_steps(["sample_traces/"])
    calls = steps.table.filter(pc.equal(steps.table["kind"], "llm"))
    r = make_template(calls, steps.book).fork()
    prompt_cache.apply(config(anthropic={"breakpoints": ["tools", "system", "last_message"], "ttl": "1h"}), r)
    frame = r.calls[list(prompt_cache.CACHE_COLUMNS) + ["input_tokens"]].fillna(0.0)
    assert (frame["cache_read_tokens"] >= 0).all() and (frame["cache_write_tokens"] >= 0).all()
    assert (frame["cache_read_tokens"] + frame["cache_write_tokens"] <= frame["input_tokens"] + 1e-6).all()
    assert (frame["cache_write_1h_tokens"] <= frame["cache_write_tokens"] + 1e-6).all()
    assert r.outcomes["prompt_cache"].details["by_provider"]["anthropic"]["calls_reading"] > 0


def test_the_projection_is_deterministic() -> None:
    first = run(agent_loop(), anthropic={"breakpoints": ["tools", "system", "last_message"]})
    second = run(agent_loop(), anthropic={"breakpoints": ["tools", "system", "last_message"]})
    assert np.array_equal(first.calls["cache_read_tokens"], second.calls["cache_read_tokens"])
    assert first.outcomes["prompt_cache"].details == second.outcomes["prompt_cache"].details
