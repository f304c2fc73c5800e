"""`suggest`: findings -> one policy file that `simulate` loads, and that saves money on the sample traces."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from simkit import call, segment, table

from costscope import api
from costscope.findings import (
    Finding,
    FindOptions,
    context_bloat,
    find_in_table,
    oversized_tool_results,
    redundant_calls,
    runaway_traces,
    uncached_prefix,
)
from costscope.pricing import PriceBook
from costscope.simulate.policy_file import load_policy_file
from costscope.suggest import Suggestion, build_suggestion, suggest_policy

BOOK = PriceBook.from_file(None)
SAMPLES = str(Path(__file__).resolve().parent.parent / "sample_traces")


def _rows() -> list[dict[str, Any]]:
    """Six short gpt-4.1 routing calls (frontier overuse) and one trace re-sending a 3,000-token tool result."""
    rows = [call(trace_id=f"r{i}", step=1, agent="router", operation="route", output_tokens=50) for i in range(6)]
    first = [segment("system", "S", 100), segment("tool_result", "R", 3000, "read")]
    second = [*first, segment("history", "A", 20)]
    rows += [
        call(trace_id="t", step=1, input_tokens=3100, segments=first, start=0),
        call(trace_id="t", step=2, input_tokens=3120, segments=second, start=10),
    ]
    return [{**row, "line": i} for i, row in enumerate(rows, start=1)]


def _findings() -> list[Finding]:
    return find_in_table(table(_rows(), BOOK), BOOK, FindOptions(min_share=0.0))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_suggested_file_loads_with_one_block_per_finding_in_stack_order(tmp_path: Path) -> None:
    findings = _findings()
    assert {f.kind for f in findings} == {"frontier_overuse", "oversized_tool_results"}
    text = suggest_policy(findings, calls=8, spend=0.1)
    scenario = load_policy_file(_write(tmp_path, text))
    assert scenario.enabled == ["truncation", "routing"]  # the simulator's order, not the dollars' order
    assert scenario.name == "suggested"
    assert dict(scenario.policies)["truncation"].max_tokens == 1000
    assert text.startswith("# Suggested by costscope from 2 findings over 8 LLM calls costing $0.1000.\n")
    # each block is preceded by the comment naming its finding
    assert re.search(r"\n# Oversized tool results re-sent in the context .*\n(#   .*\n)+truncation:\n", text)
    assert "Left out" not in text


def test_suggestion_is_deterministic() -> None:
    assert suggest_policy(_findings()) == suggest_policy(_findings())


def test_findings_without_a_policy_are_listed_not_enabled(tmp_path: Path) -> None:
    note = Finding("usage_mismatch", "Logged usage disagrees with the recount", 0.5, "b", (), "3 calls.", None)
    text = suggest_policy([note])
    assert load_policy_file(_write(tmp_path, text)).enabled == []
    assert "# Not fixed by a policy: look at the source of these.\n# Logged usage disagrees" in text


def test_a_snippet_the_schema_rejects_is_left_out_with_the_reason(tmp_path: Path) -> None:
    bad = Finding("oversized_tool_results", "Oversized", 1.0, "b", (), "d.", {"truncation": {"max_tokns": 5}})
    text = suggest_policy([bad])
    assert load_policy_file(_write(tmp_path, text)).enabled == []
    assert "Left out: its `truncation` settings do not validate" in text
    assert "max_tokns" in text


def test_suggest_then_simulate_saves_money_on_the_samples(tmp_path: Path) -> None:
    steps = api.load_priced_steps([SAMPLES])
    suggestion = build_suggestion(steps)
    assert isinstance(suggestion, Suggestion)
    assert "Left out" not in suggestion.text  # every snippet matches its policy's settings
    assert {"truncation", "compression", "routing"} <= set(suggestion.policies)
    path = _write(tmp_path, suggestion.text)
    assert yaml.safe_load(suggestion.text)["version"] == 1
    report, _ = api.build_simulation(steps, [str(path)])
    runs = report.to_dict()["scenarios"][0]["runs"]
    joint = runs[-1]
    assert joint["technique"] == "joint"
    assert joint["saved_usd"] > 0.5 * suggestion.usd_at_stake > 0
    assert all(run["saved_usd"] > 0 for run in runs)


@pytest.mark.parametrize("kind", ["frontier_overuse", "oversized_tool_results", "context_bloat", "redundant_calls"])
def test_each_sample_finding_has_its_policy(kind: str) -> None:
    steps = api.load_priced_steps([SAMPLES])
    found = {f.kind: f for f in build_suggestion(steps).findings}
    assert found[kind].policy is not None and found[kind].usd_at_stake > 0


def test_every_detectors_snippet_matches_its_policy_schema(tmp_path: Path) -> None:
    snippets = [
        context_bloat.policy(context_bloat.Params(), "gpt-5-mini"),
        redundant_calls.policy(redundant_calls.Params()),
        uncached_prefix.policy(uncached_prefix.Params(), ["anthropic", "google", "openai"]),
        oversized_tool_results.policy(oversized_tool_results.Params()),
        runaway_traces.policy(0.13),
        *[f.policy for f in _findings() if f.kind == "frontier_overuse"],
    ]
    findings = [Finding(next(iter(p)), "t", 1.0, "b", (), "d.", p) for p in snippets if p is not None]
    text = suggest_policy(findings)
    assert "Left out" not in text
    enabled = load_policy_file(_write(tmp_path, text)).enabled
    assert enabled == ["truncation", "compression", "routing", "prompt_cache", "response_cache", "budget"]
