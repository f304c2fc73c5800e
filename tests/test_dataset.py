"""`costscope convert` and the dataset it writes: the same step table as reading the inputs, partitioned by the day
of each trace's first call and its tenant, traces never split, appends that only add new inputs."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from costscope import dataset
from costscope.convert import ConvertOptions, convert
from costscope.errors import ConfigError, InputError
from costscope.schema import COST_FIELDS
from costscope.steps import Filters, load_steps

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = str(ROOT / "sample_traces")
SMALL = ConvertOptions(
    workers=2, part_bytes=64 << 10, parse_bytes=32 << 10, chunk_bytes=128 << 10, bucket_bytes=256 << 10, file_rows=40
)
"""Tiny sizes: files parsed in parts, several chunks and buckets, partitions cut into several files."""
COSTS = {f.name for f in COST_FIELDS}


def _parsed(table: pa.Table) -> pa.Table:
    """The parsed columns (cost columns are priced on read and compared elsewhere)."""
    return table.select([c for c in table.column_names if c not in COSTS])


def call(trace: str, when: str, rid: str, tenant: str | None = "acme", tokens: int = 100, usage: bool = True) -> dict:
    response: dict[str, Any] = {"id": rid, "object": "chat.completion", "model": "gpt-4.1-mini", "choices": []}
    if usage:
        response["usage"] = {"prompt_tokens": tokens, "completion_tokens": 10, "total_tokens": tokens + 10}
    record = {"timestamp": when, "trace_id": trace, "agent": "bot", "provider": "openai", "response": response,
              "request": {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": f"q {rid}"}]}}  # fmt: skip
    if tenant is not None:
        record["tenant"] = tenant
    return record


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample traces converted once with tiny sizes."""
    root = tmp_path_factory.mktemp("samples") / "ds"
    convert([SAMPLES], str(root), SMALL)
    return root


def test_a_dataset_holds_the_step_table_the_inputs_give(samples: Path) -> None:
    expected = load_steps([SAMPLES])
    loaded = dataset.load(samples)
    assert _parsed(loaded.table).equals(_parsed(expected.table))
    manifest = dataset.read_manifest(samples)
    assert (manifest.rows, manifest.calls) == (597, 597)
    assert manifest.traces == len(pc.unique(expected.table["trace_id"])) == 282
    assert [(f.name, f.format, f.records, f.rows) for f in loaded.files] == [
        (f.name, f.format, f.records, f.rows) for f in expected.files
    ]
    assert sum(len(p.files) for p in manifest.partitions) > len(manifest.partitions)  # file_rows=40 cut files
    assert manifest.price_sources == ["genai-prices 0.2.3"]
    assert orjson.loads((samples / dataset.MANIFEST).read_bytes())["dataset_version"] == 1


def test_every_trace_lives_in_one_file_of_its_first_day_and_tenant(samples: Path) -> None:
    manifest = dataset.read_manifest(samples)
    seen: dict[str, str] = {}
    for partition in manifest.partitions:
        for entry in partition.files:
            table = pq.read_table(samples / entry.path)
            assert entry.rows == table.num_rows
            assert entry.path.startswith(dataset.partition_dir(partition.day, partition.tenant) + "/part-0001-")
            grouped = table.group_by("trace_id").aggregate([("start", "min"), ("tenant", "min")]).to_pylist()
            for trace in grouped:
                assert trace["trace_id"] not in seen, f"{trace['trace_id']} is in {seen.get(trace['trace_id'])} too"
                seen[trace["trace_id"]] = entry.path
                assert trace["start_min"].strftime("%Y-%m-%d") == partition.day
                assert trace["tenant_min"] == partition.tenant
    assert len(seen) == manifest.traces


def test_a_trace_running_past_midnight_stays_in_the_day_it_started(
    jsonl_file: Callable[..., str], tmp_path: Path
) -> None:
    path = jsonl_file(
        [call("t1", "2026-10-05T23:59:00Z", "r1"), call("t1", "2026-10-06T00:01:00Z", "r2"),
         call("t2", "2026-10-06T08:00:00Z", "r3", tenant=None), call("t3", "2026-10-06T09:00:00Z", "r4", tenant="x/y")]
    )  # fmt: skip
    manifest = convert([path], str(tmp_path / "ds")).manifest
    assert [(p.day, p.tenant, p.files[0].traces) for p in manifest.partitions] == [
        ("2026-10-05", "acme", 1),
        ("2026-10-06", None, 1),
        ("2026-10-06", "x/y", 1),
    ]
    assert [p.files[0].path for p in manifest.partitions] == [
        "day=2026-10-05/tenant=acme/part-0001-0000.parquet",
        "day=2026-10-06/part-0001-0000.parquet",
        "day=2026-10-06/tenant=x%2Fy/part-0001-0000.parquet",
    ]
    units, pruned = dataset.plan_units(manifest, "rows", 100, Filters(since="2026-10-06"))
    assert pruned == 0 and len(units) == 1  # the 5 October file holds a call of 6 October
    units, pruned = dataset.plan_units(manifest, "rows", 100, Filters(since="2026-10-07"))
    assert (units, pruned) == ([], 4)
    later = dataset.load(tmp_path / "ds", Filters(since="2026-10-06"))
    assert later.table["record_id"].to_pylist() == ["r2", "r3", "r4"] and later.filtered_out == 1


def test_rerunning_converts_only_new_inputs(jsonl_file: Callable[..., str], tmp_path: Path) -> None:
    a = jsonl_file([call("t1", "2026-10-05T10:00:00Z", "r1"), call("t2", "2026-10-05T11:00:00Z", "r2")], "a.jsonl")
    first = convert([a], str(tmp_path / "ds"))
    files = sorted(p.name for p in (tmp_path / "ds").rglob("*.parquet"))
    again = convert([a], str(tmp_path / "ds"))
    assert (again.inputs_added, again.inputs_unchanged, again.rows_added) == (0, 1, 0)
    assert sorted(p.name for p in (tmp_path / "ds").rglob("*.parquet")) == files
    b = jsonl_file([call("t3", "2026-10-06T10:00:00Z", "r3")], "b.jsonl")
    more = convert([a, b], str(tmp_path / "ds"))
    assert (more.inputs_added, more.inputs_unchanged, more.rows_added, more.files_rewritten) == (1, 1, 1, 0)
    assert more.manifest.runs == 2 and first.manifest.runs == 1
    assert [i.name for i in more.manifest.inputs] == [a, b]
    assert sorted(f.path for p in more.manifest.partitions for f in p.files) == [
        "day=2026-10-05/tenant=acme/part-0001-0000.parquet",
        "day=2026-10-06/tenant=acme/part-0002-0000.parquet",
    ]


def test_new_rows_of_a_stored_trace_resettle_its_file(jsonl_file: Callable[..., str], tmp_path: Path) -> None:
    """A later file continues t1 (starting it earlier, under another tenant) and repeats response r2 five seconds
    later: the result is what converting both files at once gives."""
    a = jsonl_file(
        [call("t1", "2026-10-05T10:00:00Z", "r1", tenant="zeta"), call("t2", "2026-10-05T11:00:00Z", "r2", usage=False),
         call("t4", "2026-10-07T11:00:00Z", "r5")], "a.jsonl"
    )  # fmt: skip
    b = jsonl_file(
        [call("t1", "2026-10-04T23:00:00Z", "r3", tenant="beta"), call("t2", "2026-10-05T11:00:05Z", "r2"),
         call("t3", "2026-10-06T11:00:00Z", "r4")], "b.jsonl"
    )  # fmt: skip
    convert([a], str(tmp_path / "ds"))
    appended = convert([a, b], str(tmp_path / "ds"))
    assert appended.files_rewritten == 2 and appended.duplicates_dropped == 1
    convert([a, b], str(tmp_path / "once"))
    assert _parsed(dataset.load(tmp_path / "ds").table).equals(_parsed(dataset.load(tmp_path / "once").table))
    assert _parsed(dataset.load(tmp_path / "ds").table).equals(_parsed(load_steps([a, b]).table))
    manifest = appended.manifest
    assert [(p.day, p.tenant) for p in manifest.partitions] == [
        ("2026-10-04", "beta"),  # t1 moved: its first call is now on the 4th, its smallest tenant beta
        ("2026-10-05", "acme"),
        ("2026-10-06", "acme"),
        ("2026-10-07", "acme"),
    ]
    assert manifest.mixed_tenant_traces == 1
    assert "day=2026-10-05/tenant=zeta" not in {f.path.rsplit("/", 1)[0] for p in manifest.partitions for f in p.files}
    assert not (tmp_path / "ds" / "day=2026-10-05" / "tenant=zeta" / "part-0001-0000.parquet").exists()
    assert dataset.duplicates(tmp_path / "ds") == [f"{b}:2"]  # the later copy
    assert manifest.duplicates_dropped == 1 and manifest.rows == 5


def test_duplicate_responses_are_dropped_as_when_reading_the_inputs(
    jsonl_file: Callable[..., str], tmp_path: Path
) -> None:
    a = jsonl_file([call("t1", "2026-10-05T10:00:00Z", "r1"), call("t1", "2026-10-05T10:01:00Z", "r2")], "a.jsonl")
    b = jsonl_file([call("t9", "2026-10-05T10:00:30Z", "r1"), call("t9", "2026-10-05T09:00:00Z", "r2")], "b.jsonl")
    result = convert([a, b], str(tmp_path / "ds"), SMALL)
    expected = load_steps([a, b])
    assert dataset.duplicates(tmp_path / "ds") == expected.duplicates == [f"{a}:2", f"{b}:1"]
    assert result.manifest.duplicates_dropped == 2
    assert _parsed(dataset.load(tmp_path / "ds").table).equals(_parsed(expected.table))


def test_big_inputs_are_parsed_in_parts_with_their_real_line_numbers(tmp_path: Path) -> None:
    generated = _generated(tmp_path, 1500)
    result = convert([generated], str(tmp_path / "ds"), SMALL)
    expected = load_steps([generated])
    table = dataset.load(tmp_path / "ds").table
    assert _parsed(table).equals(_parsed(expected.table))
    assert sorted(table["line"].to_pylist()) == list(range(1, 1501))
    assert result.manifest.calls == 1500 and len(result.manifest.partitions) > 100


def test_a_dataset_inside_an_input_directory_is_not_read_as_input(
    jsonl_file: Callable[..., str], tmp_path: Path
) -> None:
    jsonl_file([call("t1", "2026-10-05T10:00:00Z", "r1")], "logs/a.jsonl")
    first = convert([str(tmp_path / "logs")], str(tmp_path / "logs" / "ds"))
    again = convert([str(tmp_path / "logs")], str(tmp_path / "logs" / "ds"))
    assert (first.inputs_added, again.inputs_added, again.inputs_unchanged, again.manifest.rows) == (1, 0, 1, 1)
    assert again.manifest.ignored_files == []


def test_a_changed_input_is_refused(jsonl_file: Callable[..., str], tmp_path: Path) -> None:
    a = jsonl_file([call("t1", "2026-10-05T10:00:00Z", "r1")], "a.jsonl")
    convert([a], str(tmp_path / "ds"))
    Path(a).write_text(Path(a).read_text(encoding="utf-8") * 2, encoding="utf-8")
    with pytest.raises(InputError, match="changed since it was converted"):
        convert([a], str(tmp_path / "ds"))


def test_what_convert_refuses(jsonl_file: Callable[..., str], tmp_path: Path) -> None:
    a = jsonl_file([call("t1", "2026-10-05T10:00:00Z", "r1")], "a.jsonl")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="holds no costscope dataset"):
        convert([a], str(tmp_path / "busy"))
    with pytest.raises(ConfigError, match="stdin"):
        convert(["-"], str(tmp_path / "ds"))
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / ".lock").write_text("123", encoding="utf-8")
    with pytest.raises(ConfigError, match="being converted"):
        convert([a], str(tmp_path / "ds"))


def test_a_manifest_of_another_version_is_refused(jsonl_file: Callable[..., str], tmp_path: Path) -> None:
    convert([jsonl_file([call("t1", "2026-10-05T10:00:00Z", "r1")])], str(tmp_path / "ds"))
    path = tmp_path / "ds" / dataset.MANIFEST
    data = orjson.loads(path.read_bytes())
    path.write_bytes(orjson.dumps({**data, "dataset_version": 2}))
    with pytest.raises(InputError, match="dataset version 2"):
        dataset.read_manifest(tmp_path / "ds")
    path.write_bytes(orjson.dumps({**data, "partitons": []}))
    with pytest.raises(InputError, match="partitons"):
        dataset.read_manifest(tmp_path / "ds")
    assert not dataset.is_dataset(tmp_path)


def test_units_cut_between_files_or_group_a_tenant(samples: Path) -> None:
    manifest = dataset.read_manifest(samples)
    units, _ = dataset.plan_units(manifest, "rows", 100)
    assert all(u.rows <= 100 or len(u.files) == 1 for u in units)
    assert sum(u.rows for u in units) == manifest.rows
    assert [f for u in units for f in u.files] == [f.path for p in manifest.partitions for f in p.files]
    tenants, _ = dataset.plan_units(manifest, "tenant", 100)
    assert sorted(u.label for u in tenants) == sorted({f"tenant {p.tenant}" for p in manifest.partitions})
    assert sum(u.rows for u in tenants) == manifest.rows
    everything, _ = dataset.plan_units(manifest, "all", 100)
    assert len(everything) == 1 and everything[0].rows == manifest.rows


def _generated(tmp_path: Path, calls: int) -> str:
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_calls", ROOT / "benchmarks" / "gen_calls.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = tmp_path / "generated.jsonl"
    module.main(["--calls", str(calls), "-o", str(path), "--seed", "7"])
    os.utime(path, ns=(1, 1))
    return str(path)


def test_the_dataset_is_the_same_however_many_buckets_settle_it(samples: Path, tmp_path: Path) -> None:
    """Buckets only share the settling among processes (at least one per worker from 64 MiB of input): each
    partition's rows are sorted when written, so one bucket writes the same bytes as many."""
    one = tmp_path / "one"
    convert([SAMPLES], str(one), ConvertOptions(workers=1, bucket_bytes=1 << 40, file_rows=40))
    assert dataset.read_manifest(samples).partitions == dataset.read_manifest(one).partitions
    files = sorted(p.relative_to(samples) for p in samples.rglob("*.parquet"))
    assert files == sorted(p.relative_to(one) for p in one.rglob("*.parquet")) and files
    assert all((samples / f).read_bytes() == (one / f).read_bytes() for f in files)
