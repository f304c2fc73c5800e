"""`costscope baseline`: the summary agrees with `analyze`, adds up, round-trips, and is read with clear errors.

The committed CI baseline (.ci/costscope-baseline.json) must match sample_traces/; COSTSCOPE_UPDATE_GOLDEN=1
rewrites it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from goldens import UPDATE
from typer.testing import CliRunner

from costscope import baseline as baselines
from costscope.cli import app
from costscope.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
CI_BASELINE = ROOT / ".ci" / "costscope-baseline.json"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="module")
def sample() -> baselines.Baseline:
    return baselines.create(["sample_traces/"])[0]


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "80", "NO_COLOR": "1", "GITHUB_STEP_SUMMARY": None})
    return result.exit_code, result.stdout, result.stderr


def test_agrees_with_analyze(sample: baselines.Baseline) -> None:
    code, out, _ = invoke("analyze", "sample_traces/", "--format", "json", "--by", "agent")
    assert code == 0
    report = json.loads(out)
    totals = report["totals"]
    assert sample.totals.calls == totals["calls"] and sample.totals.priced_calls == totals["priced_calls"]
    assert sample.totals.cost_usd == pytest.approx(totals["cost_usd"], abs=1e-8)
    assert sample.totals.traces == report["traces"]["traces"]
    stats = sample.per_trace["cost_usd"]
    for ours, theirs in (("mean", "mean_usd"), ("p50", "p50_usd"), ("p95", "p95_usd"), ("max", "max_usd")):
        assert getattr(stats, ours) == pytest.approx(report["traces"][theirs], abs=1e-8)
    by_agent = {g["key"]["agent"]: g["cost_usd"] or 0.0 for g in report["groups"]}
    assert {g.key: g.cost_usd for g in sample.groups["agent"]} == pytest.approx(by_agent, abs=1e-8)
    assert [u.model for u in sample.unpriced_models] == [u["model"] for u in report["unpriced_models"]]


def test_costs_add_up_across_groups_traces_and_models(sample: baselines.Baseline) -> None:
    total = sample.totals.cost_usd or 0.0
    for dimension in baselines.DIMENSIONS:
        assert math.isclose(sum(g.cost_usd for g in sample.groups[dimension]), total, abs_tol=1e-6)
        per_trace = sum(g.cost_per_trace_usd for g in sample.groups[dimension])
        assert math.isclose(per_trace, sample.per_trace["cost_usd"].mean, abs_tol=1e-6)
    assert math.isclose(sum(t.cost_usd for t in sample.traces), total, abs_tol=1e-6)
    assert math.isclose(sum(m.cost_total for m in sample.models), total, abs_tol=1e-6)
    for trace in sample.traces:
        for groups in trace.groups.values():
            assert math.isclose(sum(cost for cost, _ in groups.values()), trace.cost_usd, abs_tol=1e-8)
            assert sum(tokens for _, tokens in groups.values()) == trace.tokens
    sonnet = next(m for m in sample.models if m.model.startswith("claude-sonnet-4-5"))
    assert sonnet.rates_usd_per_mtok["input"] == 3.0 and sonnet.rates_usd_per_mtok["output"] == 15.0


def test_file_round_trips_with_one_line_per_trace(sample: baselines.Baseline, tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    baselines.write(sample, path)
    assert baselines.read(path) == sample
    text = path.read_text("utf-8")
    lines = text.splitlines()
    start = lines.index('  "traces": [')
    assert len(lines) - start - 3 == len(sample.traces)
    data = json.loads(text)
    assert data["baseline_version"] == 1 and data["price_sources"] == ["genai-prices 0.2.3"]
    assert data["tokenizer"] == {"usage": "reported", "recounted_calls": 0, "encodings": []}
    assert set(data["groups"]) == {"agent", "model", "operation"}


def test_cli_writes_the_file_or_stdout(tmp_path: Path) -> None:
    out_file = tmp_path / "b.json"
    code, out, err = invoke("baseline", "sample_traces/multi_tenant.jsonl", "-o", str(out_file))
    assert code == 0 and out == "" and f"Wrote {out_file}: " in err
    code, out, _ = invoke("baseline", "sample_traces/multi_tenant.jsonl", "-o", "-")
    assert code == 0 and json.loads(out) == json.loads(out_file.read_text("utf-8"))
    code, _, err = invoke("baseline", "nope/", "-o", str(out_file))
    assert code == 2 and err.startswith("Error: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "b.json:1: the baseline is not valid JSON"),
        ("[1, 2]", "b.json: not a costscope baseline"),
        ('{"baseline_version": 2}', "b.json: baseline version 2; this costscope reads version 1"),
        ('{"baseline_version": 1}', "b.json: baseline: costscope_version: Field required"),
    ],
)
def test_bad_files_are_named_with_a_hint(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(text, "utf-8")
    with pytest.raises(ConfigError) as info:
        baselines.read(path)
    assert str(info.value.message).replace(str(tmp_path) + "/", "").startswith(message)
    assert info.value.hint == "make it with: costscope baseline PATH... -o b.json"


def test_unknown_keys_are_rejected(sample: baselines.Baseline, tmp_path: Path) -> None:
    data: dict[str, Any] = json.loads(baselines.to_json(sample))
    data["totals"]["colour"] = "blue"
    path = tmp_path / "b.json"
    path.write_text(json.dumps(data), "utf-8")
    with pytest.raises(ConfigError, match="baseline: totals.colour: unknown key"):
        baselines.read(path)


def test_the_committed_ci_baseline_matches_the_sample_traces(sample: baselines.Baseline) -> None:
    if UPDATE or not CI_BASELINE.exists():
        baselines.write(sample, CI_BASELINE)
        if not UPDATE:
            pytest.fail(f"{CI_BASELINE.name} was missing and has been written; re-run the tests")
    committed = json.loads(CI_BASELINE.read_text("utf-8"))
    fresh = json.loads(baselines.to_json(sample))
    committed.pop("costscope_version")
    fresh.pop("costscope_version")
    assert committed == fresh, "rebuild: costscope baseline sample_traces/ -o .ci/costscope-baseline.json"
    code, out, err = invoke("check", "sample_traces/", "--baseline", str(CI_BASELINE.relative_to(ROOT)))
    assert code == 0, out + err
