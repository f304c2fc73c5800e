"""`costscope check`: the regression gate on generated agent runs (seeded), its statistics, explanation,
outputs, configuration and exit codes. Golden files update with COSTSCOPE_UPDATE_GOLDEN=1."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from goldens import assert_golden
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from costscope.baseline import BASELINE_VERSION, Baseline, ModelUsage
from costscope.check import bootstrap_difference
from costscope.check_explain import explain
from costscope.cli import app

runner = CliRunner()


@dataclass(frozen=True)
class AgentSpec:
    model: str
    calls: tuple[int, int]
    prompt: int
    output: int
    hit: float


AGENTS = {
    "planner": AgentSpec("gpt-4o-2024-08-06", (1, 2), 3000, 400, 0.5),
    "coder": AgentSpec("gpt-5-2025-08-07", (3, 7), 12000, 1500, 0.8),
    "reviewer": AgentSpec("gpt-4.1-mini-2025-04-14", (1, 3), 4000, 300, 0.3),
}


def agent_run(
    run: str,
    seed: int,
    traces: int = 120,
    scale: dict[str, float] | None = None,
    calls: dict[str, tuple[int, int]] | None = None,
    hit: dict[str, float] | None = None,
    model: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """OpenAI chat-completion records of `traces` agent runs (planner, coder, reviewer), each call's prompt and
    output drawn around the agent's size (lognormal, sigma 0.3) and scaled by `scale[agent]`; `calls`, `hit`
    and `model` override an agent's range of calls per trace, cache hit ratio and model."""
    rng = random.Random(seed)
    out = []
    for i in range(traces):
        trace = f"{run}-{i:04d}"
        for agent, spec in AGENTS.items():
            lo, hi = (calls or {}).get(agent, spec.calls)
            factor = (scale or {}).get(agent, 1.0)
            for j in range(rng.randint(lo, hi)):
                prompt = max(1, round(spec.prompt * rng.lognormvariate(0, 0.3) * factor))
                output = max(1, round(spec.output * rng.lognormvariate(0, 0.3) * factor))
                usage = {
                    "prompt_tokens": prompt,
                    "completion_tokens": output,
                    "prompt_tokens_details": {"cached_tokens": int(prompt * (hit or {}).get(agent, spec.hit))},
                }
                out.append(
                    {
                        "timestamp": f"2026-10-01T10:{i % 60:02d}:{j:02d}Z",
                        "trace_id": trace,
                        "agent": agent,
                        "operation": "fix_issue",
                        "response": {
                            "id": f"{trace}-{agent}-{j}",
                            "object": "chat.completion",
                            "model": (model or {}).get(agent, spec.model),
                            "usage": usage,
                        },
                    }
                )
    return out


def write(path: Path, records: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


def run(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(
        app, list(args), env={"COLUMNS": "80", "NO_COLOR": "1", "GITHUB_STEP_SUMMARY": None, **(env or {})}
    )
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No costscope.toml or pyproject.toml of the repository leaks into a test."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def base_file(tmp_path: Path) -> str:
    traces = write(tmp_path / "base.jsonl", agent_run("base", seed=1))
    code, _, err = run("baseline", traces, "-o", "costscope-baseline.json")
    assert code == 0, err
    return "costscope-baseline.json"


def check_json(*args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run("check", *args, "--format", "json")
    assert code in (0, 1), err
    return code, json.loads(out)


def test_an_unchanged_run_passes(base_file: str, tmp_path: Path) -> None:
    code, result = check_json(str(tmp_path / "base.jsonl"), "--baseline", base_file, "--by", "agent")
    assert code == 0 and result["verdict"] == "pass"
    assert all(c["change"] == 0 and c["status"] == "pass" for c in result["checks"])
    assert result["explanation"]["change_usd"] == 0 and result["decided_by"] == "bootstrap"
    rerun = write(tmp_path / "rerun.jsonl", agent_run("rerun", seed=2))  # same system, new run-to-run noise
    code, result = check_json(rerun, "--baseline", base_file, "--by", "agent")
    assert code == 0, result["summary"]
    assert result["checks"][0]["change"] != 0


def test_more_tokens_per_call_fails_and_names_the_agent(base_file: str, tmp_path: Path) -> None:
    current = write(tmp_path / "cur.jsonl", agent_run("cur", seed=2, scale={"coder": 1.25}))
    code, out, err = run("check", current, "--baseline", base_file, "--by", "agent")
    assert code == 1, err
    first = out.splitlines()[0]
    assert first.startswith("costscope check failed: cost per trace (mean)") and "exceeds +10%" in out
    assert "failing: agent coder" in out
    _, result = check_json(current, "--baseline", base_file, "--by", "agent")
    failing = [(c["scope"], c["key"]) for c in result["checks"] if c["status"] == "fail"]
    assert failing == [("all", None), ("agent", "coder")]
    overall = result["checks"][0]
    assert overall["ci"]["low"] > 0 and overall["relative_change"] > 0.10
    x = result["explanation"]
    assert x["price_usd"] == 0
    usage = {name: e["usd"] for name, e in x["usage"].items()}
    assert max(usage, key=lambda k: usage[k]) == "tokens_per_call"
    assert math.isclose(x["price_usd"] + sum(usage.values()), x["change_usd"], rel_tol=1e-9)
    assert result["movers"]["agent"][0]["key"] == "coder"


def test_the_pr_comment_is_golden(base_file: str, tmp_path: Path) -> None:
    current = write(tmp_path / "cur.jsonl", agent_run("cur", seed=2, scale={"coder": 1.25}))
    code, out, _ = run("check", current, "--baseline", base_file, "--by", "agent", "--format", "markdown")
    assert code == 1
    assert out.startswith("❌ **costscope check failed**: cost per trace (mean)")
    assert "<details><summary>Why the cost changed</summary>" in out
    assert_golden("check_regression.md", out)


def test_a_price_change_alone_is_reported_as_price(base_file: str, tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "version: 1\nmodels:\n  - model: gpt-5-*\n    input: 2.50\n    output: 20\n    cache_read: 0.25\n", "utf-8"
    )
    code, result = check_json(str(tmp_path / "base.jsonl"), "--baseline", base_file, "--prices", str(prices))
    assert code == 1
    x = result["explanation"]
    assert x["change_usd"] > 0 and math.isclose(x["price_usd"], x["change_usd"], rel_tol=1e-6)
    assert all(abs(e["usd"]) < 1e-12 for e in x["usage"].values())
    assert [m["model"] for m in x["models"] if m["price_usd"] > 0] == ["gpt-5-2025-08-07"]
    assert any("prices differ" in note for note in result["notes"])
    code, out, _ = run("check", str(tmp_path / "base.jsonl"), "--baseline", base_file, "--prices", str(prices))
    assert "price +$" in out and "usage $0" in out


@pytest.mark.parametrize(
    ("change", "factor"),
    [
        ({"hit": {"coder": 0.4}}, "cache_hit_ratio"),
        ({"model": {"reviewer": "gpt-4o-2024-08-06", "planner": "gpt-4.1-2025-04-14"}}, "model_mix"),
        ({"calls": {"coder": (6, 10)}}, "calls_per_trace"),
    ],
)
def test_usage_changes_are_attributed_to_their_factor(
    base_file: str, tmp_path: Path, change: dict[str, Any], factor: str
) -> None:
    current = write(tmp_path / "cur.jsonl", agent_run("cur", seed=1, **change))
    _, result = check_json(current, "--baseline", base_file)
    x = result["explanation"]
    usage = {name: e["usd"] for name, e in x["usage"].items()}
    assert max(usage, key=lambda k: abs(usage[k])) == factor, usage
    assert abs(usage[factor]) > 0.5 * abs(x["change_usd"]) and x["price_usd"] == 0


def test_a_noisy_run_with_the_same_mean_passes_at_95_percent(base_file: str, tmp_path: Path) -> None:
    # The coder makes 1-9 calls instead of 3-7: same mean, more spread. Seed 69 happens to draw a run whose
    # mean is 6.5% above the baseline: over a 5% limit, but well inside what run-to-run noise produces.
    noisy = write(tmp_path / "noisy.jsonl", agent_run("noisy", seed=69, calls={"coder": (1, 9)}))
    code, result = check_json(noisy, "--baseline", base_file, "--max-increase", "5%", "--confidence", "0.95")
    overall = result["checks"][0]
    assert overall["relative_change"] > 0.05 and overall["ci"]["low"] < 0 < overall["ci"]["high"]
    assert code == 0 and overall["status"] == "noise"
    assert "within run-to-run noise" in result["summary"]
    code, out, _ = run("check", noisy, "--baseline", base_file, "--max-increase", "5%", "--min-traces", "500")
    assert code == 1, "without the interval the point estimate alone fails it"
    assert "too few traces" in out


def test_too_few_traces_says_so(tmp_path: Path) -> None:
    write(tmp_path / "b.jsonl", agent_run("b", seed=1, traces=5))
    assert run("baseline", str(tmp_path / "b.jsonl"), "-o", "b.json")[0] == 0
    current = write(tmp_path / "c.jsonl", agent_run("c", seed=1, traces=5))
    code, result = check_json(current, "--baseline", "b.json")
    assert code == 0 and result["decided_by"] == "point_estimate"
    assert result["checks"][0]["ci"] is None
    assert any(note.startswith("too few traces") for note in result["notes"])


def test_absolute_limits_and_budget(base_file: str, tmp_path: Path) -> None:
    current = write(tmp_path / "cur.jsonl", agent_run("cur", seed=2, scale={"coder": 1.25}))
    code, result = check_json(current, "--baseline", base_file, "--max-increase-usd", "0.05")
    assert code == 0 and result["checks"][0]["limit"] == "+$0.05"
    code, result = check_json(current, "--baseline", base_file, "--max-increase-usd", "0.01", "--metric", "p95")
    assert result["metric"] == "cost_per_trace_p95" and result["checks"][0]["exceeded"] == ["+$0.01"]
    code, result = check_json(current, "--baseline", base_file, "--max-cost-per-trace", "0.10")
    budget = result["checks"][-1]
    assert code == 1 and budget["scope"] == "budget" and budget["status"] == "fail" and budget["current"] > 0.10
    code, result = check_json(current, "--baseline", base_file, "--max-cost-per-trace", "0.40")
    assert code == 0
    code, result = check_json(current, "--baseline", base_file, "--metric", "tokens_per_trace", "--max-increase", "30%")
    assert code == 0 and 1.1 < result["checks"][0]["current"] / result["checks"][0]["baseline"] < 1.3


def test_unpriced_models_are_reported_and_can_fail(base_file: str, tmp_path: Path) -> None:
    records = agent_run("cur", seed=1)
    records[0]["response"]["model"] = "house-llama-70b"
    current = write(tmp_path / "cur.jsonl", records)
    code, result = check_json(current, "--baseline", base_file)
    assert code == 0
    assert [u["model"] for u in result["unpriced_models"]["current"]] == ["house-llama-70b"]
    assert "current: unpriced model house-llama-70b: 1 calls not in any cost" in result["notes"]
    code, out, _ = run("check", current, "--baseline", base_file, "--fail-on-unpriced")
    assert code == 1 and "unpriced models: house-llama-70b (current)" in out


def test_exit_2_on_usage_and_input_errors(base_file: str, tmp_path: Path) -> None:
    traces = str(tmp_path / "base.jsonl")
    cases = [
        ((traces,), "no baseline given"),
        ((traces, "--baseline", "missing.json"), "cannot read the baseline missing.json"),
        ((traces, "--baseline", base_file, "--metric", "p99"), "unknown metric 'p99'"),
        (
            (traces, "--baseline", base_file, "--max-increase", "10"),
            "--max-increase: write the increase as a percentage",
        ),
        ((traces, "--baseline", base_file, "--by", "tenant"), "cannot check by 'tenant'"),
        ((traces, "--baseline", base_file, "--metric", "tokens_per_trace", "--max-increase-usd", "1"), "cost metrics"),
        ((str(tmp_path / "nope.jsonl"), "--baseline", base_file), "no such file or directory"),
    ]
    for args, message in cases:
        code, out, err = run("check", *args)
        assert code == 2 and out == "" and message in err, (args, err)
        assert "Traceback" not in err
    Path("bad.json").write_text('{"baseline_version": 1,\n "costscope_version": }', "utf-8")
    code, _, err = run("check", traces, "--baseline", "bad.json")
    assert code == 2 and "bad.json:2: the baseline is not valid JSON" in err


def test_defaults_from_pyproject_and_costscope_toml(base_file: str, tmp_path: Path) -> None:
    current = write(tmp_path / "cur.jsonl", agent_run("cur", seed=2, scale={"coder": 1.25}))
    Path("pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.costscope.check]\nbaseline = "costscope-baseline.json"\n'
        'max-increase = "50%"\nby = ["agent"]\n',
        "utf-8",
    )
    code, result = check_json(current)
    assert code == 0 and result["limits"]["max_increase"] == 0.5 and result["limits"]["by"] == ["agent"]
    code, result = check_json(current, "--max-increase", "10%")
    assert code == 1, "the command line wins over the file"
    Path("costscope.toml").write_text('[check]\nbaseline = "costscope-baseline.json"\nmax_increase = 0.2\n', "utf-8")
    code, result = check_json(current)
    assert result["limits"]["max_increase"] == 0.2 and result["limits"]["by"] == []
    Path("costscope.toml").write_text('[check]\nbaseline = "costscope-baseline.json"\nmax-increse = "5%"\n', "utf-8")
    code, _, err = run("check", current)
    assert code == 2 and "costscope.toml:3: [check] max_increse: unknown key" in err
    Path("ci").mkdir()
    Path("ci/gate.toml").write_text('[check]\nbaseline = "../costscope-baseline.json"\nmetric = "p95"\n', "utf-8")
    code, result = check_json(current, "--config", "ci/gate.toml")
    assert result["metric"] == "cost_per_trace_p95" and result["baseline"]["file"].endswith("costscope-baseline.json")
    Path("ci/gate.toml").write_text("[check\n", "utf-8")
    code, _, err = run("check", current, "--config", "ci/gate.toml")
    assert code == 2 and "ci/gate.toml: invalid TOML" in err


def test_github_step_summary_gets_the_markdown(base_file: str, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n", "utf-8")
    code, out, _ = run(
        "check", str(tmp_path / "base.jsonl"), "-b", base_file, env={"GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert code == 0 and out.startswith("costscope check passed")
    text = summary.read_text("utf-8")
    assert text.startswith("# earlier step\n✅ **costscope check passed**") and "| check | baseline |" in text


def test_table_fits_80_columns_without_colour(base_file: str, tmp_path: Path) -> None:
    current = write(tmp_path / "cur.jsonl", agent_run("cur", seed=2, scale={"coder": 1.25}))
    code, out, _ = run("check", current, "--baseline", base_file, "--by", "agent,model")
    assert code == 1 and "\x1b[" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "Why the mean cost per trace changed" in out and "tokens per call" in out


def test_bootstrap_is_deterministic_and_covers_the_truth() -> None:
    rng = np.random.default_rng(7)
    base = rng.lognormal(0, 1, size=(200, 1))
    cur = rng.lognormal(0, 1, size=(200, 1)) * 1.5
    first = bootstrap_difference(base, cur, "mean", 0.95)
    assert np.array_equal(first, bootstrap_difference(base, cur, "mean", 0.95))
    assert first.shape == (2, 1) and first[0, 0] < cur.mean() - base.mean() < first[1, 0]
    assert first[0, 0] > 0
    p95 = bootstrap_difference(base, base.copy(), "p95", 0.9, resamples=500)
    assert p95[0, 0] < 0 < p95[1, 0]


def _model(name: str, calls: int, inp: int, read: int, out: int, rates: tuple[float, float, float]) -> ModelUsage:
    r_in, r_read, r_out = rates
    cost = {"input": (inp - read) * r_in, "cache_read": read * r_read, "cache_write": 0.0, "output": out * r_out}
    return ModelUsage(
        provider=None,
        model=name,
        calls=calls,
        input_tokens=inp,
        cache_read_tokens=read,
        cache_write_tokens=0,
        output_tokens=out,
        cost_usd=cost,
        rates_usd_per_mtok={},
    )


def _run(models: list[ModelUsage], traces: int) -> Baseline:
    stats = {"mean": 0.0, "p50": 0.0, "p95": 0.0, "max": 0.0}
    return Baseline.model_validate(
        {
            "baseline_version": BASELINE_VERSION,
            "costscope_version": "test",
            "price_sources": [],
            "tokenizer": {"usage": "reported", "recounted_calls": 0, "encodings": []},
            "inputs": {"files": [], "records_read": 0, "records_skipped": 0, "duplicates_dropped": 0},
            "totals": {
                "traces": traces,
                "calls": 0,
                "priced_calls": 0,
                "input_tokens": 0,
                "cache_read_tokens": 0,
                "cache_write_tokens": 0,
                "output_tokens": 0,
                "reasoning_tokens": 0,
                "cost_usd": None,
            },
            "per_trace": {"cost_usd": stats, "tokens": stats, "calls": stats},
            "groups": {},
            "models": [m.model_dump() for m in models],
            "unpriced_models": [],
            "traces": [],
        }
    )


usage = st.tuples(
    st.integers(1, 50),
    st.integers(1, 10**6),
    st.floats(0, 1),
    st.integers(1, 10**5),
    st.tuples(st.floats(0.01, 20), st.floats(0.001, 2), st.floats(0.01, 80)),
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from("abcd"), usage, min_size=1),
    st.dictionaries(st.sampled_from("abcd"), usage, min_size=1),
    st.integers(1, 100),
    st.integers(1, 100),
)
def test_price_and_usage_effects_add_up_to_the_change(
    base: dict[str, Any], cur: dict[str, Any], nb: int, nc: int
) -> None:
    def models(spec: dict[str, Any]) -> list[ModelUsage]:
        return [_model(k, c, i, int(i * h), o, r) for k, (c, i, h, o, r) in sorted(spec.items())]

    x = explain(_run(models(base), nb), _run(models(cur), nc))
    scale = 1e-12 * max(1.0, x.baseline_usd, x.current_usd)
    assert math.isclose(x.price_usd + x.usage_usd, x.change_usd, rel_tol=1e-9, abs_tol=scale)
    assert math.isclose(sum(m.current_usd - m.baseline_usd for m in x.models), x.change_usd, abs_tol=scale)
    same = explain(_run(models(base), nb), _run(models(base), nb))
    assert same.price_usd == 0 and all(abs(e.usd) < 1e-12 * max(1.0, same.baseline_usd) for e in same.effects)
