"""Analyze, baseline, check and simulate on a dataset, unit by unit (local engine): the same figures as the
library computes on the whole step table (analyze: exactly the same report; the others to floating-point rounding)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from costscope import api, cli, dataset, engines
from costscope import baseline as baselines
from costscope.api import AnalyzeOptions, PricedSteps
from costscope.check_config import CheckSettings
from costscope.convert import ConvertOptions, convert
from costscope.engines import LocalEngine, outcomes, policy_scope
from costscope.errors import ConfigError, InputError
from costscope.pricing import PriceBook, price_table
from costscope.render import RENDERERS
from costscope.simulate.policy_file import load_policy_file
from costscope.steps import Filters

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = str(ROOT / "sample_traces")
POLICIES = ROOT / "sample_traces" / "policies"
UNIT = 60
"""Rows per unit: the sample dataset is read in about ten units."""


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("engines") / "ds"
    convert([SAMPLES], str(root), ConvertOptions(workers=1, file_rows=30))
    return str(root)


def close(got: Any, want: Any, path: str = "") -> None:
    """Equal, except floats within 1e-9 (relative) or 1e-12; ints (tokens, counts) and strings exactly."""
    if isinstance(want, float) and isinstance(got, float):
        assert abs(got - want) <= max(1e-12, 1e-9 * abs(want)), f"{path}: {got} != {want}"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), f"{path}: keys {list(got)} != {list(want)}"
        for key in want:
            close(got[key], want[key], f"{path}/{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{path}: {got} != {want}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            close(g, w, f"{path}[{i}]")
    else:
        assert got == want and type(got) is type(want), f"{path}: {got!r} != {want!r}"


def whole(ds: str, options: AnalyzeOptions) -> PricedSteps:
    loaded = dataset.load(ds, options.filters)
    book = PriceBook.from_file(options.prices)
    return PricedSteps(loaded, price_table(loaded.table, book), book)


@pytest.mark.parametrize(
    "options",
    [
        AnalyzeOptions(by=("model", "agent", "tenant", "day"), top=7),
        AnalyzeOptions(by=("trace",), top=3, filters=Filters(since="2026-10-20", models=("claude-*", "gpt-4o*"))),
        AnalyzeOptions(prices=str(ROOT / "sample_traces" / "prices.yaml"), filters=Filters(agents=("coder",))),
    ],
)
def test_analyze_of_a_dataset_equals_the_report_of_its_whole_table(ds: str, options: AnalyzeOptions) -> None:
    want = api.build_report(whole(ds, options), options).to_dict()
    got = engines.analyze_dataset(ds, options, LocalEngine(), unit_rows=UNIT).to_dict()
    assert got == want  # exact sums: the same floats, not only close ones
    assert got["totals"]["calls"] > 0 and got["totals"]["cost_usd"] > 0


def test_analyze_of_a_dataset_equals_analyze_of_its_traces(ds: str) -> None:
    got = engines.analyze(ds, AnalyzeOptions()).to_dict()
    want = api.analyze([SAMPLES], AnalyzeOptions()).to_dict()
    assert got == want
    assert got["inputs"]["records_read"] == 597 and got["totals"]["calls"] == 597 and got["traces"]["traces"] == 282
    assert got["composition"]["calls_with_content"] == 597 and got["composition"]["segments"]


def test_baseline_and_check_of_a_dataset(ds: str, tmp_path: Path) -> None:
    options = AnalyzeOptions()
    want = baselines.summarize(whole(ds, options))
    got, warnings = engines.baseline_dataset(ds, options, LocalEngine(), unit_rows=UNIT)
    close(got.model_dump(mode="json"), want.model_dump(mode="json"))
    assert warnings == api.build_report(whole(ds, options), options).warnings
    recorded, _ = baselines.create([SAMPLES])
    baselines.write(recorded, tmp_path / "baseline.json")
    result = engines.check_dataset(ds, CheckSettings(baseline=str(tmp_path / "baseline.json")), LocalEngine())
    assert result.passed and abs(result.overall.change) < 1e-9 and result.current.traces == 282
    with pytest.raises(ConfigError, match="no baseline"):
        engines.check_dataset(ds, CheckSettings(), LocalEngine())


def _money(report: dict[str, Any]) -> list[Any]:
    """Every money, call and token figure of a simulation report (not the policies' outcome figures)."""
    out: list[Any] = [report["baseline"]]
    for scenario in report["scenarios"]:
        for run in scenario["runs"]:
            out.append({k: v for k, v in run.items() if k not in ("outcomes",)})
        out.append(scenario["sum_of_parts_saved_usd"])
    return out


@pytest.mark.parametrize("policy", ["truncation.yaml", "compression.yaml", "budget.yaml", "batching.yaml"])
def test_simulate_by_units_gives_the_whole_replays_money(ds: str, policy: str) -> None:
    options = AnalyzeOptions()
    want = api.build_simulation(whole(ds, options), [str(POLICIES / policy)])[0].to_dict()
    got = engines.simulate_dataset(ds, [str(POLICIES / policy)], options, LocalEngine(), unit_rows=UNIT).to_dict()
    close(_money(got), _money(want))
    assert got["scenarios"][0]["runs"][-1]["saved_usd"] != 0
    assert set(got["scenarios"][0]["runs"][-1]["outcomes"]) == set(want["scenarios"][0]["runs"][-1]["outcomes"])


@pytest.mark.parametrize(
    ("policy", "changes"),
    [
        ("prompt-cache.yaml", {"scope": "tenant", "anthropic": {"agents": "all"}}),
        ("response-cache.yaml", {"mode": "exact", "scope": "tenant"}),
        ("response-cache.yaml", {"mode": "exact", "scope": "trace"}),
    ],
)
def test_caches_scoped_to_tenants_or_traces_give_the_whole_replays_money(
    ds: str, tmp_path: Path, policy: str, changes: dict[str, Any]
) -> None:
    data = yaml.safe_load((POLICIES / policy).read_text(encoding="utf-8"))
    name = next(k for k in data if k not in ("version", "name", "description"))
    for key, value in changes.items():
        data[name][key] = {**data[name][key], **value} if isinstance(value, dict) else value
    path = tmp_path / policy
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert policy_scope(name, load_policy_file(path).policies[0][1]) == changes["scope"]
    options = AnalyzeOptions()
    want = api.build_simulation(whole(ds, options), [str(path)])[0].to_dict()
    got = engines.simulate_dataset(ds, [str(path)], options, LocalEngine(), unit_rows=UNIT).to_dict()
    close(_money(got), _money(want))


def test_a_global_policy_is_replayed_whole_locally_and_refused_on_a_cluster(ds: str) -> None:
    policy = str(POLICIES / "prompt-cache.yaml")
    options = AnalyzeOptions()
    want = api.build_simulation(whole(ds, options), [policy])[0].to_dict()
    got = engines.simulate_dataset(ds, [policy], options, LocalEngine(), unit_rows=UNIT).to_dict()
    close(got, want)

    class Cluster(LocalEngine):
        name = "dask"

    with pytest.raises(ConfigError, match="prompt_cache .* keeps state across all traces: the replay cannot be split"):
        engines.simulate_dataset(ds, [policy], options, Cluster(), unit_rows=UNIT)


def test_policy_scopes(tmp_path: Path) -> None:
    def scope(name: str, settings: dict[str, Any]) -> str:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"version": 1, name: settings}), encoding="utf-8")
        scenario = load_policy_file(path)
        return policy_scope(name, scenario.policies[0][1])

    assert scope("truncation", {}) == "trace"
    assert scope("compression", {}) == "trace"
    assert scope("budget", {"per_trace": {"max_usd": 1.0}}) == "trace"
    assert scope("budget", {"tenants": {"default_monthly_usd": 5.0}}) == "tenant"
    assert scope("prompt_cache", {"scope": "tenant"}) == "tenant"
    assert scope("prompt_cache", {"scope": "global"}) == "global"
    assert scope("routing", {"rules": [{"to": "gpt-4.1-mini"}]}) == "global"
    assert scope("prompt_cache", {"scope": "trace", "anthropic": {"agents": "recorded"}}) == "global"
    assert scope("response_cache", {"mode": "semantic", "scope": "trace"}) == "global"
    assert scope("response_cache", {"mode": "exact", "scope": "tenant"}) == "tenant"
    assert scope("batching", {"group_size": 4}) == "tenant"


def test_tenant_units_need_traces_of_one_tenant(ds: str) -> None:
    manifest = dataset.read_manifest(ds)
    budget = load_policy_file(POLICIES / "budget.yaml")
    assert engines.replay_scope([budget], None, manifest)[0] == "tenant"
    mixed = manifest.model_copy(update={"mixed_tenant_traces": 3})
    scope, why = engines.replay_scope([budget], None, mixed)
    assert scope == "global" and "3 traces of the dataset name several tenants" in why


def test_a_unit_that_reads_other_rows_than_the_manifest_lists_fails(ds: str, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    shutil.copytree(ds, root)
    entry = dataset.read_manifest(root).partitions[0].files[0]
    table = pq.read_table(root / entry.path)
    pq.write_table(table.slice(0, table.num_rows - 1), root / entry.path)
    with pytest.raises(InputError, match="read 596 rows where the dataset manifest lists 597"):
        engines.analyze(str(root), AnalyzeOptions())


def test_engine_and_input_options() -> None:
    with pytest.raises(ConfigError, match="unknown engine 'dsak'") as info:
        with engines.open_engine("dsak"):
            pass
    assert info.value.hint is not None and "did you mean dask?" in info.value.hint
    with pytest.raises(ConfigError, match="--scheduler is for the dask engine"):
        with engines.open_engine("local", "tcp://127.0.0.1:8786"):
            pass
    assert engines.dataset_input([SAMPLES]) is None
    with pytest.raises(ConfigError, match="reads a dataset, not trace files"):
        engines.dataset_input([SAMPLES], "dask")


def test_dataset_inputs_are_one_directory(ds: str) -> None:
    assert engines.dataset_input([ds], "dask") == ds
    with pytest.raises(ConfigError, match="one dataset directory"):
        engines.dataset_input([ds, SAMPLES])


def test_the_generic_outcome_merge() -> None:
    parts = [
        {
            "assumptions": ["a", "b"],
            "risks": {"context_removed_share": 0.5, "calls_affected": 2},
            "details": {"max_tokens": 1000, "calls_evaluated": 10, "by_tool": [{"tool": "grep", "removed": 5.0}]},
            "not_evaluated": ["x"],
        },
        {
            "assumptions": ["b"],
            "risks": {"context_removed_share": 0.2, "calls_affected": 3},
            "details": {"max_tokens": 1000, "calls_evaluated": 30, "by_tool": [{"tool": "grep", "removed": 1.0},
                                                                                {"tool": "ls", "removed": 2.0}]},
            "not_evaluated": ["x", "y"],
        },
    ]  # fmt: skip
    got = outcomes.merge_outcome("truncation", parts, [10, 30], "parts of whole traces")
    assert got["risks"] == {"context_removed_share": pytest.approx(0.275), "calls_affected": 5}
    assert got["details"] == {
        "max_tokens": 1000,
        "calls_evaluated": 40,
        "by_tool": [{"tool": "grep", "removed": 6.0}, {"tool": "ls", "removed": 2.0}],
    }
    assert got["assumptions"][:2] == ["a", "b"] and got["assumptions"][2].startswith("Replayed in 2 parts")
    assert got["not_evaluated"] == ["x", "y"]
    assert outcomes.merge_outcome("truncation", parts[:1], [10], "parts") == parts[0]


@pytest.mark.skipif(not hasattr(cli, "convert"), reason="the convert command is not wired into the CLI yet")
def test_the_commands_on_a_dataset(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"COLUMNS": "80", "NO_COLOR": "1"}
    converted = runner.invoke(cli.app, ["convert", SAMPLES, "-o", str(tmp_path / "ds")], env=env)
    assert converted.exit_code == 0, converted.output
    assert "4 new inputs (0 already converted), +597 rows; 597 LLM calls in 282 traces" in converted.stderr
    analyzed = runner.invoke(cli.app, ["analyze", str(tmp_path / "ds"), "--by", "tenant", "-f", "json"], env=env)
    assert analyzed.exit_code == 0, analyzed.output
    want = RENDERERS["json"](engines.analyze(str(tmp_path / "ds"), AnalyzeOptions(by=("tenant",))), 80)
    assert orjson.loads(analyzed.stdout) == orjson.loads(want)
    refused = runner.invoke(cli.app, ["analyze", SAMPLES, "--engine", "dask"], env=env)
    assert refused.exit_code == 2 and "reads a dataset, not trace files" in refused.stderr
