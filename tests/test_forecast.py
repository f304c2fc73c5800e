"""`costscope forecast`: volume parsing, the paired bootstrap, hand-computed monthly costs and self-hosting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from reportkit import empty_policy, priced_steps, write_inputs
from typer.testing import CliRunner

from costscope import forecast
from costscope.cli import app
from costscope.errors import ConfigError, InputError
from costscope.forecast import ForecastSettings, SelfHost, Volume
from costscope.render.forecast import FORECAST_RENDERERS

MONTH = 365.25 / 12
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "100", "NO_COLOR": "1"})
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("text", "per_month"),
    [
        ("100000/month", 100_000),
        ("100k/month", 100_000),
        ("250000", 250_000),
        ("3k/day", 3000 * MONTH),
        ("3,000 / days", 3000 * MONTH),
        ("1.5M/week", 1.5e6 * MONTH / 7),
        ("120000/year", 10_000),
        ("10/hour", 10 * 24 * MONTH),
    ],
)
def test_volume_parses_traces_per_period(text: str, per_month: float) -> None:
    assert Volume.parse(text).per_month == pytest.approx(per_month, rel=1e-12)


@pytest.mark.parametrize("text", ["", "abc", "0/month", "5/fortnight", "-3/day", "1e5/month"])
def test_bad_volume_is_a_usage_error(text: str) -> None:
    with pytest.raises(ConfigError, match="--volume"):
        Volume.parse(text)


def test_bootstrap_is_paired_deterministic_and_centred() -> None:
    rng = np.random.default_rng(1)
    a = rng.exponential(2.0, 500)
    columns = np.vstack([a, a - 1.0, np.full(500, 7.0)])
    means = forecast.bootstrap_means(columns, 300, seed=5)
    assert means.shape == (300, 3)
    assert np.allclose(means[:, 0] - means[:, 1], 1.0)  # the same draws for every column
    assert np.allclose(means[:, 2], 7.0)
    assert abs(means[:, 0].mean() - a.mean()) < 0.05
    assert np.array_equal(means, forecast.bootstrap_means(columns, 300, seed=5))
    assert not np.array_equal(means, forecast.bootstrap_means(columns, 300, seed=6))


def test_monthly_cost_is_mean_cost_per_trace_times_volume(tmp_path: Path) -> None:
    steps = priced_steps(tmp_path)
    result = forecast.build(steps, ForecastSettings(volume=Volume.parse("1000/month")))
    [recorded] = result.projections
    assert recorded["cost_per_trace_mean_usd"] == pytest.approx(0.003, abs=1e-15)
    assert recorded["cost_per_trace_p50_usd"] == pytest.approx(0.0025, abs=1e-15)
    assert recorded["monthly_usd"] == pytest.approx(3.0, abs=1e-12)
    # a resampled mean of four traces lies between the cheapest and the costliest trace
    assert 1.0 <= recorded["monthly_low_usd"] < 3.0 < recorded["monthly_high_usd"] <= 6.0
    assert result.sample["priced_traces"] == 4 and result.sample["span_days"] == pytest.approx(4.0)
    assert result.sample["observed_traces_per_month"] == pytest.approx(3 / 4 * MONTH)
    assert result.to_dict() == forecast.build(steps, ForecastSettings(volume=Volume.parse("1000/month"))).to_dict()


def test_default_volume_is_the_observed_rate(tmp_path: Path) -> None:
    result = forecast.build(priced_steps(tmp_path), ForecastSettings())
    assert result.volume["source"] == "observed"
    assert result.projections[0]["monthly_usd"] == pytest.approx(0.003 * 3 / 4 * MONTH)


def test_inputs_within_a_day_need_a_volume(tmp_path: Path) -> None:
    from reportkit import call

    steps = priced_steps(tmp_path, [call("t1", 1, "m-a", 1000), call("t2", 1, "m-a", 1000, n=1)])
    with pytest.raises(ConfigError, match="less than a day"):
        forecast.build(steps, ForecastSettings())


def test_identity_policy_saves_exactly_zero(tmp_path: Path) -> None:
    steps = priced_steps(tmp_path)
    result = forecast.build(steps, ForecastSettings(volume=Volume.parse("1000/month")), [empty_policy(tmp_path)])
    recorded, identity = result.projections
    assert identity["scenario"] == "identity"
    assert identity["monthly_usd"] == pytest.approx(recorded["monthly_usd"], abs=1e-12)
    assert identity["saved_monthly_usd"] == pytest.approx(0.0, abs=1e-12)
    assert identity["saved_monthly_low_usd"] == pytest.approx(0.0, abs=1e-12)
    assert identity["saved_monthly_high_usd"] == pytest.approx(0.0, abs=1e-12)


def self_host(throughput: float) -> SelfHost:
    sh = SelfHost.from_options(["m-b*"], gpu_hourly=1.0, gpu_count=1, throughput=throughput, calls_per_hour=None,
                               utilization=0.5)  # fmt: skip
    assert sh is not None
    return sh


def test_self_hosting_that_never_breaks_even(tmp_path: Path) -> None:
    # one GPU: 100 tok/s * 3600 * 730.5 h * 0.5 = 131,490,000 tokens/month = 116,880 traces of 1125 tokens,
    # which replace 116,880 * $0.0015 = $175.32 of API calls for a GPU-month of $730.50: no break-even.
    settings = ForecastSettings(volume=Volume.parse("1M/month"), self_host=self_host(100))
    sh = forecast.build(priced_steps(tmp_path), settings).self_host
    assert sh is not None
    assert sh["calls_per_trace"] == pytest.approx(0.5) and sh["tokens_per_trace"] == pytest.approx(1125)
    assert sh["api_cost_per_trace_usd"] == pytest.approx(0.0015, abs=1e-15)
    assert sh["share_of_spend"] == pytest.approx(0.5)
    assert sh["capacity_per_gpu_month"] == pytest.approx(131_490_000)
    assert sh["gpus_needed"] == 9  # ceil(1.125e9 / 1.3149e8) = ceil(8.56)
    assert sh["self_host_monthly_usd"] == pytest.approx(9 * 730.5)
    assert sh["api_monthly_usd"] == pytest.approx(1500.0)
    assert sh["saving_monthly_usd"] == pytest.approx(1500.0 - 9 * 730.5)
    assert sh["traces_per_gpu_month"] == pytest.approx(116_880)
    assert sh["break_even_traces_per_month"] is None


def test_self_hosting_break_even(tmp_path: Path) -> None:
    settings = ForecastSettings(volume=Volume.parse("1M/month"), self_host=self_host(1000))
    result = forecast.build(priced_steps(tmp_path), settings)
    sh = result.self_host
    assert sh is not None
    assert sh["gpus"] == 1 and sh["self_host_monthly_usd"] == pytest.approx(730.5)
    assert sh["saving_monthly_usd"] == pytest.approx(1500.0 - 730.5)
    assert sh["break_even_traces_per_month"] == pytest.approx(730.5 / 0.0015)  # 487,000
    assert sh["api_monthly_low_usd"] <= 1500.0 <= sh["api_monthly_high_usd"]
    text = FORECAST_RENDERERS["table"](result, 200)
    assert "Break-even: 487k traces/month with 1 GPU" in text
    assert "saves $770 a month" in text  # $1,500 - $730.50


def test_self_hosting_by_calls_per_hour(tmp_path: Path) -> None:
    # one GPU serves 100 calls/h * 730.5 h * 0.5 = 36,525 calls/month = 73,050 traces of 0.5 calls, which replace
    # $109.58 of API calls: no break-even; 1M traces need 500k calls: 14 GPUs
    slow = SelfHost.from_options(["m-b"], 1.0, 2, None, 100, 0.5)
    result = forecast.build(priced_steps(tmp_path), ForecastSettings(Volume.parse("1M/month"), self_host=slow))
    assert result.self_host is not None
    assert result.self_host["gpus_needed"] == 14 and result.self_host["gpus"] == 14
    assert result.self_host["break_even_traces_per_month"] is None
    text = FORECAST_RENDERERS["table"](result, 200)
    assert "Break-even: none. A fully used GPU replaces $110 of API calls a month and costs $730" in text
    # ten times faster: 365,250 calls/month per GPU, 2 GPUs (the minimum fleet) break even at 2 * 730.5 / 0.0015
    fast = SelfHost.from_options(["m-b"], 1.0, 2, None, 1000, 0.5)
    result = forecast.build(priced_steps(tmp_path), ForecastSettings(Volume.parse("1M/month"), self_host=fast))
    assert result.self_host is not None
    assert result.self_host["gpus_needed"] == 2 and result.self_host["gpus"] == 2
    assert result.self_host["break_even_traces_per_month"] == pytest.approx(974_000)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((["m-b"], None, 1, 100.0, None, 0.5), "--gpu-hourly"),
        ((None, 2.0, 1, 100.0, None, 0.5), "--slice-model"),
        ((["m-b"], 2.0, 1, None, None, 0.5), "--throughput"),
        ((["m-b"], 2.0, 1, 100.0, 50.0, 0.5), "one of them"),
        ((["m-b"], 2.0, 0, 100.0, None, 0.5), "--gpu-count"),
        ((["m-b"], 2.0, 1, 100.0, None, 1.5), "--utilization"),
    ],
)
def test_self_host_options_are_validated(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        SelfHost.from_options(*args)  # type: ignore[arg-type]
    assert message in info.value.message + (info.value.hint or "")


def test_a_slice_matching_nothing_lists_the_models(tmp_path: Path) -> None:
    sh = SelfHost.from_options(["gpt-*"], 1.0, 1, 100, None, 0.5)
    with pytest.raises(InputError) as info:
        forecast.build(priced_steps(tmp_path), ForecastSettings(Volume.parse("1k"), self_host=sh))
    assert info.value.hint == "models in the inputs: m-a, m-b"


def test_cli_json_and_markdown(tmp_path: Path) -> None:
    traces, prices = write_inputs(tmp_path)
    code, out, err = run("forecast", traces, "--prices", prices, "--volume", "1000/month", "-f", "json",
                         "--policy", empty_policy(tmp_path))  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert data["forecast_version"] == 1
    assert [p["scenario"] for p in data["projections"]] == ["recorded", "identity"]
    assert data["projections"][0]["monthly_usd"] == pytest.approx(3.0)
    assert data["bootstrap"] == {"resamples": 2000, "seed": forecast.SEED, "confidence": 0.95}
    code, out, _ = run("forecast", traces, "--prices", prices, "--volume", "100/day", "-f", "markdown")
    assert code == 0
    assert "| recorded | $0.0030 | $9.13 | " in out  # 0.003 * 100 * 30.4375 = 9.13125


@pytest.mark.parametrize(
    "extra",
    [["--volume", "lots"], ["--gpu-hourly", "2"], ["--confidence", "1.5", "--volume", "1k/day"]],
)
def test_cli_usage_errors_exit_2(tmp_path: Path, extra: list[str]) -> None:
    traces, prices = write_inputs(tmp_path)
    code, out, err = run("forecast", traces, "--prices", prices, *extra)
    assert code == 2 and out == "" and err.startswith("Error: ")


def test_resamples_shrink_for_very_large_samples() -> None:
    assert forecast.resamples_for(100) == 2000
    assert forecast.resamples_for(25_000) == 2000
    assert forecast.resamples_for(100_000) == 500  # 50M draws / 100k traces
    assert forecast.resamples_for(10_000_000) == 200
