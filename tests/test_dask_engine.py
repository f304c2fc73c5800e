"""The dask engine on a 2-worker LocalCluster gives exactly the local engine's reports (to the cent and the token),
runs units in separate processes, and fails loudly when a worker dies. Skipped without Dask (`costscope[dask]`)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import yaml

pytest.importorskip("distributed")

from costscope import baseline as baselines
from costscope import engines
from costscope.api import AnalyzeOptions
from costscope.check_config import CheckSettings
from costscope.convert import ConvertOptions, convert
from costscope.engines import LocalEngine
from costscope.engines.dask_engine import DaskEngine
from costscope.errors import ConfigError, CostscopeError
from costscope.steps import Filters

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "sample_traces" / "policies"
UNIT = 700
CALLS = 4000


@pytest.fixture(scope="module")
def cluster() -> Iterator[DaskEngine]:
    engine = DaskEngine(workers=2)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Generated calls (8 tenants over 30 days) and the sample traces (tool results, histories), as one dataset."""
    folder = tmp_path_factory.mktemp("dask")
    spec = importlib.util.spec_from_file_location("gen_calls", ROOT / "benchmarks" / "gen_calls.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    gen.main(["--calls", str(CALLS), "-o", str(folder / "generated.jsonl"), "--seed", "11"])
    root = folder / "ds"
    convert([str(folder / "generated.jsonl"), str(ROOT / "sample_traces")], str(root), ConvertOptions(file_rows=200))
    return str(root)


def same(local: object, dask: object) -> None:
    assert orjson.dumps(dask, option=orjson.OPT_SORT_KEYS) == orjson.dumps(local, option=orjson.OPT_SORT_KEYS)


@pytest.mark.parametrize(
    "options",
    [
        AnalyzeOptions(by=("model", "agent", "tenant", "day"), top=10),
        AnalyzeOptions(
            by=("trace",), top=3, filters=Filters(since="2026-10-12", until="2026-10-20", models=("gpt-*",))
        ),
    ],
)
def test_analyze_is_identical_on_both_engines(cluster: DaskEngine, ds: str, options: AnalyzeOptions) -> None:
    local = engines.analyze_dataset(ds, options, LocalEngine(), unit_rows=UNIT).to_dict()
    dask = engines.analyze_dataset(ds, options, cluster, unit_rows=UNIT).to_dict()
    same(local, dask)
    assert dask["totals"]["calls"] > 0 and dask["totals"]["cost_usd"] > 1.0
    if not options.filters.since:
        assert dask["totals"]["calls"] == CALLS + 597 and dask["traces"]["traces"] > 500


def test_baseline_and_check_are_identical_on_both_engines(cluster: DaskEngine, ds: str, tmp_path: Path) -> None:
    local, local_warnings = engines.baseline_dataset(ds, AnalyzeOptions(), LocalEngine(), unit_rows=UNIT)
    dask, dask_warnings = engines.baseline_dataset(ds, AnalyzeOptions(), cluster, unit_rows=UNIT)
    assert baselines.to_json(dask) == baselines.to_json(local) and dask_warnings == local_warnings
    assert dask.totals.calls == CALLS + 597
    baselines.write(local, tmp_path / "baseline.json")
    settings = CheckSettings(baseline=str(tmp_path / "baseline.json"), by=("agent",))
    checked = [engines.check_dataset(ds, settings, e).to_dict() for e in (LocalEngine(), cluster)]
    same(checked[0], checked[1])
    assert checked[1]["verdict"] == "pass" and checked[1]["checks"][0]["change"] == 0.0


@pytest.mark.parametrize("policies", [["joint"], ["budget.yaml", "batching.yaml"]])
def test_simulate_is_identical_on_both_engines(
    cluster: DaskEngine, ds: str, tmp_path: Path, policies: list[str]
) -> None:
    if policies == ["joint"]:
        joint = {"version": 1, "name": "truncate and compress"}
        for name in ("truncation.yaml", "compression.yaml"):
            joint.update({k: v for k, v in yaml.safe_load((POLICIES / name).read_text()).items() if k != "name"})
        (tmp_path / "joint.yaml").write_text(yaml.safe_dump(joint), encoding="utf-8")
        files = [str(tmp_path / "joint.yaml")]
    else:
        files = [str(POLICIES / p) for p in policies]
    local = engines.simulate_dataset(ds, files, AnalyzeOptions(), LocalEngine(), unit_rows=UNIT).to_dict()
    dask = engines.simulate_dataset(ds, files, AnalyzeOptions(), cluster, unit_rows=UNIT).to_dict()
    same(local, dask)
    assert [r["technique"] for r in dask["scenarios"][0]["runs"]][-1] == (
        "joint" if policies == ["joint"] else "budget"
    )
    assert dask["scenarios"][0]["runs"][-1]["saved_usd"] > 0


def test_a_global_policy_is_refused_on_the_cluster(cluster: DaskEngine, ds: str) -> None:
    with pytest.raises(ConfigError, match="cannot be split across workers"):
        engines.simulate_dataset(ds, [str(POLICIES / "prompt-cache.yaml")], AnalyzeOptions(), cluster)


def test_units_run_in_the_worker_processes(cluster: DaskEngine) -> None:
    pids = cluster.map(_pid, list(range(8)), [f"part {i}" for i in range(8)])
    assert len(set(pids)) == 2 and os.getpid() not in pids


def test_a_worker_that_dies_fails_the_run(cluster: DaskEngine) -> None:
    def die_on_one(item: int) -> int:
        if item == 1:
            os._exit(1)
        return item

    # part 1 kills its worker; part 2 may have been waiting on the same worker and die with it
    with pytest.raises(CostscopeError, match="a Dask worker died while processing part [12]: the run is incomplete"):
        cluster.map(die_on_one, [0, 1, 2], ["part 0", "part 1", "part 2"])
    cluster.client.wait_for_workers(2, timeout=60)
    assert cluster.map(abs, [-3], ["part 0"]) == [3]


def _pid(_: int) -> int:
    import time

    time.sleep(0.2)
    return os.getpid()
