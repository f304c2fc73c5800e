"""`costscope simulate` and `policy-schema` through typer's runner: outputs, the projection file, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from goldens import assert_golden
from typer.testing import CliRunner

from costscope import api
from costscope.cli import app

runner = CliRunner()
ROOT = Path(__file__).parent.parent
SAMPLES = ROOT / "sample_traces"
POLICIES = SAMPLES / "policies"


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "100", "NO_COLOR": "1"})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def empty_policy(tmp_path: Path) -> Path:
    path = tmp_path / "unchanged.yaml"
    path.write_text("version: 1\nname: unchanged\n", encoding="utf-8")
    return path


def test_an_empty_policy_saves_exactly_nothing_on_every_sample(empty_policy: Path) -> None:
    for sample in sorted(p for p in SAMPLES.iterdir() if p.suffix in (".jsonl", ".gz")):
        code, out, _ = _run("simulate", str(sample), "--policy", str(empty_policy), "--format", "json", "--no-cache")
        assert code == 0, sample
        data = json.loads(out)
        (run,) = data["scenarios"][0]["runs"]
        assert run["saved_usd"] == 0.0, sample
        assert run["cost_after_usd"] == data["baseline"]["cost_usd"], sample
        assert run["calls_after"] == data["baseline"]["calls"], sample


def test_output_writes_the_projection_and_analyze_reads_it(tmp_path: Path, empty_policy: Path) -> None:
    out = tmp_path / "projected.parquet"
    code, _, err = _run("simulate", str(SAMPLES / "batch_classify.jsonl"), "-p", str(empty_policy), "-o", str(out))
    assert code == 0, err
    assert pq.read_table(out).num_rows == 150
    code, text, _ = _run("analyze", str(out), "--format", "json")
    assert code == 0
    assert json.loads(text)["totals"]["calls"] == 150


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Error: simulate needs a policy file"),
        (("-p", "missing.yaml"), "Error: cannot read policy file missing.yaml"),
        (("-p", "{e}", "-p", "{e}", "-o", "x.parquet"), "Error: --output writes one projection"),
        (("-p", "{e}", "--sweep", "nothing"), "Error: --sweep 'nothing': expected key=value1,value2"),
        (("-p", "{e}", "--sweep", "ttl=5m"), "Error: --sweep: no setting named 'ttl'"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], message: str, empty_policy: Path) -> None:
    filled = [a.format(e=empty_policy) for a in args]
    code, _, err = _run("simulate", str(SAMPLES / "batch_classify.jsonl"), *filled)
    assert code == 2
    assert err.startswith(message), err


def test_policy_schema_is_published(tmp_path: Path) -> None:
    code, out, _ = _run("policy-schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["properties"]["version"] == {
        "const": 1,
        "description": "Policy file format version: 1.",
        "title": "Version",
        "type": "integer",
    }
    published = (ROOT / "schemas" / "policy-v1.json").read_text(encoding="utf-8")
    assert out == published, "schemas/policy-v1.json is stale: costscope policy-schema > schemas/policy-v1.json"
    assert api.policy_schema_json() == out


def test_all_policies_on_the_samples_is_golden_and_deterministic() -> None:
    args = ("simulate", str(SAMPLES), "--policy", str(POLICIES / "all.yaml"), "--no-cache")
    code, first, _ = _run(*args, "--format", "markdown")
    assert code == 0
    assert first == _run(*args, "--format", "markdown")[1]
    assert_golden("simulate_samples_all.md", first.replace(str(ROOT) + "/", ""))
    data = json.loads(_run(*args, "--format", "json")[1])
    (scenario,) = data["scenarios"]
    joint = scenario["runs"][-1]
    assert [r["technique"] for r in scenario["runs"]][-1] == "joint" and len(scenario["runs"]) == 8
    assert 0 < joint["saved_usd"] < scenario["sum_of_parts_saved_usd"]
    assert joint["cost_before_usd"] == data["baseline"]["cost_usd"]
    assert all(r["cost_after_usd"] >= 0 for r in scenario["runs"])


def test_sweep_and_backtest_tables() -> None:
    code, out, _ = _run(
        "simulate", str(SAMPLES), "-p", str(POLICIES / "response-cache.yaml"), "--sweep", "threshold=0.85,0.95"
    )
    assert code == 0
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("0.85 ", "0.95 "))]
    assert [r[0] for r in rows] == ["0.85", "0.95"]
    code, out, _ = _run(
        "simulate", str(SAMPLES / "coding_agent.jsonl.gz"), "-p", str(POLICIES / "prompt-cache.yaml"), "--backtest"
    )
    assert code == 0
    (usd_row,) = [line.split() for line in out.splitlines() if line.strip().startswith("usd ")]
    assert abs(float(usd_row[-1].rstrip("%"))) <= 5.0  # the backtest target: dollars within 5% of the record
