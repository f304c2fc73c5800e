"""CLI tests for `analyze --findings` and `suggest` (for tests/test_cli.py once the commands are wired)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from costscope.cli import app

runner = CliRunner()
SAMPLES = str(Path(__file__).resolve().parent.parent / "sample_traces")


def test_analyze_findings_in_json_and_table() -> None:
    result = runner.invoke(app, ["analyze", SAMPLES, "--findings", "--format", "json"])
    assert result.exit_code == 0, result.output
    findings = json.loads(result.stdout)["findings"]
    assert findings[0]["kind"] == "frontier_overuse" and findings[0]["policy"].startswith("routing:\n")
    assert "findings" not in json.loads(runner.invoke(app, ["analyze", SAMPLES, "-f", "json"]).stdout)
    table = runner.invoke(app, ["analyze", SAMPLES, "--findings"], env={"COLUMNS": "80"}).stdout
    assert "Frontier model on simple calls" in table and "Evidence: " in table


def test_suggest_writes_a_policy_file_simulate_accepts(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    result = runner.invoke(app, ["suggest", SAMPLES, "-o", str(policy)])
    assert result.exit_code == 0, result.output
    assert f"Wrote {policy}: truncation, compression, routing, response_cache" in result.stderr
    assert policy.read_text(encoding="utf-8").startswith("# Suggested by costscope from 5 findings")
    simulated = runner.invoke(app, ["simulate", SAMPLES, "--policy", str(policy), "--format", "json"])
    assert simulated.exit_code == 0, simulated.output
    assert json.loads(simulated.stdout)["scenarios"][0]["runs"][-1]["saved_usd"] > 1.0
    assert runner.invoke(app, ["suggest", SAMPLES, "-o", "-"]).stdout == policy.read_text(encoding="utf-8")


def test_suggest_cannot_write_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["suggest", SAMPLES, "-o", str(tmp_path / "missing" / "p.yaml")])
    assert result.exit_code == 2 and "Error: cannot write" in result.stderr
