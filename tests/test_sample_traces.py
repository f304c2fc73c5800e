"""The bundled sample traces: golden reports (update with COSTSCOPE_UPDATE_GOLDEN=1) and the story they tell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from goldens import assert_golden
from typer.testing import CliRunner

from costscope.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def analyze(*args: str) -> str:
    result = runner.invoke(app, ["analyze", "sample_traces/", *args], env={"COLUMNS": "80", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_table_report_is_golden() -> None:
    assert_golden("analyze_sample_traces.txt", analyze())


def test_markdown_by_agent_is_golden() -> None:
    assert_golden("analyze_sample_traces_by_agent.md", analyze("--by", "agent", "--format", "markdown"))


def test_json_report_is_golden_and_deterministic() -> None:
    first = analyze("--format", "json", "--by", "tenant,agent")
    assert first == analyze("--format", "json", "--by", "tenant,agent")
    assert_golden("analyze_sample_traces_by_tenant_agent.json", first)


def test_sample_story() -> None:
    report = json.loads(analyze("--format", "json", "--by", "agent"))
    inputs = report["inputs"]
    assert inputs["records_skipped"] == 0
    assert set(inputs["formats"]) >= {"anthropic", "openai", "gemini"}
    assert report["totals"]["calls"] == sum(f["rows"] for f in inputs["files"]) - inputs["duplicates_dropped"]
    agents = {g["key"]["agent"] for g in report["groups"]}
    assert {"triage", "specialist", "coder", "classifier"} <= agents
    assert [u["model"] for u in report["unpriced_models"]] == ["acme-llama-3.1-70b-ft"]
    assert report["cache"]["hit_ratio"] > 0.2
    assert report["totals"]["cache_write_1h_tokens"] > 0
    assert report["totals"]["reasoning_tokens"] > 0


def test_sample_price_file_prices_the_self_hosted_model() -> None:
    plain = json.loads(analyze("--format", "json"))
    priced = json.loads(analyze("--format", "json", "--prices", "sample_traces/prices.yaml"))
    assert priced["unpriced_models"] == []
    llama = next(u for u in plain["unpriced_models"] if u["model"] == "acme-llama-3.1-70b-ft")
    extra = priced["totals"]["cost_usd"] - plain["totals"]["cost_usd"]
    assert extra > 0
    assert extra <= (llama["input_tokens"] * 0.60 + llama["output_tokens"] * 0.80) / 1e6 + 1e-9
