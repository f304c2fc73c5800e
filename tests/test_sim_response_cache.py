"""The response-cache policy: exact and semantic hits exactly where expected, TTL, scopes, LRU, false hits."""

from __future__ import annotations

import collections
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pytest
from pydantic import ValidationError
from simkit import call, cost, replay

from costscope.simulate import response_cache, similarity
from costscope.simulate.engine import make_template, run_policies, sweep
from costscope.simulate.policy_file import load_policy_file
from costscope.simulate.replay import Replay

CALL_USD = 1000 * 2.0 / 1e6 + 100 * 8.0 / 1e6
"""A default simkit call: gpt-4.1, 1000 input tokens at $2/MTok + 100 output tokens at $8/MTok = $0.0028."""
PASSWORD = "How do I reset my password?"
PASSWORD_TYPO = "how do i reset my  password"  # no "?", other case and spacing: similar, not identical
PASSWORD_CASE = "  HOW do I reset   my password?"  # identical once lowercased and spaces collapsed
REFUND = "What is the refund policy for annual plans?"
ANSWER = "Open Settings, then Security, and choose Reset password; the link is valid for one hour."
OTHER_ANSWER = "Annual plans are refunded pro rata within the first 30 days; after that there is no refund."


def config(**settings: Any) -> response_cache.ResponseCacheConfig:
    return response_cache.ResponseCacheConfig.model_validate(settings)


def cached(rows: list[dict[str, Any]], **settings: Any) -> Replay:
    r = replay(rows)
    response_cache.apply(config(**settings), r)
    return r


def dropped(r: Replay) -> list[bool]:
    return [by == response_cache.NAME for by in r.calls["dropped_by"]]


def details(r: Replay) -> dict[str, Any]:
    return r.outcomes[response_cache.NAME].details


def reference_cosine(texts: list[str], a: int, b: int, idf: bool = True) -> float:
    """The exact cosine of character 3-5-gram TF-IDF vectors (no hashing), IDF over the distinct `texts`."""
    normal = list(dict.fromkeys(similarity.normalize(t) for t in texts))
    grams = [collections.Counter(t[i : i + n] for n in (3, 4, 5) for i in range(len(t) - n + 1)) for t in normal]
    df = collections.Counter(g for c in grams for g in c)

    def vector(k: int) -> dict[str, float]:
        text = similarity.normalize(texts[k])
        counts = grams[normal.index(text)]
        v = {g: c * ((math.log((1 + len(normal)) / (1 + df[g])) + 1) if idf else 1.0) for g, c in counts.items()}
        norm = math.sqrt(sum(x * x for x in v.values()))
        return {g: x / norm for g, x in v.items()}

    va, vb = vector(a), vector(b)
    return sum(x * vb.get(g, 0.0) for g, x in va.items())


# --- exact ---------------------------------------------------------------------------------------------------


def test_exact_hits_exactly_at_repeated_request_hashes() -> None:
    rows = [call(request_hash=h, start=t) for h, t in (("a", 0), ("b", 10), ("a", 20), ("a", 30), ("c", 40))]
    r = cached(rows)
    # a@0 stores, b@10 stores, a@20 and a@30 are served by a@0, c@40 stores
    assert dropped(r) == [False, False, True, True, False]
    d = details(r)
    assert (d["lookups"], d["hits"], d["hits_same_request"], d["calls_not_made"]) == (5, 2, 2, 2)
    assert r.outcomes[response_cache.NAME].risks["hit_rate"] == pytest.approx(2 / 5)
    assert cost(r.price()) == pytest.approx(3 * CALL_USD)


def test_an_entry_expires_ttl_after_it_was_stored_and_hits_do_not_extend_it() -> None:
    rows = [call(request_hash="a", start=t) for t in (0, 10, 15, 16, 30, 31)]
    r = cached(rows, ttl="15s")
    # a@0 stores (valid to 15 inclusive): @10 hit, @15 hit (boundary), @16 miss and stores (the hits at 10 and 15
    # did not extend a@0); @30 hit (14 s after 16), @31 hit (exactly 15 s after 16)
    assert dropped(r) == [False, True, True, False, True, True]
    assert details(r)["ttl_seconds"] == 15.0


@pytest.mark.parametrize(("ttl", "seconds"), [("90s", 90), ("30m", 1800), ("1h", 3600), ("1.5d", 129600), (45, 45)])
def test_ttl_units(ttl: str | int, seconds: float) -> None:
    assert config(ttl=ttl).ttl_seconds == seconds
    assert config(ttl=None).ttl_seconds == math.inf


def test_without_ttl_entries_never_expire() -> None:
    rows = [call(request_hash="a", start=t) for t in (0, 86400 * 365)]
    assert dropped(cached(rows, ttl=None)) == [False, True]
    assert dropped(cached(rows)) == [False, False]  # the default 24 h


def test_scopes_separate_tenants_and_traces() -> None:
    rows = [
        call(request_hash="a", trace_id="t1", tenant="acme", start=0),
        call(request_hash="a", trace_id="t2", tenant="acme", start=10),  # same tenant, other trace
        call(request_hash="a", trace_id="t3", tenant="globex", start=20),  # other tenant
        call(request_hash="a", trace_id="t3", tenant="globex", start=30),  # same trace as the last
    ]
    assert dropped(cached(rows, scope="trace")) == [False, False, False, True]
    assert dropped(cached(rows, scope="tenant")) == [False, True, False, True]
    assert dropped(cached(rows, scope="global")) == [False, True, True, True]


def test_calls_without_a_tenant_share_one_tenant_cache() -> None:
    rows = [call(request_hash="a", trace_id=t, start=s) for t, s in (("t1", 0), ("t2", 1))]
    assert dropped(cached(rows)) == [False, True]


def test_entries_serve_only_their_model_unless_shared() -> None:
    rows = [call(request_hash="a", start=0), call(request_hash="a", model="gpt-4.1-mini", start=10)]
    assert dropped(cached(rows)) == [False, False]
    assert dropped(cached(rows, share_across_models=True)) == [False, True]


def test_max_entries_evicts_the_least_recently_used_entry() -> None:
    keys = ["a", "b", "a", "c", "b", "a", "c"]
    rows = [call(request_hash=k, start=t) for t, k in enumerate(keys)]
    # cap 2: a b | a hits (a is now most recent) | c evicts b | b misses, evicts a | a misses, evicts c | c misses
    assert dropped(cached(rows, max_entries=2)) == [False, False, True, False, False, False, False]
    # unbounded: a@2, b@4, a@5, c@6 all hit
    assert dropped(cached(rows)) == [False, False, True, False, True, True, True]


def test_calls_without_request_hash_or_start_are_counted_not_looked_up() -> None:
    rows = [
        call(request_hash="a", start=0),
        call(start=5),
        call(request_hash="a", start=None),
        call(request_hash="a", start=9),
    ]
    r = cached(rows)
    assert dropped(r) == [False, False, False, True]
    outcome = r.outcomes[response_cache.NAME]
    assert details(r)["lookups"] == 2
    assert any(n.startswith("1 of 4 calls have no request hash") for n in outcome.not_evaluated)
    assert any(n.startswith("1 calls have no start time") for n in outcome.not_evaluated)


def test_a_cache_that_never_hits_saves_exactly_nothing() -> None:
    rows = [call(request_hash=k, prompt_text=p, start=t) for t, (k, p) in enumerate([("a", PASSWORD), ("b", REFUND)])]
    for settings in ({}, {"mode": "semantic"}):
        r = cached(rows, **settings)
        assert not any(dropped(r))
        assert cost(r.price()) == cost(r.base)
        assert r.outcomes[response_cache.NAME].risks == {"hit_rate": 0.0, "false_hits": 0, "false_hit_rate": 0.0}


def test_calls_added_or_dropped_by_earlier_policies_neither_store_nor_hit() -> None:
    rows = [call(request_hash="a", start=0), call(request_hash="a", start=10), call(request_hash="b", start=20)]
    r = replay(rows)
    r.drop(np.array([True, False, False]), "budget")  # the first call is never made: it stores nothing
    r.add_calls(pd.DataFrame({"origin": [2], "start": [r.calls["start"].iloc[2] + 1e6]}), "routing")  # b again
    response_cache.apply(config(), r)
    assert list(r.calls["dropped_by"]) == ["budget", "", "", ""]
    assert details(r)["lookups"] == 2


# --- semantic ------------------------------------------------------------------------------------------------


def test_semantic_hits_above_the_threshold_and_not_below() -> None:
    prompts = [PASSWORD, REFUND, PASSWORD_TYPO]
    answers = [ANSWER, OTHER_ANSWER, OTHER_ANSWER]  # the typo's answer differs: its hit is a false hit
    rows = [
        call(prompt_text=p, output_text=a, start=i, line=i + 1)
        for i, (p, a) in enumerate(zip(prompts, answers, strict=True))
    ]
    typo = reference_cosine(prompts, 2, 0)  # about 0.91 (IDF over these 3 distinct prompts)
    unrelated = reference_cosine(prompts, 1, 0)  # about 0.01
    assert 0.88 < typo < 0.94 and unrelated < 0.1
    r = cached(rows, mode="semantic", threshold=0.85)
    assert dropped(r) == [False, False, True]
    d = details(r)
    assert (d["hits_similar_text"], d["hit_rate"]) == (1, pytest.approx(1 / 3))
    # the reported similarity is the exact TF-IDF cosine, moved less than 0.005 by the 512-component sketch
    assert d["false_hit_examples"][0]["prompt_similarity"] == pytest.approx(typo, abs=0.005)
    assert dropped(cached(rows, mode="semantic", threshold=0.95)) == [False, False, False]
    assert dropped(cached(rows, mode="semantic", threshold=0.5)) == [False, False, True]


def test_identical_prompts_hit_at_similarity_one_and_count_as_same_text() -> None:
    rows = [
        call(prompt_text=PASSWORD, request_hash="h1", start=0),
        call(prompt_text=PASSWORD_CASE, request_hash="h2", start=1),  # same text once normalized
        call(prompt_text=PASSWORD, request_hash="h1", start=2),  # the same request
    ]
    r = cached(rows, mode="semantic", threshold=1.0)
    assert dropped(r) == [False, True, True]
    d = details(r)
    assert (d["hits_same_request"], d["hits_same_text"], d["hits_similar_text"]) == (1, 1, 0)


def test_exact_hits_are_semantic_hits_too() -> None:
    rows = [call(request_hash=k, prompt_text=p, start=t) for t, (k, p) in enumerate([("a", REFUND), ("a", REFUND)])]
    assert dropped(cached(rows)) == dropped(cached(rows, mode="semantic")) == [False, True]


def test_semantic_hit_with_a_different_recorded_answer_is_a_false_hit() -> None:
    rows = [
        call(prompt_text=PASSWORD, output_text=ANSWER, tenant="acme", start=0, line=1),
        call(prompt_text=PASSWORD_TYPO, output_text=OTHER_ANSWER, tenant="acme", start=1, line=2),  # false hit
        call(prompt_text=PASSWORD, output_text=ANSWER, tenant="globex", start=2),
        call(prompt_text=PASSWORD, output_text=ANSWER + " ", tenant="globex", start=3),  # same answer: a good hit
        call(prompt_text=PASSWORD, output_text=None, tenant="globex", start=4),  # no answer: unknown
    ]
    assert reference_cosine([ANSWER, OTHER_ANSWER], 0, 1, idf=False) < 0.3
    r = cached(rows, mode="semantic", threshold=0.85)
    assert dropped(r) == [False, True, False, True, True]
    outcome = r.outcomes[response_cache.NAME]
    d = outcome.details
    assert (d["hits"], d["hits_compared"], d["hits_response_differs"], d["false_hits"]) == (3, 2, 1, 1)
    assert outcome.risks["false_hit_rate"] == 0.5  # 1 false of 2 hits with both answers
    assert any(n.startswith("1 of 3 hits could not be checked") for n in outcome.not_evaluated)
    [example] = d["false_hit_examples"]
    assert (example["lookup"], example["served_from"]) == ("test.jsonl:2", "test.jsonl:1")
    assert 0.85 <= example["prompt_similarity"] < 1 and example["response_similarity"] < 0.3


def test_exact_hit_with_a_different_recorded_answer_is_a_false_hit_too() -> None:
    rows = [call(request_hash="a", output_text=o, start=t) for t, o in enumerate([ANSWER, OTHER_ANSWER])]
    r = cached(rows)
    assert r.outcomes[response_cache.NAME].risks == {"hit_rate": 0.5, "false_hits": 1, "false_hit_rate": 1.0}


def test_false_hit_below_sets_what_differs_materially() -> None:
    rows = [call(request_hash="a", output_text=o, start=t) for t, o in enumerate([ANSWER, ANSWER[:60]])]
    shorter = reference_cosine([ANSWER, ANSWER[:60]], 0, 1, idf=False)  # about 0.8: the answer cut short
    assert 0.7 < shorter < 0.9
    assert details(cached(rows, false_hit_below=shorter - 0.05))["false_hits"] == 0
    assert details(cached(rows, false_hit_below=shorter + 0.05))["false_hits"] == 1


def test_semantic_replay_is_the_same_whatever_the_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    topics = ["the late delivery of my parcel", "a refund for the broken blender", "resetting the router password"]
    # topic 0 every other call, the others in turn: with 2 entries topic 0 stays cached and the others churn
    prompts = [f"Please help with {topics[0 if i % 2 == 0 else (i // 2) % 2 + 1]}, order {1000 + i}" for i in range(40)]
    rows = [
        call(prompt_text=p, tenant=tenant, start=i * 600 + shift)
        for tenant, shift in (("a", 0), ("b", 300))
        for i, p in enumerate(prompts)
    ]
    settings: dict[str, Any] = {"mode": "semantic", "threshold": 0.8, "ttl": "2h"}
    whole = dropped(cached(rows, **settings))
    bounded = dropped(cached(rows, **settings, max_entries=2))
    assert 0 < sum(bounded) < sum(whole) < len(rows)
    for block in (1, 2, 7):
        monkeypatch.setattr(response_cache, "BLOCK", block)
        assert dropped(cached(rows, **settings)) == whole
        assert dropped(cached(rows, **settings, max_entries=2)) == bounded


def test_determinism() -> None:
    prompts = [PASSWORD, REFUND, PASSWORD_TYPO, PASSWORD_CASE, REFUND.lower()]
    rows = [call(prompt_text=p, output_text=ANSWER if i % 2 else OTHER_ANSWER, start=i) for i, p in enumerate(prompts)]
    first, second = cached(rows, mode="semantic"), cached(rows, mode="semantic")
    assert dropped(first) == dropped(second)
    assert first.outcomes[response_cache.NAME] == second.outcomes[response_cache.NAME]


# --- task mode -----------------------------------------------------------------------------------------------


def test_task_mode_serves_whole_traces_with_a_repeated_task() -> None:
    def trace(name: str, start: float, task: str, answer: str) -> list[dict[str, Any]]:
        return [
            call(trace_id=name, prompt_text=task, start=start),
            call(trace_id=name, start=start + 5),  # an agent step without user text
            call(trace_id=name, output_text=answer, start=start + 9),  # the final answer
        ]

    rows = (
        trace("t1", 0, PASSWORD, ANSWER)
        + trace("t2", 100, PASSWORD_CASE, OTHER_ANSWER)
        + trace("t3", 200, REFUND, ANSWER)
    )
    r = cached(rows, mode="exact", match_on="task")
    # t2's task is t1's once normalized: none of t2's three calls is made; its final answer differed
    assert dropped(r) == [False] * 3 + [True] * 3 + [False] * 3
    d = details(r)
    assert (d["lookups"], d["hits"], d["calls_not_made"], d["false_hits"]) == (3, 1, 3, 1)
    assert d["false_hit_examples"][0]["lookup"] == "trace t2"
    assert cost(r.price()) == pytest.approx(6 * CALL_USD)


def test_task_mode_needs_a_shared_scope() -> None:
    with pytest.raises(ValidationError, match="match_on: task"):
        config(match_on="task", scope="trace")


# --- settings, sample file, engine ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"ttl": "1 week"},
        {"ttl": 0},
        {"ttl": 1.5},
        {"threshold": 0.3},
        {"threshold": 1.2},
        {"mode": "fuzzy"},
        {"size": 1},
    ],
)
def test_invalid_settings_are_rejected(settings: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        config(**settings)


def test_sample_policy_file_loads_and_runs_on_the_samples() -> None:
    from costscope import api

    scenario = load_policy_file(Path(__file__).parent.parent / "sample_traces" / "policies" / "response-cache.yaml")
    settings = dict(scenario.policies)[response_cache.NAME]
    assert (settings.mode, settings.threshold, settings.scope) == ("semantic", 0.9, "tenant")
    steps = api.load_priced_steps([str(Path(__file__).parent.parent / "sample_traces")])
    calls = steps.table.filter(pc.equal(steps.table["kind"], "llm"))
    template = make_template(calls, steps.book)
    run = run_policies(template, scenario, "joint")
    outcome = run.outcomes[response_cache.NAME]
    assert outcome.details["hits"] > 0 and 0 < outcome.risks["hit_rate"] < 1
    assert cost(run.table) < cost(calls)
    points = sweep(template, scenario, "threshold", [0.85, 0.9, 0.95])
    rates = [p["risks"]["response_cache.hit_rate"] for p in points]  # hits / the same lookups
    assert rates == sorted(rates, reverse=True) and rates[0] > rates[-1]


# --- the similarity backend ----------------------------------------------------------------------------------


def test_embedding_is_a_fixed_function_of_the_texts() -> None:
    texts = [similarity.normalize(t) for t in (PASSWORD, PASSWORD_TYPO, REFUND, "", "ok")]
    vectors = similarity.embed(texts)
    assert vectors.shape == (5, similarity.DIMENSIONS) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors[[0, 1, 2, 4]], axis=1), 1.0, atol=1e-6)
    assert not vectors[3].any()  # no n-gram: similarity 0 to everything
    # the same hash on every machine: a regression guard for the n-gram hash and the folding
    assert float(vectors[0] @ vectors[1]) == pytest.approx(0.9119, abs=1e-4)
    assert float(vectors[0] @ vectors[1]) == pytest.approx(reference_cosine(texts, 0, 1), abs=0.005)


@pytest.mark.parametrize("settings", [{}, {"mode": "semantic"}, {"match_on": "task", "mode": "semantic"}])
def test_nothing_to_look_up_changes_nothing_and_says_why(settings: dict[str, Any]) -> None:
    rows = [call(start=0), call(trace_id="t2", start=5)]  # no request hash, no user text
    r = cached(rows, **settings)
    outcome = r.outcomes[response_cache.NAME]
    assert not any(dropped(r)) and outcome.details["lookups"] == 0
    assert outcome.risks == {"hit_rate": 0.0, "false_hits": 0, "false_hit_rate": 0.0}
    assert outcome.not_evaluated and outcome.not_evaluated[0].startswith("2 of 2 ")
